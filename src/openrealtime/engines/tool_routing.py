"""Which tool a request needs, by the words it shares with each tool (pure).

This module owns :func:`lexical_scores`: the content words of the last user message (English
function words, politeness and generic verbs left out, crude suffixes stemmed) counted in each
tool's name, description and parameter schema; and :func:`choice_grammar`, the GBNF grammar that
lets a model pick only among given words when the words do not decide.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from openrealtime.contracts import ToolSpec
from openrealtime.engines.chat_prompts import text_of

# Words that say nothing about which tool is meant: English function words, politeness, and the
# generic verbs that tool names start with (``get_``, ``set_``).
_STOPWORDS = frozenset((
    "a", "an", "the", "and", "or", "but", "if", "then", "than", "so", "to", "of", "in", "on", "at", "by",
    "for", "from", "with", "about", "into", "over", "as", "is", "are", "was", "were", "be", "been",
    "being", "am", "do", "does", "did", "have", "has", "had", "can", "could", "will", "would", "shall",
    "should", "may", "might", "must", "i", "me", "my", "mine", "we", "us", "our", "you", "your", "yours",
    "he", "him", "his", "she", "her", "it", "its", "they", "them", "their", "this", "that", "these",
    "those", "what", "which", "who", "whom", "whose", "when", "where", "why", "how", "please", "thanks",
    "thank", "hi", "hello", "hey", "ok", "okay", "yes", "no", "not", "just", "now", "today", "tell",
    "say", "give", "get", "set", "make", "let", "some", "any", "all", "there", "here", "want", "need",
    "like", "know",
))  # fmt: skip
_WORD = re.compile(r"[^\W_]+")
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z])(?=[A-Z])")
_MIN_STEM_CHARS = 3
_SUFFIXES = ("ing", "ed", "es", "s")


def _stem(word: str) -> str:
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= _MIN_STEM_CHARS:
            return word[: -len(suffix)]
    return word


def _content_words(text: str) -> set[str]:
    words = _WORD.findall(_CAMEL_BOUNDARY.sub(" ", text).lower())
    return {_stem(word) for word in words if len(word) > 1 and word not in _STOPWORDS}


def _schema_text(schema: Any) -> str:
    """Property names, descriptions and enum values of a JSON Schema, as one string."""
    if isinstance(schema, Mapping):
        parts = [str(schema.get("description", "")), str(schema.get("title", ""))]
        parts += [str(value) for value in schema.get("enum", ()) if isinstance(value, str)]
        for name, sub in (schema.get("properties") or {}).items():
            parts += [str(name), _schema_text(sub)]
        parts.append(_schema_text(schema.get("items")))
        return " ".join(part for part in parts if part)
    return ""


def lexical_scores(messages: Sequence[Mapping[str, Any]], tools: Sequence[ToolSpec]) -> list[int]:
    """For each tool, how many content words of the last user message its name and schema contain."""
    last = next((m for m in reversed(messages) if m.get("role") == "user"), None)
    asked = _content_words(text_of(last.get("content"))) if last is not None else set()
    scores = []
    for tool in tools:
        vocabulary = _content_words(
            " ".join((tool.name.replace("_", " "), tool.description, _schema_text(tool.parameters)))
        )
        scores.append(len(asked & vocabulary))
    return scores


def choice_grammar(choices: Sequence[str]) -> str:
    """A GBNF grammar whose only sentences are the given words."""
    return "root ::= " + " | ".join(json.dumps(choice) for choice in choices) + "\n"
