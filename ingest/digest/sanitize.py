"""HTML sanitizing with nh3: the only place markup from a feed is made safe to publish.

feedparser's own sanitizer is turned off (it lets ``&#106;avascript:`` links, forms and SVG through
and drops ``data-original``, see docs/decisions.md); nh3 (ammonia) parses like a browser, so an
entity- or whitespace-disguised ``javascript:`` is seen for what it is.

What stays is what real feeds need to render (DESIGN §3): text markup, tables, links and their
``target``, images with ``src``/``data-original``/``referrerpolicy``/``alt``/``loading`` (cnBeta's
CDN refuses images requested with a Referer, so ``referrerpolicy`` is load-bearing), and iframes
from a short list of video hosts over https. Scripts, styles, forms, event handlers and every URL
scheme but http, https and mailto go.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from contextvars import ContextVar
from dataclasses import dataclass

import nh3

from ingest.errors import EntryError
from ingest.identity import collapse_whitespace
from ingest.urls import host_of, web_url

EMBED_HOSTS = frozenset(
    {
        "www.youtube.com",
        "www.youtube-nocookie.com",
        "player.vimeo.com",
        "player.bilibili.com",
    }
)
"""Hosts whose https iframes are kept: video players feeds embed. Any other iframe is dropped."""

URL_SCHEMES = frozenset({"http", "https", "mailto"})

_TAGS = frozenset(nh3.ALLOWED_TAGS | {"iframe", "video", "audio", "source", "picture"})

_ATTRIBUTES: dict[str, set[str]] = {
    tag: set(attrs) for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()
}
for _tag, _attrs in {
    "*": {"title", "lang", "dir"},
    "a": {"href"},
    "img": {"src", "data-original", "alt", "width", "height"},
    "iframe": {"src", "width", "height", "allowfullscreen"},
    "video": {"src", "controls", "width", "height"},
    "audio": {"src", "controls"},
    "source": {"src", "type"},
}.items():
    _ATTRIBUTES.setdefault(_tag, set()).update(_attrs)

_LOADING = {"lazy", "eager"}
_REFERRER_POLICIES = {
    "no-referrer",
    "no-referrer-when-downgrade",
    "origin",
    "origin-when-cross-origin",
    "same-origin",
    "strict-origin",
    "strict-origin-when-cross-origin",
    "unsafe-url",
}
_TOKEN_VALUES: dict[str, dict[str, set[str]]] = {
    "a": {"target": {"_blank", "_self"}},
    "img": {"loading": _LOADING, "referrerpolicy": _REFERRER_POLICIES},
    "iframe": {"loading": _LOADING, "referrerpolicy": _REFERRER_POLICIES},
}
"""Attributes kept only with one of their values, written as the specifications write them (in
lower case): ammonia checks them itself, with no call back into Python per attribute."""

_SRCLESS_IFRAME = re.compile(r"<iframe(?![^>]*\ssrc=)[^>]*>.*?</iframe>", re.IGNORECASE | re.DOTALL)
_URL_CHECKED = re.compile(r'<(img|iframe)((?:\s+[^\s"\'>/=]+(?:="[^"]*")?)*)(\s*/?)>')
"""An ``<img>`` or ``<iframe>`` start tag as nh3 serializes it, and its attributes."""
_ATTRIBUTE = re.compile(r'(\s+)([^\s"\'>/=]+)(?:="([^"]*)")?')
_IMG_SRC = re.compile(r'<img\s[^>]*?\bsrc="([^"]*)"')
_ANY_TAG = re.compile(r"<[^>]*>")

MAX_NESTING = 512
"""Deepest element nesting cleaned: Chrome's HTML parser builds no deeper
(``kMaximumHTMLParserDOMTreeDepth``), and real feeds stay far below it."""

_TAG_NAME = re.compile(r"<(/?)([A-Za-z][^\t\n\f\r />]*)")
"""A start or end tag and its name, as the HTML tokenizer delimits them (WHATWG 13.2.5.6)."""

_VOID = frozenset(
    {"area", "base", "basefont", "bgsound", "br", "col", "embed", "frame", "hr", "image", "img"}
    | {"input", "keygen", "link", "meta", "param", "source", "track", "wbr"}
)
_CLOSED_IMPLICITLY = frozenset(
    # closed by their next sibling (optional end tags), or by a second one of their own
    {"html", "head", "body", "p", "li", "dt", "dd", "option", "optgroup", "select", "rb", "rt"}
    | {"rtc", "rp", "tr", "td", "th", "thead", "tbody", "tfoot", "colgroup", "caption", "a"}
    | {"button", "nobr"}
)
_NOT_NESTING = _VOID | _CLOSED_IMPLICITLY


def nested_too_deep(markup: str) -> bool:
    """Whether the elements of ``markup`` may nest deeper than ``MAX_NESTING``: linear, cheap.

    An over-estimate of the parser's stack: an end tag closes one element of its own name (the
    parser may close more), tags inside comments or scripts count, and of the elements left out
    of the count none nests inside its own kind without a counted element in between.
    """
    if markup.count("<") <= MAX_NESTING:
        return False
    open_by_name: Counter[str] = Counter()
    depth = 0
    for match in _TAG_NAME.finditer(markup):
        name = match.group(2)
        name = name.lower() if name.isascii() else name  # the tokenizer lowers ASCII only
        if name in _NOT_NESTING:
            continue
        if not match.group(1):
            depth += 1
            if depth > MAX_NESTING:
                return True
            open_by_name[name] += 1
        elif open_by_name[name]:
            open_by_name[name] -= 1
            depth -= 1
    return False


@dataclass(frozen=True, slots=True)
class _Controls:
    """C0 and C1 controls and DEL, less ``keep``: those that are whitespace become a space, the
    others go. Lone surrogates (a JSON feed can write ``\\ud800``) go too: no UTF-8 store can
    hold them. A regular expression finds them: ``str.translate`` with a table walks every
    character in Python's slow path and was a third of normalizing."""

    pattern: re.Pattern[str]
    spaces: dict[str, str]

    @classmethod
    def without(cls, keep: str) -> _Controls:
        controls = [
            chr(code) for code in (*range(0x20), *range(0x7F, 0xA0)) if chr(code) not in keep
        ]
        pattern = re.compile("[" + "".join(map(re.escape, controls)) + "\ud800-\udfff]")
        return cls(pattern, {char: " " for char in controls if char.isspace()})

    def remove(self, text: str) -> str:
        if not self.pattern.search(text):
            return text
        return self.pattern.sub(lambda match: self.spaces.get(match.group(), ""), text)


_LINE_CONTROLS = _Controls.without("")
_BODY_CONTROLS = _Controls.without("\t\n")


def clean_text(text: str, *, multiline: bool = False) -> str:
    """``text`` without control characters, for every stored text field (DESIGN §3).

    C0 and C1 controls (NUL, BEL, ESC and the C1 CSI, which terminals obey, ...) and lone
    surrogates go. A one-line field (title, author, category, guid) gets its whitespace
    collapsed; a ``multiline`` one (a body) keeps its tabs and newlines.
    """
    if multiline:
        return _BODY_CONTROLS.remove(text)
    return collapse_whitespace(_LINE_CONTROLS.remove(text))


_BASE: ContextVar[str] = ContextVar("ingest_sanitize_base", default="")
"""The http(s) base URL of the markup being cleaned ("" when none): the one cleaner's URL
callback reads it, so one cleaner serves every document (a cleaner per feed cost megabytes
each)."""


def _resolve(url: str) -> str | None:
    """nh3's hook for relative ``href``/``src`` (absolute ones, checked, never come here)."""
    base = _BASE.get()
    return web_url(url, base) if base else url


_CLEANER = nh3.Cleaner(
    tags=set(_TAGS),
    attributes=_ATTRIBUTES,
    tag_attribute_values=_TOKEN_VALUES,
    url_schemes=set(URL_SCHEMES),
    url_relative=_resolve,
)


def sanitize_html(markup: str, base: str = "") -> str:
    """Safe HTML for ``markup``; relative URLs are made absolute when ``base`` is http(s).

    Raises EntryError when elements nest deeper than ``MAX_NESTING``.
    """
    if nested_too_deep(markup):
        raise EntryError(
            f"its HTML nests elements more than {MAX_NESTING} deep, deeper than browsers build "
            "(cleaning such markup takes minutes)"
        )
    base = (web_url(base) or "") if base else ""
    token = _BASE.set(base)
    try:
        cleaned = _CLEANER.clean(markup)
    finally:
        _BASE.reset(token)
    if "data-original=" in cleaned or "<iframe" in cleaned:
        cleaned = _URL_CHECKED.sub(lambda tag: _checked_urls(tag, base), cleaned)
    if "<iframe" in cleaned:
        cleaned = _SRCLESS_IFRAME.sub("", cleaned)
    return cleaned


def _checked_urls(tag: re.Match[str], base: str) -> str:
    """An ``<img>`` or ``<iframe>`` start tag of nh3's output with the URLs ammonia leaves
    alone resolved and checked: ``data-original``, which lazy-loading scripts copy into ``src``
    (ammonia does not check its scheme), and an iframe's ``src``, kept only for ``EMBED_HOSTS``
    over https.

    Done on the output, not in an nh3 attribute filter, which calls back into Python for every
    attribute of every element and cost a third of cleaning. The output is nh3's serialization:
    every ``<`` of text is escaped and every attribute value is double-quoted with its quotes
    escaped, so the regular expressions read it exactly.
    """
    name = tag.group(1)
    kept = []
    for attribute in _ATTRIBUTE.finditer(tag.group(2)):
        key, value = attribute.group(2), attribute.group(3)
        if key == "data-original" or (name == "iframe" and key == "src"):
            url = web_url(html.unescape(value or ""), base)
            if url is None or (name == "iframe" and not _embeddable(url)):
                continue
            kept.append(f'{attribute.group(1)}{key}="{_attribute_escaped(url)}"')
        else:
            kept.append(attribute.group(0))
    return f"<{name}{''.join(kept)}{tag.group(3)}>"


def _embeddable(url: str) -> bool:
    return url.startswith("https://") and host_of(url) in EMBED_HOSTS


def _attribute_escaped(value: str) -> str:
    return value.replace("&", "&amp;").replace('"', "&quot;")


def html_to_text(markup: str) -> str:
    """Plain text of a fragment: tags stripped, entities decoded, control characters out,
    whitespace collapsed. Markup nested too deep to parse in time has its tags cut out."""
    if "<" in markup:
        if nested_too_deep(markup):
            markup = _ANY_TAG.sub(" ", markup)
        else:
            markup = nh3.clean(markup, tags=set())
    if "&" in markup:
        markup = html.unescape(markup)
    return clean_text(markup)


def text_to_html(text: str) -> str:
    """A plain-text body as HTML paragraphs, so every stored body is HTML."""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    return "".join(
        "<p>" + html.escape(p, quote=False).replace("\n", "<br>") + "</p>" for p in paragraphs
    )


def first_image(sanitized: str) -> str | None:
    """``src`` of the first ``<img>`` of sanitized HTML with an absolute http(s) URL, as a
    browser reads it (``web_url``), or None.

    ``src``, not ``data-original``: the seed's headimg is cnBeta's ``/thumb/`` URL. The input is
    nh3's serialization, whose attributes are always double-quoted with ``&`` escaped, so a
    regular expression reads it exactly.
    """
    for match in _IMG_SRC.finditer(sanitized):
        url = web_url(html.unescape(match.group(1)))
        if url:
            return url
    return None
