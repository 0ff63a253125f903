"""The server's echo canceller alone, offline: where its echo turns and its late interruptions come from
(issue 13, "the server never interrupts itself").

``python -m openrealtime.bench.echo_offline`` needs no server, LLM, network or clock, and runs in
seconds what ``bench turns --turn-parts 3`` takes minutes to show once:

* **answers** spoken by piper clause by clause, each clause arriving when the one before is partly
  played and now and then late (the player runs dry and starts again, as it does when the TTS falls
  behind);
* **placed** on the input's timeline as the session places them
  (:class:`~openrealtime.session.echo.EchoReference`: after what is queued; a piece that arrives after
  the player ran dry where the server's input stood, minus a random backlog up to ``--jitter-ms``:
  the server reads the input late while it is busy starting an answer, so the echo's delay moves at
  each restart);
* **played** into the bench's room (:class:`~openrealtime.bench.echo_room.Speakerphone`: -6 dB,
  150 ms, two reflections; ``--room reverberant`` adds a reverberant tail, a little distortion and a
  microphone's noise), through :class:`~openrealtime.session.echo.EchoCanceller` (our canceller, or
  AEC3 with ``--canceller aec3``, and the :class:`~openrealtime.session.echo_gate.EchoGate`) and
  Silero with the server's turn hysteresis.

It reports, as one JSON object:

* ``echo_turns``: speech starts heard from the echo alone, over sessions of three answers;
* ``user``: each of the bench's interruptions spoken 2.5 s into a session's *second* answer (the room
  learned; ``--user-over 1``: the first, while the canceller learns it): where the first speech start
  after the user's first voiced sample came (ms; the bench's onset → ``speech_started`` less the
  VAD's own 64 ms), and where the VAD had heard enough of it to start the turn
  (``onset_to_decision_ms``: the bench's onset → ``speech_started``, which a longer
  ``--start-over-echo-ms`` moves), how many came over 400 ms late or never;
* ``--start-over-echo-ms``: the speech a turn needs to start while the server's voice may come back
  (the server asks ``START_OVER_ECHO_MS``, 96, and 64 otherwise), to weigh echo turns against late
  users;
* ``user_frames_removed_db``: how much the canceller took out of the 10 ms frames where the user's
  voice was louder than the echo (median, p10 and p90): what AEC3's suppressor does to speech over
  the answer. A canceller that only removed the echo would take about 1-2 dB out of them.

The answers and interruptions are synthesized once and then read from disk
(:func:`~openrealtime.bench.turn_clips.cached_speech`), so two runs compare settings on the same
speech (session 23: with piper's random synthesis drawn afresh each run, runs of the same code moved
by as much as the variants under test); ``--fresh-speech`` draws it anew. AEC3 is not bit-exact;
compare settings over several seeds, not single sessions.
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from openrealtime.audio.codec import float_to_pcm16
from openrealtime.audio.resample import StreamResampler
from openrealtime.audio.types import Samples
from openrealtime.bench.echo_room import CHUNK, CHUNK_MS, ROOMS, Speakerphone
from openrealtime.bench.interruptions import INTERRUPTIONS, VOICED_FLOOR
from openrealtime.bench.speech import WIRE_RATE_HZ
from openrealtime.session.echo import RATE_HZ, START_OVER_ECHO_MS, EchoCanceller
from openrealtime.session.vad import START_SPEECH_MS, SpeechStart, TurnDetector

ANSWERS = (
    (
        "The Eiffel Tower was built",
        "for the World's Fair of 1889,",
        "and it was designed by Gustave Eiffel's company.",
        "At first many Parisians disliked it,",
        "but it soon became the symbol of the city.",
    ),
    (
        "To make a good loaf,",
        "start with strong bread flour,",
        "water, salt and a little yeast.",
        "Knead the dough for ten minutes,",
        "then let it rise until it doubles in size.",
    ),
    (
        "On a first visit to Rome,",
        "see the Colosseum and the Forum,",
        "then walk to the Pantheon.",
        "Visit the Vatican Museums early in the morning,",
        "and end the day at the Trevi Fountain.",
    ),
)
FIRST_ANSWER_MS = 500  # the session's first answer arrives this long after its input starts
BETWEEN_ANSWERS_MS = 2500  # silence after an answer's last clause has played
USER_AT_MS = 2500  # the user speaks this long after the second answer's first clause arrives
AFTER_USER_MS = 6000  # a user session ends this long after the user began
LATE_MS = 400
LATE_CLAUSE_MAX_MS = 900  # a late clause arrives up to this long after it was due
VAD_THRESHOLD = 0.5  # the server's default
VAD_SILENCE_MS = 500
MS_PER_S = 1000


@dataclass
class Arrival:
    """A clause of an answer, arriving at the server's output at ``at_ms`` of input."""

    at_ms: int
    samples: Samples  # 24 kHz
    item_id: str


@dataclass
class Session:
    """What one offline session heard: speech starts (ms of input: where each began, and where the
    VAD had heard enough of it to say so) and the user's frames."""

    starts_ms: list[float] = field(default_factory=list)
    decided_ms: list[float] = field(default_factory=list)
    user_frames_removed_db: list[float] = field(default_factory=list)


def schedule(answers: list[list[Samples]], rng: random.Random) -> list[Arrival]:
    """Each answer's clauses, arriving as a TTS that is mostly ahead of the player sends them."""
    arrivals: list[Arrival] = []
    at = FIRST_ANSWER_MS
    for index, clauses in enumerate(answers):
        for clause in clauses:
            arrivals.append(Arrival(at, clause, f"item_{index}"))
            played_ms = clause.size * MS_PER_S // WIRE_RATE_HZ
            late = rng.uniform(0, LATE_CLAUSE_MAX_MS) if rng.random() < 0.25 else 0.0
            at += int(played_ms * rng.uniform(0.3, 1.0) + late)
        at += sum(c.size for c in clauses) * MS_PER_S // WIRE_RATE_HZ + BETWEEN_ANSWERS_MS
    return arrivals


def run_session(
    arrivals: list[Arrival],
    vad: Any,
    rng: random.Random,
    *,
    jitter_ms: int,
    end_ms: int,
    user: Samples | None = None,
    user_at_ms: int = 0,
    canceller: EchoCanceller | None = None,
    room: str = "bench",
    start_over_echo_ms: int = START_OVER_ECHO_MS,
) -> Session:
    """Stream the room (and the user) through the canceller and the VAD, 20 ms at a time."""
    canceller = canceller or EchoCanceller(0)
    phone = Speakerphone(room)
    stream = vad.new_stream()
    detector = TurnDetector(
        sample_rate_hz=RATE_HZ,
        frame_samples=vad.frame_samples,
        threshold=VAD_THRESHOLD,
        silence_duration_ms=VAD_SILENCE_MS,
    )
    heard = Session()
    tracks = _Tracks() if user is not None else None
    pending = np.zeros(0, np.float32)
    scanned = 0
    user_at = user_at_ms * WIRE_RATE_HZ // MS_PER_S
    queue = list(arrivals)
    for ms in range(0, end_ms, CHUNK_MS):
        while queue and queue[0].at_ms <= ms:
            arrival = queue.pop(0)
            backlog = int(rng.uniform(0, jitter_ms) * RATE_HZ / MS_PER_S)
            now = max(0, canceller.position - backlog)
            canceller.reference.play(arrival.samples, WIRE_RATE_HZ, now=now, item_id=arrival.item_id)
            phone.receive({"item_id": arrival.item_id, "delta": _b64(arrival.samples)})
        echo = phone.tick()
        voice = np.zeros(CHUNK, np.float32)
        if user is not None:
            position = ms * WIRE_RATE_HZ // MS_PER_S
            lo, hi = max(position, user_at), min(position + CHUNK, user_at + user.size)
            if lo < hi:
                voice[lo - position : hi - position] = user[lo - user_at : hi - user_at]
        out = canceller.process(echo + voice, WIRE_RATE_HZ)
        ms_needed = start_over_echo_ms if canceller.echo_audible else START_SPEECH_MS  # as the server asks
        detector.start_samples = ms_needed * RATE_HZ // MS_PER_S
        if tracks is not None:
            tracks.add(echo, voice, out)
        pending = np.concatenate([pending, out])
        count = pending.size // vad.frame_samples
        if count:
            for index, probability in enumerate(stream.probabilities(pending[: count * vad.frame_samples])):
                frame_start = scanned + index * vad.frame_samples
                for event in detector.feed(frame_start, probability):
                    if isinstance(event, SpeechStart):
                        heard.starts_ms.append(event.sample * MS_PER_S / RATE_HZ)
                        heard.decided_ms.append((frame_start + vad.frame_samples) * MS_PER_S / RATE_HZ)
            scanned += count * vad.frame_samples
            pending = pending[count * vad.frame_samples :]
    if tracks is not None:
        heard.user_frames_removed_db = tracks.removed_db()
    return heard


class _Tracks:
    """The echo, the voice and the canceller's output at 16 kHz, sample for sample (the same
    resampler as the canceller's, so the canceller's output lines up with them)."""

    def __init__(self) -> None:
        self._resamplers = [StreamResampler(WIRE_RATE_HZ, RATE_HZ) for _ in range(2)]
        self._echo: list[Samples] = []
        self._voice: list[Samples] = []
        self._out: list[Samples] = []

    def add(self, echo: Samples, voice: Samples, out: Samples) -> None:
        self._echo.append(self._resamplers[0].process(echo))
        self._voice.append(self._resamplers[1].process(voice))
        self._out.append(out)

    def removed_db(self) -> list[float]:
        """dB the canceller took out of each 10 ms frame where the voice is louder than the echo."""
        echo, voice, out = (np.concatenate(parts) for parts in (self._echo, self._voice, self._out))
        frame = RATE_HZ // 100
        removed: list[float] = []
        for lo in range(0, min(out.size, echo.size) - frame + 1, frame):
            e, v, o = echo[lo : lo + frame], voice[lo : lo + frame], out[lo : lo + frame]
            n = e + v
            if float(v @ v) > max(float(e @ e), 1e-4 * frame):
                removed.append(10 * float(np.log10((float(n @ n) + 1e-12) / (float(o @ o) + 1e-12))))
        return removed


def _b64(samples: Samples) -> str:
    import base64

    return base64.b64encode(float_to_pcm16(np.clip(samples, -1, 1))).decode()


def _canceller(gate: bool, kind: str = "linear") -> EchoCanceller:
    canceller = EchoCanceller(0, kind=kind)
    if not gate:
        canceller.gate.process = lambda near, far, out: out  # type: ignore[method-assign]
    return canceller


def measure(
    seeds: int,
    jitter_ms: int,
    *,
    users: int | None = None,
    gate: bool = True,
    kind: str = "linear",
    room: str = "bench",
    start_over_echo_ms: int = START_OVER_ECHO_MS,
    user_answer: int = 1,
    fresh_speech: bool = False,
) -> dict[str, Any]:
    """Echo turns over ``seeds`` sessions of three answers, and the user over the second answer."""
    from openrealtime.bench.turn_clips import cached_speech, synthesize
    from openrealtime.engines.silero import SileroVad

    vad = SileroVad()
    speech = synthesize if fresh_speech else cached_speech
    spoken = [[speech(text, "piper", 1.0) for text in answer] for answer in ANSWERS]
    echo_turns: list[list[int]] = []
    for seed in range(seeds):
        rng = random.Random(seed)
        answers = [spoken[(seed + k) % len(spoken)] for k in range(3)]
        arrivals = schedule(answers, rng)
        end = arrivals[-1].at_ms + sum(c.size for c in answers[-1]) * MS_PER_S // WIRE_RATE_HZ + BETWEEN_ANSWERS_MS
        heard = run_session(
            arrivals,
            vad,
            rng,
            jitter_ms=jitter_ms,
            end_ms=end,
            canceller=_canceller(gate, kind),
            room=room,
            start_over_echo_ms=start_over_echo_ms,
        )
        echo_turns.append([int(s) for s in heard.starts_ms])
    onsets: list[float | None] = []
    decisions: list[float | None] = []  # the user's onset -> the frame that started their turn
    removed: list[float] = []
    for text in INTERRUPTIONS[:users] if users else INTERRUPTIONS:
        user = speech(text, "piper", 1.0)
        first_voiced = int(np.flatnonzero(np.abs(user) > VOICED_FLOOR)[0]) * MS_PER_S // WIRE_RATE_HZ
        for seed in range(seeds):
            rng = random.Random(seed)
            answers = [spoken[(seed + k) % len(spoken)] for k in range(2)]
            arrivals = schedule(answers, rng)
            over = next(a.at_ms for a in arrivals if a.item_id == f"item_{user_answer}")
            user_at = over + USER_AT_MS
            heard = run_session(
                arrivals,
                vad,
                rng,
                jitter_ms=jitter_ms,
                end_ms=user_at + AFTER_USER_MS,
                user=user,
                user_at_ms=user_at,
                canceller=_canceller(gate, kind),
                room=room,
                start_over_echo_ms=start_over_echo_ms,
            )
            onset = user_at + first_voiced
            starts = zip(heard.starts_ms, heard.decided_ms, strict=True)
            after = [(s - onset, d - onset) for s, d in starts if s >= onset - 100]
            onsets.append(after[0][0] if after else None)
            decisions.append(after[0][1] if after else None)
            removed += heard.user_frames_removed_db
    heard_at = sorted(o for o in onsets if o is not None)
    return {
        "seeds": seeds,
        "jitter_ms": jitter_ms,
        "gate": gate,
        "canceller": kind,
        "room": room,
        "start_over_echo_ms": start_over_echo_ms,
        "user_over_answer": user_answer + 1,
        "fresh_speech": fresh_speech,
        "echo_turns": sum(len(t) for t in echo_turns),
        "echo_turns_at_ms": echo_turns,
        "user": {
            "interruptions": len(onsets),
            "onset_to_speech_start_ms": _quantiles(heard_at),
            "onset_to_decision_ms": _quantiles([d for d in decisions if d is not None]),
            "late": sum(1 for o in heard_at if o > LATE_MS),
            "missed": sum(1 for o in onsets if o is None),
        },
        "user_frames_removed_db": _quantiles(removed, (0.1, 0.5, 0.9)),
    }


def _quantiles(values: list[float], qs: tuple[float, ...] = (0.5, 0.9)) -> dict[str, float] | None:
    if not values:
        return None
    return {f"p{round(q * 100)}": round(float(np.quantile(values, q)), 1) for q in qs}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m openrealtime.bench.echo_offline", description=__doc__)
    parser.add_argument("--seeds", type=int, default=6, help="sessions of each kind (default 6)")
    parser.add_argument("--jitter-ms", type=int, default=40, help="the server's input backlog at a restart, up to")
    parser.add_argument("--users", type=int, default=None, help="the first N interruptions only")
    parser.add_argument("--no-gate", action="store_true", help="the canceller alone, without the EchoGate")
    parser.add_argument(
        "--canceller", choices=("linear", "aec3"), default="linear", help="which canceller (default ours)"
    )
    parser.add_argument("--room", choices=ROOMS, default="bench", help="the bench's room, or a reverberant one")
    parser.add_argument(
        "--start-over-echo-ms",
        type=int,
        default=START_OVER_ECHO_MS,
        help=f"speech needed to start a turn while echo may come back (the server's: {START_OVER_ECHO_MS})",
    )
    parser.add_argument(
        "--user-over", type=int, choices=(1, 2), default=2, help="the answer interrupted (1: the room not learned)"
    )
    parser.add_argument("--fresh-speech", action="store_true", help="synthesize the speech anew (piper is random)")
    args = parser.parse_args(argv)
    result = measure(
        args.seeds,
        args.jitter_ms,
        users=args.users,
        gate=not args.no_gate,
        kind=args.canceller,
        room=args.room,
        start_over_echo_ms=args.start_over_echo_ms,
        user_answer=args.user_over - 1,
        fresh_speech=args.fresh_speech,
    )
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
