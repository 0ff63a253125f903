"""``openrealtime bench turns --turn-trace``: where the time from the last word to the answer goes.

The timed bench says *how long* the answer took; this says *what it waited for*. It runs the pause
set's clips through the server started in the bench's process and watches its realtime sessions from
inside (:class:`SessionWatch`): every final decode asked and returned, the pause's words
(``TurnMayEnd``), the answer begun on them (``Generate``), the end-of-turn model's question and
answer, the turn's end (``speech_stopped``), the first clause's synthesis and the first audio sent.
Each is placed on the input's own clock: how much audio had arrived after the clip's last word when
it happened. The clips are streamed at real time, so that is the user's clock too, but a mark never
depends on when a chunk was read (``Time is audio``), and the order of the marks is exact whatever
the load; the engines' durations between them are the machine's.

Only for a server in this process (the watch wraps the session class while it runs); ``--url`` is
refused.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from openrealtime.bench.turn_clips import Clip
from openrealtime.bench.turns import LEAD_MS, Mode, TrialSession
from openrealtime.protocol import server_events as se
from openrealtime.session import commands as c
from openrealtime.session.realtime import RealtimeSession
from openrealtime.session.signals import TurnCommitted, TurnGoesOn, TurnMayEnd
from openrealtime.session.turns import samples_to_ms

# Marks this much before the clip's measured last word still belong to its end: Silero may call the
# pause a frame or two before the waveform's last sample (the decay of a final consonant).
END_SLACK_MS = 150

MILESTONES = (
    ("final_asked", "final decode asked"),
    ("words", "the pause's words known (TurnMayEnd)"),
    ("answer_started", "answer begun (Generate)"),
    ("model_asked", "end-of-turn model asked"),
    ("model_answered", "end-of-turn model answered"),
    ("text_asked", "LLM's text signal asked"),
    ("text_answered", "LLM's text signal answered"),
    ("turn_ended", "turn ended (speech_stopped)"),
    ("first_clause_asked", "first clause's synthesis asked"),
    ("first_audio", "first answer audio sent"),
)


@dataclass(frozen=True)
class Mark:
    """One thing a session did, where its input had got to (ms, absolute in the session)."""

    audio_ms: int
    what: str
    detail: str = ""


@dataclass
class SessionWatch:
    """While entered, every realtime session of this process reports its marks here."""

    marks: list[Mark] = field(default_factory=list)
    _finals: set[str] = field(default_factory=set)
    _text_questions: set[str] = field(default_factory=set)  # ScoreTurnWords jobs (answered as TurnEndPredicted)
    _firsts: set[str] = field(default_factory=set)
    _saved: dict[str, Any] = field(default_factory=dict)

    def __enter__(self) -> SessionWatch:
        watch = self
        drain, on_result, on_signal = RealtimeSession.drain, RealtimeSession.on_result, RealtimeSession._on_signal
        self._saved = {"drain": drain, "on_result": on_result, "_on_signal": on_signal}

        def watched_drain(session: RealtimeSession) -> Any:
            events, commands = drain(session)
            watch._commands(_position(session), commands)
            watch._events(_position(session), events)
            return events, commands

        def watched_result(session: RealtimeSession, result: c.EngineResult) -> None:
            watch._result(_position(session), result)
            on_result(session, result)

        def watched_signal(session: RealtimeSession, signal: Any) -> None:
            if isinstance(signal, TurnMayEnd | TurnGoesOn | TurnCommitted):
                watch.marks.append(Mark(_position(session), type(signal).__name__))
            on_signal(session, signal)

        watched = {"drain": watched_drain, "on_result": watched_result, "_on_signal": watched_signal}
        for name, method in watched.items():
            setattr(RealtimeSession, name, method)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        for name, method in self._saved.items():
            setattr(RealtimeSession, name, method)

    def _commands(self, at: int, commands: list[c.Command]) -> None:
        for command in commands:
            match command:
                case c.Transcribe(final=True):
                    self._finals.add(command.job_id)
                    self.marks.append(Mark(at, "final_asked", command.job_id))
                case c.ScoreTurnWords():
                    self._text_questions.add(command.job_id)
                    self.marks.append(Mark(at, "ScoreTurnWords", command.words))
                case c.PredictTurnEnd() | c.Generate() | c.CancelJob():
                    self.marks.append(Mark(at, type(command).__name__, command.job_id))
                case c.Synthesize():
                    self.marks.append(Mark(at, "Synthesize", command.text))

    def _events(self, at: int, events: list[se.ServerEvent]) -> None:
        for event in events:
            if isinstance(event, se.SpeechStopped):
                self.marks.append(Mark(at, "speech_stopped", str(event.audio_end_ms)))
            elif isinstance(event, se.OutputAudioDelta) and event.response_id not in self._firsts:
                self._firsts.add(event.response_id)
                self.marks.append(Mark(at, "first_audio", event.response_id))

    def _result(self, at: int, result: c.EngineResult) -> None:
        if isinstance(result, c.TranscriptReady) and result.job_id in self._finals:
            self.marks.append(Mark(at, "final_ready", result.transcript.text))
        elif isinstance(result, c.TurnEndPredicted) and result.job_id in self._text_questions:
            self.marks.append(Mark(at, "TextScored", f"{result.probability:.1e}"))
        elif isinstance(result, c.TurnEndPredicted):
            self.marks.append(Mark(at, "TurnEndPredicted", f"{result.probability:.2f}"))
        elif isinstance(result, c.LlmChunk | c.AudioChunk) and result.job_id not in self._firsts:
            self._firsts.add(result.job_id)
            self.marks.append(Mark(at, f"first {type(result).__name__}", result.job_id))


def _position(session: RealtimeSession) -> int:
    return samples_to_ms(session.buffer.buffer.end)


@dataclass(frozen=True)
class ClipTrace:
    """One clip's end: each milestone's ms of input after the last word (``None``: did not happen),
    how many answers were begun after it, and its marks."""

    text: str
    voice: str
    end_ms: int
    milestones: dict[str, int | None]
    answers_begun: int
    marks: list[Mark]


def clip_trace(clip: Clip, end_ms: int, marks: list[Mark]) -> ClipTrace:
    """The milestones of ``clip``'s end from the marks of its run (``end_ms``: its last word, absolute
    in the session). Only the answer that spoke counts: the last one begun before the first audio."""
    mine = [m for m in marks if m.audio_ms >= end_ms - END_SLACK_MS]
    audio_at = next((i for i, m in enumerate(mine) if m.what == "first_audio"), len(mine))
    before = mine[:audio_at]

    def first(what: str, among: list[Mark] = before) -> Mark | None:
        return next((m for m in among if m.what == what), None)

    def last(what: str, among: list[Mark] = before) -> Mark | None:
        return next((m for m in reversed(among) if m.what == what), None)

    answer = last("Generate")
    after_answer = before[before.index(answer) :] if answer is not None else []
    found = {
        "final_asked": first("final_asked"),
        "words": last("TurnMayEnd") or last("final_ready"),
        "answer_started": answer,
        "model_asked": first("PredictTurnEnd"),
        "model_answered": last("TurnEndPredicted"),
        "text_asked": last("ScoreTurnWords"),
        "text_answered": last("TextScored"),
        "turn_ended": last("speech_stopped"),
        "first_clause_asked": first("Synthesize", after_answer),
        "first_audio": mine[audio_at] if audio_at < len(mine) else None,
    }
    milestones = {key: (m.audio_ms - end_ms if m is not None else None) for key, m in found.items()}
    answers = sum(m.what == "Generate" for m in before)
    return ClipTrace(clip.text, clip.voice, end_ms, milestones, answers, mine)


def trace_table(mode: str, traces: list[ClipTrace]) -> str:
    """The median of each milestone over the clips, and each clip's row."""
    keys = [key for key, _ in MILESTONES]
    lines = [
        f"{mode}: ms of input after the last word when each happened ({len(traces)} clips)",
        "",
        "| clip | " + " | ".join(label for _, label in MILESTONES) + " | answers begun |",
        "|---" * (len(keys) + 2) + "|",
    ]

    def shown(value: float | None) -> str:
        return "-" if value is None else f"{value:+.0f}"

    medians = []
    for key in keys:
        values = [t.milestones[key] for t in traces if t.milestones[key] is not None]
        medians.append(shown(statistics.median(v for v in values if v is not None)) if values else "-")
    begun = statistics.median(t.answers_begun for t in traces) if traces else 0
    lines.append("| **median** | " + " | ".join(medians) + f" | {begun:g} |")
    for t in traces:
        cells = " | ".join(shown(t.milestones[key]) for key in keys)
        text = t.text.replace(" | ", " … ")  # the pauses' marks would split the table's cells
        lines.append(f"| [{t.voice}] {text} | {cells} | {t.answers_begun} |")
    return "\n".join(lines)


def timeline(trace: ClipTrace) -> str:
    """Every mark of a clip's end, one a line (for a closer look)."""
    lines = [f"[{trace.voice}] {trace.text}"]
    lines += [f"  {m.audio_ms - trace.end_ms:+6d} ms  {m.what} {m.detail}".rstrip() for m in trace.marks]
    return "\n".join(lines)


async def run_trace(url: str, modes: tuple[Mode, ...], clips: list[Clip], *, verbose: bool = False) -> str:
    """Each clip under each mode on one session per mode (as the timed bench, one at a time), watched
    from inside; the tables (and with ``verbose`` every clip's marks)."""
    texts: list[str] = []
    for mode in modes:
        traces: list[ClipTrace] = []
        with SessionWatch() as watch:
            async with TrialSession.open(url, mode) as session:
                for clip in clips:
                    end_ms = session.sent_ms + LEAD_MS + clip.speech_end_ms
                    watch.marks.clear()
                    await session.run(clip)
                    traces.append(clip_trace(clip, end_ms, list(watch.marks)))
        texts.append(trace_table(mode.name, traces))
        if verbose:
            texts += [timeline(t) for t in traces]
    return "\n\n".join(texts)
