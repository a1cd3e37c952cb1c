"""The container image as far as this machine allows without a Docker engine.

The image is a wheel installed into a fresh Python with nothing else; so is this test's venv.
It runs the Dockerfile's own CMD and HEALTHCHECK commands, taken from the Dockerfile, from an
empty working directory (the image's /data), and checks what the Dockerfile promises.
"""

from __future__ import annotations

import email
import json
import re
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from tests.test_daemon import free_port

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = (ROOT / "Dockerfile").read_text()
IMAGE_EXTRA = "postgres"


def _json_command(pattern: str) -> list[str]:
    match = re.search(pattern, DOCKERFILE, re.MULTILINE)
    assert match, pattern
    command: list[str] = json.loads(match.group(1))
    return command


def test_the_dockerfile_makes_a_small_non_root_image_with_a_data_volume() -> None:
    stages = re.findall(r"^FROM (\S+)", DOCKERFILE, re.MULTILINE)
    assert len(stages) == 2  # build stage, then the runtime stage
    assert all(stage.startswith("python:3.11-slim") for stage in stages)
    assert re.search(r"^USER ingest$", DOCKERFILE, re.MULTILINE)
    assert re.search(r"^EXPOSE 8080$", DOCKERFILE, re.MULTILINE)
    assert 'VOLUME ["/data"]' in DOCKERFILE
    assert "INGEST_DB=sqlite:////data/ingest.db" in DOCKERFILE
    assert "INGEST_SERVE_HOST=0.0.0.0" in DOCKERFILE  # the published port reaches /healthz
    assert re.search(r"^COPY seeds seeds$", DOCKERFILE, re.MULTILINE)
    assert f"'feed-ingest[{IMAGE_EXTRA}]'" in DOCKERFILE  # the driver replicas need
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "tests", "*.db"} <= set(ignored)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built once as the Dockerfile builds it."""
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (built,) = dist.glob("*.whl")
    return built


@pytest.fixture(scope="module")
def fresh_venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new virtual environment holding only the project's wheel and its dependencies."""
    venv = tmp_path_factory.mktemp("image") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", f"{wheel}[{IMAGE_EXTRA}]"],
        check=True,
        capture_output=True,
    )
    return venv


def test_the_wheel_ships_the_program_its_licence_and_type_marker_only(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA")))
        size = sum(archive.getinfo(name).file_size for name in names)
    tops = {name.split("/")[0] for name in names}
    assert tops == {"ingest", "storage", "scheduler", "feed_ingest-0.1.0.dist-info"}
    assert "ingest/py.typed" in names  # PEP 561: mypy reads our hints in other projects
    assert "ingest/_seeds/000_dd9e6ee67f5cdc93.txt" in names  # the built-in default source
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)
    assert size < 1_000_000  # no test corpus
    headers = email.message_from_bytes(metadata)
    assert headers["License-Expression"] == "MIT"
    assert headers["Author-email"]
    assert "Typing :: Typed" in headers.get_all("Classifier", [])
    assert any(url.startswith("Homepage, https://") for url in headers.get_all("Project-URL", []))
    assert any(
        dep.startswith("psycopg") and dep.endswith("extra == 'postgres'")
        for dep in headers.get_all("Requires-Dist", [])
    )


def test_the_image_commands_serve_and_pass_the_healthcheck(
    fresh_venv: Path, tmp_path: Path
) -> None:
    serve_command = _json_command(r"^CMD (\[.*\])$")
    health_command = _json_command(r"^HEALTHCHECK .*CMD (\[.*\])$")
    data = tmp_path / "data"
    data.mkdir()
    env = {
        "PATH": f"{fresh_venv / 'bin'}:/usr/bin:/bin",
        "INGEST_DB": f"sqlite:///{data / 'ingest.db'}",
        "INGEST_SERVE_PORT": str(free_port()),
        "INGEST_SERVE_TICK": "1s",
        "HOME": str(data),
    }

    def in_image(command: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            command, cwd=data, env=env, capture_output=True, text=True, check=False
        )

    log = (tmp_path / "serve.log").open("w")
    daemon = subprocess.Popen(serve_command, cwd=data, env=env, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 30
        health = in_image(health_command)
        while health.returncode != 0 and time.monotonic() < deadline:
            time.sleep(0.5)
            health = in_image(health_command)
        assert health.returncode == 0, health.stderr + (tmp_path / "serve.log").read_text()
        assert health.stdout.startswith("ok: last tick")

        listed = in_image(["ingest", "entries", "list", "--json"])
        titles = [post["title"] for post in json.loads(listed.stdout)]
        assert titles == ["Nature 证实：学术界刮起离职潮 大批学者涌向工业界"]  # the shipped seed

        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(15) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
        log.close()
    assert in_image(health_command).returncode == 1
    assert (data / "ingest.db").is_file()


@pytest.mark.postgres
def test_the_image_reaches_a_postgresql_store(
    fresh_venv: Path, tmp_path: Path, postgres_url: str
) -> None:
    done = subprocess.run(
        [str(fresh_venv / "bin" / "ingest"), "--db", postgres_url, "db", "upgrade", "--json"],
        cwd=tmp_path,
        env={"PATH": f"{fresh_venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["to"]
