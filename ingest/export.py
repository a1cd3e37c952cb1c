"""Writing posts as front-matter files (``ingest export``), atomically and idempotently.

Layouts (DESIGN §8):

- ``hexo``: ``DIR/<category>/<category>/.../<title>.md``, a Hexo ``source/_posts`` tree. Names are
  made filesystem-safe; when two posts would share a path, the later one (by id) gets a short
  hash suffix, so names stay stable across runs.
- ``flat``: ``DIR/<16 hex of the content hash>.md``.

A manifest (``DIR/.ingest-export.json``, post id -> path) remembers what was written where, so a
post whose title or content changed moves to its new path instead of leaving a stale copy.
Files are only rewritten when their bytes change, via a temporary file and a rename.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path, PurePosixPath

from ingest.errors import ExportError
from ingest.render import render_post
from ingest.types import StoredPost

MANIFEST = ".ingest-export.json"
MAX_NAME_BYTES = 200
_UNSAFE = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]+')
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
    """``text`` usable as one file or folder name on Linux, macOS and Windows."""
    name = _UNSAFE.sub("-", text).strip(" .-")
    encoded = name.encode("utf-8")[:MAX_NAME_BYTES]
    name = encoded.decode("utf-8", errors="ignore").rstrip(" .")
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
        folders = [safe_name(c) for c in post.categories]
        stem = safe_name(post.title)
        path = str(PurePosixPath(*folders, f"{stem}.md"))
        if path.casefold() in taken:
            path = str(PurePosixPath(*folders, f"{stem}-{post.content_hash[:8]}.md"))
    taken.add(path.casefold())
    return path


def export_posts(posts: Iterable[StoredPost], root: Path, layout: Layout) -> ExportSummary:
    """Write ``posts`` (in id order) under ``root``; raises ExportError naming the file."""
    manifest_path = root / MANIFEST
    try:
        root.mkdir(parents=True, exist_ok=True)
        manifest: dict[str, str] = (
            json.loads(manifest_path.read_text("utf-8")) if manifest_path.is_file() else {}
        )
    except (OSError, ValueError) as exc:
        raise ExportError(f"{manifest_path}: cannot read the export manifest: {exc}") from exc
    posts = list(posts)
    exported = {str(stored.id) for stored in posts}
    taken = {path.casefold() for key, path in manifest.items() if key not in exported}
    written = unchanged = removed = 0
    new_manifest = dict(manifest)
    for stored in posts:
        relative = planned_path(stored, layout, taken)
        previous = manifest.get(str(stored.id))
        if previous and previous != relative:
            removed += _remove(root / previous)
        body = hexo_body(stored.post.body)
        if _write_if_changed(root / relative, render_post(stored.post, body=body)):
            written += 1
        else:
            unchanged += 1
        new_manifest[str(stored.id)] = relative
    if new_manifest != manifest:
        _write_if_changed(manifest_path, json.dumps(new_manifest, ensure_ascii=False, indent=1))
    return ExportSummary(written=written, unchanged=unchanged, removed=removed)


def _write_if_changed(path: Path, text: str) -> bool:
    data = text.encode("utf-8")
    try:
        if path.is_file() and path.read_bytes() == data:
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


def _remove(path: Path) -> int:
    try:
        path.unlink()
    except FileNotFoundError:
        return 0
    except OSError as exc:
        raise ExportError(f"{path}: cannot remove the old copy: {exc.strerror}") from exc
    return 1
