"""The speech's end heard by its loudness, a few tens of ms before the VAD calls the pause.

Silero's probability falls under the pause's threshold 33-87 ms after the last sound (p50 68 ms on
``bench turns``' clips): the model must hear most of a 32 ms frame of quiet, and the frame must be
whole. The loudness says it sooner: 40 ms of 10 ms hops 30 dB under the speech just before is known
about 40 ms after the last sound. A voice session starts the pause's final decode then
(:class:`~openrealtime.session.turns.EarlyDecode`), and the VAD's pause, when it
comes, takes that decode as its own; speech that comes back first drops it. A stop consonant's
closure or a gap between words is quiet too, so some early decodes are wasted (about one a second of
speech on the bench's clips): Whisper's idle worker's time, never the session's answer.

A room's reverberation or a noisy microphone keeps the quiet from reaching 30 dB under the speech:
there nothing is started early and the VAD's pause starts the decode, as before.
"""

from __future__ import annotations

import numpy as np

from openrealtime.audio.buffer import SampleBuffer

MS_PER_S = 1000
HOP_MS = 10  # the loudness is measured over hops this long
QUIET_MS = 40  # quiet this long (after speech) starts the pause's decode early
QUIET_BELOW_DB = 30.0  # a hop this far under the recent speech is quiet
# The recent speech's level: the loudest hop, fading this fast (a quieter phrase after a loud one
# still counts as speech; a pause of 1 s forgets the loud phrase).
PEAK_FADE_DB_PER_S = 30.0
SILENT_RMS = 1e-4  # under this (-80 dBFS) the input is silent, and no level to be quiet under


class QuietWatch:
    """The loudness of a growing 16 kHz buffer, hop by hop, addressed by absolute sample index.

    Args:
        sample_rate_hz: The buffer's rate.
    """

    def __init__(self, sample_rate_hz: int) -> None:
        self.hop_samples = sample_rate_hz * HOP_MS // MS_PER_S
        self._fade = 10 ** (-PEAK_FADE_DB_PER_S * HOP_MS / MS_PER_S / 20)
        self._quiet_ratio = 10 ** (-QUIET_BELOW_DB / 20)
        self.position = 0  # where the next hop starts
        self.peak = 0.0  # the recent speech's level (RMS of its loudest hop, fading)
        self.quiet_since: int | None = None  # where the current run of quiet hops began

    def scan(self, buffer: SampleBuffer) -> int | None:
        """Measure the whole hops of ``buffer`` not measured yet; where the quiet that runs to their
        end began (``None``: the last hop was not quiet)."""
        first = max(self.position, buffer.start)
        count = (buffer.end - first) // self.hop_samples
        if count <= 0:
            return self.quiet_since
        hops = buffer.view(first, first + count * self.hop_samples).reshape(count, self.hop_samples)
        levels = np.sqrt(np.mean(np.square(hops, dtype=np.float64), axis=1))
        for index, level in enumerate(levels.tolist()):
            self.peak = max(level, self.peak * self._fade)
            quiet = self.peak > SILENT_RMS and level < self.peak * self._quiet_ratio
            if not quiet:
                self.quiet_since = None
            elif self.quiet_since is None:
                self.quiet_since = first + index * self.hop_samples
        self.position = first + count * self.hop_samples
        return self.quiet_since

    @property
    def quiet_samples(self) -> int:
        """How long the input has been quiet, up to the last hop measured."""
        return 0 if self.quiet_since is None else self.position - self.quiet_since

    def reset(self, position: int) -> None:
        """Forget the level (``input_audio_buffer.clear``); hops start again at ``position``."""
        self.position, self.peak, self.quiet_since = position, 0.0, None
