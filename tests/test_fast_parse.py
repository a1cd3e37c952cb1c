"""The fast path (``ingest.digest.fast``) against feedparser: the same posts, field by field.

Every document of ``tests/data/corpus`` and the fixtures is digested twice, the fast path forced
on and forced off; the digests (posts, feed title, skipped entries, TTL, dates) or the errors
must be identical. A document the fast path declines is read by feedparser both times, so it
counts as equal; the test also holds the share of documents that take the fast path, so that a
change which makes it decline everything cannot pass unnoticed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import astuple
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ingest.digest import fast
from ingest.digest.document import digest_feed
from ingest.errors import DocumentError
from ingest.types import SourceSpec
from tests.conftest import DATA

NOW = datetime(2025, 1, 1, tzinfo=UTC)
NOT_FEEDS = {"MANIFEST.tsv", "SOURCES.md", "URLS.tsv"}
URL = "https://example.com/feed.xml"

DIFFERENCES: dict[str, str] = {}
"""Documents whose fast reading differs on purpose, by path under tests/data, with the reason
(an improvement over feedparser's reading). Empty: none differs."""


def _documents() -> list[Path]:
    corpus = [p for p in (DATA / "corpus").rglob("*") if p.is_file() and p.name not in NOT_FEEDS]
    fixtures = [*DATA.glob("*.xml"), *DATA.glob("golden/*.xml"), *DATA.glob("hostile/*.xml")]
    return sorted(corpus + fixtures)


DOCUMENTS = _documents()


def _digest(data: bytes, *, fast_path: bool, url: str) -> object:
    fast.ENABLED = fast_path
    try:
        digest = digest_feed(data, spec=SourceSpec(url=url), comments=False, now=NOW, url=url)
    except DocumentError as exc:
        return ("error", exc.kind, str(exc))
    finally:
        fast.ENABLED = True
    return (
        digest.feed_title,
        [astuple(post) for post in digest.posts],
        digest.skipped,
        digest.ttl_s,
        digest.published_dates,
    )


def _taken(data: bytes, url: str) -> bool:
    """Whether the fast path reads the document (rather than declining it)."""
    taken: list[bool] = []
    original = fast.read

    def spy(text: str) -> Any:
        result = original(text)
        taken.append(result is not None)
        return result

    fast.read = spy
    try:
        _digest(data, fast_path=True, url=url)
    finally:
        fast.read = original
    return any(taken)


def _cases() -> Iterator[tuple[Path, str]]:
    for path in DOCUMENTS:
        # Local files (relative links against the channel link) and fetched ones (against
        # the document's URL) take different branches of the base-URL rules: both.
        yield path, ""
        yield path, URL


@pytest.mark.parametrize(
    ("path", "url"), list(_cases()), ids=lambda v: str(v).replace(str(DATA), "")
)
def test_both_paths_digest_the_same_posts(path: Path, url: str) -> None:
    data = path.read_bytes()
    relative = str(path.relative_to(DATA))
    slow = _digest(data, fast_path=False, url=url)
    quick = _digest(data, fast_path=True, url=url)
    if relative in DIFFERENCES:
        assert quick != slow, f"{relative} no longer differs: drop it from DIFFERENCES"
        return
    assert quick == slow


def test_most_well_formed_feeds_take_the_fast_path() -> None:
    taken = [path for path in DOCUMENTS if _taken(path.read_bytes(), URL)]
    # Measured when written: see docs/performance.md ("The fast path").
    assert len(taken) >= 0.55 * len(DOCUMENTS), (len(taken), len(DOCUMENTS))


def test_the_switch_turns_the_fast_path_off() -> None:
    text = (DATA / "golden" / "rss2.xml").read_text("utf-8")
    assert fast.read(text) is not None
    fast.ENABLED = False
    try:
        assert fast.read(text) is None
    finally:
        fast.ENABLED = True


RSS = (
    '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"'
    ' xmlns:content="http://purl.org/rss/1.0/modules/content/"'
    ' xmlns:dc="http://purl.org/dc/elements/1.1/"'
    ' xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd"'
    ' xmlns:media="http://search.yahoo.com/mrss/"><channel>{channel}</channel></rss>'
)
ATOM = '<?xml version="1.0"?>\n<feed xmlns="http://www.w3.org/2005/Atom"{attrs}>{feed}</feed>'

MADE_UP: dict[str, tuple[str, bool]] = {
    # name: (document, whether the fast path must read it rather than decline)
    "second summary is content": (
        RSS.format(
            channel="<title>T</title><item><title>a</title><description>&lt;p&gt;long"
            "&lt;/p&gt;</description><itunes:summary>short &amp; plain</itunes:summary></item>"
        ),
        True,
    ),
    "content before and after description": (
        RSS.format(
            channel="<item><content:encoded>&lt;p&gt;full&lt;/p&gt;</content:encoded>"
            "<description>teaser</description><guid>g1</guid></item>"
            "<item><description>teaser</description><content:encoded>&lt;p&gt;full2"
            "&lt;/p&gt;</content:encoded><guid>g2</guid></item>"
        ),
        True,
    ),
    "several authors": (
        RSS.format(
            channel="<managingEditor>ed@example.com (The Editor)</managingEditor>"
            "<item><title>a</title><dc:creator>One</dc:creator><dc:creator>Two</dc:creator>"
            "</item><item><title>b</title><author>x@example.com (Ex Ample)</author></item>"
            "<item><title>c</title><author>only@example.com</author></item>"
        ),
        True,
    ),
    "atom authors": (
        ATOM.format(
            attrs="",
            feed="<title>F</title><author><name>Feed Person</name></author>"
            "<entry><title>a</title><id>tag:x,2020:1</id><author><name>A</name>"
            "<email>a@example.com</email></author><author><email>b@example.com</email>"
            "</author></entry><entry><title>b</title><id>tag:x,2020:2</id></entry>",
        ),
        True,
    ),
    "guid as link": (
        RSS.format(
            channel="<item><title>a</title><guid>https://example.com/a</guid></item>"
            '<item><title>b</title><guid isPermaLink="false">b-1</guid></item>'
            "<item><title>c</title><guid>https://example.com/c</guid>"
            "<link>https://example.com/c-link</link></item>"
            "<item><title>d</title><link>/relative?a=1&amp;b=2</link></item>"
        ),
        True,
    ),
    "media titles and descriptions at depth": (
        RSS.format(
            channel="<item><media:content url='https://img.example.com/1.jpg' medium='image'>"
            "<media:title>media title</media:title><media:description>media text"
            "</media:description></media:content><title>own title</title>"
            "<description>own text</description></item>"
            "<item><media:group><media:title type='html'>&lt;b&gt;only&lt;/b&gt;</media:title>"
            "<media:content url='https://img.example.com/2.png' type='image/png'/>"
            "<media:thumbnail url='https://img.example.com/t.png'/></media:group>"
            "<description>d</description></item>"
            "<item><title>t</title><description>own</description><media:content url='x'>"
            "<media:description>nested</media:description></media:content></item>"
        ),
        True,
    ),
    "the first title wins": (
        RSS.format(
            channel="<title>F</title><dc:title>G</dc:title><item><title>A</title>"
            "<dc:title>B</dc:title></item><item><title></title><dc:title>B</dc:title></item>"
        ),
        True,
    ),
    "titles that look like html": (
        RSS.format(
            channel="<item><title>Fish &amp;amp; Chips</title></item>"
            "<item><title>&lt;b&gt;Bold&lt;/b&gt; move</title></item>"
            "<item><title>a &lt; b and c &gt; d</title></item>"
            "<item><title>&lt;blink&gt;x&lt;/blink&gt;</title></item>"
        ),
        True,
    ),
    "atom text constructs": (
        ATOM.format(
            attrs="",
            feed='<title type="html">&lt;i&gt;F&lt;/i&gt;</title><entry><id>u:1</id>'
            '<title type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">X <b>y</b></div>'
            '</title><summary>plain &amp; simple</summary><content type="xhtml">'
            '<div xmlns="http://www.w3.org/1999/xhtml"><p class="A">one</p><br/>'
            '<a href="/x" rel="NoFollow">two &amp; "three"</a></div></content></entry>'
            '<entry><id>u:2</id><title>t</title><content type="xhtml"><div '
            'xmlns="http://www.w3.org/1999/xhtml">a</div><div '
            'xmlns="http://www.w3.org/1999/xhtml">b</div></content></entry>',
        ),
        True,
    ),
    "xml:base, kept by feedparser after its element closes": (
        ATOM.format(
            attrs=' xml:base="https://example.com/blog/"',
            feed='<link href="/"/><entry xml:base="sub/"><id>1</id><title>a</title>'
            '<link href="a.html"/><link rel="enclosure" type="image/jpeg" href="i.jpg"/>'
            '<content type="html">&lt;img src="x.png"&gt;</content></entry>'
            '<entry><id>2</id><title>b</title><link href=""/><link href="b.html"/></entry>',
        ),
        True,
    ),
    "atom sources": (
        ATOM.format(
            attrs="",
            feed="<entry><id>1</id><title>Own</title><source><title>Src</title><id>s</id>"
            '<link href="https://src.example.com/"/><author><name>S</name></author>'
            "<updated>2020-01-01T00:00:00Z</updated></source><content>c</content></entry>"
            "<entry><id>2</id><source><title>Src</title></source><title>Late own</title>"
            "</entry><entry><id>3</id><source><title></title></source><title>T3</title>"
            "<source><id>x</id></source></entry>",
        ),
        True,
    ),
    "categories": (
        RSS.format(
            channel="<item><title>a</title><category>One</category>"
            '<category domain="d">Two</category><category domain="d">Two</category>'
            "<media:category>Three</media:category><itunes:keywords>four, five,,</itunes:keywords>"
            '<category term="six" label="Six"/></item>'
        ),
        True,
    ),
    "utf-8 read as latin-1 and C1 controls": (
        RSS.format(
            channel="<title>Caf\u00c3\u00a9</title><item><title>\u0093quoted\u0094 "
            "Caf\u00c3\u00a9</title><description>\u0080 10</description></item>"
        ),
        True,
    ),
    "ttl forms": (
        RSS.format(channel='<ttl unit="m">30</ttl><item><title>a</title></item>'),
        True,
    ),
    # feedparser reads it only after ``ingest.digest.prefilter`` hides the nested one; the fast
    # path leaves it to that.
    "a nested description (declined)": (
        RSS.format(
            channel="<item><title>a</title><description>long</description>"
            "<social><description>blurb</description></social></item>"
        ),
        False,
    ),
    "an empty href is no link": (
        ATOM.format(
            attrs=' xml:base="https://example.com/blog/"',
            feed='<title>T</title><entry><title>a</title><link href=""/><id>https://x.example/a</id>'
            '<content>d</content></entry><entry><title>b</title><link rel="alternate" href=" "/>'
            "<id>urn:b</id><content>e</content></entry>",
        ),
        True,
    ),
    "an image inside an item": (
        RSS.format(
            channel="<item><image><title>img title</title><url>https://e.com/i.png</url>"
            "</image><description>d</description></item>"
            "<item><title>own</title><image><title>img</title></image></item>"
        ),
        True,
    ),
    "rss 1.0": (
        '<?xml version="1.0"?><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"'
        ' xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/">'
        '<channel rdf:about="https://e.com/"><title>R</title><link>https://e.com/</link>'
        "</channel><item rdf:about='https://e.com/1'><title>one</title>"
        "<link>https://e.com/1</link><dc:date>2021-03-07T09:05:00+01:00</dc:date>"
        "<dc:subject>S</dc:subject></item></rdf:RDF>",
        True,
    ),
    "itunes owner and authors": (
        RSS.format(
            channel="<itunes:owner><itunes:name>Owner</itunes:name><itunes:email>o@e.com"
            "</itunes:email></itunes:owner><item><title>a</title></item>"
        ),
        True,
    ),
    "channel title after items, image before it": (
        RSS.format(
            channel="<image><title>Img</title><url>https://e.com/i.png</url></image>"
            "<item><title>a</title></item><title>Late</title>"
        ),
        True,
    ),
    "upper-case names and a wrong dc namespace": (
        '<rss version="2.0" xmlns:dc="https://purl.org/dc/elements/1.1/"><channel>'
        "<Title>T</Title><item><Title>a</Title><PubDate>Sun, 07 Mar 2021 09:05:00 GMT"
        "</PubDate><dc:creator>Dee</dc:creator><dc:date>2021/3/7 09:05:00</dc:date></item>"
        "</channel></rss>",
        True,
    ),
    "thumbnails and enclosures": (
        RSS.format(
            channel="<item><title>a</title><media:thumbnail>https://e.com/t.jpg"
            "</media:thumbnail><enclosure url='https://e.com/e.jpg' type='IMAGE/JPEG'/>"
            "<enclosure url='' type='image/png'/><itunes:image href='https://e.com/it.jpg'/>"
            "</item>"
        ),
        True,
    ),
    # Where feedparser's strict parser fails (and its loose one reads on), lxml must fail too.
    "an undeclared prefix (declined)": (
        RSS.format(channel="<item><title>a</title><foo:bar>x</foo:bar></item>"),
        False,
    ),
    "an HTML entity (declined)": (
        RSS.format(channel="<item><title>a&nbsp;b</title></item>"),
        False,
    ),
    "content after the root (declined)": (
        RSS.format(channel="<item><title>a</title></item>") + "<junk/>",
        False,
    ),
    "a noncharacter (declined)": (RSS.format(channel="<item><title>a\ufffe</title></item>"), False),
    "XML 1.1": (
        RSS.format(channel="<item><title>a</title></item>").replace('"1.0"', '"1.1"', 1),
        True,
    ),
}


@pytest.mark.parametrize("name", list(MADE_UP))
def test_made_up_documents_read_the_same_by_both_paths(name: str) -> None:
    document, read_fast = MADE_UP[name]
    data = document.encode("utf-8")
    for url in ("", URL):
        assert _digest(data, fast_path=True, url=url) == _digest(data, fast_path=False, url=url)
    assert _taken(data, URL) is read_fast
