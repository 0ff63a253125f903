"""Which sans-I/O session a WebSocket connect opens, or why it is refused.

Given the connect's query parameters and headers, the server's settings and its engine set, this
module builds a realtime, transcription or translation session, or returns a :class:`Refusal` that
the server reports as one ``error`` event followed by a close, as OpenAI does (reference 2.2, 2.4).
Authentication is not here: it decides the subprotocol of the upgrade, before any of this.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, replace

from openrealtime.protocol.codec import SessionKind
from openrealtime.runtime.engines import EngineSet
from openrealtime.runtime.languages import LanguageSupport
from openrealtime.server.settings import Settings
from openrealtime.session.ids import Ids
from openrealtime.session.realtime import DEFAULT_INSTRUCTIONS, RealtimeInfo, RealtimeSession
from openrealtime.session.transcription import SESSION_LIFETIME_S, SessionInfo, TranscriptionSession
from openrealtime.session.translation import TranslationSession

CLOSE_AUTH = 3000
CLOSE_BAD_REQUEST = 4000
INTENT_REALTIME = "realtime"
INTENT_TRANSCRIPTION = "transcription"

Session = RealtimeSession | TranscriptionSession | TranslationSession


@dataclass(frozen=True)
class Opened:
    """A session ready to be driven by a connection."""

    session: Session
    kind: SessionKind


@dataclass(frozen=True)
class Refusal:
    """Why a connect is refused: the ``error`` event's message and code, and the close code."""

    message: str
    code: str | None
    close_code: int = CLOSE_BAD_REQUEST
    error_type: str = "invalid_request_error"


def open_realtime(
    query: Mapping[str, str], headers: Mapping[str, str], settings: Settings, engines: EngineSet
) -> Opened | Refusal:
    """A connect to ``/v1/realtime``: a transcription session for ``intent=transcription``, else a
    realtime session for any ``model`` (``gpt-realtime``, ``gpt-realtime-2``, ... all map to the
    configured engines)."""
    if headers.get("openai-beta", "").startswith("realtime"):
        return Refusal(
            "The beta Realtime API shape is disabled; remove the "
            "'OpenAI-Beta: realtime=v1' header to use the GA interface.",
            "beta_api_shape_disabled",
        )
    intent = query.get("intent")
    model = query.get("model")
    info = SessionInfo(
        session_id=Ids().new("sess"),
        created_at_s=int(time.time()),
        accepts_model=engines.accepts_transcription_model,
        lifetime_s=settings.session_lifetime_s,
    )
    if intent == INTENT_TRANSCRIPTION:
        return Opened(TranscriptionSession(info, vad=engines.vad, noise=engines.noise), SessionKind.TRANSCRIPTION)
    if intent not in (None, INTENT_REALTIME):
        return Refusal(
            f"Invalid intent '{intent}'. Supported values are: 'realtime' and 'transcription'.", "invalid_intent"
        )
    if model is None:
        return Refusal(
            "You must provide a model parameter, for example ws://127.0.0.1:8000/v1/realtime?model=gpt-realtime",
            "missing_model",
        )
    context = engines.chat.context_tokens if engines.chat is not None else settings.llm_context_tokens
    realtime = RealtimeInfo(
        base=info, model=model, context_tokens=context, instructions=settings.instructions or DEFAULT_INSTRUCTIONS
    )
    return Opened(RealtimeSession(realtime, vad=engines.vad, noise=engines.noise), SessionKind.REALTIME)


def open_translation(
    query: Mapping[str, str], engines: EngineSet, *, lifetime_s: int = SESSION_LIFETIME_S
) -> Opened | Refusal:
    """A connect to ``/v1/realtime/translations``: a translation session for any ``model``
    (``gpt-realtime-translate``, ...), served by the languages the engines cover."""
    if "intent" in query:  # as the SDKs refuse it client-side (reference 2.2)
        return Refusal("Realtime Translation does not accept an intent query parameter.", "invalid_intent")
    model = query.get("model")
    if not model:
        return Refusal(
            "You must provide a model parameter, for example "
            "ws://127.0.0.1:8000/v1/realtime/translations?model=gpt-realtime-translate",
            "missing_model",
        )
    info = LanguageSupport(engines).info(session_id=Ids().new("sess"), created_at_s=int(time.time()), model=model)
    info = replace(info, lifetime_s=lifetime_s)
    return Opened(TranslationSession(info, vad=engines.vad, noise=engines.noise), SessionKind.TRANSLATION)
