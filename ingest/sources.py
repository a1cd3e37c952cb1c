"""Reading local sources: a feed file, one front-matter post, or a folder of them (DESIGN §2).

A folder is read recursively; hidden files and folders are ignored, and files that do not open
with a ``---`` fence are skipped and counted (a README beside the posts is not an error). Each
post's key, its guid, is its path inside the folder, so editing a file revises its post.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ingest.errors import DocumentError, SourceError


@dataclass(frozen=True, slots=True)
class LocalFeed:
    """A local file holding a feed document."""

    data: bytes


@dataclass(frozen=True, slots=True)
class LocalPosts:
    """Front-matter files: (key, text) pairs, and the files that were skipped, with why."""

    files: tuple[tuple[str, str], ...]
    skipped: tuple[str, ...]


def read_local(path_text: str, *, max_body: int) -> LocalFeed | LocalPosts:
    """The contents of the local source at ``path_text`` (an absolute path).

    Raises SourceError when the path is missing or unreadable or a file exceeds ``max_body``.
    """
    path = Path(path_text)
    try:
        if path.is_dir():
            return _read_folder(path, path_text, max_body)
        data = _read_capped(path, path_text, max_body)
    except FileNotFoundError as exc:
        raise SourceError(path_text, "no such file or folder", kind="not_found") from exc
    except OSError as exc:
        raise SourceError(path_text, f"cannot read: {exc.strerror}", kind="unreadable") from exc
    text = _front_matter_text(data)
    if text is not None:
        return LocalPosts(files=((path.name, text),), skipped=())
    return LocalFeed(data)


def _read_folder(folder: Path, label: str, max_body: int) -> LocalPosts:
    files: list[tuple[str, str]] = []
    skipped: list[str] = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts) or not path.is_file():
            continue
        key = relative.as_posix()
        text = _front_matter_text(_read_capped(path, f"{label}/{key}", max_body))
        if text is None:
            skipped.append(f"{key}: no front matter (a post starts with a --- line)")
        else:
            files.append((key, text))
    return LocalPosts(files=tuple(files), skipped=tuple(skipped))


def _read_capped(path: Path, label: str, max_body: int) -> bytes:
    with path.open("rb") as handle:
        data = handle.read(max_body + 1)
    if len(data) > max_body:
        raise DocumentError(
            label, f"file is larger than max_body ({max_body} bytes)", kind="too_large"
        )
    return data


def _front_matter_text(data: bytes) -> str | None:
    """The text of a front-matter post, or None when ``data`` is not one (a feed, say)."""
    head = data[:64].lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head.startswith(b"---"):
        return None
    return data.decode("utf-8", errors="replace")
