"""Turning a feed's bytes into text: which encoding to believe.

Servers and feeds both lie about encodings. The rule, in order:

1. A byte order mark (UTF-8/16/32) is never wrong.
2. Bytes that are valid UTF-8 are UTF-8, whatever the XML declaration or the HTTP ``charset``
   say: legacy text almost never forms valid UTF-8 by accident (and pure ASCII reads the same in
   every label), while "UTF-8 labelled ISO-8859-1/windows-1252" is the most common lie on the web.
3. Otherwise the XML declaration's encoding, if the bytes decode with it; then the HTTP
   ``charset`` (a server's default charset is usually a guess, the feed's own declaration is
   written by the software that wrote the bytes); then windows-1252, which decodes anything.

Legacy labels are widened to the superset browsers use (GB2312 → GB18030, Shift_JIS → cp932,
ISO-8859-1 → windows-1252), as the WHATWG Encoding Standard does.
"""

from __future__ import annotations

import codecs
import re

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_BOMLESS_WIDE = (
    (b"\x00\x00\x00<", "utf-32-be"),
    (b"<\x00\x00\x00", "utf-32-le"),
    (b"\x00<\x00?", "utf-16-be"),
    (b"<\x00?\x00", "utf-16-le"),
)
_DECLARED = re.compile(rb"""^\s*<\?xml[^>]*?\bencoding\s*=\s*["']([A-Za-z0-9._:-]+)["']""")
_SUPERSETS = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "big5": "big5hkscs",
    "shift_jis": "cp932",
    "euc_kr": "cp949",
    "latin_1": "cp1252",
    "ascii": "cp1252",
    "iso8859_1": "cp1252",
    "tis_620": "cp874",
    "iso8859_11": "cp874",
}
_WIDE = frozenset({"utf_16", "utf_16_le", "utf_16_be", "utf_32", "utf_32_le", "utf_32_be"})
FALLBACK = "cp1252"


def canonical_codec(label: str | None) -> str | None:
    """Python's codec name for an encoding label, widened to its superset; None if unknown."""
    if not label:
        return None
    try:
        name = codecs.lookup(label.strip()).name.replace("-", "_")
    except LookupError:
        return None
    return _SUPERSETS.get(name, name)


def _decodes(data: bytes, codec: str) -> bool:
    try:
        data.decode(codec)
    except (UnicodeDecodeError, LookupError):
        return False
    return True


def choose_encoding(data: bytes, http_charset: str | None = None) -> tuple[str, int]:
    """The codec to decode ``data`` with, and how many leading bytes (a BOM) to skip."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return codec, len(bom)
    for prefix, codec in _BOMLESS_WIDE:
        if data.startswith(prefix):
            return codec, 0
    if _decodes(data, "utf-8"):
        return "utf-8", 0
    match = _DECLARED.match(data[:1024])
    declared = canonical_codec(match.group(1).decode("ascii")) if match else None
    for candidate in (declared, canonical_codec(http_charset)):
        # A declaration of UTF-16 on bytes without a BOM or wide prefix is a lie (seen in the
        # wild: a UTF-8 file declaring utf-16); it cannot be right here.
        if candidate and candidate not in _WIDE and _decodes(data, candidate):
            return candidate, 0
    return FALLBACK, 0


def decode(data: bytes, http_charset: str | None = None) -> str:
    """``data`` as text, by the rule in this module's docstring; never raises."""
    codec, skip = choose_encoding(data, http_charset)
    return data[skip:].decode(codec, errors="replace")
