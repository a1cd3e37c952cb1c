"""Reading local sources: a feed file, one front-matter post, or a folder of them (DESIGN §2).

A folder is read recursively; hidden files and folders are ignored, and files that do not open
with a ``---`` fence are skipped and counted (a README beside the posts is not an error). Each
post's key, its guid, is its path inside the folder, so editing a file revises its post.

Local sources come only from the config file or ``ingest feeds add --local``, yet a folder's
contents may come from anyone who can write into it (a cloned repository, a synced folder), so
a folder is read with limits:

- only regular files are opened. A FIFO, socket or device is skipped and reported, never
  opened: opening a FIFO waits for a writer forever, and a thread stuck there cannot be
  stopped, not even by ``ingest serve``'s shutdown. Files are opened non-blocking and checked
  again once open, so one swapped in meanwhile is refused too;
- a symbolic link is followed only to a regular file inside the folder; a link out of it (to
  ``~/.ssh``, ``/etc``) or to a folder is skipped and reported, never read;
- each file is at most ``max_body`` bytes (a larger one is skipped and reported); the folder
  holds at most ``MAX_FOLDER_FILES`` files and folders and ``MAX_FOLDER_BYTES`` of posts, or the
  source fails, naming the cap (a source pointed at ``/`` by mistake stops early).

A file or folder replaced while it is read (a rename between the check and the open) is outside
what these checks defend against; the last path component is never followed at open.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from ingest.errors import DocumentError, ErrorKind, SourceError

MAX_FOLDER_FILES = 10_000
"""Files and folders looked at in one local folder source (hidden ones are not counted)."""
MAX_FOLDER_BYTES = 256 * 1024 * 1024
"""Bytes of posts read from one local folder source; all of them are held in memory at once."""
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)  # O_NONBLOCK: a FIFO opens at once
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


@dataclass(frozen=True, slots=True)
class LocalFeed:
    """A local file holding a feed document."""

    data: bytes


@dataclass(frozen=True, slots=True)
class LocalPosts:
    """Front-matter files: (key, text) pairs, and the files that were skipped, with why."""

    files: tuple[tuple[str, str], ...]
    skipped: tuple[str, ...]


class _NotRegularError(Exception):
    """The path is not a regular file; the message says what it is ("a FIFO")."""


class _SkippedError(Exception):
    """A folder entry that is not read; the message says why."""


def read_local(
    path_text: str,
    *,
    max_body: int,
    max_files: int = MAX_FOLDER_FILES,
    max_total: int = MAX_FOLDER_BYTES,
) -> LocalFeed | LocalPosts:
    """The contents of the local source at ``path_text`` (an absolute path).

    Raises SourceError when the path is missing, unreadable or not a regular file or folder,
    when a single file exceeds ``max_body``, or when a folder exceeds ``max_files`` entries or
    ``max_total`` bytes.
    """
    path = Path(path_text)
    try:
        if path.is_dir():
            return _read_folder(path, path_text, max_body, max_files, max_total)
        data = _read_regular(path, max_body, follow=True)
    except FileNotFoundError as exc:
        raise SourceError(path_text, "no such file or folder", kind=ErrorKind.NOT_FOUND) from exc
    except _NotRegularError as exc:
        raise SourceError(
            path_text, f"not a regular file or folder ({exc}); not read", kind=ErrorKind.NOT_REGULAR
        ) from exc
    except OSError as exc:
        raise SourceError(
            path_text, f"cannot read: {exc.strerror}", kind=ErrorKind.UNREADABLE
        ) from exc
    if data is None:
        raise DocumentError(
            path_text, f"file is larger than max_body ({max_body} bytes)", kind=ErrorKind.TOO_LARGE
        )
    text = _front_matter_text(data)
    if text is not None:
        return LocalPosts(files=((path.name, text),), skipped=())
    return LocalFeed(data)


def _read_folder(
    folder: Path, label: str, max_body: int, max_files: int, max_total: int
) -> LocalPosts:
    root = folder.resolve()
    files: list[tuple[str, str]] = []
    skipped: list[str] = []
    total = 0
    for entry in sorted(_entries(folder, label, max_files), key=lambda e: Path(e.path)):
        key = Path(entry.path).relative_to(folder).as_posix()
        try:
            data = _read_entry(entry, root, max_body)
        except _SkippedError as exc:
            skipped.append(f"{key}: {exc}")
            continue
        except OSError as exc:
            skipped.append(f"{key}: cannot read: {exc.strerror}")
            continue
        if data is None:
            skipped.append(f"{key}: larger than max_body ({max_body} bytes); not read")
            continue
        text = _front_matter_text(data)
        if text is None:
            skipped.append(f"{key}: no front matter (a post starts with a --- line)")
            continue
        total += len(data)
        if total > max_total:
            raise _over_cap(label, f"{max_total} bytes of posts")
        files.append((key, text))
    return LocalPosts(files=tuple(files), skipped=tuple(skipped))


def _entries(folder: Path, label: str, max_files: int) -> list[os.DirEntry[str]]:
    """Every entry under ``folder`` but folders and hidden names, without following links.

    Stops with DocumentError past ``max_files`` entries, folders included, before reading any.
    """
    pending = [folder]
    seen = 0
    found: list[os.DirEntry[str]] = []
    while pending:
        with os.scandir(pending.pop()) as listing:
            for entry in listing:
                if entry.name.startswith("."):
                    continue
                seen += 1
                if seen > max_files:
                    raise _over_cap(label, f"{max_files} files and folders")
                if entry.is_dir(follow_symlinks=False):
                    pending.append(Path(entry.path))
                else:
                    found.append(entry)
    return found


def _read_entry(entry: os.DirEntry[str], root: Path, max_body: int) -> bytes | None:
    """A folder entry's bytes (None above ``max_body``); _SkippedError when it is not read."""
    path = Path(entry.path)
    if entry.is_symlink():
        path = path.resolve()
        if not path.is_relative_to(root):
            raise _SkippedError("a link out of the folder; not followed")
        if not path.exists():
            raise _SkippedError("a link to nothing; not read")
        if path.is_dir():
            raise _SkippedError("a link to a folder; not followed")
    try:
        return _read_regular(path, max_body, follow=False)
    except _NotRegularError as exc:
        raise _SkippedError(f"not a regular file ({exc}); not read") from exc


def _read_regular(path: Path, max_body: int, *, follow: bool) -> bytes | None:
    """The bytes of the regular file at ``path``, None when it holds more than ``max_body``.

    Anything else raises _NotRegularError before it is opened, or right after a non-blocking
    open when it was swapped in meanwhile (its bytes are never read).
    """
    kind = _file_kind(path.stat(follow_symlinks=follow).st_mode)
    if kind:
        raise _NotRegularError(kind)
    with os.fdopen(os.open(path, _READ_FLAGS | (0 if follow else _NOFOLLOW)), "rb") as handle:
        status = os.fstat(handle.fileno())
        kind = _file_kind(status.st_mode)
        if kind:
            raise _NotRegularError(kind)
        if status.st_size > max_body:
            return None
        data = handle.read(max_body + 1)
    return None if len(data) > max_body else data


def _file_kind(mode: int) -> str | None:
    """What a non-regular file is ("a FIFO"), None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    kinds = (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISDIR, "a folder"),
    )
    return next((name for test, name in kinds if test(mode)), "a special file")


def _over_cap(label: str, cap: str) -> DocumentError:
    return DocumentError(
        label,
        f"holds more than {cap}, the most a local folder source reads; "
        "split it into several sources",
        kind=ErrorKind.TOO_LARGE,
    )


def _front_matter_text(data: bytes) -> str | None:
    """The text of a front-matter post, or None when ``data`` is not one (a feed, say)."""
    head = data[:64].lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head.startswith(b"---"):
        return None
    return data.decode("utf-8", errors="replace")
