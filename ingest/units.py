"""Human units: durations ("30m", "1h30m"), sizes ("16MiB") and dates ("2024-06-01") parsed,
and moments written as JSON shows them."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([KMG]i?B|B)?", re.IGNORECASE)
_SIZE_UNITS = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
}


def parse_duration(value: object) -> float:
    """Seconds in ``value``: a number of seconds, or text like "20s", "30m", "1h30m", "1d".

    Raises ValueError with a sentence saying what is accepted.
    """
    if isinstance(value, bool):
        raise ValueError('expected a duration like "30m", got a boolean')
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower()
        if text.replace(".", "", 1).isdigit():
            seconds = float(text)
        else:
            parts = _DURATION_PART.findall(text)
            if not parts or _DURATION_PART.sub("", text).strip():
                raise ValueError(
                    f'"{value}" is not a duration; use a number and a unit (ms, s, m, h, d, w), '
                    'e.g. "20s", "30m", "1h30m"'
                )
            seconds = sum(float(number) * _DURATION_UNITS[unit] for number, unit in parts)
    else:
        raise ValueError(f'expected a duration like "30m", got {type(value).__name__}')
    if seconds <= 0:
        raise ValueError(f"{value!r} must be longer than zero")
    return seconds


def parse_size(value: object) -> int:
    """Bytes in ``value``: a number of bytes, or text like "16MiB", "512KiB", "2MB"."""
    if isinstance(value, bool):
        raise ValueError('expected a size like "16MiB", got a boolean')
    if isinstance(value, int):
        size = value
    elif isinstance(value, str) and (match := _SIZE.fullmatch(value.strip())):
        size = int(float(match.group(1)) * _SIZE_UNITS[(match.group(2) or "b").lower()])
    else:
        raise ValueError(f'{value!r} is not a size; use e.g. "16MiB", "512KiB" or a byte count')
    if size <= 0:
        raise ValueError(f"{value!r} must be larger than zero")
    return size


def format_duration(seconds: float) -> str:
    """The shortest exact text for ``seconds`` in the units ``parse_duration`` reads."""
    for unit in ("w", "d", "h", "m", "s"):
        size = _DURATION_UNITS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def parse_moment(value: str, *, end_of_day: bool = False) -> datetime:
    """The UTC moment ``value`` names: a date (``2024-06-01``) or a date and time
    (``2024-06-01T08:00``, ``2024-06-01 08:00:00+08:00``, ``...Z``); no offset means UTC.

    A date alone is its first moment, or with ``end_of_day`` its last, so a range
    ``--since D --until D`` holds all of day D. Raises ValueError saying what is accepted.
    """
    text = value.strip()
    try:
        day = date.fromisoformat(text)
    except ValueError:
        pass
    else:
        start = datetime.combine(day, time.min, tzinfo=UTC)
        return start + timedelta(days=1, microseconds=-1) if end_of_day else start
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{value!r} is not a date; use e.g. 2024-06-01, 2024-06-01T08:00 or "
            "2024-06-01T08:00:00+08:00 (UTC when no offset is given)"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def parse_until(value: str) -> datetime:
    """``parse_moment`` for an upper bound: a date alone includes its whole day."""
    return parse_moment(value, end_of_day=True)


def iso_utc(moment: datetime) -> str:
    """ISO 8601 in UTC with a ``Z``: the form of every time in JSON output."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
