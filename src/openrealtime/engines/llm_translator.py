"""Machine translation by prompting any :class:`~openrealtime.contracts.ChatModel`.

This module owns :class:`LlmTranslator`: the translation prompt (temperature 0), a length cap derived
from the source, and :func:`clean_translation`, which strips what chat models wrap around an answer
(quotes, "Translation:" and "Here is the translation" preambles, trailing notes). How good the result
is depends on the model: SmolLM2-135M hallucinates, a real LLM behind an OpenAI-compatible endpoint
translates well.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass

from openrealtime.contracts import ChatModel, ChatRequest, TextDelta
from openrealtime.exceptions import EngineError

#: English names of the languages the prompt can name, by ISO-639-1 code.
LANGUAGE_NAMES: Mapping[str, str] = {
    "af": "Afrikaans", "ar": "Arabic", "bg": "Bulgarian", "bn": "Bengali", "ca": "Catalan",
    "cs": "Czech", "cy": "Welsh", "da": "Danish", "de": "German", "el": "Greek", "en": "English",
    "eo": "Esperanto", "es": "Spanish", "et": "Estonian", "eu": "Basque", "fa": "Persian",
    "fi": "Finnish", "fr": "French", "ga": "Irish", "gl": "Galician", "he": "Hebrew", "hi": "Hindi",
    "hr": "Croatian", "hu": "Hungarian", "id": "Indonesian", "is": "Icelandic", "it": "Italian",
    "ja": "Japanese", "ko": "Korean", "lt": "Lithuanian", "lv": "Latvian", "mk": "Macedonian",
    "ms": "Malay", "mt": "Maltese", "nb": "Norwegian Bokmål", "nl": "Dutch", "no": "Norwegian",
    "pl": "Polish", "pt": "Portuguese", "ro": "Romanian", "ru": "Russian", "sk": "Slovak",
    "sl": "Slovenian", "sq": "Albanian", "sr": "Serbian", "sv": "Swedish", "sw": "Swahili",
    "ta": "Tamil", "th": "Thai", "tl": "Tagalog", "tr": "Turkish", "uk": "Ukrainian", "ur": "Urdu",
    "vi": "Vietnamese", "zh": "Chinese",
}  # fmt: skip

#: Output cap: tokens allowed per source character, plus a floor for very short inputs.
OUTPUT_TOKENS_PER_SOURCE_CHAR = 1.0
MIN_OUTPUT_TOKENS = 32

_PREAMBLE = re.compile(
    r"^\s*(?:(?:sure|certainly|of course|okay|ok)[!,.]?\s*)?"
    r"(?:here(?:'s| is) (?:the |a |my )?(?:\w+ )?translation[^:\n]*:|"
    r"(?:the )?(?:\w+ )?translation(?: (?:in|into|to) \w+)?\s*(?:is)?\s*:|"
    r"\w+ translation:)\s*",
    re.IGNORECASE,
)
_TRAILING_NOTE = re.compile(r"\n\s*(?:note|explanation|\(note)\b.*\Z", re.IGNORECASE | re.DOTALL)
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_QUOTE_PAIRS = (('"', '"'), ("'", "'"), ("“", "”"), ("«", "»"), ("„", "“"), ("‘", "’"), ("「", "」"))


def clean_translation(text: str, source: str = "") -> str:
    """The translation alone: no preamble, no trailing note, no surrounding quotes.

    Args:
        text: What the model answered.
        source: The text that was translated: paragraphs after a blank line are only dropped (as
            the model's commentary) when the source had none, and quotes only when it was not quoted.
    """
    text = _PREAMBLE.sub("", text.strip(), count=1)
    text = _TRAILING_NOTE.sub("", text).strip()
    if not _PARAGRAPH_BREAK.search(source):
        text = _PARAGRAPH_BREAK.split(text, maxsplit=1)[0].strip()
    source = source.strip()
    for opening, closing in _QUOTE_PAIRS:
        quoted_source = source.startswith(opening) and source.endswith(closing)
        if len(text) >= len(opening) + len(closing) and text.startswith(opening) and text.endswith(closing):
            if not quoted_source:
                text = text[len(opening) : -len(closing)].strip()
            break
    return text


@dataclass(frozen=True)
class LlmTranslatorOptions:
    """Options of :class:`LlmTranslator`.

    Attributes:
        system_prompt: The instruction; ``{source}`` and ``{target}`` become language names.
    """

    system_prompt: str = (
        "You are a translator. Translate the user's {source} text into {target}. "
        "Reply with the {target} translation only, without quotes, notes or explanations."
    )


class LlmTranslator:
    """A :class:`~openrealtime.contracts.Translator` that prompts a chat model.

    It supports every pair of distinct languages in :data:`LANGUAGE_NAMES`; whether the model really
    can translate them is the model's business. Thread safety is the chat model's.

    Args:
        model: Any chat model (llama.cpp in process, or an OpenAI-compatible endpoint).
        options: The prompt.
    """

    def __init__(self, model: ChatModel, options: LlmTranslatorOptions | None = None) -> None:
        self.model = model
        self.options = options or LlmTranslatorOptions()

    def supports(self, source: str, target: str) -> bool:
        """Whether both languages are known by name and differ."""
        source, target = _base(source), _base(target)
        return source != target and source in LANGUAGE_NAMES and target in LANGUAGE_NAMES

    def translate(self, text: str, *, source: str, target: str) -> str:
        """Translate ``text`` at temperature 0.

        Raises:
            EngineError: If the pair is not supported or the chat model fails.
        """
        if not self.supports(source, target):
            raise EngineError(f"no language names for {source}->{target}", code="unsupported_language_pair")
        if not text.strip():
            return ""
        names = {"source": LANGUAGE_NAMES[_base(source)], "target": LANGUAGE_NAMES[_base(target)]}
        request = ChatRequest(
            messages=[
                {"role": "system", "content": self.options.system_prompt.format(**names)},
                {"role": "user", "content": text.strip()},
            ],
            max_tokens=max(MIN_OUTPUT_TOKENS, round(len(text) * OUTPUT_TOKENS_PER_SOURCE_CHAR)),
            temperature=0.0,
        )
        pieces = [chunk.text for chunk in self.model.chat(request, threading.Event()) if isinstance(chunk, TextDelta)]
        return clean_translation("".join(pieces), text)


def _base(code: str) -> str:
    return re.split(r"[-_]", code.strip().lower(), maxsplit=1)[0]
