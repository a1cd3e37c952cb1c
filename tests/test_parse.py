"""Feed documents in, posts out: golden pairs per format, hostile XML, encodings, non-feeds."""

from __future__ import annotations

import json
import subprocess
import sys
import tracemalloc
from datetime import UTC, datetime
from typing import Any

import pytest

from ingest.digest import fast
from ingest.digest.document import digest_feed
from ingest.digest.parse import parse_feed
from ingest.errors import DocumentError, ErrorKind
from ingest.publish.render import post_json
from ingest.types import Digest, SourceSpec
from tests.conftest import DATA

GOLDEN = DATA / "golden"
NOW = datetime(2025, 1, 1, tzinfo=UTC)


def _digest(data: bytes, url: str = "", **spec: Any) -> Digest:
    return digest_feed(
        data, spec=SourceSpec(url=url or "test-feed", **spec), comments=False, now=NOW, url=url
    )


@pytest.mark.parametrize("name", ["rss2.xml", "rss1.xml", "atom.xml", "jsonfeed.json"])
def test_golden_pair(name: str) -> None:
    expected = json.loads(
        (GOLDEN / f"{name.split('.', maxsplit=1)[0]}.expected.json").read_text("utf-8")
    )

    digest = _digest((GOLDEN / name).read_bytes(), expected["url"], categories=("Golden",))

    posts = []
    for post in digest.posts:
        rendered = post_json(post, post_id=0, source=expected["url"], revision=1)
        posts.append({k: v for k, v in rendered.items() if k not in ("id", "source", "revision")})
    assert posts == expected["posts"]
    assert digest.feed_title == expected["feed_title"]
    assert list(digest.skipped) == expected["skipped"]


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE rss [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<rss version="2.0"><channel><title>Laughs</title>
<item><title>Bomb &lol9;</title><guid>b1</guid><description>&lol9;</description></item>
</channel></rss>"""


def _quadratic_blowup(entity_kib: int = 100, references: int = 3000) -> bytes:
    """One large internal entity referenced thousands of times (~300 MB if expanded)."""
    big = "A" * (entity_kib * 1024)
    refs = "&big;" * references
    return (
        f'<?xml version="1.0"?>\n<!DOCTYPE rss [\n<!ENTITY big "{big}">\n]>\n'
        f'<rss version="2.0"><channel><title>Quadratic</title><item><title>Q</title>'
        f"<guid>q1</guid><description>{refs}</description></item></channel></rss>"
    ).encode()


@pytest.mark.parametrize(
    "document",
    [
        BILLION_LAUGHS,
        _quadratic_blowup(),
        _quadratic_blowup().decode().encode("utf-16"),  # the DOCTYPE hidden in UTF-16
        BILLION_LAUGHS.replace(b"<!DOCTYPE rss [", b"<!-- c -->\n<!DOCTYPE rss ["),
    ],
    ids=["billion-laughs", "quadratic-blowup", "quadratic-utf16", "after-comment"],
)
def test_entity_bombs_are_not_expanded(document: bytes) -> None:
    tracemalloc.start()
    try:
        digest = _digest(document)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert peak < 40 * 1024 * 1024  # the expansion would need hundreds of MB
    for post in digest.posts:
        assert len(post.body) < 64 * 1024
        assert "lollol" not in post.body + post.title
        assert "A" * 1000 not in post.body


def test_an_html_page_is_an_error_that_points_to_the_real_feed() -> None:
    page = b"""<!DOCTYPE html><html><head><title>Blog</title>
    <link rel="alternate" type="application/rss+xml" href="/feed.xml">
    </head><body>hi</body></html>"""

    with pytest.raises(DocumentError) as caught:
        parse_feed(page, source="https://blog.example/", url="https://blog.example/")

    assert caught.value.kind == "html_page"
    assert "https://blog.example/feed.xml" in str(caught.value)
    assert str(caught.value).startswith("https://blog.example/: ")


@pytest.mark.parametrize(
    ("document", "kind"),
    [
        (b"", ErrorKind.EMPTY),
        (b"   \n", ErrorKind.EMPTY),
        (b"<note>not a feed</note>", ErrorKind.NOT_A_FEED),
    ],
)
def test_non_feeds_are_errors_naming_the_source(document: bytes, kind: ErrorKind) -> None:
    with pytest.raises(DocumentError) as caught:
        parse_feed(document, source="feeds/odd.xml")
    assert caught.value.kind == kind
    assert "feeds/odd.xml" in str(caught.value)


def test_json_nested_deeper_than_the_parser_goes_is_an_error_naming_the_source() -> None:
    deep = b'{"items": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}"
    with pytest.raises(DocumentError) as caught:
        parse_feed(deep, source="feeds/deep.json")
    assert caught.value.kind == "not_a_feed"
    assert str(caught.value) == (
        "feeds/deep.json: invalid JSON: nested too deeply for a feed (arrays and objects "
        "inside one another thousands of levels down)"
    )


def test_xhtml_doctype_before_an_rss_root_is_still_a_feed() -> None:
    document = (
        b'<?xml version="1.0"?><!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0//EN" "x">'
        b"<rss><channel><title>found</title><item><title>t</title></item></channel></rss>"
    )
    assert parse_feed(document, source="x").title == "found"


def _rss(encoding: str, title: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="{encoding}"?><rss version="2.0"><channel>'
        f"<title>{title}</title><item><title>{title}</title><guid>1</guid></item>"
        "</channel></rss>"
    ).encode(encoding)


@pytest.mark.parametrize(
    ("encoding", "title"),
    [
        ("gb2312", "学术界刮起离职潮"),
        ("gbk", "學術界"),
        ("big5", "學術界刮起離職潮"),
        ("shift_jis", "日本語のフィード"),
        ("windows-1251", "Пример ленты"),
        ("euc-kr", "한국어 피드"),
        ("iso-8859-1", "Café crème"),
    ],
)
def test_legacy_encodings_come_out_readable(encoding: str, title: str) -> None:
    assert _digest(_rss(encoding, title)).posts[0].title == title


def test_declared_encoding_wins_over_a_wrong_http_charset() -> None:
    gbk = _rss("gbk", "新媒体")
    utf8 = _rss("utf-8", "Ünïcödé ✓")
    assert parse_feed(gbk, source="x", http_charset="utf-8").title == "新媒体"
    assert parse_feed(utf8, source="x", http_charset="windows-1252").title == "Ünïcödé ✓"


def test_utf8_bytes_labelled_latin1_are_read_as_utf8() -> None:
    mislabelled = _rss("utf-8", "Café 测试").replace(b'encoding="utf-8"', b'encoding="ISO-8859-1"')
    assert parse_feed(mislabelled, source="x").title == "Café 测试"


def test_a_bad_entry_is_skipped_and_counted_the_rest_kept() -> None:
    document = b"""<rss version="2.0"><channel><title>C</title>
    <item><guid isPermaLink="false">empty</guid></item>
    <item><title>Good</title><guid>good</guid></item></channel></rss>"""

    digest = _digest(document)

    assert [p.title for p in digest.posts] == ["Good"]
    assert len(digest.skipped) == 1
    assert "empty" in digest.skipped[0]


def test_a_feed_whose_every_entry_is_bad_is_an_error() -> None:
    document = b"""<rss version="2.0"><channel><title>C</title>
    <item><guid isPermaLink="false">a</guid></item>
    <item><guid isPermaLink="false">b</guid></item></channel></rss>"""

    with pytest.raises(DocumentError, match="no usable entries"):
        _digest(document, "https://x.example/feed")


def test_local_feed_relative_links_resolve_against_the_channel_link() -> None:
    document = b"""<rss version="2.0"><channel><title>C</title><link>https://site.example/blog/</link>
    <item><title>T</title><guid>1</guid><description>&lt;a href="p/1"&gt;x&lt;/a&gt;</description>
    </item></channel></rss>"""
    assert 'href="https://site.example/blog/p/1"' in _digest(document).posts[0].body


# --- fidelity: what a document says is what its posts say ------------------------------------


def _rss_items(*items: str, namespaces: str = "") -> bytes:
    return (
        f'<?xml version="1.0"?><rss version="2.0" {namespaces}><channel><title>C</title>'
        f"<link>https://site.example/</link>{''.join(items)}</channel></rss>"
    ).encode()


def test_an_items_own_elements_win_over_same_named_ones_nested_deeper() -> None:
    document = _rss_items(
        "<item><title>Own title</title><link>https://site.example/own</link><guid>g1</guid>"
        '<description>&lt;p&gt;The long body &lt;img src="https://site.example/a.png"&gt;&lt;/p&gt;'
        "</description><pubDate>Sat, 04 Jun 2022 07:00:48 GMT</pubDate>"
        "<social><description>one-line blurb</description><title>Share title</title>"
        "<link>https://share.example/</link><author>Someone Else</author>"
        '<enclosure url="https://share.example/a.mp3" type="audio/mpeg"/>'
        "<category>shared</category></social></item>"
    )

    [post] = _digest(document).posts

    assert post.title == "Own title"
    assert post.body.startswith("<p>The long body")
    assert post.headimg == "https://site.example/a.png"
    assert post.link == "https://site.example/own"
    assert post.author == "C"
    assert "shared" not in post.categories
    assert post.media == ()


def test_nested_elements_that_are_the_items_own_structure_are_still_read() -> None:
    document = _rss_items(
        "<item><title>T</title><guid>g1</guid>"
        "<description>&lt;p&gt;body&lt;/p&gt;</description>"
        "<author><name>Ann Author</name></author>"
        '<source url="https://other.example/feed">Other</source></item>'
    )

    [post] = _digest(document).posts

    assert post.author == "Ann Author"
    assert post.body == "<p>body</p>"


def test_an_empty_href_is_no_link() -> None:
    document = b"""<?xml version="1.0"?>
    <feed xmlns="http://www.w3.org/2005/Atom" xml:base="https://site.example/blog/"><title>C</title>
    <entry><id>tag:site.example,2024:1</id><title>Hello</title><link href=""/>
    <content>body</content></entry></feed>"""

    [post] = _digest(document, "https://site.example/feed").posts

    assert post.link is None


@pytest.mark.parametrize(
    "document",
    [
        b"""<feed xmlns="http://www.w3.org/2005/Atom"><title>C</title>
        <entry><id>tag:site.example,2024:1</id></entry>
        <entry><id>2024-1</id></entry><entry><id>ok</id><title>Kept</title></entry></feed>""",
        _rss_items(
            "<item><guid>tag:site.example,2024:1</guid></item><item><guid>2024-1</guid></item>",
            "<item><guid>ok</guid><title>Kept</title></item>",
        ),
    ],
    ids=["atom", "rss"],
)
def test_an_id_that_is_no_web_url_is_never_a_link_and_an_entry_with_nothing_is_skipped(
    document: bytes,
) -> None:
    digest = _digest(document, "https://site.example/feed")

    assert [(p.title, p.link) for p in digest.posts] == [("Kept", None)]
    assert len(digest.skipped) == 2
    assert all("has no title, no text and no link" in reason for reason in digest.skipped)


def test_an_rss_guid_that_is_a_web_url_is_the_permalink() -> None:
    document = _rss_items("<item><guid>https://site.example/p/1</guid><title>T</title></item>")

    assert _digest(document).posts[0].link == "https://site.example/p/1"


@pytest.mark.parametrize(
    ("document", "authors"),
    [
        (
            _rss_items(
                "<item><title>T</title><dc:creator>Ann</dc:creator><dc:creator>Bob</dc:creator>"
                "<dc:creator>Cy</dc:creator></item>",
                namespaces='xmlns:dc="http://purl.org/dc/elements/1.1/"',
            ),
            "Ann, Bob, Cy",
        ),
        (
            b"""<feed xmlns="http://www.w3.org/2005/Atom"><title>C</title><entry><id>1</id>
            <title>T</title><author><name>Ann</name></author><author><name>Bob</name></author>
            </entry></feed>""",
            "Ann, Bob",
        ),
        (
            json.dumps(
                {
                    "items": [
                        {"id": "1", "title": "T", "authors": [{"name": "Ann"}, {"name": "Bob"}]}
                    ]
                }
            ).encode(),
            "Ann, Bob",
        ),
        (_rss_items("<item><title>T</title><author>ann@site.com (Ann)</author></item>"), "Ann"),
    ],
    ids=["rss", "atom", "json", "rss-one-with-email"],
)
def test_every_author_is_kept_in_document_order(document: bytes, authors: str) -> None:
    assert _digest(document).posts[0].author == authors


@pytest.mark.parametrize("fast_path", [True, False], ids=["fast-path", "feedparser"])
@pytest.mark.parametrize(
    ("author", "name"),
    [
        ("editor@example.technology (Jane Doe)", "Jane Doe"),  # was "nology (Jane Doe"
        ("Jane Doe &lt;jane@news.example.photography&gt;", "Jane Doe"),
        ("jane@example.photography", "jane@example.photography"),  # was "ography"
        ("editor@example.com (Jane Doe)", "Jane Doe"),
    ],
)
def test_an_address_with_a_long_last_label_leaves_the_name_whole(
    author: str, name: str, fast_path: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fast, "ENABLED", fast_path)
    document = _rss_items(f"<item><title>T</title><author>{author}</author></item>")

    assert _digest(document).posts[0].author == name


@pytest.mark.parametrize("fast_path", [True, False], ids=["fast-path", "feedparser"])
def test_a_huge_author_that_almost_holds_an_address_is_read_at_once(fast_path: bool) -> None:
    """Both parsers once took seconds for 32 KB of it and hours for a megabyte (quadratic)."""
    author = "a@" + "a." * 200_000 + "!"
    script = (
        "import sys; from ingest.digest import fast; from tests.test_parse import _digest, "
        f"_rss_items; fast.ENABLED = {fast_path}; "
        "post = _digest(_rss_items('<item><title>T</title><author>' + sys.stdin.read() + "
        "'</author></item>')).posts[0]; print(post.title, bool(post.author))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        input=author,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["T", "True"]


def test_json_feed_tags_given_as_one_string_are_a_list() -> None:
    document = json.dumps(
        {"title": "F", "items": [{"id": "1", "title": "T", "tags": "rust, python ,,go"}]}
    ).encode()

    assert _digest(document).posts[0].categories == ("F", "rust", "python", "go")


EPISODES = _rss_items(
    *(
        f"<item><title>Episode</title><guid>{guid}</guid>"
        f'<enclosure url="https://cdn.example/{audio}.mp3" type="audio/mpeg" length="1"/></item>'
        for guid, audio in (("e1", "one"), ("e2", "two"))
    ),
)


def test_enclosures_are_part_of_a_posts_content() -> None:
    one, two = _digest(EPISODES).posts

    assert one.media == ("https://cdn.example/one.mp3",)
    assert two.media == ("https://cdn.example/two.mp3",)
    assert one.content_hash != two.content_hash


def test_media_urls_of_every_format_are_read_in_document_order() -> None:
    rss = _rss_items(
        '<item><title>T</title><enclosure url="a.mp3" type="audio/mpeg" length="1"/>'
        '<media:content url="https://cdn.example/b.mp4" type="video/mp4"/>'
        '<media:thumbnail url="https://cdn.example/thumb.png"/></item>',
        namespaces='xmlns:media="http://search.yahoo.com/mrss/"',
    )
    json_feed = json.dumps(
        {
            "items": [
                {
                    "id": "1",
                    "title": "T",
                    "image": "https://cdn.example/thumb.png",
                    "attachments": [
                        {"url": "https://cdn.example/a.mp3", "mime_type": "audio/mpeg"},
                        {"url": "javascript:alert(1)", "mime_type": "audio/mpeg"},
                    ],
                }
            ]
        }
    ).encode()

    assert _digest(rss).posts[0].media == (
        "https://site.example/a.mp3",
        "https://cdn.example/b.mp4",
    )
    assert _digest(json_feed).posts[0].media == ("https://cdn.example/a.mp3",)


def test_two_items_sharing_a_guid_are_two_entries_and_true_repeats_one() -> None:
    document = _rss_items(
        "<item><title>First</title><guid>same</guid><link>https://site.example/1</link></item>",
        "<item><title>Second</title><guid>same</guid><link>https://site.example/2</link></item>",
        "<item><title>Third</title><guid>same</guid><link>https://site.example/2</link></item>",
        "<item><title>Third</title><guid>same</guid><link>https://site.example/2</link></item>",
        "<item><title>Alone</title><guid>alone</guid></item>",
    )

    posts = _digest(document).posts

    assert [p.entry_key for p in posts] == [
        "same https://site.example/1",
        posts[1].content_hash,
        posts[2].content_hash,
        posts[2].content_hash,
        "alone",
    ]
