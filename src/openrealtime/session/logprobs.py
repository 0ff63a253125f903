"""Token log-probabilities of transcripts as OpenAI sends them: each word's tokens, cut to a delta.

With ``include: ["item.input_audio_transcription.logprobs"]``, OpenAI's transcription ``delta``
carries the ``logprobs`` of exactly its text, and ``completed`` those of the whole transcript
(reference 7.2): ``[{"token", "logprob", "bytes"}]``. Our deltas are whole words that successive
decodes agree on (:mod:`~openrealtime.session.captions`), so a decode's tokens are grouped by the
whitespace-separated words of its text, and a run of words is written out with single spaces: the
first token of each word carries the space before it.

Two kinds of token hold no text of their own: one that is only whitespace (Whisper spells ``" 日本"``
as ``" "`` then ``"日本"``), and one that ends inside a multi-byte character. Each is folded into the
token after it, their log-probabilities added (the probability of both), so every entry is whole
text, the entries' ``token`` strings add up to the delta exactly, and ``bytes`` is each entry's
UTF-8.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from openrealtime.contracts import Transcript

LOGPROBS_INCLUDE = "item.input_audio_transcription.logprobs"


@dataclass(frozen=True)
class WordLogprobs:
    """The tokens of one word: ``(text, logprob)`` pieces without whitespace that spell the word."""

    pieces: tuple[tuple[str, float], ...]


def wants_logprobs(include: Sequence[str] | None) -> bool:
    """Whether a session's ``include`` asks for transcription log-probabilities."""
    return LOGPROBS_INCLUDE in (include or ())


def word_logprobs(transcript: Transcript) -> list[WordLogprobs] | None:
    """The tokens of each word of ``transcript.text.split()``, in order.

    ``None`` when the decode has no tokens (it was not asked for them), or when they do not spell
    its words (then no entry could be honest).
    """
    words: list[list[tuple[str, float]]] = []
    pending = 0.0  # the log-probability of tokens folded into the next one
    in_word = False
    for token in transcript.tokens:
        text, logprob = token.text, token.logprob + pending
        pending = 0.0
        body = text.strip()
        if not body:  # whitespace only, or a piece of a character: it goes with the next token
            pending = logprob
            in_word = in_word and not text
            continue
        if text[0].isspace() or not in_word:
            words.append([])
        words[-1].append((body, logprob))
        in_word = not text[-1].isspace()
    spelled = ["".join(piece for piece, _ in word) for word in words]
    if not words or spelled != transcript.text.split():
        return None
    return [WordLogprobs(tuple(word)) for word in words]


def wire_logprobs(words: Sequence[WordLogprobs], *, space_before: bool) -> list[dict[str, Any]]:
    """OpenAI's ``logprobs`` entries of ``words`` written out as ``" ".join`` of them, with a space
    before the first one when ``space_before`` (a delta after the turn's first)."""
    entries: list[dict[str, Any]] = []
    for index, word in enumerate(words):
        for position, (piece, logprob) in enumerate(word.pieces):
            token = " " + piece if position == 0 and (index > 0 or space_before) else piece
            entries.append({"token": token, "logprob": logprob, "bytes": list(token.encode())})
    return entries
