"""The ``ingest`` command's entry point, kept light on purpose.

Worker processes started by multiprocessing (``ingest.pipeline.workers``) import the main script
again before they run anything. The console script imports this module; were it
``ingest.cli.app``, every worker would load the whole program (store, HTTP client, CLI) just to
parse feeds.
"""


def main() -> None:
    from ingest.cli.app import main as run_cli  # noqa: PLC0415  (the point of this module)

    run_cli()
