"""Barge-in that knows a backchannel from an interruption (issue 13): the rule, the playback hold, and
the adaptive mode of a realtime session over a WebSocket and on a call, with fake engines. OpenAI's
immediate barge-in stays the default (test_realtime.py and test_server_playback.py hold it)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from openrealtime.engines.fake import EnergyVad, FakeTranscriber
from openrealtime.session.bargein import Verdict, content_words, judge, speech_ms
from openrealtime.session.commands import (
    ClearPlayback,
    HoldPlayback,
    PlaybackCleared,
    PlaybackStarted,
    PlaybackStopped,
    PlayedItem,
)
from openrealtime.session.ids import Ids
from openrealtime.session.realtime import RealtimeInfo, RealtimeSession
from openrealtime.session.transcription import SessionInfo
from openrealtime.webrtc.playback import PlaybackQueue
from tests.conftest import quiet, tone
from tests.session.driver import RealtimeDriver
from tests.session.test_realtime import RESPONSE_TAIL, say, types
from tests.session.test_server_playback import CALL_RATE_HZ, Recording, clock, hear
from tests.webrtc.test_playback import frames, speech

# --- the rule ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("Mm-hm.", 400),
        ("Yeah.", 300),
        ("Okay, right.", 700),
        ("Uh-huh", 500),
        ("I see.", 500),
        ("Got it, thanks!", 900),
        ("(coughs)", 300),
        ("[COUGH]", 500),
        ("you", 200),
        ("", 400),
        ("Oh, wow.", 600),
        ("in my mom.", 480),  # a hum Whisper heard as words: too short to be an interruption
        ("Tuesday", 400),
    ],
)
def test_backchannels_coughs_and_noise_are_not_interruptions(text: str, ms: int) -> None:
    assert judge(ms, text, final=True) is Verdict.NOT_AN_INTERRUPTION
    assert judge(ms, text, final=False) is Verdict.UNDECIDED  # live: they may go on


@pytest.mark.parametrize(
    ("text", "ms", "final", "earlier"),
    [
        ("Wait, can", 450, False, "Wait."),  # a stop word two live decodes heard takes the turn
        ("Hold on", 300, False, "Hold"),
        ("No, no", 300, False, "No"),
        ("What about", 500, False, "What?"),
        ("Yeah but what", 600, False, "Yeah, what"),
        ("What?", 300, True, ""),  # the final transcript of speech that is over: at once
        ("Stop.", 250, True, "Um"),
        ("Tuesday", 800, False, ""),  # a content word, and speech too long for a backchannel
        ("Tuesday next week", 900, True, ""),
        ("", 2100, False, ""),  # long speech the ASR has not read yet
        ("yeah yeah okay right", 2600, False, ""),  # a long run of backchannels
    ],
)
def test_real_interruptions(text: str, ms: int, final: bool, earlier: str) -> None:
    assert judge(ms, text, final=final, earlier=earlier) is Verdict.INTERRUPTION


@pytest.mark.parametrize(
    ("decodes", "final"),
    [
        (["M.", "Mm.", "MMI", "And I'm no."], "NMM."),  # tiny.en's decodes of a growing 0.48 s "Mm-hmm"
        (["in the", "in number.", "No, mm."], "in my mom."),
        (["uh", "Oh", "What?"], "Oh."),
    ],
)
def test_a_stop_word_misheard_in_one_decode_of_a_hum_does_not_interrupt(decodes: list[str], final: str) -> None:
    earlier = ""
    for ms, text in enumerate(decodes, 2):
        assert judge(ms * 100, text, final=False, earlier=earlier) is Verdict.UNDECIDED
        earlier = text
    assert judge(480, final, final=True) is Verdict.NOT_AN_INTERRUPTION


def test_a_live_stop_word_waits_for_the_next_decode() -> None:
    assert judge(250, "Wait", final=False) is Verdict.UNDECIDED
    assert judge(450, "Wait, can", final=False, earlier="Wait") is Verdict.INTERRUPTION


def test_one_short_word_or_short_speech_waits_for_more() -> None:
    assert judge(300, "Tuesday", final=False) is Verdict.UNDECIDED
    assert judge(1900, "", final=False) is Verdict.UNDECIDED
    assert judge(2400, "yeah yeah", final=False) is Verdict.UNDECIDED


def test_content_words_drop_phrases_notes_and_punctuation() -> None:
    assert content_words("Mm-hm, I see. (laughs) That's right!") == []
    assert content_words("Sorry, what did you say?") == ["sorry", "what", "did", "say"]


def test_speech_lasts_from_its_onset_to_its_pause() -> None:
    assert speech_ms(None, None, 16_000, 16_000) == 0
    assert speech_ms(1_600, None, 9_600, 16_000) == 500
    assert speech_ms(1_600, 4_800, 9_600, 16_000) == 200


# --- the playback hold ------------------------------------------------------------------------------


def test_held_playback_goes_on_from_the_very_sample_it_stopped_at() -> None:
    ramp = np.linspace(0.1, 0.9, 24_000 * 300 // 1000, dtype=np.float32)
    plain, held_queue = PlaybackQueue(), PlaybackQueue()
    for queue in (plain, held_queue):
        queue.play("resp_1", "item_1", ramp)
        queue.end("resp_1")
    unheld, _ = frames(plain, 20)
    before, notices = frames(held_queue, 5)
    assert notices == [PlaybackStarted("resp_1")]
    held_queue.hold(True)
    assert held_queue.held
    held, notices = frames(held_queue, 20)  # 400 ms held: silence, nothing moves, no stop
    assert not held.any()
    assert notices == []
    held_queue.hold(False)
    after, notices = frames(held_queue, 15)
    assert notices == [PlaybackStopped("resp_1")]
    np.testing.assert_array_equal(np.concatenate([before, after]), unheld)  # nothing lost or repeated


def test_a_clear_while_held_counts_what_was_played_before_the_hold() -> None:
    queue = PlaybackQueue()
    queue.play("resp_1", "item_1", speech(300))
    frames(queue, 5)  # 100 ms
    queue.hold(True)
    frames(queue, 10)
    assert queue.clear() == PlaybackCleared((PlayedItem("resp_1", "item_1", 100),))
    assert not queue.held  # nothing is left to hold


# --- the session ------------------------------------------------------------------------------------

BACKCHANNEL = ("mm-hm",)
INTERRUPTION = ("wait", "what", "about", "Paris", "instead")


def make(script: tuple[str, ...], *, server_default: str = "immediate", call: bool = False, **kwargs: Any) -> Any:
    base = SessionInfo(session_id="sess_1", created_at_s=1_000, accepts_model=lambda m: True)
    info = RealtimeInfo(
        base=base, model="gpt-realtime", instructions="Be brief.", server_playback=call, barge_in=server_default
    )
    session = RealtimeSession(info, vad=EnergyVad(), ids=Ids(deterministic=True))
    recording = Recording(session)
    driver = RealtimeDriver(recording, **kwargs)
    if call:
        from openrealtime.protocol.codec import SessionKind
        from openrealtime.runtime.wire import ClientFrames

        driver.frames = ClientFrames(SessionKind.REALTIME, call=True)
    driver.asr = FakeTranscriber(script, words_per_second=10)
    driver.pump()
    return session, recording, driver


def adaptive(driver: RealtimeDriver, mode: str | None = "adaptive") -> list[dict[str, Any]]:
    td: dict[str, Any] = {"type": "server_vad", "silence_duration_ms": 300}
    if mode is not None:
        td["barge_in"] = mode
    return driver.send(
        {"type": "session.update", "session": {"type": "realtime", "audio": {"input": {"turn_detection": td}}}}
    )


def speaking(driver: RealtimeDriver) -> str:
    """An answer to a text turn, 300 ms of its audio sent and the rest held; its response id."""
    say(driver)
    created = driver.send({"type": "response.create"})
    [clause] = driver.held_tts
    driver.run_tts(clause, chunks=3)
    driver.pump()
    return str(created[0]["response"]["id"])


def test_the_extension_is_echoed_only_to_a_client_that_set_it() -> None:
    session, _, driver = make(BACKCHANNEL, server_default="adaptive")
    assert "barge_in" not in session.effective_session()["audio"]["input"]["turn_detection"]
    [updated] = adaptive(driver, "immediate")
    assert updated["session"]["audio"]["input"]["turn_detection"]["barge_in"] == "immediate"
    [refused] = adaptive(driver, "sometimes")
    assert refused["type"] == "error"
    assert refused["error"]["param"] == "session.audio.input.turn_detection.barge_in"


def test_a_backchannel_over_an_answer_cancels_nothing_and_gets_no_answer() -> None:
    session, _, driver = make(BACKCHANNEL, hold_tts=True)
    adaptive(driver)
    response_id = speaking(driver)
    events = driver.append(tone(400)) + driver.append(quiet(600))
    assert types(events)[:3] == [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_judged",  # our extension: this client named barge_in
        "input_audio_buffer.speech_stopped",
    ]
    assert events[1]["interruption"] is False
    assert events[1]["item_id"] == events[0]["item_id"]
    assert "input_audio_buffer.committed" in types(events)
    assert "response.done" not in types(events)
    assert "response.created" not in types(events)
    active = session.active_response
    assert active is not None
    assert active.id == response_id
    rest: list[dict[str, Any]] = []
    while driver.held_tts:
        driver.run_tts(driver.held_tts.pop(0))
        rest += driver.pump()
    assert "response.output_audio.delta" in types(rest)
    assert types(rest)[-7:] == RESPONSE_TAIL
    assert rest[-2]["response"]["status"] == "completed"
    assert len(driver.chat.requests) == 1  # the "mm-hm" was not answered


def test_a_real_interruption_cancels_as_soon_as_its_words_say_so() -> None:
    _session, _, driver = make(INTERRUPTION, hold_tts=True)
    adaptive(driver)
    speaking(driver)
    events = driver.append(tone(100))
    assert types(events) == ["input_audio_buffer.speech_started"]  # not yet: it may be an "mm-hm"
    events = driver.append(tone(300))
    assert types(events) == []  # "wait" heard once: the next decode must hear a stop word too
    events = driver.append(tone(200))
    assert types(events) == [*RESPONSE_TAIL, "input_audio_buffer.speech_judged"]
    assert events[-3]["response"]["status_details"] == {"type": "cancelled", "reason": "turn_detected"}
    assert events[-1]["interruption"] is True
    events = driver.append(tone(500)) + driver.append(quiet(500))
    assert "response.created" in types(events)  # the interruption is answered
    assert driver.chat.requests[-1].messages[-1]["content"].startswith("wait what")


def test_a_short_word_that_is_not_a_stop_word_is_no_interruption_but_a_longer_one_is() -> None:
    session, _, driver = make(("Tuesday",), hold_tts=True)
    adaptive(driver)
    response_id = speaking(driver)
    events = driver.append(tone(400)) + driver.append(quiet(600))
    assert "response.done" not in types(events)  # 400 ms: a backchannel's length
    active = session.active_response
    assert active is not None
    assert active.id == response_id
    events = driver.append(tone(900))
    kinds = types(events)
    assert events[kinds.index("response.done")]["response"]["status"] == "cancelled"
    assert "response.created" in types(driver.append(quiet(600)))


def test_the_server_default_applies_and_a_session_may_ask_for_openais() -> None:
    session, _, driver = make(BACKCHANNEL, server_default="adaptive", hold_tts=True)
    adaptive(driver, None)
    speaking(driver)
    events = driver.append(tone(300)) + driver.append(quiet(600))
    assert "response.done" not in types(events)
    assert "input_audio_buffer.speech_judged" not in types(events)  # a strict client sees no extension
    adaptive(driver, "immediate")
    assert session.active_response is not None
    barge = driver.append(tone(300))
    assert types(barge) == ["input_audio_buffer.speech_started", *RESPONSE_TAIL]


def test_a_backchannel_while_the_client_still_plays_a_finished_answer_gets_no_answer() -> None:
    _session, _, driver = make(BACKCHANNEL)
    adaptive(driver)
    say(driver)
    done = driver.send({"type": "response.create"})
    assert done[-2]["response"]["status"] == "completed"  # generated faster than it is played
    events = driver.append(tone(300)) + driver.append(quiet(600))
    assert "input_audio_buffer.committed" in types(events)
    assert "response.created" not in types(events)


def test_speech_after_the_answer_was_heard_is_a_new_turn() -> None:
    _session, _, driver = make(BACKCHANNEL)
    adaptive(driver)
    say(driver, "Hi")
    driver.send({"type": "response.create"})
    driver.append(quiet(5000))  # the whole answer has been played by now
    events = driver.append(tone(300)) + driver.append(quiet(600))
    assert "response.created" in types(events)
    # Every speech_started of a session that asked for the verdicts gets one: here at once.
    assert types(events)[:2] == ["input_audio_buffer.speech_started", "input_audio_buffer.speech_judged"]
    assert events[1]["interruption"] is True


def test_a_call_holds_the_answer_at_once_and_resumes_it_after_a_backchannel() -> None:
    session, recording, driver = make(BACKCHANNEL, call=True)
    adaptive(driver)
    say(driver)
    done = driver.send({"type": "response.create"})
    response_id = done[0]["response"]["id"]
    clock(driver, PlaybackStarted(response_id))
    recording.commands = []
    events = hear(driver, tone(400, rate_hz=CALL_RATE_HZ)) + hear(driver, quiet(600, rate_hz=CALL_RATE_HZ))
    held = [c for c in recording.commands if isinstance(c, HoldPlayback | ClearPlayback)]
    assert held == [HoldPlayback(True), HoldPlayback(False)]
    assert "output_audio_buffer.cleared" not in types(events)
    assert "response.created" not in types(events)
    assert session.playback.pending
    assert types(clock(driver, PlaybackStopped(response_id))) == ["output_audio_buffer.stopped"]


def test_a_call_interrupted_for_real_clears_and_truncates_to_what_was_heard() -> None:
    session, recording, driver = make(INTERRUPTION, call=True)
    adaptive(driver)
    say(driver)
    done = driver.send({"type": "response.create"})
    response_id, item_id = done[0]["response"]["id"], done[1]["item"]["id"]
    clock(driver, PlaybackStarted(response_id))
    recording.commands = []
    hear(driver, tone(600, rate_hz=CALL_RATE_HZ))
    held = [c for c in recording.commands if isinstance(c, HoldPlayback | ClearPlayback)]
    assert held == [HoldPlayback(True), ClearPlayback()]
    cleared = clock(driver, PlaybackCleared((PlayedItem(response_id, item_id, 600),)))
    assert types(cleared) == ["output_audio_buffer.cleared", "conversation.item.truncated"]
    assert not session.playback.pending


def test_a_backchannel_that_goes_on_into_an_interruption_is_judged_again() -> None:
    _session, recording, driver = make(("yeah", "but", "what", "about", "Paris"), call=True)
    driver.asr = FakeTranscriber(("yeah", "but", "what", "about", "Paris"), words_per_second=3)
    td = {"type": "server_vad", "silence_duration_ms": 800, "barge_in": "adaptive"}
    driver.send({"type": "session.update", "session": {"type": "realtime", "audio": {"input": {"turn_detection": td}}}})
    say(driver)
    done = driver.send({"type": "response.create"})
    clock(driver, PlaybackStarted(done[0]["response"]["id"]))
    recording.commands = []
    hear(driver, tone(400, rate_hz=CALL_RATE_HZ))
    hear(driver, quiet(400, rate_hz=CALL_RATE_HZ))  # "yeah", a pause: judged a backchannel
    assert [c for c in recording.commands if isinstance(c, HoldPlayback)] == [HoldPlayback(True), HoldPlayback(False)]
    recording.commands = []
    hear(driver, tone(600, rate_hz=CALL_RATE_HZ))  # "... but what about"
    held = [c for c in recording.commands if isinstance(c, HoldPlayback | ClearPlayback)]
    assert held == [HoldPlayback(True), ClearPlayback()]


def test_a_speaker_judged_a_backchannel_who_goes_on_after_the_answer_ended_is_answered() -> None:
    session, _, driver = make(("yeah", "but", "what", "about", "Paris"))
    td = {"type": "server_vad", "silence_duration_ms": 800, "barge_in": "adaptive"}
    driver.send({"type": "session.update", "session": {"type": "realtime", "audio": {"input": {"turn_detection": td}}}})
    say(driver)
    driver.send({"type": "response.create"})  # generated at once; the client plays it for a while
    left_ms = (session._speaking_until - session.buffer.buffer.end) * 1000 // 16_000
    driver.append(quiet(left_ms - 400))
    events = driver.append(tone(300)) + driver.append(quiet(400))  # "yeah", a pause: a backchannel
    assert [e["interruption"] for e in events if e["type"] == "input_audio_buffer.speech_judged"] == [False]
    assert session.buffer.buffer.end > session._speaking_until  # the answer was heard to its end meanwhile
    events = driver.append(tone(900)) + driver.append(quiet(1000))  # "... but what about Paris"
    assert "input_audio_buffer.speech_started" not in types(events)  # the same turn goes on
    assert "response.created" in types(events)  # and is answered, not taken for a backchannel


@pytest.mark.parametrize(("script", "interrupts"), [(("What?",), True), (("Yeah.",), False)])
def test_a_turn_committed_before_it_was_judged_waits_for_its_final_transcript(
    script: tuple[str, ...], interrupts: bool
) -> None:
    session, _, driver = make(script, hold_tts=True)
    driver.asr = HeardLate(script[0])
    td = {"type": "server_vad", "silence_duration_ms": 50, "barge_in": "adaptive"}  # no speculative final
    driver.send({"type": "session.update", "session": {"type": "realtime", "audio": {"input": {"turn_detection": td}}}})
    response_id = speaking(driver)
    events = driver.append(tone(250)) + driver.append(quiet(300))
    kinds = types(events)
    committed = kinds.index("input_audio_buffer.committed")
    assert ("response.done" in kinds[committed:]) is interrupts
    assert ("response.created" in kinds[committed:]) is interrupts
    active = session.active_response
    assert active is not None
    assert (active.id != response_id) is interrupts


class HeardLate:
    """A transcriber that hears ``text`` only in the final decode (at least 230 ms of audio)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def transcribe(self, audio: Any, options: Any) -> Any:
        from openrealtime.contracts import Transcript

        return Transcript(text=self.text if audio.size >= 16_000 * 0.23 else "", segments=(), language="en")


def test_the_server_setting_is_checked() -> None:
    from openrealtime.session.bargein import barge_in_mode

    assert barge_in_mode("adaptive") == "adaptive"
    with pytest.raises(ValueError, match="barge_in"):
        barge_in_mode("sometimes")


def test_nothing_is_judged_without_interrupt_response_and_a_cleared_turn_releases_the_hold() -> None:
    from openrealtime.protocol import client_events as ce

    session, recording, driver = make(BACKCHANNEL, call=True)
    td = {"type": "server_vad", "silence_duration_ms": 300, "barge_in": "adaptive", "interrupt_response": False}
    driver.send({"type": "session.update", "session": {"type": "realtime", "audio": {"input": {"turn_detection": td}}}})
    say(driver)
    done = driver.send({"type": "response.create"})
    clock(driver, PlaybackStarted(done[0]["response"]["id"]))
    recording.commands = []
    hear(driver, tone(400, rate_hz=CALL_RATE_HZ))
    assert not [c for c in recording.commands if isinstance(c, HoldPlayback)]
    driver.session.receive(ce.InputAudioBufferClear(type="input_audio_buffer.clear"))
    td["interrupt_response"] = True
    driver.send({"type": "session.update", "session": {"type": "realtime", "audio": {"input": {"turn_detection": td}}}})
    recording.commands = []
    hear(driver, tone(400, rate_hz=CALL_RATE_HZ))
    assert [c for c in recording.commands if isinstance(c, HoldPlayback)] == [HoldPlayback(True)]
    driver.session.receive(ce.InputAudioBufferClear(type="input_audio_buffer.clear"))
    driver.pump()
    assert [c for c in recording.commands if isinstance(c, HoldPlayback)] == [HoldPlayback(True), HoldPlayback(False)]
    assert session._barge.pending is None


def test_under_semantic_vad_a_backchannel_is_let_go_in_its_pause_not_at_the_turns_end() -> None:
    session, recording, driver = make(BACKCHANNEL, call=True)
    td = {"type": "semantic_vad", "eagerness": "low", "barge_in": "adaptive"}  # the turn may wait 8 s to end
    driver.send({"type": "session.update", "session": {"type": "realtime", "audio": {"input": {"turn_detection": td}}}})
    say(driver)
    done = driver.send({"type": "response.create"})
    clock(driver, PlaybackStarted(done[0]["response"]["id"]))
    recording.commands = []
    events = hear(driver, tone(400, rate_hz=CALL_RATE_HZ)) + hear(driver, quiet(300, rate_hz=CALL_RATE_HZ))
    assert "input_audio_buffer.committed" not in types(events)  # the turn has not ended
    assert [c for c in recording.commands if isinstance(c, HoldPlayback)] == [HoldPlayback(True), HoldPlayback(False)]
    assert session.playback.pending
