"""``openrealtime bench transcription``: live-caption latency and accuracy at real-time pace.

Streams English sentences (piper speech, 1.2 s apart) at real-time pace into a transcription session
(this server, started here, or ``--url``) and reports, per turn: first-delta latency after speech
onset, final-transcript latency after ``speech_stopped``, the word lag of the captions (a word's end in
the audio to the delta that shows it, :mod:`~openrealtime.bench.word_lag`), and WER of the whole run,
next to the WER of the same model (``OPENREALTIME_ASR_MODEL``, tiny.en by default) decoding the same
clips offline with the same options. Then a passage of 20 s or more read without a pause (one long
turn) is streamed the same way: its word lag and its live and offline WER. With the server in this
process it also reports the CPU real-time factor (process CPU seconds per second of audio).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from openrealtime.bench.remote_engines import maybe_engine_server
from openrealtime.bench.report import Plots, Series, distribution, progress
from openrealtime.bench.report import machine as machine  # re-exported: the name's old home
from openrealtime.bench.report import percentile as percentile
from openrealtime.bench.report import write_results as write_results
from openrealtime.bench.speech import SENTENCES, WIRE_RATE_HZ, conversation, word_error_rate
from openrealtime.bench.target import server_target
from openrealtime.bench.word_lag import PASSAGE_GAP_MS, caption_words, engine, passage, spoken_words, word_lags
from openrealtime.client.audio_io import file_chunks
from openrealtime.client.captions import CaptionBoard
from openrealtime.client.connection import RealtimeConnection
from openrealtime.client.transcribe import TranscriptionResult, transcribe_audio
from openrealtime.server.settings import Settings

CHUNK_MS = 100
# Dictation-style turns: OpenAI's 200 ms default splits sentences at every comma, which costs Whisper
# its context; 500 ms is what transcription clients (and our CLI) use.
SILENCE_DURATION_MS = 500
PREFIX_PADDING_MS = 300  # server_vad default: speech_started's audio_start_ms is this much before the onset
SAME_ONSET_S = 0.3
TRANSCRIPTION_PATH = "/v1/realtime?intent=transcription"
TRANSCRIPTION_MODEL = "gpt-4o-transcribe"
LANGUAGE = "en"
SHOWN_CHARS = 70  # of a transcript, in a progress line


@dataclass
class TurnTiming:
    """One detected turn: what was said, what was heard, and its two latencies (seconds)."""

    text: str
    transcript: str
    first_delta_after_onset_s: float | None
    final_after_stop_s: float | None


class TurnProgress:
    """Prints a progress line per final transcript, with its delay after ``speech_stopped``."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.count = 0
        self._stopped_at: dict[str, float] = {}

    def __call__(self, event: dict[str, Any], board: CaptionBoard) -> None:
        kind = event.get("type")
        if kind == "input_audio_buffer.speech_stopped":
            self._stopped_at[event["item_id"]] = time.monotonic()
        elif kind == "conversation.item.input_audio_transcription.completed":
            self.count += 1
            stopped = self._stopped_at.get(event["item_id"])
            delay = f"final {time.monotonic() - stopped:.3f} s after speech_stopped" if stopped else "final"
            progress("turn", self.count, self.total, f"{delay}: {str(event.get('transcript', ''))[:SHOWN_CHARS]!r}")


async def stream(
    url: str,
    audio: Any,
    *,
    api_key: str | None = None,
    on_event: Callable[[dict[str, Any], CaptionBoard], None] | None = None,
) -> TranscriptionResult:
    """Stream ``audio`` (24 kHz) at real-time pace into a transcription session at ``url``."""
    async with await RealtimeConnection.connect(url, api_key=api_key) as conn:
        return await transcribe_audio(
            conn,
            file_chunks(audio, chunk_ms=CHUNK_MS, realtime=True),
            model=TRANSCRIPTION_MODEL,
            language=LANGUAGE,
            silence_duration_ms=SILENCE_DURATION_MS,
            on_event=on_event,
        )


async def measure(
    url: str,
    texts: list[str],
    *,
    api_key: str | None = None,
    on_event: Callable[[dict[str, Any], CaptionBoard], None] | None = None,
    runs: list[TranscriptionResult] | None = None,
) -> tuple[list[TurnTiming], float, list[str]]:
    """Stream ``texts`` as one conversation into a transcription session at ``url``.

    Returns:
        The timing of every detected turn, the WER of the whole run and the heard turns' texts (the
        whole run is appended to ``runs`` when given, for its word lag).
    """
    audio, spans = conversation(texts)
    result = await stream(url, audio, api_key=api_key, on_event=on_event)
    if runs is not None:
        runs.append(result)
    t0 = result.audio_started_at_s
    first_delta: dict[str, float] = {}
    stopped: dict[str, float] = {}
    completed: dict[str, float] = {}
    started_ms: dict[str, int] = {}
    for timed in result.events:
        e = timed.event
        kind = e.get("type")
        if kind == "input_audio_buffer.speech_started":
            started_ms[e["item_id"]] = e["audio_start_ms"]
        elif kind == "conversation.item.input_audio_transcription.delta":
            first_delta.setdefault(e["item_id"], timed.at_s)
        elif kind == "input_audio_buffer.speech_stopped":
            stopped[e["item_id"]] = timed.at_s
        elif kind == "conversation.item.input_audio_transcription.completed":
            completed[e["item_id"]] = timed.at_s
    timings = []
    ordered = result.board.ordered()
    for turn in ordered:
        start_ms = started_ms.get(turn.item_id)
        # Where this turn's speech began: the sentence start when the turn starts a sentence, or the
        # detected onset (speech_started + prefix padding) when VAD split a sentence at a pause.
        detected_s = ((start_ms or 0) + PREFIX_PADDING_MS) / 1000
        index = min(range(len(spans)), key=lambda i: abs(spans[i][0] - detected_s))
        onset_s = spans[index][0] if abs(spans[index][0] - detected_s) <= SAME_ONSET_S else detected_s
        if onset_s != spans[index][0]:
            index = max(i for i in range(len(spans)) if spans[i][0] <= detected_s)
        onset_wall = t0 + onset_s
        timings.append(
            TurnTiming(
                text=texts[index],
                transcript=turn.text,
                first_delta_after_onset_s=(first_delta[turn.item_id] - onset_wall)
                if turn.item_id in first_delta
                else None,
                final_after_stop_s=(completed[turn.item_id] - stopped[turn.item_id])
                if turn.item_id in completed and turn.item_id in stopped
                else None,
            )
        )
    wer = word_error_rate([" ".join(texts)], [" ".join(t.text for t in ordered)])
    return timings, wer, [t.text for t in ordered]


@dataclass(frozen=True)
class Passage:
    """The long passage's run: its word lags, and its WER live and offline."""

    seconds: float
    word_lag_s: list[float]
    wer_live: float
    wer_offline: float
    turns: int


async def run_passage(url: str, api_key: str | None, transcriber: Any) -> Passage:
    """A passage of ``PASSAGE_MIN_S`` or more read without a pause, streamed at real-time pace."""
    audio, text = passage(SENTENCES[:10])  # distinct sentences: a repeated one misaligns the word times
    spoken = spoken_words(transcriber, audio, LANGUAGE)
    result = await stream(url, audio, api_key=api_key)
    lags = word_lags(caption_words(result.events), spoken, result.audio_started_at_s)
    live = word_error_rate([text], [" ".join(t.text for t in result.board.ordered())])
    offline = word_error_rate([text], [" ".join(w.word for w in spoken)])
    return Passage(audio.size / WIRE_RATE_HZ, lags, live, offline, len(result.board.ordered()))


def deltas_add_up(result: TranscriptionResult) -> tuple[int, int]:
    """Of the completed turns, how many had live deltas that add up to the transcript exactly (the
    others had a word corrected by the final decode of the whole turn)."""
    deltas: dict[str, str] = {}
    added_up = completed = 0
    for timed in result.events:
        event = timed.event
        if event.get("type") == "conversation.item.input_audio_transcription.delta":
            deltas[event["item_id"]] = deltas.get(event["item_id"], "") + str(event.get("delta", ""))
        elif event.get("type") == "conversation.item.input_audio_transcription.completed":
            completed += 1
            added_up += deltas.get(event["item_id"], "") == event.get("transcript")
    return added_up, completed


def lag_cell(lags: list[float]) -> str:
    if not lags:
        return "-"
    return f"{statistics.median(lags):.2f} / {percentile(lags, 95):.2f} / {max(lags):.2f} s (n={len(lags)})"


async def run_transcription_bench(
    *, url: str | None, out_dir: Path | None, turns: int, api_key: str | None = None, remote_engines: bool = False
) -> int:
    """The ``bench transcription`` command: ``turns`` sentences, one session, then the passage;
    ``remote_engines``: the server started here transcribes on a second one (bench/remote_engines.py)."""
    texts = list(SENTENCES[:turns])
    print(f"bench transcription: {len(texts)} turns of piper speech at real-time pace", flush=True)
    model = Settings.load().asr_model
    print(f"loading {model} for the offline decodes (word times, offline WER) …", flush=True)
    transcriber = engine(model)
    audio, _ = conversation(texts)
    spoken = spoken_words(transcriber, audio, LANGUAGE)
    offline = offline_wer(transcriber, texts)
    async with (
        maybe_engine_server(remote_engines) as overrides,
        server_target(url, TRANSCRIPTION_PATH, api_key=api_key, overrides=overrides) as target,
    ):
        runs: list[TranscriptionResult] = []
        cpu_before = time.process_time()
        timings, wer, _ = await measure(
            target.url, texts, api_key=target.api_key, on_event=TurnProgress(len(texts)), runs=runs
        )
        cpu_s = time.process_time() - cpu_before
        print("a passage read without stopping …", flush=True)
        long = await run_passage(target.url, target.api_key, transcriber)
        info = target.machine()
    lags = word_lags(caption_words(runs[0].events), spoken, runs[0].audio_started_at_s)
    added_up, completed = deltas_add_up(runs[0])
    audio_s = audio.size / WIRE_RATE_HZ
    firsts = [t.first_delta_after_onset_s for t in timings if t.first_delta_after_onset_s is not None]
    finals = [t.final_after_stop_s for t in timings if t.final_after_stop_s is not None]
    rtf = cpu_s / audio_s if target.in_process and not remote_engines else None  # remote: the decodes' CPU is elsewhere
    summary = {
        "machine": info,
        "asr_model": model,
        "turns": len(texts),
        "turns_detected": len(timings),
        "first_delta_after_onset_s": distribution(firsts),
        "final_after_speech_stopped_s": distribution(finals),
        "word_lag_s": distribution(lags),
        "turns_whose_deltas_add_up_to_the_transcript": [added_up, completed],
        "cpu_real_time_factor": rtf,
        "wer_live": wer,
        "wer_offline_same_model": offline,
        "passage": {
            "seconds": long.seconds,
            "turns_detected": long.turns,
            "word_lag_s": distribution(long.word_lag_s),
            "wer_live": long.wer_live,
            "wer_offline_same_model": long.wer_offline,
        },
        "turn_details": [asdict(t) for t in timings],
    }
    lines = [
        f"| metric ({model}{', on a second openrealtime over HTTP' if remote_engines else ''}) | value |",
        "|---|---|",
        f"| turns (detected / spoken) | {len(timings)} / {len(texts)} |",
    ]
    if firsts:
        p50, p95 = statistics.median(firsts), percentile(firsts, 95)
        lines.append(
            f"| first delta after speech onset, p50 / p95 / max | {p50:.2f} / {p95:.2f} / {max(firsts):.2f} s |"
        )
    if finals:
        p50, p95 = statistics.median(finals), percentile(finals, 95)
        lines.append(
            f"| final transcript after speech_stopped, p50 / p95 / max | {p50:.3f} / {p95:.3f} / {max(finals):.3f} s |"
        )
    lines.append(f"| word lag, p50 / p95 / max | {lag_cell(lags)} |")
    lines.append(f"| turns whose deltas add up to the transcript | {added_up} / {completed} |")
    if rtf is not None:
        lines.append(f"| CPU real-time factor (server + client process) | {rtf:.3f} |")
    lines.append(f"| WER live / offline same model | {wer * 100:.1f} % / {offline * 100:.1f} % |")
    lines.append(
        f"| passage ({long.seconds:.0f} s, no pause over {PASSAGE_GAP_MS} ms): word lag p50 / p95 / max "
        f"| {lag_cell(long.word_lag_s)} |"
    )
    lines.append(
        f"| passage: WER live / offline same model | {long.wer_live * 100:.1f} % / {long.wer_offline * 100:.1f} % |"
    )
    table = "\n".join(lines)
    print(table)
    if out_dir is not None:
        plots = Plots(
            latencies=(
                Series("first delta after speech onset", firsts),
                Series("final transcript after speech_stopped", finals),
                Series("word lag (sentences)", lags),
                Series("word lag (passage)", long.word_lag_s),
            )
        )
        write_results(out_dir, "transcription", summary, table, plots=plots)
    return 0


def offline_wer(transcriber: Any, texts: list[str]) -> float:
    """The same engine and model on the same clips, one offline decode per clip with the options
    the server's final decode uses."""
    from openrealtime.bench.speech import speak
    from openrealtime.bench.word_lag import offline_wer as decode_clips

    return decode_clips(transcriber, [(text, speak(text)) for text in texts], LANGUAGE)
