"""Export layouts, Hexo-safe bodies, stable names and idempotent writes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ingest.errors import ExportError
from ingest.identity import content_hash
from ingest.publish.export import MANIFEST, Layout, export_posts, safe_name
from ingest.types import Post, StoredPost
from tests.conftest import CNBETA, SEED, write_config


def stored(
    post_id: int,
    title: str,
    body: str,
    categories: tuple[str, ...] = ("A", "B"),
    source_categories: int | None = None,
) -> StoredPost:
    """A stored post; its categories are all its source's unless ``source_categories`` says."""
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
            source_categories=len(categories) if source_categories is None else source_categories,
        ),
        source=None,
        revision=1,
        source_id=None,
        first_seen=datetime(2024, 1, 1, tzinfo=UTC),
        updated=datetime(2024, 1, 1, tzinfo=UTC),
    )


def files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.md"))


def folders(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_dir())


def tagged_feed(path: Path, titles: list[str], tags: list[str]) -> Path:
    """An RSS file titled "Site" whose items (one per title) each carry every one of ``tags``."""
    categories = "".join(f"<category>{tag}</category>" for tag in tags)
    items = "".join(
        f"<item><title>{title}</title><guid>{index}</guid><description>{title} text"
        f"</description>{categories}</item>"
        for index, title in enumerate(titles)
    )
    path.write_text(
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Site</title>'
        f"<link>https://site.example/</link>{items}</channel></rss>",
        encoding="utf-8",
    )
    return path


def test_hexo_folders_are_the_sources_categories_and_never_the_entries_tags(
    tmp_path: Path, cli_for: Any
) -> None:
    tags = [f"标签 {index} " + "很长的标签" * 20 for index in range(40)]  # 40 tags of 316 bytes
    feed = tagged_feed(tmp_path / "feed.xml", ["First", "Second", "Third"], tags)
    cli = cli_for(write_config(tmp_path, [{"url": str(feed), "categories": ["Group"]}]))
    assert cli("run").exit_code == 0
    site = tmp_path / "site"

    result = cli("export", "--layout", "hexo", str(site))

    assert result.exit_code == 0, result.stderr
    assert folders(site) == ["Group", "Group/Site"]
    assert files(site) == ["Group/Site/First.md", "Group/Site/Second.md", "Group/Site/Third.md"]
    front_matter = (site / "Group" / "Site" / "First.md").read_text("utf-8").split("---")[1]
    assert all(f" - {tag}\n" in front_matter for tag in tags)  # the tags stay in the post


def test_the_seed_is_exported_into_its_group_site_and_route(tmp_path: Path, cli_for: Any) -> None:
    cli = cli_for(write_config(tmp_path, [{"url": str(SEED.parent)}]))
    assert cli("run").exit_code == 0

    assert cli("export", str(tmp_path / "site")).exit_code == 0

    assert files(tmp_path / "site") == [
        "新媒体/cnBeta/最新/Nature 证实：学术界刮起离职潮 大批学者涌向工业界.md"
    ]


def test_long_source_categories_make_short_distinct_folders(tmp_path: Path, cli_for: Any) -> None:
    shared = "长" * 100  # 300 bytes: both names must be cut, and stay two folders
    sources = [
        {"url": str(tagged_feed(tmp_path / f"{end}.xml", [f"Post {end}"], [])), "categories": c}
        for end, c in (("a", [f"{shared}A", "_hidden"]), ("b", [f"{shared}B", "CON"]))
    ]
    cli = cli_for(write_config(tmp_path, sources))
    assert cli("run").exit_code == 0
    site = tmp_path / "site"

    assert cli("export", str(site)).exit_code == 0

    written = files(site)
    assert len({path.split("/")[0] for path in written}) == 2
    assert sorted(path.split("/")[1:] for path in written) == [
        ["CON_", "Site", "Post b.md"],
        ["hidden", "Site", "Post a.md"],
    ]
    assert all(len(part.encode()) <= 255 for path in written for part in path.split("/"))


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


def test_a_post_moved_out_of_its_tag_folders_leaves_none_behind(tmp_path: Path) -> None:
    tagged = ("Group", "Site", "tag 1", "tag 2")
    export_posts([stored(1, "Post", "<p>p</p>", tagged)], tmp_path, Layout.HEXO)
    (tmp_path / "Group" / "Site" / "tag 1" / "mine.txt").write_text("mine", encoding="utf-8")

    summary = export_posts(
        [stored(1, "Post", "<p>p</p>", tagged, source_categories=2)], tmp_path, Layout.HEXO
    )

    assert summary.removed == 1
    assert folders(tmp_path) == ["Group", "Group/Site", "Group/Site/tag 1"]  # not empty
    assert files(tmp_path) == ["Group/Site/Post.md"]


def test_names_are_safe_on_every_filesystem() -> None:
    assert safe_name('a/b\\c:d*e?f"g<h>i|j') == "a-b-c-d-e-f-g-h-i-j"
    assert safe_name("...") == "untitled"
    assert safe_name("CON") == "CON_"
    assert len(safe_name("长" * 200).encode()) <= 200
    assert safe_name("长" * 100 + "A") != safe_name("长" * 100 + "B")
    assert safe_name("长" * 100 + "A").startswith("长" * 63)  # cut between characters
    assert safe_name("_drafts") == "drafts"  # Hexo skips names starting with _ or .
    assert safe_name("a\x85b") == "a-b"
    assert safe_name("Nature 证实：学术界") == "Nature 证实：学术界"


def test_exporting_a_subset_then_everything_writes_each_post_once(tmp_path: Path) -> None:
    old = stored(1, "Old", "<p>o</p>")
    new = stored(2, "New", "<p>n</p>")
    export_posts([new], tmp_path, Layout.HEXO)

    summary = export_posts([old, new], tmp_path, Layout.HEXO)

    assert files(tmp_path) == ["A/B/New.md", "A/B/Old.md"]
    assert (summary.written, summary.unchanged) == (1, 1)


def test_a_post_with_very_long_categories_and_title_is_written_with_the_others(
    tmp_path: Path,
) -> None:
    deep = tuple(f"{index}{'类' * 80}" for index in range(30))  # 30 folders of 241 bytes
    posts = [
        stored(1, "First", "<p>1</p>"),
        stored(2, "长" * 300, "<p>2</p>", categories=deep),
        stored(3, "Third", "<p>3</p>"),
    ]

    summary = export_posts(posts, tmp_path, Layout.HEXO)

    written = files(tmp_path)
    assert (summary.written, len(written)) == (3, 3)
    (long_path,) = [path for path in written if path.startswith("0")]
    assert len(long_path.encode()) <= 1024
    assert all(len(part.encode()) <= 255 for part in long_path.split("/"))
    assert long_path.split("/")[:3] == [safe_name(c) for c in deep[:3]]


def test_a_post_that_cannot_be_written_fails_alone_and_is_reported(tmp_path: Path) -> None:
    (tmp_path / "A").write_text("a file where a folder belongs", encoding="utf-8")
    posts = [stored(1, "Blocked", "<p>1</p>"), stored(2, "Free", "<p>2</p>", categories=("C",))]

    with pytest.raises(ExportError) as failed:
        export_posts(posts, tmp_path, Layout.HEXO)

    assert str(failed.value).startswith(
        f"{tmp_path}: a problem with 1 of 2 posts (1 written, 0 unchanged, 0 old copies "
        f"removed): post 1: {tmp_path / 'A' / 'B' / 'Blocked.md'}: cannot write: "
    )
    assert files(tmp_path) == ["C/Free.md"]
    assert json.loads((tmp_path / MANIFEST).read_text("utf-8")) == {"2": "C/Free.md"}


def test_export_exits_1_naming_the_failed_post_and_writes_the_rest(
    tmp_path: Path, cli_for: Any
) -> None:
    posts = tmp_path / "posts"
    posts.mkdir()
    (posts / "p.md").write_text("---\ntitle: Mine\n---\n<p>mine</p>\n", encoding="utf-8")
    cli = cli_for(
        write_config(
            tmp_path,
            [{"url": str(CNBETA), "categories": ["Blocked"]}, {"url": str(posts)}],
        )
    )
    cli("run")
    site = tmp_path / "site"
    site.mkdir()
    (site / "Blocked").write_text("in the way", encoding="utf-8")

    result = cli("export", str(site))

    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {site}: a problem with 1 of 2 posts (1 written, ")
    (blocked,) = [
        p["id"] for p in cli("entries", "list", "--json").json() if "Blocked" in p["categories"]
    ]
    assert f"post {blocked}: " in result.stderr  # ids follow the order sources finished in
    assert files(site) == ["Mine.md"]


@pytest.mark.parametrize(
    "entry",
    ["../outside/victim.md", "{outside}/victim.md", "link/victim.md", "A/../../outside", "loop/x"],
)
def test_an_edited_manifest_never_touches_a_file_outside_the_export_folder(
    tmp_path: Path, entry: str
) -> None:
    root = tmp_path / "site"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.md").write_text("keep me", encoding="utf-8")
    export_posts([stored(1, "Old", "<p>o</p>")], root, Layout.HEXO)
    (root / "link").symlink_to(outside)
    (root / "loop").symlink_to(root / "loop")
    (root / MANIFEST).write_text(json.dumps({"1": entry.format(outside=outside)}), "utf-8")

    with pytest.raises(ExportError) as failed:
        export_posts([stored(1, "New", "<p>n</p>")], root, Layout.HEXO)

    assert (outside / "victim.md").read_text("utf-8") == "keep me"
    assert sorted(p.name for p in outside.iterdir()) == ["victim.md"]
    assert "is outside the export folder; left alone" in str(failed.value)
    assert "A/B/New.md" in files(root)
    assert export_posts([stored(1, "New", "<p>n</p>")], root, Layout.HEXO).unchanged == 1


def test_a_folder_linked_out_of_the_export_folder_is_never_written_through(
    tmp_path: Path,
) -> None:
    root = tmp_path / "site"
    outside = tmp_path / "outside"
    outside.mkdir()
    root.mkdir()
    (root / "A").symlink_to(outside)

    with pytest.raises(ExportError) as failed:
        export_posts([stored(1, "Post", "<p>p</p>")], root, Layout.HEXO)

    assert list(outside.iterdir()) == []
    assert f"{root / 'A' / 'B' / 'Post.md'}: is outside the export folder" in str(failed.value)


@pytest.mark.parametrize("manifest", ["[1, 2]", '{"1": 5}', "not json"])
def test_a_manifest_that_is_not_one_is_refused(tmp_path: Path, manifest: str) -> None:
    (tmp_path / MANIFEST).write_text(manifest, encoding="utf-8")
    with pytest.raises(ExportError, match="cannot read the export manifest"):
        export_posts([stored(1, "Post", "<p>p</p>")], tmp_path, Layout.HEXO)
    assert files(tmp_path) == []
