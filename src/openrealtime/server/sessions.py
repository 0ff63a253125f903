"""Which sans-I/O session a WebSocket connect opens, or why it is refused.

Given the connect's query parameters and headers, the server's settings and its engine set, this
module builds a realtime, transcription or translation session, or returns a :class:`Refusal` that
the server reports as one ``error`` event followed by a close, as OpenAI does (reference 2.2, 2.4).
Authentication is not here: it decides the subprotocol of the upgrade, before any of this.

A connect made with a client secret (:mod:`~openrealtime.server.secrets`) opens the secret's kind of
session only, with the secret's config applied by the sessions' own ``session.update`` path before
the first event (:func:`configured`), so ``session.created`` already shows it; a secret's model wins
over ``?model=``. The same path resolves the session object a minted secret is answered with
(:func:`resolved_session`), so a config is validated once, by the code that validates updates.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from openrealtime.audio.codec import AudioFormat
from openrealtime.exceptions import ProtocolError
from openrealtime.protocol import client_events as ce
from openrealtime.protocol import server_events as se
from openrealtime.protocol.codec import SessionKind, parse_client_event
from openrealtime.runtime.engines import EngineSet
from openrealtime.runtime.languages import LanguageSupport
from openrealtime.server.secrets import ClientSecret
from openrealtime.server.settings import Settings
from openrealtime.session import echo
from openrealtime.session.bargein import barge_in_mode
from openrealtime.session.commands import Command, EngineResult, PlaybackResult, SessionInput
from openrealtime.session.ids import Ids
from openrealtime.session.realtime import DEFAULT_INSTRUCTIONS, RealtimeInfo, RealtimeSession
from openrealtime.session.transcription import SESSION_LIFETIME_S, SessionInfo, TranscriptionSession
from openrealtime.session.translation import TranslationInfo, TranslationSession

CLOSE_AUTH = 3000
CLOSE_BAD_REQUEST = 4000
INTENT_REALTIME = "realtime"
INTENT_TRANSCRIPTION = "transcription"
MISMATCH_CODE = "session_type_mismatch"
_INTENT_KINDS = {INTENT_REALTIME: SessionKind.REALTIME, INTENT_TRANSCRIPTION: SessionKind.TRANSCRIPTION}
_KIND_PATHS = {
    SessionKind.REALTIME: "/v1/realtime?model=...",
    SessionKind.TRANSCRIPTION: "/v1/realtime?intent=transcription",
    SessionKind.TRANSLATION: "/v1/realtime/translations?model=...",
}

SessionUpdate = ce.SessionUpdate | ce.TranslationSessionUpdate
BareSession = RealtimeSession | TranscriptionSession | TranslationSession


class Primed:
    """A session whose config was applied before it said anything: its first drain gives the one
    ``session.created`` that shows the config, instead of ``session.created`` then ``session.updated``.

    It is what the runtime drives (``runtime.connection.Session``); everything but that first drain is
    the session's own.
    """

    def __init__(self, session: BareSession, events: list[se.ServerEvent], commands: Sequence[Command]) -> None:
        self.inner = session
        self.info: SessionInfo | TranslationInfo = session.info
        self._first: tuple[list[se.ServerEvent], list[Command]] | None = (events, list(commands))

    @property
    def input_format(self) -> AudioFormat:
        return self.inner.input_format

    def receive(self, event: SessionInput) -> None:
        self.inner.receive(event)

    def error(self, exc: ProtocolError, event_id: str | None = None) -> None:
        self.inner.error(exc, event_id)

    def on_result(self, result: EngineResult) -> None:
        self.inner.on_result(result)

    def on_playback(self, result: PlaybackResult) -> None:
        self.inner.on_playback(result)

    def drain(self) -> tuple[list[se.ServerEvent], list[Command]]:
        events, commands = self.inner.drain()
        if self._first is not None:
            first, self._first = self._first, None
            return [*first[0], *events], [*first[1], *commands]
        return events, list(commands)


Session = BareSession | Primed


@dataclass(frozen=True)
class Opened:
    """A session ready to be driven by a connection."""

    session: Session
    kind: SessionKind


@dataclass(frozen=True)
class Refusal:
    """Why a connect is refused: the ``error`` event's message, code and param, and the close code."""

    message: str
    code: str | None
    close_code: int = CLOSE_BAD_REQUEST
    error_type: str = "invalid_request_error"
    param: str | None = None


def open_realtime(
    query: Mapping[str, str],
    headers: Mapping[str, str],
    settings: Settings,
    engines: EngineSet,
    secret: ClientSecret | None = None,
) -> Opened | Refusal:
    """A connect to ``/v1/realtime``: a transcription session for ``intent=transcription``, else a
    realtime session for any ``model`` (``gpt-realtime``, ``gpt-realtime-2``, ... all map to the
    configured engines). With a client ``secret``, the secret's kind and config."""
    if headers.get("openai-beta", "").startswith("realtime"):
        return Refusal(
            "The beta Realtime API shape is disabled; remove the "
            "'OpenAI-Beta: realtime=v1' header to use the GA interface.",
            "beta_api_shape_disabled",
        )
    intent = query.get("intent")
    if intent not in (None, INTENT_REALTIME, INTENT_TRANSCRIPTION):
        return Refusal(
            f"Invalid intent '{intent}'. Supported values are: 'realtime' and 'transcription'.", "invalid_intent"
        )
    if secret is not None:
        asked = _INTENT_KINDS[intent] if intent is not None else secret.kind
        if secret.kind is SessionKind.TRANSLATION or asked is not secret.kind:
            return _mismatch(secret, asked)
        update = secret_update(secret)
        if secret.kind is SessionKind.TRANSCRIPTION:
            return configured(Opened(_transcription(settings, engines), SessionKind.TRANSCRIPTION), update)
        model = getattr(update.session, "model", None) or query.get("model")
        if model is None:
            return _missing_model()
        return configured(Opened(_realtime(model, settings, engines), SessionKind.REALTIME), update)
    if intent == INTENT_TRANSCRIPTION:
        return Opened(_transcription(settings, engines), SessionKind.TRANSCRIPTION)
    model = query.get("model")
    if model is None:
        return _missing_model()
    return Opened(_realtime(model, settings, engines), SessionKind.REALTIME)


def open_translation(
    query: Mapping[str, str],
    engines: EngineSet,
    *,
    lifetime_s: int = SESSION_LIFETIME_S,
    secret: ClientSecret | None = None,
) -> Opened | Refusal:
    """A connect to ``/v1/realtime/translations``: a translation session for any ``model``
    (``gpt-realtime-translate``, ...), served by the languages the engines cover; with a client
    ``secret`` (of a translation session only), its model and config."""
    if "intent" in query:  # as the SDKs refuse it client-side (reference 2.2)
        return Refusal("Realtime Translation does not accept an intent query parameter.", "invalid_intent")
    if secret is not None:
        if secret.kind is not SessionKind.TRANSLATION:
            return _mismatch(secret, SessionKind.TRANSLATION)
        update = secret_update(secret)
        model = getattr(update.session, "model", None) or query.get("model") or ""
        return configured(Opened(_translation(model, engines, lifetime_s), SessionKind.TRANSLATION), update)
    model = query.get("model")
    if not model:
        return Refusal(
            "You must provide a model parameter, for example "
            "ws://127.0.0.1:8000/v1/realtime/translations?model=gpt-realtime-translate",
            "missing_model",
        )
    return Opened(_translation(model, engines, lifetime_s), SessionKind.TRANSLATION)


DEFAULT_CALL_MODEL = "gpt-realtime"  # a call's model when neither its config, its secret nor ?model= names one
DEFAULT_TRANSLATION_CALL_MODEL = "gpt-realtime-translate"
_CONFIG_KINDS = {"realtime": SessionKind.REALTIME, "transcription": SessionKind.TRANSCRIPTION}


def open_call(
    session_json: str | None,
    settings: Settings,
    engines: EngineSet,
    *,
    model: str | None = None,
    secret: ClientSecret | None = None,
) -> Opened | Refusal:
    """A WebRTC call's session (``POST /v1/realtime/calls``): realtime, or transcription when its
    config (or its secret) says ``type: "transcription"``. The secret's config applies first, then the
    request's ``session`` (``session_json``), then ``model`` (``?model=``), as OpenAI's "these can also
    be overridden by the client connection"; all before ``session.created``. A realtime call's session
    plays its own audio (``server_playback``)."""
    asked: SessionKind | None = None
    if session_json is not None:
        kind_name = _config_type(session_json)
        asked = _CONFIG_KINDS.get(kind_name or "realtime")
        if asked is None:
            return Refusal(
                f"Invalid value: '{kind_name}'. Supported values are: 'realtime' and 'transcription'.",
                "invalid_value",
                param="session.type",
            )
    kind = secret.kind if secret is not None else asked or SessionKind.REALTIME
    if secret is not None and (secret.kind is SessionKind.TRANSLATION or (asked is not None and asked is not kind)):
        return _mismatch(secret, asked or kind)
    updates: list[SessionUpdate] = []
    try:
        if secret is not None:
            updates.append(secret_update(secret))
        if session_json is not None:
            updates.append(parse_session_config(session_json, kind))
    except ProtocolError as exc:
        return Refusal(exc.message, exc.code, error_type=exc.error_type, param=exc.param)
    if kind is SessionKind.TRANSCRIPTION:
        opened: Opened | Refusal = Opened(_transcription(settings, engines), kind)
    else:
        named = [m for u in reversed(updates) if (m := getattr(u.session, "model", None))]
        chosen = named[0] if named else model or DEFAULT_CALL_MODEL
        opened = Opened(_realtime(chosen, settings, engines, server_playback=True), kind)
    for update in updates:
        if isinstance(opened, Refusal):
            break
        opened = configured(opened, update)
    return opened


def open_translation_call(
    session_json: str | None,
    settings: Settings,
    engines: EngineSet,
    *,
    model: str | None = None,
    secret: ClientSecret | None = None,
) -> Opened | Refusal:
    """A WebRTC translation call's session (``POST /v1/realtime/translations/calls``): the secret's
    config, then the request's ``session``, then ``model``; the server plays the translated speech."""
    if secret is not None and secret.kind is not SessionKind.TRANSLATION:
        return _mismatch(secret, SessionKind.TRANSLATION)
    updates: list[SessionUpdate] = []
    try:
        if secret is not None:
            updates.append(secret_update(secret))
        if session_json is not None:
            updates.append(parse_session_config(session_json, SessionKind.TRANSLATION))
    except ProtocolError as exc:
        return Refusal(exc.message, exc.code, error_type=exc.error_type, param=exc.param)
    named = [m for u in reversed(updates) if (m := getattr(u.session, "model", None))]
    chosen = named[0] if named else model or DEFAULT_TRANSLATION_CALL_MODEL
    session = _translation(chosen, engines, settings.session_lifetime_s, server_playback=True)
    opened: Opened | Refusal = Opened(session, SessionKind.TRANSLATION)
    for update in updates:
        if isinstance(opened, Refusal):
            break
        opened = configured(opened, update)
    return opened


def _config_type(session_json: str) -> str | None:
    try:
        raw = json.loads(session_json)
    except ValueError:
        return None  # parse_session_config says what is wrong with it
    kind = raw.get("type") if isinstance(raw, dict) else None
    return kind if isinstance(kind, str) else None


def secret_update(secret: ClientSecret) -> SessionUpdate:
    """The ``session.update`` that applies a secret's attached config."""
    return parse_session_config(secret.session_json, secret.kind)


def parse_session_config(session_json: str, kind: SessionKind) -> SessionUpdate:
    """A session config (JSON text) as the ``session.update`` a session of ``kind`` would take.

    Raises:
        ProtocolError: The config is not one (the param is ``session....``, as in the update).
    """
    frame = f'{{"type":"session.update","session":{session_json}}}'
    event = parse_client_event(frame, kind)
    assert isinstance(event, ce.SessionUpdate | ce.TranslationSessionUpdate)
    return event


def configured(opened: Opened, update: SessionUpdate) -> Opened | Refusal:
    """``opened`` with ``update`` applied before its first event, as the client's own ``session.update``
    would apply it; refused (4000) with the update's error when the session refuses it."""
    session = opened.session.inner if isinstance(opened.session, Primed) else opened.session
    events, commands = opened.session.drain()
    session.receive(update)
    applied, more = session.drain()
    for event in applied:
        if isinstance(event, se.Error):
            error = event.error
            return Refusal(error.message, error.code, error_type=error.type, param=error.param)
    config = next(event.session for event in applied if isinstance(event, se.SessionUpdated))
    created = [se.SessionCreated(session=config) if isinstance(e, se.SessionCreated) else e for e in events]
    return Opened(Primed(session, created, [*commands, *more]), opened.kind)


def resolved_session(
    kind: SessionKind, update: SessionUpdate, settings: Settings, engines: EngineSet
) -> dict[str, Any] | Refusal:
    """The session object a client secret of ``kind`` with ``update`` attached is answered with, as
    OpenAI's ``POST /v1/realtime/client_secrets`` does: a session of that kind, built and updated
    exactly as a connect with the secret will be (``expires_at`` 0: no session exists yet)."""
    model = getattr(update.session, "model", None)
    session: BareSession
    if kind is SessionKind.TRANSLATION:
        session = _translation(model or "", engines, settings.session_lifetime_s)
    elif kind is SessionKind.TRANSCRIPTION:
        session = _transcription(settings, engines)
    else:
        session = _realtime(model or "", settings, engines)
    opened = configured(Opened(session, kind), update)
    if isinstance(opened, Refusal):
        return opened
    events, _ = opened.session.drain()
    body = next(dict(event.session) for event in events if isinstance(event, se.SessionCreated))
    body["expires_at"] = 0
    if "model" in body:
        body["model"] = model  # the model sessions will get from ?model= when the secret names none
    return body


def _mismatch(secret: ClientSecret, asked: SessionKind) -> Refusal:
    return Refusal(
        f"This client secret opens {secret.kind.value} sessions only, not a {asked.value} session; "
        f"connect to {_KIND_PATHS[secret.kind]} with it.",
        MISMATCH_CODE,
    )


def _missing_model() -> Refusal:
    return Refusal(
        "You must provide a model parameter, for example ws://127.0.0.1:8000/v1/realtime?model=gpt-realtime",
        "missing_model",
    )


def fresh_session(
    kind: SessionKind, model: str, settings: Settings, engines: EngineSet, *, session_id: str
) -> BareSession:
    """A new session of ``kind`` with the id ``session_id``, unconfigured (a resumed session, whose
    config and conversation are put back by :mod:`~openrealtime.server.resume`)."""
    if kind is SessionKind.TRANSCRIPTION:
        return _transcription(settings, engines, session_id=session_id)
    if kind is SessionKind.TRANSLATION:
        return _translation(model, engines, settings.session_lifetime_s, session_id=session_id)
    return _realtime(model, settings, engines, session_id=session_id)


def _info(settings: Settings, engines: EngineSet, session_id: str | None = None) -> SessionInfo:
    return SessionInfo(
        session_id=session_id or Ids().new("sess"),
        created_at_s=int(time.time()),
        accepts_model=engines.accepts_transcription_model,
        lifetime_s=settings.session_lifetime_s,
    )


def _transcription(settings: Settings, engines: EngineSet, *, session_id: str | None = None) -> TranscriptionSession:
    return TranscriptionSession(_info(settings, engines, session_id), vad=engines.vad, noise=engines.noise)


def _realtime(
    model: str,
    settings: Settings,
    engines: EngineSet,
    *,
    server_playback: bool = False,
    session_id: str | None = None,
) -> RealtimeSession:
    context = engines.chat.context_tokens if engines.chat is not None else settings.llm_context_tokens
    realtime = RealtimeInfo(
        base=_info(settings, engines, session_id),
        model=model,
        context_tokens=context,
        instructions=settings.instructions or DEFAULT_INSTRUCTIONS,
        server_playback=server_playback,
        sees_images=bool(getattr(engines.chat, "sees_images", False)),
        barge_in=barge_in_mode(settings.barge_in, call=server_playback),
        echo_canceller=settings.echo_canceller
        if settings.echo_cancellation and echo.available(settings.echo_canceller)
        else None,
    )
    return RealtimeSession(realtime, vad=engines.vad, noise=engines.noise)


def _translation(
    model: str, engines: EngineSet, lifetime_s: int, *, server_playback: bool = False, session_id: str | None = None
) -> TranslationSession:
    session_id = session_id or Ids().new("sess")
    info = LanguageSupport(engines).info(session_id=session_id, created_at_s=int(time.time()), model=model)
    info = replace(info, lifetime_s=lifetime_s, server_playback=server_playback)
    return TranslationSession(info, vad=engines.vad, noise=engines.noise)
