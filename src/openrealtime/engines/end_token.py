"""A chat LLM's probability that the user's turn ends here: P(end-of-turn token | the words so far).

LiveKit's turn detector is a fine-tuned Qwen2.5-0.5B asked exactly this: rendered with its chat
template, a user message is followed by the template's end-of-message token (``<|im_end|>`` in
ChatML), and the probability the model gives that token right after the user's words is its belief
that the words are a whole turn ("please remind me to call" against "... tomorrow morning").

This module owns :class:`EndTokenModel`, which asks that of a GGUF chat model (SmolLM2-135M-Instruct
by default, our default LLM) through llama-cpp-python, one evaluation of the prompt with its
longest prefix kept from the last question (the system prompt and history are evaluated once).
:class:`TurnWordsScorer` is ``semantic_vad``'s use of it (:mod:`openrealtime.session.eou_text`): the
words lower-cased without punctuation under a fixed system prompt, as measured offline by
:mod:`openrealtime.bench.turn_end_token`. llama.cpp's errors become
:class:`~openrealtime.exceptions.EngineError` here.
"""

from __future__ import annotations

import contextlib
import math
import re
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np

from openrealtime.engines.llama_chat import USER_WORDS_END, LlamaOptions, load_llama
from openrealtime.engines.llama_slots import common_prefix
from openrealtime.engines.model_files import smollm2_q8_gguf
from openrealtime.exceptions import EngineError

DEFAULT_CONTEXT_TOKENS = 1024
DEFAULT_THREADS = 1
MAX_WORDS = 48  # the text signal hears a turn's last words only
_PUNCTUATION = re.compile(r"[^\w\s']")


def plain_words(words: str) -> str:
    """``words`` lower-cased, without punctuation but apostrophes: Whisper's final "." or "?" makes
    a fragment look finished to the LLM ("Please remind me to call." 0.37, "please remind me to
    call" 1e-7), and LiveKit's detector is fed text spelled so too."""
    return " ".join(_PUNCTUATION.sub(" ", words.lower()).split())


class EndTokenModel:
    """P(the template's end-of-message token) right after a user's words, from a chat GGUF.

    Args:
        model_path: A GGUF with a chat template; ``None`` is the registry-shipped SmolLM2-135M-Instruct.
        n_threads: CPU threads of each evaluation.
        context_tokens: The most tokens of one question (history, system prompt and the words).

    Raises:
        EngineError: If llama-cpp-python is missing or the model cannot be loaded.
    """

    def __init__(
        self,
        model_path: Path | None = None,
        *,
        n_threads: int = DEFAULT_THREADS,
        context_tokens: int = DEFAULT_CONTEXT_TOKENS,
    ) -> None:
        try:
            import llama_cpp  # heavy: imported in this module only
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter
        except ImportError as exc:
            raise EngineError("llama-cpp-python is not installed", code="model_not_installed") from exc
        path = model_path or smollm2_q8_gguf()
        try:
            # As the chat model's own: llama.cpp's extra CPU buffer types off (they crash prompt batches
            # on some AMX builds, llama_chat.LlamaOptions.extra_buffer_types).
            self._llm: Any = load_llama(llama_cpp, path, LlamaOptions(n_threads=n_threads), n_ctx=context_tokens)
            template = self._llm.metadata.get("tokenizer.chat_template")
            if not template:
                raise EngineError(f"{path} has no chat template", code="model_load_failed")
            eos = self._llm.detokenize([self._llm.token_eos()], special=True).decode("utf-8", "replace")
            self._formatter = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token="")
        except EngineError:
            raise
        except (ValueError, RuntimeError, OSError) as exc:
            raise EngineError(f"cannot load the GGUF model {path}: {exc}", code="model_load_failed") from exc
        self._lock = threading.Lock()  # one context: one question at a time
        self.evaluated_tokens = 0  # tokens evaluated over all questions (a kept prefix costs none)

    def prompt(self, words: str, history: Sequence[Mapping[str, str]] = ()) -> tuple[list[int], int]:
        """The tokens up to and including ``words`` as the last user message after ``history``,
        and the token the template puts right after them (its end of message)."""
        messages = [*history, {"role": "user", "content": words + USER_WORDS_END}]
        rendered = self._formatter(messages=cast(Any, messages)).prompt
        before, _, after = rendered.partition(USER_WORDS_END)
        tokens: list[int] = self._llm.tokenize(before.encode("utf-8"), add_bos=False, special=True)
        closing: list[int] = self._llm.tokenize(after.encode("utf-8"), add_bos=False, special=True)
        if not tokens or not closing:
            raise EngineError("the chat template does not close a user message", code="chat_template_failed")
        return tokens, closing[0]

    def forget(self) -> None:
        """Drop the cached prefix: the next question is evaluated whole."""
        with self._lock:
            self._llm.reset()

    def probability(self, words: str, history: Sequence[Mapping[str, str]] = ()) -> float:
        """P(end of message | ``history``, the user's ``words``), from one evaluation of what is not
        already cached (the prefix shared with the last question is kept).

        Raises:
            EngineError: If the prompt does not fit the context or llama.cpp fails.
        """
        tokens, end = self.prompt(words, history)
        with self._lock:
            self._evaluate(tokens, last=True)  # the last token is always evaluated: its logits are asked
            llm = self._llm
            logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),)).astype(np.float64)
        return end_probability(logits, end)

    def warm(self, words: str, history: Sequence[Mapping[str, str]] = ()) -> None:
        """Evaluate the prompt up to ``words`` into the cache (what is not there already), so that a
        question about more words later evaluates only those.

        Raises:
            EngineError: As :meth:`probability`.
        """
        tokens, _ = self.prompt(words, history)
        with self._lock:
            self._evaluate(tokens, last=False)

    def _evaluate(self, tokens: list[int], *, last: bool) -> None:
        """Evaluate what of ``tokens`` the cache does not hold (and the last one anyway if ``last``);
        under the lock."""
        llm = self._llm
        if len(tokens) >= llm.n_ctx():
            raise EngineError(f"{len(tokens)} tokens do not fit the context", code="context_length_exceeded")
        kept = common_prefix(list(llm.input_ids[: llm.n_tokens]), tokens)
        if last:
            kept = min(kept, len(tokens) - 1)
        if kept == len(tokens):
            return
        llm.n_tokens = kept
        try:
            llm.eval(tokens[kept:])
        except (RuntimeError, ValueError, OSError) as exc:
            llm.reset()
            raise EngineError(f"llama.cpp evaluation failed: {exc}", code="generation_failed") from exc
        self.evaluated_tokens += len(tokens) - kept


def end_probability(logits: np.ndarray[Any, Any], token: int) -> float:
    """The softmax probability of ``token`` among ``logits``."""
    top = float(logits.max())
    log_total = top + math.log(float(np.exp(logits - top).sum()))
    return math.exp(float(logits[token]) - log_total)


class TurnWordsScorer:
    """``semantic_vad``'s text signal: P(end of message) after the pause's words, spelled plain, under
    one fixed system prompt (the levels move with the context: an exchange before raised the clip
    ends' median 40-fold offline, so the thresholds hold for this prompt alone, and its evaluation
    is shared by every session's questions).

    Args:
        model: The LLM, its own context (not the answers').
        system: The system prompt the thresholds were measured under.
    """

    def __init__(self, model: EndTokenModel, system: str) -> None:
        self._model = model
        self._history = ({"role": "system", "content": system},)

    def end_probability(self, words: str) -> float:
        """P(end of message) after ``words``, of which the last ``MAX_WORDS`` are heard (a long turn's
        ending is what tells, and it keeps each question's cost bounded)."""
        return self._model.probability(self._heard(words), self._history)

    def warm(self, words: str) -> None:
        """Evaluate ``words`` (a turn's so far) ahead of the question about the pause's words."""
        with contextlib.suppress(EngineError):  # a head start only: the question will say what is wrong
            self._model.warm(self._heard(words), self._history)

    @staticmethod
    def _heard(words: str) -> str:
        return " ".join(plain_words(words).split()[-MAX_WORDS:])
