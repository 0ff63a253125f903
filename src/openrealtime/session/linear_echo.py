"""Our own echo canceller: a linear filter that learns the room, and a suppressor keyed on it.

AEC3 (``pywebrtc-audio``) removes the echo well once it has the room, but its residual suppressor
takes speech over the answer for echo: offline, it took 8-10 dB (p50) and 50 dB (p90) out of the
frames where the user was louder than the echo, and Silero then heard an interruption late or never
(docs/benchmarks.md, "The canceller alone, offline"). Its configuration is not exposed. This one
keeps the jobs apart and leaves the user alone:

* **The filter** is a partitioned-block frequency-domain adaptive filter (overlap-save, 10 ms blocks,
  ``PARTITIONS`` of them: the room's response over 300 ms from ``LEAD`` before its strongest path),
  normalized LMS in each bin (a step of 1, with a floor under the reference's power so that an
  answer's last sound leaving the span, over the microphone's own noise, cannot blow it up). Two
  of them (the two-path scheme of Speex's canceller): one learns every block; the other is the one
  whose output is used, and becomes a copy of the learning one when that does clearly better
  (``BETTER``). A voice over the answer makes the learning one worse
  (it learns the voice): it is thrown away for a copy of the one used (``DIVERGED``), which never
  learned it. Where the filter would add more than it takes out, the input passes as it came,
  unless it is under 3 dB over the echo the filter expects (``DOUBLE_TALK``): then the echo came back
  otherwise than learned (after a cut), and it is silenced.
* **Where the room is.** The echo gate's first delay places it; then, every 40 ms, it tries what it
  learned at every shift within ``SEARCH`` of its own and moves where that explains the input
  clearly better: a new answer placed with another lead over the listener moves the whole room by
  tens of milliseconds, and what it learned moves with it (no relearning).
* **Held back.** Until it has learned the room (``LEARNED_DB``), nothing can tell a voice from the
  echo, so once the gate has heard an echo the input is held back (silence) while the reference
  plays. A headphone user, with no echo, is never held (no delay is found). The whole span learns
  slowly (a normalized step shared by 30 partitions: 1-2 s of the first answer to 12 dB), so its
  first ``HEAD_PARTITIONS`` also learn alone, three times as fast: where the room's echo is mostly
  early (a speakerphone's body, the first reflections), that head explains it within about a
  second, the room counts as learned and the whole filter goes on from it; in a reverberant room
  the head cannot, and the whole span's own learning ends the hold as before. After a pause in the
  reference (a new answer, a player that ran dry) the input is held for up to ``RESTART_HOLD``
  blocks until the filter explains it again, and nothing learns meanwhile: until the new shift is
  found the filter predicts an echo that is not there, and learning that would unlearn the room.
* **The suppressor** judges each 10 ms block as a whole: output ``RESIDUAL_DB`` under the filter's
  own echo estimate is what it left of the echo, silenced; anything louder (a voice) passes exactly
  as the filter left it, with nothing taken out of it.
"""

from __future__ import annotations

import numpy as np

from openrealtime.audio.types import Samples
from openrealtime.session.echo_gate import Recent

RATE_HZ = 16_000
BLOCK = RATE_HZ // 100  # 10 ms, the canceller's frame
PARTITIONS = 30  # the filter spans 300 ms of the reference from where the room's sound starts: its reverberation
LEAD = RATE_HZ * 20 // 1000  # the filter starts this long before the room's strongest path
CHECK_EVERY = 4  # blocks: every 40 ms the filter's room is tried at other shifts ...
CHECK_WINDOW = 4 * BLOCK  # ... over the last 40 ms of input, ...
MOVED = 0.5  # ... and one that leaves half the output or less (-3 dB) of the one in use is taken
SEARCH = RATE_HZ * 80 // 1000  # the shifts tried: within 80 ms of the one in use
MAX_DELAY = RATE_HZ  # the furthest the room's sound may come after the reference's placement
STEP = 1.0  # the learning filter's normalized LMS step (NLMS's fastest; the two filters guard against a voice)
SMOOTHING = 0.8  # the two filters' output energies, smoothed over blocks (~50 ms)
BETTER = 0.7  # the learning filter's output this much lower (-1.5 dB): it becomes the one used
DIVERGED = 4.0  # ... this much higher (6 dB): it is thrown away for the one used
RESTART_QUIET = 10  # blocks of silence after which the reference "starts again" ...
RESTART_HOLD = 20  # ... and the input is held back for at most this many blocks ...
RESTART_EXPLAINED = 4.0  # ... until the filter takes 6 dB out of it
RESIDUAL_DB = 6.0  # output this far under the filter's echo estimate is what it left of the echo
LEARNED_DB = 12.0  # the filter used counts as having learned the room once it removes this much ...
HOLD_MAX = 300  # blocks held back at most (3 s of the reference heard): then it counts as learned
DOUBLE_TALK = 2.0  # input 3 dB over the echo expected: a voice over it, not copied into the filter used
LOUD = 1e-6  # ... of an echo heard (mean square over -60 dBFS), ...
LEARNING_SMOOTHING = 0.96  # ... over the last quarter second or so
HEAD_PARTITIONS = 10  # the room's first 100 ms, learned alone while the room is not: three times as fast
HEAD_SMOOTHING = 0.94  # the head's LEARNED_DB, over the last 160 ms or so
QUIET_DBFS = -60.0  # a reference this quiet over the filter's span teaches it nothing (the step's floor)


class LinearEchoCanceller:
    """``process(near, far)`` on float32 16 kHz arrays of whole 10 ms blocks: ``near`` with the echo of
    ``far`` removed. The same interface as ``pywebrtc_audio.EchoCanceller``, and :meth:`align` to be
    told where the room's sound comes back (the echo gate's delays)."""

    def __init__(self, partitions: int = PARTITIONS) -> None:
        self._partitions = partitions
        self._used = np.zeros((partitions, BLOCK + 1), np.complex128)  # the filter whose output is used
        self._learning = self._used.copy()  # the filter that learns, block by block
        # While the room is not learned, its first HEAD_PARTITIONS are also learned alone: a normalized
        # step over a span a third as long moves three times as fast, and most of a room's echo comes
        # in its first 100 ms (a speakerphone's own body, the first reflections).
        self._head = np.zeros((min(HEAD_PARTITIONS, partitions), BLOCK + 1), np.complex128)
        self._head_near_energy = 0.0
        self._head_left_energy = 0.0
        # The reference's recent past: as far back as the filter's span, at the furthest delay searched.
        self._far = Recent(MAX_DELAY + SEARCH + CHECK_WINDOW + (partitions + 1) * BLOCK, np.float64)
        self._offset = 0  # samples from the reference's placement to the filter's first tap
        self._aligned = False  # whether the offset comes from a delay found
        self._near = Recent(CHECK_WINDOW, np.float64)  # the last input
        self._since_check = 0
        self._used_energy = 0.0  # the two filters' output energies, smoothed
        self._learning_energy = 0.0
        self._near_energy = 0.0  # the input's and the output's, smoothed over a quarter second
        self._left_energy = 0.0
        self.learned = False
        self.suppressing = True  # whether what the filter leaves is silenced (a test looks at the filter alone)
        self.suppressed_blocks = 0
        self.held_blocks = 0
        self._quiet = 0  # blocks since the reference last sounded at the filter's start
        self._restarting = 0  # blocks the input may still be held back after the reference started again

    def align(self, delays: list[int]) -> None:
        """The delays at which the gate heard the reference come back (the strongest first). The first
        one found places the filter (its span starts ``LEAD`` before it); after that the filter follows
        the room itself (:meth:`_realign`)."""
        if delays and not self._aligned:
            self._offset, self._aligned = int(np.clip(delays[0] - LEAD, 0, MAX_DELAY - BLOCK)), True

    def skip(self, count: int) -> None:
        """``count`` samples passed without a reference (not given to :meth:`process`): silence."""
        for history in (self._far, self._near):
            history.push(np.zeros(min(count, history.samples.size)))
        self._quiet += count // BLOCK

    def process(self, near: Samples, far: Samples) -> Samples:
        out = np.empty(near.size, np.float32)
        for start in range(0, near.size, BLOCK):
            out[start : start + BLOCK] = self._block(
                near[start : start + BLOCK].astype(np.float64), far[start : start + BLOCK].astype(np.float64)
            )
        return out

    def _spectra(self) -> np.ndarray:
        """The aligned reference's last ``partitions`` blocks (each with the block before it), newest
        first, as spectra."""
        end = self._far.samples.size - self._offset
        starts = end - 2 * BLOCK - BLOCK * np.arange(self._partitions)
        frames = self._far.samples[starts[:, None] + np.arange(2 * BLOCK)]
        return np.asarray(np.fft.rfft(frames, axis=1))

    @staticmethod
    def _echo(weights: np.ndarray, spectra: np.ndarray) -> np.ndarray:
        return np.asarray(np.fft.irfft(np.sum(weights * spectra, axis=0), 2 * BLOCK)[BLOCK:])

    def _block(self, near: np.ndarray, far: np.ndarray) -> np.ndarray:
        self._far.push(far)
        self._near.push(near)
        self._since_check += 1
        if self.learned and self._since_check >= CHECK_EVERY:
            self._since_check = 0
            self._realign()
        spectra = self._spectra()
        self._follow_restarts(spectra[0])
        if not np.any(spectra):
            return near  # nothing of the reference in the filter's span: no echo to take out
        echo = self._echo(self._used, spectra)
        error = near - echo
        heard, expected, left = float(near @ near), float(echo @ echo), float(error @ error)
        if not self._restarting:
            # (After a pause in the reference the echo may come back elsewhere: until the filter
            # explains it again, it predicts an echo the input does not hold, and learning from that
            # would unlearn the room that the search for the new shift needs.)
            learning_error = near - self._echo(self._learning, spectra)
            self._compare(heard, expected, left, float(learning_error @ learning_error))
            self._learn(spectra, learning_error)
        if not self.learned:
            self._learn_head(spectra, near, heard)
        if self._aligned and not self.learned:
            # The room's echo is heard (the gate found its delay) and not yet learned: nothing here can
            # tell a voice from it, so the input is held back while the reference comes back, for the
            # half second or so the filter takes to learn (a headphone user, with no echo, is never
            # held: no delay is found).
            self.held_blocks += 1
            return np.zeros(BLOCK)
        if self._restarting and heard >= LOUD * BLOCK:  # (a quiet block: the echo not back yet)
            if left * RESTART_EXPLAINED > heard:
                self.held_blocks += 1
                return np.zeros(BLOCK)
            self._restarting = 0  # the filter explains the echo again: it is where the filter has it
        if left > heard:
            if self.learned and self.suppressing and heard < DOUBLE_TALK * expected:
                # The filter explains none of the input yet expects about as much echo as it holds: the
                # echo came back otherwise than learned (after a cut, the end of the answer the
                # listener's player never sounded, and the reverberation after it); nothing in the input
                # is louder than that echo: not a voice.
                self.suppressed_blocks += 1
                return np.zeros(BLOCK)
            error, left = near, heard  # the filter adds more than it takes out: not here
        if self.learned and self.suppressing and left * 10 ** (RESIDUAL_DB / 10) < expected:
            self.suppressed_blocks += 1  # what the filter left of the echo: a voice over it is louder
            return np.zeros(BLOCK)
        return np.asarray(error)

    def _follow_restarts(self, newest: np.ndarray) -> None:
        """The reference starts again after a pause (a new answer, a player that ran dry): its echo may
        come back with another delay, which the filter finds within tens of milliseconds
        (:meth:`_realign`); until it explains the input again, for at most ``RESTART_HOLD`` blocks, the
        input is held back."""
        if not np.any(newest):
            self._quiet += 1
            return
        if self._quiet >= RESTART_QUIET and self.learned:
            self._restarting = RESTART_HOLD
        elif self._restarting:
            self._restarting -= 1
        self._quiet = 0

    def _realign(self) -> None:
        """Where the filter's room explains the last ``CHECK_WINDOW`` of input best, within ``SEARCH``
        of the offset in use: the reference through the filter at each shift, against the input. A
        shift that leaves ``MOVED`` of the output or less is taken (a new answer's lead moved the
        whole room; what the filter learned moves with it)."""
        near = self._near.samples
        near_energy = float(near @ near)
        if near_energy < LOUD * CHECK_WINDOW:
            return
        low = max(0, self._offset - SEARCH)
        high = min(MAX_DELAY - BLOCK, self._offset + SEARCH)
        taps = np.fft.irfft(self._used, 2 * BLOCK, axis=1)[:, :BLOCK].reshape(-1)  # the room, from the offset
        end = self._far.samples.size - low
        far = self._far.samples[end - (high - low) - CHECK_WINDOW - taps.size + 1 : end]
        size = 1 << int(np.ceil(np.log2(far.size + taps.size)))
        # The echo the filter predicts from that stretch of the reference, sample by sample; its last
        # CHECK_WINDOW samples are what the input's window would hold at shift `low`, and the window
        # starting at echo[k] what it would hold at shift `high - k`.
        echo = np.fft.irfft(np.fft.rfft(far, size) * np.fft.rfft(taps, size), size)[taps.size - 1 : far.size]
        width = echo.size - CHECK_WINDOW + 1  # the shifts searched, high - low + 1
        size = 1 << int(np.ceil(np.log2(echo.size + CHECK_WINDOW)))
        cross = np.fft.irfft(np.fft.rfft(echo, size) * np.conj(np.fft.rfft(near, size)), size)[:width]
        cumulative = np.concatenate([[0.0], np.cumsum(echo**2)])
        energy = cumulative[CHECK_WINDOW : CHECK_WINDOW + width] - cumulative[:width]
        left = near_energy - 2 * cross + energy  # what each shift leaves of the input: |near - echo|^2
        best = int(np.argmin(left))
        now = float(left[high - self._offset])
        if left[best] <= MOVED * min(now, near_energy):  # clearly better, and explaining the input
            self._offset = high - best

    def _compare(self, near: float, echo: float, used: float, learning: float) -> None:
        """The learning filter becomes the one used where it does clearly better, unless the input is
        clearly more than the echo the one used expects (a voice over it, which the learning one may
        have learned); where it does clearly worse it has learned such a voice: it starts again from
        the one used. Whether the one used has learned the room (or held the input back long enough)."""
        self._used_energy = SMOOTHING * self._used_energy + (1 - SMOOTHING) * used
        self._learning_energy = SMOOTHING * self._learning_energy + (1 - SMOOTHING) * learning
        self._near_energy = LEARNING_SMOOTHING * self._near_energy + (1 - LEARNING_SMOOTHING) * near
        self._left_energy = LEARNING_SMOOTHING * self._left_energy + (1 - LEARNING_SMOOTHING) * used
        voice = self.learned and near > DOUBLE_TALK * echo
        if self._learning_energy < BETTER * self._used_energy and not voice:
            self._used = self._learning.copy()
            self._used_energy = self._learning_energy
        elif self._learning_energy > DIVERGED * self._used_energy:
            self._learning = self._used.copy()
            self._learning_energy = self._used_energy
        if _learned(self._near_energy, self._left_energy):
            self.learned = True
        elif self.held_blocks >= HOLD_MAX:
            self.learned = True  # a room it learns slowly: what it has is used, the gate and suppressor do the rest

    def _learn(self, spectra: np.ndarray, error: np.ndarray) -> None:
        self._learning = _stepped(self._learning, spectra, error)

    def _learn_head(self, spectra: np.ndarray, near: np.ndarray, heard: float) -> None:
        """The head learns a step, and where it explains the input by ``LEARNED_DB`` (over the last
        160 ms or so) the room counts as learned and both filters start from it: the rest of the
        room's span (the reverberation) is learned from there as before."""
        head = spectra[: self._head.shape[0]]
        error = near - self._echo(self._head, head)
        left = float(error @ error)
        self._head_near_energy = HEAD_SMOOTHING * self._head_near_energy + (1 - HEAD_SMOOTHING) * heard
        self._head_left_energy = HEAD_SMOOTHING * self._head_left_energy + (1 - HEAD_SMOOTHING) * left
        if _learned(self._head_near_energy, self._head_left_energy):
            self._used = np.zeros_like(self._used)
            self._used[: head.shape[0]] = self._head
            self._learning = self._used.copy()
            self._used_energy = self._learning_energy = self._head_left_energy
            self.learned = True
            return
        self._head = _stepped(self._head, head, error)


def _learned(heard: float, left: float) -> bool:
    """Whether a filter that left ``left`` of an input ``heard`` loud enough (mean energies per block)
    has learned the room: it takes ``LEARNED_DB`` out of it."""
    return heard >= LOUD * BLOCK and left * 10 ** (LEARNED_DB / 10) <= heard


def _stepped(weights: np.ndarray, spectra: np.ndarray, error: np.ndarray) -> np.ndarray:
    """``weights`` after one normalized LMS step on the block's ``error`` (the input less the echo
    they predicted from ``spectra``)."""
    error_spectrum = np.fft.rfft(np.concatenate([np.zeros(BLOCK), error]))
    # Per bin, the reference's power over the filter's span (normalized LMS), with floors so a quiet
    # bin does not take a huge step: a hundredth of the mean bin's, and what a reference at
    # QUIET_DBFS would have (as an answer's last sound leaves the span, the room's noise and
    # reverberation are not its echo, and a step normalized by next to nothing would blow up).
    power = np.sum(np.abs(spectra) ** 2, axis=0)
    quiet = spectra.shape[0] * 2 * BLOCK * 10 ** (QUIET_DBFS / 10)
    gradient = np.conj(spectra) * (STEP * error_spectrum / (power + 1e-2 * float(power.mean()) + quiet))
    # The constraint: each partition's taps stay BLOCK long (overlap-save's linear part).
    taps = np.fft.irfft(weights + gradient, 2 * BLOCK, axis=1)
    taps[:, BLOCK:] = 0.0
    return np.asarray(np.fft.rfft(taps, axis=1))
