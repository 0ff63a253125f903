"""``openrealtime bench transcription``: live-caption latency and accuracy at real-time pace.

Streams English sentences (piper speech, 1.2 s apart) at real-time pace into a transcription session
(this server, started here, or ``--url``) and reports, per turn: first-delta latency after speech
onset, final-transcript latency after ``speech_stopped``, and WER of the whole run, next to the WER of
the same model transcribing the same clips offline. With the server in this process it also reports
the CPU real-time factor (process CPU seconds per second of audio).
"""

from __future__ import annotations

import json
import platform
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from openrealtime.bench.speech import SENTENCES, WIRE_RATE_HZ, conversation, speak, word_error_rate
from openrealtime.client.audio_io import file_chunks
from openrealtime.client.connection import RealtimeConnection
from openrealtime.client.transcribe import transcribe_audio

CHUNK_MS = 100
# Dictation-style turns: OpenAI's 200 ms default splits sentences at every comma, which costs Whisper
# its context; 500 ms is what transcription clients (and our CLI) use.
SILENCE_DURATION_MS = 500
PREFIX_PADDING_MS = 300  # server_vad default: speech_started's audio_start_ms is this much before the onset
SAME_ONSET_S = 0.3


@dataclass
class TurnTiming:
    text: str
    transcript: str
    first_delta_after_onset_s: float | None
    final_after_stop_s: float | None


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def machine() -> dict[str, Any]:
    import os

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "gpu": None}


def offline_wer(texts: list[str]) -> float:
    """The same Whisper model on the same clips, one plain faster-whisper call per clip."""
    from faster_whisper import WhisperModel

    from openrealtime.audio.resample import StreamResampler
    from openrealtime.engines.model_files import whisper_tiny_en_dir

    model = WhisperModel(str(whisper_tiny_en_dir()), device="cpu", compute_type="int8", cpu_threads=2)
    hypotheses = []
    for text in texts:
        resampler = StreamResampler(WIRE_RATE_HZ, 16_000)
        audio = resampler.process(speak(text), last=True)
        segments, _ = model.transcribe(audio, language="en", beam_size=1, condition_on_previous_text=False)
        hypotheses.append(" ".join(s.text.strip() for s in segments))
    return word_error_rate(texts, hypotheses)


async def measure(url: str, texts: list[str]) -> tuple[list[TurnTiming], float, list[str]]:
    audio, spans = conversation(texts)
    async with await RealtimeConnection.connect(url) as conn:
        result = await transcribe_audio(
            conn,
            file_chunks(audio, chunk_ms=CHUNK_MS, realtime=True),
            model="gpt-4o-transcribe",
            language="en",
            silence_duration_ms=SILENCE_DURATION_MS,
        )
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


async def run_transcription_bench(*, url: str | None, out_dir: Path | None, turns: int) -> int:
    texts = list(SENTENCES[:turns])
    print(f"bench transcription: {len(texts)} turns of piper speech at real-time pace", flush=True)
    cpu_before = time.process_time()
    if url is None:
        from openrealtime.server.embedded import running_server

        async with running_server() as base:
            cpu_before = time.process_time()
            timings, wer, _ = await measure(f"{base}/v1/realtime?intent=transcription", texts)
            cpu_s = time.process_time() - cpu_before
    else:
        timings, wer, _ = await measure(url, texts)
        cpu_s = float("nan")
    audio_s = conversation(texts)[0].size / WIRE_RATE_HZ
    print("computing the offline WER of the same model …", flush=True)
    offline = offline_wer(texts)
    firsts = [t.first_delta_after_onset_s for t in timings if t.first_delta_after_onset_s is not None]
    finals = [t.final_after_stop_s for t in timings if t.final_after_stop_s is not None]
    summary = {
        "machine": machine(),
        "turns": len(texts),
        "turns_detected": len(timings),
        "first_delta_after_onset_s": {
            "p50": statistics.median(firsts),
            "p95": percentile(firsts, 95),
            "max": max(firsts),
        }
        if firsts
        else None,
        "final_after_speech_stopped_s": {
            "p50": statistics.median(finals),
            "p95": percentile(finals, 95),
            "max": max(finals),
        }
        if finals
        else None,
        "cpu_real_time_factor": cpu_s / audio_s if url is None else None,
        "wer_live": wer,
        "wer_offline_same_model": offline,
        "turn_details": [asdict(t) for t in timings],
    }
    lines = [
        "| metric | value |",
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
    if url is None:
        lines.append(f"| CPU real-time factor (server + client process) | {summary['cpu_real_time_factor']:.3f} |")
    lines.append(f"| WER live / offline same model | {wer * 100:.1f} % / {offline * 100:.1f} % |")
    table = "\n".join(lines)
    print(table)
    if out_dir is not None:
        write_results(out_dir, "transcription", summary, table)
    return 0


def write_results(out_dir: Path, kind: str, summary: dict[str, Any], table: str) -> None:
    """``results.json`` and ``summary.md`` in ``out_dir`` (with the machine the run was on)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(summary, indent=2))
    (out_dir / "summary.md").write_text(f"# bench {kind}\n\nmachine: {summary['machine']}\n\n{table}\n")
    print(f"wrote {out_dir}/results.json and summary.md")
