"""The one codec: text frames in, typed client events out; server events in, JSON text out.

The server parses client events strictly, as OpenAI does: a frame that is not JSON is
``invalid_json``, and so is JSON that Python's parser refuses to build (arrays or objects nested
deeper than its recursion limit, an integer of more than 4,300 digits, ``NaN``); a value nested more
than ``MAX_JSON_DEPTH`` levels is ``invalid_value`` (a tool schema that deep would break the pydantic
serializer at about 250 levels, and the recursive schema walkers and grammar builder behind it); an
unknown ``type`` is ``invalid_value`` listing the supported types; an unknown
field is ``unknown_parameter`` with its JSON path in ``param``; a missing one
``missing_required_parameter``. Every failure is raised as a
:class:`~openrealtime.exceptions.ProtocolError` carrying the client's ``event_id`` when it had one.

A client parses server events leniently (:func:`parse_server_event`): OpenAI adds fields and event
types, and a client must keep working when it does. Unknown fields are ignored, a missing field or a
``null`` where a value is due takes the empty value of its type, and an event type with no model here
(or one that does not fit its model even so) becomes an :class:`UnknownServerEvent` with its fields
kept. The lenient models are subclasses of the server's, so ``isinstance`` and ``match`` work on both.
"""

from __future__ import annotations

import base64
import binascii
import enum
import functools
import json
import re
import sys
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from openrealtime.audio.codec import AudioOut
from openrealtime.exceptions import ProtocolError
from openrealtime.protocol import client_events as ce
from openrealtime.protocol import extension_events as xe
from openrealtime.protocol import server_events as se
from openrealtime.protocol.ids import random_base62
from openrealtime.protocol.server_events import ServerEvent


class SessionKind(enum.StrEnum):
    REALTIME = "realtime"
    TRANSCRIPTION = "transcription"
    TRANSLATION = "translation"


_REALTIME_EVENTS: dict[str, type[ce.ClientEvent]] = {
    "session.update": ce.SessionUpdate,
    "input_audio_buffer.append": ce.InputAudioBufferAppend,
    "input_audio_buffer.commit": ce.InputAudioBufferCommit,
    "input_audio_buffer.clear": ce.InputAudioBufferClear,
    "conversation.item.create": ce.ConversationItemCreate,
    "conversation.item.truncate": ce.ConversationItemTruncate,
    "conversation.item.delete": ce.ConversationItemDelete,
    "conversation.item.retrieve": ce.ConversationItemRetrieve,
    "response.create": ce.ResponseCreate,
    "response.cancel": ce.ResponseCancel,
}
# Transcription sessions have no responses (reference section 7).
_TRANSCRIPTION_EVENTS = {k: v for k, v in _REALTIME_EVENTS.items() if not k.startswith("response.")}
_TRANSLATION_EVENTS: dict[str, type[ce.ClientEvent]] = {
    "session.update": ce.TranslationSessionUpdate,
    "session.input_audio_buffer.append": ce.TranslationAppend,
    "session.close": ce.SessionClose,
}
# A WebRTC call's input audio arrives on its media track and the server plays its output (reference
# 1.3): an append has no place there (as the peers refuse it), and ``output_audio_buffer.clear`` has
# one only there (OpenAI refuses it on WebSockets, as the WebSocket tables above do).
_CALL_EVENTS: dict[SessionKind, dict[str, type[ce.ClientEvent]]] = {
    SessionKind.REALTIME: {
        **{k: v for k, v in _REALTIME_EVENTS.items() if k != "input_audio_buffer.append"},
        "output_audio_buffer.clear": ce.OutputAudioBufferClear,
    },
    SessionKind.TRANSCRIPTION: {k: v for k, v in _TRANSCRIPTION_EVENTS.items() if k != "input_audio_buffer.append"},
    SessionKind.TRANSLATION: {k: v for k, v in _TRANSLATION_EVENTS.items() if k != "session.input_audio_buffer.append"},
}
_EVENTS_BY_KIND = {
    SessionKind.REALTIME: _REALTIME_EVENTS,
    SessionKind.TRANSCRIPTION: _TRANSCRIPTION_EVENTS,
    SessionKind.TRANSLATION: _TRANSLATION_EVENTS,
}

# Fields whose value is a union discriminated on ``type``: pydantic puts the tag into error paths,
# right after the field name (or list index), and OpenAI's ``param`` has no such element.
_ITEM_TAGS = frozenset({"message", "function_call", "function_call_output", "item_reference", "mcp_approval_response"})
_PART_TAGS = frozenset({"input_text", "input_audio", "input_image", "output_text", "output_audio"})
_UNION_TAGS: dict[str, frozenset[str]] = {
    "session": frozenset({"realtime", "transcription"}),
    "format": frozenset({"audio/pcm", "audio/pcmu", "audio/pcma"}),
    "turn_detection": frozenset({"server_vad", "semantic_vad"}),
    "item": _ITEM_TAGS,
    "input": _ITEM_TAGS,
    "content": _PART_TAGS,
    "tools": frozenset({"function", "mcp"}),
}
_PYDANTIC_TYPE_NAMES = frozenset({"int", "str", "float", "bool", "dict", "list", "none"})

#: Objects and arrays nested deeper than this are refused. A real tool schema nests a few levels; the
#: limit leaves the pydantic serializer (about 250), the recursive schema walkers of ``engines/`` and
#: Python's recursion limit (1,000) far away.
MAX_JSON_DEPTH = 64
_DEPTH_PARAM_STEPS = 4  # the param of a too-deep value names the field it sits in, not all the levels

_EVENT_ID_LENGTH = 21


_QUOTED = re.compile(r"'([^']*)'")


def _quote_list(values: list[str]) -> str:
    quoted = [f"'{v}'" for v in values]
    if len(quoted) <= 2:
        return " and ".join(quoted)
    return ", ".join(quoted[:-1]) + f", and {quoted[-1]}"


def _supported_values(expected: str) -> str:
    """Pydantic's ``'a', 'b' or 'c'`` (or ``'a', 'b'`` for tags) as OpenAI's ``'a', 'b', and 'c'``."""
    values = _QUOTED.findall(expected)
    return _quote_list(values) if values else expected


def _param_path(loc: tuple[int | str, ...]) -> str:
    """Turn a pydantic error location into OpenAI's dotted ``param`` (``session.tools[0].name``)."""
    parts: list[str] = []
    field = ""  # the last field name seen, to recognise the union tag that follows it
    for entry in loc:
        if isinstance(entry, int):
            parts[-1] = f"{parts[-1]}[{entry}]" if parts else f"[{entry}]"
            continue
        is_tag = entry in _UNION_TAGS.get(field, frozenset())
        # Smart-mode unions add the member's type name ("int", "literal['auto']", "NamedToolChoice").
        is_member_name = "[" in entry or entry[:1].isupper() or entry.split("[")[0] in _PYDANTIC_TYPE_NAMES
        if not is_tag and not is_member_name:
            parts.append(entry)
            field = entry
    return ".".join(parts)


def validation_error(exc: ValidationError, event_id: str | None) -> ProtocolError:
    # In a smart-mode union (``"auto" | NamedToolChoice``) pydantic reports every member's error; the
    # deepest one is from the member the client meant (the object, when an object was sent).
    err = max(exc.errors(include_url=False), key=lambda e: len(e["loc"]))
    param = _param_path(tuple(err["loc"]))
    kind = err["type"]
    value = err.get("input")
    ctx: Mapping[str, Any] = err.get("ctx") or {}
    if kind == "extra_forbidden":
        return ProtocolError(f"Unknown parameter: '{param}'.", code="unknown_parameter", param=param, event_id=event_id)
    if kind == "missing":
        return ProtocolError(
            f"Missing required parameter: '{param}'.",
            code="missing_required_parameter",
            param=param,
            event_id=event_id,
        )
    if kind in ("union_tag_not_found", "union_tag_invalid"):
        # The location of a tagged union's error is the union field; the value at fault is its tag.
        param = f"{param}.type"
    if kind == "union_tag_not_found":
        return ProtocolError(
            f"Missing required parameter: '{param}'.",
            code="missing_required_parameter",
            param=param,
            event_id=event_id,
        )
    if kind in ("literal_error", "union_tag_invalid", "enum"):
        expected = str(ctx.get("expected") or ctx.get("expected_tags") or "")
        return ProtocolError(
            f"Invalid value: '{value if not isinstance(value, dict) else value.get('type')}'. "
            f"Supported values are: {_supported_values(expected)}.",
            code="invalid_value",
            param=param,
            event_id=event_id,
        )
    # Integer or decimal by the field's bound, not the value sent: ``threshold: 2`` is a decimal field.
    bound = ctx.get("ge", ctx.get("gt", ctx.get("le", ctx.get("lt"))))
    number = "integer" if isinstance(bound, int) and not isinstance(bound, bool) else "decimal"
    if kind in ("greater_than_equal", "greater_than"):
        return ProtocolError(
            f"Invalid '{param}': expected a value >= {ctx.get('ge', ctx.get('gt'))}, but got {value} instead.",
            code=f"{number}_below_min_value",
            param=param,
            event_id=event_id,
        )
    if kind in ("less_than_equal", "less_than"):
        return ProtocolError(
            f"Invalid '{param}': expected a value <= {ctx.get('le', ctx.get('lt'))}, but got {value} instead.",
            code=f"{number}_above_max_value",
            param=param,
            event_id=event_id,
        )
    if kind == "value_error":
        text = str(ctx.get("error", err["msg"]))
        code = "invalid_value"
        if text.startswith("below_min:"):
            code, text = "integer_below_min_value", text.removeprefix("below_min:")
        elif text.startswith("above_max:"):
            code, text = "integer_above_max_value", text.removeprefix("above_max:")
        elif ":" in text:
            text = text.split(":", 1)[1]
        return ProtocolError(f"Invalid '{param}': {text}", code=code, param=param, event_id=event_id)
    return ProtocolError(
        f"Invalid type for '{param}': {err['msg'].lower()}.",
        code="invalid_type",
        param=param,
        event_id=event_id,
    )


def parse_client_event(frame: str, kind: SessionKind, *, call: bool = False) -> ce.ClientEvent:
    """Parse one TEXT frame into the client event model for a session of ``kind``; ``call``: the
    session is a WebRTC call's (its audio on the media track, its playback the server's).

    Raises:
        ProtocolError: with OpenAI's code, param and the frame's ``event_id`` when it can be read.
    """
    try:
        raw = json.loads(frame, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise ProtocolError(
            f"Invalid event: failed to parse JSON value. {exc.msg} at column {exc.pos}.", code="invalid_json"
        ) from None
    except RecursionError:
        raise ProtocolError(
            f"Invalid event: failed to parse JSON value. It nests more than {MAX_JSON_DEPTH} levels deep.",
            code="invalid_json",
        ) from None
    except _NotJson as exc:
        raise ProtocolError(f"Invalid event: failed to parse JSON value. {exc}.", code="invalid_json") from None
    except ValueError:  # an integer with more digits than int() converts
        raise ProtocolError(
            f"Invalid event: failed to parse JSON value. A number has more than {sys.get_int_max_str_digits()} digits.",
            code="invalid_json",
        ) from None
    if not isinstance(raw, dict):
        raise ProtocolError("Invalid event: expected a JSON object.", code="invalid_json")
    event_id = raw.get("event_id") if isinstance(raw.get("event_id"), str) else None
    too_deep = _too_deep(raw)
    if too_deep is not None:
        param = _param_path(too_deep)
        raise ProtocolError(
            f"Invalid '{param}': the value nests more than {MAX_JSON_DEPTH} levels deep.",
            code="invalid_value",
            param=param,
            event_id=event_id,
        )
    event_type = raw.get("type")
    events = _CALL_EVENTS[kind] if call else _EVENTS_BY_KIND[kind]
    if event_type is None:
        raise ProtocolError(
            "Missing required parameter: 'type'.",
            code="missing_required_parameter",
            param="type",
            event_id=event_id,
        )
    model = events.get(event_type) if isinstance(event_type, str) else None
    if model is None:
        raise ProtocolError(
            f"Invalid value: '{event_type}'. Supported values are: {_quote_list(list(events))}.",
            code="invalid_value",
            param="type",
            event_id=event_id,
        )
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise validation_error(exc, event_id) from None


class _NotJson(ValueError):
    """``NaN``, ``Infinity`` or ``-Infinity``: Python's parser takes them, JSON has no such values."""


def _refuse_constant(name: str) -> Any:
    raise _NotJson(f"{name} is not a JSON value")


def _too_deep(raw: dict[str, Any]) -> tuple[int | str, ...] | None:
    """The path (its first few steps) to a value nested more than ``MAX_JSON_DEPTH`` deep, or ``None``.

    Iterative, linear in the number of objects and arrays: it must not recurse on what it guards.
    """
    stack: list[tuple[Any, int, tuple[int | str, ...]]] = [(raw, 1, ())]
    while stack:
        node, depth, path = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return path
        children = node.items() if isinstance(node, dict) else enumerate(node)
        for key, child in children:
            if isinstance(child, dict | list):
                step = (*path, key) if len(path) < _DEPTH_PARAM_STEPS else path
                stack.append((child, depth + 1, step))
    return None


MAX_APPEND_BYTES = 15 * 1024 * 1024  # OpenAI's per-append limit ("15 MiB" in the SDK)


def decode_base64_audio(data: str, *, event_id: str | None) -> bytes:
    """Strict base64 for ``audio`` fields; bad input is ``invalid_value`` on ``audio``."""
    if len(data) * 3 // 4 > MAX_APPEND_BYTES:
        raise ProtocolError(
            f"Audio content too large: an append may carry at most {MAX_APPEND_BYTES} bytes "
            f"(15 MiB), this one carries about {len(data) * 3 // 4}.",
            code="input_audio_buffer_append_too_large",
            param="audio",
            event_id=event_id,
        )
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ProtocolError(
            "Invalid 'audio': the value is not valid base64.",
            code="invalid_value",
            param="audio",
            event_id=event_id,
        ) from None


def new_event_id() -> str:
    """``event_`` + 21 base62 characters, the shape OpenAI uses."""
    return "event_" + random_base62(_EVENT_ID_LENGTH)


def server_event_dict(event: ServerEvent, event_id: str) -> dict[str, Any]:
    """The wire dict of ``event`` with ``event_id`` stamped on (``type`` and ``event_id`` first)."""
    body = event.model_dump(mode="json", exclude={"type"})
    if isinstance(event, BaseModel) and "logprobs" in body and body["logprobs"] is None:
        del body["logprobs"]
    audio = getattr(event, "audio", None)
    if isinstance(audio, AudioOut):  # samples inside, the wire encoding and base64 only here
        encoded = base64.b64encode(audio.wire_bytes()).decode("ascii")
        if isinstance(event, se.ItemRetrieved):
            for part in body["item"].get("content", []):
                if part.get("type") == "input_audio":
                    part["audio"] = encoded
        else:
            body["delta"] = encoded
    return {"type": event.type, "event_id": event_id, **body}


def dump_server_event(event: ServerEvent, event_id: str | None = None) -> str:
    """Serialize ``event`` to a TEXT frame, with a fresh ``event_id`` unless one is given."""
    return json.dumps(server_event_dict(event, event_id or new_event_id()), separators=(",", ":"))


# --- the client's side: server events, parsed leniently --------------------------------------------

_Model = TypeVar("_Model", bound=BaseModel)
_EMPTY_VALUES: dict[Any, Any] = {str: str, int: int, float: float, bool: bool, dict: dict, list: list}


class UnknownServerEvent(BaseModel):
    """A server event with no model here (a type OpenAI added), or one that does not fit its model.

    Its fields are kept as extra attributes (``model_extra``); ``type`` is ``""`` when it had none.
    """

    model_config = ConfigDict(extra="allow", frozen=True)
    type: str = ""


def _admits_none(annotation: Any) -> bool:
    if annotation is None or annotation is type(None) or annotation is Any:
        return True
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return any(_admits_none(arg) for arg in typing.get_args(annotation))
    return False


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The model class a field holds (``X`` or ``X | None``), if it holds one."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        models = [m for arg in typing.get_args(annotation) if (m := _model_of(arg)) is not None]
        return models[0] if len(models) == 1 else None
    return None


def _nulls_are_missing(cls: type[BaseModel], data: Any) -> Any:
    """A ``null`` for a field that cannot hold one counts as missing (it then takes its empty value)."""
    if not isinstance(data, dict):
        return data
    fields = cls.model_fields
    return {k: v for k, v in data.items() if v is not None or k not in fields or _admits_none(fields[k].annotation)}


@functools.cache
def _lenient(model: type[_Model]) -> type[_Model]:
    """A subclass of ``model`` that ignores unknown fields and gives every missing field a value."""
    annotations: dict[str, Any] = {}
    namespace: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        annotation: Any = info.annotation
        nested = _model_of(annotation)
        if nested is not None:
            lenient_nested = _lenient(nested)
            annotation = lenient_nested | None if _admits_none(annotation) else lenient_nested
            annotations[name] = annotation
        if not info.is_required():
            if nested is not None:
                namespace[name] = (
                    info.default if info.default_factory is None else Field(default_factory=info.default_factory)
                )
            continue
        annotations[name] = annotation
        if _admits_none(annotation):
            namespace[name] = None
        elif nested is not None:
            namespace[name] = Field(default_factory=_lenient(nested))
        elif typing.get_origin(annotation) is typing.Literal:
            namespace[name] = typing.get_args(annotation)[0]
        elif (factory := _EMPTY_VALUES.get(typing.get_origin(annotation) or annotation)) is not None:
            namespace[name] = Field(default_factory=factory)
    namespace.update(
        __module__=__name__,
        __doc__=f"{model.__name__}, parsed leniently (see :func:`parse_server_event`).",
        __annotations__=annotations,
        model_config=ConfigDict(extra="ignore"),
        _nulls_are_missing=model_validator(mode="before")(_nulls_are_missing),
    )
    return cast(type[_Model], type(f"Lenient{model.__name__}", (model,), namespace))


@functools.cache
def _lenient_server_events() -> dict[str, type[ServerEvent]]:
    """Each server event type's lenient model (built on first use: the server never needs them)."""
    models: dict[str, type[ServerEvent]] = {}
    for module in (se, xe):  # OpenAI's events, then our extensions'
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, ServerEvent) and value.__module__ == module.__name__:
                kind = value.model_fields["type"].default
                if isinstance(kind, str) and kind not in models:
                    models[kind] = _lenient(value)
    return models


def server_event_from_dict(raw: Mapping[str, Any]) -> ServerEvent | UnknownServerEvent:
    """Type one decoded server event leniently (see the module docstring); never raises."""
    kind = raw.get("type")
    model = _lenient_server_events().get(kind) if isinstance(kind, str) else None
    if model is not None:
        try:
            return model.model_validate(raw)
        except ValidationError:
            pass  # a field of the wrong type: the event is kept, untyped, rather than failing the client
    return UnknownServerEvent.model_validate({**raw, "type": kind if isinstance(kind, str) else ""})


def parse_server_event(frame: str | bytes) -> ServerEvent | UnknownServerEvent:
    """Parse one TEXT frame from a Realtime server, leniently (the client's side of the codec).

    Raises:
        ProtocolError: If the frame is not a JSON object.
    """
    try:
        raw = json.loads(frame)
    except json.JSONDecodeError as exc:
        raise ProtocolError(f"the server sent a frame that is not JSON: {exc.msg}", code="invalid_json") from None
    if not isinstance(raw, dict):
        raise ProtocolError("the server sent a frame that is not a JSON object", code="invalid_json")
    return server_event_from_dict(raw)
