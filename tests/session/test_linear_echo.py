"""Our own echo canceller (session/linear_echo.py): it learns a room, keeps what it learned while a
voice speaks over the echo, passes that voice whole, silences what it leaves of the echo, and follows
the room when its delay moves."""

from __future__ import annotations

import numpy as np

from openrealtime.session.linear_echo import BLOCK, LinearEchoCanceller
from tests.session.test_echo_gate import RATE_HZ, room, speechlike


def db(samples: np.ndarray) -> float:
    return 10 * float(np.log10(np.mean(samples.astype(np.float64) ** 2) + 1e-20))


def run(canceller: LinearEchoCanceller, near: np.ndarray, far: np.ndarray) -> np.ndarray:
    return np.concatenate(
        [canceller.process(near[i : i + 2 * BLOCK], far[i : i + 2 * BLOCK]) for i in range(0, near.size, 2 * BLOCK)]
    )


def placed(delay: int = 2400, *, suppressing: bool = True) -> LinearEchoCanceller:
    """A canceller placed where the gate heard the room's sound (``suppressing=False``: the filter
    alone, to see what it keeps)."""
    canceller = LinearEchoCanceller()
    canceller.align([delay])
    canceller.suppressing = suppressing
    return canceller


def test_it_learns_the_room_and_silences_what_it_leaves() -> None:
    far = speechlike(4, seed=1)
    near = room(far, delay=2400)
    canceller = placed()
    out = run(canceller, near, far)
    later = slice(2 * RATE_HZ, None)
    assert canceller.learned
    assert db(out[later]) < db(near[later]) - 35  # what is left is silenced once learned
    assert canceller.suppressed_blocks > 0


def test_the_linear_filter_alone_removes_the_echo() -> None:
    """The suppressor off (an impossible margin): the filter's own output, 2-4 s in."""
    far = speechlike(4, seed=3)
    near = room(far, delay=2400)
    canceller = placed(suppressing=False)
    out = run(canceller, near, far)
    later = slice(2 * RATE_HZ, None)
    assert db(out[later]) < db(near[later]) - 20
    assert canceller.suppressed_blocks == 0


def test_a_voice_over_the_echo_passes_whole_and_the_room_is_kept() -> None:
    far = speechlike(8, seed=1)
    user = speechlike(8, seed=2)
    echo = room(far, delay=2400)
    talk = slice(3 * RATE_HZ, 5 * RATE_HZ)  # the user speaks 3-5 s in, at the answer's level
    near = echo.copy()
    near[talk] += user[talk]
    canceller = placed(suppressing=False)
    out = run(canceller, near, far)
    voiced = np.abs(user[talk]) > 0.02
    residual = (out[talk] - user[talk])[voiced]
    assert db(residual) < db(user[talk][voiced]) - 20  # the voice is what comes out, the echo is not
    after = slice(5 * RATE_HZ + 800, None)  # and the room it learned is still there after it
    assert db(out[after]) < db(echo[after]) - 25


def test_a_voice_over_the_echo_is_not_suppressed() -> None:
    far = speechlike(6, seed=5)
    user = speechlike(6, seed=6)
    near = room(far, delay=2400)
    talk = slice(3 * RATE_HZ, 5 * RATE_HZ)
    near[talk] += 0.5 * user[talk]  # -6 dB under the answer's level: as loud as its echo
    canceller = placed()
    out = run(canceller, near, far)
    frames = [(i, i + BLOCK) for i in range(talk.start, talk.stop, BLOCK)]
    loud = [(lo, hi) for lo, hi in frames if db(0.5 * user[lo:hi]) > db(near[lo:hi]) - 3]
    silenced = [(lo, hi) for lo, hi in loud if not np.any(out[lo:hi])]
    assert loud
    assert len(silenced) <= len(loud) // 20


def test_it_follows_the_room_when_its_delay_moves() -> None:
    """A new answer placed with another lead over the listener moves the whole room 40 ms later: the
    filter finds where what it learned explains the input again, within a quarter of a second."""
    far = speechlike(7, seed=7)
    moved = 4 * RATE_HZ
    near = np.concatenate([room(far[:moved], delay=2400), room(far, delay=3040)[moved:]])
    canceller = placed(suppressing=False)
    out = run(canceller, near, far)
    before = slice(moved - RATE_HZ, moved)
    assert db(out[before]) < db(near[before]) - 20
    soon = slice(moved + RATE_HZ // 4, moved + RATE_HZ)  # at once, not after it learns again
    assert db(out[soon]) < db(near[soon]) - 20


def test_until_it_has_learned_the_room_the_echo_is_held_back_and_without_an_echo_nothing_is() -> None:
    """Told a delay (the gate heard the echo), it holds the input back while the reference plays and it
    has not learned; a headphone user (no echo, so no delay found) is never held."""
    far = speechlike(2, seed=9)
    near = room(far, delay=2400)
    canceller = placed()
    out = run(canceller, near[: RATE_HZ // 5], far[: RATE_HZ // 5])
    assert not canceller.learned
    assert not np.any(out)
    assert canceller.held_blocks > 0
    headphones = LinearEchoCanceller()
    voice = speechlike(2, seed=10)
    heard = run(headphones, voice, far)
    assert headphones.held_blocks == 0
    assert headphones.suppressed_blocks == 0
    assert db(heard - voice) < db(voice) - 30  # the voice as it came


def test_a_room_heard_mostly_early_is_learned_within_about_a_second() -> None:
    """The head (the span's first 100 ms, learned alone) explains a room whose echo comes early and
    ends the hold in ~0.55 s: the whole span alone takes ~1.2 s of this reference to 12 dB."""
    far = speechlike(3, seed=1)
    near = room(far, delay=2400)
    canceller = placed(suppressing=False)
    out = run(canceller, near, far)
    assert canceller.learned
    assert canceller.held_blocks <= 80
    later = slice(3 * RATE_HZ // 2, None)
    assert db(out[later]) < db(near[later]) - 15  # the whole filter goes on from the head


def test_a_room_with_a_late_echo_is_not_learned_by_its_head() -> None:
    """A third of the echo 200 ms after the first path, past the head's span: the head cannot explain
    it, so the input is still held at 1.2 s (the whole span learns this room at ~1.35 s)."""
    far = speechlike(2, seed=1)
    near = room(far, delay=2400)
    late = 2400 + RATE_HZ // 5
    near[late:] += 0.35 * far[:-late]
    canceller = placed()
    out = run(canceller, near[: 6 * RATE_HZ // 5], far[: 6 * RATE_HZ // 5])
    assert not canceller.learned
    assert not np.any(out)


def test_silence_skipped_is_silence_in_the_reference() -> None:
    far = speechlike(3, seed=11)
    near = room(far, delay=2400)
    canceller = placed(suppressing=False)
    run(canceller, near, far)
    canceller.skip(2 * RATE_HZ)  # two seconds without a reference: not given to it
    quiet = speechlike(0.2, seed=12)
    out = run(canceller, quiet, np.zeros_like(quiet))
    np.testing.assert_allclose(out, quiet, atol=1e-6)  # no phantom echo of the answer before the pause


def test_without_a_reference_the_input_passes_untouched() -> None:
    near = speechlike(1, seed=8)
    canceller = LinearEchoCanceller()
    out = run(canceller, near, np.zeros_like(near))
    np.testing.assert_allclose(out, near, atol=1e-6)


def test_in_the_session_canceller_the_gate_places_it_and_a_voice_over_the_echo_passes() -> None:
    """session/echo.py's canceller with ours inside: the gate finds the room's delay and tells it; once
    it has learned, the echo is gone and a voice over the answer comes out as it went in."""
    from openrealtime.session.echo import EchoCanceller

    far = speechlike(7, seed=13)
    user = speechlike(7, seed=14)
    near = room(far, delay=2880)  # 180 ms: the player's start and the room
    talk = slice(5 * RATE_HZ, 6 * RATE_HZ)
    near[talk] += user[talk]
    canceller = EchoCanceller(0)
    canceller.reference.play(far, RATE_HZ, now=0, item_id="item_1")
    out = np.concatenate([canceller.process(near[i : i + 2 * BLOCK], RATE_HZ) for i in range(0, near.size, 2 * BLOCK)])
    echo_only = slice(3 * RATE_HZ, 5 * RATE_HZ)
    assert db(out[echo_only]) < db(near[echo_only]) - 30
    voiced = np.abs(user[talk]) > 0.02
    assert abs(db(out[talk][voiced]) - db(user[talk][voiced])) < 3


def test_an_answer_fading_out_over_a_noisy_microphone_leaves_the_filter_whole() -> None:
    """As a piece of an answer dies away and leaves the filter's span, the reference in it is next to
    nothing while the microphone still hears its own noise: a step normalized by that reference alone
    blows the filter up (without the step's floor: weights ~200 times the room's, the room never
    learned, the input held for the whole 3 s). The next piece is learned as if nothing happened."""
    first, second = speechlike(0.8, seed=21), speechlike(2, seed=22)
    fade = np.linspace(0, 1, RATE_HZ // 5)
    first[-fade.size :] *= (10 ** (-4 * fade)).astype(np.float32)  # -80 dB over its last 200 ms
    far = np.concatenate([first, np.zeros(RATE_HZ // 2, np.float32), second])
    noise = np.random.default_rng(23).standard_normal(far.size) * 10 ** (-65 / 20)  # the microphone's
    near = (room(far, delay=2400) + noise).astype(np.float32)
    canceller = placed(suppressing=False)
    out = run(canceller, near, far)
    assert canceller.learned
    assert canceller.held_blocks <= 200
    later = slice(far.size - RATE_HZ, None)
    assert db(out[later]) < db(near[later]) - 15


def test_a_new_answer_heard_later_is_found_with_the_room_it_learned() -> None:
    """A new answer after a pause comes back 20 ms later than the last (placed with another lead over
    the listener). Until its echo is back the filter predicts an echo the input does not hold; were it
    to learn from that, it would unlearn the room and then search for the new shift with nothing (the
    echo passed for a second, offline). It finds the shift with what it learned, at once."""
    first, second = speechlike(3, seed=31), speechlike(2, seed=32)
    gap = np.zeros(RATE_HZ, np.float32)
    far = np.concatenate([first, gap, second])
    restart = first.size + gap.size
    near = np.concatenate([room(far[:restart], delay=2400), room(far, delay=2720)[restart:]])
    canceller = placed(suppressing=False)
    out = run(canceller, near, far)
    soon = slice(restart + 2720 + RATE_HZ // 4, restart + 2720 + RATE_HZ)
    assert db(out[soon]) < db(near[soon]) - 20


def test_the_echo_of_an_answers_end_the_player_never_sounded_is_silenced_not_passed() -> None:
    """A cut (a truncate, a client's cancel) ends the reference where the server stood, and the
    listener's player, a little behind, never sounded the last 20 ms of it: the filter expects their
    echo, which does not come, and explains none of what does (the room's reflection of what was
    heard). No louder than the echo expected, that is no voice: silenced, not passed as it came (the
    reverberant room's tail after a cut started turns over the protocol)."""
    far = speechlike(3, seed=41)
    cut = far.size - RATE_HZ // 2
    far[cut:] = 0
    sounded = far.copy()
    sounded[cut - 320 :] = 0
    near = np.zeros_like(far)  # a room with a strong reflection 30 ms after the direct sound
    near[2400:] += 0.5 * sounded[:-2400]
    near[2880:] += 0.35 * sounded[:-2880]
    canceller = placed()
    out = run(canceller, near, far)
    assert canceller.learned
    after = slice(cut - 320 + 2400, cut + 2400 + 480)  # where the echo of the unsounded end was expected
    assert db(out[after]) < db(near[after]) - 20
