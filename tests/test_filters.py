"""The keep and block decision (``ingest.filters``): named cases, no I/O."""

from __future__ import annotations

import pickle
from dataclasses import dataclass

import pytest

from ingest.filters import (
    BODY_CHARS,
    EntryText,
    Field,
    Rejection,
    Rule,
    RuleError,
    RuleSet,
    parse_rules,
    rejection,
    rule_lines,
)
from tests.builders import a_post

RUST = EntryText(
    title="Rust 1.80 is out",
    body="LazyCell and LazyLock are stable.",
    author="The Rust Release Team",
    categories=("This Week", "release"),
    link="https://blog.rust-lang.org/2024/07/25/Rust-1.80.0.html",
)
SPONSORED = EntryText(
    title="A word from our sponsor",
    body="Sponsored: try the new editor today.",
    author="Ads",
    categories=("ads",),
    link="https://news.example/sponsor",
)


def levels(
    *, keep: tuple[str, ...] = (), block: tuple[str, ...] = (), **source: tuple[str, ...]
) -> tuple[RuleSet, RuleSet]:
    """Global rules from ``keep``/``block``, the source's from ``source_keep``/``source_block``."""
    return (
        RuleSet.of("[filters]", keep, block),
        RuleSet.of("source", source.get("source_keep", ()), source.get("source_block", ())),
    )


@dataclass(frozen=True)
class Case:
    name: str
    entry: EntryText
    rules: tuple[RuleSet, RuleSet]
    expected: Rejection | None


CASES = [
    Case("no rules store everything", SPONSORED, levels(), None),
    Case(
        "a bare rule looks at the body text",
        SPONSORED,
        levels(block=("(?i)sponsored:",)),
        Rejection("[filters]", "(?i)sponsored:", 0),
    ),
    Case("rules are case-sensitive unless (?i)", SPONSORED, levels(block=("SPONSOR",)), None),
    Case(
        "title: looks at the title only",
        SPONSORED,
        levels(block=("title:(?i)sponsored:", "title:sponsor")),
        Rejection("[filters]", "title:sponsor", 1),
    ),
    Case("author: looks at the author", RUST, levels(block=("author:^Ads$",)), None),
    Case(
        "category: looks at each category",
        SPONSORED,
        levels(block=("category:^ads$",)),
        Rejection("[filters]", "category:^ads$", 0),
    ),
    Case(
        "link: looks at the link",
        SPONSORED,
        levels(source_block=(r"link:news\.example/sponsor",)),
        Rejection("source", r"link:news\.example/sponsor", 0),
    ),
    Case(
        "an unknown prefix is part of the regex",
        SPONSORED,
        levels(block=(r"https://news\.example",)),
        Rejection("[filters]", r"https://news\.example", 0),
    ),
    Case("a keep rule that matches stores it", RUST, levels(source_keep=("(?i)rust",)), None),
    Case(
        "a keep rule that misses keeps it out",
        SPONSORED,
        levels(source_keep=("(?i)rust",)),
        Rejection("source"),
    ),
    Case(
        "block wins over keep",
        RUST,
        levels(keep=("Rust",), source_block=("LazyCell",)),
        Rejection("source", "LazyCell", 0),
    ),
    Case(
        "a global block rule applies before the source's",
        SPONSORED,
        levels(block=("sponsor",), source_block=("Ads",)),
        Rejection("[filters]", "sponsor", 0),
    ),
    Case(
        "each level's keep rules must pass: global keep missed",
        RUST,
        levels(keep=("Python",), source_keep=("Rust",)),
        Rejection("[filters]"),
    ),
    Case(
        "each level's keep rules must pass: both matched",
        RUST,
        levels(keep=("(?i)release",), source_keep=("Rust",)),
        None,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_rejection(case: Case) -> None:
    assert rejection(case.entry, case.rules) == case.expected


def test_a_rejection_says_which_rule() -> None:
    assert str(Rejection("source", "(?i)sponsored", 2)) == "source block[2] '(?i)sponsored'"
    assert str(Rejection("[filters]")) == "[filters] keep: no keep rule matched"


def test_rules_look_at_the_first_body_chars_only() -> None:
    post = a_post("1", "Long read")
    text = EntryText.of(post, "x" * BODY_CHARS + " sponsored")
    assert len(text.body) == BODY_CHARS
    assert rejection(text, levels(block=("sponsored",))) is None


def test_a_field_prefix_narrows_the_rule() -> None:
    assert Rule.parse("title:(?i)x").field is Field.TITLE
    assert Rule.parse("title:(?i)x").pattern.pattern == "(?i)x"
    assert Rule.parse("(?i)x").field is None
    assert Rule.parse("Title:x").field is None  # field names are lower case


def test_only_rules_that_read_the_body_need_its_text() -> None:
    assert not RuleSet.of("source", ("title:a",), ("author:b", "link:c")).reads_body
    assert RuleSet.of("source", (), ("body:a",)).reads_body
    assert RuleSet.of("source", ("a",), ()).reads_body


@pytest.mark.parametrize(
    ("given", "index", "reason"),
    [
        (["ok", "(sponsor"], 1, "'(sponsor' is not a valid regular expression: missing ), unterm"),
        (["a+", "title:"], 1, "'title:' is empty: it would match every entry"),
        ([""], 0, "'' is empty"),
    ],
)
def test_a_bad_rule_is_named_with_the_regex_error(
    given: list[str], index: int, reason: str
) -> None:
    with pytest.raises(RuleError) as raised:
        parse_rules(given)
    assert raised.value.index == index
    assert raised.value.reason.startswith(reason)


def test_one_rule_may_be_given_as_a_string_and_the_environment_has_one_per_line() -> None:
    assert parse_rules("a, b") == ("a, b",)
    assert rule_lines("(?i)sponsored\n\n  title:^Ad \n") == ("(?i)sponsored", "title:^Ad")
    with pytest.raises(ValueError, match="not a list"):
        parse_rules([1])


def test_rules_cross_to_worker_processes() -> None:
    rules = levels(block=("title:(?i)x",), source_keep=("y",))
    assert pickle.loads(pickle.dumps(rules)) == rules
