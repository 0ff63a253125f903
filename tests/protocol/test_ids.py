"""Random ids: OpenAI's shape, every base62 character possible, one read of the random source per id."""

from __future__ import annotations

import os
import re
from collections import Counter

import pytest

from openrealtime.protocol import ids as ids_module
from openrealtime.protocol.codec import new_event_id
from openrealtime.protocol.ids import BASE62, random_base62
from openrealtime.session.ids import Ids


def test_ids_have_openais_shape_and_do_not_repeat() -> None:
    made = {Ids().new("item") for _ in range(2000)} | {new_event_id() for _ in range(2000)}
    assert len(made) == 4000
    assert all(re.fullmatch(r"(item_[A-Za-z0-9]{20}|event_[A-Za-z0-9]{21})", i) for i in made)


def test_every_character_comes_about_equally_often() -> None:
    counts = Counter("".join(random_base62(50) for _ in range(2000)))  # 100,000 characters
    assert set(counts) == set(BASE62)
    expected = 100_000 / len(BASE62)
    assert all(0.8 * expected < n < 1.2 * expected for n in counts.values())  # bias would show (248 of 256)


def test_one_read_of_the_random_source_per_id(monkeypatch: pytest.MonkeyPatch) -> None:
    reads = 0
    system = os.urandom

    def urandom(n: int) -> bytes:
        nonlocal reads
        reads += 1
        return system(n)

    monkeypatch.setattr(ids_module.os, "urandom", urandom)
    for _ in range(100):
        random_base62(21)
    assert reads < 110  # a read short of 21 accepted bytes is rare


def test_rejected_bytes_are_skipped_not_folded(monkeypatch: pytest.MonkeyPatch) -> None:
    feed = iter([bytes([255, 250, 248, 0, 61, 62]), bytes([1] * 10)])
    monkeypatch.setattr(ids_module.os, "urandom", lambda n: next(feed))
    assert random_base62(4) == BASE62[0] + BASE62[61] + BASE62[0] + BASE62[1]
