"""URLs as browsers read them: the only module that imports ada_url (the WHATWG URL parser).

A URL from a feed is stored, exported and finally followed by a browser, so it is judged the way
the browser will read it, not the way ``urllib.parse`` does; the two disagree exactly where an
attacker wants them to: ``https://evil.example\\@www.youtube.com/`` is ``www.youtube.com`` to
``urlsplit`` and ``evil.example`` to a browser, which reads a backslash as a slash. Browsers also
drop tabs and newlines inside a URL, trim spaces and control characters around it, and
percent-encode spaces, quotes and ``<>``; the URL serialized after parsing holds none of them,
so it is safe in a YAML scalar, an HTML attribute or a terminal.
"""

from __future__ import annotations

from ada_url import URL, join_url, normalize_url

_WEB_PREFIXES = ("http://", "https://")


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
    if not href.startswith(_WEB_PREFIXES):
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
