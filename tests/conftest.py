"""Shared fixtures: test data, stores on both backends, config files and the CLI."""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError
from typer.testing import CliRunner

from bench.replicas import fresh_schema
from ingest.cli.app import app
from storage import Store, open_store

DATA = Path(__file__).parent / "data"
SEED = DATA / "000_dd9e6ee67f5cdc93.txt"
CNBETA = DATA / "cnbeta.xml"
PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
REQUIRE_POSTGRES = bool(os.environ.get("FEED_INGEST_TESTS_NEED_POSTGRES"))
"""Set by CI (``.ci/run``): PostgreSQL cases fail instead of skipping when the server is away."""


@functools.cache
def _postgres_problem() -> str | None:
    """None when the local PostgreSQL answers (starting its cluster if it is down), else why."""
    for attempt in range(2):
        try:
            engine = create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            engine.dispose()
            return None
        except OperationalError as exc:
            problem = str(exc.orig)
            clusters = Path("/etc/postgresql")
            if attempt or not clusters.is_dir() or not shutil.which("pg_ctlcluster"):
                return problem
            for version in clusters.iterdir():
                subprocess.run(
                    ["pg_ctlcluster", "--skip-systemctl-redirect", version.name, "main", "start"],
                    check=False,
                    capture_output=True,
                )
    return "unreachable"


def _require_postgres() -> None:
    """Skip PostgreSQL cases on a machine without the server, unless CI demands them."""
    problem = _postgres_problem()
    if problem is None:
        return
    message = f"PostgreSQL at 127.0.0.1:5432 is not available: {problem}"
    if REQUIRE_POSTGRES:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(autouse=True)
def _hermetic_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests see no INGEST_* variable of the machine they run on; each sets its own."""
    for name in [n for n in os.environ if n.startswith("INGEST_")]:
        monkeypatch.delenv(name)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ingest.db'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL store URL: a schema of its own in the local ``test`` database."""
    _require_postgres()
    with fresh_schema(PG_ADMIN_URL, prefix="t") as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty store URL on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ingest.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = open_store(store_url)
    yield opened
    opened.close()


def toml_value(value: Any) -> str:
    """A TOML literal for the values test configs use: scalars as JSON spells them, lists, and
    tables inline (``[[fetch.hosts]]`` written as ``hosts = [{match = "h", per_host = 8}]``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key} = {toml_value(v)}" for key, v in value.items()) + "}"
    return json.dumps(value, ensure_ascii=False)


def write_config(
    folder: Path,
    sources: Sequence[dict[str, Any]] = (),
    *,
    hooks: Sequence[dict[str, Any]] = (),
    **tables: dict[str, Any],
) -> Path:
    """Write ``folder/ingest.toml`` with ``[[sources]]``, ``[[hooks]]`` and the given tables;
    its path."""
    lines: list[str] = []
    for name, table in tables.items():
        lines.append(f"[{name}]")
        lines.extend(f"{key} = {toml_value(value)}" for key, value in table.items())
    for kind, entries in (("sources", sources), ("hooks", hooks)):
        for entry in entries:
            lines.append(f"[[{kind}]]")
            lines.extend(f"{key} = {toml_value(value)}" for key, value in entry.items())
    path = folder / "ingest.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


class Cli:
    """Runs ``ingest`` in-process against one store and one config."""

    def __init__(self, db: str, config: Path | None) -> None:
        self.db = db
        self.config = config

    def __call__(self, *args: str, env: dict[str, str] | None = None) -> CliResult:
        options = ["--db", self.db]
        if self.config is not None:
            options += ["--config", str(self.config)]
        try:
            result = CliRunner().invoke(app, [*options, *args], env=env)
        finally:
            # The CLI logs to the runner's stderr, which is closed once the command returns.
            logging.getLogger().handlers.clear()
        if result.exception and not isinstance(result.exception, SystemExit):
            raise result.exception
        return CliResult(result.exit_code, result.stdout, result.stderr)


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder without ingest.toml, so the built-in config applies."""
    folder = tmp_path / "work"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


@pytest.fixture
def cli_for(sqlite_url: str) -> Any:
    """``cli_for(config_path)``: a CLI bound to this test's SQLite store and that config."""

    def make(config: Path | None) -> Cli:
        return Cli(sqlite_url, config)

    return make
