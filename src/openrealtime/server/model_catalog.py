"""``GET /v1/models``: the OpenAI model names this server answers to, in OpenAI's list shape.

Every name maps onto the configured engines: the realtime and translation names onto the realtime
sessions (any ``model`` opens one; these are the ones clients use), the transcription names
(:data:`~openrealtime.runtime.engines.OPENAI_TRANSCRIPTION_MODELS` and the ASR model's own name) onto
the speech recognizer, and the speech names onto the voices.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from openrealtime.runtime.engines import OPENAI_TRANSCRIPTION_MODELS

OWNER = "openrealtime"
REALTIME_MODELS = (
    "gpt-realtime",
    "gpt-realtime-2",
    "gpt-realtime-mini",
    "gpt-4o-realtime-preview",
    "gpt-4o-mini-realtime-preview",
    "gpt-realtime-translate",
)
SPEECH_MODELS = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts", "gpt-4o-mini-tts-2025-12-15")


@dataclass(frozen=True)
class ModelCatalog:
    """The names of one server, given its ASR model's name and when it started."""

    transcriber_name: str
    created_s: int

    def ids(self) -> list[str]:
        transcription = sorted(OPENAI_TRANSCRIPTION_MODELS | {self.transcriber_name})
        return [*REALTIME_MODELS, *transcription, *SPEECH_MODELS]

    def entry(self, model_id: str) -> dict[str, Any] | None:
        """One model object, or ``None`` for a name this server does not map."""
        if model_id not in self.ids():
            return None
        return {"id": model_id, "object": "model", "created": self.created_s, "owned_by": OWNER}

    def listing(self) -> dict[str, Any]:
        """The body of ``GET /v1/models``."""
        return {"object": "list", "data": [self.entry(model_id) for model_id in self.ids()]}
