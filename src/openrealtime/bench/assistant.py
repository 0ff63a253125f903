"""``openrealtime bench assistant``: voice-assistant response latency and barge-in cancel time.

One realtime session (this server, started here, or ``--url``) is driven by the assistant client
(:class:`~openrealtime.client.assistant.Assistant`) exactly as a user would: a simulated microphone
streams 20 ms chunks at real-time pace, silence between turns included, from its own task while the
client's reader handles the server's events and plays each answer at real-time pace
(:class:`~openrealtime.client.playback.ClockPlayer`). The next question is asked once the answer has
been heard. Reported, p50 and p90 over the turns:

* **speech_stopped to first audio**: ``input_audio_buffer.speech_stopped`` to the first
  ``response.output_audio.delta`` of the response that answers the turn (target: p50 under 0.8 s);
* **end of speech to first audio**: from the moment the microphone chunk holding the last speech
  sample of the question was sent (known from the audio sent, not from the server) to that delta;
  this includes the VAD's silence wait.

Then a few **barge-in** trials, each on a fresh session (the stories of earlier trials would make the
small model's answers shorter): a question with a long answer; when its first audio arrives the
microphone starts speaking; the time from sending the first chunk of that speech to ``response.done``
with ``status: cancelled`` (and, inside that, from ``speech_started`` to ``response.done``).
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from openrealtime.audio.codec import float_to_pcm16
from openrealtime.audio.types import Samples
from openrealtime.bench.report import Plots, Series, Stages, distribution, percentile, progress, write_results
from openrealtime.bench.speech import WIRE_RATE_HZ, silence, speak
from openrealtime.bench.target import server_target
from openrealtime.client.assistant import Assistant
from openrealtime.client.assistant_config import AssistantOptions
from openrealtime.client.playback import MS_PER_S, ClockPlayer

MIN_TURNS = 20  # the minimum; ``--turns`` can only raise it
MIC_CHUNK_MS = 20  # a typical microphone frame
GAP_MS = 800  # silence after an answer has been heard, before the next question
TURN_TIMEOUT_S = 60.0
BARGE_IN_TRIALS = 5
SPEECH_FLOOR = 0.01  # |sample| above this counts as speech when finding where a clip's words end
TARGET_STOPPED_TO_AUDIO_P50_S = 0.8
REALTIME_PATH = "/v1/realtime?model=gpt-realtime"
TRANSCRIPTION_MODEL = "gpt-4o-transcribe"
REPORTED_QUANTILES = (50, 90)  # the assistant targets are p50 and p90

QUESTIONS = (
    "What is the capital of France?",
    "How many days are in a week?",
    "What color is the sky on a clear day?",
    "Who wrote Romeo and Juliet?",
    "What is two plus two?",
    "What is the largest planet in our solar system?",
    "How many legs does a spider have?",
    "What language is spoken in Spain?",
    "At what temperature does water boil?",
    "Which ocean is the largest?",
    "What do bees make?",
    "What is the capital of Japan?",
    "How many hours are in a day?",
    "What is the opposite of hot?",
    "Which animal is called the king of the jungle?",
    "What is bread made from?",
    "How many continents are there?",
    "What is the freezing point of water?",
    "Which gas do plants take in from the air?",
    "What is the capital of Italy?",
)
LONG_ANSWER_INSTRUCTIONS = (
    "You are a storyteller. Whatever you are asked, answer with a long story of at least ten sentences."
)
LONG_QUESTION = "Tell me a long story about a brave little dragon."
INTERRUPTION = "Hold on a moment please."


@dataclass
class Spoken:
    """When a clip went out: the first chunk, the chunk with its last speech sample, the last chunk
    (loop clock, seconds, taken when each send returned)."""

    first_at_s: float = 0.0
    speech_end_at_s: float = 0.0
    last_at_s: float = 0.0


@dataclass
class _Clip:
    samples: Samples
    speech_end: int  # index of the last speech sample
    done: asyncio.Future[Spoken]
    spoken: Spoken = field(default_factory=Spoken)
    position: int = 0


class SimulatedMicrophone:
    """A microphone that says what it is told and is silent otherwise, paced by the loop clock.

    Each chunk is handed over when its last sample would have been captured, as a real device does.
    """

    def __init__(self, chunk_ms: int = MIC_CHUNK_MS) -> None:
        self.chunk_samples = WIRE_RATE_HZ * chunk_ms // MS_PER_S
        self._clips: deque[_Clip] = deque()
        self._stopped = False

    def say(self, samples: Samples) -> asyncio.Future[Spoken]:
        """Queue ``samples`` (float32, 24 kHz); the future resolves once the last chunk was sent."""
        loud = np.flatnonzero(np.abs(samples) > SPEECH_FLOOR)
        future: asyncio.Future[Spoken] = asyncio.get_running_loop().create_future()
        self._clips.append(_Clip(samples, int(loud[-1]) if loud.size else samples.size - 1, future))
        return future

    def stop(self) -> None:
        self._stopped = True

    async def chunks(self) -> AsyncIterator[bytes]:
        """The chunk stream (an async iterator of PCM16 bytes) for :meth:`Assistant.stream`."""
        loop = asyncio.get_running_loop()
        started, index = loop.time(), 0
        quiet = float_to_pcm16(np.zeros(self.chunk_samples, np.float32))
        while not self._stopped:
            index += 1
            due = started + index * self.chunk_samples / WIRE_RATE_HZ
            await asyncio.sleep(max(0.0, due - loop.time()))  # real-time pacing by the clock
            clip = self._clips[0] if self._clips else None
            if clip is None:
                yield quiet
                continue
            start = clip.position
            part = clip.samples[start : start + self.chunk_samples]
            if part.size < self.chunk_samples:
                part = np.concatenate([part, np.zeros(self.chunk_samples - part.size, np.float32)])
            clip.position += self.chunk_samples
            yield float_to_pcm16(part)
            now = loop.time()  # the consumer asked for the next chunk: this one has been sent
            if start == 0:
                clip.spoken.first_at_s = now
            if start <= clip.speech_end < start + self.chunk_samples:
                clip.spoken.speech_end_at_s = now
            if clip.position >= clip.samples.size:
                clip.spoken.last_at_s = now
                self._clips.popleft()
                if not clip.done.done():
                    clip.done.set_result(clip.spoken)


@dataclass
class EventLog:
    """Arrival times of the events the bench measures (audio payloads are not kept)."""

    stopped_at: dict[str, float] = field(default_factory=dict)
    started_at: list[float] = field(default_factory=list)
    response_item: dict[str, str | None] = field(default_factory=dict)  # response -> user item
    created_at: dict[str, float] = field(default_factory=dict)
    first_audio_at: dict[str, float] = field(default_factory=dict)
    done: dict[str, tuple[float, str, str | None]] = field(default_factory=dict)
    truncated_ms: list[int] = field(default_factory=list)
    last_committed: str | None = None

    def __call__(self, event: dict[str, Any], at_s: float) -> None:
        kind = event.get("type")
        if kind == "input_audio_buffer.speech_started":
            self.started_at.append(at_s)
        elif kind == "input_audio_buffer.speech_stopped":
            self.stopped_at[event["item_id"]] = at_s
        elif kind == "input_audio_buffer.committed":
            self.last_committed = event["item_id"]
        elif kind == "response.created":
            rid = event["response"]["id"]
            self.response_item[rid], self.created_at[rid] = self.last_committed, at_s
        elif kind == "response.output_audio.delta":
            self.first_audio_at.setdefault(event["response_id"], at_s)
        elif kind == "response.done":
            response = event["response"]
            reason = (response.get("status_details") or {}).get("reason")
            self.done[response["id"]] = (at_s, response["status"], reason)
        elif kind == "conversation.item.truncated":
            self.truncated_ms.append(event["audio_end_ms"])

    def responses_between(self, start_s: float, end_s: float) -> list[str]:
        return [r for r, t in self.created_at.items() if start_s <= t <= end_s]


@dataclass
class TurnTiming:
    """One question: what was heard and answered, and when its first answer audio arrived (seconds)
    after ``speech_stopped``, after the last speech chunk was sent, and after ``response.created``."""

    question: str
    heard: str
    answer: str
    stopped_to_first_audio_s: float | None
    speech_end_to_first_audio_s: float | None
    created_to_first_audio_s: float | None = None

    def stages(self) -> tuple[float, float, float] | None:
        """(end of speech → ``speech_stopped``, → ``response.created``, → first audio), when all known."""
        if (
            self.stopped_to_first_audio_s is None
            or self.speech_end_to_first_audio_s is None
            or self.created_to_first_audio_s is None
        ):
            return None
        return (
            self.speech_end_to_first_audio_s - self.stopped_to_first_audio_s,
            self.stopped_to_first_audio_s - self.created_to_first_audio_s,
            self.created_to_first_audio_s,
        )


@dataclass
class BargeIn:
    """One barge-in trial: the outcome of the interrupted response and how fast it was cancelled."""

    outcome: str  # the target response's status/reason, e.g. cancelled/turn_detected
    speech_to_cancel_s: float | None
    speech_started_to_cancel_s: float | None
    truncated_ms: int | None


async def _answered(assistant: Assistant, responses_before: int) -> None:
    """Wait until the turn's answer is complete and has been heard."""
    await assistant.wait_until(
        lambda: len(assistant.responses) > responses_before and assistant.idle(), timeout_s=TURN_TIMEOUT_S
    )
    await assistant.player.drained()


async def _ask(assistant: Assistant, mic: SimulatedMicrophone, log: EventLog, question: str) -> TurnTiming:
    loop = asyncio.get_running_loop()
    before, items_before = len(assistant.responses), {i.id for i in assistant.history.items()}
    window_start = loop.time()
    spoken = await mic.say(speak(question))
    with contextlib.suppress(TimeoutError):  # reported as a turn without an answer
        await _answered(assistant, before)
    await mic.say(silence(GAP_MS))
    answered = [
        r for r in log.responses_between(window_start, loop.time()) if r in log.first_audio_at
    ]  # the last response with audio answers the whole question (a pause may have split it)
    new = [i for i in assistant.history.items() if i.id not in items_before]
    heard = " ".join(i.text for i in new if i.role == "user")
    answer = " ".join(i.text for i in new if i.role == "assistant")
    if not answered:
        return TurnTiming(question, heard, answer, None, None)
    rid = answered[-1]
    first_audio = log.first_audio_at[rid]
    item = log.response_item.get(rid)
    stopped = log.stopped_at.get(item) if item is not None else None
    created = log.created_at.get(rid)
    return TurnTiming(
        question,
        heard,
        answer,
        first_audio - stopped if stopped is not None else None,
        first_audio - spoken.speech_end_at_s,
        first_audio - created if created is not None else None,
    )


async def _barge_in(assistant: Assistant, mic: SimulatedMicrophone, log: EventLog) -> BargeIn:
    """Ask for a long answer; speak as soon as its first audio arrives; time the cancel."""
    loop = asyncio.get_running_loop()
    window_start = loop.time()
    await mic.say(speak(LONG_QUESTION))

    def started_or_silent() -> bool:
        # The small model now and then answers with nothing: that trial has nothing to interrupt.
        recent = log.responses_between(window_start, loop.time())
        return any(r in log.first_audio_at or r in log.done for r in recent)

    await assistant.wait_until(started_or_silent, timeout_s=TURN_TIMEOUT_S)
    recent = log.responses_between(window_start, loop.time())
    target = next((r for r in recent if r in log.first_audio_at), None)
    if target is None:
        return BargeIn("no audio", None, None, None)
    starts_before = len(log.started_at)
    interruption = mic.say(speak(INTERRUPTION))
    await assistant.wait_until(lambda: target in log.done, timeout_s=TURN_TIMEOUT_S)
    spoken = await interruption
    # Every truncate the client sent has been answered.
    await assistant.wait_until(lambda: len(log.truncated_ms) >= len(assistant.truncations), timeout_s=TURN_TIMEOUT_S)
    done_at, status, reason = log.done[target]
    cancelled = status == "cancelled" and reason == "turn_detected"
    started = log.started_at[starts_before] if len(log.started_at) > starts_before else None
    return BargeIn(
        outcome=f"{status}/{reason}" if reason else status,
        speech_to_cancel_s=done_at - spoken.first_at_s if cancelled else None,
        speech_started_to_cancel_s=done_at - started if cancelled and started is not None else None,
        truncated_ms=assistant.truncations[0].audio_end_ms if assistant.truncations else None,
    )


async def measure_turns(
    url: str, questions: list[str], *, api_key: str | None = None, turn_detection: dict[str, Any] | None = None
) -> tuple[list[TurnTiming], int]:
    """Ask every question on one session (under ``turn_detection``, else the client's default,
    ``server_vad``); returns the turns and the error count."""
    log = EventLog()
    mic = SimulatedMicrophone()
    options = AssistantOptions(url=url, api_key=api_key, transcription_model=TRANSCRIPTION_MODEL)
    if turn_detection is not None:
        options = replace(options, turn_detection=turn_detection)
    assistant = Assistant(options, player=ClockPlayer(), on_event=log)
    turns: list[TurnTiming] = []
    async with assistant, asyncio.TaskGroup() as tg:
        tg.create_task(assistant.stream(mic.chunks()))
        try:
            for index, question in enumerate(questions, 1):
                turn = await _ask(assistant, mic, log, question)
                turns.append(turn)
                latency = turn.stopped_to_first_audio_s
                shown = f"{latency:.2f} s" if latency is not None else "no answer"
                progress("turn", index, len(questions), f"{shown:>9}  {turn.heard!r} -> {turn.answer!r}")
        finally:
            mic.stop()
    return turns, len(assistant.errors)


async def measure_barge_in(url: str, *, api_key: str | None = None) -> tuple[BargeIn, int]:
    """One barge-in trial on a fresh session (so earlier stories do not shorten the answer)."""
    log = EventLog()
    mic = SimulatedMicrophone()
    options = AssistantOptions(
        url=url, api_key=api_key, transcription_model=TRANSCRIPTION_MODEL, instructions=LONG_ANSWER_INSTRUCTIONS
    )
    assistant = Assistant(options, player=ClockPlayer(), on_event=log)
    async with assistant, asyncio.TaskGroup() as tg:
        tg.create_task(assistant.stream(mic.chunks()))
        try:
            trial = await _barge_in(assistant, mic, log)
        finally:
            mic.stop()
    return trial, len(assistant.errors)


async def measure(
    url: str, questions: list[str], trials: int, *, api_key: str | None = None
) -> tuple[list[TurnTiming], list[BargeIn], int]:
    """The turns on one session, then each barge-in trial on its own; returns them and the error count."""
    turns, errors = await measure_turns(url, questions, api_key=api_key)
    barge_ins: list[BargeIn] = []
    for index in range(1, trials + 1):
        trial, trial_errors = await measure_barge_in(url, api_key=api_key)
        barge_ins.append(trial)
        errors += trial_errors
        cancel = trial.speech_to_cancel_s
        shown = f" {cancel:.3f} s after the first speech chunk" if cancel is not None else ""
        progress("barge-in", index, trials, f"{trial.outcome}{shown}")
    return turns, barge_ins, errors


def _stats(values: list[float]) -> dict[str, float] | None:
    return distribution(values, REPORTED_QUANTILES)


async def run_assistant_bench(*, url: str | None, out_dir: Path | None, turns: int, api_key: str | None = None) -> int:
    """The ``bench assistant`` command: ``turns`` questions (cycled), then the barge-in trials."""
    questions = [QUESTIONS[i % len(QUESTIONS)] for i in range(turns)]
    print(
        f"bench assistant: {len(questions)} spoken turns at real-time pace, then {BARGE_IN_TRIALS} barge-ins",
        flush=True,
    )
    async with server_target(url, REALTIME_PATH, api_key=api_key) as target:
        timings, barge_ins, errors = await measure(target.url, questions, BARGE_IN_TRIALS, api_key=target.api_key)
        info = target.machine()
    stopped = [t.stopped_to_first_audio_s for t in timings if t.stopped_to_first_audio_s is not None]
    speech_end = [t.speech_end_to_first_audio_s for t in timings if t.speech_end_to_first_audio_s is not None]
    cancel = [b.speech_to_cancel_s for b in barge_ins if b.speech_to_cancel_s is not None]
    in_server = [b.speech_started_to_cancel_s for b in barge_ins if b.speech_started_to_cancel_s is not None]
    summary = {
        "machine": info,
        "turns": len(timings),
        "turns_answered": len(stopped),
        "speech_stopped_to_first_audio_s": _stats(stopped),
        "speech_end_to_first_audio_s": _stats(speech_end),
        "barge_in_trials": len(barge_ins),
        "barge_in_cancelled": len(cancel),
        "barge_in_first_speech_chunk_to_cancelled_s": _stats(cancel),
        "barge_in_speech_started_to_cancelled_s": _stats(in_server),
        "errors": errors,
        "turn_details": [asdict(t) for t in timings],
        "barge_in_details": [asdict(b) for b in barge_ins],
    }
    lines = ["| metric | value |", "|---|---|", f"| turns answered / spoken | {len(stopped)} / {len(timings)} |"]
    if stopped:
        lines.append(
            f"| speech_stopped → first audio, p50 / p90 | {statistics.median(stopped):.3f} / "
            f"{percentile(stopped, 90):.3f} s (target p50 < {TARGET_STOPPED_TO_AUDIO_P50_S} s) |"
        )
    if speech_end:
        lines.append(
            f"| end of speech (sent) → first audio, p50 / p90 | {statistics.median(speech_end):.3f} / "
            f"{percentile(speech_end, 90):.3f} s |"
        )
    lines.append(f"| barge-ins cancelled (turn_detected) / trials | {len(cancel)} / {len(barge_ins)} |")
    if cancel:
        lines.append(
            f"| barge-in: first speech chunk sent → response.done cancelled, p50 / p90 | "
            f"{statistics.median(cancel):.3f} / {percentile(cancel, 90):.3f} s |"
        )
    if in_server:
        lines.append(
            f"| barge-in: speech_started → response.done cancelled, p50 / max | "
            f"{statistics.median(in_server) * MS_PER_S:.1f} / {max(in_server) * MS_PER_S:.1f} ms |"
        )
    lines.append(f"| errors | {errors} |")
    table = "\n".join(lines)
    print(table)
    if out_dir is not None:
        write_results(out_dir, "assistant", summary, table, plots=assistant_plots(timings, barge_ins))
    return 0


def assistant_plots(timings: list[TurnTiming], barge_ins: list[BargeIn]) -> Plots:
    """Latency distributions, and each answered turn's wait split into its stages."""
    staged = [(index, stages) for index, t in enumerate(timings, 1) if (stages := t.stages()) is not None]
    names = (
        "end of speech (sent) → speech_stopped",
        "speech_stopped → response.created",
        "response.created → first audio",
    )
    return Plots(
        latencies=(
            Series(
                "speech_stopped → first audio",
                [t.stopped_to_first_audio_s for t in timings if t.stopped_to_first_audio_s is not None],
            ),
            Series(
                "end of speech (sent) → first audio",
                [t.speech_end_to_first_audio_s for t in timings if t.speech_end_to_first_audio_s is not None],
            ),
            Series(
                "barge-in: first speech chunk → response.done cancelled",
                [b.speech_to_cancel_s for b in barge_ins if b.speech_to_cancel_s is not None],
            ),
        ),
        stages=Stages(
            bars=[str(index) for index, _ in staged],
            parts={name: [stages[k] for _, stages in staged] for k, name in enumerate(names)},
            bar_kind="turn",
        ),
    )
