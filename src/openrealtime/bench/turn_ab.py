"""Issue 13's end-of-turn levers off (A) and on (B), clip by clip, in one run of the traced bench.

``python -m openrealtime.bench.turn_ab`` starts the server in this process, opens one session per
lever setting and mode, and streams each clip of the pause set to A and then B (B then A on every
other clip), so a busy machine weighs on both alike. Each run is traced as ``bench turns
--turn-trace`` does (:mod:`~openrealtime.bench.turn_trace`: milestones on the input's clock, ms after
the last word), and timed as the bench does (end of speech -> first answer audio, wall clock).

The levers (``--levers``, all by default), each as it was before issue 13's changes when off:

* ``first_clause``: the first clause cut at 24 characters where a phrase can rest, the rest of its
  sentence its own piece (:mod:`~openrealtime.session.clauses`); off: cut at 40, at any word.
* ``flicker``: the pause's final decode and answer kept across a flicker of the VAD
  (:mod:`~openrealtime.session.flicker`); off: dropped at the first frame of speech.
* ``ask_sooner``: ``semantic_vad`` medium asks the end-of-turn model after 128 ms of pause; off: 160.
* ``text_signal``: ``semantic_vad``'s text signal, the LLM's P(end of message) after the pause's
  words (:mod:`~openrealtime.session.eou_text`); off: never asked (decided as without it).
* ``voice_first``: an answer's later tokens wait while its own first clause is voiced
  (:class:`~openrealtime.contracts.ChatRequest` ``hold_while``); off: its first 24 tokens go on
  beside the voice.
* ``clear_rescue``: finished-looking words that Smart Turn doubts and the LLM reads as a whole
  message clearly (``eou_text.CLEAR_ABOVE``) wait 0.6 times the word rule's pause; off: 1.5 times,
  as any rescued words.
* ``judges_aside``: the judges kept out of the answer's way (session 30): Smart Turn asked at 64 ms
  of pause at medium, the clear rescue at 0.4 of the word rule's pause, and the text signal's
  question held while an answer writes its first clause (``eou_text.hold_ms``); off: 128 ms, 0.6,
  never held.
* ``warm``: the LLM evaluates the answer's prompt and the text signal's up to the words heard so far
  while the user speaks (``WarmAnswer``, ``WarmTurnWords``); off: both from the pause's words.
* ``quick_resampler``: the input resampled to 16 kHz by the polyphase filter that holds back ~1.5 ms
  (:class:`~openrealtime.audio.resample.PolyphaseResampler`); off: soxr's, ~21 ms on average.
* ``loop_repair``: a Whisper decode that looped by saying its words again from their start is taken
  as said once (:mod:`~openrealtime.engines.whisper`); off: decoded again in a 30 s window, and the
  same words twice in full at 4-6 words a second not taken for a loop.
* ``voice_pieces``: piper voices a sentence a piece at a time, the first ~280 ms of speech first
  (:mod:`~openrealtime.engines.piper_tts`); off: each sentence decoded whole (the same gain).
* ``q8_llm``: the LLM (answers and the text signal) runs the shipped SmolLM2 re-quantized to Q8_0
  (:func:`~openrealtime.engines.model_files.smollm2_q8_gguf`); off: the shipped Q4_1 file itself,
  loaded beside it once.
* ``fresh_vad``: Silero's recurrent state made fresh after each second of quiet
  (:mod:`~openrealtime.engines.silero`); off: carried through the whole session.
* ``quiet_decode``: the pause's final decode begun when the speech goes quiet, before the VAD calls
  the pause (:mod:`~openrealtime.session.quiet`); off: at the VAD's pause.

The "off" settings are made by patching this process's classes while A's clip runs: a bench tool,
never a server setting.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import re
import statistics
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from openrealtime.audio.resample import StreamResampler
from openrealtime.bench.turn_clips import Clip, pause_set
from openrealtime.bench.turn_trace import MILESTONES, ClipTrace, SessionWatch, clip_trace, trace_table
from openrealtime.bench.turns import LEAD_MS, REALTIME_PATH, Mode, Trial, TrialSession, select_modes
from openrealtime.engines import llama_slots, model_files, piper_tts, silero, whisper
from openrealtime.engines.end_token import EndTokenModel, TurnWordsScorer
from openrealtime.engines.llama_chat import LlamaChatModel, LlamaOptions
from openrealtime.session import endpointing, eou_text, frontend, turn_end
from openrealtime.session.clauses import ClauseSplitter
from openrealtime.session.eou_text import WordsEndOfTurn
from openrealtime.session.flicker import FlickerKeeper
from openrealtime.session.realtime import DEFAULT_INSTRUCTIONS, RealtimeSession
from openrealtime.session.turns import EarlyDecode, Turn

LEVERS = (
    "first_clause",
    "flicker",
    "ask_sooner",
    "text_signal",
    "voice_first",
    "judges_aside",
    "warm",
    "clear_rescue",
    "quick_resampler",
    "voice_pieces",
    "loop_repair",
    "q8_llm",
    "fresh_vad",
    "quiet_decode",
)
OLD_FIRST_MAX_CHARS = 40
OLD_CHECK_PAUSE_MS = 160
JUDGES_CHECK_PAUSE_MS = 128  # ... and before judges_aside (sessions 25-29)
JUDGES_CLEAR_PAUSE_FACTOR = 0.6
NEVER_FRESH = 1 << 62  # frames of quiet before Silero's state is made fresh: never
_SENTENCE_END = re.compile(r"[.!?…]+[\"')\]]*\s")
_CLAUSE_END = re.compile(r"[,;:—–]\s")


class OldSplitter:
    """The clause splitter before issue 13's first-clause change (40 characters, any word)."""

    _pending: str
    _emitted: int

    def __init__(self, *, first_max_chars: int = OLD_FIRST_MAX_CHARS) -> None:
        self._pending, self._emitted = "", 0

    def _find_cut(self) -> int | None:
        text, first = self._pending, self._emitted == 0
        min_chars = 12 if first else 24
        for match in _SENTENCE_END.finditer(text):
            if match.end() >= min_chars or first:
                return match.end()
        if first:
            for match in _CLAUSE_END.finditer(text):
                if match.end() >= 12:
                    return match.end()
            if len(text) > OLD_FIRST_MAX_CHARS:
                space = text.rfind(" ", 0, OLD_FIRST_MAX_CHARS)
                return space + 1 if space > 0 else None
        return None

    def flush(self) -> list[str]:
        rest, self._pending = self._pending.strip(), ""
        if rest:
            self._emitted += 1
            return [rest]
        return []


def _drop_at_once(self: FlickerKeeper, turn: Turn, sample: int) -> list[Any]:
    return self._drop(turn)


def _never_ask(self: WordsEndOfTurn, item_id: str, words: str, paused_ms: float) -> list[Any]:
    return []


def _never_held(paused_ms: float) -> float:
    return 0.0


def _whole_sentence(count: int) -> Iterator[tuple[int, int]]:
    yield 0, count


def _no_warming(self: RealtimeSession, heard: Any) -> None:
    return None


def _no_words_warming(self: WordsEndOfTurn, heard: str) -> list[Any]:
    return []


def _no_repair(text: str, duration_s: float) -> None:
    return None


def _looped_by_rate(text: str, duration_s: float) -> bool:
    words = len(text.split())
    return words >= whisper.MIN_LOOP_WORDS and words > whisper.MAX_WORDS_PER_S * max(duration_s, 0.1)


class ShippedLlm:
    """``q8_llm`` off: the answers and the text signal on the shipped Q4_1 file, loaded once beside
    the server's own (which keep their slots and caches for B)."""

    chat: LlamaChatModel
    scorer: TurnWordsScorer
    _chat = LlamaChatModel.chat
    _warm = LlamaChatModel.warm
    _end_probability = TurnWordsScorer.end_probability
    _warm_words = TurnWordsScorer.warm

    _lock = threading.Lock()

    @classmethod
    def load(cls) -> None:
        """Load the shipped file's models once (before the clips, where the bench can)."""
        with cls._lock:
            if hasattr(cls, "chat"):
                return
            cls.scorer = TurnWordsScorer(EndTokenModel(model_files.smollm2_gguf()), DEFAULT_INSTRUCTIONS)
            cls.chat = LlamaChatModel(LlamaOptions(model_path=model_files.smollm2_gguf()))

    @classmethod
    def patches(cls) -> dict[tuple[object, str], object]:
        def chat(self: LlamaChatModel, request: Any, stop: Any) -> Any:
            cls.load()
            cls.chat.yield_to(self._decoder.others_urgent or (lambda: False))
            return cls._chat(cls.chat, request, stop)

        def warm(self: LlamaChatModel, request: Any) -> None:
            cls.load()
            cls._warm(cls.chat, request)

        def end_probability(self: TurnWordsScorer, words: str) -> float:
            cls.load()
            return cls._end_probability(cls.scorer, words)

        def warm_words(self: TurnWordsScorer, words: str) -> None:
            cls.load()
            cls._warm_words(cls.scorer, words)

        return {
            (LlamaChatModel, "chat"): chat,
            (LlamaChatModel, "warm"): warm,
            (TurnWordsScorer, "end_probability"): end_probability,
            (TurnWordsScorer, "warm"): warm_words,
        }


def _never_early(self: EarlyDecode, turn: Turn) -> list[Any]:
    return []


def _urgent_by_count(self: Any) -> bool:
    return bool(self.produced < llama_slots.URGENT_TOKENS)


@contextlib.contextmanager
def levers_off(levers: Sequence[str]) -> Iterator[None]:
    """Patch ``levers`` back to how they were before issue 13's changes, for the duration."""
    saved: list[tuple[object, str, object]] = []

    def patch(owner: object, name: str, value: object) -> None:
        saved.append((owner, name, getattr(owner, name)))
        setattr(owner, name, value)

    if "first_clause" in levers:
        for name in ("__init__", "_find_cut", "flush"):
            patch(ClauseSplitter, name, getattr(OldSplitter, name))
    if "flicker" in levers:
        patch(FlickerKeeper, "speech_resumed", _drop_at_once)
    if "judges_aside" in levers:  # before ask_sooner and clear_rescue, which go further back
        old = endpointing.END_OF_TURN["medium"]
        saved.append((endpointing.END_OF_TURN, "medium", old))
        endpointing.END_OF_TURN["medium"] = dataclasses.replace(old, check_pause_ms=JUDGES_CHECK_PAUSE_MS)
        patch(turn_end, "CLEAR_PAUSE_FACTOR", JUDGES_CLEAR_PAUSE_FACTOR)
        patch(eou_text, "hold_ms", _never_held)
    if "ask_sooner" in levers:
        old = endpointing.END_OF_TURN["medium"]
        saved.append((endpointing.END_OF_TURN, "medium", old))
        endpointing.END_OF_TURN["medium"] = dataclasses.replace(old, check_pause_ms=OLD_CHECK_PAUSE_MS)
    if "text_signal" in levers:
        patch(WordsEndOfTurn, "ask", _never_ask)
    if "voice_first" in levers:
        patch(llama_slots.Completion, "urgent", _urgent_by_count)
    if "clear_rescue" in levers:
        patch(turn_end, "CLEAR_PAUSE_FACTOR", turn_end.RESCUED_PAUSE_FACTOR)
    if "voice_pieces" in levers:
        patch(piper_tts, "_pieces", _whole_sentence)
    if "quick_resampler" in levers:
        patch(frontend, "quick_resampler", StreamResampler)
    if "loop_repair" in levers:
        patch(whisper, "_loop_repaired", _no_repair)
        patch(whisper, "_looped", _looped_by_rate)
    if "q8_llm" in levers:
        for (owner, name), value in ShippedLlm.patches().items():
            patch(owner, name, value)
    if "fresh_vad" in levers:
        patch(silero, "FRESH_AFTER_FRAMES", NEVER_FRESH)
    if "quiet_decode" in levers:
        patch(EarlyDecode, "begin", _never_early)
    if "warm" in levers:
        patch(RealtimeSession, "_warm", _no_warming)
        patch(WordsEndOfTurn, "warm", _no_words_warming)
    try:
        yield
    finally:
        for owner, name, value in reversed(saved):
            if isinstance(owner, dict):
                owner[name] = value
            else:
                setattr(owner, name, value)


Runs = dict[str, list[tuple[Trial, ClipTrace]]]


async def ab_runs(
    url: str, mode: Mode, clips: list[Clip], levers: Sequence[str], *, wait_s: float | None = None
) -> Runs:
    """``clips`` under ``mode`` on an A session (``levers`` off) and a B session (on), interleaved:
    each variant's trials and traces, in clip order."""
    runs: Runs = {"A": [], "B": []}
    options = {} if wait_s is None else {"answer_wait_s": wait_s}
    with SessionWatch() as watch:
        with levers_off(levers):  # A's session is configured with the old settings
            a_session = TrialSession.open(url, mode)
            a = await a_session.__aenter__()
        try:
            async with TrialSession.open(url, mode) as b:
                for index, clip in enumerate(clips):
                    for variant in ("A", "B") if index % 2 == 0 else ("B", "A"):
                        session = a if variant == "A" else b
                        end_ms = session.sent_ms + LEAD_MS + clip.speech_end_ms
                        watch.marks.clear()
                        with levers_off(levers) if variant == "A" else contextlib.nullcontext():
                            trial = await session.run(clip, **options)
                        runs[variant].append((trial, clip_trace(clip, end_ms, list(watch.marks))))
        finally:
            await a_session.__aexit__(None, None, None)
    return runs


async def run_ab(url: str, modes: tuple[Mode, ...], clips: list[Clip], levers: Sequence[str]) -> str:
    """Each mode's A/B table, then each variant's trace table."""
    texts = [f"Levers off in A, on in B: {', '.join(levers)}. Clips alternate A-B and B-A."]
    for mode in modes:
        runs = await ab_runs(url, mode, clips, levers)
        texts.append(ab_table(mode.name, runs))
        for variant in ("A", "B"):
            texts.append(trace_table(f"{mode.name}, {variant}", [t for _, t in runs[variant]]))
    return "\n\n".join(texts)


def ab_table(mode: str, runs: Runs) -> str:
    """Medians of A and B and the median and mean of the paired difference B - A (clip by clip), per
    milestone. The milestones are on the input's clock, in its 20 ms chunks, so most clips' pairs
    differ by 0 or one chunk: the paired median is often 0 where the mean moves."""
    lines = [
        f"{mode}: A (levers off) against B (on), {len(runs['A'])} clips each, medians",
        "",
        "| | A | B | B - A (paired), median | B - A (paired), mean |",
        "|---|---|---|---|---|",
    ]

    def row(label: str, a: list[float | None], b: list[float | None], unit: str) -> str:
        pairs = [(x, y) for x, y in zip(a, b, strict=True) if x is not None and y is not None]
        known_a, known_b = [x for x in a if x is not None], [y for y in b if y is not None]
        differences = [y - x for x, y in pairs]
        cells = [statistics.median(v) if v else None for v in (known_a, known_b, differences)]
        cells.append(statistics.fmean(differences) if differences else None)
        shown = ["-" if c is None else f"{c:+.0f}" if unit == "ms" else f"{c:.3f}" for c in cells]
        return f"| {label} ({unit}) | " + " | ".join(shown) + " |"

    a_trials, b_trials = [t for t, _ in runs["A"]], [t for t, _ in runs["B"]]
    lines.append(
        row(
            "end of speech -> first audio, wall",
            [t.speech_end_to_first_audio_s for t in a_trials],
            [t.speech_end_to_first_audio_s for t in b_trials],
            "s",
        )
    )
    for key, label in MILESTONES:
        a_ms = [float(v) if (v := c.milestones[key]) is not None else None for _, c in runs["A"]]
        b_ms = [float(v) if (v := c.milestones[key]) is not None else None for _, c in runs["B"]]
        lines.append(row(label, a_ms, b_ms, "ms"))
    cut = [sum(t.cut_off for t in trials) for trials in (a_trials, b_trials)]
    lines.append(f"| cut off (clips) | {cut[0]} | {cut[1]} | | |")
    begun = [sum(c.answers_begun for _, c in runs[v]) for v in ("A", "B")]
    lines.append(f"| answers begun (all clips) | {begun[0]} | {begun[1]} | | |")
    for variant, trials in (("A", a_trials), ("B", b_trials)):
        lines += [f"- cut off in {variant}: [{t.voice}] {t.text}" for t in trials if t.cut_off]
    return "\n".join(lines)


async def main_async(limit: int | None, modes_spec: str, levers: Sequence[str]) -> str:
    from openrealtime.bench.target import server_target

    modes = select_modes(modes_spec)
    async with server_target(None, REALTIME_PATH, api_key=None) as target:
        clips = await asyncio.to_thread(pause_set, limit)
        if "q8_llm" in levers:
            await asyncio.to_thread(ShippedLlm.load)  # before the clips, not during one
        return await run_ab(target.url, modes, clips, levers)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--limit", type=int, default=2, help="clips of each kind (as --turn-limit)")
    parser.add_argument("--modes", default="semantic_vad:medium,server_vad:500", help="as --turn-modes")
    parser.add_argument("--levers", default=",".join(LEVERS), help=f"off in A: some of {', '.join(LEVERS)}")
    args = parser.parse_args(argv)
    levers = [lever.strip() for lever in args.levers.split(",") if lever.strip()]
    unknown = set(levers) - set(LEVERS)
    if unknown:
        parser.error(f"unknown lever(s) {', '.join(sorted(unknown))}")
    print(asyncio.run(main_async(args.limit or None, args.modes, levers)))


if __name__ == "__main__":
    main()
