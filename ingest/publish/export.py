"""Writing posts as front-matter files (``ingest export``), atomically and idempotently.

Layouts (DESIGN §8):

- ``hexo``: ``DIR/<category>/<category>/.../<title>.md``, a Hexo ``source/_posts`` tree. The
  folders are the post's source's own categories (``Post.source_categories``: the configured
  categories, then the feed's name; a front-matter file's own categories), never the entry's
  tags, which stay in the front matter. Names are made filesystem-safe; when two posts would
  share a path, the later one (by id) gets a short hash suffix, so names stay stable across runs.
- ``flat``: ``DIR/<16 hex of the content hash>.md``.

A manifest (``DIR/.ingest-export.json``, post id -> path) remembers what was written where, so a
post whose title, content or folders changed moves to its new path instead of leaving a stale
copy, and the folders the move leaves empty are removed.
Files are only rewritten when their bytes change, via a temporary file and a rename.

Integrity:

- Names fit every filesystem and Hexo: a file or folder name has at most ``MAX_NAME_BYTES``
  bytes of UTF-8 (255 with a collision hash and ``.md``), cut between characters, and a name
  that had to be cut ends in a hash of the whole one, so two long names never become one. No
  separators, control characters, ``..``, Windows-reserved names (``CON`` becomes ``CON_``) or
  leading ``.`` and ``_`` (Hexo skips such files and folders in ``_posts``). A post has at
  most ``MAX_FOLDERS`` folders, and a path inside ``DIR`` at most ``MAX_PATH_BYTES``: a post
  with more folders than fit is written higher up, its deepest folders left out (its
  categories stay whole in the front matter).
- A post that cannot be written fails alone: the others are written and the manifest saved,
  then ``ExportError`` names each failure.
- Nothing outside ``DIR`` is ever written or removed. The manifest is a file anyone with write
  access to ``DIR`` can edit, and a folder inside ``DIR`` may be a symbolic link: every path is
  resolved (links included) and must stay inside ``DIR``, or it is reported and left alone.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path, PurePosixPath

from ingest.errors import ExportError
from ingest.publish.render import render_post
from ingest.types import StoredPost

MANIFEST = ".ingest-export.json"
MAX_NAME_BYTES = 200
MAX_FOLDERS = 8
"""Folders above a post: its source's categories are a few (the seed's are three)."""
MAX_PATH_BYTES = 1024
"""Bytes of a path inside the export folder: well below PATH_MAX (1024 on macOS), whatever
folder the export goes to."""
MAX_FAILURES_SHOWN = 10
_SUFFIX_BYTES = len("-12345678.md")
_UNSAFE = re.compile(r'[\x00-\x1f\x7f-\x9f/\\:*?"<>|]+')
_WINDOWS_RESERVED = re.compile(r"(?i)(con|prn|aux|nul|com\d|lpt\d)(\..*)?")


class Layout(StrEnum):
    HEXO = "hexo"
    FLAT = "flat"


@dataclass(frozen=True, slots=True)
class ExportSummary:
    written: int
    unchanged: int
    removed: int


def hexo_body(body: str) -> str:
    """Braces as HTML entities: Hexo runs posts through Nunjucks, where ``{{`` breaks a build."""
    return body.replace("{", "&#123;").replace("}", "&#125;")


def safe_name(text: str, fallback: str = "untitled") -> str:
    """``text`` usable as one file or folder name on Linux, macOS and Windows, and by Hexo;
    distinct long texts stay distinct (see the module docstring)."""
    name = _UNSAFE.sub("-", text).lstrip(" ._-").rstrip(" .-")
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        mark = "-" + hashlib.sha256(name.encode("utf-8")).hexdigest()[:8]
        cut = name.encode("utf-8")[: MAX_NAME_BYTES - len(mark)]
        name = cut.decode("utf-8", errors="ignore").rstrip(" .-") + mark
    if not name:
        return fallback
    return f"{name}_" if _WINDOWS_RESERVED.fullmatch(name) else name


def planned_path(stored: StoredPost, layout: Layout, taken: set[str]) -> str:
    """The relative POSIX path ``stored`` is written to, avoiding ``taken`` (compared casefolded).

    ``taken`` is extended with the returned path.
    """
    post = stored.post
    if layout is Layout.FLAT:
        path = f"{post.content_hash[:16]}.md"
    else:
        stem = safe_name(post.title)
        folders = _fitting(
            [safe_name(c) for c in post.categories[: post.source_categories][:MAX_FOLDERS]],
            MAX_PATH_BYTES - len(stem.encode()) - _SUFFIX_BYTES,
        )
        path = str(PurePosixPath(*folders, f"{stem}.md"))
        if path.casefold() in taken:
            path = str(PurePosixPath(*folders, f"{stem}-{post.content_hash[:8]}.md"))
    taken.add(path.casefold())
    return path


def _fitting(folders: list[str], budget: int) -> list[str]:
    """The leading ``folders`` whose path (separators included) fits in ``budget`` bytes."""
    kept: list[str] = []
    for folder in folders:
        budget -= len(folder.encode()) + 1
        if budget < 0:
            break
        kept.append(folder)
    return kept


def export_posts(posts: Iterable[StoredPost], root: Path, layout: Layout) -> ExportSummary:
    """Write ``posts`` (in id order) under ``root``.

    Raises ExportError when the manifest is unreadable (before writing anything) or, once every
    other post is written, naming each post that could not be.
    """
    manifest_path = root / MANIFEST
    try:
        root.mkdir(parents=True, exist_ok=True)
        root = root.resolve()
        manifest = _read_manifest(manifest_path)
    except (OSError, ValueError) as exc:
        raise ExportError(f"{manifest_path}: cannot read the export manifest: {exc}") from exc
    posts = list(posts)
    exported = {str(stored.id) for stored in posts}
    taken = {path.casefold() for key, path in manifest.items() if key not in exported}
    written = unchanged = removed = 0
    failures: list[str] = []
    new_manifest = dict(manifest)
    for stored in posts:
        relative = planned_path(stored, layout, taken)
        previous = manifest.get(str(stored.id))
        text = render_post(stored.post, body=hexo_body(stored.post.body))
        try:
            changed = write_if_changed(_inside(root, relative), text)
        except ExportError as exc:
            failures.append(f"post {stored.id}: {exc}")
            continue
        written += changed
        unchanged += not changed
        new_manifest[str(stored.id)] = relative
        if previous and previous != relative:
            try:  # the new copy is written and recorded; a failure here is reported once
                removed += _remove(_inside(root, previous), root / relative, root)
            except ExportError as exc:
                failures.append(f"post {stored.id}: {exc}")
    if new_manifest != manifest:
        write_if_changed(manifest_path, json.dumps(new_manifest, ensure_ascii=False, indent=1))
    if failures:
        shown = "; ".join(failures[:MAX_FAILURES_SHOWN])
        more = len(failures) - MAX_FAILURES_SHOWN
        raise ExportError(
            f"{root}: a problem with {len(failures)} of {len(posts)} posts ({written} written, "
            f"{unchanged} unchanged, {removed} old copies removed): {shown}"
            + (f"; and {more} more" if more > 0 else "")
        )
    return ExportSummary(written=written, unchanged=unchanged, removed=removed)


def _read_manifest(path: Path) -> dict[str, str]:
    """The manifest at ``path`` ({} when there is none); ValueError when it is not one."""
    if not path.is_file():
        return {}
    manifest = json.loads(path.read_text("utf-8"))
    if not isinstance(manifest, dict) or not all(isinstance(v, str) for v in manifest.values()):
        raise ValueError("not an object of post ids and paths")
    return manifest


def _inside(root: Path, relative: str) -> Path:
    """``root / relative``; ExportError when its folder, links resolved, is not in ``root``.

    The last component is not resolved: a link there is replaced or removed, never followed.
    """
    path = root / relative
    try:
        inside = path.parent.resolve().is_relative_to(root)
    except (OSError, RuntimeError):  # RuntimeError: a loop of links
        inside = False
    if not inside:
        raise ExportError(f"{path}: is outside the export folder; left alone")
    return path


def write_if_changed(path: Path, text: str) -> bool:
    """Write ``text`` to ``path`` through a temporary file and a rename, unless the file holds
    it already; whether it wrote. ExportError naming ``path`` when it cannot."""
    data = text.encode("utf-8")
    try:
        if path.is_file() and not path.is_symlink() and path.read_bytes() == data:
            return False
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".md")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
            Path(temporary).replace(path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise ExportError(f"{path}: cannot write: {exc.strerror or exc}") from exc
    return True


def _remove(path: Path, current: Path, root: Path) -> int:
    """Remove the old copy at ``path``, unless it is ``current`` (a case-insensitive disk), and
    the folders inside ``root`` it leaves empty (a layout's old folders do not linger)."""
    try:
        if path.samefile(current):
            return 0
        path.unlink()
    except FileNotFoundError:
        return 0
    except OSError as exc:
        raise ExportError(f"{path}: cannot remove the old copy: {exc.strerror}") from exc
    folder = path.parent.resolve()  # links resolved: only folders really inside ``root``
    while folder != root and folder.is_relative_to(root):
        try:
            folder.rmdir()  # refuses a folder that is not empty: the user's files stay
        except OSError:
            break
        folder = folder.parent
    return 1
