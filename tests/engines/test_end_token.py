"""The default LLM's probability of its end-of-message token after a user's words (real model)."""

from __future__ import annotations

import numpy as np
import pytest

from openrealtime.engines.end_token import EndTokenModel, end_probability

SYSTEM = [{"role": "system", "content": "You are a helpful voice assistant."}]


def test_end_probability_is_the_softmax_of_the_token() -> None:
    logits = np.array([0.0, np.log(3.0)])
    assert end_probability(logits, 1) == pytest.approx(0.75)
    assert end_probability(np.array([1000.0, 0.0]), 0) == pytest.approx(1.0)


@pytest.mark.real
def test_a_finished_question_ends_the_message_far_likelier_than_a_fragment() -> None:
    model = EndTokenModel()
    tokens, end = model.prompt("what is the capital of france", SYSTEM)
    assert model._llm.detokenize([end], special=True) == b"<|im_end|>"
    assert model._llm.detokenize(tokens[-2:]).strip().endswith(b"france")
    finished = model.probability("what is the capital of france", SYSTEM)
    fragment = model.probability("what is the capital of", SYSTEM)
    assert finished > 100 * fragment


@pytest.mark.real
def test_the_shared_prefix_is_evaluated_once_and_forgetting_starts_over() -> None:
    model = EndTokenModel()
    first = model.probability("please turn off the lights", SYSTEM)
    whole = model.evaluated_tokens
    again = model.probability("please turn off the lights", SYSTEM)
    assert model.evaluated_tokens == whole + 1  # only the last token, whose logits are asked
    assert again == pytest.approx(first, rel=1e-3)
    model.forget()
    assert model.probability("please turn off the lights", SYSTEM) == pytest.approx(first, rel=1e-3)
    assert model.evaluated_tokens == 2 * whole + 1


@pytest.mark.real
def test_semantic_vads_thresholds_split_a_fragment_from_a_whole_message() -> None:
    """The scorer as the server loads it: Whisper's words, spelled plain under the default instructions."""
    from openrealtime.engines.end_token import TurnWordsScorer
    from openrealtime.session.eou_text import VETO_BELOW
    from openrealtime.session.realtime import DEFAULT_INSTRUCTIONS

    scorer = TurnWordsScorer(EndTokenModel(), DEFAULT_INSTRUCTIONS)
    for fragment in ("Please remind me to call.", "I was wondering if you could.", "The meeting has been moved to."):
        assert scorer.end_probability(fragment) < VETO_BELOW, fragment
    wholes = ("What is the capital of France?", "Please turn off the lights.", "Thank you very much for your help.")
    for whole in wholes:
        assert scorer.end_probability(whole) >= VETO_BELOW, whole


@pytest.mark.real
def test_words_warmed_while_spoken_leave_the_question_only_the_words_after() -> None:
    model = EndTokenModel()
    cold = model.probability("please turn off the lights", SYSTEM)
    model.forget()
    model.warm("please turn off", SYSTEM)
    warmed = model.evaluated_tokens
    model.warm("please turn off", SYSTEM)  # already in the cache: nothing evaluated
    assert model.evaluated_tokens == warmed
    assert model.probability("please turn off the lights", SYSTEM) == pytest.approx(cold, rel=1e-3)
    assert model.evaluated_tokens - warmed <= 3  # " the lights"
