"""feed-ingest: polls RSS, Atom and JSON Feed sources and stores each entry once as a post."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("feed-ingest")
except PackageNotFoundError:  # running from a checkout that was never installed
    __version__ = "0+unknown"
