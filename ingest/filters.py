"""Keep and block rules: whether an entry is stored at all. Pure: no I/O, no clock.

A rule is a regular expression (Python's ``re``, searched anywhere, case-sensitive unless it
starts with ``(?i)``), matched against an entry's fields as plain text: its title, its body
text (the first ``BODY_CHARS`` characters), its author, each of its categories and its link. A
rule may name one field to look at, ``title:(?i)sponsored``; a bare rule looks at every field.

Rules come in two levels, the global ``[filters]`` table and a source's own ``keep``/``block``,
and each level is a filter of its own; an entry is stored only when it passes both:

- no block rule of either level matches it;
- if a level has keep rules, at least one of them matches it.

So a global block rule drops an entry from every source, and a source's keep rules narrow that
one source further; neither level can let through what the other keeps out.

The matching happens in the digest (``ingest.digest.document``), inside worker processes held
to a time limit: Python's ``re`` cannot be interrupted, so a rule that backtracks without end on
what a feed serves fails that source's digest (``too_slow``) instead of holding the daemon.
Cutting the body text to ``BODY_CHARS`` keeps ordinary rules on huge entries cheap.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from ingest.types import Post

BODY_CHARS = 100_000
"""How much of an entry's body text rules look at: more than any article, a bound on the
time a rule spends on an entry built to be huge."""


class Field(StrEnum):
    """The part of an entry a rule may be narrowed to, with ``field:regex``."""

    TITLE = "title"
    BODY = "body"
    AUTHOR = "author"
    CATEGORY = "category"
    LINK = "link"


_FIELD_NAMES = frozenset(field.value for field in Field)


class RuleError(ValueError):
    """Rule ``index`` of a list is not a valid regular expression; ``reason`` says why."""

    def __init__(self, index: int, reason: str) -> None:
        self.index = index
        self.reason = reason
        super().__init__(f"rule {index}: {reason}")


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule: ``text`` as written, the field it looks at (None: every field) and its
    compiled pattern."""

    text: str
    field: Field | None
    pattern: re.Pattern[str]

    @classmethod
    def parse(cls, text: str) -> Rule:
        """The rule ``text`` says; ``re.error`` when its regular expression is not valid."""
        name, colon, rest = text.partition(":")
        field = Field(name) if colon and name in _FIELD_NAMES else None
        return cls(text, field, re.compile(rest if field else text))

    def matches(self, entry: EntryText) -> bool:
        return any(self.pattern.search(value) for value in entry.values(self.field))


def shown(rule: str) -> str:
    """``rule`` as messages show it: in single quotes, as a shell passes it to ``feeds update``
    (a backslash stays one backslash, unlike in ``repr``)."""
    return f"'{rule}'" if "'" not in rule else shlex.quote(rule)


def parse_rules(texts: object) -> tuple[str, ...]:
    """A list of rules as given (TOML array, or one rule as a string), each checked; RuleError
    naming the first that is not a regular expression."""
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, list | tuple) or not all(isinstance(t, str) for t in texts):
        raise ValueError(f"{texts!r} is not a list of regular expressions")
    for index, text in enumerate(texts):
        try:
            rule = Rule.parse(text)
        except re.error as exc:
            raise RuleError(
                index, f"{shown(text)} is not a valid regular expression: {exc}"
            ) from exc
        if not rule.pattern.pattern:
            raise RuleError(index, f"{shown(text)} is empty: it would match every entry")
    return tuple(texts)


def rule_lines(value: object) -> tuple[str, ...]:
    """``parse_rules`` of a list, or of text with one rule per line (an environment variable:
    a regular expression may hold commas and spaces, never a line break)."""
    if isinstance(value, str):
        value = [line.strip() for line in value.splitlines() if line.strip()]
    return parse_rules(value)


@dataclass(frozen=True, slots=True)
class RuleSet:
    """The keep and block rules of one level, ``level`` naming it in what is logged: the
    global ``[filters]``, or ``source`` for a source's own."""

    level: str
    keep: tuple[Rule, ...] = ()
    block: tuple[Rule, ...] = ()

    @classmethod
    def of(cls, level: str, keep: Sequence[str], block: Sequence[str]) -> RuleSet:
        """The rules of ``level`` from their texts, already checked (``parse_rules``)."""
        return cls(level, tuple(map(Rule.parse, keep)), tuple(map(Rule.parse, block)))

    def __bool__(self) -> bool:
        return bool(self.keep or self.block)

    @property
    def reads_body(self) -> bool:
        """Whether a rule looks at the body text, which then has to be extracted."""
        return any(rule.field in (None, Field.BODY) for rule in (*self.keep, *self.block))


@dataclass(frozen=True, slots=True)
class EntryText:
    """What rules look at: an entry's fields as plain text, the body cut to ``BODY_CHARS``."""

    title: str
    body: str
    author: str
    categories: tuple[str, ...]
    link: str

    @classmethod
    def of(cls, post: Post, body_text: str) -> EntryText:
        """``post``'s fields; ``body_text`` is its body as plain text (the digest's to make)."""
        body = body_text[:BODY_CHARS]
        return cls(post.title, body, post.author, post.categories, post.link or "")

    def values(self, field: Field | None) -> tuple[str, ...]:
        """The texts of ``field``: one per category, every field's for None."""
        by_field = {
            Field.TITLE: (self.title,),
            Field.BODY: (self.body,),
            Field.AUTHOR: (self.author,),
            Field.CATEGORY: self.categories,
            Field.LINK: (self.link,),
        }
        if field is None:
            return tuple(value for values in by_field.values() for value in values)
        return by_field[field]


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why an entry is not stored: the block rule ``rule`` (number ``index`` of ``level``)
    matched it, or, with ``rule`` None, none of ``level``'s keep rules did."""

    level: str
    rule: str | None = None
    index: int = 0

    def __str__(self) -> str:
        if self.rule is None:
            return f"{self.level} keep: no keep rule matched"
        return f"{self.level} block[{self.index}] {shown(self.rule)}"


def rejection(entry: EntryText, levels: Sequence[RuleSet]) -> Rejection | None:
    """Why ``entry`` is kept out by ``levels`` (global, then the source's), or None to store
    it: the first block rule that matches, else the first level whose keep rules all miss."""
    for rules in levels:
        for index, rule in enumerate(rules.block):
            if rule.matches(entry):
                return Rejection(rules.level, rule.text, index)
    for rules in levels:
        if rules.keep and not any(rule.matches(entry) for rule in rules.keep):
            return Rejection(rules.level)
    return None
