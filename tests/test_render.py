"""Front-matter rendering reads back as exactly the stored values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import frontmatter
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.publish.render import render_post, rfc2822, yaml_scalar
from ingest.types import Post

BASE = Post(
    title="t",
    categories=("a",),
    headimg=None,
    author="me",
    comments=False,
    published=datetime(2022, 6, 4, 7, 0, 48, tzinfo=UTC),
    thumbnail=None,
    body="<p>b</p>",
    guid=None,
    link=None,
    content_hash="0" * 64,
)


def test_dates_are_rfc2822_in_gmt() -> None:
    plus_eight = datetime(2022, 6, 4, 15, 0, 48, tzinfo=timezone(timedelta(hours=8)))
    assert rfc2822(plus_eight) == "Sat, 04 Jun 2022 07:00:48 GMT"


def test_optional_images_are_omitted_not_empty() -> None:
    text = render_post(BASE)
    assert "headimg" not in text
    assert "thumbnail" not in text
    assert list(frontmatter.loads(text).metadata) == [
        "title",
        "categories",
        "author",
        "comments",
        "date",
    ]


@pytest.mark.parametrize(
    "value",
    [
        "cnBeta",
        "true",
        "null",
        "123",
        "1.5",
        "- item",
        "a: b",
        "#tag",
        "C++ & more",
        "it's",
        " x",
        "",
    ],
)
def test_yaml_scalars_read_back_as_the_same_string(value: str) -> None:
    loaded = frontmatter.loads(f"---\nauthor: {yaml_scalar(value)}\n---\n").metadata["author"]
    assert loaded == value


_text = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cs", "Cc", "Zl", "Zp"), blacklist_characters="\ufeff\x85"
    ),
    min_size=1,
)


@given(title=_text, author=_text, categories=st.lists(_text, max_size=4))
def test_any_post_renders_to_front_matter_that_parses_back(
    title: str, author: str, categories: list[str]
) -> None:
    post = Post(
        title=title,
        categories=tuple(categories),
        headimg="https://x.example/a'b.png",
        author=author,
        comments=True,
        published=BASE.published,
        thumbnail="https://x.example/a'b.png",
        body="<p>body</p>",
        guid=None,
        link=None,
        content_hash="0" * 64,
    )

    meta = frontmatter.loads(render_post(post)).metadata

    assert meta["title"] == title
    assert meta["author"] == author
    assert (meta["categories"] or []) == categories
    assert meta["headimg"] == meta["thumbnail"] == "https://x.example/a'b.png"
    assert meta["comments"] is True
    assert meta["date"] == "Sat, 04 Jun 2022 07:00:48 GMT"
