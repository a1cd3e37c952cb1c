"""How text and queries are cut into search terms (pure, no store)."""

from __future__ import annotations

import pytest

from storage.searchtext import MAX_INDEXED_CHARS, Term, index_text, indexed_fields, query_terms


def test_cjk_runs_become_overlapping_pairs_and_their_last_character() -> None:
    words = index_text("Nature 证实：学术界刮起离职潮").split()
    assert words == [
        "nature",
        "证实",
        "实",
        ":",
        "学术",
        "术界",
        "界刮",
        "刮起",
        "起离",
        "离职",
        "职潮",
        "潮",
    ]


def test_full_width_letters_are_indexed_as_ascii_lower_case() -> None:
    assert index_text("ＡＢＣ１２３") == "abc123"


def test_the_body_is_indexed_as_text_with_paragraphs_apart() -> None:
    title, body = indexed_fields(
        "Hello", '<p>one <a href="https://x.example/">two</a></p><p>three</p>'
    )
    assert (title, body) == ("hello", "one two three")


def test_a_giant_post_is_indexed_up_to_the_cap() -> None:
    assert len(index_text("a" * (MAX_INDEXED_CHARS + 10))) == MAX_INDEXED_CHARS


@pytest.mark.parametrize(
    ("query", "terms"),
    [
        ("离职潮", (Term("离职 职潮"),)),
        ("学术", (Term("学术"),)),
        ("学", (Term("学", prefix=True),)),
        ("A股", (Term("a 股", prefix=True),)),
        ("股票A", (Term("股票 票 a"),)),
        ("Nature science", (Term("nature"), Term("science"))),
        ('"machine learning" GPU', (Term("machine learning"), Term("gpu"))),
        ("data Data DATA", (Term("data"),)),
        ("  ，  -- ", ()),
        ('say "hi', (Term("say"), Term("hi"))),
    ],
)
def test_query_terms(query: str, terms: tuple[Term, ...]) -> None:
    assert query_terms(query) == terms
