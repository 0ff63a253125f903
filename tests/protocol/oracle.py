"""The official SDK's models as a strict oracle for the server events we send.

The SDK parses leniently (extra fields allowed, ``None`` for anything missing), so "the SDK parsed it"
proves little: pipecat died on a ``"languages": null`` that the SDK took without a word. Here an event
is held to the SDK's declared fields **strictly**:

* every key must be a field of the SDK model at that place (a discriminated union is narrowed by the
  value's ``type`` first);
* a ``null`` on a key the SDK marks optional is a failure, unless OpenAI really sends that null
  (:data:`REAL_NULLS`, each with the section of the reference that shows it);
* scalars must have the declared type and literals one of the declared values;
* and the event must pass the SDK's own ``model_validate``.

``session`` payloads are held to the *response* models (``RealtimeSessionCreateResponse``,
``RealtimeTranscriptionSessionCreateResponse``): OpenAI's schema of a session as a server reports it,
with ``object``, ``id`` and ``expires_at`` (the events declare the request models, which lack those
three). A key only the request models declare is tolerated by name (:data:`REQUEST_ONLY_KEYS`).
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import pydantic
from openai.types.realtime.realtime_server_event import RealtimeServerEvent
from openai.types.realtime.realtime_session_create_request import RealtimeSessionCreateRequest
from openai.types.realtime.realtime_session_create_response import RealtimeSessionCreateResponse
from openai.types.realtime.realtime_transcription_session_create_request import (
    RealtimeTranscriptionSessionCreateRequest,
)
from openai.types.realtime.realtime_transcription_session_create_response import (
    RealtimeTranscriptionSessionCreateResponse,
)
from openai.types.realtime.realtime_translation_server_event import RealtimeTranslationServerEvent
from openai.types.realtime.realtime_translation_session import RealtimeTranslationSession

Json = dict[str, Any]
Condition = Callable[[Json, Json], bool]  # (the dict holding the key, the whole event) -> allowed?


def _always(parent: Json, event: Json) -> bool:
    return True


def _input_audio_part(parent: Json, event: Json) -> bool:
    return parent.get("type") == "input_audio"


def _realtime_session(parent: Json, event: Json) -> bool:
    return bool(event.get("session", {}).get("type") == "realtime")


#: The nulls OpenAI sends, by path (list indices written ``[]``); every other ``null`` on a key the
#: SDK marks optional is a failure, because OpenAI leaves such a key out.
REAL_NULLS: dict[str, tuple[Condition, str]] = {
    # 6.2 / 7.2 (live): the first item of a session has no predecessor.
    "previous_item_id": (_always, "committed/added/done of the first item (6.2, 7.2)"),
    # 6.2 / 7.1 (live): a committed user audio item is added before its transcript exists.
    "item.content[].transcript": (_input_audio_part, "input_audio before its transcript (6.2, 7.1)"),
    "response.output[].content[].transcript": (_input_audio_part, "input_audio in an output (6.2)"),
    # 6.1 / 7 / 7.2 (live session.created and session.updated).
    "session.include": (_always, "include unset (6.1, 7)"),
    "session.tracing": (_always, "tracing unset (6.1)"),
    "session.prompt": (_always, "prompt unset (6.1)"),
    "session.audio.input.transcription": (_always, "no input transcription (6.1, 7, 8.2)"),
    "session.audio.input.noise_reduction": (_always, "no noise reduction (6.1, 7, 8.2)"),
    "session.audio.input.turn_detection": (_always, "manual turns (7.2)"),
    "session.audio.input.turn_detection.idle_timeout_ms": (_realtime_session, "realtime server_vad only (6.1)"),
    "session.audio.input.transcription.language": (_always, "echoed as null when unset (6.1, 7)"),
    "session.audio.input.transcription.prompt": (_always, "echoed as null when unset (6.1, 7, 7.2)"),
    # 6.2, 9.5 (live): the response object carries every field.
    "response.status_details": (_always, "in_progress and completed responses (6.2)"),
    "response.usage": (_always, "response.created (6.2)"),
    "response.metadata": (_always, "no metadata (6.2)"),
    "response.conversation_id": (_always, "out-of-band responses (6.5)"),
    # 10.1 (live): code, param and the client's event_id may be null; OpenAI's API reference example of
    # conversation.item.input_audio_transcription.failed has "param": null in its error too.
    "error.code": (_always, "10.1"),
    "error.param": (_always, "10.1"),
    "error.event_id": (_always, "10.1"),
}

#: Keys a session echo may carry that the SDK's *request* model declares (the type ``session.created``
#: declares) but its response model lacks.
REQUEST_ONLY_KEYS: dict[str, str] = {
    "session.parallel_tool_calls": "RealtimeSessionCreateRequest.parallel_tool_calls (echoed only once set)",
    "session.audio.input.turn_detection.eagerness": (
        "the transcription request model's semantic_vad has it; the response model describes server_vad only"
    ),
}


def _members(annotation: Any) -> list[Any]:
    """The flat list of types an annotation admits (``Annotated`` and unions unwrapped)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _members(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [m for arg in typing.get_args(annotation) for m in _members(arg)]
    return [annotation]


def _is_model(candidate: Any) -> bool:
    return isinstance(candidate, type) and issubclass(candidate, pydantic.BaseModel)


def _fits_tag(model: type[pydantic.BaseModel], tag: Any) -> bool:
    declared = model.model_fields.get("type")
    if declared is None:
        return True
    for member in _members(declared.annotation):
        if typing.get_origin(member) is Literal and tag in typing.get_args(member):
            return True
        if member is str and isinstance(tag, str):
            return True
        if member is type(None) and tag is None:
            return True
    return False


def _scalar_fits(value: Any, member: Any) -> bool:
    if member is Any or member is object:
        return True
    if typing.get_origin(member) is Literal:
        return any(value == arg and type(value) is type(arg) for arg in typing.get_args(member))
    if member is bool:
        return isinstance(value, bool)
    if member is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if member is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if member is str:
        return isinstance(value, str)
    return False


@dataclass
class Check:
    """One strict walk over one event; ``problems`` says what OpenAI's schema does not allow."""

    event: Json
    problems: list[str] = field(default_factory=list)

    def value(self, value: Any, annotations: list[Any], path: str, norm: str) -> None:
        admitted = [m for a in annotations for m in _members(a)]
        if value is None:
            if not any(m is type(None) or m is Any or m is object for m in admitted):
                self.problems.append(f"{path}: null where the SDK declares {admitted}")
            return
        if isinstance(value, dict):
            self._object(value, admitted, path, norm)
        elif isinstance(value, list):
            lists = [m for m in admitted if typing.get_origin(m) is list]
            if not lists:
                if not any(m is Any or m is object for m in admitted):
                    self.problems.append(f"{path}: a list where the SDK declares {admitted}")
                return
            items = [typing.get_args(m)[0] for m in lists]
            for i, item in enumerate(value):
                self.value(item, items, f"{path}[{i}]", f"{norm}[]")
        elif not any(_scalar_fits(value, m) for m in admitted):
            self.problems.append(f"{path}: {value!r} is none of {admitted}")

    def _object(self, value: Json, admitted: list[Any], path: str, norm: str) -> None:
        models = [m for m in admitted if _is_model(m)]
        if not models:
            dicts = [m for m in admitted if typing.get_origin(m) is dict or m is dict]
            if dicts:
                values = [typing.get_args(d)[1] if typing.get_args(d) else Any for d in dicts]
                for key, sub in value.items():
                    self.value(sub, values, f"{path}.{key}", f"{norm}.{key}")
            elif not any(m is Any or m is object for m in admitted):
                self.problems.append(f"{path}: an object where the SDK declares {admitted}")
            return
        fitting = [m for m in models if _fits_tag(m, value.get("type"))]
        if not fitting:
            names = ", ".join(m.__name__ for m in models)
            self.problems.append(f"{path}: type {value.get('type')!r} is none of {names}")
            return
        for key, sub in value.items():
            sub_path = f"{path}.{key}" if path else key
            sub_norm = f"{norm}.{key}" if norm else key
            declared = [m.model_fields[key] for m in fitting if key in m.model_fields]
            if not declared:
                if sub_norm not in REQUEST_ONLY_KEYS:
                    names = "/".join(m.__name__ for m in fitting)
                    self.problems.append(f"{sub_path}: not a field of OpenAI's {names}")
                continue
            if sub is None and all(not f.is_required() for f in declared):
                allowed = REAL_NULLS.get(sub_norm)
                if allowed is None or not allowed[0](value, self.event):
                    self.problems.append(f"{sub_path}: null where OpenAI leaves the key out")
                continue
            self.value(sub, [f.annotation for f in declared], sub_path, sub_norm)


def _by_type(union: Any) -> dict[str, type[pydantic.BaseModel]]:
    models: dict[str, type[pydantic.BaseModel]] = {}
    for model in _members(union):
        for literal in _members(model.model_fields["type"].annotation):
            for tag in typing.get_args(literal):
                models.setdefault(tag, model)
    return models


REALTIME_MODELS = _by_type(RealtimeServerEvent)
TRANSLATION_MODELS = _by_type(RealtimeTranslationServerEvent)
_SESSION_RESPONSES: dict[str, type[pydantic.BaseModel]] = {
    "realtime": RealtimeSessionCreateResponse,
    "transcription": RealtimeTranscriptionSessionCreateResponse,
    "translation": RealtimeTranslationSession,
}
_SESSION_REQUESTS: dict[str, type[pydantic.BaseModel]] = {
    "realtime": RealtimeSessionCreateRequest,
    "transcription": RealtimeTranscriptionSessionCreateRequest,
    "translation": RealtimeTranslationSession,
}


def problems(event: Json, *, translation: bool = False) -> list[str]:
    """What OpenAI's schema does not allow in ``event`` (a server event as sent, ``event_id`` and all)."""
    models = TRANSLATION_MODELS if translation else REALTIME_MODELS
    kind = event.get("type")
    model = models.get(kind) if isinstance(kind, str) else None
    if model is None:
        return [f"{kind!r} is not a server event of OpenAI's {'translation' if translation else 'realtime'} API"]
    check = Check(event)
    session = event.get("session")
    if kind in ("session.created", "session.updated") and isinstance(session, dict):
        response_model = _SESSION_RESPONSES[session.get("type") or "translation"]
        check.value({k: v for k, v in event.items() if k != "session"}, [model], "", "")
        check.value(session, [response_model], "session", "session")
        validated = [response_model, _SESSION_REQUESTS[session.get("type") or "translation"]]
        for candidate in validated:
            check.problems += _validation_problems(candidate, session, "session")
    else:
        check.value(event, [model], "", "")
    check.problems += _validation_problems(model, event, kind)
    return check.problems


def body_problems(body: Json, model: type[pydantic.BaseModel]) -> list[str]:
    """What OpenAI's ``model`` does not allow in ``body`` (an HTTP answer, e.g. a minted client secret)."""
    check = Check(body)
    check.value(body, [model], "", "")
    return check.problems + _validation_problems(model, body, model.__name__)


def _validation_problems(model: type[pydantic.BaseModel], value: Json, where: str) -> list[str]:
    try:
        model.model_validate(value)
    except pydantic.ValidationError as exc:
        return [f"{where}: {model.__name__}.model_validate: {e['loc']} {e['msg']}" for e in exc.errors()]
    return []
