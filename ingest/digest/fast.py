"""A fast path for well-formed RSS 2.0, RSS 1.0 and Atom 1.0: lxml instead of feedparser's SAX
handlers, with feedparser as the reference and the fallback (docs/decisions.md, "Parsing and
normalizing").

``read`` returns what ``feedparser.parse`` would have returned for the keys ``ingest.digest.parse``
reads (``feed``, ``entries``, ``version``), or None when it declines the document. It declines
whatever it does not reproduce exactly: XML that is not well-formed (feedparser's strict parser
would fail too, and its loose one reads differently), other dialects (Atom 0.3, CDF, RSS without
``rss`` or ``rdf:RDF`` at the root), and any element whose meaning to feedparser depends on where
it sits when it sits elsewhere (a ``<description>`` inside an unknown child of an item, a
``<title>`` inside ``<media:content>``, markup inside a text element, ``mode="base64"``...).
``tests/test_fast_parse.py`` holds both paths to the same posts over the corpus and the fixtures.

What feedparser does and this module repeats, rule by rule (``feedparser/mixin.py``,
``feedparser/namespaces/``): element names are lower-cased and prefixed by the standard prefix of
their namespace; ``rel`` and ``type`` values are lower-cased; every text is stripped, repaired
when it is UTF-8 read as Latin-1 and has its C1 controls mapped to windows-1252; RSS titles that
look like HTML are HTML; a second ``description``/``summary`` before any content becomes content
(as ``text/plain``); the first non-empty title of a level wins; a permalink guid is the link when
the item has none; authors go through ``ingest.digest.people`` (feedparser's
``_sync_author_detail`` with a better e-mail pattern, which feedparser is made to use too); dates
go through feedparser's own ``_parse_date``; ``xml:base`` is tracked with feedparser's stack
(which keeps an inner base after its element closes when the outer level had none).

The parser is hardened: no DTD is loaded, no entity is resolved, nothing is fetched, and the
document reaching it has had its DOCTYPE removed (``ingest.digest.parse``), so no entity can be
declared at all; libxml2's default size limits stay on (``huge_tree`` off), and a document
beyond them goes to feedparser.
"""

from __future__ import annotations

import contextlib
import html.entities
import re
import threading
from collections.abc import Callable
from typing import Any

from feedparser.datetimes import _parse_date
from feedparser.html import _cp1252
from feedparser.sanitizer import _HTMLSanitizer
from feedparser.urls import _urljoin, make_safe_absolute_uri
from feedparser.util import FeedParserDict
from lxml import etree

from ingest.digest.people import sync_person

ENABLED = True
"""Whether ``ingest.digest.parse`` tries this path first; tests switch it off to compare."""

Dict = dict[str, Any]

# Namespace URI (lower-cased) -> feedparser's standard prefix ('' for the feed formats' own).
_NAMESPACES = {
    "": "",
    "http://backend.userland.com/rss": "",
    "http://blogs.law.harvard.edu/tech/rss": "",
    "http://purl.org/rss/1.0/": "",
    "http://my.netscape.com/rdf/simple/0.9/": "",
    "http://example.com/newformat#": "",
    "http://example.com/necho": "",
    "http://purl.org/echo/": "",
    "uri/of/echo/namespace#": "",
    "http://purl.org/pie/": "",
    "http://purl.org/atom/ns#": "",
    "http://www.w3.org/2005/atom": "",
    "http://purl.org/rss/1.0/modules/rss091#": "",
    "http://webns.net/mvcb/": "admin",
    "http://purl.org/rss/1.0/modules/aggregation/": "ag",
    "http://purl.org/rss/1.0/modules/annotate/": "annotate",
    "http://media.tangent.org/rss/1.0/": "audio",
    "http://backend.userland.com/blogchannelmodule": "blogChannel",
    "http://creativecommons.org/ns#license": "cc",
    "http://web.resource.org/cc/": "cc",
    "http://cyber.law.harvard.edu/rss/creativecommonsrssmodule.html": "creativeCommons",
    "http://backend.userland.com/creativecommonsrssmodule": "creativeCommons",
    "http://purl.org/rss/1.0/modules/company": "co",
    "http://purl.org/rss/1.0/modules/content/": "content",
    "http://my.theinfo.org/changed/1.0/rss/": "cp",
    "http://purl.org/dc/elements/1.1/": "dc",
    "http://purl.org/dc/terms/": "dcterms",
    "http://purl.org/rss/1.0/modules/email/": "email",
    "http://purl.org/rss/1.0/modules/event/": "ev",
    "http://rssnamespace.org/feedburner/ext/1.0": "feedburner",
    "http://freshmeat.net/rss/fm/": "fm",
    "http://xmlns.com/foaf/0.1/": "foaf",
    "http://www.w3.org/2003/01/geo/wgs84_pos#": "geo",
    "http://www.georss.org/georss": "georss",
    "http://www.opengis.net/gml": "gml",
    "http://postneo.com/icbm/": "icbm",
    "http://purl.org/rss/1.0/modules/image/": "image",
    "http://www.itunes.com/dtds/podcast-1.0.dtd": "itunes",
    "http://example.com/dtds/podcast-1.0.dtd": "itunes",
    "http://purl.org/rss/1.0/modules/link/": "l",
    "http://search.yahoo.com/mrss": "media",
    "http://search.yahoo.com/mrss/": "media",
    "http://madskills.com/public/xml/rss/module/pingback/": "pingback",
    "http://prismstandard.org/namespaces/1.2/basic/": "prism",
    "http://www.w3.org/1999/02/22-rdf-syntax-ns#": "rdf",
    "http://www.w3.org/2000/01/rdf-schema#": "rdfs",
    "http://purl.org/rss/1.0/modules/reference/": "ref",
    "http://purl.org/rss/1.0/modules/richequiv/": "reqv",
    "http://purl.org/rss/1.0/modules/search/": "search",
    "http://purl.org/rss/1.0/modules/slash/": "slash",
    "http://schemas.xmlsoap.org/soap/envelope/": "soap",
    "http://purl.org/rss/1.0/modules/servicestatus/": "ss",
    "http://hacks.benhammersley.com/rss/streaming/": "str",
    "http://purl.org/rss/1.0/modules/subscription/": "sub",
    "http://purl.org/rss/1.0/modules/syndication/": "sy",
    "http://schemas.pocketsoap.com/rss/mydescmodule/": "szf",
    "http://purl.org/rss/1.0/modules/taxonomy/": "taxo",
    "http://purl.org/rss/1.0/modules/threading/": "thr",
    "http://purl.org/rss/1.0/modules/textinput/": "ti",
    "http://madskills.com/public/xml/rss/module/trackback/": "trackback",
    "http://wellformedweb.org/commentapi/": "wfw",
    "http://purl.org/rss/1.0/modules/wiki/": "wiki",
    "http://www.w3.org/1999/xhtml": "xhtml",
    "http://www.w3.org/1999/xlink": "xlink",
    "http://www.w3.org/XML/1998/namespace": "xml",
    "http://www.w3.org/xml/1998/namespace": "xml",
    "http://podlove.org/simple-chapters": "psc",
}
_STANDARD_PREFIXES = frozenset(p for p in _NAMESPACES.values() if p)
_ATOM10 = "http://www.w3.org/2005/atom"
_RSS10 = "http://purl.org/rss/1.0/"

# Every element name feedparser has a handler for (``_start_x``/``_end_x``, lower-cased), plus
# the keys ``ingest.digest.parse`` reads: one of these anywhere this module does not expect it
# makes it decline.
_FEEDPARSER_NAMES = frozenset(
    {
        "abstract",
        "author",
        "body",
        "category",
        "cc_license",
        "channel",
        "cloud",
        "content",
        "content_encoded",
        "contributor",
        "copyright",
        "created",
        "creativecommons_license",
        "dc_author",
        "dc_contributor",
        "dc_creator",
        "dc_date",
        "dc_description",
        "dc_language",
        "dc_publisher",
        "dc_rights",
        "dc_subject",
        "dc_title",
        "dcterms_created",
        "dcterms_issued",
        "dcterms_modified",
        "dcterms_valid",
        "description",
        "email",
        "enclosure",
        "entry",
        "expirationdate",
        "feed",
        "feedburner_browserfriendly",
        "fullitem",
        "generator",
        "geom",
        "georss_box",
        "georss_line",
        "georss_point",
        "georss_polygon",
        "georss_where",
        "georssgeom",
        "gml_exterior",
        "gml_linearring",
        "gml_linestring",
        "gml_point",
        "gml_polygon",
        "gml_pos",
        "gml_poslist",
        "guid",
        "height",
        "homepage",
        "id",
        "image",
        "info",
        "issued",
        "item",
        "itunes_author",
        "itunes_block",
        "itunes_category",
        "itunes_email",
        "itunes_explicit",
        "itunes_image",
        "itunes_keywords",
        "itunes_link",
        "itunes_name",
        "itunes_owner",
        "itunes_subtitle",
        "itunes_summary",
        "keywords",
        "language",
        "lastbuilddate",
        "link",
        "managingeditor",
        "media_category",
        "media_content",
        "media_credit",
        "media_description",
        "media_group",
        "media_keywords",
        "media_license",
        "media_player",
        "media_rating",
        "media_restriction",
        "media_thumbnail",
        "media_title",
        "modified",
        "name",
        "newlocation",
        "psc_chapter",
        "psc_chapters",
        "pubdate",
        "published",
        "rights",
        "rss",
        "source",
        "subtitle",
        "summary",
        "tagline",
        "tags",
        "textinput",
        "title",
        "updated",
        "uri",
        "url",
        "webmaster",
        "where",
        "width",
        "xhtml_body",
    }
)
_READ_KEYS = frozenset(
    {
        "links",
        "image",
        "tags",
        "content",
        "media_thumbnail",
        "media_content",
        "summary",
        "summary_detail",
        "title_detail",
        "author_detail",
        "author",
        "authors",
        "id",
        "link",
        "title",
        "published_parsed",
        "updated_parsed",
        "ttl",
    }
)
_SENSITIVE = _FEEDPARSER_NAMES | _READ_KEYS

# Handlers that change nothing ``ingest.digest.parse`` reads, wherever they sit in an item or a
# channel, as long as nothing feedparser knows is nested in them.
_HARMLESS = frozenset(
    {
        "cloud",
        "copyright",
        "rights",
        "dc_rights",
        "created",
        "dcterms_created",
        "dcterms_valid",
        "expirationdate",
        "generator",
        "language",
        "dc_language",
        "info",
        "feedburner_browserfriendly",
        "subtitle",
        "tagline",
        "itunes_subtitle",
        "itunes_block",
        "itunes_explicit",
        "media_credit",
        "media_license",
        "media_player",
        "media_rating",
        "media_restriction",
        "newlocation",
        "webmaster",
        "dc_publisher",
        "cc_license",
        "creativecommons_license",
        "width",
        "height",
        "url",
        "homepage",
        "uri",
        "name",
        "email",
        "itunes_name",
        "itunes_email",
    }
)
# What a channel or feed carries that is read only for entries: skipped at the feed's level.
_DATES = frozenset(
    {
        "published",
        "pubdate",
        "issued",
        "dcterms_issued",
        "updated",
        "modified",
        "lastbuilddate",
        "dc_date",
        "dcterms_modified",
    }
)
_CATEGORIES = frozenset(
    {
        "category",
        "keywords",
        "dc_subject",
        "media_category",
        "itunes_category",
        "tags",
        "itunes_keywords",
        "media_keywords",
    }
)
_PERSON_PARTS = frozenset({"name", "email", "uri", "url", "homepage"})

_HTML_TYPES = frozenset({"application/xhtml+xml", "text/html"})
_PLAIN_TYPES = frozenset({"text/plain", "text/html", "application/xhtml+xml"})
_CAN_BE_RELATIVE = frozenset(
    {"comments", "docs", "href", "icon", "id", "link", "logo", "url", "wfw_comment"}
    | {"wfw_commentrss"}
)
_XML_BASE = "{http://www.w3.org/XML/1998/namespace}base"
# No leading \b: a literal start lets the regex engine skip ahead (a false hit only makes the
# reader more careful).
_XMLNS_DECL = re.compile(r"""xmlns(?::([A-Za-z_][\w.-]*))?\s*=\s*(["'])(.*?)\2""")
_C1_CONTROLS = re.compile("[\x80-\x9f]")
_HAS_BASE = etree.XPath("boolean(//@*[local-name()='base'])")
_CLOSE_TAG = re.compile(r"</(\w+)>")
_ENTITY_REF = re.compile(r"&#?\w+;")
_TAG_NAME = re.compile(r"</?(\w+)")
_NAMED_ENTITY = re.compile(r"&(\w+);")
_QUERY_ENTITY = re.compile("&([A-Za-z0-9_]+);")
_ACCEPTABLE_ELEMENTS = frozenset(_HTMLSanitizer.acceptable_elements)

_local = threading.local()


class _DeclineError(Exception):
    """The document is not one this module reproduces feedparser on: feedparser reads it."""


def _parser() -> etree.XMLParser:
    parser: etree.XMLParser | None = getattr(_local, "parser", None)
    if parser is None:
        # lxml parsers are not to be shared between threads.
        parser = etree.XMLParser(
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            dtd_validation=False,
            huge_tree=False,
            remove_comments=False,
            remove_pis=False,
        )
        _local.parser = parser
    return parser


def read(text: str) -> FeedParserDict | None:
    """feedparser's result for ``text`` (DOCTYPE removed, declared UTF-8), as far as
    ``ingest.digest.parse`` reads it, or None to leave the document to feedparser."""
    if not ENABLED:
        return None
    try:
        return _Reader(text).read()
    except _DeclineError:
        return None


# --- text as feedparser's pop() leaves it --------------------------------------------------------


def _finish(output: str) -> str:
    """The last steps of feedparser's ``pop``: UTF-8 read as Latin-1 repaired, C1 mapped."""
    if not output.isascii():
        with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
            output = output.encode("iso-8859-1").decode("utf-8")
        if _C1_CONTROLS.search(output):
            output = output.translate(_cp1252)
    return output


def _looks_like_html(s: str) -> bool:
    if not (_CLOSE_TAG.search(s) or _ENTITY_REF.search(s)):
        return False
    if any(t.lower() not in _ACCEPTABLE_ELEMENTS for t in _TAG_NAME.findall(s)):
        return False
    return all(e in html.entities.entitydefs for e in _NAMED_ENTITY.findall(s))


def _query_fixed(url: str) -> str:
    """feedparser's repair of ``?a=1&b=2`` read as an entity reference (``&b;`` becomes ``&b``)."""
    return _QUERY_ENTITY.sub(r"&\g<1>", url) if "&" in url else url


def _content_type(value: str) -> str:
    value = value.lower()
    if value in ("text", "plain"):
        return "text/plain"
    if value == "html":
        return "text/html"
    if value == "xhtml":
        return "application/xhtml+xml"
    return value


def _escape_xhtml(text: str) -> str:
    return text.replace("&", "&amp;").replace(">", "&gt;").replace("<", "&lt;")


# --- the reader ----------------------------------------------------------------------------------


class _Context:
    """One feedparser context (the feed, or one entry) and the state feedparser keeps for it."""

    __slots__ = ("d", "depths", "entry", "has_content", "title_depth")

    def __init__(self, *, entry: bool) -> None:
        self.d: Dict = {}
        self.entry = entry
        self.title_depth = -1
        self.has_content = False
        self.depths: dict[str, int] = {}

    def store(self, name: str, value: str, depth: int, detail: Dict | None = None) -> None:
        """feedparser's ``pop`` storing ``name``: in an entry, a deeper element does not replace
        what a shallower one set (its detail still does); in the feed, the last one wins."""
        old = self.depths.get(name) if self.entry else None
        if old is None or depth <= old:
            if self.entry:
                self.depths[name] = depth
            self.d[name] = value
        if detail is not None:
            self.d[f"{name}_detail"] = detail


class _Reader:
    def __init__(self, text: str) -> None:
        self.text = text
        self.version = ""
        self.namespacemap: dict[str | None, str] = {}
        self.unknown_prefix: dict[str, str] = {}
        self.keys: dict[str, str] = {}
        self.start_base: dict[Any, str] = {}
        self.end_base: dict[Any, str] = {}
        self.tracks_base = False
        self.xlink = False

    # -- document ------------------------------------------------------------------------------

    def read(self) -> FeedParserDict:  # noqa: PLR0912  (one branch per dialect's root)
        self._namespaces()
        try:
            root = etree.fromstring(self.text.encode("utf-8"), _parser())
        except (etree.XMLSyntaxError, ValueError) as exc:
            raise _DeclineError from exc
        if not isinstance(root.tag, str):
            raise _DeclineError
        if _HAS_BASE(root):
            self._track_bases(root)
        key = self._key(root)
        feed = _Context(entry=False)
        entries: list[Dict] = []
        if key == "rss":
            self.version = "rss20"  # any 'rss' version: none changes what is read here
            for child in self._children(root):
                if self._key(child) != "channel":
                    self._unknown(child)
                    continue
                self._container(child, 2, feed, entries)
        elif key == "rdf_rdf":
            if self.version not in ("rss10", "rss090"):
                raise _DeclineError
            for child in self._children(root):
                child_key = self._key(child)
                if child_key == "channel":
                    self._container(child, 2, feed, entries)
                elif child_key == "item":
                    entries.append(self._entry(child, 2))
                elif child_key in ("image", "textinput"):
                    self._image(child, None)  # outside the channel: stored nowhere
                else:
                    self._unknown(child)
        elif key == "feed" and root.tag.lower() == "{" + _ATOM10 + "}feed":
            if self.version != "atom10":
                # Another format's namespace was declared first: feedparser keeps its version.
                raise _DeclineError
            if root.attrib:
                self._check_container_attributes(root)
            self._container(root, 1, feed, entries, channel=False)
        else:
            raise _DeclineError
        # The top level as feedparser's own type (built from plain dicts, which is cheap), so its
        # computed keys (``enclosures``, ``category``) and aliases (``guid``) read the same;
        # nested values stay plain dicts, as most of feedparser's are (built here, a
        # FeedParserDict costs a Python call per item set or read).
        result: FeedParserDict = FeedParserDict(
            feed=FeedParserDict(feed.d),
            entries=[FeedParserDict(entry) for entry in entries],
            version=self.version,
            bozo=False,
        )
        return result

    def _namespaces(self) -> None:
        """Replay feedparser's ``track_namespace`` over the document's declarations, in order.

        Declarations are found in the text, so a declaration quoted inside content counts too:
        that only ever makes the reader decline more.
        """
        seen_prefixes: dict[str, str] = {}
        for prefix, _quote, uri in _XMLNS_DECL.findall(self.text):
            lower = uri.lower()
            if prefix and seen_prefixes.setdefault(prefix, uri) != uri:
                raise _DeclineError  # one prefix for two namespaces: declaration order matters
            if not self.version:
                if not prefix and lower == "http://my.netscape.com/rdf/simple/0.9/":
                    self.version = "rss090"
                elif lower == _RSS10:
                    self.version = "rss10"
                elif lower == _ATOM10:
                    self.version = "atom10"
            if "backend.userland.com/rss" in lower:
                lower = "http://backend.userland.com/rss"
            if prefix and uri == "http://www.w3.org/1999/xlink":
                self.xlink = True
            standard = _NAMESPACES.get(lower)
            if standard is not None:
                if prefix and prefix != standard and prefix in _STANDARD_PREFIXES:
                    raise _DeclineError  # feedparser would read another namespace's elements askew
                self.namespacemap[prefix or None] = standard
            elif prefix:
                if uri in self.unknown_prefix and self.unknown_prefix[uri] != prefix:
                    raise _DeclineError
                # feedparser names the element by that prefix, handlers included
                # (``xmlns:dc="https://..."`` still makes dc:creator the author).
                self.unknown_prefix.setdefault(uri, prefix)

    def _key(self, element: Any) -> str:
        """feedparser's name for an element: ``prefix_local`` or ``local``, lower-cased."""
        tag: str = element.tag
        key = self.keys.get(tag)
        if key is None:
            if tag[0] == "{":
                uri, local = tag[1:].split("}", 1)
                lower = uri.lower()
                if "backend.userland.com/rss" in lower:
                    lower = "http://backend.userland.com/rss"
                prefix = _NAMESPACES.get(lower)
                if prefix is None:
                    prefix = self.unknown_prefix.get(uri, "")
                elif prefix:
                    prefix = self.namespacemap.get(prefix, prefix)
                key = f"{prefix}_{local}".lower() if prefix else local.lower()
            else:
                key = tag.lower()
            self.keys[tag] = key
        return key

    @staticmethod
    def _children(element: Any) -> list[Any]:
        return [child for child in element if isinstance(child.tag, str)]

    def _attrs(self, element: Any) -> dict[str, str]:
        """The attributes as feedparser's strict parser hands them to its handlers."""
        items = element.items()
        if not items:
            return {}
        attrs: dict[str, str] = {}
        bare: dict[str, str] = {}
        for name, value in items:
            if name[0] == "{":
                uri, local = name[1:].split("}", 1)
                prefix = _NAMESPACES.get(uri.lower(), "")
                local = local.lower()
                if prefix:
                    attrs[f"{prefix}:{local}".lower()] = value
                bare[local] = value
            else:
                bare[name.lower()] = value
        attrs.update(bare)
        for name in ("rel", "type"):
            if name in attrs:
                attrs[name] = attrs[name].lower()
        return attrs

    def _unknown(self, element: Any) -> None:
        """An element feedparser has no handler for: fine unless it hides one that it has."""
        for inner in element.iter():
            if (
                isinstance(inner.tag, str)
                and inner is not element
                and self._key(inner) in _SENSITIVE
            ):
                raise _DeclineError(self._key(element), self._key(inner))
        if self._key(element) in _SENSITIVE:
            raise _DeclineError(self._key(element))

    def _track_bases(self, root: Any) -> None:
        """feedparser's ``baseuri`` at each element's start and end tag (its stack kept as is)."""
        self.tracks_base = True
        stack: list[str] = []
        base = ""
        for event, element in etree.iterwalk(root, events=("start", "end")):
            if event == "start":
                given = [
                    value
                    for name, value in element.attrib.items()
                    if name == "base" or (name[0] == "{" and name.endswith("}base"))
                ]
                if len(given) > 1:
                    raise _DeclineError
                xml_base = element.get(_XML_BASE)
                value = (xml_base if xml_base is not None else (given[0] if given else "")) or base
                if base:
                    base = make_safe_absolute_uri(base, value) or base
                else:
                    base = _urljoin(base, value)
                stack.append(base)
                self.start_base[element] = base
            else:
                self.end_base[element] = base
                stack.pop()
                if stack and stack[-1]:
                    base = stack[-1]

    def _base(self, element: Any, *, end: bool) -> str:
        if not self.tracks_base:
            return ""
        return (self.end_base if end else self.start_base)[element]

    def _leaf(self, element: Any) -> str:
        """The text of an element with no child element (comments and PIs are dropped)."""
        if len(element) == 0:
            return element.text or ""
        pieces = [element.text or ""]
        for child in element:
            if isinstance(child.tag, str):
                raise _DeclineError  # markup inside a text element: feedparser serializes it
            pieces.append(child.tail or "")
        return "".join(pieces)

    def _text(self, element: Any, name: str, *, guidislink: bool = False) -> str:
        """feedparser's ``pop`` of a plain (non-content) element."""
        output = self._leaf(element).strip()
        if name in _CAN_BE_RELATIVE and output and (name != "id" or guidislink):
            output = _urljoin(self._base(element, end=True), output)
        return _finish(output)

    def _content(self, element: Any, name: str, default_type: str) -> Dict:
        """feedparser's ``push_content``/``pop_content``: the detail dict, value included."""
        attrs = self._attrs(element)
        if "mode" in attrs:
            raise _DeclineError
        ctype = _content_type(attrs.get("type", default_type))
        if ctype not in _PLAIN_TYPES:
            raise _DeclineError  # base64 or XML content: rare, and read differently
        if ctype == "application/xhtml+xml" and self.version == "atom10" and len(element):
            output = "".join(self._xhtml_pieces(element)).strip()
        else:
            text = self._leaf(element)
            if ctype == "application/xhtml+xml":
                text = _escape_xhtml(text)
            output = text.strip()
        if (
            not self.version.startswith("atom")
            and ctype == "text/plain"
            and _looks_like_html(output)
        ):
            ctype = "text/html"
        output = _finish(output)
        detail: Dict = {
            "type": ctype,
            "language": None,
            "base": self._base(element, end=False),
            "value": output,
        }
        if name == "content" and attrs.get("src"):
            detail["src"] = attrs["src"]
        return detail

    def _xhtml_pieces(self, element: Any) -> list[str]:
        """Atom XHTML content as feedparser serializes it: its pieces, the one ``<div>`` around
        them all removed (``feedparser.mixin._FeedParserMixin.pop``)."""
        pieces: list[str] = []
        if element.text:
            pieces.append(_escape_xhtml(element.text))
        for child in element:
            self._serialize(child, pieces)
        while len(pieces) > 1 and not pieces[-1].strip():
            del pieces[-1]
        while len(pieces) > 1 and not pieces[0].strip():
            del pieces[0]
        opens = pieces and (pieces[0] == "<div>" or pieces[0].startswith("<div "))
        if opens and pieces[-1] == "</div>":
            depth = 0
            for piece in pieces[:-1]:
                if piece.startswith("</"):
                    depth -= 1
                    if depth == 0:
                        break
                elif piece.startswith("<") and not piece.endswith("/>"):
                    depth += 1
            else:
                pieces = pieces[1:-1]
        return pieces

    def _serialize(self, element: Any, pieces: list[str]) -> None:
        if isinstance(element.tag, str):
            key = self._key(element)
            local = element.tag.rsplit("}", 1)[-1].lower()
            if key in _SENSITIVE or local in ("svg", "math") or self.xlink:
                # feedparser runs its end-tag handler even inside content; SVG and MathML are
                # serialized with namespaces of their own, and an xlink declaration becomes an
                # attribute of the next element.
                raise _DeclineError(key)
            attrs: dict[str, str] = {}
            for name, value in element.items():
                if name[0] == "{":
                    raise _DeclineError  # namespaced attributes: written twice, in an order
                lower = name.lower()
                if lower in attrs:
                    raise _DeclineError
                attrs[lower] = value.lower() if lower in ("rel", "type") else value
            written = "".join(
                f' {name}="{_escape_xhtml(value).replace(chr(34), "&quot;")}"'
                for name, value in attrs.items()
            )
            pieces.append(f"<{local}{written}>")
            if element.text:
                pieces.append(_escape_xhtml(element.text))
            for child in element:
                self._serialize(child, pieces)
            pieces.append(f"</{local}>")
        if element.tail:
            pieces.append(_escape_xhtml(element.tail))

    # -- containers ----------------------------------------------------------------------------

    def _check_container_attributes(self, element: Any) -> None:
        attrs = self._attrs(element)
        if "href" in attrs or "lastmod" in attrs:
            raise _DeclineError  # CDF's attributes, read as a link and a date

    def _container(
        self, element: Any, depth: int, feed: _Context, entries: list[Dict], *, channel: bool = True
    ) -> None:
        """A channel (RSS) or feed (Atom): its own fields, and its items in order."""
        if channel and element.attrib:
            self._check_container_attributes(element)
        item_key = "item" if channel else "entry"
        for child in self._children(element):
            key = self._key(child)
            if key == item_key:
                feed.title_depth = -1
                entries.append(self._entry(child, depth + 1))
            elif key == "ttl":
                # No handler: feedparser stores its text, or its attributes when it has any.
                attrs = self._attrs(child)
                feed.d["ttl"] = attrs if attrs else self._text(child, "ttl")
            elif key in _DATES or key in _CATEGORIES:
                for inner in child.iter():
                    inner_key = self._key(inner) if isinstance(inner.tag, str) else ""
                    if inner is not child and inner_key and inner_key != "itunes_category":
                        raise _DeclineError
            elif key in ("image", "textinput"):
                feed.title_depth = -1
                self._image(child, feed, depth + 1)
            elif key == "itunes_owner":
                self._owner(child, feed)
            else:
                self._field(child, key, depth + 1, feed, in_entry=False)

    def _entry(self, element: Any, depth: int) -> Dict:
        self._check_container_attributes(element)
        entry = _Context(entry=True)
        about = self._attrs(element).get("rdf:about")
        if about:
            entry.d["id"] = about
        for child in self._children(element):
            self._field(child, self._key(child), depth + 1, entry, in_entry=True)
        return entry.d

    def _image(self, element: Any, feed: _Context | None, depth: int = 0) -> None:
        """A channel's image or text input: stored apart, its title still counted as a title."""
        if self._key(element) == "image":
            allowed: tuple[str, ...] = ("title", "link", "description", "url", "href", "width")
            allowed += ("height",)
        else:
            allowed = ("title", "link", "description", "name")
        for child in self._children(element):
            key = self._key(child)
            if key not in allowed:
                # feedparser stops reading the image there: the rest would be the feed's.
                raise _DeclineError
            if key == "title" and feed is not None and self._leaf(child).strip():
                feed.title_depth = depth + 1
            elif len(child):
                raise _DeclineError

    def _owner(self, element: Any, feed: _Context) -> None:
        """``itunes:owner``: the publisher's, but feedparser's ``_save_author`` re-syncs the
        feed's author with each part and writes it into the last of the feed's authors."""
        for child in self._children(element):
            key = self._key(child)
            if key not in ("itunes_name", "itunes_email", "name", "email"):
                raise _DeclineError
            value = self._leaf(child).strip()
            sync_person(feed.d, "author", dict)
            feed.d.setdefault("authors", [{}])[-1][key.removeprefix("itunes_")] = value

    # -- one child of a channel or an item ------------------------------------------------------

    def _field(self, child: Any, key: str, depth: int, ctx: _Context, *, in_entry: bool) -> None:
        handler = _FIELDS.get(key)
        if handler is not None:
            handler(self, child, key, depth, ctx, in_entry)
        elif key in _HARMLESS:
            self._unknown_children(child)
        elif key in _SENSITIVE:
            raise _DeclineError(key)
        else:
            self._unknown(child)

    def _unknown_children(self, element: Any) -> None:
        for inner in element.iter():
            if (
                inner is not element
                and isinstance(inner.tag, str)
                and self._key(inner) in _SENSITIVE
            ):
                raise _DeclineError

    def _title(self, child: Any, key: str, depth: int, ctx: _Context, in_entry: bool) -> None:
        detail = self._content(child, "title", "text/plain")
        if -1 < ctx.title_depth <= depth:
            return
        ctx.store("title", detail["value"], depth, detail)
        if detail["value"] and key != "media_title":
            ctx.title_depth = depth

    def _summary(self, child: Any, key: str, depth: int, ctx: _Context, in_entry: bool) -> None:
        if not in_entry:
            self._unknown_children(child)  # the feed's subtitle: not read
            return
        if key == "abstract":
            detail = self._content(child, "description", "text/plain")
        elif "summary" in ctx.d and not ctx.has_content:
            # feedparser's _start_summary/_start_description: a second one is content.
            self._store_content(ctx, self._content(child, "content", "text/plain"))
            return
        elif key in ("summary", "itunes_summary"):
            detail = self._content(child, "summary", "text/plain")
        else:
            detail = self._content(child, "description", "text/html")
        ctx.store("summary", detail["value"], depth, detail)

    @staticmethod
    def _store_content(ctx: _Context, detail: Dict) -> None:
        ctx.has_content = True
        ctx.d.setdefault("content", []).append(detail)
        if detail["type"] in _PLAIN_TYPES:
            ctx.d.setdefault("summary", detail["value"])

    def _content_field(
        self, child: Any, key: str, depth: int, ctx: _Context, in_entry: bool
    ) -> None:
        if not in_entry:
            raise _DeclineError
        default = "text/plain" if key == "content" else "text/html"
        self._store_content(ctx, self._content(child, "content", default))

    def _link(self, child: Any, key: str, depth: int, ctx: _Context, in_entry: bool) -> None:
        attrs = self._attrs(child)
        if "href" in attrs and not attrs["href"].strip():
            return  # no link at all, as ``ingest.digest.prefilter`` makes it for feedparser
        attrs.setdefault("rel", "alternate")
        attrs.setdefault("type", "application/atom+xml" if attrs["rel"] == "self" else "text/html")
        href = attrs.get("url", attrs.get("uri", attrs.get("href")))
        if href:
            attrs.pop("url", None)
            attrs.pop("uri", None)
            attrs["href"] = href
        if "href" in attrs:
            attrs["href"] = _urljoin(self._base(child, end=False), attrs["href"])
        links = ctx.d.setdefault("links", [])
        links.append(attrs)
        if "href" in attrs:
            if attrs["rel"] == "alternate" and _content_type(attrs["type"]) in _HTML_TYPES:
                ctx.d["link"] = attrs["href"]
            self._unknown_children(child)
            return
        output = self._text(child, "link")
        if in_entry:
            output = _query_fixed(output.replace("&amp;", "&"))
            ctx.d["link"] = output
            if output:
                links[-1]["href"] = output
        else:
            ctx.d["link"] = links[-1]["href"] = _query_fixed(output)

    def _guid(self, child: Any, key: str, depth: int, ctx: _Context, in_entry: bool) -> None:
        guidislink = self._attrs(child).get("ispermalink", "true") == "true"
        value = self._text(child, "id", guidislink=guidislink)
        ctx.store("id", value, depth)
        ctx.d.setdefault("guidislink", guidislink and "link" not in ctx.d)
        if guidislink:
            ctx.d.setdefault("link", value)

    def _author(self, child: Any, key: str, depth: int, ctx: _Context, in_entry: bool) -> None:
        d = ctx.d
        d.setdefault("authors", []).append({})
        pieces = [child.text or ""]
        for part in child:
            if not isinstance(part.tag, str):
                pieces.append(part.tail or "")
                continue
            part_key = self._key(part)
            if part_key in _PERSON_PARTS:
                if part_key in ("name", "email"):
                    _save_author(d, part_key, self._leaf(part).strip())
                else:
                    _save_author(d, "href", self._text(part, "href"))
            elif part_key in _SENSITIVE:
                raise _DeclineError(part_key)
            else:
                self._unknown(part)
                if part.attrib:  # no handler and attributes: feedparser pushes nothing for it
                    pieces.append(self._leaf(part))
            pieces.append(part.tail or "")
        ctx.store("author", _finish("".join(pieces).strip()), depth)
        sync_person(d, "author", dict)

    def _date(self, child: Any, key: str, depth: int, ctx: _Context, in_entry: bool) -> None:
        name = "published" if key in _PUBLISHED else "updated"
        value = self._text(child, name)
        ctx.d[name] = value
        ctx.d[f"{name}_parsed"] = _parse_date(value)

    def _category(self, child: Any, key: str, depth: int, ctx: _Context, in_entry: bool) -> None:
        attrs = self._attrs(child)
        tags = ctx.d.setdefault("tags", [])
        if key == "itunes_category":
            if len(child):
                raise _DeclineError  # nested iTunes categories: feedparser's reading is odd
            _add_tag(tags, attrs.get("text"), "http://www.itunes.com/", None)
        else:
            if key == "media_category":
                attrs.setdefault("scheme", "http://search.yahoo.com/mrss/category_schema")
            _add_tag(
                tags,
                attrs.get("term"),
                attrs.get("scheme", attrs.get("domain")),
                attrs.get("label"),
            )
        value = self._text(child, "category")
        if value:
            if tags and not tags[-1]["term"]:
                tags[-1]["term"] = value
            else:
                _add_tag(tags, value, None, None)

    def _keywords(self, child: Any, key: str, depth: int, ctx: _Context, in_entry: bool) -> None:
        value = self._text(child, key)
        tags = ctx.d.setdefault("tags", []) if key == "tags" else ctx.d.get("tags")
        scheme = "http://www.itunes.com/" if key == "itunes_keywords" else None
        for term in value.split(","):
            if term.strip() or key == "tags":
                if tags is None:
                    tags = ctx.d.setdefault("tags", [])
                _add_tag(tags, term.strip(), scheme, None)

    def _enclosure(self, child: Any, key: str, depth: int, ctx: _Context, in_entry: bool) -> None:
        attrs = _enforce_href(self._attrs(child))
        attrs["rel"] = "enclosure"
        ctx.d.setdefault("links", []).append(attrs)
        self._unknown_children(child)

    def _media_group(self, child: Any, key: str, depth: int, ctx: _Context, in_entry: bool) -> None:
        self._media_children(child, _IN_MEDIA_GROUP, depth, ctx, in_entry)

    def _media_content(
        self, child: Any, key: str, depth: int, ctx: _Context, in_entry: bool
    ) -> None:
        ctx.d.setdefault("media_content", []).append(self._attrs(child))
        self._media_children(child, _IN_MEDIA_CONTENT, depth, ctx, in_entry)

    def _media_children(
        self, child: Any, read: frozenset[str], depth: int, ctx: _Context, in_entry: bool
    ) -> None:
        """Read the children of a media element that feedparser reads there (``read``), one
        level deeper; decline one it would read elsewhere."""
        for inner in self._children(child):
            inner_key = self._key(inner)
            if inner_key in read:
                self._field(inner, inner_key, depth + 1, ctx, in_entry=in_entry)
            elif inner_key in _SENSITIVE and inner_key not in _HARMLESS:
                raise _DeclineError(inner_key)
            else:
                self._unknown_children(inner)

    def _media_thumbnail(
        self, child: Any, key: str, depth: int, ctx: _Context, in_entry: bool
    ) -> None:
        attrs = self._attrs(child)
        thumbnails = ctx.d.setdefault("media_thumbnail", [])
        url = self._text(child, "url")
        thumbnails.append(attrs)
        if url.strip() and "url" not in attrs:
            attrs["url"] = url

    def _itunes_image(
        self, child: Any, key: str, depth: int, ctx: _Context, in_entry: bool
    ) -> None:
        attrs = self._attrs(child)
        if attrs.get("href"):
            ctx.d["image"] = {"href": attrs["href"]}
        elif attrs.get("url"):
            ctx.d["image"] = {"href": attrs["url"]}
        self._unknown_children(child)

    def _image_in_entry(
        self, child: Any, key: str, depth: int, ctx: _Context, in_entry: bool
    ) -> None:
        """An ``<image>`` inside an item: feedparser reads its title as the item's (at its depth);
        its link and URL go nowhere read."""
        if not in_entry:
            raise _DeclineError
        ctx.title_depth = -1
        for inner in self._children(child):
            inner_key = self._key(inner)
            if inner_key == "title":
                self._title(inner, inner_key, depth + 1, ctx, in_entry)
            elif inner_key in ("link", "url", "href", "width", "height"):
                self._leaf(inner)
            else:
                raise _DeclineError(inner_key)

    def _chapters(self, child: Any, key: str, depth: int, ctx: _Context, in_entry: bool) -> None:
        """Podlove chapters: stored apart, nothing read from them."""
        for inner in child.iter():
            nested = inner is not child and isinstance(inner.tag, str)
            if nested and (self._key(inner) != "psc_chapter" or len(inner)):
                raise _DeclineError

    def _source(self, child: Any, key: str, depth: int, ctx: _Context, in_entry: bool) -> None:
        """RSS's ``<source>`` (a name) or Atom's (the metadata of the feed the entry came from):
        feedparser stores what is inside apart, but starts counting titles afresh and takes
        the source's own title as the level's first."""
        ctx.title_depth = -1
        for inner in self._children(child):
            inner_key = self._key(inner)
            if inner_key not in _IN_SOURCE:
                raise _DeclineError(inner_key)
            if inner_key in ("author", "contributor"):
                for part in inner.iter():
                    part_key = self._key(part) if isinstance(part.tag, str) else ""
                    if part is not inner and part_key and part_key not in _PERSON_PARTS:
                        raise _DeclineError(part_key)
            elif inner_key == "title":
                detail = self._content(inner, "title", "text/plain")
                if detail["value"] and not -1 < ctx.title_depth <= depth + 1:
                    ctx.title_depth = depth + 1
            else:
                self._unknown_children(inner)


# Media RSS elements read at their depth inside a group or a media:content (the item's own
# title and description are not replaced by them, as feedparser's depth rule has it).
_IN_MEDIA_CONTENT = frozenset(
    {"media_thumbnail", "media_category", "media_title", "media_description", "media_keywords"}
)
_IN_MEDIA_GROUP = _IN_MEDIA_CONTENT | {"media_content"}
# What an Atom <source> may hold for the fast path: all of it is stored apart from the entry.
_IN_SOURCE = frozenset(
    {"title", "subtitle", "id", "link", "updated", "published", "author", "contributor"}
    | {"rights", "generator", "icon", "logo", "category"}
)
_PUBLISHED = frozenset({"published", "pubdate", "issued", "dcterms_issued"})

_Handler = Callable[[_Reader, Any, str, int, _Context, bool], None]
_FIELDS: dict[str, _Handler] = {
    **dict.fromkeys(("title", "dc_title", "media_title"), _Reader._title),
    **dict.fromkeys(
        ("description", "dc_description", "media_description", "abstract", "summary"),
        _Reader._summary,
    ),
    "itunes_summary": _Reader._summary,
    **dict.fromkeys(("content", "content_encoded", "fullitem"), _Reader._content_field),
    "link": _Reader._link,
    **dict.fromkeys(("guid", "id"), _Reader._guid),
    **dict.fromkeys(
        ("author", "managingeditor", "dc_author", "dc_creator", "itunes_author"), _Reader._author
    ),
    **dict.fromkeys(_DATES, _Reader._date),
    **dict.fromkeys(
        ("category", "keywords", "dc_subject", "media_category", "itunes_category"),
        _Reader._category,
    ),
    **dict.fromkeys(("tags", "itunes_keywords", "media_keywords"), _Reader._keywords),
    "enclosure": _Reader._enclosure,
    "media_group": _Reader._media_group,
    "media_content": _Reader._media_content,
    "media_thumbnail": _Reader._media_thumbnail,
    **dict.fromkeys(("itunes_image", "itunes_link"), _Reader._itunes_image),
    "source": _Reader._source,
    "image": _Reader._image_in_entry,
    "psc_chapters": _Reader._chapters,
}


# --- feedparser's bookkeeping of people and tags, step for step --------------------------------


def _save_author(d: Dict, key: str, value: str) -> None:
    d.setdefault("author_detail", {})[key] = value
    sync_person(d, "author", dict)
    d.setdefault("authors", [{}])[-1][key] = value


def _add_tag(tags: list[Dict], term: str | None, scheme: str | None, label: str | None) -> None:
    if not term and not scheme and not label:
        return
    value = {"term": term, "scheme": scheme, "label": label}
    if value not in tags:
        tags.append(value)


def _enforce_href(attrs: dict[str, str]) -> dict[str, str]:
    href = attrs.get("url", attrs.get("uri", attrs.get("href")))
    if href:
        attrs.pop("url", None)
        attrs.pop("uri", None)
        attrs["href"] = href
    return attrs
