"""A chat LLM behind any OpenAI-compatible ``/v1/chat/completions`` endpoint (vLLM, Ollama, llama.cpp's
server, OpenAI itself), streamed over Server-Sent Events with a synchronous httpx client.

This module owns :class:`OpenAICompatibleChatModel`: the request body (messages passed through, tools
as OpenAI ``tools``/``tool_choice``), the SSE parser, and the mapping of streamed chunks onto
:class:`TextDelta`, :class:`ToolCallDelta` and one final :class:`ChatDone`. HTTP and decoding errors
become :class:`EngineError` in :meth:`OpenAICompatibleChatModel.chat`.

A conversation longer than ``context_tokens`` is cut before it is sent, as the in-process engine does
(:func:`~openrealtime.engines.chat_prompts.fit_messages`), but from an estimate, since no tokenizer is at
hand: 3 characters a token and 8 tokens a message (the session's margin, see
``session/conversation.py``), so the endpoint never answers a long conversation with a context error.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from openrealtime.contracts import ChatChunk, ChatDone, ChatRequest, TextDelta, ToolCallDelta
from openrealtime.engines.chat_prompts import fit_messages, image_tokens, text_of
from openrealtime.exceptions import EngineError

DEFAULT_TIMEOUT_S = 60.0
DEFAULT_CONNECT_TIMEOUT_S = 10.0
DEFAULT_CONTEXT_TOKENS = 8192
#: ``count_tokens`` has no tokenizer for a remote model; English averages about 4 characters a token.
CHARS_PER_TOKEN_ESTIMATE = 4
#: Fitting the context errs on the safe side: fewer characters a token, and the template's own tokens.
FIT_CHARS_PER_TOKEN = 3
FIT_MESSAGE_TOKENS = 8
#: The room kept for the output when cutting: ``max_tokens``, at most this share of the context.
OUTPUT_RESERVE_SHARE = 4
_SSE_DATA = "data:"
_SSE_DONE = "[DONE]"
_ERROR_BODY_MAX_CHARS = 500
_HTTP_ERROR_STATUS = 400


@dataclass(frozen=True)
class OpenAIChatOptions:
    """Where the endpoint is and how to call it.

    Attributes:
        base_url: The API root that ends in ``/v1``, e.g. ``http://127.0.0.1:11434/v1`` for Ollama or
            ``https://api.openai.com/v1``; ``/chat/completions`` is appended.
        model: The model name the endpoint serves.
        api_key: Sent as ``Authorization: Bearer ...`` when set.
        timeout_s: Read timeout between two streamed bytes.
        connect_timeout_s: Timeout to open the connection.
        context_tokens: The model's context window (an endpoint does not report it).
        max_tokens_field: Name of the output cap in the body: ``max_tokens`` (vLLM, Ollama, llama.cpp)
            or ``max_completion_tokens`` (OpenAI's newer models).
        include_usage: Ask for token usage in the last chunk (``stream_options.include_usage``).
        extra_body: More fields merged into every request body (``top_p``, ``seed``, ...).
        vision: The model sees images: a conversation's ``input_image`` parts are sent to it as
            ``image_url`` content parts (an endpoint does not say whether its model can).
    """

    base_url: str
    model: str
    api_key: str | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S
    context_tokens: int = DEFAULT_CONTEXT_TOKENS
    max_tokens_field: str = "max_tokens"
    include_usage: bool = True
    extra_body: Mapping[str, Any] = field(default_factory=dict)
    vision: bool = False


class OpenAICompatibleChatModel:
    """A :class:`~openrealtime.contracts.ChatModel` over an OpenAI-compatible HTTP endpoint.

    One instance (one pooled httpx client) serves every session; concurrent requests run in
    parallel, as the endpoint batches them. Tool choice is the endpoint's: ``tool_choice`` is passed
    through, so the argument JSON is as valid as the endpoint makes it (vLLM and llama.cpp's server
    can constrain it; OpenAI's ``strict`` tools do).

    Args:
        options: Endpoint, model and limits.
        transport: An httpx transport to use instead of the network (tests, proxies).
    """

    def __init__(self, options: OpenAIChatOptions, *, transport: httpx.BaseTransport | None = None) -> None:
        self.options = options
        self.context_tokens: int = options.context_tokens
        self.sees_images = options.vision
        self._url = options.base_url.rstrip("/") + "/chat/completions"
        headers = {"Accept": "text/event-stream"}
        if options.api_key:
            headers["Authorization"] = f"Bearer {options.api_key}"
        self._client = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(options.timeout_s, connect=options.connect_timeout_s),
            transport=transport,
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def count_tokens(self, text: str) -> int:
        """An estimate (no tokenizer is available for a remote model): characters / 4, rounded up."""
        return math.ceil(len(text) / CHARS_PER_TOKEN_ESTIMATE)

    def request_body(self, request: ChatRequest) -> dict[str, Any]:
        """The JSON body of ``POST /chat/completions`` for ``request``."""
        context = self.options.context_tokens
        reserve = min(request.max_tokens or context, context // OUTPUT_RESERVE_SHARE)
        messages, _ = fit_messages(request.messages, _estimate, context - reserve)
        body: dict[str, Any] = {
            "model": self.options.model,
            "messages": [chat_message(message) for message in messages],
            "stream": True,
            "temperature": request.temperature,
        }
        if self.options.include_usage:
            body["stream_options"] = {"include_usage": True}
        if request.max_tokens is not None:
            body[self.options.max_tokens_field] = request.max_tokens
        if request.tools:
            body["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": tool.name,
                        "description": tool.description,
                        "parameters": dict(tool.parameters) or {"type": "object", "properties": {}},
                    },
                }
                for tool in request.tools
            ]
            choice = request.tool_choice
            body["tool_choice"] = (
                choice if choice in ("auto", "none", "required") else {"type": "function", "function": {"name": choice}}
            )
        body.update(self.options.extra_body)
        return body

    def chat(self, request: ChatRequest, stop: threading.Event) -> Iterator[ChatChunk]:
        """Stream the endpoint's completion.

        Args:
            request: Messages (sent as they are), tools and tool choice.
            stop: Checked between streamed events; once set the connection is closed and the stream
                ends with a ``cancelled`` ChatDone.

        Yields:
            :class:`TextDelta` and :class:`ToolCallDelta` chunks, then exactly one :class:`ChatDone`.

        Raises:
            EngineError: On a connection failure, an HTTP error status, a malformed event, or a stream
                that ends before the completion does.
        """
        state = _StreamState()
        try:
            with self._client.stream("POST", self._url, json=self.request_body(request)) as response:
                if response.status_code >= _HTTP_ERROR_STATUS:
                    response.read()
                    raise EngineError(_error_message(response), code=f"llm_http_{response.status_code}")
                for data in _sse_data(response.iter_lines()):
                    if stop.is_set():
                        yield state.done("cancelled")
                        return
                    if data == _SSE_DONE:
                        state.finished = True
                        break
                    yield from state.feed(json.loads(data))
        except httpx.HTTPError as exc:
            raise EngineError(f"chat endpoint {self._url} failed: {exc}", code="llm_unavailable") from exc
        except (ValueError, TypeError, KeyError, AttributeError) as exc:  # malformed JSON or chunk shape
            raise EngineError(f"chat endpoint sent a malformed event: {exc}", code="llm_bad_response") from exc
        if stop.is_set():
            yield state.done("cancelled")
        elif state.finished or state.finish_reason is not None:
            yield state.done(state.finish_reason or "stop")
        else:
            raise EngineError("the chat stream ended before the completion did", code="llm_bad_response")


def _estimate(messages: list[Mapping[str, Any]]) -> range:
    """A conservative token count of ``messages``, as a ``range`` of that length (what ``fit_messages``
    measures)."""
    tokens = 0
    for message in messages:
        text = text_of(message.get("content")) + json.dumps(message.get("tool_calls") or "")
        tokens += -(-len(text) // FIT_CHARS_PER_TOKEN) + FIT_MESSAGE_TOKENS + image_tokens(message.get("content"))
    return range(tokens)


def chat_message(message: Mapping[str, Any]) -> dict[str, Any]:
    """A message as Chat Completions takes it: Realtime-style content parts become ``text`` parts.

    ``input_text``/``output_text`` parts are renamed ``text``, and audio parts are replaced by their
    ``transcript``; every other field passes through unchanged.
    """
    out = dict(message)
    content = out.get("content")
    if isinstance(content, list):
        parts = []
        for part in content:
            kind = part.get("type") if isinstance(part, Mapping) else None
            if kind in ("input_text", "output_text"):
                parts.append({"type": "text", "text": part.get("text", "")})
            elif kind in ("input_audio", "output_audio", "audio") and part.get("transcript"):
                parts.append({"type": "text", "text": part["transcript"]})
            else:
                parts.append(part)
        out["content"] = parts
    return out


@dataclass
class _StreamState:
    finish_reason: str | None = None
    finished: bool = False
    input_tokens: int = 0
    output_tokens: int = 0
    named: set[int] = field(default_factory=set)

    def feed(self, chunk: Mapping[str, Any]) -> Iterator[ChatChunk]:
        usage = chunk.get("usage")
        if usage:
            self.input_tokens = int(usage.get("prompt_tokens") or 0)
            self.output_tokens = int(usage.get("completion_tokens") or 0)
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            content = delta.get("content")
            if content:
                yield TextDelta(str(content))
            for call in delta.get("tool_calls") or ():
                index = int(call.get("index", 0))
                function = call.get("function") or {}
                name = function.get("name")
                arguments = function.get("arguments")
                # Our contract: only the first delta of a call carries its name, even if the
                # endpoint repeats it.
                first = index not in self.named and bool(name)
                if first:
                    self.named.add(index)
                if first or arguments:
                    yield ToolCallDelta(index=index, name=str(name) if first else None, arguments=str(arguments or ""))
            reason = choice.get("finish_reason")
            if reason:
                self.finish_reason = "tool_calls" if reason == "function_call" else str(reason)

    def done(self, finish_reason: str) -> ChatDone:
        return ChatDone(finish_reason, self.input_tokens, self.output_tokens)


def _sse_data(lines: Iterator[str]) -> Iterator[str]:
    """The ``data`` of each Server-Sent Event (multi-line data joined with newlines, per the spec)."""
    buffered: list[str] = []
    for line in lines:
        if not line:
            if buffered:
                yield "\n".join(buffered)
                buffered = []
        elif line.startswith(_SSE_DATA):
            value = line[len(_SSE_DATA) :]
            buffered.append(value[1:] if value.startswith(" ") else value)
        # comments (":"), "event:", "id:" and "retry:" lines carry nothing we use
    if buffered:
        yield "\n".join(buffered)


def _error_message(response: httpx.Response) -> str:
    text = response.text[:_ERROR_BODY_MAX_CHARS]
    try:
        error = response.json().get("error")
        if isinstance(error, Mapping) and error.get("message"):
            text = str(error["message"])
        elif isinstance(error, str):
            text = error
    except (ValueError, AttributeError):  # not JSON, or JSON that is not an object
        pass
    return f"chat endpoint answered HTTP {response.status_code}: {text}"
