"""``openrealtime bench translation``: simultaneous-translation latency and quality at real-time pace.

Streams a minute and more of continuous English speech (every sentence of
:data:`~openrealtime.bench.speech.SENTENCES`, piper voice, short gaps) at real-time pace into a
translation session (this server, started here, or ``--url``), then closes it. Reported:

* **first audio**: speech onset to the first translated audio (target: within 3 s);
* **last audio**: end of speech to the last translated audio (target: within 3 s); also when a
  listener who plays every delta as it arrives would have heard the end;
* **per-sentence lag**: end of each sentence to the arrival of the translated audio that ends it, and
  to the moment such a listener has heard it; its mean over the first and the second half of the
  speech shows whether lag builds up (it would if translated speech ran longer than the speech it
  translates: the session then asks for faster speech);
* **chrF** (sacrebleu) of the live translation against a reference made by translating each source
  sentence offline with the same engine, next to the chrF of translating the session's own final
  source transcript offline (target: the live figure is no worse). The first isolates what
  simultaneity costs, the second what ASR errors cost; WER of the live source transcript is shown too.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from openrealtime.bench.report import Plots, Series, Stages, distribution, progress, write_results
from openrealtime.bench.speech import SENTENCES, WIRE_RATE_HZ, conversation, word_error_rate
from openrealtime.bench.target import server_target
from openrealtime.client.audio_io import file_chunks
from openrealtime.client.connection import RealtimeConnection
from openrealtime.client.translate import TranslationResult, translate_audio

CHUNK_MS = 200  # the engine frame: what a microphone client like OpenAI's examples sends
GAP_MS = 300  # between sentences: continuous speech with breaths
LEAD_MS = 500
TAIL_MS = 1500  # silence streamed after the speech, before session.close
TARGET_S = 3.0
TRANSLATIONS_PATH = "/v1/realtime/translations?model=gpt-realtime-translate"
SOURCE_LANGUAGE = "en"
MS_PER_S = 1000
SHOWN_CHARS = 70  # of a translated sentence, in a progress line
_SENTENCE_END = (".", "?", "!", "…")


@dataclass
class Timings:
    """The latencies of one run (seconds) and how much translated speech it produced."""

    first_audio_after_onset_s: float | None
    last_audio_after_speech_end_s: float | None
    heard_end_after_speech_end_s: float | None
    sentence_lags_s: list[float]
    heard_lags_s: list[float]
    output_audio_s: float


def timings(result: TranslationResult, spans: list[tuple[float, float]]) -> Timings:
    """Latencies from the arrival times of the events (loop clock) and the sentence spans."""
    t0 = result.audio_started_at_s
    onset, speech_end = t0 + spans[0][0], t0 + spans[-1][1]
    audio = [(t.at_s, t.event) for t in result.events if t.event.get("type") == "session.output_audio.delta"]
    # A listener plays every delta as it arrives, after what is still playing. A translated sentence
    # ends with an output transcript delta that ends a sentence: its audio arrives, then is heard.
    play_end, total = 0.0, 0.0
    arrived: list[float] = []  # when the audio ending each translated sentence arrived
    heard: list[float] = []  # when the listener has heard it to its end
    ending = counted = False
    for timed in result.events:
        event, kind = timed.event, timed.event.get("type")
        if kind == "session.output_transcript.delta":
            ending, counted = str(event.get("delta", "")).rstrip().endswith(_SENTENCE_END), False
        elif kind == "session.output_audio.delta":
            seconds = len(event.get("delta") or "") * 3 // 4 / 2 / int(event.get("sample_rate") or WIRE_RATE_HZ)
            play_end = max(play_end, timed.at_s) + seconds
            total += seconds
            if ending and not counted:
                arrived.append(timed.at_s)
                heard.append(play_end)
                counted = True
            elif ending:
                heard[-1] = play_end
    complete = len(arrived) == len(spans)
    lags = [a - (t0 + span[1]) for a, span in zip(arrived, spans, strict=False)] if complete else []
    heard_lags = [h - (t0 + span[1]) for h, span in zip(heard, spans, strict=False)] if complete else []
    return Timings(
        first_audio_after_onset_s=audio[0][0] - onset if audio else None,
        last_audio_after_speech_end_s=audio[-1][0] - speech_end if audio else None,
        heard_end_after_speech_end_s=play_end - speech_end if audio else None,
        sentence_lags_s=lags,
        heard_lags_s=heard_lags,
        output_audio_s=total,
    )


def chrf(hypothesis: str, reference: str) -> float:
    import sacrebleu

    return float(sacrebleu.corpus_chrf([hypothesis], [[reference]]).score)


class SentenceProgress:
    """Prints a progress line per translated sentence as its last transcript delta arrives."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.count = 0
        self._text: list[str] = []
        self._started = time.monotonic()

    def __call__(self, event: dict[str, Any]) -> None:
        if event.get("type") != "session.output_transcript.delta":
            return
        delta = str(event.get("delta", ""))
        self._text.append(delta)
        if delta.rstrip().endswith(_SENTENCE_END):
            self.count += 1
            text = "".join(self._text).strip()
            self._text.clear()
            elapsed = time.monotonic() - self._started
            progress("sentence", self.count, self.total, f"{elapsed:5.1f} s: {text[:SHOWN_CHARS]!r}")


async def measure(
    url: str, texts: list[str], language: str, *, api_key: str | None = None, show_progress: bool = False
) -> tuple[TranslationResult, list[tuple[float, float]]]:
    """Stream ``texts`` as continuous speech into a translation session at ``url``, then close it."""
    speech, spans = conversation(texts, gap_ms=GAP_MS, lead_ms=LEAD_MS)
    audio = np.concatenate([speech, np.zeros(WIRE_RATE_HZ * TAIL_MS // MS_PER_S, dtype=np.float32)])
    on_event = SentenceProgress(len(texts)) if show_progress else None
    async with await RealtimeConnection.connect(url, api_key=api_key) as conn:
        result = await translate_audio(
            conn, file_chunks(audio, chunk_ms=CHUNK_MS, realtime=True), language=language, on_event=on_event
        )
    return result, spans


async def run_translation_bench(
    *, url: str | None, out_dir: Path | None, language: str = "es", api_key: str | None = None
) -> int:
    """The ``bench translation`` command: every sentence, one session, then the offline references."""
    from openrealtime.engines.apertium import ApertiumTranslator

    texts = list(SENTENCES)
    speech_s = conversation(texts, gap_ms=GAP_MS, lead_ms=LEAD_MS)[0].size / WIRE_RATE_HZ
    print(
        f"bench translation: {len(texts)} sentences, {speech_s:.0f} s of continuous English speech at "
        f"real-time pace, into '{language}'",
        flush=True,
    )
    async with server_target(url, TRANSLATIONS_PATH, api_key=api_key) as target:
        cpu_before = time.process_time()
        result, spans = await measure(target.url, texts, language, api_key=target.api_key, show_progress=True)
        cpu_s = time.process_time() - cpu_before
        info = target.machine()
    if not result.closed:
        print("warning: the session did not send session.closed", flush=True)
    t = timings(result, spans)
    print("translating the source texts offline with the same engine (Apertium) …", flush=True)
    translator = ApertiumTranslator()
    if not translator.supports(SOURCE_LANGUAGE, language):
        print(f"Apertium has no {SOURCE_LANGUAGE}->{language} pair: no chrF", flush=True)
        reference = offline = ""
    else:
        reference = " ".join(translator.translate(s, source=SOURCE_LANGUAGE, target=language) for s in texts)
        offline = translator.translate(result.source, source=SOURCE_LANGUAGE, target=language)
    chrf_live = chrf(result.target, reference) if reference else None
    chrf_offline = chrf(offline, reference) if reference else None
    wer = word_error_rate([" ".join(texts)], [result.source])
    summary: dict[str, Any] = {
        "machine": info,
        "sentences": len(texts),
        "speech_s": speech_s,
        "language": language,
        **asdict(t),
        "sentence_lag_s": distribution(t.sentence_lags_s),
        "heard_lag_s": distribution(t.heard_lags_s),
        "cpu_real_time_factor": cpu_s / speech_s if target.in_process else None,
        "chrf_live": chrf_live,
        "chrf_offline_final_transcript": chrf_offline,
        "source_wer_live": wer,
        "errors": result.errors,
        "source_transcript": result.source,
        "translation": result.target,
        "reference": reference,
    }

    def seconds(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.2f} s"

    lines = [
        "| metric | value | target |",
        "|---|---|---|",
        f"| speech | {speech_s:.1f} s, {len(texts)} sentences, {GAP_MS} ms gaps | ≥ 60 s |",
        f"| speech onset → first translated audio | {seconds(t.first_audio_after_onset_s)} | ≤ {TARGET_S:.0f} s |",
        f"| end of speech → last translated audio | {seconds(t.last_audio_after_speech_end_s)} | ≤ {TARGET_S:.0f} s |",
        f"| end of speech → end of playback (listener) | {seconds(t.heard_end_after_speech_end_s)} | |",
        f"| translated speech / source speech | {t.output_audio_s:.1f} s / {speech_s:.1f} s | |",
    ]
    if t.sentence_lags_s:
        s, h = summary["sentence_lag_s"], summary["heard_lag_s"]
        half = len(t.heard_lags_s) // 2
        first, second = statistics.mean(t.heard_lags_s[:half]), statistics.mean(t.heard_lags_s[half:])
        lines += [
            f"| sentence end → its translated audio arrives, p50 / p95 / max | {s['p50']:.2f} / {s['p95']:.2f} / "
            f"{s['max']:.2f} s | |",
            f"| sentence end → listener has heard its translation, p50 / p95 / max | {h['p50']:.2f} / "
            f"{h['p95']:.2f} / {h['max']:.2f} s | |",
            f"| ... mean over the first / second half of the speech | {first:.2f} / {second:.2f} s | no growth |",
        ]
    if target.in_process:
        lines.append(f"| CPU real-time factor (server + client) | {cpu_s / speech_s:.2f} | < 1 |")
    if chrf_live is not None and chrf_offline is not None:
        lines.append(f"| chrF live vs per-sentence reference | {chrf_live:.1f} | ≥ offline |")
        lines.append(f"| chrF offline (final source transcript, same engine) | {chrf_offline:.1f} | |")
    lines.append(f"| WER of the live source transcript | {wer * 100:.1f} % | |")
    if result.errors:
        lines.append(f"| errors | {len(result.errors)} | 0 |")
    table = "\n".join(lines)
    print(table)
    if out_dir is not None:
        write_results(out_dir, "translation", summary, table, plots=translation_plots(t))
    return 0


def translation_plots(t: Timings) -> Plots:
    """Lag distributions, and each sentence's lag split into arrival and waiting to be heard."""
    waits = [heard - arrived for heard, arrived in zip(t.heard_lags_s, t.sentence_lags_s, strict=True)]
    return Plots(
        latencies=(
            Series("sentence end → its translated audio arrives", t.sentence_lags_s),
            Series("sentence end → a listener has heard its translation", t.heard_lags_s),
        ),
        stages=Stages(
            bars=[str(i) for i in range(1, len(t.sentence_lags_s) + 1)],
            parts={
                "sentence end → translated audio arrives": t.sentence_lags_s,
                "arrived → heard to its end (its playback, after what was queued)": waits,
            },
            bar_kind="sentence",
        ),
    )
