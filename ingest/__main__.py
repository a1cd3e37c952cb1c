"""``python -m ingest``: the ``ingest`` command, for a Python without the console script on PATH."""

from ingest.cli.launch import main

if __name__ == "__main__":
    main()
