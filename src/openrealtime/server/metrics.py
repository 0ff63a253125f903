"""Production figures at ``GET /metrics`` in Prometheus' text format (no client library needed).

The same latencies the benchmarks measure, observed on live traffic: time to first answer audio,
end-of-turn delay, transcription finalization, per-stage engine latency, the cost of handling one
append, active sessions by kind, and counters of cancellations and errors.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from openrealtime.runtime.engines import END_OF_TURN_CPU_STAGE, END_OF_TURN_TEXT_CPU_STAGE
from openrealtime.runtime.scheduler import WorkerStats

LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
FAST_BUCKETS_S = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05)


class Histogram:
    """A Prometheus histogram with labels."""

    def __init__(self, name: str, help_text: str, buckets: tuple[float, ...] = LATENCY_BUCKETS_S) -> None:
        self.name, self.help, self.buckets = name, help_text, buckets
        self._series: dict[tuple[tuple[str, str], ...], list[float]] = {}
        self._lock = threading.Lock()

    def observe(self, value: float, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            series = self._series.setdefault(key, [0.0] * (len(self.buckets) + 2))
            series[bisect.bisect_left(self.buckets, value)] += 1
            series[-1] += value

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        with self._lock:
            for key, series in sorted(self._series.items()):
                label = ",".join(f'{k}="{v}"' for k, v in key)
                cumulative = 0.0
                for bound, count in zip((*self.buckets, float("inf")), series[:-1], strict=True):
                    cumulative += count
                    le = "+Inf" if bound == float("inf") else repr(bound)
                    sep = "," if label else ""
                    lines.append(f'{self.name}_bucket{{{label}{sep}le="{le}"}} {cumulative:g}')
                suffix = f"{{{label}}}" if label else ""
                lines.append(f"{self.name}_sum{suffix} {series[-1]:.6f}")
                lines.append(f"{self.name}_count{suffix} {cumulative:g}")
        return lines


class Counter:
    """A Prometheus counter (or gauge, with ``kind="gauge"``) with labels."""

    def __init__(self, name: str, help_text: str, kind: str = "counter") -> None:
        self.name, self.help, self.kind = name, help_text, kind
        self._values: dict[tuple[tuple[str, str], ...], float] = defaultdict(float)
        self._lock = threading.Lock()

    def add(self, amount: float = 1.0, **labels: str) -> None:
        with self._lock:
            self._values[tuple(sorted(labels.items()))] += amount

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]
        with self._lock:
            for key, value in sorted(self._values.items()):
                label = ",".join(f'{k}="{v}"' for k, v in key)
                lines.append(f"{self.name}{{{label}}} {value:g}" if label else f"{self.name} {value:g}")
        return lines


class Metrics:
    """Every metric of one server process."""

    def __init__(self) -> None:
        self.first_audio = Histogram(
            "openrealtime_time_to_first_audio_seconds",
            "From input_audio_buffer.speech_stopped to the first response audio.",
        )
        self.response_first_audio = Histogram(
            "openrealtime_response_first_audio_seconds", "From response.created to its first audio delta."
        )
        self.finalization = Histogram(
            "openrealtime_transcription_finalization_seconds",
            "From speech_stopped (or commit) to transcription.completed.",
        )
        self.end_of_turn = Histogram(
            "openrealtime_end_of_turn_delay_seconds",
            "Pause after the last word before the turn was committed (audio time).",
        )
        self.stage = Histogram(
            "openrealtime_stage_latency_seconds",
            "Engine stages: asr (one decode), llm_first_token, tts_first_audio, end_of_turn (one decision).",
        )
        self.end_of_turn_cpu = Histogram(
            "openrealtime_end_of_turn_cpu_seconds",
            "CPU time of one semantic_vad end-of-turn decision (features and model, one thread).",
        )
        self.end_of_turn_text_cpu = Histogram(
            "openrealtime_end_of_turn_text_cpu_seconds",
            "CPU time of one semantic_vad text signal (the LLM's P(end of message) after the pause's words).",
        )
        self.append = Histogram(
            "openrealtime_append_handling_seconds",
            "CPU time to handle one input_audio_buffer.append (decode, resample, VAD).",
            FAST_BUCKETS_S,
        )
        self.active = Counter("openrealtime_active_sessions", "Open sessions by kind.", kind="gauge")
        self.cancellations = Counter("openrealtime_cancellations_total", "Cancelled responses by reason.")
        self.errors = Counter("openrealtime_errors_total", "error events sent, by code.")
        self.sessions = Counter("openrealtime_sessions_total", "Sessions opened, by kind.")
        self.auth_failures = Counter(
            "openrealtime_auth_failures_total", "Failed authentications, by reason (missing, invalid, ambiguous)."
        )
        self.unready = Counter(
            "openrealtime_unready_answers_total", "/healthz answers of 503, by reason (at_capacity, ...)."
        )
        self.refusals = Counter(
            "openrealtime_refusals_total", "Requests refused at the door, by reason (origin, capacity, ...)."
        )
        self.audio_requests = Counter(
            "openrealtime_audio_requests_total", "REST audio and model requests answered, by endpoint and status."
        )
        self.client_secrets = Counter(
            "openrealtime_client_secrets_minted_total", "Client secrets (ek_) minted, by the kind of session."
        )
        self.resumes = Counter(
            "openrealtime_session_resumes_total", "Connects with ?session_id=, by outcome (resumed, refused)."
        )

    def render(
        self,
        llm: Any = None,
        *,
        loop_lag_s: float | None = None,
        ready: bool | None = None,
        live_client_secrets: int | None = None,
        workers: Mapping[str, WorkerStats] | None = None,
    ) -> str:
        """The text exposition; ``llm`` is the in-process LLM's decoder counters
        (:class:`~openrealtime.engines.llama_batch.DecoderStats`), when there is one; ``loop_lag_s`` and
        ``ready`` are read at scrape time (:mod:`~openrealtime.server.readiness`), and so are
        ``live_client_secrets`` (:mod:`~openrealtime.server.secrets`) and the engine ``workers``'
        queues and shares by name (:class:`~openrealtime.runtime.scheduler.WorkerStats`)."""
        parts: list[Any] = [
            self.first_audio,
            self.response_first_audio,
            self.finalization,
            self.end_of_turn,
            self.stage,
            self.end_of_turn_cpu,
            self.end_of_turn_text_cpu,
            self.append,
            self.active,
            self.sessions,
            self.resumes,
            self.refusals,
            self.audio_requests,
            self.unready,
            self.auth_failures,
            self.client_secrets,
            self.cancellations,
            self.errors,
        ]
        lines = [line for p in parts for line in p.render()]
        if loop_lag_s is not None:
            lines += gauge_lines(
                "openrealtime_event_loop_lag_seconds", "How late the event loop ran its last timer.", loop_lag_s
            )
        if ready is not None:
            lines += gauge_lines("openrealtime_ready", "1 when /healthz answers ready, else 0.", float(ready))
        if live_client_secrets is not None:
            lines += gauge_lines(
                "openrealtime_live_client_secrets", "Client secrets (ek_) not yet expired.", live_client_secrets
            )
        if llm is not None:
            lines += llm_lines(llm)
        if workers:
            lines += worker_lines(workers)
        return "\n".join(lines) + "\n"

    def observer(self) -> ConnectionObserver:
        return ConnectionObserver(self)

    def observe_stage(self, stage: str, seconds: float) -> None:
        """An engine stage's timing (``EngineSet.on_stage``); the end-of-turn decision's CPU time has a
        histogram of its own."""
        if stage == END_OF_TURN_CPU_STAGE:
            self.end_of_turn_cpu.observe(seconds)
        elif stage == END_OF_TURN_TEXT_CPU_STAGE:
            self.end_of_turn_text_cpu.observe(seconds)
        else:
            self.stage.observe(seconds, stage=stage)


def gauge_lines(name: str, help_text: str, value: float) -> list[str]:
    """One unlabelled gauge in the text format."""
    return [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name} {value:g}"]


def llm_lines(stats: Any) -> list[str]:
    """The batched LLM's counters in the text format (read at scrape time, nothing to observe)."""
    figures = [
        ("openrealtime_llm_prompt_tokens_total", "counter", "Prompt tokens the LLM evaluated.", stats.prompt_tokens),
        (
            "openrealtime_llm_cached_prompt_tokens_total",
            "counter",
            "Prompt tokens served from a session's cached prefix instead.",
            stats.cached_tokens,
        ),
        ("openrealtime_llm_decode_steps_total", "counter", "Batched decode calls.", stats.steps),
        ("openrealtime_llm_running_completions", "gauge", "Answers being decoded now.", stats.running),
    ]
    lines: list[str] = []
    for name, kind, help_text, value in figures:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", f"{name} {value:g}"]
    return lines


def worker_lines(workers: Mapping[str, WorkerStats]) -> list[str]:
    """Each engine worker's queue, busy time and busiest session's share, labelled by engine."""
    figures = [
        ("openrealtime_engine_queued_jobs", "gauge", "Engine jobs waiting for a thread.", "queued"),
        ("openrealtime_engine_busy_seconds_total", "counter", "Thread-seconds engine jobs ran.", "busy_s"),
        (
            "openrealtime_engine_top_session_share",
            "gauge",
            "Of the engine's job time in the last minute, the largest share one session had.",
            "top_session_share",
        ),
    ]
    lines: list[str] = []
    for name, kind, help_text, field in figures:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        lines += [f'{name}{{engine="{engine}"}} {getattr(stats, field):g}' for engine, stats in workers.items()]
    return lines


class ConnectionObserver:
    """Watches one connection's server events and turns their timing into metrics."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self._stopped_at: float | None = None
        self._stopped_items: dict[str, float] = {}
        self._responses: dict[str, float] = {}
        self._first_audio_seen: set[str] = set()

    def __call__(self, event: Any) -> None:
        now = time.perf_counter()
        kind = event.type
        m = self.metrics
        if kind == "input_audio_buffer.speech_stopped":
            self._stopped_at = now
            self._stopped_items[event.item_id] = now
        elif kind == "input_audio_buffer.committed":
            self._stopped_items.setdefault(event.item_id, now)
        elif kind == "conversation.item.input_audio_transcription.completed":
            started = self._stopped_items.pop(event.item_id, None)
            if started is not None:
                m.finalization.observe(now - started)
        elif kind == "response.created":
            self._responses[event.response["id"]] = now
        elif kind == "response.output_audio.delta" and event.response_id not in self._first_audio_seen:
            self._first_audio_seen.add(event.response_id)
            created = self._responses.get(event.response_id)
            if created is not None:
                m.response_first_audio.observe(now - created)
            if self._stopped_at is not None:
                m.first_audio.observe(now - self._stopped_at)
                self._stopped_at = None
        elif kind == "response.done":
            response_id = event.response["id"]
            self._responses.pop(response_id, None)
            self._first_audio_seen.discard(response_id)
            details = event.response.get("status_details") or {}
            if event.response.get("status") == "cancelled":
                m.cancellations.add(reason=str(details.get("reason", "unknown")))
        elif kind == "error":
            m.errors.add(code=str(event.error.code))
