"""docs/schema.md stays true: every table and column is documented, every example runs."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect

from storage import open_store
from tests.conftest import SEED, Cli, write_config

DOC = Path(__file__).resolve().parent.parent / "docs" / "schema.md"
EXAMPLES = re.findall(r"```sql\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
SEED_TITLE = "Nature 证实：学术界刮起离职潮 大批学者涌向工业界"


@pytest.fixture(scope="module")
def seeded_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite store holding the seed post, made by `ingest run`, which leaves it indexed: the
    docs' queries of the index need nothing else."""
    folder = tmp_path_factory.mktemp("schema")
    cli = Cli(f"sqlite:///{folder / 'ingest.db'}", write_config(folder, [{"url": str(SEED)}]))
    assert cli("run").exit_code == 0
    assert cli("db", "index").stdout.startswith("0 posts indexed")
    return folder / "ingest.db"


def test_there_are_at_least_three_examples() -> None:
    assert len(EXAMPLES) >= 3


@pytest.mark.parametrize("sql", EXAMPLES, ids=lambda sql: sql.split("\n")[0][:40])
def test_each_example_runs_and_finds_the_seed(seeded_file: Path, sql: str) -> None:
    with sqlite3.connect(seeded_file) as conn:
        rows: list[tuple[Any, ...]] = conn.execute(sql).fetchall()
    assert rows
    if "posts_fts" in sql:
        assert [row[-1] for row in rows] == [SEED_TITLE]


def test_every_table_and_column_is_documented(seeded_file: Path) -> None:
    text = DOC.read_text(encoding="utf-8")
    store = open_store(f"sqlite:///{seeded_file}")
    schema = inspect(store.database.engine)
    for table in ("sources", "posts", "sightings", "websub_subscriptions"):
        section = text.split(f"## `{table}`", 1)[1].split("\n## ", 1)[0]
        for column in schema.get_columns(table):
            assert f"| `{column['name']}` |" in section, f"{table}.{column['name']}"
    store.close()
