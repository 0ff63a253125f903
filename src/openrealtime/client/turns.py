"""The voice assistant's turn-taking, sans I/O: what to do on each server event of a conversation.

This module owns :class:`TurnTaking`, every decision of the assistant client;
:class:`~openrealtime.client.assistant.Assistant` is its async driver and keeps the WebSocket, the
player and the tasks. Inputs are typed: server events parsed leniently
(:func:`~openrealtime.protocol.codec.parse_server_event`), what playback reports after a barge-in
stop (:class:`~openrealtime.client.playback.PlaybackCut`), the end of a tool round, a lost session,
and the clock as a value. Outputs are :data:`Action` lists: client events to send, audio to play,
playback to stop, tools to run. Nothing here awaits or reads a clock, so the tests drive it with
scripted events and compare whole outputs.

* Barge-in (reference 6.3): ``input_audio_buffer.speech_started`` stops playback at once
  (:class:`InterruptPlayback`). Under our ``adaptive`` barge-in, when the session asked for it by
  name (``turn_detection.barge_in: "adaptive"``, issue 13), it pauses playback instead
  (:class:`PausePlayback`), and the server's verdict (our ``input_audio_buffer.speech_judged``)
  resumes it from the same sample (:class:`ResumePlayback`: a backchannel, a cough) or stops it as
  above (an interruption). Given what was played (:meth:`TurnTaking.playback_interrupted`), each cut
  assistant item is truncated to the milliseconds of *its* audio played, or deleted when none of it was
  heard, as several SDKs do, because a truncate at 0 ms is refused. When the server is not set to
  interrupt (``interrupt_response: false``, or no turn detection), the response is cancelled first.
* Tools (reference 6.4): a completed response holding ``function_call`` items is a :class:`RunTools`;
  when the round ends (:meth:`TurnTaking.tools_finished`) the answer that uses the outputs is asked for.
* Sessions: when to move to a new one before ``expires_at`` (:meth:`TurnTaking.reconnect_wait_s`), and
  what a lost one leaves behind (:meth:`TurnTaking.abandon`).
"""

from __future__ import annotations

import base64
import itertools
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from openrealtime.client.assistant_config import AssistantOptions
from openrealtime.client.audio_io import WIRE_RATE_HZ
from openrealtime.client.history import ConversationHistory
from openrealtime.client.playback import BYTES_PER_SAMPLE, MS_PER_S, PlaybackCut
from openrealtime.protocol import server_events as se
from openrealtime.protocol.codec import UnknownServerEvent
from openrealtime.protocol.extension_events import SpeechJudged

log = logging.getLogger(__name__)

MAX_TOOL_ROUNDS = 4  # consecutive tool-call responses before the follow-up forbids tools
# Harmless replies: a barge-in racing a response that already ended, or our follow-up
# ``response.create`` racing one the server started itself (reference 6.4 notes).
BENIGN_ERROR_CODES = frozenset({"response_cancel_not_active", "conversation_already_has_active_response"})


# --- what the driver is told to do -----------------------------------------------------------------


@dataclass(frozen=True)
class Send:
    """Send this client event on the current session."""

    event: dict[str, Any]


@dataclass(frozen=True)
class Play:
    """Queue PCM16 audio (24 kHz) of an assistant item after everything queued before."""

    item_id: str
    pcm16: bytes


@dataclass(frozen=True)
class StopPlayback:
    """Stop playback and flush the queue; nothing to report (the session it played for is gone)."""


@dataclass(frozen=True)
class InterruptPlayback:
    """Barge-in: stop playback now, flush the queue, and report with :meth:`TurnTaking.playback_interrupted`.

    Attributes:
        measure: Items whose played milliseconds are wanted even if none of their audio was queued
            (the open response's messages); the cut items are always measured.
    """

    measure: tuple[str, ...] = ()


@dataclass(frozen=True)
class PausePlayback:
    """Speech began over the answer and the server judges it (``adaptive`` barge-in): go silent now,
    keeping the queue, until :class:`ResumePlayback` or :class:`InterruptPlayback`."""


@dataclass(frozen=True)
class ResumePlayback:
    """The speech was not an interruption: play on from the sample where the pause stopped."""


@dataclass(frozen=True)
class FunctionCall:
    """One ``function_call`` item of a completed response (reference 6.4)."""

    name: str
    call_id: str | None
    arguments: str

    @classmethod
    def of(cls, item: Mapping[str, Any]) -> FunctionCall:
        return cls(name=item.get("name") or "", call_id=item.get("call_id"), arguments=item.get("arguments") or "")

    def answer(self, output: str) -> dict[str, Any]:
        """The ``conversation.item.create`` that returns ``output`` to the model."""
        item = {"type": "function_call_output", "call_id": self.call_id, "output": output}
        return {"type": "conversation.item.create", "item": item}


@dataclass(frozen=True)
class RunTools:
    """Run these calls, send each :meth:`FunctionCall.answer`, then call :meth:`TurnTaking.tools_finished`."""

    calls: tuple[FunctionCall, ...]


Action = Send | Play | StopPlayback | InterruptPlayback | PausePlayback | ResumePlayback | RunTools


# --- what the driver reports -----------------------------------------------------------------------


@dataclass(frozen=True)
class Truncation:
    """A barge-in's cut of one assistant item.

    Attributes:
        item_id: The assistant item.
        audio_end_ms: What was played of it (the ``audio_end_ms`` sent).
        received_ms: What had been received of it.
    """

    item_id: str
    audio_end_ms: int
    received_ms: int


def judged_by_server(turn_detection: Mapping[str, Any] | None) -> bool:
    """Whether the server judges speech over the answer and tells its verdict: the session asked
    for the ``adaptive`` barge-in by name (so it gets ``speech_judged``) and lets speech interrupt."""
    td = turn_detection or {}
    return td.get("barge_in") == "adaptive" and td.get("interrupt_response", True) is not False


@dataclass
class _Response:
    id: str
    audio: bool
    messages: list[str] = field(default_factory=list)


def _interrupt(active: _Response | None) -> InterruptPlayback:
    """Stop playback, measuring the open response's messages (those with audio)."""
    return InterruptPlayback(tuple(active.messages) if active is not None and active.audio else ())


class TurnTaking:
    """The decisions of one assistant conversation, across the sessions it lives on.

    Args:
        options: The assistant's settings (tool choice, muting, keeping audio, reconnect margin).
        history: The conversation copy to fold events into (also pure); it is held, cut and pruned here.
        tools: Whether tools are registered (a response's function calls are run only then).
    """

    def __init__(self, options: AssistantOptions, *, history: ConversationHistory, tools: bool) -> None:
        self.options = options
        self.history = history
        self.tools = tools
        self.session: dict[str, Any] = {}
        self.expires_at: float | None = None
        self.truncations: list[Truncation] = []
        self.deletions: list[str] = []
        self.errors: list[dict[str, Any]] = []
        self.responses: list[dict[str, Any]] = []  # response.done payloads, in order
        self.speech_starts = 0
        self._ids = itertools.count(1)
        self._active: _Response | None = None
        self._expecting_response = False
        self._response_request: str | None = None  # event_id of our own response.create
        self._user_speaking = False
        self._paused_for: str | None = None  # the speech over the answer the server is judging
        self._interrupted: set[str] = set()
        self._audio_items: set[str] = set()  # items with audio in the current session
        self._truncating: dict[str, str] = {}  # event_id -> item id
        self._refreshing: dict[str, str] = {}  # event_id of a retrieve -> item id
        self._audio: dict[str, list[bytes]] = {}
        self._tools_running = 0
        self._tool_rounds = 0
        self._fresh_session = False

    # --- state -------------------------------------------------------------------------------------

    @property
    def responding(self) -> bool:
        """Whether a response of the default conversation is in progress."""
        return self._active is not None

    def idle(self) -> bool:
        """Nothing in flight: no user turn, response, tool call or transcript still to come."""
        return (
            self._active is None
            and not self._expecting_response
            and not self._user_speaking
            and self._tools_running == 0
            and not self._truncating
            and not self._refreshing
            and self.history.all_final()
        )

    def mic_muted(self, *, playing: bool, idle_s: float) -> bool:
        """Whether microphone audio is dropped now (``mute_mic`` echo guard), given the player's state."""
        if not self.options.mute_mic:
            return False
        return playing or idle_s * MS_PER_S < self.options.mute_cooldown_ms

    def answer_audio(self, item_ids: list[str] | None = None) -> bytes:
        """PCM16 audio of assistant items (all, in conversation order, by default), cut to what was
        heard where a barge-in truncated them. Needs ``keep_audio``."""
        ids = item_ids
        if ids is None:
            ids = [i.id for i in self.history.items() if i.type == "message" and i.role == "assistant"]
        cuts = {t.item_id: t.audio_end_ms for t in self.truncations}
        parts: list[bytes] = []
        for item_id in ids:
            audio = b"".join(self._audio.get(item_id, ()))
            if item_id in cuts:
                audio = audio[: cuts[item_id] * WIRE_RATE_HZ // MS_PER_S * BYTES_PER_SAMPLE]
            parts.append(audio)
        return b"".join(parts)

    def next_event_id(self) -> str:
        return f"evt_or_{next(self._ids)}"

    # --- server events -----------------------------------------------------------------------------

    def receive(self, event: se.ServerEvent | UnknownServerEvent) -> list[Action]:
        """Fold one server event into the conversation; returns what to do about it."""
        self.history.feed(event)
        match event:
            case se.SessionCreated() | se.SessionUpdated():
                self.on_session(event)
            case se.Error():
                self._on_error(event.error)
            case se.SpeechStarted():
                self._user_speaking = True
                self.speech_starts += 1
                if judged_by_server(self._turn_detection()):
                    self._paused_for = event.item_id
                    return [PausePlayback()]
                return [_interrupt(self._active)]
            case SpeechJudged():
                return self._on_judged(interruption=event.interruption)
            case se.SpeechStopped():
                self._user_speaking = False
            case se.Committed():
                self._user_speaking = False
                td = self._turn_detection()
                if td and td.get("create_response", True) and self._active is None:
                    self._expecting_response = True
            case se.ItemTruncated():
                return self._on_truncated(event.item_id)
            case se.ItemRetrieved():
                self._forget(self._refreshing, event.item.get("id"))
            case se.ResponseCreated():
                return self._on_response_created(event.response)
            case se.OutputItemAdded():
                active, item = self._active, event.item
                if active is not None and event.response_id == active.id and item.get("type") == "message":
                    active.messages.append(item.get("id", ""))
            case se.OutputAudioDelta():
                return self._on_audio(event.item_id, event.delta)
            case se.ResponseDone():
                return self._on_response_done(event.response)
        return []

    def on_session(self, event: se.SessionCreated | se.SessionUpdated) -> None:
        """``session.created`` / ``session.updated``: the session's settings and expiry."""
        self.session = event.session
        expires_at = event.session.get("expires_at")
        if isinstance(expires_at, int | float) and expires_at > 0:
            self.expires_at = float(expires_at)

    def _on_judged(self, *, interruption: bool) -> list[Action]:
        """The server's verdict on the speech that paused playback (or, judged again, that resumed it)."""
        paused, self._paused_for = self._paused_for is not None, None
        return [_interrupt(self._active)] if interruption else [ResumePlayback()] if paused else []

    def _turn_detection(self) -> dict[str, Any] | None:
        td: dict[str, Any] | None = (self.session.get("audio") or {}).get("input", {}).get("turn_detection")
        return td

    def _forget(self, pending: dict[str, str], item_id: str | None) -> None:
        for event_id, waiting in list(pending.items()):
            if waiting == item_id:
                del pending[event_id]

    def _on_error(self, error: se.ErrorDetail) -> None:
        if error.event_id is not None and error.event_id == self._response_request:
            self._response_request, self._expecting_response = None, False
        for pending in (self._truncating, self._refreshing):
            if error.event_id in pending:
                self.history.release(pending.pop(error.event_id))
        if error.code not in BENIGN_ERROR_CODES:
            log.warning("server error: %s", error.message)
            self.errors.append(error.model_dump())

    def _on_truncated(self, item_id: str) -> list[Action]:
        self._forget(self._truncating, item_id)
        # The server cut the item's transcript to what was heard: fetch it for the history.
        event_id = self.next_event_id()
        self._refreshing[event_id] = item_id
        return [Send({"type": "conversation.item.retrieve", "item_id": item_id, "event_id": event_id})]

    def _on_response_created(self, response: dict[str, Any]) -> list[Action]:
        if response.get("conversation_id", "default") is None:
            return []  # out-of-band: not ours to play or interrupt
        modalities = response.get("output_modalities") or ["audio"]
        self._active = _Response(id=response.get("id", ""), audio="audio" in modalities)
        self._expecting_response = False
        self._response_request = None
        # A new answer while the old one is paused: the speech took the turn.
        return self._on_judged(interruption=True) if self._paused_for is not None else []

    def _on_audio(self, item_id: str, delta: str) -> list[Action]:
        if item_id in self._interrupted:
            return []  # audio of an item the user cut off is never played
        pcm16 = base64.b64decode(delta)
        self._audio_items.add(item_id)
        if self.options.keep_audio:
            self._audio.setdefault(item_id, []).append(pcm16)
        return [Play(item_id, pcm16)]

    def _on_response_done(self, response: dict[str, Any]) -> list[Action]:
        if self._active is not None and response.get("id") == self._active.id:
            self._active = None
        self.responses.append(response)
        calls = [o for o in response.get("output") or [] if o.get("type") == "function_call"]
        if response.get("status") != "completed" or not calls or not self.tools:
            if not calls:
                self._tool_rounds = 0
            return []
        self._tools_running += 1  # counted before the tools start, so idle() never flickers
        return [RunTools(tuple(FunctionCall.of(call) for call in calls))]

    # --- barge-in ----------------------------------------------------------------------------------

    def playback_interrupted(self, playback: PlaybackCut) -> list[Action]:
        """After :class:`InterruptPlayback`: cut every item whose audio was not all heard (reference 6.3)."""
        actions: list[Action] = []
        victims = list(playback.cut)
        active = self._active
        if active is not None:
            if active.audio:
                victims += [i for i in active.messages if i not in victims]
            td = self._turn_detection()
            if not (td and td.get("interrupt_response", True)):
                actions.append(Send({"type": "response.cancel"}))  # the server will not cancel it itself
        in_response = active.messages if active is not None else []
        for item_id in victims:
            known_here = item_id in self._audio_items or item_id in in_response
            if item_id in self._interrupted or not known_here:
                continue
            self._interrupted.add(item_id)
            played_ms = playback.played_ms.get(item_id, 0)
            event_id = self.next_event_id()
            if played_ms > 0:
                self.truncations.append(Truncation(item_id, played_ms, playback.received_ms.get(item_id, 0)))
                self._truncating[event_id] = item_id
                self.history.hold(item_id)
                truncate = {"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0}
                actions.append(Send({**truncate, "audio_end_ms": played_ms, "event_id": event_id}))
            else:
                # Nothing of it was heard: a truncate to 0 ms is refused, so remove it instead.
                self.deletions.append(item_id)
                actions.append(Send({"type": "conversation.item.delete", "item_id": item_id, "event_id": event_id}))
        return actions

    # --- responses and tools -----------------------------------------------------------------------

    def create_response(self, params: dict[str, Any] | None = None) -> Send:
        """``response.create`` (manual turns, or after tool outputs); a response is now expected."""
        event_id = self.next_event_id()
        self._response_request, self._expecting_response = event_id, True
        event: dict[str, Any] = {"type": "response.create", "event_id": event_id}
        if params:
            event["response"] = params
        return Send(event)

    def not_sent(self, event_id: str | None) -> None:
        """A client event never left: the session it was meant for closed."""
        if event_id is not None and event_id == self._response_request:
            self._response_request, self._expecting_response = None, False

    def tools_finished(self) -> Send:
        """A tool round ran and its outputs were sent: ask for the answer that uses them."""
        self._tools_running -= 1
        self._tool_rounds += 1
        choice = self._followup_tool_choice()
        return self.create_response({"tool_choice": choice} if choice is not None else None)

    def tools_abandoned(self) -> None:
        """A tool round ended without finishing (the assistant is closing)."""
        self._tools_running -= 1

    def _followup_tool_choice(self) -> str | None:
        if self._tool_rounds >= MAX_TOOL_ROUNDS:
            return "none"
        if self.options.followup_tool_choice is not None:
            return self.options.followup_tool_choice
        forced = self.options.tool_choice not in ("auto", "none")
        return "none" if forced else None

    # --- sessions ----------------------------------------------------------------------------------

    def session_opened(self) -> None:
        """A session was opened, configured and given the conversation."""
        self._fresh_session = True

    def reconnect_wait_s(self, now_s: float) -> float | None:
        """Seconds from ``now_s`` (wall clock) until the conversation should move to a new session.

        ``None``: no move is due in this session (no ``expires_at``, or a session just opened already
        expires within the reconnect margin, where moving again would not help).
        """
        fresh, self._fresh_session = self._fresh_session, False
        if self.expires_at is None:
            return None
        due_s = self.expires_at - self.options.reconnect_margin_s - now_s
        if due_s <= 0 and fresh:
            return None
        return max(0.0, due_s)

    def abandon(self, *, lost: bool) -> list[Action]:
        """Forget what the old session will never finish: the open response, pending transcripts.

        Args:
            lost: The session closed unexpectedly (its answer stops playing); ``False`` for a planned move.
        """
        stop = (lost and self._active is not None) or self._paused_for is not None  # paused: no verdict will come
        actions: list[Action] = [StopPlayback()] if stop else []
        for item in self.history.items():
            if not item.final and not item.held:
                self.history.remove(item.id)
        for item_id in [*self._truncating.values(), *self._refreshing.values()]:
            self.history.release(item_id)
        self._truncating.clear()
        self._refreshing.clear()
        # Replayed items are text in the new session: what still plays of them cannot be truncated.
        self._audio_items.clear()
        self._interrupted.clear()
        self._active = None
        self._expecting_response = self._user_speaking = False
        self._response_request = None
        self._paused_for = None
        return actions
