"""What a store holds of a session, and how it is written: JSON text and PCM16 bytes only, so the
memory store and Redis keep exactly the same thing.

A session's state is four parts, each written on its own as it changes (a store never rewrites a
whole conversation for one changed item):

- ``meta``: the session's kind, its config (the session object last echoed by ``session.created``
  or ``session.updated``) and its conversation id;
- ``order``: the ids of its conversation items, in order;
- ``items``: each item as ``conversation.item.retrieve`` returns it, plus what the model needs of it
  (the length of its audio, its spoken clauses, the words heard of a truncated answer);
- ``audio``: the user turns' audio, PCM16 at 16 kHz, bounded as the live session bounds it
  (``RETRIEVABLE_AUDIO_S`` in all), so ``conversation.item.retrieve`` of a spoken turn still
  returns it after a resume.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from openrealtime.audio.types import Samples

PCM16_SCALE = 32767.0


@dataclass(frozen=True)
class ItemRecord:
    """One conversation item with what the model needs of it (``session.conversation.Entry``)."""

    item: dict[str, Any]
    audio_ms: int = 0
    clauses: tuple[tuple[str, int, int], ...] = ()
    heard_text: str | None = None

    def dumps(self) -> str:
        return json.dumps(
            {
                "item": self.item,
                "audio_ms": self.audio_ms,
                "clauses": [list(c) for c in self.clauses],
                "heard_text": self.heard_text,
            },
            separators=(",", ":"),
        )

    @classmethod
    def loads(cls, text: str | bytes) -> ItemRecord:
        raw = json.loads(text)
        clauses = tuple((str(t), int(s), int(e)) for t, s, e in raw.get("clauses") or [])
        return cls(raw["item"], int(raw.get("audio_ms") or 0), clauses, raw.get("heard_text"))


@dataclass(frozen=True)
class Meta:
    """The session's kind, config and conversation id."""

    kind: str
    config: dict[str, Any]
    conversation_id: str | None = None

    def dumps(self) -> str:
        body = {"kind": self.kind, "config": self.config, "conversation_id": self.conversation_id}
        return json.dumps(body, separators=(",", ":"))

    @classmethod
    def loads(cls, text: str | bytes) -> Meta:
        raw = json.loads(text)
        return cls(str(raw["kind"]), dict(raw["config"]), raw.get("conversation_id"))


@dataclass
class StateChange:
    """What changed since the last write: each part only if it did."""

    meta: str | None = None
    order: str | None = None
    items: dict[str, str] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)
    audio: dict[str, bytes] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.meta or self.order is not None or self.items or self.removed or self.audio)


@dataclass(frozen=True)
class SessionState:
    """A stored session, as a resume reads it back."""

    session_id: str
    meta: Meta
    order: tuple[str, ...]
    items: dict[str, ItemRecord]
    audio: dict[str, Samples]

    def ordered(self) -> list[ItemRecord]:
        """The items in conversation order (an id whose record is missing is skipped)."""
        return [self.items[i] for i in self.order if i in self.items]

    @classmethod
    def decode(
        cls,
        session_id: str,
        meta: str | bytes,
        order: str | bytes | None,
        items: dict[str, str | bytes],
        audio: dict[str, bytes],
    ) -> SessionState:
        ids = tuple(str(i) for i in json.loads(order)) if order else ()
        return cls(
            session_id,
            Meta.loads(meta),
            ids,
            {str(k): ItemRecord.loads(v) for k, v in items.items()},
            {str(k): pcm16_samples(v) for k, v in audio.items()},
        )


def dump_order(ids: list[str]) -> str:
    return json.dumps(ids, separators=(",", ":"))


def samples_pcm16(samples: Samples) -> bytes:
    """Float samples in [-1, 1] as little-endian PCM16."""
    clipped = np.clip(samples, -1.0, 1.0) * PCM16_SCALE
    return clipped.astype("<i2").tobytes()


def pcm16_samples(data: bytes) -> Samples:
    """Little-endian PCM16 as float32 samples."""
    return (np.frombuffer(data, dtype="<i2").astype(np.float32) / PCM16_SCALE).astype(np.float32)
