"""A chat LLM in process with llama.cpp (llama-cpp-python), SmolLM2-135M-Instruct by default.

This module owns :class:`LlamaChatModel`: rendering OpenAI-format messages with the GGUF's own chat
template, a token loop over a :class:`~openrealtime.engines.llama_batch.BatchedDecoder` (concurrent
completions decoded together, each with its own prompt cache; stop checked between tokens, exact
token counts, UTF-8 pieces decoded incrementally), and tool calls built with grammar-constrained decoding so that their
arguments are always valid JSON against the tool's schema:

* a forced tool (``tool_choice`` = a tool name, or ``"required"`` with one tool) goes straight to
  argument generation, constrained by a GBNF grammar compiled from the tool's JSON Schema, bounded
  first by :func:`~openrealtime.engines.tool_schema.bounded_schema` so that the decode always ends; the
  result is then checked against the schema for what a grammar cannot express (number bounds), and
  arguments that are cut off or invalid raise :class:`EngineError` instead of reaching the client;
* otherwise a *routing* step picks the tool (or, for ``"auto"``, the choice ``"answer"``, which streams
  a normal text reply). ``LlamaOptions.auto_tools`` selects how:

  - ``"lexical"`` (default): :func:`~openrealtime.engines.tool_routing.lexical_scores` counts the
    content words of the last user message that appear in each tool's name, description and
    parameter schema. For ``"auto"`` no overlap means
    answer; the best tool wins; ties (and ``"required"`` with no overlap) go to the model router among
    the tied tools. Deterministic and cheap, it misses paraphrases ("make it dark") and then answers
    in words, which is the safe failure.
  - ``"router"``: the model alone chooses, with a one-word generation constrained by a grammar to the
    tool names (plus ``"answer"``). Sound for a capable GGUF; SmolLM2-135M picks nearly at random
    (3-4 right of 10 on a two-tool test set, measured), as the reference measurements predicted.
  - ``"answer"``: ``"auto"`` never calls a tool.

  The prompts (:mod:`~openrealtime.engines.chat_prompts`) and the scores
  (:mod:`~openrealtime.engines.tool_routing`) are pure functions, testable without a model; the
  steps themselves are a mixin of the model's (:class:`~openrealtime.engines.llama_tools.ToolSteps`).

A conversation longer than the context never fails for length: each step's prompt is rendered with
the model's own tokenizer and template, and the oldest non-system messages are dropped in one cut
(:func:`~openrealtime.engines.chat_prompts.fit_messages`) until the prompt and the room kept for the
output fit. Only a last user message that alone (with the instructions) is larger than that fails,
with ``context_length_exceeded`` saying so.

llama.cpp errors become :class:`EngineError` in :meth:`LlamaChatModel._generate` (generation) and in
the constructor (loading).
"""

from __future__ import annotations

import codecs
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

from openrealtime.contracts import ChatChunk, ChatRequest, TextDelta
from openrealtime.engines.chat_prompts import fit_messages, normalize_messages
from openrealtime.engines.llama_batch import DEFAULT_SLOTS, BatchedDecoder
from openrealtime.engines.llama_slots import DecoderStats
from openrealtime.engines.llama_tools import (
    FINISH_CANCELLED,
    FINISH_LENGTH,
    FINISH_STOP,
    GrammarCache,
    Run,
    ToolSteps,
)
from openrealtime.engines.model_files import smollm2_q8_gguf
from openrealtime.engines.tool_schema import DEFAULT_MAX_ARRAY_ITEMS, DEFAULT_MAX_STRING_CHARS
from openrealtime.exceptions import EngineError

DEFAULT_CONTEXT_TOKENS = 2048
DEFAULT_THREADS = 2
DEFAULT_BATCH_TOKENS = 512
DEFAULT_MAX_TOKENS = 512
DEFAULT_TOOL_ARGUMENT_MAX_TOKENS = 512
TOKENIZER_CONTEXT_TOKENS = 256  # the high-level Llama's own context: only its tokenizer is used
#: A prompt is cut to leave room for this share of the context at most, whatever max_tokens asks.
OUTPUT_RESERVE_SHARE = 4


@dataclass(frozen=True)
class LlamaOptions:
    """Options of :class:`LlamaChatModel`.

    Attributes:
        model_path: A GGUF file; ``None`` is the registry-shipped SmolLM2-135M-Instruct Q4_1, checked
            against its pinned sha256, in its Q8_0 copy (:func:`~openrealtime.engines.model_files.smollm2_q8_gguf`).
        n_ctx: Context window in tokens (reported as ``context_tokens``).
        n_threads: CPU threads for generation and prompt processing.
        n_batch: Prompt tokens evaluated per batch.
        default_max_tokens: Output cap when a request sets none.
        tool_argument_max_tokens: Cap of one tool call's JSON arguments; arguments cut off by it are
            an error, never invalid JSON.
        tool_string_max_chars: Longest string the grammar lets the model write where the schema sets no
            ``maxLength`` (small models otherwise loop inside a string until the cap).
        tool_array_max_items: Longest array where the schema sets no ``maxItems``.
        auto_tools: How a tool is chosen when the request does not force one: ``"lexical"`` (word
            overlap, the model breaking ties), ``"router"`` (the model alone, grammar-constrained) or
            ``"answer"`` (``tool_choice="auto"`` answers in text; ``"required"`` routes lexically).
        chat_template: A Jinja chat template that replaces the GGUF's own.
        repeat_penalty: llama.cpp's repetition penalty (1.0 is off); small models loop without one.
        seed: Sampling seed for temperatures above 0; ``None`` draws a fresh one per process.
        extra_buffer_types: Let llama.cpp repack weights into its extra CPU buffer types (AMX,
            interleaved Q4). Off by default: with llama-cpp-python 0.3.36 built natively on a Xeon with
            AMX, under a Firecracker VM, every prompt batch of two or more tokens segfaults in the AMX
            kernels (single-token decode works and is twice as fast). Turn on only where it was tested.
        n_gpu_layers: Layers offloaded to the GPU (``-1``: all) when llama-cpp-python was built with
            CUDA (``CMAKE_ARGS="-DGGML_CUDA=on"``); 0 keeps everything on the CPU.
        parallel: Completions decoded together (sessions answering at once), each in its own
            sequence of ``n_ctx`` tokens that keeps its prompt cache between turns; more wait.
    """

    model_path: Path | None = None
    n_ctx: int = DEFAULT_CONTEXT_TOKENS
    n_threads: int = DEFAULT_THREADS
    n_batch: int = DEFAULT_BATCH_TOKENS
    default_max_tokens: int = DEFAULT_MAX_TOKENS
    tool_argument_max_tokens: int = DEFAULT_TOOL_ARGUMENT_MAX_TOKENS
    tool_string_max_chars: int = DEFAULT_MAX_STRING_CHARS
    tool_array_max_items: int = DEFAULT_MAX_ARRAY_ITEMS
    auto_tools: Literal["lexical", "router", "answer"] = "lexical"
    chat_template: str | None = None
    repeat_penalty: float = 1.1
    seed: int | None = None
    extra_buffer_types: bool = False
    n_gpu_layers: int = 0
    parallel: int = DEFAULT_SLOTS


# --- the engine ------------------------------------------------------------------------------------

_CONSTRUCT_LOCK = threading.Lock()
USER_WORDS_END = "\u2063END-OF-USER-WORDS\u2063"  # placed after a user's words to find where the template closes them


def load_llama(llama_cpp: Any, path: Path, options: LlamaOptions, n_ctx: int = TOKENIZER_CONTEXT_TOKENS) -> Any:
    """Construct ``llama_cpp.Llama`` with a context of ``n_ctx`` tokens (only its tokenizer is used
    here; :mod:`~openrealtime.engines.end_token` evaluates in it), llama.cpp's extra buffer types off
    unless asked for.

    ``Llama.__init__`` exposes no ``use_extra_bufts`` argument but takes its model parameters from
    ``llama_cpp.llama_cpp.llama_model_default_params()``, so that factory is wrapped for the duration
    of this one construction, under a lock.
    """
    bindings = llama_cpp.llama_cpp
    with _CONSTRUCT_LOCK:
        default_params = bindings.llama_model_default_params

        def model_params() -> Any:
            params = default_params()
            params.use_extra_bufts = options.extra_buffer_types
            return params

        bindings.llama_model_default_params = model_params
        try:
            return llama_cpp.Llama(
                model_path=str(path),
                n_ctx=n_ctx,
                n_threads=options.n_threads,
                n_threads_batch=options.n_threads,
                n_gpu_layers=options.n_gpu_layers,
                n_batch=min(options.n_batch, n_ctx),
                seed=options.seed if options.seed is not None else llama_cpp.LLAMA_DEFAULT_SEED,
                verbose=False,
            )
        finally:
            bindings.llama_model_default_params = default_params


def closing_tokens(formatter: Any, llm: Any) -> int:
    """How many tokens a chat template puts after a last user message's words (its end of message
    and the assistant's header: ``<|im_end|>\\n<|im_start|>assistant\\n`` in ChatML)."""
    rendered = formatter(messages=[{"role": "user", "content": "Hello." + USER_WORDS_END}]).prompt
    after = rendered.partition(USER_WORDS_END)[2]
    return len(llm.tokenize(after.encode("utf-8"), add_bos=False, special=True))


class LlamaChatModel(ToolSteps):
    """A :class:`~openrealtime.contracts.ChatModel` running a GGUF with llama.cpp on the CPU.

    One instance serves every session: completions run concurrently, up to ``options.parallel`` at
    once, each in its own sequence of one batched context, and a session's next turn reuses the
    cached prefix of its last one (see :mod:`~openrealtime.engines.llama_batch`).

    Args:
        options: Model path, context size, threads and tool strategy.

    Raises:
        EngineError: If the model file is missing, fails its checksum or cannot be loaded.
    """

    def __init__(self, options: LlamaOptions | None = None) -> None:
        self.options = options or LlamaOptions()
        try:
            import llama_cpp  # heavy: imported in this module only
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter
            from llama_cpp.llama_grammar import LlamaGrammar, json_schema_to_gbnf
        except ImportError as exc:
            raise EngineError(
                "llama-cpp-python is not installed; run the set-up (see README)", code="model_not_installed"
            ) from exc
        path = self.options.model_path or smollm2_q8_gguf()
        try:
            self._llm = load_llama(llama_cpp, path, self.options)
            template = self.options.chat_template or self._llm.metadata.get("tokenizer.chat_template")
            if not template:
                raise EngineError(
                    f"{path} has no chat template; pass LlamaOptions.chat_template", code="model_load_failed"
                )
            eos = self._llm.detokenize([self._llm.token_eos()], special=True).decode("utf-8", "replace")
            bos_id = self._llm.token_bos()
            bos = self._llm.detokenize([bos_id], special=True).decode("utf-8", "replace") if bos_id >= 0 else ""
            self._formatter = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)
        except EngineError:
            raise
        except (ValueError, RuntimeError, OSError) as exc:
            raise EngineError(f"cannot load the GGUF model {path}: {exc}", code="model_load_failed") from exc
        self._grammars = GrammarCache(LlamaGrammar, json_schema_to_gbnf)
        self._closing_tokens = closing_tokens(self._formatter, self._llm)
        self.model_path = path
        self.context_tokens: int = self.options.n_ctx
        self.sees_images = False  # text models: a session refuses image inputs
        seed = self.options.seed if self.options.seed is not None else llama_cpp.LLAMA_DEFAULT_SEED
        self._decoder = BatchedDecoder(
            llama_cpp.llama_cpp,
            self._llm.model,
            context_tokens=self.options.n_ctx,
            slots=max(1, self.options.parallel),
            n_threads=self.options.n_threads,
            n_batch=self.options.n_batch,
            seed=seed,
        )

    def yield_to(self, others_urgent: Callable[[], bool]) -> None:
        """Pause answers past their first clause while ``others_urgent()`` (another engine doing
        someone's final transcript or first clause), a bounded time each (``llama_batch.HOLD_S``)."""
        self._decoder.others_urgent = others_urgent

    def writing_first_words(self) -> bool:
        """Whether an answer waits to start or is writing its first clause (:class:`FirstWordsWriter`)."""
        return self._decoder.writing_first_words()

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` in the model's own tokenizer (no BOS, special tokens as plain text)."""
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def chat(self, request: ChatRequest, stop: threading.Event) -> Iterator[ChatChunk]:
        """Stream a completion: text deltas, or one tool call when the tool step decides so.

        Args:
            request: Messages, tools and tool choice in OpenAI chat format.
            stop: Checked between tokens; once set, the stream ends with a ``cancelled`` ChatDone.

        Yields:
            :class:`TextDelta` or :class:`ToolCallDelta` chunks, then exactly one :class:`ChatDone`.

        Raises:
            EngineError: If the last user message alone does not fit the context, a tool name is
                unknown, the tool arguments hit ``tool_argument_max_tokens``, or llama.cpp fails.
        """
        run = Run()
        tool = self._choose_tool(request, stop, run)
        if stop.is_set():
            yield run.done(FINISH_CANCELLED)
        elif tool is None:
            yield from self._answer(request, stop, run)
        else:
            yield from self._call(request, tool, stop, run)

    def warm(self, request: ChatRequest) -> None:
        """Evaluate the answer to ``request`` up to its last user message's words (heard so far, the
        user still speaking) into its conversation's cache (:meth:`BatchedDecoder.warm`); the
        template's closing tokens are left for the answer. Best effort: errors are the answer's."""
        if request.cache_key is None or not request.messages or request.messages[-1].get("role") != "user":
            return
        max_tokens = request.max_tokens or self.options.default_max_tokens
        try:
            prompt = self._fitted(request.messages, normalize_messages, max_tokens)
        except EngineError:
            return
        self._decoder.warm(prompt[: len(prompt) - self._closing_tokens], key=request.cache_key)

    @property
    def stats(self) -> DecoderStats:
        """The batched decoder's counters (prompt tokens evaluated and cached, steps, concurrency)."""
        return self._decoder.stats

    def close(self) -> None:
        """Stop the decoding thread (completions still running end with an error)."""
        self._decoder.close()

    def _answer(self, request: ChatRequest, stop: threading.Event, run: Run) -> Iterator[ChatChunk]:
        max_tokens = request.max_tokens or self.options.default_max_tokens
        prompt = self._fitted(request.messages, normalize_messages, max_tokens)
        pieces = self._generate(
            prompt, None, max_tokens, request.temperature, stop, run, request.cache_key, request.hold_while
        )
        for piece in pieces:
            yield TextDelta(piece)
        yield run.done()

    # --- llama.cpp ---------------------------------------------------------------------------------

    def _fitted(
        self,
        messages: Sequence[Mapping[str, Any]],
        prompt_of: Callable[[list[Mapping[str, Any]]], list[dict[str, str]]],
        max_tokens: int,
    ) -> list[int]:
        """The tokens of ``prompt_of(messages)``, the oldest messages cut so that the output has room.

        The room kept is ``max_tokens``, at most a quarter of the context (a larger ``max_tokens``
        is still honoured as far as the context allows, in :meth:`_generate`).

        Raises:
            EngineError: ``context_length_exceeded`` when the last user message alone does not fit.
        """
        reserve = min(max_tokens, self.context_tokens // OUTPUT_RESERVE_SHARE)
        budget = self.context_tokens - reserve
        _, prompt = fit_messages(messages, lambda kept: self._render(prompt_of(kept)), budget)
        if len(prompt) > budget:
            raise EngineError(
                f"The last message is too long for the model's context: with the instructions it takes "
                f"{len(prompt)} tokens, and the context holds {self.context_tokens}, {reserve} of them kept "
                f"for the answer. Send a shorter message.",
                code="context_length_exceeded",
            )
        return prompt

    def _render(self, messages: list[dict[str, str]]) -> list[int]:
        try:
            result = self._formatter(messages=cast(Any, messages))
        except Exception as exc:  # jinja2 raises its own TemplateError tree and ValueError
            raise EngineError(f"the chat template failed: {exc}", code="chat_template_failed") from exc
        tokens: list[int] = self._llm.tokenize(
            result.prompt.encode("utf-8"), add_bos=not result.added_special, special=True
        )
        return tokens

    def _generate(
        self,
        prompt: list[int],
        grammar: tuple[str, str] | None,
        max_tokens: int,
        temperature: float,
        stop: threading.Event,
        run: Run,
        key: str | None = None,
        hold_while: Callable[[], bool] | None = None,
    ) -> Iterator[str]:
        """Yield decoded text pieces, counting into ``run``; the one place llama.cpp errors are translated.

        ``key`` is the conversation's cache key: only answers pass it, so that the routing and
        argument prompts (built afresh each time) do not evict the conversation's cached prompt;
        ``hold_while`` is the request's (:class:`~openrealtime.contracts.ChatRequest`).
        """
        room = self.context_tokens - len(prompt)
        if room <= 0:
            raise EngineError(
                f"the prompt has {len(prompt)} tokens, more than the context of {self.context_tokens}",
                code="context_length_exceeded",
            )
        run.input_tokens += len(prompt)
        max_tokens = min(max_tokens, room)
        run.finish = FINISH_LENGTH
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        produced = 0
        tokens = self._decoder.generate(
            prompt,
            max_tokens=max_tokens,
            stop=stop,
            temperature=max(0.0, temperature),
            repeat_penalty=self.options.repeat_penalty,
            grammar=grammar,
            key=key,
            hold_while=hold_while,
        )
        try:
            while produced < max_tokens:
                if stop.is_set():
                    run.finish = FINISH_CANCELLED
                    break
                token = next(tokens, None)
                if token is None:  # an end-of-generation token, or the stop seen by the decoder
                    run.finish = FINISH_CANCELLED if stop.is_set() else FINISH_STOP
                    break
                produced += 1
                run.output_tokens += 1
                piece = decoder.decode(self._llm.detokenize([token]))
                if piece:
                    yield piece
            tail = decoder.decode(b"", final=True)
            if tail:
                yield tail
        except (RuntimeError, ValueError, OSError) as exc:
            raise EngineError(f"llama.cpp generation failed: {exc}", code="generation_failed") from exc
        finally:
            tokens.close()
