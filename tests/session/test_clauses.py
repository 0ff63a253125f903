"""Where a streamed answer is cut into speakable clauses (ClauseSplitter), and when words read finished."""

from __future__ import annotations

import pytest

from openrealtime.session.clauses import FIRST_CLAUSE_MAX_CHARS, ClauseSplitter, hangs
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
    assert split("Yes, well, of", " course") == [[], [], ["Yes, well, of course"]]  # commas under 12
    assert split("Well, you know, of course") == [["Well, you know,"], ["of course"]]


def test_a_long_first_clause_without_punctuation_is_cut_at_a_word() -> None:
    long = "one two three four five six seven eight nine ten"
    assert len("one two three four five") <= FIRST_CLAUSE_MAX_CHARS < len("one two three four five six")
    assert split(long) == [["one two three four five"], ["six seven eight nine ten"]]
    assert split("x" * 45) == [[], ["x" * 45]]  # no space to cut at: it waits


def streamed(text: str, **options: int) -> list[str]:
    """The clauses of ``text`` fed a word at a time, as an LLM streams it."""
    splitter = ClauseSplitter(**options)
    out: list[str] = []
    for word in text.split(" "):
        out += splitter.feed(word + " ")
    return out + splitter.flush()


def test_a_first_clause_cut_at_a_word_rests_on_a_word_a_phrase_can_end_on() -> None:
    assert streamed("The capital of France is Paris.") == ["The capital of France", "is Paris."]
    # "...ocean is the Pacific": cut back past "the" and "is"
    assert streamed("The largest ocean is the Pacific Ocean, which covers a third of the Earth.")[0] == (
        "The largest ocean"
    )
    assert streamed("I'm sorry for any trouble that this may cause you today.")[0] == "I'm sorry"  # "for any"
    assert streamed("I would have to say that it is")[0] == "I would have to say"  # "that" hangs: "say" does not
    assert streamed("To the store and the market we go")[0] == "To the store"  # two words are always left


def test_the_piece_after_a_cut_at_a_word_ends_at_its_sentence_end_or_comma_however_short() -> None:
    text = "The largest ocean is the Pacific Ocean, which covers a third of the Earth. It is deep. Very deep."
    assert streamed(text) == [
        "The largest ocean",
        "is the Pacific Ocean,",  # under LATER_CLAUSE_MIN_CHARS, but not left to grow
        "which covers a third of the Earth.",  # then whole sentences again
        "It is deep. Very deep.",
    ]


def test_a_first_sentence_that_ends_within_the_cut_is_one_clause() -> None:
    assert streamed("The capital of France is Paris.", first_max_chars=40) == ["The capital of France is Paris."]
    assert streamed("Paris is lovely. It is big.") == ["Paris is lovely.", "It is big."]


@pytest.mark.parametrize("word", ["of", "The", "is,", "could", "any", "and"])
def test_words_a_phrase_hangs_on(word: str) -> None:
    assert hangs(word)


@pytest.mark.parametrize("word", ["France", "sorry", "say", "Paris."])
def test_words_a_phrase_can_rest_on(word: str) -> None:
    assert not hangs(word)


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
