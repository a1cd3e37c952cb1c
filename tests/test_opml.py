"""OPML in and out, as pure functions: folders and categories, round trips, refusals."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ingest.errors import OpmlError
from ingest.publish.opml import MAX_CATEGORIES, MAX_CATEGORY_CHARS, MAX_DEPTH, read_opml, write_opml
from ingest.types import SourceSpec, StoredSource

NOW = datetime(2024, 6, 1, tzinfo=UTC)
NESTED = """<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0">
  <head><title>mine</title></head>
  <body>
    <outline text="Top" type="rss" xmlUrl="https://top.example/feed"/>
    <outline text="新媒体">
      <outline text="cnBeta" title="cnBeta" type="rss" xmlUrl="https://cnbeta.example/rss"/>
      <outline text="Tech">
        <outline text="Deep" type="rss" xmlURL="https://deep.example/atom" />
        <outline text="https://same.example/f" type="rss" xmlUrl="https://same.example/f" />
      </outline>
      <outline text="an empty folder"/>
    </outline>
    <outline text="Again" type="rss" xmlUrl="https://top.example/feed"/>
  </body>
</opml>
"""


def read(text: str | bytes) -> list[SourceSpec]:
    data = text.encode() if isinstance(text, str) else text
    return read_opml(data, where="subs.opml")


def stored(specs: list[SourceSpec]) -> list[StoredSource]:
    return [
        StoredSource(id=i, spec=s, origin="opml", enabled=True, title=None, created_at=NOW)
        for i, s in enumerate(specs, 1)
    ]


def test_nested_outlines_become_categories_outermost_first() -> None:
    assert read(NESTED) == [
        SourceSpec(url="https://top.example/feed", name="Top"),
        SourceSpec(url="https://cnbeta.example/rss", name="cnBeta", categories=("新媒体",)),
        SourceSpec(url="https://deep.example/atom", name="Deep", categories=("新媒体", "Tech")),
        SourceSpec(url="https://same.example/f", categories=("新媒体", "Tech")),
        SourceSpec(url="https://top.example/feed", name="Again"),
    ]


def test_an_upper_case_scheme_is_stored_in_lower_case() -> None:
    # The stored URL's scheme is what tells a remote source from a local path later.
    specs = read('<opml><body><outline xmlUrl="HTTPS://X.example:443/F#top"/></body></opml>')
    assert specs == [SourceSpec(url="https://x.example/F")]


@pytest.mark.parametrize(
    "url", ["file:///etc/shadow", "/etc/shadow", "~/.ssh", "feeds/a.xml", "FILE://localhost/etc"]
)
def test_local_files_never_come_from_an_opml_file(url: str) -> None:
    document = f'<opml><body>\n<outline xmlUrl="https://ok.example/f"/>\n<outline xmlUrl="{url}"/>'
    with pytest.raises(OpmlError) as refused:
        read(document + "</body></opml>")
    assert str(refused.value) == (
        f"subs.opml: nothing imported; fix these outlines: line 3: {url!r}: only http(s) feeds "
        "can be imported from OPML; add local files or folders to the config file or with "
        "`ingest feeds add --local`"
    )


def test_written_opml_reads_back_to_the_same_sources_and_the_same_document() -> None:
    sources = read(NESTED)[:-1]
    written = write_opml(stored(sources), now=NOW)

    assert read(written) == sources
    assert write_opml(stored(read(written)), now=NOW) == written
    assert "<dateCreated>Sat, 01 Jun 2024 00:00:00 GMT</dateCreated>" in written
    assert written.count('<outline text="新媒体"') == 1


def test_special_characters_survive_the_round_trip() -> None:
    spec = SourceSpec(
        url="https://x.example/f?a=1&b=%3C2%3E", name='"Q" & <A>', categories=("a&b",)
    )
    assert read(write_opml(stored([spec]), now=NOW)) == [spec]


def test_settings_and_the_site_survive_the_round_trip_and_a_feed_title_is_no_name() -> None:
    named = SourceSpec(
        url="https://a.example/f",
        name="Mine",
        interval_s=7200,
        comments=True,
        max_body=4096,
        site_url="https://a.example/",
    )
    plain = SourceSpec(url="https://b.example/f", categories=("x",))
    sources = [
        *stored([named]),
        StoredSource(
            id=2, spec=plain, origin="cli", enabled=True, title="B's own title", created_at=NOW
        ),
    ]

    written = write_opml(sources, now=NOW)

    assert read(written) == [named, plain]
    assert 'text="B\'s own title"' in written  # what a reader shows, not a name
    assert 'htmlUrl="https://a.example/"' in written


def test_a_foreign_files_titles_are_names_and_its_html_url_is_kept() -> None:
    specs = read(
        '<opml><body><outline title="Site" xmlUrl="https://a.example/f" '
        'htmlUrl="https://a.example/"/><outline text="x" xmlUrl="https://b.example/f" '
        'htmlUrl="javascript:alert(1)"/></body></opml>'
    )
    assert specs == [
        SourceSpec(url="https://a.example/f", name="Site", site_url="https://a.example/"),
        SourceSpec(url="https://b.example/f", name="x"),
    ]


def test_a_bad_setting_of_ours_is_refused_naming_it() -> None:
    document = write_opml(stored([SourceSpec(url="https://a.example/f", interval_s=60)]), now=NOW)
    with pytest.raises(OpmlError, match='ingest:interval: "often" is not a duration'):
        read(document.replace('ingest:interval="1m"', 'ingest:interval="often"'))


def test_other_encodings_are_read() -> None:
    text = NESTED.replace("UTF-8", "GB18030")
    assert read(text.encode("gb18030"))[1].categories == ("新媒体",)
    assert read(NESTED.encode("utf-16"))[1].categories == ("新媒体",)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("", "is not well-formed XML"),
        ("<opml><body><outline></body></opml>", "is not well-formed XML: mismatched tag"),
        ('<rss version="2.0"><channel/></rss>', "is not OPML: its root element is <rss>"),
        ("<opml version='2.0'><head/></opml>", "has no <body>"),
        (
            '<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>'
            "<opml><body><outline text='&lol2;' xmlUrl='https://x.example/'/></body></opml>",
            "has a DOCTYPE",
        ),
        (
            "<opml><body>\n<outline xmlUrl='ftp://x.example/f'/>\n<outline text='B' type='rss'/>"
            "\n<outline xmlUrl=''/></body></opml>",
            "nothing imported; fix these outlines: line 2: 'ftp://x.example/f': only http(s) "
            "feeds can be imported from OPML; add local files or folders to the config file or "
            "with `ingest feeds add --local`; line 3: feed outline 'B' has no xmlUrl; line 4: "
            "outline None has an empty xmlUrl",
        ),
    ],
)
def test_a_broken_file_is_refused_naming_the_file_and_the_problem(
    document: str, message: str
) -> None:
    with pytest.raises(OpmlError) as refused:
        read(document)
    assert str(refused.value).startswith(f"subs.opml: {message}")


def test_a_billion_laughs_is_refused_before_any_expansion() -> None:
    entities = "".join(f'<!ENTITY l{i} "{("&l" + str(i - 1) + ";") * 10}">' for i in range(1, 10))
    bomb = f'<!DOCTYPE o [<!ENTITY l0 "lol">{entities}]><opml><body>&l9;</body></opml>'
    with pytest.raises(OpmlError, match="has a DOCTYPE"):
        read(bomb)


def nested(folders: list[str], feeds: int = 1) -> str:
    """An OPML document: ``folders`` nested one in another, ``feeds`` feeds in the innermost,
    one outline a line (line 1 is ``<opml><body>``)."""
    opening = "".join(f'<outline text="{name}">\n' for name in folders)
    inner = "".join(f'<outline xmlUrl="https://f.example/{i}"/>\n' for i in range(feeds))
    return f"<opml><body>\n{opening}{inner}{'</outline>' * len(folders)}</body></opml>"


def test_outlines_nested_deeper_than_any_list_needs_are_refused_at_their_line() -> None:
    with pytest.raises(OpmlError) as refused:
        read(nested([f"f{depth}" for depth in range(MAX_DEPTH)]))
    assert str(refused.value) == (
        f"subs.opml: line {MAX_DEPTH + 2}: outlines are nested more than {MAX_DEPTH} deep; "
        "no subscription list needs that many folders, flatten them"
    )


def test_categories_per_feed_and_their_length_are_capped() -> None:
    assert read(nested([f"f{depth}" for depth in range(MAX_CATEGORIES)]))[0].categories == tuple(
        f"f{depth}" for depth in range(MAX_CATEGORIES)
    )
    long_name = "长" * (MAX_CATEGORY_CHARS + 1)
    with pytest.raises(OpmlError) as refused:
        read(nested([f"f{depth}" for depth in range(MAX_CATEGORIES)] + [long_name]))
    assert str(refused.value) == (
        f"subs.opml: nothing imported; fix these outlines: line {MAX_CATEGORIES + 2}: folder "
        f"{long_name[:40] + '...'!r} has a name of {MAX_CATEGORY_CHARS + 1} characters; a "
        f"category has at most {MAX_CATEGORY_CHARS}; line {MAX_CATEGORIES + 3}: feed outline "
        f"None is in {MAX_CATEGORIES + 1} named folders; at most {MAX_CATEGORIES} become its "
        "categories, flatten them"
    )


def test_a_long_list_of_problems_is_cut_short() -> None:
    folders = [f"f{depth}" for depth in range(MAX_CATEGORIES + 1)]
    with pytest.raises(OpmlError) as refused:
        read(nested(folders, feeds=1000))
    message = str(refused.value)
    assert message.count("feed outline None is in") == 10
    assert message.endswith("; and 990 more")
