"""feed-ingest: polls RSS, Atom and JSON Feed sources and stores each entry once as a post.

The vocabulary every layer shares sits here: ``types`` (the boundary types, every datetime UTC),
``errors`` (the one error tree and ``ErrorKind``), ``urls`` (URLs as browsers read them,
redaction) and ``units``; with the rules ``config`` (settings) and ``identity`` (when two
entries are one post). One package per stage of a source's path: ``fetch``, ``digest``,
``pipeline``, and around it ``publish``, ``observe`` and ``cli``. ``docs/architecture.md``
draws the layers; ``tests/test_layers.py`` keeps imports pointing down.
"""

__version__ = "0.1.0"
"""The one place the version is written: the package build reads it from here
(``[tool.hatch.version]``), so no command pays for reading the installed metadata."""
