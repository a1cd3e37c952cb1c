"""Reading the dates feeds write: pure functions from a date's text to a UTC instant.

A date read wrong is worse than no date: a post filed on the wrong day and month is
never noticed, an undated one falls back to its updated date, then to its first-seen time
(DESIGN §1), and is counted. So the text is read here first, by rules stated below, and another
parser's reading of it (feedparser's ``*_parsed``) is only a second opinion, kept when it
agrees with the numbers the text writes (``agrees``).

The forms read (whitespace collapsed, case ignored, a leading weekday name ignored):

- RFC 822/2822, ``[Wdy,] D Mon YYYY [H:M[:S]] [zone]`` (two-digit years as RFC 2822 §4.3 says),
  with the month's name in English or one of the languages of ``_MONTH_NAMES`` (full, genitive
  or abbreviated, accents optional): ``Ter, 05 Mar 2019 08:15:00 -0300``,
  ``Mi, 03 Okt 2018 10:00:00 +0200``, ``lun., 03 déc. 2018 10:00:00 +0100``;
- the same with the month first, ``Mon D, YYYY [H:M[:S] [am|pm]] [zone]``;
- numbers, year first: ``Y-M-D``, ``Y/M/D``, ``Y.M.D``, each with an optional ``H:M[:S[.f]]``
  after a space or ``T`` and an optional zone (so RFC 3339 and ISO 8601 with or without a zone);
  ``YYYY年M月D日 [H:M[:S]]`` (and Korean's 년월일); the other ISO 8601 forms that
  ``datetime.fromisoformat`` reads (``20210307T0905``, week dates); W3C-DTF's reduced
  ``YYYY-MM`` and ``YYYY`` (the first day of the month or year);
- numbers, day first with dots: ``D.M.YYYY [H:M[:S]] [zone]``.

A slash or dash date with the year last (``3/7/2021``) is not read: it means 3 July in most of the
world and March 7 in the US, and the text alone cannot say which.

Zones: ``±HH:MM``, ``±HHMM``, ``±H``, a name of ``_ZONES`` (RFC 822's and common ones), a
name followed by an offset (``GMT+8``), or an offset followed by its name (Go's
``+0800 CST``: the offset counts). **A date without a zone is UTC**: no feed format states a
zone for the feed as a whole, and UTC is what feedparser, RFC 3339's ``-00:00`` and W3C-DTF's
readers assume, so every path gives the same instant (docs/decisions.md). A zone name not
known here makes the text unreadable by these rules (the second opinion may still be kept).
"""

from __future__ import annotations

import contextlib
import re
import unicodedata
from datetime import UTC, datetime, timedelta, timezone

MAX_DATE_CHARS = 200
"""A longer text, spaces included, is not a date (the longest forms here take about 60
characters): it is not read, so a hostile document cannot make each date cost megabytes."""

UNREADABLE_TEXT_CHARS = 64
"""How much of an unreadable date's text is kept to be logged."""

_MONTH_NAMES: dict[str, tuple[str, ...]] = {
    # One row per language: each month's names, "|"-separated, January first. Full names,
    # genitives (Slavic, Greek) and the usual abbreviations; accents are optional when matching.
    "en": (
        "january|jan", "february|feb", "march|mar", "april|apr", "may", "june|jun",
        "july|jul", "august|aug", "september|sep|sept", "october|oct", "november|nov",
        "december|dec",
    ),
    "de": (
        "januar|jänner|jän", "februar|feber", "märz|maerz|mrz|mär", "april", "mai", "juni",
        "juli", "august", "september", "oktober|okt", "november", "dezember|dez",
    ),
    "fr": (
        "janvier|janv", "février|févr|fév", "mars", "avril|avr", "mai", "juin", "juillet|juil",
        "août", "septembre", "octobre", "novembre", "décembre|déc",
    ),
    "es": (
        "enero|ene", "febrero", "marzo", "abril|abr", "mayo", "junio", "julio", "agosto|ago",
        "septiembre|setiembre|set", "octubre", "noviembre", "diciembre|dic",
    ),
    "it": (
        "gennaio|gen", "febbraio", "marzo", "aprile", "maggio|mag", "giugno|giu", "luglio|lug",
        "agosto", "settembre", "ottobre|ott", "novembre", "dicembre",
    ),
    "pt": (
        "janeiro", "fevereiro|fev", "março", "abril", "maio", "junho", "julho", "agosto",
        "setembro", "outubro|out", "novembro", "dezembro",
    ),
    "nl": (
        "januari", "februari", "maart|mrt|maa", "april", "mei", "juni", "juli", "augustus",
        "september", "oktober", "november", "december",
    ),
    "sv-da-no": (
        "januari|januar", "februari|februar", "mars|marts", "april", "maj", "juni", "juli",
        "augusti|august", "september", "oktober", "november", "december|desember|des",
    ),
    "pl": (
        "styczeń|stycznia|sty", "luty|lutego|lut", "marzec|marca", "kwiecień|kwietnia|kwi",
        "maj|maja", "czerwiec|czerwca|cze", "lipiec|lipca|lip", "sierpień|sierpnia|sie",
        "wrzesień|września|wrz", "październik|października|paź", "listopad|listopada|lis",
        "grudzień|grudnia|gru",
    ),
    "cs": (
        "leden|ledna", "únor|února", "březen|března", "duben|dubna", "květen|května",
        "červen|června", "červenec|července", "srpen|srpna", "září", "říjen|října",
        "listopad|listopadu", "prosinec|prosince",
    ),
    "ru": (
        "январь|января|янв", "февраль|февраля|фев", "март|марта|мар", "апрель|апреля|апр",
        "май|мая", "июнь|июня|июн", "июль|июля|июл", "август|августа|авг",
        "сентябрь|сентября|сен|сент", "октябрь|октября|окт", "ноябрь|ноября|ноя|нояб",
        "декабрь|декабря|дек",
    ),
    "uk": (
        "січень|січня|січ", "лютий|лютого|лют", "березень|березня|бер", "квітень|квітня|кві",
        "травень|травня|тра", "червень|червня|чер", "липень|липня|лип", "серпень|серпня|сер",
        "вересень|вересня|вер", "жовтень|жовтня|жов", "листопад|листопада|лис",
        "грудень|грудня|гру",
    ),
    "el": (
        "ιανουάριος|ιανουαρίου|ιαν", "φεβρουάριος|φεβρουαρίου|φεβ", "μάρτιος|μαρτίου|μάρ",
        "απρίλιος|απριλίου|απρ", "μάιος|μαΐου|μάι|μαϊ", "ιούνιος|ιουνίου|ιούν",
        "ιούλιος|ιουλίου|ιούλ", "αύγουστος|αυγούστου|αύγ", "σεπτέμβριος|σεπτεμβρίου|σεπ",
        "οκτώβριος|οκτωβρίου|οκτ", "νοέμβριος|νοεμβρίου|νοέ", "δεκέμβριος|δεκεμβρίου|δεκ",
    ),
}  # fmt: skip

_ZONES: dict[str, int] = {
    # Minutes east of UTC. RFC 822's names (those email.utils knows), then common ones.
    **dict.fromkeys(("ut", "utc", "gmt", "z", "wet"), 0),
    "est": -300, "edt": -240, "cst": -360, "cdt": -300,
    "mst": -420, "mdt": -360, "pst": -480, "pdt": -420, "ast": -240, "adt": -180,
    "bst": 60, "west": 60, "cet": 60, "mez": 60, "cest": 120, "mesz": 120,
    "eet": 120, "eest": 180, "msk": 180,
    "hkt": 480, "sgt": 480, "jst": 540, "kst": 540, "aest": 600, "aedt": 660,
    "nzst": 720, "nzdt": 780,
}  # fmt: skip

MAX_ZONE_OFFSET_MIN = 14 * 60
"""The largest offset from UTC any place uses (UTC+14, Line Islands)."""

ZONE_DAY_SLACK = timedelta(days=1)
"""How far a zone can move a date's UTC day from the day its text writes."""


def _fold(word: str) -> str:
    """``word`` lower-cased, without accents or a trailing dot: how names are compared."""
    decomposed = unicodedata.normalize("NFKD", word.casefold().rstrip("."))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _month_table() -> dict[str, int]:
    table: dict[str, int] = {}
    for months in _MONTH_NAMES.values():
        for number, names in enumerate(months, start=1):
            for name in names.split("|"):
                key = _fold(name)
                if table.setdefault(key, number) != number:
                    raise ValueError(f"month name {name!r} means two months")
    return table


MONTHS: dict[str, int] = _month_table()
"""Every month name known, folded (``_fold``), to its number."""

_WORD = r"[^\W\d_]+\.?"
_TIME = (
    r"(?P<hour>\d{1,2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:[.,]\d+)?)?"
    r"(?:\s?(?P<ampm>[ap])\.?m\.?)?"
)
# A zone name, an offset, or both; after an offset a name is only its label (Go's
# "+0800 CST"), and a comment may follow ("+0000 (UTC)").
_ZONE = (
    r"(?:(?P<zname>[a-z]{1,5})?\s?(?:(?P<zoff>[+-]\d{1,2}(?::?\d{2})?)(?:\s[a-z]{1,5})?)?)"
    r"(?:\s?\([^)]*\))?"
)
_WEEKDAY = rf"(?:{_WORD}\s?(?:,\s?|\s))?"
_END = rf"\s?{_ZONE}$"

_FORMS = tuple(
    re.compile(pattern, re.IGNORECASE)
    for pattern in (
        # RFC 822 and its relatives: day, month name, year.
        rf"^{_WEEKDAY}(?P<day>\d{{1,2}})\.?[\s-]?(?P<month>{_WORD}),?[\s-]?"
        rf"(?P<year>\d{{4}}|\d{{2}})(?:,?\s{_TIME})?{_END}",
        # Month name, day, year.
        rf"^{_WEEKDAY}(?P<month>{_WORD})\s(?P<day>\d{{1,2}})(?:st|nd|rd|th)?,?\s"
        rf"(?P<year>\d{{4}})(?:,?\s{_TIME})?{_END}",
        # Year, month, day in numbers: ISO 8601 / RFC 3339 and the slash and dot forms.
        rf"^{_WEEKDAY}(?P<year>\d{{4}})(?P<sep>[-/.])(?P<month>\d{{1,2}})(?P=sep)"
        rf"(?P<day>\d{{1,2}})\.?(?:(?:t|\s|t\s){_TIME})?{_END}",
        # The same in Chinese and Japanese, 2021年3月7日 09:05, and Korean, 2021년 3월 7일.
        rf"^(?P<year>\d{{4}})\s?[年년]\s?(?P<month>\d{{1,2}})\s?[月월]\s?(?P<day>\d{{1,2}})\s?[日일]"
        rf"(?:\s?{_TIME})?{_END}",
        # Day, month, year with dots: 07.03.2021 09:05.
        rf"^{_WEEKDAY}(?P<day>\d{{1,2}})\.\s?(?P<month>\d{{1,2}})\.\s?(?P<year>\d{{4}})"
        rf"(?:,?\s{_TIME})?{_END}",
        # W3C-DTF's reduced precision: a year and month, or a year.
        r"^(?P<year>\d{4})(?:-(?P<month>\d{2}))?$",
    )
)

_TIMES = re.compile(r"\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d+)?|[+-]\d{2}:?\d{2}\b")
"""Times and zone offsets, whose numbers are no year, month or day (``agrees``)."""


def parse_date(text: str) -> datetime | None:
    """The instant ``text`` states, in UTC, read by this module's rules; None when ``text`` is
    none of the forms of the module docstring, or names a day or time that does not exist."""
    if len(text) > MAX_DATE_CHARS:
        return None
    text = " ".join(text.split())
    for form in _FORMS:
        match = form.match(text)
        if match:
            return _from_match(match.groupdict())
    return _from_iso(text)


def read_date(text: object, reading: datetime | None = None) -> datetime | None:
    """The date an entry's ``text`` states, in UTC, or None when it cannot be told.

    Our own reading of ``text`` (``parse_date``) wins. Else ``reading``, another parser's
    reading of the same text (UTC), is kept only when it ``agrees`` with the text. Without a
    text, ``reading`` is all there is.
    """
    if not isinstance(text, str) or not text.strip():
        return reading
    ours = parse_date(text)
    if ours is not None:
        return ours
    if reading is not None and len(text) <= MAX_DATE_CHARS and agrees(text, reading):
        return reading
    return None


def agrees(text: str, value: datetime) -> bool:
    """Whether ``value`` (UTC) may be what ``text`` means: whether, on its day or the day either
    side (the text's zone may move the UTC day), the year is one of the four-digit numbers the
    text writes, the day one of its one- or two-digit numbers, and the month one it names, or
    else one of those numbers (not checked when the text holds words we cannot read, which may
    be a month's name). Each check passes when the text writes nothing of its kind."""
    date_part = _TIMES.sub(" ", text)
    numbers = re.findall(r"\d+", date_part)
    years = {int(n) for n in numbers if len(n) == 4}
    small = {int(n) for n in numbers if len(n) <= 2}
    words = [_fold(w) for w in re.findall(r"[^\W\d_]+", date_part)]
    named = {MONTHS[w] for w in words if w in MONTHS}
    unknown_words = any(w not in MONTHS and w not in _ZONES for w in words)
    for day in _days_around(value):
        if years and day.year not in years:
            continue
        if small and day.day not in small:
            continue
        if named and day.month not in named:
            continue
        if not named and not unknown_words and small and day.month not in small:
            continue
        return True
    return False


def _days_around(value: datetime) -> list[datetime]:
    """``value`` and the days either side of it that ``datetime`` can hold."""
    days = [value]
    for step in (-ZONE_DAY_SLACK, ZONE_DAY_SLACK):
        with contextlib.suppress(OverflowError):
            days.append(value + step)
    return days


def unreadable(*dates: tuple[object, datetime | None]) -> tuple[str, ...]:
    """The texts of (text, value read) pairs that hold a date none could read, for the log:
    whitespace collapsed, characters that do not print (a terminal's escapes) left out, and
    shortened to ``UNREADABLE_TEXT_CHARS``. A number where a date belongs (a JSON Feed date
    must be a string) counts too."""
    return tuple(
        "".join(c for c in " ".join(str(text).split()) if c.isprintable())[:UNREADABLE_TEXT_CHARS]
        for text, value in dates
        if value is None and _stated(text)
    )


def _stated(text: object) -> bool:
    if isinstance(text, str):
        return bool(text.strip())
    return isinstance(text, int | float) and not isinstance(text, bool)


# --- building the instant ---------------------------------------------------------------------


def _from_match(parts: dict[str, str | None]) -> datetime | None:
    month = _month(parts["month"])
    zone = _zone(parts.get("zname"), parts.get("zoff"))
    hour = _hour(parts.get("hour"), parts.get("ampm"))
    if month is None or zone is None or hour is None:
        return None
    try:
        value = datetime(
            _year(parts["year"] or ""),
            month,
            int(parts.get("day") or 1),
            hour,
            int(parts.get("minute") or 0),
            int(parts.get("second") or 0),
            tzinfo=timezone(timedelta(minutes=zone)),
        ).astimezone(UTC)
    except (ValueError, OverflowError):  # 30 February, 25 o'clock; 0001-01-01 00:00 +0100
        return None
    return value


def _from_iso(text: str) -> datetime | None:
    """ISO 8601's forms the patterns leave out (``20210307T0905Z``, ``2021-W09-7``)."""
    if not text[:4].isdigit():
        return None
    try:
        value = datetime.fromisoformat(text)
        return value.replace(tzinfo=value.tzinfo or UTC).astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: a zone moves it out of years 1-9999
        return None


def _year(digits: str) -> int:
    """A four-digit year, or a two-digit one as RFC 2822 §4.3 reads it (00-49: 20xx)."""
    year = int(digits)
    if len(digits) == 2:
        return year + (2000 if year < 50 else 1900)
    return year


def _month(value: str | None) -> int | None:
    if value is None:
        return 1
    if value.isdigit():
        return int(value)
    return MONTHS.get(_fold(value))


def _hour(hour: str | None, ampm: str | None) -> int | None:
    if hour is None:
        return 0
    number = int(hour)
    if not ampm:
        return number
    if not 1 <= number <= 12:
        return None
    return number % 12 + (12 if ampm.lower() == "p" else 0)


def _zone(name: str | None, offset: str | None) -> int | None:
    """Minutes east of UTC; 0 when neither is given; None for an unknown name or a bad offset."""
    minutes = 0
    if name:
        known = _ZONES.get(name.lower())
        if known is None:
            return None
        minutes = known
    if offset:
        digits = offset[1:].replace(":", "")
        hours, mins = (int(digits[:-2]), int(digits[-2:])) if len(digits) > 2 else (int(digits), 0)
        if mins >= 60:
            return None
        minutes += (hours * 60 + mins) * (-1 if offset[0] == "-" else 1)
    return minutes if abs(minutes) <= MAX_ZONE_OFFSET_MIN else None
