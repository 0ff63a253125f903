"""Input audio faster than real time is bulk work (issue 10, flood B)."""

from __future__ import annotations

from openrealtime.runtime.input_pace import BULK_LEAD_S, InputPace


def test_audio_at_real_time_is_never_bulk() -> None:
    pace = InputPace()
    for step in range(600):  # a minute of 100 ms chunks, each on time
        pace.received(0.1, step * 0.1)
        assert not pace.bulk(step * 0.1)


def test_a_whole_question_sent_at_once_is_not_bulk_but_a_flood_is() -> None:
    pace = InputPace()
    pace.received(4.0, 0.0)  # a 4 s clip in one append
    assert not pace.bulk(0.0)
    flood = InputPace()
    for step in range(20):  # ten times real time: 1 s of audio every 0.1 s
        flood.received(1.0, step * 0.1)
    assert flood.bulk(2.0)


def test_the_lead_drains_at_real_time_once_the_flood_stops() -> None:
    pace = InputPace()
    pace.received(BULK_LEAD_S + 3.0, 0.0)
    assert pace.bulk(0.0)
    assert pace.bulk(2.9)
    assert not pace.bulk(3.1)  # three seconds later it is back within the bound
    pace.received(0.1, 3.1)
    assert not pace.bulk(3.1)
