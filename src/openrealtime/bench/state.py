"""``openrealtime bench state``: what keeping a session resumable costs per event.

Drives a :class:`~openrealtime.state.recorder.Recorder` with the server events of a spoken
conversation (per turn: the user's item added, its transcript, the answer's item added, one
transcript delta per word, the answer done), over a real :class:`~openrealtime.session.conversation.Conversation`,
with no server, socket or engine in the way. Two costs, each timed with ``time.perf_counter()``:

* **observe**: :meth:`Recorder.observe` on every event (on the session loop, in the event's path);
* **write**: one :meth:`Recorder.commit` after each event (the worst case: the live recorder
  writes once for however many events came between two of its turns), which reads the changed items
  from the conversation, serializes them and hands them to the store: the memory store
  (``memory://``, the default) or a Redis (``--url redis://host:port/db``, a round trip each).

The conversation grows turn by turn (``--turns``), so the write of an added item, which rewrites the
order of all items, is measured at the sizes a long session reaches. At the end, the time to resume
it: reading the whole session back from the store, and putting its items into a new conversation
(the server's part of a resume, without the socket and the connect).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from openrealtime.protocol import server_events as se
from openrealtime.session.conversation import Conversation, Entry
from openrealtime.session.ids import Ids
from openrealtime.state.recorder import Recorder
from openrealtime.state.restore import restore_into
from openrealtime.state.store import StateStore, StoreUnavailable, check_store, open_store

DEFAULT_TURNS = 200
ANSWER = "Paris is the capital of France, and it sits on the river Seine in the north of the country."
QUESTION = "What is the capital of France?"
GRACE_S = 900.0
RESUME_RUNS = 20


@dataclass
class _Info:
    session_id: str


class _Session:
    """What the recorder reads of a realtime session: its id, conversation and conversation id."""

    def __init__(self) -> None:
        self.info = _Info(Ids().new("sess"))
        self.conversation = Conversation()
        self.conversation_id = "conv_bench"


@dataclass(frozen=True)
class StateBench:
    store: str
    turns: int
    events: int
    observe_us_mean: float
    observe_us_p99: float
    write_us_mean: float
    write_us_p50: float
    write_us_p99: float
    write_us_last_turn: float  # the mean write of the last turn, the conversation at its largest
    resume_load_ms: float  # reading the whole session back from the store, at its largest
    resume_restore_ms: float  # putting its items back into a new conversation
    writes: int
    failures: int


def _turn(session: _Session, ids: Ids) -> list[tuple[se.ServerEvent, Any]]:
    """One spoken turn's events, each with the change to the conversation made before it is sent."""
    user = Entry({"id": ids.new("item"), "type": "message", "role": "user", "status": "completed",
                  "content": [{"type": "input_audio", "transcript": None}]})  # fmt: skip
    answer = Entry({"id": ids.new("item"), "type": "message", "role": "assistant", "status": "in_progress",
                    "content": [{"type": "output_audio", "transcript": ""}]})  # fmt: skip
    conv = session.conversation

    def add(entry: Entry) -> None:
        conv.add(entry)

    def transcribed() -> None:
        user.item["content"][0]["transcript"] = QUESTION

    def done() -> None:
        answer.item["status"] = "completed"
        answer.item["content"][0]["transcript"] = ANSWER

    events: list[tuple[se.ServerEvent, Any]] = [
        (se.ItemAdded(previous_item_id=conv.last_id, item=user.item), lambda: add(user)),
        (
            se.TranscriptionCompleted(item_id=user.id, transcript=QUESTION, usage={"type": "duration", "seconds": 2}),
            transcribed,
        ),
        (se.ItemAdded(previous_item_id=user.id, item=answer.item), lambda: add(answer)),
    ]
    for i, word in enumerate(ANSWER.split()):
        delta = se.OutputAudioTranscriptDelta(
            response_id="resp_bench", item_id=answer.id, output_index=0, content_index=0,
            delta=word if i == 0 else " " + word,
        )  # fmt: skip
        events.append((delta, None))
    events.append((se.ItemDone(previous_item_id=user.id, item=answer.item), done))
    return events


async def measure(*, turns: int = DEFAULT_TURNS, url: str | None = None) -> StateBench:
    """Time the recorder over ``turns`` turns against the store ``url`` names (memory by default)."""
    store = open_store(url)
    await check_store(store)
    session = _Session()
    recorder = Recorder(session, "realtime", store, GRACE_S)
    ids = Ids()
    observe: list[float] = []
    writes: list[float] = []
    last_turn: list[float] = []
    created = se.SessionCreated(session={"type": "realtime", "id": session.info.session_id, "instructions": "Hi."})
    recorder.observe(created)
    await recorder.commit()
    try:
        for turn in range(turns):
            for event, change in _turn(session, ids):
                if change is not None:
                    change()
                started = time.perf_counter()
                recorder.observe(event)
                observe.append(time.perf_counter() - started)
                started = time.perf_counter()
                await recorder.commit()
                writes.append(time.perf_counter() - started)
                if turn == turns - 1:
                    last_turn.append(writes[-1])
        load_ms, restore_ms = await _resume_cost(store, session.info.session_id)
    finally:
        await store.delete(session.info.session_id)
        await store.close()
    us = 1e6
    return StateBench(
        store=(url or "memory://").split("@")[-1],
        turns=turns,
        events=len(observe),
        observe_us_mean=statistics.fmean(observe) * us,
        observe_us_p99=_p99(observe) * us,
        write_us_mean=statistics.fmean(writes) * us,
        write_us_p50=statistics.median(writes) * us,
        write_us_p99=_p99(writes) * us,
        write_us_last_turn=statistics.fmean(last_turn) * us,
        resume_load_ms=load_ms,
        resume_restore_ms=restore_ms,
        writes=recorder.writes,
        failures=recorder.failures,
    )


async def _resume_cost(store: StateStore, session_id: str) -> tuple[float, float]:
    """The median of ``RESUME_RUNS`` reads of the whole session and of its restores, in ms."""
    loads: list[float] = []
    restores: list[float] = []
    for _ in range(RESUME_RUNS):
        started = time.perf_counter()
        state = await store.load(session_id)
        loads.append(time.perf_counter() - started)
        assert state is not None, "the session written was not read back"
        started = time.perf_counter()
        restore_into(_Session(), state)
        restores.append(time.perf_counter() - started)
    return statistics.median(loads) * 1000, statistics.median(restores) * 1000


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def run_state_bench(*, url: str | None, out_dir: Path | None, turns: int | None = None) -> int:
    """The ``bench state`` command: prints the costs, and writes ``results.json`` to ``out_dir``."""
    try:
        result = asyncio.run(measure(turns=turns or DEFAULT_TURNS, url=url))
    except (OSError, ConnectionError, StoreUnavailable) as exc:
        print(f"bench state: the store at {url} does not answer: {exc}", file=sys.stderr)
        return 2
    print(
        f"bench state ({result.store}): {result.turns} turns, {result.events} events\n"
        f"  observe per event: mean {result.observe_us_mean:.1f} us, p99 {result.observe_us_p99:.1f} us\n"
        f"  write per event:   mean {result.write_us_mean:.1f} us, p50 {result.write_us_p50:.1f} us, "
        f"p99 {result.write_us_p99:.1f} us; last turn ({2 * result.turns} items) {result.write_us_last_turn:.1f} us\n"
        f"  resume: read {result.resume_load_ms:.2f} ms, restore {result.resume_restore_ms:.2f} ms "
        f"(median of {RESUME_RUNS})\n"
        f"  writes {result.writes}, failed {result.failures}"
    )
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "results.json").write_text(json.dumps(asdict(result), indent=2) + "\n")
    return 1 if result.failures else 0
