"""CaptionTracker: append-only deltas whose concatenation is always the final transcript."""

from __future__ import annotations

import random

import pytest

from openrealtime.session.captions import CaptionTracker


class Captions:
    """A tracker plus the deltas it produced, checking the invariants after every call."""

    def __init__(self, *, hold_cut_word: bool = False) -> None:
        self.tracker = CaptionTracker(hold_cut_word=hold_cut_word)
        self.deltas: list[str] = []

    def _record(self, delta: str) -> str:
        before = "".join(self.deltas)
        if delta:
            # The first delta starts the text; later ones add a space and whole words.
            assert not delta.startswith(" ") if not self.deltas else delta.startswith(" ")
            assert not delta.endswith(" ")
            assert "  " not in delta
            self.deltas.append(delta)
        assert "".join(self.deltas) == self.tracker.text  # after every step, not only at the end
        assert self.tracker.text.startswith(before)  # append-only
        return delta

    def partial(self, text: str) -> str:
        return self._record(self.tracker.partial(text))

    def final(self, text: str) -> str:
        return self._record(self.tracker.final(text))

    def freeze(self, text: str) -> bool:
        before = self.tracker.text
        frozen = self.tracker.freeze(text.split())
        assert self.tracker.text == before  # freezing never changes what was sent
        return frozen


def test_a_word_is_sent_once_two_hypotheses_agree_on_it() -> None:
    c = Captions()
    assert c.partial("hello") == ""  # nothing to agree with yet
    assert c.partial("hello world") == "hello"
    assert c.partial("hello world how") == " world"
    assert c.partial("hello world how are") == " how"
    assert c.final("hello world how are you") == " are you"
    assert c.tracker.text == "hello world how are you"
    assert c.deltas == ["hello", " world", " how", " are you"]


def test_disagreeing_hypotheses_send_nothing() -> None:
    c = Captions()
    assert c.partial("the cat") == ""
    assert c.partial("a cat") == ""  # disagrees at the first word
    assert c.partial("a cat sat") == "a cat"


def test_a_partial_that_rewrites_sent_words_still_sends_the_words_after_them() -> None:
    """Whisper rewrites words it said before; captions go on after the sent words instead of
    waiting for the end of the turn (issue 14: a 12 s sentence got no caption until it ended)."""
    c = Captions()
    c.partial("the cat sat")
    assert c.partial("the cat sat down") == "the cat sat"
    assert c.partial("a cat sat down on") == " down"  # "a" for "the" is past: agreement goes on after it
    assert c.partial("a cat sat down on the") == " on"
    assert c.partial("the cat sat down on the mat") == " the"
    assert c.tracker.text == "the cat sat down on the"


def test_a_rewritten_word_lines_up_by_its_letters() -> None:
    c = Captions()
    c.partial("the fine and steam")
    c.partial("the fine and steam meeting")
    assert c.tracker.text == "the fine and steam"
    assert c.partial("the finance team meeting is") == " meeting"  # both went on with "meeting"
    assert c.partial("the finance team meeting is at") == " is"
    assert c.final("The finance team meeting is at noon.") == " at noon."


def test_words_are_compared_without_case_or_punctuation() -> None:
    c = Captions()
    c.partial("Hello, world")
    assert c.partial("hello world. How") == "hello world."  # the newest surface form is sent
    assert c.final("Hello world, how are you?") == " how are you?"
    assert c.tracker.text == "hello world. how are you?"


def test_the_final_appends_only_the_rest_when_it_extends_what_was_sent() -> None:
    c = Captions()
    c.partial("one two three")
    c.partial("one two three four")
    assert c.final("One, two, three, four, five.") == " four, five."
    assert c.tracker.text == "one two three four, five."


def test_a_final_that_revises_sent_words_appends_after_them() -> None:
    c = Captions()
    c.partial("the cat sat")
    c.partial("the cat sat there")
    assert c.tracker.text == "the cat sat"
    assert c.final("a cat sat on the mat") == " on the mat"
    assert c.tracker.text == "the cat sat on the mat"


def test_a_final_that_revises_a_word_in_the_middle() -> None:
    c = Captions()
    c.partial("I want to go home now")
    c.partial("I want to go home now please")
    assert c.final("I want two go home now please") == " please"
    assert c.tracker.text == "I want to go home now please"


def test_a_final_that_shares_no_word_with_what_was_sent_does_not_repeat_it() -> None:
    c = Captions()
    c.partial("I scream")
    c.partial("I scream for")
    assert c.tracker.text == "I scream"
    assert c.final("ice cream for everyone") == " for everyone"
    assert c.tracker.text == "I scream for everyone"


def test_a_final_shorter_than_what_was_sent_adds_nothing() -> None:
    c = Captions()
    c.partial("hello world foo")
    c.partial("hello world foo bar")
    assert c.final("hello world") == ""
    assert c.tracker.text == "hello world foo"  # sent words cannot be taken back


def test_a_final_that_drops_a_sent_word_and_continues() -> None:
    c = Captions()
    c.partial("so um we should go")
    c.partial("so um we should go now")
    assert c.final("so we should go now") == " now"
    assert c.tracker.text == "so um we should go now"


def test_a_final_with_nothing_sent_is_the_whole_transcript() -> None:
    c = Captions()
    assert c.final("  hello   there  ") == "hello there"
    assert c.tracker.text == "hello there"


@pytest.mark.parametrize("final", ["", "   "])
def test_empty_hypotheses(final: str) -> None:
    c = Captions()
    assert c.partial("") == ""
    assert c.partial("") == ""
    assert c.partial("hi there") == ""  # the empty one before it agrees on nothing
    assert c.final(final) == ""
    assert c.tracker.text == ""


def test_an_empty_final_after_sent_words_keeps_them() -> None:
    c = Captions()
    c.partial("hi there")
    c.partial("hi there you")
    assert c.final("") == ""
    assert c.tracker.text == "hi there"


def test_a_silent_turn_is_an_empty_transcript() -> None:
    c = Captions()
    assert c.final("") == ""
    assert c.deltas == []
    assert c.tracker.text == ""


# --- hold_cut_word ------------------------------------------------------------------------------------


def test_held_cut_word_waits_for_a_hypothesis_that_goes_past_it() -> None:
    c = Captions(hold_cut_word=True)
    c.partial("Our meeting.")
    assert c.partial("Our meeting.") == "Our"  # both decodes end on "meeting.": a guess at the cut
    assert c.partial("Our meeting has") == " meeting"  # the surface form without the cut's period
    assert c.partial("Our meeting has been") == " has"
    assert c.final("Our meeting has been moved.") == " been moved."


def test_held_cut_word_keeps_half_words_out() -> None:
    c = Captions(hold_cut_word=True)
    c.partial("turn off the light")
    assert c.partial("turn off the light.") == "turn off the"
    assert c.partial("turn off the lights when") == ""  # "light" was a half word after all
    assert c.partial("turn off the lights when you") == " lights when"


def test_held_cut_word_a_one_word_hypothesis_sends_nothing() -> None:
    c = Captions(hold_cut_word=True)
    c.partial("hello")
    assert c.partial("hello") == ""
    assert c.partial("") == ""
    assert c.final("hello") == "hello"


@pytest.mark.parametrize("seed", range(30))
def test_held_cut_word_keeps_the_invariants(seed: int) -> None:
    rng = random.Random(seed)
    truth = [rng.choice(VOCABULARY) for _ in range(rng.randint(0, 25))]
    c = Captions(hold_cut_word=True)
    heard = 0
    while heard < len(truth):
        heard = min(len(truth), heard + rng.randint(0, 3))
        c.partial(_hypothesis(truth, heard, rng))
    before = c.tracker.text
    c.final(_hypothesis(truth, len(truth), rng))
    assert c.tracker.text.startswith(before)
    assert "".join(c.deltas) == c.tracker.text


# --- freeze -------------------------------------------------------------------------------------------


def test_freeze_fixes_sent_words_and_later_hypotheses_cover_only_the_window() -> None:
    c = Captions()
    c.partial("a b c d")
    c.partial("a b c d e")
    assert c.tracker.text == "a b c d"
    assert c.freeze("a b")  # the audio of "a b" leaves the decode window
    assert c.tracker.frozen == ["a", "b"]
    assert c.partial("c d e") == ""  # a new window: nothing to agree with yet
    assert c.partial("c d e f") == " e"
    assert c.final("a b c d e f g") == " f g"  # the final is the whole turn's decode
    assert c.tracker.text == "a b c d e f g"


def test_freeze_keeps_the_sent_surface_form() -> None:
    c = Captions()
    c.partial("Hello, world")
    c.partial("Hello, world again")
    assert c.freeze("hello")
    assert c.tracker.frozen == ["Hello,"]


def test_freeze_accumulates() -> None:
    c = Captions()
    c.partial("a b c d")
    c.partial("a b c d e")
    assert c.freeze("a")
    assert c.freeze("b c")
    assert c.tracker.frozen == ["a", "b", "c"]
    c.partial("d e")
    assert c.partial("d e f") == " e"
    assert c.tracker.text == "a b c d e"


def test_freeze_refuses_words_not_yet_sent() -> None:
    c = Captions()
    c.partial("a b")
    c.partial("a b c")
    assert not c.freeze("a b c")  # "c" was not sent
    assert c.tracker.frozen == []


def test_freeze_takes_the_sent_words_that_stand_for_rewritten_ones() -> None:
    c = Captions()
    c.partial("a b c")
    c.partial("a b c d")
    assert c.freeze("a x")  # its audio left the window: the sent words that stand for it are frozen
    assert c.tracker.frozen == ["a", "b"]


def test_freeze_before_anything_was_sent() -> None:
    c = Captions()
    assert c.freeze("")  # nothing to freeze is trivially fine
    assert not c.freeze("hello")


def test_a_final_after_freeze_that_revises_the_window() -> None:
    c = Captions()
    c.partial("one two three four")
    c.partial("one two three four five")
    assert c.freeze("one two")
    assert c.final("tree for five six") == " five six"
    assert c.tracker.text == "one two three four five six"


# --- the invariant, over many random turns -----------------------------------------------------------

VOCABULARY = ["the", "cat", "sat", "on", "a", "mat", "I", "scream", "ice", "cream", "go", "home", "now"]


def _variant(word: str, rng: random.Random) -> str:
    """The same word as a decoder might write it differently: case, trailing punctuation."""
    if rng.random() < 0.2:
        word = word.capitalize()
    if rng.random() < 0.2:
        word += rng.choice([",", ".", "?", "!"])
    return word


def _hypothesis(truth: list[str], heard: int, rng: random.Random) -> str:
    words = [_variant(w, rng) for w in truth[:heard]]
    if words and rng.random() < 0.25:  # a revision somewhere
        words[rng.randrange(len(words))] = rng.choice(VOCABULARY)
    if words and rng.random() < 0.1:  # a dropped word
        del words[rng.randrange(len(words))]
    if rng.random() < 0.1:
        words = []  # a decode that heard nothing
    return " ".join(words)


@pytest.mark.parametrize("seed", range(60))
def test_concatenated_deltas_always_equal_the_transcript(seed: int) -> None:
    rng = random.Random(seed)
    truth = [rng.choice(VOCABULARY) for _ in range(rng.randint(0, 25))]
    c = Captions()
    heard = 0
    frozen = 0
    while heard < len(truth):
        heard = min(len(truth), heard + rng.randint(0, 3))
        c.partial(_hypothesis(truth[frozen:], heard - frozen, rng))
        sent = len(c.tracker.sent)
        if sent > frozen + 2 and rng.random() < 0.3:
            count = rng.randint(1, sent - frozen - 1)
            if c.freeze(" ".join(c.tracker.sent[frozen : frozen + count])):
                frozen += count
    before = c.tracker.text
    c.final(_hypothesis(truth, len(truth), rng))  # the final decodes the whole turn
    assert c.tracker.text.startswith(before)
    assert "".join(c.deltas) == c.tracker.text
    # Every word sent is a word some hypothesis contained: nothing is invented.
    allowed = {w.lower().strip(",.?!") for w in VOCABULARY}
    assert {w.lower().strip(",.?!") for w in c.tracker.text.split()} <= allowed
