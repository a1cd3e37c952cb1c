"""URLs as browsers read them: the only module that imports ada_url (the WHATWG URL parser).

A URL from a feed is stored, exported and finally followed by a browser, so it is judged the way
the browser will read it, not the way ``urllib.parse`` does; the two disagree exactly where an
attacker wants them to: ``https://evil.example\\@www.youtube.com/`` is ``www.youtube.com`` to
``urlsplit`` and ``evil.example`` to a browser, which reads a backslash as a slash. Browsers also
drop tabs and newlines inside a URL, trim spaces and control characters around it, and
percent-encode spaces, quotes and ``<>``; the URL serialized after parsing holds none of them,
so it is safe in a YAML scalar, an HTML attribute or a terminal.

Credentials in a URL (DESIGN §3) are never printed, logged, stored in a post or exported:
``redacted`` is what every printed or logged URL goes through, ``redact_text`` finds the URLs in
a message, and ``link_base`` is the URL a document's relative links resolve against.
"""

from __future__ import annotations

import re
import socket
from urllib.parse import unquote_plus, urlsplit

from ada_url import URL, join_url, normalize_url

_WEB_PREFIXES = ("http://", "https://")
_LEADING = "".join(map(chr, range(0x21)))
"""What URL parsers (WHATWG, and ``urlsplit`` since 3.11.4) strip before the scheme: C0 controls
and space."""

REDACTED = "***"
"""What a secret is replaced by when a URL is shown."""
SECRET_WORDS = frozenset(
    {
        "token", "accesstoken", "authtoken", "jwt",
        "key", "apikey", "accesskey", "authkey",
        "secret",
        "password", "passwd", "pass", "pwd",
        "auth", "authorization", "credential", "credentials",
        "sig", "signature",
        "session", "sessionid", "sid",
    }
)  # fmt: skip
"""A query parameter holds a secret when one of the words of its name is one of these (see
``secret_name``)."""

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")
_AUTHORITY_END = re.compile(r"[/?#]")
_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://\S+")
_AFTER_URL = "\"'),.:;>]"
"""Quotes and punctuation a sentence puts right after a URL."""
_PARAMETER = re.compile(r"([?#&;])([^=?#&;]*)=([^?#&;]*)")
_NAME_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")


def is_http_url(value: object) -> bool:
    """Whether ``value`` is a string holding an http(s) URL, the only scheme fetched, stored or
    linked (DESIGN §3); local paths, ``file:``, ``tag:`` and nonsense are not. The one test of
    it, for every caller."""
    return isinstance(value, str) and value.lstrip(_LEADING)[:8].lower().startswith(_WEB_PREFIXES)


def source_url(url: str) -> str:
    """``url``, an http(s) URL, in the one form a source is stored and compared in; ValueError,
    naming ``url`` and what is wrong, when it has no host, a host we refuse, or is no URL.

    Two spellings of one feed are one source: the URL is normalized as a browser reads it
    (scheme and host in lower case, the default port dropped, an empty path made ``/``, IDNA
    host names encoded, unsafe characters percent-encoded) and its fragment, which is never
    sent to a server, is dropped. ``https://EXAMPLE.org:443/feed#x`` is
    ``https://example.org/feed``.
    """
    if any(ord(char) < 0x20 or char == "\x7f" for char in url):
        raise ValueError(f"{url!r} contains control characters")
    url = url.strip()
    parts = urlsplit(url)
    if not parts.hostname:
        raise ValueError(f"{url!r} has no host name")
    _refuse_legacy_ipv4(url, parts.hostname)
    try:
        parsed = URL(url)
    except ValueError:
        raise ValueError(f"{url!r} is not a valid URL") from None
    if not is_http_url(parsed.href):
        raise ValueError(f"{url!r} is not an http(s) URL")
    parsed.hash = ""
    return parsed.href


def _refuse_legacy_ipv4(url: str, host: str) -> None:
    """Refuse an IPv4 address in a legacy spelling (octal ``0177.0.0.1``, hex, ``127.1``...).

    The C resolver reads them as addresses, httpx refuses some and passes others on, and a
    reader of the config cannot tell where they point; the dotted-decimal form says it plainly.
    """
    try:
        address = socket.inet_ntoa(socket.inet_aton(host))
    except OSError:
        return  # a host name, or not IPv4 at all
    if address != host:
        raise ValueError(
            f"{url!r}: {host} is a legacy spelling of the IPv4 address {address}; "
            f"write {address} if that is what you mean"
        )


def web_url(value: str, base: str = "") -> str | None:
    """``value`` (made absolute against ``base``) as the http(s) URL a browser would request,
    serialized, without credentials; None when it is not an http(s) URL or not a URL at all.

    Credentials are never stored (DESIGN §3); a feed's own ``user:pass@`` stays out of the
    links resolved against it. Called for every link and image of every post: the common case
    stays in ada's C functions, and only a URL with credentials is taken apart.
    """
    try:
        href = join_url(base, value) if base else normalize_url(value)
    except ValueError:
        return None
    if not is_http_url(href):
        return None
    if "@" in href.split("/", 3)[2]:  # the serialized authority holds credentials
        url = URL(href)
        url.username = ""
        url.password = ""
        href = url.href
    return href


def host_of(url: str) -> str:
    """The host a browser connects to for ``url`` (lower case, IDNA-encoded), "" if none."""
    try:
        return URL(url).hostname
    except ValueError:
        return ""


def secret_name(name: str) -> bool:
    """Whether a query parameter named ``name`` holds a secret: one of the words of the name,
    split at ``_``, ``-``, ``.`` and lower-to-upper case changes, is in ``SECRET_WORDS``, in any
    case: ``token``, ``access_token``, ``apiKey``, ``X-Amz-Signature``, but not ``keyword``."""
    return any(word.lower() in SECRET_WORDS for word in _NAME_WORD.findall(name))


def redacted(url: str) -> str:
    """``url`` fit to print or log: the password replaced by ``***`` (a user name alone, often a
    token, too), and so is the value of every query or fragment parameter named like a secret
    (``secret_name``); ``url`` itself, the same object, when it holds none. Never raises.

    Deliberately no URL parser: parsers disagree about where credentials end (a backslash, an
    ``@`` in a password), and a redactor must hide whatever any of them might send. So the
    authority runs to the first ``/``, ``?`` or ``#``, and the credentials to its last ``@``;
    a password holding an unescaped ``/``, ``?`` or ``#`` is read as a password by no parser
    either.
    """
    shown = url
    scheme = _SCHEME.match(url)
    if scheme:
        start = scheme.end()
        end = _AUTHORITY_END.search(url, start)
        at = url.rfind("@", start, end.start() if end else len(url))
        if at >= 0:
            user, colon, _ = url[start:at].partition(":")
            shown = url[:start] + (f"{user}:{REDACTED}" if colon else REDACTED) + url[at:]
    shown = masked_parameters(shown)
    return url if shown == url else shown


def masked_parameters(url: str) -> str:
    """``url`` with the value of every query or fragment parameter named like a secret
    (``secret_name``) replaced by ``***``; the credentials before the host are left alone."""
    return _PARAMETER.sub(_masked_parameter, url) if "=" in url else url


def _masked_parameter(match: re.Match[str]) -> str:
    separator, name, value = match.groups()
    if value and value != REDACTED and secret_name(unquote_plus(name)):
        return f"{separator}{name}={REDACTED}"
    return match.group(0)


def redact_text(text: str) -> str:
    """``text`` (an error message, a log line) with every ``scheme://`` URL in it ``redacted``;
    ``text`` itself when none holds a secret. A URL runs to the next whitespace, less the
    quotes and punctuation a sentence puts after it."""
    if "://" not in text:
        return text
    shown = _IN_TEXT.sub(_redacted_in_text, text)
    return text if shown == text else shown


def _redacted_in_text(match: re.Match[str]) -> str:
    word = match.group(0)
    url = word.rstrip(_AFTER_URL)
    return redacted(url) + word[len(url) :]


def link_base(url: str) -> str:
    """The URL a document's relative links are resolved against: ``url`` without its
    credentials, and without its query when that holds a secret ("" when ``url`` is no URL).

    A link to the document itself (``#notes``, ``""``) inherits the base's query, so a feed's
    ``?token=`` would be stored in its posts and published by an export; such a link points
    into the feed document, which is of no use to a reader without the token anyway.
    """
    if redacted(url) is url:
        return url
    try:
        parsed = URL(url)
    except ValueError:
        return ""
    parsed.username = ""
    parsed.password = ""
    if redacted(parsed.search) is not parsed.search:
        parsed.search = ""
    return parsed.href
