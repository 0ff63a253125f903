"""The recorder writes what the events say changed, and a restore puts it back as it was."""

from __future__ import annotations

import asyncio
import json

import numpy as np

from openrealtime.bench.state import measure
from openrealtime.protocol import server_events as se
from openrealtime.session.conversation import Conversation, Entry, SpokenClause
from openrealtime.session.items import RecentAudio
from openrealtime.state.recorder import Recorder
from openrealtime.state.restore import restore_into
from openrealtime.state.store import MemoryStateStore


class Info:
    session_id = "sess_rec"


class FakeSession:
    """The parts of a realtime session the recorder reads and a restore fills."""

    def __init__(self) -> None:
        self.info = Info()
        self.conversation = Conversation()
        self.conversation_id = "conv_1"
        self._recent_audio = RecentAudio()


def user(item_id: str, text: str) -> Entry:
    return Entry({"id": item_id, "type": "message", "role": "user", "status": "completed",
                  "content": [{"type": "input_audio", "transcript": text}]})  # fmt: skip


def delta(item_id: str, text: str) -> se.OutputAudioTranscriptDelta:
    return se.OutputAudioTranscriptDelta(
        response_id="resp_1", item_id=item_id, output_index=0, content_index=0, delta=text
    )


async def test_only_what_changed_is_written_and_an_answer_keeps_its_sent_text() -> None:
    session, store = FakeSession(), MemoryStateStore()
    recorder = Recorder(session, "realtime", store, 60)
    recorder.observe(se.SessionCreated(session={"type": "realtime", "id": "sess_rec", "instructions": "Hi."}))
    turn = user("item_u", "hello")
    session.conversation.add(turn)
    session._recent_audio.keep("item_u", np.full(1600, 0.25, dtype=np.float32))
    recorder.observe(se.ItemAdded(previous_item_id=None, item=turn.item))
    answer = Entry({"id": "item_a", "type": "message", "role": "assistant", "status": "in_progress",
                    "content": [{"type": "output_audio", "transcript": ""}]})  # fmt: skip
    session.conversation.add(answer)
    recorder.observe(se.ItemAdded(previous_item_id="item_u", item=answer.item))
    recorder.observe(delta("item_a", "Hello"))
    recorder.observe(delta("item_a", " there"))
    change = recorder.change()
    assert change.meta is not None
    assert json.loads(change.meta)["config"]["instructions"] == "Hi."
    assert json.loads(change.order or "") == ["item_u", "item_a"]
    assert set(change.items) == {"item_u", "item_a"}
    assert json.loads(change.items["item_a"])["item"]["content"][0]["transcript"] == "Hello there"
    assert set(change.audio) == {"item_u"}
    await store.save("sess_rec", change, 60)
    assert not recorder.change()  # nothing new: an empty write only extends the state's life

    recorder.observe(se.ItemDeleted(item_id="item_u"))
    session.conversation.delete("item_u")
    change = recorder.change()
    assert change.removed == ["item_u"]
    assert json.loads(change.order or "") == ["item_a"]
    await store.save("sess_rec", change, 60)

    state = await store.load("sess_rec")
    assert state is not None
    again = FakeSession()
    restore_into(again, state)
    (entry,) = list(again.conversation)
    assert entry.item["status"] == "incomplete"  # cut off by the loss
    assert entry.item["content"][0]["transcript"] == "Hello there"
    assert again.conversation_id == "conv_1"


async def test_a_restore_keeps_what_the_model_needs_and_the_turns_audio() -> None:
    session, store = FakeSession(), MemoryStateStore()
    recorder = Recorder(session, "realtime", store, 60)
    recorder.observe(se.SessionCreated(session={"type": "realtime", "id": "sess_rec"}))
    turn = user("item_u", "hi")
    spoken = Entry({"id": "item_a", "type": "message", "role": "assistant", "status": "completed",
                    "content": [{"type": "output_audio", "transcript": "one two"}]},
                   audio_ms=800, clauses=[SpokenClause("one two", 0, 800)], heard_text="one")  # fmt: skip
    for entry in (turn, spoken):
        session.conversation.add(entry)
        recorder.observe(se.ItemAdded(previous_item_id=None, item=entry.item))
    session._recent_audio.keep("item_u", np.full(1600, 0.25, dtype=np.float32))
    await recorder.close()
    state = await store.load("sess_rec")
    assert state is not None
    again = FakeSession()
    restore_into(again, state)
    restored = again.conversation.get("item_a")
    assert restored is not None
    assert (restored.audio_ms, restored.heard_text) == (800, "one")
    assert restored.clauses == [SpokenClause("one two", 0, 800)]
    audio = again._recent_audio.samples("item_u")
    assert audio is not None
    assert np.allclose(audio, 0.25, atol=1e-4)


async def test_a_burst_of_items_is_written_a_few_times_not_once_per_step_and_nothing_is_lost() -> None:
    session, store = FakeSession(), MemoryStateStore()
    recorder = Recorder(session, "realtime", store, 60)
    recorder.observe(se.SessionCreated(session={"type": "realtime", "id": "sess_rec"}))
    recorder.start()
    previous = None
    for k in range(200):  # a burst: one item per step of the session loop
        entry = user(f"item_{k}", f"message {k}")
        session.conversation.add(entry)
        recorder.observe(se.ItemAdded(previous_item_id=previous, item=entry.item))
        previous = entry.id
        await asyncio.sleep(0)
    await asyncio.sleep(0.01)
    assert 1 <= recorder.writes <= 3  # once per WRITE_INTERVAL_S, not 200 times
    await recorder.close()
    state = await store.load("sess_rec")
    assert state is not None
    restored = FakeSession()
    restore_into(restored, state)
    assert [entry.id for entry in restored.conversation] == [f"item_{k}" for k in range(200)]


async def test_a_failing_store_is_counted_and_the_session_goes_on() -> None:
    class Broken(MemoryStateStore):
        async def save(self, *args: object, **kwargs: object) -> None:
            raise ConnectionError("down")

    recorder = Recorder(FakeSession(), "realtime", Broken(), 60)
    recorder.observe(se.SessionCreated(session={"type": "realtime"}))
    await recorder.commit()
    assert (recorder.writes, recorder.failures) == (0, 1)


async def test_the_bench_command_measures_memory_and_redis(redis_url: str) -> None:
    for url in (None, redis_url):
        result = await measure(turns=3, url=url)
        assert result.events == 3 * 23
        assert result.failures == 0
        assert result.write_us_mean > 0
        assert result.resume_load_ms > 0
        assert result.resume_restore_ms > 0


async def test_a_big_write_hands_the_event_loop_back_between_steps_and_loses_nothing() -> None:
    """A write after a burst reads its items a few dozen per turn of the event loop (issue 10: read at
    once they held ``/healthz`` 15-50 ms); an item deleted while it is written is not resurrected."""
    session, store = FakeSession(), MemoryStateStore()
    recorder = Recorder(session, "realtime", store, 60)
    recorder.observe(se.SessionCreated(session={"type": "realtime", "id": "sess_rec"}))
    ids = [f"item_{k}" for k in range(200)]
    for item_id in ids:
        session.conversation.add(user(item_id, "burst"))
        recorder.observe(se.ItemAdded(previous_item_id=None, item={"id": item_id}))
    turns = 0

    async def count_turns() -> None:
        nonlocal turns
        while True:
            turns += 1
            if turns == 2:  # mid-write
                session.conversation.delete("item_199")
                recorder.observe(se.ItemDeleted(item_id="item_199"))
            await asyncio.sleep(0)

    counter = asyncio.create_task(count_turns())
    await asyncio.sleep(0)
    await recorder.commit()
    counter.cancel()
    assert turns >= 200 // 32  # the loop turned at least once per step
    await recorder.commit()  # the deletion's own write
    state = await store.load("sess_rec")
    assert state is not None
    assert sorted(state.items) == sorted(ids[:-1])
    assert list(state.order) == ids[:-1]
