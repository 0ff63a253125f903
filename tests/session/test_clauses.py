"""Where a streamed answer is cut into speakable clauses (ClauseSplitter), and when words read finished."""

from __future__ import annotations

import pytest

from openrealtime.session.clauses import ClauseSplitter
from openrealtime.session.endpointing import looks_complete


def split(*deltas: str) -> list[list[str]]:
    """What each delta gives out, then what the flush gives out."""
    splitter = ClauseSplitter()
    return [splitter.feed(d) for d in deltas] + [splitter.flush()]


def test_the_first_clause_is_cut_early_and_later_ones_are_whole_sentences() -> None:
    assert split("Hi. The weather is", " fine today, and warm. Ok. ", "See you soon. Bye") == [
        ["Hi."],  # the first sentence, however short
        ["The weather is fine today, and warm."],
        [],  # "Ok." and "See you soon." are too short to stand alone
        ["Ok. See you soon. Bye"],
    ]


def test_the_first_clause_is_cut_at_a_comma_once_it_is_long_enough() -> None:
    assert split("Yes, well, of course", " it is") == [[], [], ["Yes, well, of course it is"]]  # under 12
    assert split("Well, you know, of course") == [["Well, you know,"], ["of course"]]


def test_a_long_first_clause_without_punctuation_is_cut_at_a_word() -> None:
    long = "one two three four five six seven eight nine ten"
    assert split(long) == [["one two three four five six seven eight"], ["nine ten"]]
    assert split("x" * 45) == [[], ["x" * 45]]  # no space to cut at: it waits


def test_flush_of_nothing_gives_nothing() -> None:
    assert split("  ") == [[], []]


@pytest.mark.parametrize(
    ("text", "complete"),
    [
        ("", False),
        ("...", False),
        ("I want to go to the", False),  # trails off
        ("I want to go.", True),
        ("Book it now", True),  # three words, no dangling ending
        ("Yes", False),
        ("Yes.", True),
    ],
)
def test_looks_complete(text: str, complete: bool) -> None:
    assert looks_complete(text) is complete
