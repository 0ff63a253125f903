"""Which engines of an :class:`EngineSet` serve a translation session's languages.

A pair is served, in this order of preference, by a dedicated text translator that covers it
(Apertium), by Whisper's own speech translation when the target is English and the ASR model is
multilingual, and last by an LLM translator (any language it can name, as well as the configured LLM
translates). A target language is spoken by the TTS engine registered for it (piper for English, any
piper voice by path) or by the multilingual fallback (espeak-ng) when that one speaks the language
(:meth:`~openrealtime.contracts.Synthesizer.speaks`).
"""

from __future__ import annotations

from openrealtime.engines.llm_translator import LlmTranslator
from openrealtime.runtime.engines import EngineSet
from openrealtime.session.translation import Route, TranslationInfo, language_base

ENGLISH = "en"
FALLBACK_VOICE = "*"


class LanguageSupport:
    """Routes language pairs and checks voices against one engine set (cheap; call per session)."""

    def __init__(self, engines: EngineSet) -> None:
        self.engines = engines

    def route(self, source: str, target: str) -> Route | None:
        """How speech in ``source`` becomes text in ``target`` here, or ``None`` if it cannot."""
        source, target = language_base(source), language_base(target)
        if source == target:
            return Route.PASS_THROUGH
        translators = self.engines.translators
        dedicated = [t for t in translators if not isinstance(t, LlmTranslator)]
        if any(t.supports(source, target) for t in dedicated):
            return Route.TEXT
        if target == ENGLISH and self.engines.transcriber.multilingual:
            return Route.SPEECH
        if any(t.supports(source, target) for t in translators):
            return Route.TEXT
        return None

    def can_speak(self, language: str) -> bool:
        """Whether a voice speaks ``language`` (a code such as ``es`` or ``pt-BR``)."""
        synthesizers = self.engines.synthesizers
        if language in synthesizers or language_base(language) in synthesizers:
            return True
        fallback = synthesizers.get(FALLBACK_VOICE)
        return fallback is not None and fallback.speaks(language)

    def info(self, *, session_id: str, created_at_s: int, model: str) -> TranslationInfo:
        """The :class:`TranslationInfo` of a new session served by these engines."""
        return TranslationInfo(
            session_id=session_id,
            created_at_s=created_at_s,
            model=model,
            route=self.route,
            can_speak=self.can_speak,
            multilingual=bool(getattr(self.engines.transcriber, "multilingual", False)),
            accepts_model=self.engines.accepts_transcription_model,
        )
