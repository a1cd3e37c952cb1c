"""How text is cut into search terms: one rule for every post and every query, on both backends.

Full-text engines find words between spaces, but Chinese, Japanese and Korean are written
without them: FTS5's default tokenizer and PostgreSQL's parser index 学术界刮起离职潮 as one
word, so 离职潮 is never found. Before indexing, every run of CJK characters is therefore
rewritten as its overlapping two-character pieces, and its last character alone::

    学术界刮起离职潮  ->  学术 术界 界刮 刮起 起离 离职 职潮 潮

Any CJK string of two characters or more is then a phrase of adjacent pieces (离职潮 ->
"离职 职潮"); a single character is a prefix of some piece (潮 -> 潮*); the lone last
character keeps phrases that continue past a run (股票A) adjacent. Other scripts keep their
words, which the backend's tokenizer splits and case-folds as usual. Both stores index the
same rewritten text with a plain word tokenizer (FTS5 ``unicode61``, PostgreSQL ``simple``),
so a query means the same on SQLite and PostgreSQL, and no backend locale or extension is
needed. Bigrams are what Lucene's CJK analyzer does; a dictionary segmenter would need a
dictionary per language and still miss new words.

Text is NFKC-normalized first, so full-width letters and digits (common in CJK text) are found
as their ASCII selves.

This is the index's own rule, used by ``storage.search`` for documents and queries alike, so it
lives in ``storage``: nothing outside the store needs it.
"""

from __future__ import annotations

import html
import operator
import re
import unicodedata
from dataclasses import dataclass

MAX_INDEXED_CHARS = 100_000
"""Plain text indexed per post: beyond it, a giant post would only bloat the index (and break
PostgreSQL's 1 MB tsvector limit, failing its whole feed)."""

_CJK = re.compile(
    "["
    "\u1100-\u11ff"  # Hangul Jamo
    "\u3040-\u30ff"  # Hiragana, Katakana
    "\u3130-\u318f"  # Hangul compatibility Jamo
    "\u31f0-\u31ff"  # Katakana phonetic extensions
    "\u3400-\u4dbf"  # CJK extension A
    "\u4e00-\u9fff"  # CJK unified ideographs
    "\uac00-\ud7af"  # Hangul syllables
    "\uf900-\ufaff"  # CJK compatibility ideographs
    "\uff66-\uff9f"  # half-width Katakana
    "\U00020000-\U0003134f"  # CJK extensions B-G
    "]+"
)
_TERM = re.compile(r'"([^"]*)"?|(\S+)')
_SANITIZED_TAG = re.compile(r'<(?:[^>"]|"[^"]*")*>')


@dataclass(frozen=True, slots=True)
class Term:
    """One query term as the index sees it: a phrase of lower-case words, the last one maybe a
    prefix."""

    phrase: str
    prefix: bool = False


def _pieces(run: str) -> str:
    """``run``'s overlapping pairs, then its last character: 离职潮 -> 离职 职潮 潮."""
    return run if len(run) == 1 else " ".join(map(operator.add, run, run[1:])) + " " + run[-1]


def index_text(text: str) -> str:
    """``text`` as it is indexed: NFKC, lower case, CJK runs as pieces, at most
    ``MAX_INDEXED_CHARS``.

    Lower case already, so ranking can count a term's occurrences in the stored text without
    folding case on every query.
    """
    text = unicodedata.normalize("NFKC", text[:MAX_INDEXED_CHARS]).lower()
    return _CJK.sub(lambda run: f" {_pieces(run[0])} ", text)


def indexed_fields(title: str, body_html: str) -> tuple[str, str]:
    """A stored post's title and sanitized body as the index holds them (see ``index_text``).

    Plain text, not HTML: tags and the URLs in their attributes would match every query for
    "img" or "https".
    """
    return index_text(title), index_text(sanitized_text(body_html))


def sanitized_text(sanitized: str) -> str:
    """Plain text of a stored (sanitized) body, for the index.

    Each tag becomes a space, so paragraphs do not run together
    (``ingest.digest.sanitize.html_to_text`` joins ``a</p><p>b`` into ``ab``, which would make both
    words unsearchable). nh3 serializes attributes double-quoted with ``"`` escaped, so a regular
    expression reads tags exactly; it is faster than parsing the HTML a second time.
    """
    text = _SANITIZED_TAG.sub(" ", sanitized)
    if "&" in text:
        text = html.unescape(text)
    return " ".join(text.split())


def _term(text: str) -> Term | None:
    """A query term; None when it holds nothing a tokenizer keeps (only punctuation)."""
    text = unicodedata.normalize("NFKC", text).lower()
    if not any(char.isalnum() for char in text):
        return None
    runs = list(_CJK.finditer(text))
    parts: list[str] = []
    end = 0
    for number, run in enumerate(runs):
        chars = run[0]
        parts.append(text[end : run.start()])
        last = number == len(runs) - 1 and not text[run.end() :].strip()
        # A run that ends the term may go on in the post (离职 in 离职潮): its pairs only. A run
        # followed by more of the term ended there in the post too, so its lone last
        # character follows, as in the index.
        parts.append(_pieces(chars) if not last else _pieces(chars).rsplit(" ", 1)[0])
        end = run.end()
    parts.append(text[end:])
    phrase = " ".join(" ".join(parts).split())
    ends_in_single = bool(runs) and len(runs[-1][0]) == 1 and not text[runs[-1].end() :].strip()
    return Term(phrase, prefix=ends_in_single)


def query_terms(query: str) -> tuple[Term, ...]:
    """The terms of ``query``: words, and "quoted phrases" as one term; repeats dropped.

    A post matches when it holds every term.
    """
    terms: list[Term] = []
    for match in _TERM.finditer(query):
        term = _term(match[1] if match[1] is not None else match[2])
        if term and term.phrase.casefold() not in {t.phrase.casefold() for t in terms}:
            terms.append(term)
    return tuple(terms)
