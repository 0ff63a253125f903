"""The echo the canceller let through, silenced (issue 13: "at least gate barge-in on input that
correlates with its own recent output").

AEC3 (:mod:`~openrealtime.session.echo`) removes the server's voice once it has the room, but at the
onset of speech after a pause in the answer (a new answer, a listener's player that ran dry and
starts again) it lets the first tens of milliseconds of echo through nearly untouched while it finds
the delay again (offline, the bench's room: 0-5 dB removed on those frames, against 40-60 dB once it
has them), and Silero calls that speech: the answer cancels itself within half a second.

:class:`EchoGate` looks at the input as it came (before AEC3) and at the reference, each placed on
the input's timeline. It finds the room's delay: the lags at which the input correlates best with the
reference over the last second (searched every quarter second while the reference plays, up to
``MAX_DELAY_MS``), and again over the last quarter second as soon as input goes unexplained while the
reference plays (a new answer placed with another lead over the listener moves the delay). Then,
frame by frame, where AEC3 took less than ``REMOVED_DB`` out of the frame (where it has the echo
it takes 40-60 dB), it asks how much of the last 40 ms of input the reference explains at those
lags: the normalized correlation, whose square is about the echo's share of the input's energy. A
frame the echo dominates (``ECHO_CORRELATION``, a share over 40 %) is silenced in the canceller's
output. A user speaking over the answer is not: their voice does not correlate with the reference,
so as soon as it is about as loud as the echo the frame passes, and where AEC3 took the echo out of
their weaker sounds those pass as AEC3 made them (silencing them too held back the user's turn by up
to a second, offline). A reverberant room
lowers the correlation of its echo too: there the gate silences less, and AEC3 does the rest.

With our own canceller (:mod:`~openrealtime.session.linear_echo`) the gate judges the canceller's
output instead, once it has learned the room: a voice over the answer comes out of it whole, and what
still correlates with the reference there is echo the filter missed (a restart's new delay before it
moved there).
"""

from __future__ import annotations

import numpy as np

from openrealtime.audio.types import Samples

RATE_HZ = 16_000
FRAME = RATE_HZ // 100  # the canceller's 10 ms frames
WINDOW = RATE_HZ * 40 // 1000  # input judged per frame: the last 40 ms
MAX_DELAY_MS = 1000  # from where the reference is placed to where its echo comes back, at most
MAX_DELAY = RATE_HZ * MAX_DELAY_MS // 1000
SEARCH_SPAN = RATE_HZ  # the delay is searched over the last second of input ...
SEARCH_EVERY = RATE_HZ // 4  # ... every quarter second while the reference plays
DELAY_FOUND = 0.3  # the correlation at the best lag for it to be taken as the room's delay
JITTER = 16  # the delay is looked for again within +-1 ms of the one found, frame by frame
COVERED = 0.1  # a lag is searched where the reference's energy is a tenth of its most or more
QUICK_SPAN = RATE_HZ // 4  # input unexplained while the reference plays: the last quarter second ...
QUICK_EVERY = 4 * FRAME  # ... searched again at most every 40 ms
QUICK_FOUND = 0.5  # a clearer correlation asked of so short a search, which looks at every lag the
QUICK_COVERED = 0.0  # reference sounded at: at an answer's onset the right one holds only its first ms
PEAKS = 3  # lags kept from a search: the direct sound and its strongest reflections
ECHO_CORRELATION = 0.65  # the echo's share of the frame's energy over 40 %
REMOVED_DB = 6.0  # AEC3 removed this much of a frame or more: it has the echo there
SILENT = 1e-8  # mean square under which a window carries nothing (-80 dBFS)


class Recent:
    """The last ``size`` samples of a stream, in a preallocated array (also our canceller's history)."""

    def __init__(self, size: int, dtype: type = np.float32) -> None:
        self.samples: np.ndarray = np.zeros(size, dtype)

    def push(self, new: np.ndarray) -> None:
        n = min(new.size, self.samples.size)
        self.samples[:-n] = self.samples[n:]
        self.samples[-n:] = new[-n:]


class EchoGate:
    """Silences the frames of the canceller's output that are still the reference's echo."""

    def __init__(self) -> None:
        keep = SEARCH_SPAN + MAX_DELAY + WINDOW
        # Whether it judges the canceller's output (ours, once it has learned the room: a voice over the
        # answer is in it whole) rather than the input (AEC3's, which its suppressor may have emptied).
        self.judge_output = False
        self._near = Recent(keep)
        self._judged = Recent(WINDOW)  # what is judged: the input (AEC3), or the canceller's output
        self._far = Recent(keep)
        self.delays: list[int] = []  # samples from the reference to its echo: the best lags found
        self._since_search = 0
        self._since_quick = QUICK_EVERY
        self.silenced_frames = 0

    def process(self, near: Samples, far: Samples, out: Samples) -> Samples:
        """``out`` (the canceller's output for ``near``, whole frames) with the frames the echo of
        ``far`` dominates in ``near`` silenced."""
        judged = out if self.judge_output else near  # as it came: the frames are silenced in a copy
        out = out.copy()
        for start in range(0, near.size, FRAME):
            self._near.push(near[start : start + FRAME])
            self._far.push(far[start : start + FRAME])
            self._judged.push(judged[start : start + FRAME])
            self._since_search += FRAME
            if self._since_search >= SEARCH_EVERY:
                self._since_search = 0
                self.delays = self._search(SEARCH_SPAN, DELAY_FOUND, COVERED) or self.delays
            self._since_quick += FRAME
            # Silenced, not attenuated, and with no hold after a voice over the answer: both let the
            # echo's onset start turns (offline, the bench's room), and neither heard the user sooner.
            frame = out[start : start + FRAME]
            if (self.judge_output or not self._cancelled(near[start : start + FRAME], frame)) and (
                self._echo_dominates() or (self._may_have_moved() and self._echo_dominates())
            ):
                frame[:] = 0.0
                self.silenced_frames += 1
        return out

    @staticmethod
    def _cancelled(near: Samples, out: Samples) -> bool:
        """AEC3 took ``REMOVED_DB`` or more out of the frame: it has the echo; what is left (a voice
        over the answer, most often) is its to pass."""
        return float(out @ out) * 10 ** (REMOVED_DB / 10) <= float(near @ near)

    def _may_have_moved(self) -> bool:
        """Input the known delays do not explain while the reference plays: the room's delay may have
        moved (a new answer placed with another lead over the listener): look again over the last
        quarter second, at most every ``QUICK_EVERY``; whether a new delay was found."""
        if self._since_quick < QUICK_EVERY:
            return False
        recent = self._far.samples[-(MAX_DELAY + WINDOW) :]
        near = self._near.samples[-WINDOW:]
        if float(recent @ recent) < SILENT * recent.size or float(near @ near) < SILENT * near.size:
            return False
        self._since_quick = 0
        found = self._search(QUICK_SPAN, QUICK_FOUND, QUICK_COVERED)
        if not found or found[0] in self.delays:
            return False
        self.delays = [found[0], *self.delays][: PEAKS + 1]
        return True

    def _search(self, span: int, found: float, covered: float) -> list[int]:
        """The room's delays: the lags of the best correlations (``found`` or more) of the last
        ``span`` samples of input with the reference, the best first; none when the reference did not
        play in it or no correlation is clear."""
        near = self._near.samples[-span:]
        far = self._far.samples[-(span + MAX_DELAY) :]
        near_energy = float(near @ near)
        if near_energy < SILENT * near.size or float(far @ far) < SILENT * far.size:
            return []
        size = 1 << int(np.ceil(np.log2(far.size + near.size)))
        spectrum = np.fft.rfft(far, size) * np.conj(np.fft.rfft(near, size))
        # correlation[k] = sum near[t] * far[t + k]; the echo of far[t + k] is heard at near[t + MAX_DELAY],
        # so lag k holds delay MAX_DELAY - k
        correlation = np.fft.irfft(spectrum, size)[: MAX_DELAY + 1]
        cumulative = np.concatenate([[0.0], np.cumsum(far.astype(np.float64) ** 2)])
        far_energy = cumulative[span : span + MAX_DELAY + 1] - cumulative[: MAX_DELAY + 1]
        # Only lags at which the reference carried enough of its sound: where the window holds a sliver
        # of it, a chance match can look strong (the quick search asks a clearer one instead).
        lags = far_energy >= max(covered * float(far_energy.max()), SILENT * span)
        strength = np.where(lags, np.abs(correlation) / np.sqrt(near_energy * np.maximum(far_energy, 1e-20)), 0.0)
        peaks: list[int] = []
        for lag in np.argsort(strength)[::-1]:
            if strength[lag] < found or len(peaks) == PEAKS:
                break
            if all(abs(int(lag) - p) > 2 * JITTER for p in peaks):
                peaks.append(int(lag))
        return [MAX_DELAY - p for p in peaks]  # the direct sound and the strongest reflections

    def _echo_dominates(self) -> bool:
        if not self.delays:
            return False
        near = self._judged.samples
        near_energy = float(near @ near)
        if near_energy < SILENT * WINDOW:
            return False  # nothing heard: nothing to silence
        size = self._far.samples.size
        best = 0.0
        for delay in self.delays:
            for lag in range(-JITTER, JITTER + 1, 2):
                end = size - delay + lag
                if end > size:
                    continue
                far = self._far.samples[end - WINDOW : end]
                far_energy = float(far @ far)
                if far_energy >= SILENT * WINDOW:
                    best = max(best, abs(float(near @ far)) / np.sqrt(near_energy * far_energy))
        return best >= ECHO_CORRELATION
