"""SampleBuffer: absolute offsets, dropping from the front, the hard cap, growth, views and copies."""

from __future__ import annotations

import numpy as np
import pytest

from openrealtime.audio.buffer import BufferFullError, SampleBuffer


def ramp(start: int, stop: int) -> np.ndarray:
    """Samples whose value is their absolute index, so any misplaced sample shows."""
    return np.arange(start, stop, dtype=np.float32)


def filled(n: int, *, max_samples: int = 1_000_000, chunk: int = 1_000) -> SampleBuffer:
    buffer = SampleBuffer(max_samples)
    for start in range(0, n, chunk):
        buffer.append(ramp(start, min(start + chunk, n)))
    return buffer


def test_a_new_buffer_is_empty_at_zero() -> None:
    buffer = SampleBuffer(100)
    assert (buffer.start, buffer.end, len(buffer)) == (0, 0, 0)
    assert buffer.view().size == 0
    assert buffer.view().dtype == np.float32


def test_appends_advance_end_and_keep_order() -> None:
    buffer = SampleBuffer(100)
    buffer.append(ramp(0, 3))
    buffer.append(ramp(3, 3))  # empty append changes nothing
    buffer.append(ramp(3, 10))
    assert (buffer.start, buffer.end, len(buffer)) == (0, 10, 10)
    assert buffer.view().tolist() == list(range(10))


def test_view_addresses_samples_by_absolute_index() -> None:
    buffer = filled(50)
    assert buffer.view(10, 13).tolist() == [10, 11, 12]
    assert buffer.view(45).tolist() == [45, 46, 47, 48, 49]
    assert buffer.view(end=2).tolist() == [0, 1]


def test_drop_before_keeps_absolute_indices() -> None:
    buffer = filled(50)
    buffer.drop_before(20)
    assert (buffer.start, buffer.end, len(buffer)) == (20, 50, 30)
    assert buffer.view(20, 23).tolist() == [20, 21, 22]
    assert buffer.view().tolist() == list(range(20, 50))
    buffer.append(ramp(50, 55))
    assert buffer.end == 55
    assert buffer.view(48, 55).tolist() == list(range(48, 55))
    buffer.drop_before(54)
    assert buffer.view().tolist() == [54]


def test_view_clamps_to_what_is_held() -> None:
    buffer = filled(50)
    buffer.drop_before(20)
    assert buffer.view(0, 22).tolist() == [20, 21]  # before start: clamped
    assert buffer.view(48, 1_000).tolist() == [48, 49]  # past end: clamped
    assert buffer.view(0, 10).size == 0  # entirely dropped
    assert buffer.view(60, 70).size == 0  # entirely in the future
    assert buffer.view(30, 25).size == 0  # reversed


def test_drop_before_clamps_and_never_goes_backwards() -> None:
    buffer = filled(50)
    buffer.drop_before(30)
    buffer.drop_before(10)  # before start: nothing happens
    assert (buffer.start, len(buffer)) == (30, 20)
    buffer.drop_before(1_000)  # past end: drops everything, no further
    assert (buffer.start, buffer.end, len(buffer)) == (50, 50, 0)


def test_clear_keeps_counting_from_end() -> None:
    buffer = filled(50)
    buffer.clear()
    assert (buffer.start, buffer.end, len(buffer)) == (50, 50, 0)
    buffer.append(ramp(50, 53))
    assert buffer.view(50, 53).tolist() == [50, 51, 52]


def test_cap_raises_buffer_full_and_changes_nothing() -> None:
    buffer = SampleBuffer(10)
    buffer.append(ramp(0, 8))
    with pytest.raises(BufferFullError, match="cap is 10"):
        buffer.append(ramp(8, 11))
    assert (buffer.end, len(buffer)) == (8, 8)
    assert buffer.view().tolist() == list(range(8))
    buffer.append(ramp(8, 10))  # exactly up to the cap is fine
    assert len(buffer) == 10
    with pytest.raises(BufferFullError):
        buffer.append(ramp(10, 11))


def test_cap_counts_samples_held_not_samples_ever_appended() -> None:
    buffer = SampleBuffer(10)
    for start in range(0, 100, 5):
        buffer.append(ramp(start, start + 5))
        buffer.drop_before(buffer.end - 5)
    assert (buffer.start, buffer.end) == (95, 100)
    assert buffer.view().tolist() == list(range(95, 100))


def test_growth_past_initial_capacity_preserves_data() -> None:
    n = 100_000  # several doublings past the initial allocation
    buffer = filled(n, chunk=777)
    assert len(buffer) == n
    np.testing.assert_array_equal(buffer.view(), ramp(0, n))


def test_growth_stops_at_the_cap() -> None:
    buffer = SampleBuffer(20_000)
    buffer.append(ramp(0, 17_000))  # doubling would want 32 000; the cap allows 20 000
    buffer.append(ramp(17_000, 20_000))
    np.testing.assert_array_equal(buffer.view(), ramp(0, 20_000))
    with pytest.raises(BufferFullError):
        buffer.append(ramp(20_000, 20_001))


def test_one_append_larger_than_the_initial_capacity() -> None:
    buffer = SampleBuffer(1_000_000)
    buffer.append(ramp(0, 200_000))
    buffer.append(ramp(200_000, 200_001))
    np.testing.assert_array_equal(buffer.view(), ramp(0, 200_001))


def test_growth_after_a_drop_preserves_data() -> None:
    buffer = filled(10_000)
    buffer.drop_before(9_000)
    buffer.append(ramp(10_000, 60_000))
    assert (buffer.start, buffer.end) == (9_000, 60_000)
    np.testing.assert_array_equal(buffer.view(), ramp(9_000, 60_000))


def test_view_shares_memory_copy_does_not() -> None:
    buffer = filled(100)
    view = buffer.view(10, 20)
    copy = buffer.copy(10, 20)
    assert np.shares_memory(view, buffer.view())
    assert not np.shares_memory(copy, buffer.view())
    assert copy.dtype == np.float32
    np.testing.assert_array_equal(view, copy)


def test_a_copy_stays_valid_after_drops_and_appends() -> None:
    buffer = filled(100)
    copy = buffer.copy(40, 50)
    view = buffer.view(40, 50)
    buffer.drop_before(45)  # moves the rest to the front, under the old view
    buffer.append(ramp(100, 50_000))  # and grows into a new array
    assert copy.tolist() == list(range(40, 50))
    assert view.tolist() != list(range(40, 50))  # a view is only valid until the next drop
    assert buffer.copy(45, 50).tolist() == list(range(45, 50))


def test_appending_copies_the_callers_samples() -> None:
    buffer = SampleBuffer(100)
    chunk = ramp(0, 5)
    buffer.append(chunk)
    chunk[:] = -1
    assert buffer.view().tolist() == [0, 1, 2, 3, 4]


def test_a_zero_cap_buffer_holds_nothing() -> None:
    buffer = SampleBuffer(0)
    buffer.append(ramp(0, 0))
    with pytest.raises(BufferFullError):
        buffer.append(ramp(0, 1))
