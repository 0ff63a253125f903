"""``openrealtime bench turns`` part 2: speech over an answer, over the public protocol (issue 13).

**The probes.** Backchannels ("Mm-hmm.", "Yeah.", "Right.", ...), coughs (one to three bursts of
shaped noise: no voice makes a cough) and real interruptions ("Wait, can you say that again?",
"Actually, I meant next Tuesday.", ...), each in the installed voices (piper at two speeds, espeak).

**A trial.** A realtime session asks a text question that gets a long spoken answer; the microphone
streams silence at real time, and once the answer has been "playing" for ``ANSWER_LEAD_MS`` (from
its first audio delta, as a client's player would start it) the probe is streamed over it, then
silence. Measured from the events, as a WebSocket client sees them:

* **false barge-in**: a backchannel or a cough that cancelled the answer (``response.done``,
  ``cancelled``, ``turn_detected``) or got an answer of its own (a ``response.created`` after its
  turn was committed);
* **missed interruption**: a real interruption that did neither;
* **onset → cancel**: from the moment the chunk holding the interruption's first voiced sample was
  sent to the cancel's ``response.done``: when a client that stops its player only on a cancel goes
  quiet. (On a WebRTC call the ``adaptive`` mode holds the track at ``speech_started``, so silence
  there comes at ``onset → speech_started``, also reported.)
* **onset → silence, our client**: the same onset to the moment this package's client
  (:class:`PausingClient`: the assistant's turn-taking and a player into the air, fed every event)
  stopped or paused its player: at ``speech_started`` under both modes, since under ``adaptive`` it
  pauses there and waits for the server's verdict (``input_audio_buffer.speech_judged``);
* **backchannels resumed**: the share of backchannels and coughs after which that client's player
  went on from where it paused (the answer not cancelled).

Modes: OpenAI's ``immediate`` barge-in and the ``adaptive`` one (``turn_detection.barge_in``), both
under ``server_vad`` with 500 ms of silence. Trials whose answer was already fully generated when
the probe began are counted apart (nothing was left to cancel).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from openrealtime.audio.codec import float_to_pcm16
from openrealtime.audio.types import Samples
from openrealtime.bench.configured import Items, configured_session, wait_until
from openrealtime.bench.report import distribution, progress
from openrealtime.bench.speech import WIRE_RATE_HZ
from openrealtime.client.assistant_config import AssistantOptions
from openrealtime.client.connection import RealtimeConnection
from openrealtime.client.history import ConversationHistory
from openrealtime.client.playback import ClockPlayer, interrupt
from openrealtime.client.turns import InterruptPlayback, PausePlayback, Play, ResumePlayback, StopPlayback, TurnTaking
from openrealtime.protocol.codec import server_event_from_dict

MS_PER_S = 1000
MIC_CHUNK_MS = 20
ANSWER_LEAD_MS = 1500  # of the answer "played" before the probe starts
AFTER_PROBE_MS = 2500  # silence streamed after the probe: the turn ends, a verdict or an answer comes
FIRST_AUDIO_WAIT_S = 30.0
SETTLE_WAIT_S = 30.0
VOICED_FLOOR = 0.02  # |sample| above this is the probe's onset
INSTRUCTIONS = "You are a tour guide. Answer every question in six full spoken sentences."
QUESTIONS = (
    "Tell me about the history of the Eiffel Tower.",
    "How do I make a good loaf of bread at home?",
    "What should I see on a first visit to Rome?",
    "Explain how a train timetable is planned.",
)
BACKCHANNELS = ("Mm-hmm.", "Yeah.", "Right.", "Okay.", "Uh-huh.", "I see.")
INTERRUPTIONS = (
    "Wait, can you say that again?",
    "Actually, I meant next Tuesday.",
    "Sorry, what was the second one?",
    "Hold on, how much does that cost?",
    "No, I asked about the train, not the bus.",
    "Can you make it shorter, please?",
)
COUGHS = (1, 2, 3)  # bursts per cough
VOICES = (("piper", 1.0), ("piper", 1.2), ("espeak", 1.0))
TARGET_BACKCHANNEL_MS = 600  # the target: no false barge-in from a backchannel under 0.6 s
TARGET_SILENCE_S = 0.4  # and real interruptions silenced within 0.4 s


@dataclass(frozen=True)
class Mode:
    name: str
    turn_detection: dict[str, Any]


MODES = (
    Mode("immediate (OpenAI)", {"type": "server_vad", "silence_duration_ms": 500, "barge_in": "immediate"}),
    Mode("adaptive", {"type": "server_vad", "silence_duration_ms": 500, "barge_in": "adaptive"}),
)


@dataclass(frozen=True)
class Probe:
    """Speech (or a noise) streamed over an answer."""

    kind: str  # "backchannel" | "cough" | "interruption"
    text: str
    voice: str
    audio: Samples = field(repr=False)

    @property
    def onset_ms(self) -> int:
        voiced = np.flatnonzero(np.abs(self.audio) > VOICED_FLOOR)
        return int(voiced[0]) * MS_PER_S // WIRE_RATE_HZ if voiced.size else 0

    @property
    def voiced_ms(self) -> int:
        voiced = np.flatnonzero(np.abs(self.audio) > VOICED_FLOOR)
        return int(voiced[-1] - voiced[0]) * MS_PER_S // WIRE_RATE_HZ if voiced.size else 0


def cough(bursts: int, *, seed: int = 0) -> Samples:
    """A cough as shaped noise: ``bursts`` bursts of ~200 ms (fast attack, decay), 120 ms apart."""
    rng = np.random.default_rng(seed)
    parts: list[Samples] = []
    for _ in range(bursts):
        n = WIRE_RATE_HZ * int(rng.integers(150, 260)) // MS_PER_S
        noise = rng.standard_normal(n).astype(np.float32)
        noise = np.convolve(noise, np.ones(6, np.float32) / 6, mode="same").astype(np.float32)  # breathier
        t = np.arange(n, dtype=np.float32) / WIRE_RATE_HZ
        envelope = np.minimum(1.0, t / 0.012) * np.exp(-t / 0.07)
        parts += [(0.5 * noise * envelope).astype(np.float32), np.zeros(WIRE_RATE_HZ * 120 // MS_PER_S, np.float32)]
    return np.concatenate(parts)


def probe_set(limit: int | None = None) -> list[Probe]:
    """Every probe in every voice (coughs once each); the first ``limit`` of each kind if given."""
    from openrealtime.bench.turn_clips import synthesize

    spoken: dict[str, list[Probe]] = {"backchannel": [], "interruption": []}
    for engine, speed in VOICES:
        for kind, texts in (("backchannel", BACKCHANNELS), ("interruption", INTERRUPTIONS)):
            for text in texts:
                spoken[kind].append(Probe(kind, text, f"{engine}@{speed}", synthesize(text, engine, speed)))
    coughs = [Probe("cough", f"cough x{n}", "noise", cough(n, seed=n)) for n in COUGHS]
    kinds = [spoken["backchannel"], coughs, spoken["interruption"]]
    return [probe for probes in kinds for probe in (probes[:limit] if limit else probes)]


@dataclass
class Trial:
    """One probe over one answer under one mode."""

    mode: str
    kind: str
    text: str
    voice: str
    voiced_ms: int
    answer_in_progress: bool  # the answer was still being generated when the probe began
    cancelled: bool
    answered: bool  # the probe's own turn got a response
    onset_to_speech_started_s: float | None
    onset_to_silence_s: float | None  # to the cancel's response.done
    onset_to_client_silence_s: float | None = None  # to our client's pause or stop
    resumed: bool = False  # our client's player went on after a pause, and the answer was not cancelled

    @property
    def barged_in(self) -> bool:
        return self.cancelled or self.answered


class PausingClient:
    """This package's client as a listener: the assistant's turn-taking fed every server event, and
    its player, which plays into the air. Records when the player went silent (paused or stopped)
    and when it resumed, in loop time."""

    def __init__(self, mode: Mode) -> None:
        self.turns = TurnTaking(AssistantOptions(), history=ConversationHistory(), tools=False)
        session = {"type": "realtime", "audio": {"input": {"turn_detection": mode.turn_detection}}}
        self.turns.receive(server_event_from_dict({"type": "session.updated", "session": session}))
        self.player = ClockPlayer(WIRE_RATE_HZ)
        self.silent_at: list[float] = []
        self.resumed_at: list[float] = []

    def feed(self, event: dict[str, Any], now: float) -> None:
        for action in self.turns.receive(server_event_from_dict(event)):
            match action:
                case Play(item_id=item_id, pcm16=pcm16):
                    self.player.play(item_id, pcm16)
                case PausePlayback():
                    self.player.pause()
                    self.silent_at.append(now)
                case ResumePlayback():
                    self.player.resume()
                    self.resumed_at.append(now)
                case InterruptPlayback(measure=measure):
                    self.turns.playback_interrupted(interrupt(self.player, measure))  # its truncates unsent
                    self.silent_at.append(now)
                case StopPlayback():
                    self.player.stop()

    def first_after(self, times: list[float], start: float | None) -> float | None:
        return next((t - start for t in times if t >= start), None) if start is not None else None


class ProbeSession:
    """One realtime session that speaks probes over answers, one after another."""

    def __init__(self, conn: RealtimeConnection, mode: Mode) -> None:
        self._conn = conn
        self.mode = mode
        self._items = Items()
        self._done: dict[str, dict[str, Any]] = {}
        self._created: list[str] = []
        self._audio: set[str] = set()
        self._committed: list[str] = []
        self._started: list[float] = []
        self._created_at: dict[str, float] = {}
        self._done_at: dict[str, float] = {}
        self._changed = asyncio.Event()
        self._questions = 0
        self.on_audio: Any = None  # called with each audio delta (bench/echo.py's speaker)
        self.client = PausingClient(mode)

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, url: str, mode: Mode, *, api_key: str | None = None) -> AsyncIterator[ProbeSession]:
        opened = configured_session(
            url,
            lambda conn: cls(conn, mode),
            instructions=INSTRUCTIONS,
            turn_detection=mode.turn_detection,
            api_key=api_key,
        )
        async with opened as session:
            yield session

    async def read_events(self) -> None:
        loop = asyncio.get_running_loop()
        async for event in self._conn:
            kind = event.get("type")
            now = loop.time()
            self.client.feed(event, now)
            self._items.heard(event)
            if kind == "response.created":
                self._created.append(event["response"]["id"])
                self._created_at[event["response"]["id"]] = now
            elif kind == "response.done":
                self._done[event["response"]["id"]] = event["response"]
                self._done_at[event["response"]["id"]] = now
            elif kind == "response.output_audio.delta":
                self._audio.add(event["response_id"])
                if self.on_audio is not None:
                    self.on_audio(event)
            elif kind == "input_audio_buffer.committed":
                self._committed.append(event["item_id"])
            elif kind == "input_audio_buffer.speech_started":
                self._started.append(now)
            self._changed.set()

    async def _until(self, condition: Any, timeout_s: float = SETTLE_WAIT_S) -> None:
        await wait_until(self._changed, condition, timeout_s)

    async def _silence_until(self, condition: Any, timeout_s: float) -> None:
        """Stream silence at real time until ``condition`` holds."""
        quiet = float_to_pcm16(np.zeros(WIRE_RATE_HZ * MIC_CHUNK_MS // MS_PER_S, np.float32))
        loop = asyncio.get_running_loop()
        started = loop.time()
        sent = 0
        while not condition():
            if loop.time() - started > timeout_s:
                raise TimeoutError
            sent += 1
            await asyncio.sleep(max(0.0, started + sent * MIC_CHUNK_MS / MS_PER_S - loop.time()))
            await self._conn.append_audio(quiet)

    async def _stream(self, audio: Samples, onset_ms: int | None = None) -> float | None:
        """Stream ``audio`` at real time; the loop time the chunk holding ``onset_ms`` was sent."""
        loop = asyncio.get_running_loop()
        chunk = WIRE_RATE_HZ * MIC_CHUNK_MS // MS_PER_S
        onset = onset_ms * WIRE_RATE_HZ // MS_PER_S if onset_ms is not None else None
        started = loop.time()
        onset_at: float | None = None
        for index, position in enumerate(range(0, audio.size, chunk)):
            await asyncio.sleep(max(0.0, started + index * MIC_CHUNK_MS / MS_PER_S - loop.time()))
            part = audio[position : position + chunk]
            if part.size < chunk:
                part = np.concatenate([part, np.zeros(chunk - part.size, np.float32)])
            await self._conn.append_audio(float_to_pcm16(part))
            if onset is not None and onset_at is None and position <= onset < position + chunk:
                onset_at = loop.time()
        return onset_at

    async def run(self, probe: Probe) -> Trial:
        question = QUESTIONS[self._questions % len(QUESTIONS)]
        self._questions += 1
        self.client.player.stop()  # the last answer's queue: the client hears this one from its start
        item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": question}]}
        await self._conn.send({"type": "conversation.item.create", "item": item})
        created = len(self._created)
        await self._conn.send({"type": "response.create"})
        await self._until(lambda: len(self._created) > created)
        answer = self._created[created]
        await self._silence_until(lambda: answer in self._audio or answer in self._done, FIRST_AUDIO_WAIT_S)
        lead = np.zeros(WIRE_RATE_HZ * ANSWER_LEAD_MS // MS_PER_S, np.float32)
        await self._stream(lead)
        in_progress = answer not in self._done
        committed, started = len(self._committed), len(self._started)
        onset_at = await self._stream(probe.audio, probe.onset_ms)
        await self._stream(np.zeros(WIRE_RATE_HZ * AFTER_PROBE_MS // MS_PER_S, np.float32))
        done = self._done.get(answer)
        cancelled = bool(
            done is not None
            and done.get("status") == "cancelled"
            and (done.get("status_details") or {}).get("reason") == "turn_detected"
        )
        probe_items = set(self._committed[committed:])
        answered = any(r != answer and self._created_at[r] >= (onset_at or 0) for r in self._created[created:])
        answered = answered and bool(probe_items)
        speech_started = self._started[started] - onset_at if len(self._started) > started and onset_at else None
        silence = self._done_at[answer] - onset_at if cancelled and onset_at else None
        client_silence = self.client.first_after(self.client.silent_at, onset_at)
        resumed = self.client.first_after(self.client.resumed_at, onset_at) is not None and not cancelled
        await self._settle()
        return Trial(
            self.mode.name,
            probe.kind,
            probe.text,
            probe.voice,
            probe.voiced_ms,
            in_progress,
            cancelled,
            answered,
            speech_started,
            silence,
            client_silence,
            resumed,
        )

    async def _settle(self) -> None:
        """Cancel what still runs, delete every item and clear the input: the next probe starts afresh."""
        for response_id in self._created:
            if response_id not in self._done:
                await self._conn.send({"type": "response.cancel", "response_id": response_id})
        await self._until(lambda: all(r in self._done for r in self._created))
        await self._items.forget(self._conn, self._until)


async def run_probes(url: str, mode: Mode, probes: list[Probe], *, api_key: str | None) -> list[Trial]:
    trials: list[Trial] = []
    async with ProbeSession.open(url, mode, api_key=api_key) as session:
        for index, probe in enumerate(probes, 1):
            trial = await session.run(probe)
            trials.append(trial)
            verdict = "barged in" if trial.barged_in else "resumed" if trial.resumed else "went on"
            silence = f", cancel after {trial.onset_to_silence_s:.2f} s" if trial.onset_to_silence_s else ""
            if trial.onset_to_client_silence_s is not None:
                silence += f", our client silent after {trial.onset_to_client_silence_s:.2f} s"
            progress(f"{mode.name} {probe.kind}", index, len(probes), f"{verdict}{silence} {probe.text!r}")
    return trials


def _rate(hits: int, total: int) -> float | None:
    return hits / total if total else None


def summarize(trials: list[Trial]) -> dict[str, Any]:
    """Per mode: false barge-in rates (backchannels, coughs), missed interruptions, onset → silence."""
    modes: dict[str, Any] = {}
    for name in dict.fromkeys(t.mode for t in trials):
        mine = [t for t in trials if t.mode == name and t.answer_in_progress]
        back = [t for t in mine if t.kind == "backchannel"]
        coughs = [t for t in mine if t.kind == "cough"]
        real = [t for t in mine if t.kind == "interruption"]
        short = [t for t in back if t.voiced_ms < TARGET_BACKCHANNEL_MS]
        modes[name] = {
            "false_barge_in_rate": _rate(sum(t.barged_in for t in back + coughs), len(back + coughs)),
            "backchannel_false_barge_in_rate": _rate(sum(t.barged_in for t in back), len(back)),
            "short_backchannel_false_barge_in_rate": _rate(sum(t.barged_in for t in short), len(short)),
            "cough_false_barge_in_rate": _rate(sum(t.barged_in for t in coughs), len(coughs)),
            "missed_interruption_rate": _rate(sum(not t.barged_in for t in real), len(real)),
            "onset_to_silence_s": distribution([t.onset_to_silence_s for t in real if t.onset_to_silence_s]),
            "onset_to_speech_started_s": distribution(
                [t.onset_to_speech_started_s for t in real if t.onset_to_speech_started_s]
            ),
            "onset_to_client_silence_s": distribution(
                [t.onset_to_client_silence_s for t in real if t.onset_to_client_silence_s is not None]
            ),
            "not_interruptions_resumed_rate": _rate(
                sum(t.resumed for t in back + coughs if not t.barged_in and t.onset_to_client_silence_s is not None),
                sum(1 for t in back + coughs if not t.barged_in and t.onset_to_client_silence_s is not None),
            ),
            "trials": len(mine),
            "answer_already_done": sum(not t.answer_in_progress for t in trials if t.mode == name),
        }
    return modes


def table(modes: dict[str, Any]) -> str:
    def pct(value: float | None) -> str:
        return f"{value:.0%}" if value is not None else "-"

    def secs(dist: dict[str, float] | None) -> str:
        return f"{dist['p50']:.2f} / {dist['p95']:.2f}" if dist else "-"

    lines = [
        "| barge-in | false barge-in (backchannels + coughs) | backchannels < 0.6 s | coughs | missed "
        "interruptions | onset → cancel p50 / p95 (s) | onset → speech_started p50 / p95 (s) "
        "| onset → silence, our client p50 / p95 (s) | paused, not interrupted: resumed |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, m in modes.items():
        lines.append(
            f"| {name} | {pct(m['false_barge_in_rate'])} | {pct(m['short_backchannel_false_barge_in_rate'])} "
            f"| {pct(m['cough_false_barge_in_rate'])} | {pct(m['missed_interruption_rate'])} "
            f"| {secs(m['onset_to_silence_s'])} | {secs(m['onset_to_speech_started_s'])} "
            f"| {secs(m.get('onset_to_client_silence_s'))} | {pct(m.get('not_interruptions_resumed_rate'))} |"
        )
    return "\n".join(lines)
