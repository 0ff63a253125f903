"""The assistant's turn-taking, driven with scripted server events: whole outputs, no sockets, no clock."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from openrealtime.client.assistant_config import AssistantOptions
from openrealtime.client.history import ConversationHistory
from openrealtime.client.playback import PlaybackCut
from openrealtime.client.turns import (
    MAX_TOOL_ROUNDS,
    Action,
    FunctionCall,
    InterruptPlayback,
    PausePlayback,
    Play,
    ResumePlayback,
    RunTools,
    Send,
    StopPlayback,
    Truncation,
    TurnTaking,
)
from openrealtime.protocol.codec import server_event_from_dict

SAMPLES_PER_MS = 24
PCM_100_MS = b"\x01\x00" * 100 * SAMPLES_PER_MS


def turns_with(turn_detection: dict[str, Any] | None = None, *, tools: bool = False, **options: Any) -> TurnTaking:
    """A turn-taking whose session was configured with ``turn_detection`` (server VAD by default)."""
    turns = TurnTaking(AssistantOptions(**options), history=ConversationHistory(), tools=tools)
    td = {"type": "server_vad"} if turn_detection is None else turn_detection
    session = {"type": "realtime", "audio": {"input": {"turn_detection": td or None}}, "expires_at": 0}
    assert receive(turns, type="session.updated", session=session) == []
    return turns


def receive(turns: TurnTaking, **event: Any) -> list[Action]:
    return turns.receive(server_event_from_dict(event))


def message(item_id: str, role: str = "assistant") -> dict[str, Any]:
    return {"id": item_id, "type": "message", "role": role, "status": "in_progress", "content": []}


def answering(turns: TurnTaking, item_id: str = "item_A", *, modalities: tuple[str, ...] = ("audio",)) -> None:
    """``response.created``, its message item, and 100 ms of its audio."""
    response = {"id": "resp_1", "output_modalities": list(modalities), "conversation_id": "conv_1"}
    assert receive(turns, type="response.created", response=response) == []
    assert receive(turns, type="response.output_item.added", response_id="resp_1", item=message(item_id)) == []
    assert receive(turns, type="conversation.item.added", previous_item_id=None, item=message(item_id)) == []
    delta = base64.b64encode(PCM_100_MS).decode()
    assert receive(turns, type="response.output_audio.delta", item_id=item_id, delta=delta) == [
        Play(item_id, PCM_100_MS)
    ]


def speech_started(turns: TurnTaking) -> list[Action]:
    return receive(turns, type="input_audio_buffer.speech_started", audio_start_ms=900, item_id="item_U")


# --- barge-in ------------------------------------------------------------------------------------


def test_speech_stops_playback_then_truncates_each_cut_item_to_the_ms_played() -> None:
    turns = turns_with()
    answering(turns)
    assert speech_started(turns) == [InterruptPlayback(("item_A",))]
    played = PlaybackCut(cut=("item_A",), played_ms={"item_A": 373}, received_ms={"item_A": 1000})
    truncate = {"type": "conversation.item.truncate", "item_id": "item_A", "content_index": 0}
    assert turns.playback_interrupted(played) == [Send({**truncate, "audio_end_ms": 373, "event_id": "evt_or_1"})]
    assert turns.truncations == [Truncation("item_A", 373, 1000)]
    assert turns.speech_starts == 1
    # The item is held until the server's copy says what was heard; that copy is asked for.
    cut = turns.history.get("item_A")
    assert cut is not None
    assert cut.held
    assert receive(turns, type="conversation.item.truncated", item_id="item_A", content_index=0, audio_end_ms=373) == [
        Send({"type": "conversation.item.retrieve", "item_id": "item_A", "event_id": "evt_or_2"})
    ]
    late = base64.b64encode(PCM_100_MS).decode()
    assert receive(turns, type="response.output_audio.delta", item_id="item_A", delta=late) == []  # never played
    assert turns.playback_interrupted(played) == []  # an item is cut once


ADAPTIVE = {"type": "server_vad", "barge_in": "adaptive"}


def judged(turns: TurnTaking, *, interruption: bool) -> list[Action]:
    return receive(turns, type="input_audio_buffer.speech_judged", item_id="item_U", interruption=interruption)


def test_under_the_adaptive_barge_in_speech_pauses_playback_and_a_backchannel_resumes_it() -> None:
    turns = turns_with(ADAPTIVE)
    answering(turns)
    assert speech_started(turns) == [PausePlayback()]  # the server judges it: nothing is cut yet
    assert receive(turns, type="input_audio_buffer.speech_stopped", audio_end_ms=1300, item_id="item_U") == []
    assert judged(turns, interruption=False) == [ResumePlayback()]
    assert judged(turns, interruption=False) == []  # judged again (it went on): still nothing to resume
    assert turns.truncations == []
    assert turns.deletions == []


def test_under_the_adaptive_barge_in_an_interruption_stops_and_truncates_as_before() -> None:
    turns = turns_with(ADAPTIVE)
    answering(turns)
    assert speech_started(turns) == [PausePlayback()]
    cancelled = {"id": "resp_1", "status": "cancelled", "status_details": {"reason": "turn_detected"}, "output": []}
    assert receive(turns, type="response.done", response=cancelled) == []
    assert judged(turns, interruption=True) == [InterruptPlayback()]
    played = PlaybackCut(cut=("item_A",), played_ms={"item_A": 480}, received_ms={"item_A": 900})
    [truncate] = turns.playback_interrupted(played)
    assert isinstance(truncate, Send)
    assert (truncate.event["type"], truncate.event["audio_end_ms"]) == ("conversation.item.truncate", 480)


def test_a_new_answer_while_paused_stops_the_old_one() -> None:
    turns = turns_with(ADAPTIVE)
    answering(turns)
    assert speech_started(turns) == [PausePlayback()]
    response = {"id": "resp_2", "output_modalities": ["audio"], "conversation_id": "conv_1"}
    assert receive(turns, type="response.created", response=response) == [InterruptPlayback()]


def test_a_session_left_while_paused_stops_the_player_whose_verdict_will_never_come() -> None:
    turns = turns_with(ADAPTIVE)
    answering(turns)
    done = {"id": "resp_1", "status": "completed", "output": []}
    assert receive(turns, type="response.done", response=done) == []  # generated; still playing
    assert speech_started(turns) == [PausePlayback()]
    assert turns.abandon(lost=False) == [StopPlayback()]  # a planned move: the new session judges nothing
    assert turns.abandon(lost=True) == []


@pytest.mark.parametrize(
    "turn_detection",
    [
        {"type": "server_vad"},  # the server's default, whatever it is: no verdicts come to this session
        {"type": "server_vad", "barge_in": "immediate"},
        {"type": "server_vad", "barge_in": "adaptive", "interrupt_response": False},
    ],
)
def test_without_the_servers_verdicts_speech_stops_playback_at_once(turn_detection: dict[str, Any]) -> None:
    turns = turns_with(turn_detection)
    answering(turns)
    [action] = speech_started(turns)
    assert isinstance(action, InterruptPlayback)


def test_an_item_none_of_which_was_heard_is_deleted() -> None:
    turns = turns_with()
    answering(turns)
    speech_started(turns)
    nothing = PlaybackCut(cut=("item_A",), played_ms={"item_A": 0}, received_ms={"item_A": 100})
    assert turns.playback_interrupted(nothing) == [
        Send({"type": "conversation.item.delete", "item_id": "item_A", "event_id": "evt_or_1"})
    ]
    assert (turns.truncations, turns.deletions) == ([], ["item_A"])


@pytest.mark.parametrize("turn_detection", [{"type": "server_vad", "interrupt_response": False}, {}])
def test_without_server_interruption_the_response_is_cancelled_first(turn_detection: dict[str, Any]) -> None:
    turns = turns_with(turn_detection)
    answering(turns)
    speech_started(turns)
    played = PlaybackCut(cut=("item_A",), played_ms={"item_A": 50}, received_ms={"item_A": 100})
    assert [a.event["type"] for a in turns.playback_interrupted(played) if isinstance(a, Send)] == [
        "response.cancel",
        "conversation.item.truncate",
    ]


def test_a_text_answer_or_an_out_of_band_one_asks_for_no_items_to_be_measured() -> None:
    turns = turns_with()
    answering(turns, modalities=("text",))
    assert speech_started(turns) == [InterruptPlayback(())]
    out_of_band = turns_with()
    response = {"id": "resp_9", "conversation_id": None}
    assert receive(out_of_band, type="response.created", response=response) == []
    assert not out_of_band.responding
    assert speech_started(out_of_band) == [InterruptPlayback(())]
    assert out_of_band.playback_interrupted(PlaybackCut(cut=("item_X",), played_ms={}, received_ms={})) == []


# --- turns and responses -------------------------------------------------------------------------


def test_a_committed_turn_expects_an_answer_until_it_is_done() -> None:
    turns = turns_with()
    assert turns.idle()
    speech_started(turns)
    assert not turns.idle()
    assert receive(turns, type="input_audio_buffer.committed", previous_item_id=None, item_id="item_U") == []
    assert not turns.idle()  # server VAD creates the response: one is expected
    answering(turns)
    assert turns.responding
    done = {"id": "resp_1", "status": "completed", "output": [{"id": "item_A", "type": "message"}]}
    assert receive(turns, type="response.done", response=done) == []
    assert (turns.responding, turns.responses) == (False, [done])


def test_our_response_create_expects_an_answer_unless_it_was_refused_or_never_sent() -> None:
    turns = turns_with({})
    assert turns.create_response() == Send({"type": "response.create", "event_id": "evt_or_1"})
    assert not turns.idle()
    turns.not_sent("evt_or_1")
    assert turns.idle()
    turns.create_response({"instructions": "Be brief."})
    error = {"type": "invalid_request_error", "code": "x", "message": "no", "param": None, "event_id": "evt_or_2"}
    assert receive(turns, type="error", error=error) == []
    assert turns.idle()
    assert turns.errors == [error]


def test_harmless_races_are_not_recorded_as_errors() -> None:
    turns = turns_with()
    assert receive(turns, type="error", error={"code": "response_cancel_not_active", "message": "late"}) == []
    assert turns.errors == []


# --- tools ---------------------------------------------------------------------------------------

CALL = {
    "id": "f1",
    "type": "function_call",
    "name": "get_weather",
    "call_id": "call_1",
    "arguments": '{"city": "Paris"}',
}


def tool_response(status: str = "completed") -> dict[str, Any]:
    return {"id": "resp_1", "status": status, "output": [CALL]}


def test_a_completed_function_call_is_run_and_then_answered_without_tools_when_forced() -> None:
    turns = turns_with(tools=True, tool_choice="required")
    assert receive(turns, type="response.done", response=tool_response()) == [
        RunTools((FunctionCall("get_weather", "call_1", '{"city": "Paris"}'),))
    ]
    assert not turns.idle()  # the tools are running
    assert FunctionCall.of(CALL).answer("18") == {
        "type": "conversation.item.create",
        "item": {"type": "function_call_output", "call_id": "call_1", "output": "18"},
    }
    assert turns.tools_finished() == Send(
        {"type": "response.create", "event_id": "evt_or_1", "response": {"tool_choice": "none"}}
    )


def test_tool_rounds_in_a_row_end_with_tools_forbidden() -> None:
    turns = turns_with(tools=True)
    for round_ in range(1, MAX_TOOL_ROUNDS + 1):
        receive(turns, type="response.done", response=tool_response())
        request = turns.tools_finished().event
        assert request.get("response") == ({"tool_choice": "none"} if round_ == MAX_TOOL_ROUNDS else None)
    receive(turns, type="response.done", response={"id": "r", "status": "completed", "output": []})
    receive(turns, type="response.done", response=tool_response())
    assert "response" not in turns.tools_finished().event  # an answer without calls starts the count again


def test_calls_are_not_run_without_tools_or_from_an_unfinished_response() -> None:
    assert receive(turns_with(), type="response.done", response=tool_response()) == []
    assert receive(turns_with(tools=True), type="response.done", response=tool_response("cancelled")) == []
    abandoned = turns_with(tools=True)
    receive(abandoned, type="response.done", response=tool_response())
    abandoned.tools_abandoned()
    assert abandoned.idle()


# --- sessions ------------------------------------------------------------------------------------


def test_the_move_to_a_new_session_is_due_a_margin_before_it_expires() -> None:
    turns = turns_with(reconnect_margin_s=60.0)
    assert turns.reconnect_wait_s(1000.0) is None  # no expiry known
    receive(turns, type="session.updated", session={"expires_at": 2000})
    assert turns.reconnect_wait_s(1000.0) == 940.0
    assert turns.reconnect_wait_s(1990.0) == 0.0
    turns.session_opened()
    assert turns.reconnect_wait_s(1990.0) is None  # a new session inside the margin: moving again won't help


def test_a_lost_session_stops_its_answer_and_forgets_what_will_never_finish() -> None:
    turns = turns_with()
    untranscribed = {**message("item_U", "user"), "content": [{"type": "input_audio", "transcript": None}]}
    receive(turns, type="conversation.item.added", previous_item_id=None, item=untranscribed)
    answering(turns)
    assert not turns.idle()
    assert turns.abandon(lost=True) == [StopPlayback()]
    assert (turns.history.items(), turns.responding, turns.idle()) == ([], False, True)
    assert turns.abandon(lost=True) == []  # nothing playing any more


# --- microphone and kept audio -------------------------------------------------------------------


def test_the_echo_guard_mutes_while_playing_and_for_the_cooldown() -> None:
    turns = turns_with(mute_mic=True, mute_cooldown_ms=800)
    assert turns.mic_muted(playing=True, idle_s=0.0)
    assert turns.mic_muted(playing=False, idle_s=0.5)
    assert not turns.mic_muted(playing=False, idle_s=0.81)
    assert not turns_with().mic_muted(playing=True, idle_s=0.0)


def test_kept_audio_is_cut_to_what_was_heard() -> None:
    turns = turns_with(keep_audio=True)
    answering(turns)
    speech_started(turns)
    turns.playback_interrupted(PlaybackCut(cut=("item_A",), played_ms={"item_A": 40}, received_ms={"item_A": 100}))
    assert turns.answer_audio() == PCM_100_MS[: 40 * SAMPLES_PER_MS * 2]
