"""The ``ingest`` command's entry point, kept light on purpose.

Worker processes started by multiprocessing (``ingest.workers``) import the main script again
before they run anything. The console script imports this module; were it ``ingest.cli``, every
worker would load the whole program (store, HTTP client, CLI) just to parse feeds.
"""


def main() -> None:
    from ingest.cli import main as run_cli  # noqa: PLC0415  (the point of this module)

    run_cli()
