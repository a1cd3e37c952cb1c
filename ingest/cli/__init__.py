"""The ``ingest`` command: the edge where a user's words become calls, and results become text.

- ``launch``: the console script's entry point, light on purpose (worker processes import it);
- ``app``: the commands (``run``, ``serve``, ``entries``, ``export``, ``stats``) and their output;
- ``feeds``: the ``feeds`` commands (add, list, remove, OPML import and export);
- ``base``: what every command shares: options, settings, the store, exit codes, JSON output;
- ``progress``: the progress line of ``ingest run`` on a terminal.

A driver: may import anything below it (the pipeline, the store's facade, the scheduler's
driver and daemon); nothing imports it. Logging is configured here and nowhere else.
"""
