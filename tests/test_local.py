"""Local sources: what a file or folder yields, and the limits a folder is read with."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest

from ingest.errors import DocumentError, SourceError
from ingest.fetch.local import LocalFeed, LocalPosts, read_local
from tests.conftest import CNBETA, write_config

MAX_BODY = 4096


def post(path: Path, title: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"---\ntitle: {title}\n---\n<p>{title}</p>\n", encoding="utf-8")
    return path


def read_within(path: Path, seconds: float = 5.0, **limits: int) -> LocalFeed | LocalPosts:
    """``read_local(path)``, failing the test instead of hanging it when the read blocks
    (opening a FIFO waits for a writer forever)."""
    outcome: list[LocalFeed | LocalPosts | Exception] = []

    def read() -> None:
        try:
            outcome.append(read_local(str(path), max_body=MAX_BODY, **limits))
        except Exception as exc:  # noqa: BLE001  (handed to the test's thread)
            outcome.append(exc)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        for fifo in [path, *path.rglob("*")] if path.is_dir() else [path]:
            if fifo.is_fifo():  # a writer that comes and goes lets the blocked open return
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail(f"reading {path} blocked for {seconds}s")
    (result,) = outcome
    if isinstance(result, Exception):
        raise result
    return result


def test_a_folder_yields_its_posts_and_skips_what_is_not_one(tmp_path: Path) -> None:
    post(tmp_path / "b" / "two.md", "Two")
    post(tmp_path / "one.md", "One")
    (tmp_path / "README").write_text("about these posts", encoding="utf-8")
    post(tmp_path / ".git" / "hidden.md", "Hidden")

    result = read_within(tmp_path)

    assert isinstance(result, LocalPosts)
    assert [key for key, _ in result.files] == ["b/two.md", "one.md"]
    assert result.skipped == ("README: no front matter (a post starts with a --- line)",)


def test_a_fifo_in_a_folder_is_skipped_and_reported_never_opened(tmp_path: Path) -> None:
    post(tmp_path / "one.md", "One")
    os.mkfifo(tmp_path / "pipe.md")

    result = read_within(tmp_path)

    assert isinstance(result, LocalPosts)
    assert [key for key, _ in result.files] == ["one.md"]
    assert result.skipped == ("pipe.md: not a regular file (a FIFO); not read",)


def test_a_fifo_given_as_the_source_is_an_error_not_a_hang(tmp_path: Path) -> None:
    fifo = tmp_path / "feed.xml"
    os.mkfifo(fifo)

    with pytest.raises(SourceError) as refused:
        read_within(fifo)

    assert str(refused.value) == f"{fifo}: not a regular file or folder (a FIFO); not read"
    assert refused.value.kind == "not_regular"


def test_a_file_above_max_body_is_skipped_the_rest_read(tmp_path: Path) -> None:
    post(tmp_path / "one.md", "One")
    post(tmp_path / "big.md", "x" * MAX_BODY)

    result = read_within(tmp_path)

    assert isinstance(result, LocalPosts)
    assert [key for key, _ in result.files] == ["one.md"]
    assert result.skipped == (f"big.md: larger than max_body ({MAX_BODY} bytes); not read",)


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        (
            {"max_files": 3},
            "holds more than 3 files and folders, the most a local folder source reads; "
            "split it into several sources",
        ),
        (
            {"max_total": 400},  # each post is 104 bytes
            "holds more than 400 bytes of posts, the most a local folder source reads; "
            "split it into several sources",
        ),
    ],
    ids=["files", "bytes"],
)
def test_a_folder_beyond_the_caps_is_an_error(
    tmp_path: Path, limits: dict[str, int], message: str
) -> None:
    for name in ("a", "b", "c"):
        post(tmp_path / "posts" / f"{name}.md", name * 40)
    for index in range(10):  # hidden folders are neither read nor counted
        post(tmp_path / "posts" / ".git" / f"{index}.md", "hidden")
    read_within(tmp_path / "posts", **limits)

    post(tmp_path / "posts" / "d.md", "d" * 40)
    with pytest.raises(DocumentError) as refused:
        read_within(tmp_path / "posts", **limits)

    assert str(refused.value) == f"{tmp_path / 'posts'}: {message}"
    assert refused.value.kind == "too_large"


def test_links_in_a_folder_are_followed_only_within_it(tmp_path: Path) -> None:
    folder = tmp_path / "posts"
    post(folder / "one.md", "One")
    (folder / "again.md").symlink_to(folder / "one.md")
    post(tmp_path / "outside" / "secret.md", "Secret")
    (folder / "leak.md").symlink_to(tmp_path / "outside" / "secret.md")
    (folder / "leaks").symlink_to(tmp_path / "outside")
    (folder / "sub").symlink_to(folder)
    (folder / "broken.md").symlink_to(folder / "gone.md")

    result = read_within(folder)

    assert isinstance(result, LocalPosts)
    assert [key for key, _ in result.files] == ["again.md", "one.md"]
    assert result.skipped == (
        "broken.md: a link to nothing; not read",
        "leak.md: a link out of the folder; not followed",
        "leaks: a link out of the folder; not followed",
        "sub: a link to a folder; not followed",
    )


def test_a_link_out_of_a_folder_never_reaches_the_store_or_the_export(
    tmp_path: Path, cli_for: Any
) -> None:
    folder = tmp_path / "posts"
    post(folder / "one.md", "One")
    post(tmp_path / "private" / "id_rsa.md", "PRIVATE KEY")
    (folder / "key.md").symlink_to(tmp_path / "private" / "id_rsa.md")
    cli = cli_for(write_config(tmp_path, [{"url": str(folder)}, {"url": str(CNBETA)}]))

    run = cli("run")
    cli("export", str(tmp_path / "site"))

    assert run.exit_code == 0
    assert "1 skipped" in run.stdout
    exported = "".join(p.read_text("utf-8") for p in (tmp_path / "site").rglob("*.md"))
    assert "One" in exported
    assert "PRIVATE KEY" not in exported
