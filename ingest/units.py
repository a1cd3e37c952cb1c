"""Parsing the human units of the config file: durations ("30m", "1h30m") and sizes ("16MiB")."""

from __future__ import annotations

import re

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
