"""LLM translation: the prompt, output cleaning, and SmolLM2 doing a trivial phrase."""

from __future__ import annotations

import pytest

from openrealtime.engines.fake import FakeChatModel
from openrealtime.engines.llm_translator import LlmTranslator, LlmTranslatorOptions, clean_translation
from openrealtime.exceptions import EngineError


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Hola, ¿cómo estás?", "Hola, ¿cómo estás?"),
        ('"Hola."', "Hola."),
        ("“Bonjour.”", "Bonjour."),
        ("«Bonjour»", "Bonjour"),
        ("Here is the translation: Hola.", "Hola."),
        ("Sure! Here's the Spanish translation:\nHola.", "Hola."),
        ("Translation: Hola.", "Hola."),
        ("Spanish translation: Hola.", "Hola."),
        ("The translation in Spanish is: Hola.", "Hola."),
        ('Translation: "Hola."', "Hola."),
        ("Hola.\n\nNote: this is informal.", "Hola."),
        ("Hola.\n(Note: informal)", "Hola."),
        ("Línea uno.\nLínea dos.", "Línea uno.\nLínea dos."),
        ('Dijo "hola" y se fue.', 'Dijo "hola" y se fue.'),
        ("", ""),
    ],
)
def test_clean_translation(raw: str, clean: str) -> None:
    assert clean_translation(raw) == clean


def test_cleaning_respects_the_source() -> None:
    two_paragraphs = "Hola.\n\nAdiós."
    assert clean_translation(two_paragraphs, "Hello.\n\nGoodbye.") == two_paragraphs
    assert clean_translation(two_paragraphs, "Hello. Goodbye.") == "Hola."
    assert clean_translation('"Hola."', '"Hello."') == '"Hola."'


def test_prompt_and_request() -> None:
    model = FakeChatModel(reply='Sure! Here is the translation: "Hola a todos."')
    translator = LlmTranslator(model)
    assert translator.translate("  Hello everyone.  ", source="en", target="es") == "Hola a todos."
    request = model.requests[0]
    assert request.temperature == 0.0
    assert request.tools == ()
    assert request.max_tokens is not None
    assert request.max_tokens >= 32
    assert request.messages[0]["role"] == "system"
    assert "English" in request.messages[0]["content"]
    assert "Spanish" in request.messages[0]["content"]
    assert request.messages[1] == {"role": "user", "content": "Hello everyone."}


def test_custom_prompt() -> None:
    model = FakeChatModel(reply="Salut")
    translator = LlmTranslator(model, LlmTranslatorOptions(system_prompt="{source}->{target}"))
    translator.translate("Hi", source="en-US", target="fr_CA")
    assert model.requests[0].messages[0]["content"] == "English->French"


def test_supports_named_distinct_languages() -> None:
    translator = LlmTranslator(FakeChatModel())
    assert translator.supports("en", "es")
    assert translator.supports("pt-BR", "ja")
    assert not translator.supports("en", "en-GB")
    assert not translator.supports("en", "xx")
    with pytest.raises(EngineError) as info:
        translator.translate("Hi", source="en", target="xx")
    assert info.value.code == "unsupported_language_pair"


def test_empty_text_skips_the_model() -> None:
    model = FakeChatModel()
    assert LlmTranslator(model).translate("  ", source="en", target="es") == ""
    assert model.requests == []


@pytest.mark.real
def test_smollm2_translates_a_stock_phrase() -> None:
    from openrealtime.engines.llama_chat import LlamaChatModel, LlamaOptions

    translator = LlmTranslator(LlamaChatModel(LlamaOptions(n_ctx=512)))
    spanish = translator.translate("Thank you very much.", source="en", target="es")
    assert "gracias" in spanish.lower()
    assert not spanish.lower().startswith(("translation", "here", "sure", '"'))
