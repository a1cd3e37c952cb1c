"""The store: SQLModel tables, migrations and every query feed-ingest makes."""
