"""The schema revisions this code knows, oldest first: read by ``storage.migrate`` and by
``storage.idle``, which must not load SQLAlchemy to learn whether a store is current.

A test keeps the list equal to the revisions in ``storage/migrations/versions``.
"""

REVISIONS = (
    "0001",
    "0002",
    "0003",
    "0004",
    "0005",
    "0006",
    "0007",
    "0008",
    "0009",
    "0010",
    "0011",
)


def head_revision() -> str:
    """The newest revision this code knows."""
    return REVISIONS[-1]
