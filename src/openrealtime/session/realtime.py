"""Realtime (voice assistant) sessions, ``/v1/realtime?model=...`` (reference sections 4-6, 9), sans-I/O.

A cascade behind OpenAI's speech-to-speech events: the user's turn is transcribed while they speak
(:mod:`~openrealtime.session.input_buffer`); a response streams the LLM's answer token by token, cuts
it into clauses and has each spoken as soon as it is complete, one TTS job at a time, so the first
audio leaves long before the answer is finished (the events are written by
:mod:`~openrealtime.session.responses`). The answer starts during the end-of-turn pause, on the
speculative transcript, as a ``SPECULATIVE`` response that goes on the wire only if the turn really
ends there. Barge-in cancels the response in the same step as ``speech_started``; results of
cancelled jobs are dropped by id. The ``adaptive`` barge-in (:mod:`~openrealtime.session.bargein`)
cancels only speech judged an interruption, holding a call's playback meanwhile.

On a WebRTC call (``server_playback``) the server plays the answers itself: speech leaves as
``PlayAudio`` commands, and :mod:`~openrealtime.session.playback` keeps the playback buffer's events,
its clears (barge-in, even after ``response.done`` while audio still plays; the client's
``output_audio_buffer.clear``) and the truncation of what was not heard.
"""

from __future__ import annotations

import json
import weakref
from dataclasses import dataclass
from typing import Any, Unpack

from openrealtime.audio.codec import AudioFormat
from openrealtime.exceptions import ProtocolError
from openrealtime.protocol import client_events as ce
from openrealtime.protocol import server_events as se
from openrealtime.protocol.config import RealtimeSessionConfig, ServerVad
from openrealtime.session.bargein import BargeIn, BargeInMode, judge
from openrealtime.session.commands import (
    AudioIn,
    EngineResult,
    JobFailed,
    PlayAudio,
    PlaybackResult,
    PlaybackStopped,
    SessionInput,
    TranscriptReady,
    TurnEndPredicted,
)
from openrealtime.session.conversation import Conversation, Entry
from openrealtime.session.early_answers import EarlyAnswers
from openrealtime.session.echo import EchoCanceller
from openrealtime.session.input_buffer import BufferOptions, InputAudioBuffer
from openrealtime.session.interruptions import Interruptions
from openrealtime.session.items import RecentAudio, created_item, item_transcription, user_audio_item
from openrealtime.session.logprobs import wants_logprobs
from openrealtime.session.mcp import McpServers
from openrealtime.session.mcp_commands import McpToolsListed
from openrealtime.session.playback import ServerPlayback
from openrealtime.session.prompting import new_response
from openrealtime.session.responding import Responding
from openrealtime.session.response import Response
from openrealtime.session.responses import ResponseWriter
from openrealtime.session.shell import SessionEngines, SessionShell, session_body, session_update
from openrealtime.session.signals import (
    Output,
    Signal,
    SpeechStarted,
    TranscriptFinal,
    TurnCommitted,
    TurnHeard,
    TurnMayEnd,
)
from openrealtime.session.transcription import SessionInfo
from openrealtime.session.turns import ms_to_samples

DEFAULT_INSTRUCTIONS = (
    "You are a helpful, friendly voice assistant. Answer in one or two short spoken sentences, "
    "without lists or formatting."
)
# Live captions of a voice session's input come half as often as a transcription session's: they
# are secondary there, and each decode takes a core from the answers being generated and spoken.
VOICE_PARTIAL_STEP_MS = 400
_FIXED_FIELDS = {"object", "id", "expires_at", "model", "type"}
# What OpenAI's live service leaves out of an echoed realtime session when it is unset.
_DROPPED_WHEN_NULL = ("parallel_tool_calls", "reasoning")

# What a client may make a session hold (issue 10 defect 6). Items: five times the 2,000 our own client
# sends when it rebuilds a history, and the size at which trimming the context was measured (15 ms).
MAX_CONVERSATION_ITEMS = 10_000
# Characters of the items a client created (JSON, audio as its base64): the largest frame the server
# takes (32 MiB) fits alone. Items the session makes (user turns, answers) are not counted here: they
# grow at the pace of speech and of the model, not of what a client sends.
MAX_CREATED_ITEMS_CHARS = 32 * 1024 * 1024

# Client events after which an answer speculated in the pause no longer fits the conversation.
CHANGES_THE_ANSWER = (
    ce.SessionUpdate,
    ce.ConversationItemCreate,
    ce.ConversationItemDelete,
    ce.ConversationItemTruncate,
)


@dataclass(frozen=True)
class RealtimeInfo:
    """What the runtime knows at connect, besides the transcription-session facts."""

    base: SessionInfo
    model: str
    context_tokens: int = 8192
    instructions: str = DEFAULT_INSTRUCTIONS
    # The server plays the output audio (a WebRTC call): PlayAudio commands instead of audio deltas.
    server_playback: bool = False
    # The LLM sees images (ChatModel.sees_images): input_image parts reach it, else they are refused.
    sees_images: bool = False
    # How speech over the assistant interrupts it (--barge-in); a session's turn_detection.barge_in wins.
    barge_in: BargeInMode = "immediate"
    # Remove the server's own voice from the input with this canceller (session/echo.py): "linear"
    # (ours) or "aec3" (WebRTC's, needs pywebrtc-audio); None: not at all.
    echo_canceller: str | None = None


class RealtimeSession(SessionShell, Interruptions, EarlyAnswers, Responding):
    """One realtime session's protocol state: conversation, input buffer, responses."""

    def __init__(self, info: RealtimeInfo, **engines: Unpack[SessionEngines]) -> None:
        super().__init__(**engines)
        self.info = info.base
        self.rt = info
        self.config = RealtimeSessionConfig(model=info.model, instructions=info.instructions)
        self.conversation = Conversation()
        self._recent_audio = RecentAudio()  # spoken turns' audio, for conversation.item.retrieve
        self.conversation_id = self._ids.new("conv")
        self.writer = ResponseWriter(
            self._ids, self.conversation, self.conversation_id, server_playback=info.server_playback
        )
        self.playback = ServerPlayback()
        self.mcp = McpServers(self._ids, self.conversation)
        self.writer.continuation = weakref.WeakMethod(self._continue)
        self._responses: dict[str, Response] = {}  # on the wire, not yet done
        self._speculative: Response | None = None  # the answer begun in the pause, if any
        self._speculated_words = ""  # the words it answers
        self._item_jobs: dict[str, str] = {}  # transcription job of a created audio item -> item id
        self._created_chars: dict[str, int] = {}  # the size of each item the client created, by id
        self._created_chars_total = 0
        # server_vad idle timeout: the input position after which silence counts (set when a response
        # finishes, plus the time its audio takes to play), or None when no countdown runs.
        self._idle_from: int | None = None
        self._barge = BargeIn()  # adaptive barge-in: the speech over the assistant being judged
        # WebSocket: the input position by which the client has played the last answer (an upper bound).
        self._speaking_until = 0
        options = BufferOptions(always_transcribe=True, partial_step_ms=VOICE_PARTIAL_STEP_MS)
        self.buffer = InputAudioBuffer(
            self.config.audio.input, vad=self._vad, ids=self._ids, noise=self._noise, options=options
        )
        self._echo = EchoCanceller(self.buffer.buffer.end, kind=info.echo_canceller) if info.echo_canceller else None
        self._events.append(se.SessionCreated(session=self.effective_session()))

    def effective_session(self) -> dict[str, Any]:
        session = session_body(self.config, exclude={"object", "id", "expires_at", "model"})
        for key in _DROPPED_WHEN_NULL:
            if session.get(key) is None:
                session.pop(key, None)
        return {
            "type": "realtime",
            "object": "realtime.session",
            "id": self.info.session_id,
            "model": self.rt.model,
            "expires_at": self.info.created_at_s + self.info.lifetime_s,
            **session,
        }

    @property
    def active_response(self) -> Response | None:
        """The response writing to the default conversation, if any (at most one)."""
        return next((r for r in self._responses.values() if r.in_conversation), None)

    # --- inputs ------------------------------------------------------------------------------------

    def on_result(self, result: EngineResult) -> None:
        if isinstance(result, McpToolsListed):
            self._take(self.mcp.on_listed(result))
            for response in list(self._responses.values()):
                self._maybe_generate(response)  # those that waited for the list
            return
        if isinstance(result, TurnEndPredicted):
            self._take(self.buffer.on_result(result))
            return
        if isinstance(result, TranscriptReady | JobFailed):
            item_id = self._item_jobs.pop(result.job_id, None)
            if item_id is not None:
                text = result.transcript.text if isinstance(result, TranscriptReady) else ""
                self._on_signal(TranscriptFinal(item_id, text))
                return
            if self.buffer.owns(result.job_id):
                self._take(self.buffer.on_result(result))
                self._judge_barge_in()
                return
        self._respond(self.writer.on_result(result))

    def on_playback(self, result: PlaybackResult) -> None:
        """What the call's media clock saw (:mod:`~openrealtime.session.playback`)."""
        self._take(self.playback.on_result(result, self.conversation))
        if isinstance(result, PlaybackStopped) and self.active_response is None:
            self._idle_from = self.buffer.buffer.end  # silence counts from the real end of playback

    @property
    def input_format(self) -> AudioFormat:
        return self.buffer.input_format

    def _dispatch(self, event: SessionInput) -> None:
        if isinstance(event.event if isinstance(event, AudioIn) else event, CHANGES_THE_ANSWER):
            self._drop_speculation()  # an answer started in the pause was built on what this changes
        if self._echo is not None:
            event = self._without_echo(event)
        buffered = self.buffer.receive(event)
        if buffered is not None:
            self._take(buffered)
            if isinstance(event, AudioIn):
                self._check_idle()  # the input moved on: has the silence after an answer lasted?
            self._judge_barge_in()
            return
        match event:
            case ce.SessionUpdate():
                self._update(event)
            case ce.ConversationItemCreate():
                self._create_item(event, None)
            case AudioIn(event=ce.ConversationItemCreate() as create):
                self._create_item(create, event)
            case ce.ConversationItemRetrieve():
                entry = self.conversation.find(
                    event.item_id, "retrieving", "item_retrieve_invalid_item_id", event.event_id
                )
                audio = self._recent_audio.retrieved(entry.id, self.buffer.input_format)
                self._events.append(se.ItemRetrieved(item=entry.item, audio=audio))
            case ce.ConversationItemDelete():
                self.conversation.delete(event.item_id, event_id=event.event_id)
                self._recent_audio.forget(event.item_id)
                self._created_chars_total -= self._created_chars.pop(event.item_id, 0)
                self._events.append(se.ItemDeleted(item_id=event.item_id))
            case ce.ConversationItemTruncate():
                self._truncate(event)
            case ce.ResponseCreate():
                self._create_response(event)
            case ce.ResponseCancel():
                self._cancel_request(event)
            case ce.OutputAudioBufferClear() if self.rt.server_playback:
                # Cut the audio off (reference 1.3). A response still speaking stops too, or its next
                # clause would play after the clear; OpenAI asks for a response.cancel first anyway.
                if (response := self.active_response) is not None:
                    self._respond(self.writer.cancel(response, "client_cancelled"))
                self._take(self.playback.clear())
                self._silenced()
            case _:
                raise ProtocolError(
                    f"Invalid value: '{getattr(event, 'type', '?')}'. Not supported on a WebSocket realtime session.",
                    code="invalid_value",
                    param="type",
                    event_id=event.event_id,
                )

    def _update(self, event: ce.SessionUpdate) -> None:
        config = session_update(self.config, event, accepts_model=self.info.accepts_model, exclude=_FIXED_FIELDS)
        if self.writer.produced_audio and config.audio.output.voice != self.config.audio.output.voice:
            raise ProtocolError(
                "Cannot update a conversation's voice if assistant audio is present.",
                code="cannot_update_voice",
                param="session.audio.output.voice",
                event_id=event.event_id,
            )
        self.config = config
        self.buffer.configure(config.audio.input, logprobs=wants_logprobs(config.include))
        self._events.append(se.SessionUpdated(session=self.effective_session()))
        self._take(self.mcp.configure(config.tools))

    # --- conversation items ------------------------------------------------------------------------

    def _create_item(self, event: ce.ConversationItemCreate, audio: AudioIn | None) -> None:
        entry, untranscribed = created_item(event, self._ids, sees_images=self.rt.sees_images)
        chars = len(json.dumps(entry.item))
        if (
            len(self.conversation) >= MAX_CONVERSATION_ITEMS
            or self._created_chars_total + chars > MAX_CREATED_ITEMS_CHARS
        ):
            raise ProtocolError(
                f"The conversation is full: it holds at most {MAX_CONVERSATION_ITEMS} items, and items created "
                f"by the client of at most {MAX_CREATED_ITEMS_CHARS} characters in all (this one has {chars}). "
                "Delete items to add more.",
                code="conversation_full",
                param="item",
                event_id=event.event_id,
            )
        self._events.append(self.conversation.added(entry, after=event.previous_item_id, event_id=event.event_id))
        self._created_chars[entry.id] = chars
        self._created_chars_total += chars
        self._events.append(self.conversation.done(entry))
        if untranscribed and audio is not None:
            t = self.config.audio.input.transcription
            job_id = self._ids.new("job")
            self._commands.append(item_transcription(entry, audio, job_id=job_id, language=t.language if t else None))
            self._item_jobs[job_id] = entry.id
            entry.transcript_pending = True

    def _truncate(self, event: ce.ConversationItemTruncate) -> None:
        for response in list(self._responses.values()):
            if response.message is not None and response.message.id == event.item_id:
                # Truncating what is still being generated: stop generating it first.
                self._respond(self.writer.cancel(response, "client_cancelled"))
        self.conversation.truncate(event.item_id, event.content_index, event.audio_end_ms, event_id=event.event_id)
        self._silenced(event.item_id)  # the client stopped playing it
        self._events.append(
            se.ItemTruncated(item_id=event.item_id, content_index=event.content_index, audio_end_ms=event.audio_end_ms)
        )

    # --- signals from the input buffer -------------------------------------------------------------

    def _on_signal(self, signal: Signal) -> None:
        match signal:
            case SpeechStarted():
                self._idle_from = None
                self._barge_in(signal.item_id)
            case TurnCommitted():
                self._on_committed(signal)
            case TranscriptFinal():
                entry = self.conversation.get(signal.item_id)
                if entry is not None:
                    entry.transcript_pending = False
                    for part in entry.item.get("content", []):
                        if part.get("type") == "input_audio":
                            part["transcript"] = signal.text or ""
                for response in list(self._responses.values()):
                    if response.llm_job is None and not response.state.finished:
                        self._maybe_generate(response)
                pending = self._barge.pending
                if pending is not None and pending.committed and pending.item_id == signal.item_id:
                    self._settle_barge_in(judge(pending.speech_ms, signal.text or "", final=True))
            case TurnMayEnd():
                self._speculate(signal)
            case TurnHeard():
                self._warm(signal)
            case _:  # TurnGoesOn
                self._drop_speculation()
                if self._barge.dismissed == signal.item_id:
                    self._barge_in(signal.item_id)  # judged a backchannel, but the speaker goes on

    def _on_committed(self, committed: TurnCommitted) -> None:
        entry = Entry(item=user_audio_item(committed.item_id), transcript_pending=True)
        self._events.append(se.Committed(previous_item_id=self.conversation.last_id, item_id=committed.item_id))
        self._events.append(self.conversation.added(entry))
        self._recent_audio.keep(entry.id, committed.audio)
        self._events.append(self.conversation.done(entry))
        td = self.config.audio.input.turn_detection
        speculative, self._speculative = self._speculative, None
        if self._barge.judging(committed.item_id) and self._barge.pending is not None:
            self._barge.pending.committed = True  # its final transcript will decide
        if (
            td is None
            or not td.create_response
            or self.active_response is not None
            or self._barge.judging(committed.item_id)
            or self._barge.dismissed == committed.item_id  # a backchannel gets no answer
        ):
            if speculative is not None:
                self._take(self.writer.drop(speculative))
            return
        if speculative is not None and speculative.answers_turn == committed.item_id:
            outputs = self.writer.promote(speculative)
            self._responses[speculative.id] = speculative
            self._respond(outputs)
            return
        if speculative is not None:
            self._take(self.writer.drop(speculative))
        self._start_response(new_response(self.config, None, self.conversation, ids=self._ids))

    def _check_idle(self) -> None:
        td = self.config.audio.input.turn_detection
        if not isinstance(td, ServerVad) or td.idle_timeout_ms is None or self._idle_from is None:
            return
        if self.buffer.turn is not None or self.active_response is not None:
            return
        if self.buffer.buffer.end - self._idle_from >= ms_to_samples(td.idle_timeout_ms):
            start, self._idle_from = self._idle_from, None
            self._take(self.buffer.commit_silence(start))

    # --- responses ---------------------------------------------------------------------------------

    def _respond(self, outputs: list[Output]) -> None:
        """Take a writer's outputs; a response they finished leaves (a completed one starts the idle
        countdown), and so does an early answer they dropped."""
        for output in outputs:
            if isinstance(output, PlayAudio):
                self.playback.queued(output.response_id)
        self._take(self._heard(outputs))
        if self._speculative is not None and self._speculative.state.finished:
            self._speculative = None  # its LLM failed: the commit makes the response afresh
        for response in [r for r in self._responses.values() if r.state.finished]:
            del self._responses[response.id]
            if response.in_conversation and response.state.wire_status == "completed":
                if self.rt.server_playback and response.audio_samples:
                    continue  # the idle countdown starts when its playback stops (on_playback)
                # The listener hears the answer for as long as its audio lasts; silence counts after.
                played = response.audio_ms if response.audio else 0
                self._idle_from = self.buffer.buffer.end + ms_to_samples(played)
                self._speaking_until = self._idle_from
