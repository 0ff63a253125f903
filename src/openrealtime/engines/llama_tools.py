"""The tool steps of :class:`~openrealtime.engines.llama_chat.LlamaChatModel`, as a mixin (through
:class:`_Model`): which tool a request calls (the one it forces, the one its words name by
:func:`~openrealtime.engines.tool_routing.lexical_scores`, or the model's choice constrained by a
grammar to the tools' names), and that tool's arguments, generated under a grammar compiled from its
bounded JSON Schema and then checked against the schema for what a grammar cannot express.

Also a ``chat``'s token accounting over its steps (:class:`Run`) and the cache of checked grammars
(:class:`GrammarCache`): clients send arbitrary tools.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from openrealtime.contracts import ChatChunk, ChatDone, ChatRequest, ToolCallDelta, ToolSpec
from openrealtime.engines.chat_prompts import ANSWER, EMPTY_OBJECT_SCHEMA, arguments_messages, router_messages
from openrealtime.engines.tool_routing import choice_grammar, lexical_scores
from openrealtime.engines.tool_schema import MAX_SCHEMA_DEPTH, bounded_schema, nesting_depth, schema_violation
from openrealtime.exceptions import EngineError

if TYPE_CHECKING:
    from openrealtime.engines.llama_chat import LlamaOptions

FINISH_STOP = "stop"
FINISH_LENGTH = "length"
FINISH_TOOL_CALLS = "tool_calls"
FINISH_CANCELLED = "cancelled"

_GRAMMAR_CACHE_ENTRIES = 64


@dataclass
class Run:
    """Token usage of one :meth:`~openrealtime.engines.llama_chat.LlamaChatModel.chat` (all its steps)
    and why its last step ended."""

    input_tokens: int = 0
    output_tokens: int = 0
    finish: str = FINISH_STOP

    def done(self, finish: str | None = None) -> ChatDone:
        return ChatDone(finish or self.finish, self.input_tokens, self.output_tokens)


class GrammarCache:
    """Checked GBNF grammars and their root rule, by source (a GBNF text or a JSON Schema), bounded:
    clients send arbitrary tools.

    Args:
        grammar_class: llama.cpp's ``LlamaGrammar`` (its ``from_string`` parses and checks a grammar).
        schema_to_gbnf: llama.cpp's JSON-Schema-to-GBNF converter.
    """

    def __init__(self, grammar_class: Any, schema_to_gbnf: Callable[[str], str]) -> None:
        self._grammar_class = grammar_class
        self._schema_to_gbnf = schema_to_gbnf
        self._grammars: dict[str, tuple[str, str]] = {}

    def get(self, source: str, *, from_schema: bool = False) -> tuple[str, str]:
        """The grammar of ``source`` and its root rule.

        Raises:
            EngineError: ``invalid_tool_schema`` when it cannot be built.
        """
        key = ("schema:" if from_schema else "gbnf:") + source
        grammar = self._grammars.get(key)
        if grammar is None:
            try:
                text = self._schema_to_gbnf(source) if from_schema else source
                self._grammar_class.from_string(text, verbose=False)  # parses it: errors surface here
            except (ValueError, RuntimeError, KeyError, TypeError) as exc:
                raise EngineError(f"cannot build a grammar: {exc}", code="invalid_tool_schema") from exc
            grammar = (text, "root")
            if len(self._grammars) >= _GRAMMAR_CACHE_ENTRIES:
                self._grammars.pop(next(iter(self._grammars)))
            self._grammars[key] = grammar
        return grammar


class _Model(Protocol):
    """What of the model the tool steps use."""

    options: LlamaOptions
    _grammars: GrammarCache

    def _choose_tool(self, request: ChatRequest, stop: threading.Event, run: Run) -> ToolSpec | None: ...

    def _route(
        self, request: ChatRequest, tools: list[ToolSpec], allow_answer: bool, stop: threading.Event, run: Run
    ) -> ToolSpec | None: ...

    def _fitted(
        self,
        messages: Sequence[Mapping[str, Any]],
        prompt_of: Callable[[list[Mapping[str, Any]]], list[dict[str, str]]],
        max_tokens: int,
    ) -> list[int]: ...

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
    ) -> Iterator[str]: ...


class ToolSteps:
    """Choosing a tool and generating its arguments, for :class:`~openrealtime.engines.llama_chat.LlamaChatModel`."""

    def choose_tool(self: _Model, request: ChatRequest) -> ToolSpec | None:
        """The tool that :meth:`chat` would call for ``request``, or ``None`` to answer in text."""
        return self._choose_tool(request, threading.Event(), Run())

    def _choose_tool(self: _Model, request: ChatRequest, stop: threading.Event, run: Run) -> ToolSpec | None:
        tools = list(request.tools)
        choice = request.tool_choice
        strategy = self.options.auto_tools
        if not tools or choice == "none" or (choice == "auto" and strategy == ANSWER):
            return None
        if choice == "auto" and request.messages and request.messages[-1].get("role") == "tool":
            # A tool result just came back: the turn is for answering with it, not for calling again
            # (the user's words that chose the tool have not changed).
            return None
        if choice not in ("auto", "required"):
            for tool in tools:
                if tool.name == choice:
                    return tool
            raise EngineError(f"tool_choice names an unknown tool {choice!r}", code="invalid_tool_choice")
        allow_answer = choice == "auto"
        if strategy != "router":
            scores = lexical_scores(request.messages, tools)
            best = max(scores)
            if best == 0 and allow_answer:
                return None
            if best > 0:
                tools = [tool for tool, score in zip(tools, scores, strict=True) if score == best]
            allow_answer = False  # the words named a tool: the model only breaks the tie
        if len(tools) == 1 and not allow_answer:
            return tools[0]
        return self._route(request, tools, allow_answer, stop, run)

    def _route(
        self: _Model,
        request: ChatRequest,
        tools: list[ToolSpec],
        allow_answer: bool,
        stop: threading.Event,
        run: Run,
    ) -> ToolSpec | None:
        """The model's choice among ``tools`` (and ``answer``), constrained to exactly one of the names."""
        names = [tool.name for tool in tools] + ([ANSWER] if allow_answer else [])
        grammar = self._grammars.get(choice_grammar(names))
        max_tokens = self.options.tool_argument_max_tokens
        prompt = self._fitted(
            request.messages, lambda kept: router_messages(kept, tools, allow_answer=allow_answer), max_tokens
        )
        picked = "".join(self._generate(prompt, grammar, max_tokens, 0.0, stop, run))
        return next((tool for tool in tools if tool.name == picked), None)

    def _call(
        self: _Model, request: ChatRequest, tool: ToolSpec, stop: threading.Event, run: Run
    ) -> Iterator[ChatChunk]:
        schema = tool.parameters or EMPTY_OBJECT_SCHEMA
        if nesting_depth(schema) > MAX_SCHEMA_DEPTH:
            raise EngineError(
                f"the parameters of {tool.name} nest more than {MAX_SCHEMA_DEPTH} levels deep",
                code="invalid_tool_schema",
            )
        bounded = bounded_schema(
            schema,
            max_string_chars=self.options.tool_string_max_chars,
            max_array_items=self.options.tool_array_max_items,
        )
        grammar = self._grammars.get(json.dumps(bounded), from_schema=True)
        prompt = self._fitted(
            request.messages, lambda kept: arguments_messages(kept, tool), self.options.tool_argument_max_tokens
        )
        yield ToolCallDelta(index=0, name=tool.name, arguments="")
        parts: list[str] = []
        for piece in self._generate(prompt, grammar, self.options.tool_argument_max_tokens, 0.0, stop, run):
            parts.append(piece)
            yield ToolCallDelta(index=0, name=None, arguments=piece)
        if run.finish == FINISH_CANCELLED:
            yield run.done()
            return
        try:
            arguments = json.loads("".join(parts))
        except ValueError as exc:
            raise EngineError(
                f"the arguments of {tool.name} did not complete within {self.options.tool_argument_max_tokens} tokens",
                code="tool_arguments_truncated",
            ) from exc
        # The grammar enforces structure and types; this catches what it cannot (number bounds).
        problem = schema_violation(schema, arguments)
        if problem is not None:
            raise EngineError(f"the arguments of {tool.name} are invalid: {problem}", code="tool_arguments_invalid")
        yield run.done(FINISH_TOOL_CALLS)
