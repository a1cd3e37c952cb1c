"""Reading dates as tables of named cases: each form, each language, zones, nonsense and a
second opinion that contradicts its text; then the same through a whole document and a pass."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from ingest.config import load_settings
from ingest.digest.dates import agrees, parse_date, read_date, unreadable
from ingest.digest.document import digest_feed
from ingest.types import SourceSpec
from scheduler.driver import run_once
from storage import open_store
from tests.conftest import write_config

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def utc(year: int, month: int, day: int, *clock: int) -> datetime:
    """A UTC datetime; ``clock`` is the hour, minute and second, those left out 0."""
    hour, minute, second = (*clock, 0, 0, 0)[:3]
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # The numeric forms feedparser misreads or cannot read; no zone means UTC.
        pytest.param("2021/3/7 09:05:00", utc(2021, 3, 7, 9, 5), id="slashes-with-time"),
        pytest.param("2021/03/07", utc(2021, 3, 7), id="slashes"),
        pytest.param("2021/3/7 09:05:00 +0800", utc(2021, 3, 7, 1, 5), id="slashes-with-zone"),
        pytest.param("Fri, 2006/09/15 08:19:53 EDT", utc(2006, 9, 15, 12, 19, 53), id="perforce"),
        pytest.param("2021-03-07 09:05", utc(2021, 3, 7, 9, 5), id="dashes-hour-minute"),
        pytest.param("2021-03-07 09:05:00", utc(2021, 3, 7, 9, 5), id="dashes-with-seconds"),
        pytest.param("2021.03.07 09:05", utc(2021, 3, 7, 9, 5), id="dots-year-first"),
        pytest.param("07.03.2021", utc(2021, 3, 7), id="dots-day-first"),
        pytest.param("7.3.2021 09:05", utc(2021, 3, 7, 9, 5), id="dots-day-first-with-time"),
        pytest.param("2021年3月7日 09:05", utc(2021, 3, 7, 9, 5), id="chinese"),
        pytest.param("2021년 3월 7일 09:05", utc(2021, 3, 7, 9, 5), id="korean"),
        pytest.param("2021-03-07T09:05:00", utc(2021, 3, 7, 9, 5), id="iso-without-zone"),
        pytest.param("2021-03-07T09:05:00Z", utc(2021, 3, 7, 9, 5), id="rfc3339-z"),
        pytest.param(
            "2021-03-07T09:05:00.123+08:00", utc(2021, 3, 7, 1, 5), id="rfc3339-fraction-offset"
        ),
        pytest.param("20210307T0905Z", utc(2021, 3, 7, 9, 5), id="iso-basic"),
        pytest.param("2021-W09-7", utc(2021, 3, 7), id="iso-week-date"),
        pytest.param("2021-03", utc(2021, 3, 1), id="w3cdtf-year-month"),
        pytest.param("2021", utc(2021, 1, 1), id="w3cdtf-year"),
        # RFC 822 in English and its relatives.
        pytest.param("Sun, 07 Mar 2021 09:05:00 GMT", utc(2021, 3, 7, 9, 5), id="rfc822"),
        pytest.param("7 Mar 2021 09:05 GMT", utc(2021, 3, 7, 9, 5), id="rfc822-no-weekday"),
        pytest.param("Sun, 07 Mar 21 09:05 GMT", utc(2021, 3, 7, 9, 5), id="rfc822-two-digit-year"),
        pytest.param("Sun, 07 Mar 99 09:05 GMT", utc(1999, 3, 7, 9, 5), id="rfc822-year-99"),
        pytest.param("Sunday, 7 March 2021", utc(2021, 3, 7), id="full-names-no-time"),
        pytest.param("March 7, 2021 9:05 pm", utc(2021, 3, 7, 21, 5), id="month-first-pm"),
        pytest.param("Sun, Mar 7th, 2021 12:05 am", utc(2021, 3, 7, 0, 5), id="month-first-am"),
        # Other languages: day and month names as publishers write them.
        pytest.param("Ter, 05 Mar 2019 08:15:00 -0300", utc(2019, 3, 5, 11, 15), id="pt"),
        pytest.param("Sáb, 05 Out 2019 08:15:00 -0300", utc(2019, 10, 5, 11, 15), id="pt-out"),
        pytest.param("Mi, 03 Okt 2018 10:00:00 +0200", utc(2018, 10, 3, 8), id="de"),
        pytest.param("Do, 07 Mär 2019 10:00:00 +0100", utc(2019, 3, 7, 9), id="de-umlaut"),
        pytest.param("Do, 07 Mrz 2019 10:00:00 MEZ", utc(2019, 3, 7, 9), id="de-mrz-mez"),
        pytest.param("lun., 03 déc. 2018 10:00:00 +0100", utc(2018, 12, 3, 9), id="fr"),
        pytest.param("mar., 05 mars 2019 08:15:00 +0100", utc(2019, 3, 5, 7, 15), id="fr-mardi"),
        pytest.param("jeu., 15 aout 2019 10:00:00 +0200", utc(2019, 8, 15, 8), id="fr-no-accent"),
        pytest.param("mié, 02 ene 2019 10:00:00 +0100", utc(2019, 1, 2, 9), id="es"),
        pytest.param("mar, 10 dic 2019 10:00:00 +0100", utc(2019, 12, 10, 9), id="es-dic"),
        pytest.param("gio, 07 giu 2018 10:00:00 +0200", utc(2018, 6, 7, 8), id="it"),
        pytest.param("di, 05 mrt 2019 10:00:00 +0100", utc(2019, 3, 5, 9), id="nl"),
        pytest.param("wt., 05 mar 2019 10:00:00 +0100", utc(2019, 3, 5, 9), id="pl"),
        pytest.param("5 października 2019 10:00", utc(2019, 10, 5, 10), id="pl-genitive"),
        pytest.param("Вт, 05 мар 2019 08:15:00 +0300", utc(2019, 3, 5, 5, 15), id="ru"),
        pytest.param("5 марта 2019 08:15", utc(2019, 3, 5, 8, 15), id="ru-genitive"),
        pytest.param("Пн, 04 лис 2019 10:00:00 +0200", utc(2019, 11, 4, 8), id="uk"),
        pytest.param("Po, 01 července 2019 10:00", utc(2019, 7, 1, 10), id="cs"),
        pytest.param("tis, 05 maj 2019 10:00:00 +0200", utc(2019, 5, 5, 8), id="sv"),
        pytest.param("man, 02 des 2019 10:00:00 +0100", utc(2019, 12, 2, 9), id="no"),
        pytest.param("Κυρ, 11 Ιούλ 2004 12:00:00 +0300", utc(2004, 7, 11, 9), id="el"),
        # Zones.
        pytest.param("Sun, 07 Mar 2021 09:05:00", utc(2021, 3, 7, 9, 5), id="zoneless-is-utc"),
        pytest.param("Sun, 07 Mar 2021 09:05:00 EST", utc(2021, 3, 7, 14, 5), id="zone-est"),
        pytest.param("Sun, 07 Mar 2021 09:05:00 CET", utc(2021, 3, 7, 8, 5), id="zone-cet"),
        pytest.param("2021-03-07 09:05 GMT+8", utc(2021, 3, 7, 1, 5), id="zone-gmt-plus-hours"),
        pytest.param("2021-03-07 09:05 +05:30", utc(2021, 3, 7, 3, 35), id="zone-half-hour"),
        pytest.param(
            "Sun, 07 Mar 2021 09:05:00 +0000 (UTC)", utc(2021, 3, 7, 9, 5), id="zone-comment"
        ),
        pytest.param(
            "Mon, 01 Jan 2024 01:00:00 +0200", utc(2023, 12, 31, 23), id="zone-moves-the-year"
        ),
        pytest.param(
            "2021-03-07 09:05:00.5 +0800 CST", utc(2021, 3, 7, 1, 5), id="zone-go-offset-label"
        ),
        pytest.param("  Sun,\n 07  Mar 2021\t09:05 GMT ", utc(2021, 3, 7, 9, 5), id="whitespace"),
        pytest.param("Sun , 07 Mar 2021 09:05 GMT", utc(2021, 3, 7, 9, 5), id="space-before-comma"),
    ],
)
def test_forms_languages_and_zones_read(text: str, expected: datetime) -> None:
    assert parse_date(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("soon", id="a-word"),
        pytest.param("3/7/2021", id="year-last-slashes-are-ambiguous"),
        pytest.param("2021/13/7", id="month-13"),
        pytest.param("Mon, 30 Feb 2021 10:00:00 GMT", id="30-february"),
        pytest.param("2021-03-07 25:00", id="hour-25"),
        pytest.param("9:05 pm, no date", id="time-alone"),
        pytest.param("Sun, 07 Foo 2021 09:05:00 GMT", id="unknown-month"),
        pytest.param("Sun, 07 Mar 2021 09:05:00 XYZ", id="unknown-zone"),
        pytest.param("Sun, 07 Mar 2021 09:05:00 GMT CST", id="two-zone-names"),
        pytest.param("Sun, 07 Mar 2021 09:05:00 +1500", id="offset-beyond-14h"),
        pytest.param("Sun, 07 Mar 2021 13:05 pm", id="pm-after-noon"),
        pytest.param("2021-03-07 and more", id="trailing-text"),
        pytest.param("0001-01-01 00:00 +0100", id="before-year-1-in-utc"),
        pytest.param("9999-12-31T23:59:00-01:00", id="after-year-9999-in-utc-iso"),
        pytest.param("Fri, 31 Dec 9999 23:59:00 -0100", id="after-year-9999-in-utc-rfc822"),
        pytest.param("Sun, 07 Mar 2021 09:05:00 GMT" + " " * 200, id="too-long"),
    ],
)
def test_nonsense_is_not_read(text: str) -> None:
    assert parse_date(text) is None


FEEDPARSER_SLASH_READING = utc(2021, 12, 1)  # what feedparser makes of "2021/3/7 09:05:00"


@pytest.mark.parametrize(
    ("text", "reading", "expected"),
    [
        pytest.param(
            "2021/3/7 09:05:00",
            FEEDPARSER_SLASH_READING,
            utc(2021, 3, 7, 9, 5),
            id="ours-wins-over-a-contradicting-reading",
        ),
        pytest.param(
            "Sun, 07 Mar 2021 09:05:00 GMT",
            utc(2021, 3, 7, 9, 5),
            utc(2021, 3, 7, 9, 5),
            id="ours-and-the-reading-agree",
        ),
        pytest.param(
            "2004-július-13T9:15-05:00",
            utc(2004, 7, 13, 14, 15),
            utc(2004, 7, 13, 14, 15),
            id="unread-text-reading-agrees-kept",  # feedparser's Hungarian handler
        ),
        pytest.param(
            "2021/13/7 09:05", FEEDPARSER_SLASH_READING, None, id="unread-text-reading-contradicts"
        ),
        pytest.param(
            "Thu, 07 Mar 2021 09:05:00 XYZ",
            utc(2021, 3, 7, 9, 5),
            utc(2021, 3, 7, 9, 5),
            id="unknown-zone-reading-kept-same-day",
        ),
        pytest.param(
            "2021-155", utc(2022, 3, 1), None, id="ordinal-date-feedparser-misreads-dropped"
        ),
        pytest.param(
            "Sun Mar  7 09:05:00 2021",
            utc(2021, 3, 7, 9, 5),
            utc(2021, 3, 7, 9, 5),
            id="asctime-read-by-feedparser-kept",
        ),
        pytest.param("soon", None, None, id="unread-text-no-reading"),
        pytest.param("7 " * 500, utc(2021, 3, 7), None, id="too-long-reading-dropped"),
        pytest.param(None, utc(2021, 3, 7), utc(2021, 3, 7), id="no-text-reading-kept"),
        pytest.param(17, None, None, id="not-a-string"),
    ],
)
def test_read_date_prefers_ours_and_drops_a_contradicting_reading(
    text: object, reading: datetime | None, expected: datetime | None
) -> None:
    assert read_date(text, reading) == expected


@pytest.mark.parametrize(
    ("text", "value", "expected"),
    [
        pytest.param("2021/13/7", utc(2021, 12, 1), False, id="day-not-written"),
        pytest.param("2021/3/7", utc(2022, 3, 7), False, id="year-not-written"),
        pytest.param("07 Okt 2018", utc(2018, 3, 7), False, id="month-named-otherwise"),
        pytest.param("2021/3/7 23:30 -0300", utc(2021, 3, 8, 2, 30), True, id="zone-next-day"),
        pytest.param("07 Okt 2018", utc(2018, 10, 7), True, id="month-named"),
        pytest.param("2018 7 3 blah", utc(2018, 12, 3), True, id="unknown-word-may-be-month"),
        pytest.param("2018 7 3", utc(2018, 12, 3), False, id="month-number-not-written"),
        pytest.param("0001-01-01", utc(1, 1, 1), True, id="first-day-datetime-holds"),
        pytest.param("9999-12-31", utc(9999, 12, 31), True, id="last-day-datetime-holds"),
    ],
)
def test_agrees(text: str, value: datetime, expected: bool) -> None:
    assert agrees(text, value) is expected


def test_unreadable_keeps_the_texts_nothing_could_read_printable_and_short() -> None:
    long = "x" * 100
    assert unreadable(("soon", None), ("2021", utc(2021, 1, 1)), (None, None), (" ", None)) == (
        "soon",
    )
    assert unreadable((long, None)) == ("x" * 64,)
    assert unreadable(("\x1b[2Jsoon\u200b\n later", None)) == ("[2Jsoon later",)


# --- through a document and a pass -------------------------------------------------------------

RSS = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel><title>T</title>
<item><guid>slash</guid><title>Slash</title><pubDate>2021/3/7 09:05:00</pubDate></item>
<item><guid>pt</guid><title>Pt</title><pubDate>Ter, 05 Mar 2019 08:15:00 -0300</pubDate></item>
<item><guid>de</guid><title>De</title><pubDate>Mi, 03 Okt 2018 10:00:00 +0200</pubDate></item>
<item><guid>fr</guid><title>Fr</title><pubDate>lun., 03 déc. 2018 10:00:00 +0100</pubDate></item>
<item><guid>to-updated</guid><title>Up</title><pubDate>soon</pubDate>
  <dc:date>2020-01-02T03:04:05Z</dc:date></item>
<item><guid>to-now</guid><title>Now</title><pubDate>2021/13/7 09:05</pubDate></item>
</channel></rss>
"""


def test_a_document_stores_the_dates_its_text_states_and_counts_the_unreadable() -> None:
    digest = digest_feed(
        RSS.encode(), spec=SourceSpec(url="https://h.example/feed"), comments=False, now=NOW
    )

    assert {p.guid: p.published for p in digest.posts} == {
        "slash": utc(2021, 3, 7, 9, 5),  # was 2021-12-01 00:00
        "pt": utc(2019, 3, 5, 11, 15),  # was the first-seen time
        "de": utc(2018, 10, 3, 8),
        "fr": utc(2018, 12, 3, 9),
        "to-updated": utc(2020, 1, 2, 3, 4, 5),
        "to-now": NOW,  # was 2021-12-01 00:00: feedparser's reading contradicts the text
    }
    assert digest.unreadable_dates == ("soon", "2021/13/7 09:05")
    assert utc(2021, 12, 1) not in digest.published_dates


def test_json_feed_dates_are_read_by_the_same_rules_and_one_before_year_1_is_no_crash() -> None:
    document = (
        '{"items": [{"id": "a", "title": "A", "date_published": "2021/3/7 09:05:00"},'
        ' {"id": "b", "title": "B", "date_published": "someday"},'
        ' {"id": "c", "title": "C", "date_published": "0001-01-01T00:00:00+01:00"},'
        ' {"id": "d", "title": "D", "date_published": 1615107900}]}'
    )

    digest = digest_feed(
        document.encode(), spec=SourceSpec(url="https://h.example/j"), comments=False, now=NOW
    )

    assert [p.published for p in digest.posts] == [utc(2021, 3, 7, 9, 5), NOW, NOW, NOW]
    # JSON Feed dates are RFC 3339 strings: a number is no date, but it is counted as one
    assert digest.unreadable_dates == ("someday", "0001-01-01T00:00:00+01:00", "1615107900")


def test_a_pass_logs_the_unreadable_dates_of_each_source(tmp_path: Path, sqlite_url: str) -> None:
    feed = tmp_path / "feed.xml"
    feed.write_text(RSS, encoding="utf-8")
    settings = load_settings(write_config(tmp_path, [{"url": str(feed)}]), env={})
    store = open_store(sqlite_url)
    try:
        with capture_logs() as logs:
            asyncio.run(run_once(store, settings))
    finally:
        store.close()

    (event,) = [e for e in logs if e["event"] == "source_processed"]
    assert event["dates_unreadable"] == 2
    assert event["dates_unreadable_first"] == ["soon", "2021/13/7 09:05"]
    assert event["skipped"] == 0
