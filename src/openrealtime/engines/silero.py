"""Streaming Silero VAD v6 on onnxruntime, without torch.

The ONNX file ships inside the faster-whisper wheel. Each 32 ms frame (512 samples at 16 kHz) is fed
with the last 64 samples of the previous frame as context, and the LSTM state ``h``/``c`` is carried per
stream. One ``InferenceSession`` is shared by every stream of the process (onnxruntime sessions are
thread-safe for ``run``); it costs about 0.1 ms per frame on one core.

**The state is made fresh after a second of quiet.** Carried through a long stream of non-speech,
the LSTM state drifts to where speech scores low: the bench's interruptions, spoken after 30-60 s of
silence or of noise at -50 dBFS, reached 0.5 for two frames up to 600 ms after their onset ("Wait,
can you say that again?" 608 ms, against 32 ms after 3 s), a known trait of Silero's streaming
(snakers4/silero-vad#725; pipecat resets every 5 s whatever it hears). A voice session's user is
silent for most of it, while the answers play: every turn started late, and barge-in with it. Here
a stream's state goes back to zeros once ``FRESH_AFTER_S`` of frames in a row score under
``QUIET_BELOW`` (Silero's own recipe calls a frame under its threshold less 0.15 silence), and again
after every further ``FRESH_AFTER_S`` of it; the 64 samples of audio context stay. Offline, over the
six interruptions after 3-60 s of silence or noise (-70 to -35 dBFS): onset to a turn's start 179 ms
mean, 557 p90 before, 53 and 96 ms after; in 60 s of white or brown noise at -60 to -25 dBFS no frame
reached 0.5 either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from openrealtime.audio.types import Samples
from openrealtime.engines import model_files
from openrealtime.exceptions import EngineError

SAMPLE_RATE_HZ = 16_000
FRAME_SAMPLES = 512
CONTEXT_SAMPLES = 64
_STATE_SHAPE = (1, 1, 128)
QUIET_BELOW = 0.35  # a frame under this is not speech (Silero's recipe: its 0.5 threshold less 0.15)
FRESH_AFTER_S = 1.0  # this long of such frames in a row, and the recurrent state starts again
FRESH_AFTER_FRAMES = round(FRESH_AFTER_S * SAMPLE_RATE_HZ / FRAME_SAMPLES)


@dataclass(frozen=True)
class SileroOptions:
    """Options of the Silero VAD engine.

    Attributes:
        model_path: An ONNX file with the v6 streaming signature; ``None`` for the bundled one.
        threads: onnxruntime intra-op threads (one is plenty for 0.1 ms frames).
    """

    model_path: Path | None = None
    threads: int = 1


class SileroVadStream:
    """Recurrent state of one audio stream, made fresh after a second of quiet."""

    def __init__(self, model: SileroVad) -> None:
        self._model = model
        self._context = np.zeros(CONTEXT_SAMPLES, dtype=np.float32)
        self._h = np.zeros(_STATE_SHAPE, dtype=np.float32)
        self._c = np.zeros(_STATE_SHAPE, dtype=np.float32)
        self._input = np.zeros((1, CONTEXT_SAMPLES + FRAME_SAMPLES), dtype=np.float32)
        self._quiet = 0  # frames in a row under QUIET_BELOW
        self.refreshed = 0  # times the state was made fresh

    def probability(self, frame: Samples) -> float:
        if frame.size != FRAME_SAMPLES:
            raise ValueError(f"Silero frames are {FRAME_SAMPLES} samples, got {frame.size}")
        self._input[0, :CONTEXT_SAMPLES] = self._context
        self._input[0, CONTEXT_SAMPLES:] = frame
        prob, self._h, self._c = self._model.run(self._input, self._h, self._c)
        self._context = frame[-CONTEXT_SAMPLES:].copy()
        self._quiet_run([prob])
        return prob

    def probabilities(self, audio: Samples) -> list[float]:
        """Several frames in one call: the model's first axis is time, so its LSTM state runs through
        them exactly as through separate calls, for about 25 % less CPU per frame."""
        count = audio.size // FRAME_SAMPLES
        if count <= 1:
            return [self.probability(audio)] if count else []
        frames = audio[: count * FRAME_SAMPLES].reshape(count, FRAME_SAMPLES)
        done: list[float] = []
        while len(done) < count:
            rest = frames[len(done) :]
            batch = np.empty((rest.shape[0], CONTEXT_SAMPLES + FRAME_SAMPLES), dtype=np.float32)
            batch[0, :CONTEXT_SAMPLES] = self._context
            batch[1:, :CONTEXT_SAMPLES] = rest[:-1, -CONTEXT_SAMPLES:]
            batch[:, CONTEXT_SAMPLES:] = rest
            probs, self._h, self._c = self._model.run_many(batch, self._h, self._c)
            fresh_after = self._quiet_run(probs)
            kept = len(probs) if fresh_after is None else fresh_after + 1
            done += probs[:kept]  # the frames after a fresh start are run again from it
            self._context = rest[kept - 1, -CONTEXT_SAMPLES:].copy()
        return done

    def reset(self) -> None:
        self._context[:] = 0.0
        self._fresh_state()

    def _quiet_run(self, probs: list[float]) -> int | None:
        """Count the frames' quiet; the index of the frame after which the state was made fresh, if one
        ended ``FRESH_AFTER_FRAMES`` of it."""
        quiet = self._quiet
        for index, prob in enumerate(probs):
            quiet = quiet + 1 if prob < QUIET_BELOW else 0
            if quiet >= FRESH_AFTER_FRAMES:
                self._fresh_state()
                self.refreshed += 1
                return index
        self._quiet = quiet
        return None

    def _fresh_state(self) -> None:
        self._h = np.zeros(_STATE_SHAPE, dtype=np.float32)
        self._c = np.zeros(_STATE_SHAPE, dtype=np.float32)
        self._quiet = 0


class SileroVad:
    """The shared Silero model; hand each audio stream its own :meth:`new_stream`."""

    sample_rate_hz = SAMPLE_RATE_HZ
    frame_samples = FRAME_SAMPLES

    def __init__(self, options: SileroOptions | None = None) -> None:
        import onnxruntime as ort

        options = options or SileroOptions()
        path = options.model_path or model_files.silero_vad_onnx()
        so = ort.SessionOptions()
        so.intra_op_num_threads = options.threads
        so.inter_op_num_threads = 1
        # No busy-waiting worker threads: ~0.1 ms calls from many sessions would spin a core each.
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self._session = ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise EngineError(f"cannot load Silero VAD from {path}: {exc}", code="model_load_failed") from exc

    def run(
        self, frame: npt.NDArray[np.float32], h: npt.NDArray[np.float32], c: npt.NDArray[np.float32]
    ) -> tuple[float, npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        prob, hn, cn = self._session.run(None, {"input": frame, "h": h, "c": c})
        return float(np.asarray(prob).reshape(-1)[0]), hn, cn

    def run_many(
        self, frames: npt.NDArray[np.float32], h: npt.NDArray[np.float32], c: npt.NDArray[np.float32]
    ) -> tuple[list[float], npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        probs, hn, cn = self._session.run(None, {"input": frames, "h": h, "c": c})
        return [float(p) for p in np.asarray(probs).reshape(-1)], hn, cn

    def new_stream(self) -> SileroVadStream:
        return SileroVadStream(self)
