"""Export layouts, Hexo-safe bodies, stable names and idempotent writes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from ingest.export import Layout, export_posts, safe_name
from ingest.identity import content_hash
from ingest.types import Post, StoredPost


def stored(
    post_id: int, title: str, body: str, categories: tuple[str, ...] = ("A", "B")
) -> StoredPost:
    return StoredPost(
        id=post_id,
        post=Post(
            title=title,
            categories=categories,
            headimg=None,
            author="me",
            comments=False,
            published=datetime(2024, 1, 1, tzinfo=UTC),
            thumbnail=None,
            body=body,
            guid=None,
            link=None,
            content_hash=content_hash(title, body),
        ),
        source=None,
        revision=1,
    )


def files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.md"))


def test_hexo_layout_nests_categories_and_escapes_braces(tmp_path: Path) -> None:
    export_posts([stored(1, "Hello", "<p>{{ not a template }}</p>")], tmp_path, Layout.HEXO)

    text = (tmp_path / "A" / "B" / "Hello.md").read_text("utf-8")
    assert "<p>&#123;&#123; not a template &#125;&#125;</p>" in text
    assert "{" not in text.split("---\n", 2)[2]


def test_colliding_titles_get_a_short_hash_and_keep_their_names_on_rerun(tmp_path: Path) -> None:
    posts = [stored(1, "Same", "<p>one</p>"), stored(2, "Same", "<p>two</p>")]

    export_posts(posts, tmp_path, Layout.HEXO)
    first = files(tmp_path)
    summary = export_posts(posts, tmp_path, Layout.HEXO)

    hashed = f"A/B/Same-{posts[1].post.content_hash[:8]}.md"
    assert first == sorted(["A/B/Same.md", hashed])
    assert files(tmp_path) == first
    assert (summary.written, summary.unchanged) == (0, 2)


def test_flat_layout_names_files_by_content_hash(tmp_path: Path) -> None:
    post = stored(1, "Title / with: odd*chars?", "<p>x</p>")
    export_posts([post], tmp_path, Layout.FLAT)
    assert files(tmp_path) == [f"{post.post.content_hash[:16]}.md"]


def test_a_revised_post_moves_and_leaves_no_stale_copy(tmp_path: Path) -> None:
    export_posts([stored(1, "Old title", "<p>x</p>")], tmp_path, Layout.HEXO)

    summary = export_posts([stored(1, "New title", "<p>y</p>")], tmp_path, Layout.HEXO)

    assert files(tmp_path) == ["A/B/New title.md"]
    assert summary.removed == 1


def test_names_are_safe_on_every_filesystem() -> None:
    assert safe_name('a/b\\c:d*e?f"g<h>i|j') == "a-b-c-d-e-f-g-h-i-j"
    assert safe_name("...") == "untitled"
    assert safe_name("CON") == "CON_"
    assert len(safe_name("长" * 200).encode()) <= 200
    assert safe_name("Nature 证实：学术界") == "Nature 证实：学术界"


def test_exporting_a_subset_then_everything_writes_each_post_once(tmp_path: Path) -> None:
    old = stored(1, "Old", "<p>o</p>")
    new = stored(2, "New", "<p>n</p>")
    export_posts([new], tmp_path, Layout.HEXO)

    summary = export_posts([old, new], tmp_path, Layout.HEXO)

    assert files(tmp_path) == ["A/B/New.md", "A/B/Old.md"]
    assert (summary.written, summary.unchanged) == (1, 1)
