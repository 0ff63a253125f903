"""Which engines serve a language pair, and which languages have a voice."""

from __future__ import annotations

from openrealtime.engines.fake import EnergyVad, FakeChatModel, FakeTranscriber, ToneSynthesizer, UppercaseTranslator
from openrealtime.engines.llm_translator import LlmTranslator
from openrealtime.runtime.engines import EngineSet
from openrealtime.runtime.languages import LanguageSupport
from openrealtime.session.translation import Route


class SpanishOnly(UppercaseTranslator):
    def supports(self, source: str, target: str) -> bool:
        return (source, target) in {("en", "es"), ("es", "en")}


class Multilingual(FakeTranscriber):
    multilingual = True


def engines(*, multilingual: bool = False, llm: bool = True) -> EngineSet:
    translators = [SpanishOnly()] + ([LlmTranslator(FakeChatModel())] if llm else [])
    return EngineSet(
        vad=EnergyVad(),
        transcriber=Multilingual() if multilingual else FakeTranscriber(),
        transcriber_name="fake",
        synthesizers={"en": ToneSynthesizer(), "*": ToneSynthesizer(languages={"en", "es", "fr", "pt"})},
        translators=translators,
    )


def test_routes_prefer_a_dedicated_translator_then_whisper_then_an_llm() -> None:
    english_only, multilingual = LanguageSupport(engines()), LanguageSupport(engines(multilingual=True))
    assert english_only.route("en", "en-US") is Route.PASS_THROUGH
    assert english_only.route("en", "es") is Route.TEXT  # Apertium-like
    assert english_only.route("fr", "en") is Route.TEXT  # the LLM: no speech translation without base
    assert multilingual.route("fr", "en") is Route.SPEECH  # Whisper's translate task before the LLM
    assert multilingual.route("es", "en") is Route.TEXT  # a dedicated translator before Whisper
    assert LanguageSupport(engines(llm=False)).route("en", "fr") is None
    assert LanguageSupport(engines(llm=False)).route("en", "xx") is None


def test_a_voice_speaks_a_language_only_if_it_really_knows_it() -> None:
    support = LanguageSupport(engines())
    assert support.can_speak("en")
    assert support.can_speak("en-GB")  # the English voice by its base code
    assert support.can_speak("pt-BR")
    assert not support.can_speak("ja")  # espeak-ng would read it with its default English voice
    assert not LanguageSupport(
        EngineSet(vad=EnergyVad(), transcriber=FakeTranscriber(), transcriber_name="f")
    ).can_speak("es")


def test_info_describes_the_engines() -> None:
    info = LanguageSupport(engines(multilingual=True)).info(session_id="sess_1", created_at_s=5, model="m")
    assert (info.session_id, info.created_at_s, info.model, info.multilingual) == ("sess_1", 5, "m", True)
    assert info.accepts_model("gpt-realtime-whisper")
    assert not info.accepts_model("nope")
