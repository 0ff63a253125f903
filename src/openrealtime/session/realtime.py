"""Realtime (voice assistant) sessions, ``/v1/realtime?model=...`` (reference sections 4-6, 9), sans-I/O.

A cascade behind OpenAI's speech-to-speech events: the user's turn is transcribed while they speak
(:mod:`~openrealtime.session.input_buffer`); a response streams the LLM's answer token by token, cuts
it into clauses (:mod:`~openrealtime.session.clauses`) and has each spoken as soon as it is complete,
one TTS job at a time, so the first audio leaves long before the answer is finished (the events are
written by :mod:`~openrealtime.session.responses`). The answer starts during the end-of-turn pause,
on the speculative transcript, and is kept only if the turn really ends there. Barge-in cancels
the response in the same step as ``speech_started``; results of cancelled jobs are dropped by id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from openrealtime.audio.codec import AudioFormat, decode_audio
from openrealtime.audio.resample import StreamResampler
from openrealtime.contracts import (
    ChatRequest,
    NoiseSuppressor,
    ToolSpec,
    TranscribeOptions,
    VadModel,
)
from openrealtime.exceptions import ProtocolError
from openrealtime.protocol import client_events as ce
from openrealtime.protocol import server_events as se
from openrealtime.protocol.codec import validation_error
from openrealtime.protocol.config import (
    NamedToolChoice,
    RealtimeSessionConfig,
    SemanticVad,
    ServerVad,
    merge_update,
)
from openrealtime.protocol.items import ItemReference
from openrealtime.session.clauses import ClauseSplitter
from openrealtime.session.commands import (
    AudioChunk,
    CancelJob,
    Generate,
    JobFailed,
    LlmChunk,
    SynthesisDone,
    Synthesize,
    Transcribe,
    TranscriptReady,
)
from openrealtime.session.conversation import Conversation, Entry, fit_context
from openrealtime.session.ids import Ids
from openrealtime.session.input_buffer import ENGINE_RATE_HZ, CommittedAudio, InputAudioBuffer, ms_to_samples
from openrealtime.session.responses import Response, ResponseWriter, spoken_clauses
from openrealtime.session.transcription import SessionInfo, decode_base64_audio

DEFAULT_INSTRUCTIONS = (
    "You are a helpful, friendly voice assistant. Answer in one or two short spoken sentences, "
    "without lists or formatting."
)
# Live captions of a voice session's input come half as often as a transcription session's: they
# are secondary there, and each decode takes a core from the answers being generated and spoken.
VOICE_PARTIAL_STEP_MS = 400
DEFAULT_MAX_TOKENS = 256  # "inf" still needs a cap for a voice answer from a local model
OUTPUT_RESERVE_TOKENS = 256


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


@dataclass
class _Speculation:
    """An answer being generated during the pause, before the turn is known to have ended.

    A spoken answer's first clause is synthesized in the pause too, so that when the turn does end
    there, its first audio is ready (or nearly) and goes out with ``response.created``.
    """

    item_id: str
    job_id: str
    voice: str
    spoken: bool
    chunks: list[LlmChunk] = field(default_factory=list)
    splitter: ClauseSplitter = field(default_factory=ClauseSplitter)
    clause: str | None = None
    tts_job: str | None = None
    audio: list[AudioChunk] = field(default_factory=list)
    tts_done: bool = False

    def jobs(self) -> list[str]:
        return [job for job in (self.job_id, self.tts_job) if job is not None]


class RealtimeSession:
    """One realtime session's protocol state: conversation, input buffer, responses."""

    def __init__(
        self,
        info: RealtimeInfo,
        *,
        vad: VadModel,
        noise: NoiseSuppressor | None = None,
        ids: Ids | None = None,
    ) -> None:
        self.info = info.base
        self.rt = info
        self._ids = ids or Ids()
        self.config = RealtimeSessionConfig(model=info.model, instructions=info.instructions)
        self.conversation = Conversation()
        self.conversation_id = self._ids.new("conv")
        self._events: list[se.ServerEvent] = []
        self._commands: list[object] = []
        self._responses: dict[str, Response] = {}
        self._jobs: dict[str, str] = {}  # job id -> response id
        self._item_jobs: dict[str, str] = {}  # transcription job of a created audio item -> item id
        self.writer = ResponseWriter(
            events=self._events,
            commands=self._commands,
            ids=self._ids,
            jobs=self._jobs,
            conversation_id=self.conversation_id,
            add_item=lambda entry: self._add(entry),
            item_done=self._item_done,
            on_finished=self._on_response_finished,
        )
        # server_vad idle timeout: the input position after which silence counts (set when a response
        # finishes, plus the time its audio takes to play), or None when no countdown runs.
        self._idle_from: int | None = None
        self._speculation: _Speculation | None = None
        self.buffer = InputAudioBuffer(
            vad=vad,
            ids=self._ids,
            config=self.config.audio.input,
            events=self._events,
            commands=self._commands,
            on_committed=self._on_committed,
            on_speech_started=self._on_speech_started,
            on_transcript=self._on_transcript,
            on_speculation=self._on_speculation,
            always_transcribe=True,
            partial_step_ms=VOICE_PARTIAL_STEP_MS,
            previous_item=lambda: self.conversation.last_id,
            noise=noise,
        )
        self._events.append(se.SessionCreated(session=self.effective_session()))

    # --- session -----------------------------------------------------------------------------------

    def effective_session(self) -> dict[str, Any]:
        session = self.config.model_dump(mode="json", exclude={"object", "id", "expires_at", "model"})
        transcription = session["audio"]["input"]["transcription"]
        if transcription is not None:
            for key in ("delay", "keywords"):
                if transcription.get(key) is None:
                    transcription.pop(key, None)
        for key in ("parallel_tool_calls", "reasoning"):
            if session.get(key) is None:
                session.pop(key, None)
        return {
            "type": "realtime",
            "object": "realtime.session",
            "id": self.info.session_id,
            "model": self.rt.model,
            "expires_at": self.info.created_at_s + self.info.lifetime_s,
            **{k: v for k, v in session.items() if k != "type"},
        }

    @property
    def active_response(self) -> Response | None:
        """The response writing to the default conversation, if any (at most one)."""
        for response in self._responses.values():
            if response.in_conversation:
                return response
        return None

    # --- inputs ------------------------------------------------------------------------------------

    def receive(self, event: ce.ClientEvent) -> None:
        try:
            self._dispatch(event)
        except ProtocolError as exc:
            self.error(exc, event.event_id)

    def error(self, exc: ProtocolError, event_id: str | None = None) -> None:
        self._events.append(se.Error.of(exc, event_id))

    def drain(self) -> tuple[list[se.ServerEvent], list[object]]:
        events, commands = list(self._events), list(self._commands)
        self._events.clear()
        self._commands.clear()
        return events, commands

    def on_result(self, result: object) -> None:
        if isinstance(result, TranscriptReady | JobFailed):
            item_id = self._item_jobs.pop(result.job_id, None)
            if item_id is not None:
                self._on_transcript(item_id, result.transcript.text if isinstance(result, TranscriptReady) else "")
                return
            if result.job_id not in self._jobs:
                self.buffer.on_result(result)
                return
        job_id = getattr(result, "job_id", None)
        speculation = self._speculation
        if speculation is not None and job_id in speculation.jobs():
            self._on_speculative_result(speculation, result)
            return
        response = self._responses.get(self._jobs.get(job_id or "", ""))
        if response is None:
            return  # a late result of a cancelled or finished response: dropped by id
        if isinstance(result, LlmChunk):
            self.writer.on_llm(response, result)
        elif isinstance(result, AudioChunk) and job_id == response.tts_job:
            self.writer.on_audio(response, result)
        elif isinstance(result, SynthesisDone) and job_id == response.tts_job:
            self.writer.on_clause_spoken(response)
        elif isinstance(result, JobFailed):
            self.writer.finish(
                response,
                "failed",
                {
                    "type": "failed",
                    "error": {"type": "server_error", "code": result.code, "message": result.message},
                },
            )

    def _dispatch(self, event: ce.ClientEvent) -> None:
        if isinstance(event, CHANGES_THE_ANSWER):
            self._drop_speculation()  # an answer started in the pause was built on what this changes
        match event:
            case ce.InputAudioBufferAppend():
                self.buffer.append(decode_base64_audio(event.audio, event_id=event.event_id), event_id=event.event_id)
                self._check_idle()
            case ce.InputAudioBufferCommit():
                self.buffer.commit(event_id=event.event_id)
            case ce.InputAudioBufferClear():
                self.buffer.clear()
            case ce.SessionUpdate():
                self._update(event)
            case ce.ConversationItemCreate():
                self._create_item(event)
            case ce.ConversationItemRetrieve():
                entry = self._entry(event.item_id, "item_retrieve_invalid_item_id", "retrieving", event.event_id)
                self._events.append(se.ItemRetrieved(item=entry.item))
            case ce.ConversationItemDelete():
                self.conversation.delete(event.item_id, event_id=event.event_id)
                self._events.append(se.ItemDeleted(item_id=event.item_id))
            case ce.ConversationItemTruncate():
                for response in list(self._responses.values()):
                    if response.message is not None and response.message.id == event.item_id:
                        # Truncating what is still being generated: stop generating it first.
                        self.writer.cancel(response, "client_cancelled")
                self.conversation.truncate(
                    event.item_id, event.content_index, event.audio_end_ms, event_id=event.event_id
                )
                self._events.append(
                    se.ItemTruncated(
                        item_id=event.item_id,
                        content_index=event.content_index,
                        audio_end_ms=event.audio_end_ms,
                    )
                )
            case ce.ResponseCreate():
                self._create_response(event)
            case ce.ResponseCancel():
                self._cancel_request(event)
            case _:
                raise ProtocolError(
                    f"Invalid value: '{getattr(event, 'type', '?')}'. Not supported on a WebSocket realtime session.",
                    code="invalid_value",
                    param="type",
                    event_id=event.event_id,
                )

    def _entry(self, item_id: str, code: str, verb: str, event_id: str | None) -> Entry:
        entry = self.conversation.get(item_id)
        if entry is None:
            raise ProtocolError(
                f"Error {verb} item: the item with id '{item_id}' does not exist.",
                code=code,
                param="item_id",
                event_id=event_id,
            )
        return entry

    def _update(self, event: ce.SessionUpdate) -> None:
        if not isinstance(event.session, RealtimeSessionConfig):
            raise ProtocolError(
                "Invalid value: 'transcription'. This is a realtime session: session.type must be 'realtime'.",
                code="invalid_value",
                param="session.type",
                event_id=event.event_id,
            )
        update = event.session.model_dump(
            mode="json", exclude_unset=True, exclude={"object", "id", "expires_at", "model", "type"}
        )
        merged = merge_update(self.config.model_dump(mode="json"), update)
        try:
            config = RealtimeSessionConfig.model_validate(merged)
        except ValidationError as exc:
            raise validation_error(exc, event.event_id) from None
        transcription = config.audio.input.transcription
        model = transcription.model if transcription is not None else None
        if model is not None and not self.info.accepts_model(model):
            raise ProtocolError(
                f"Invalid value: '{model}'. This server has no transcription model of that name.",
                code="invalid_value",
                param="session.audio.input.transcription.model",
                event_id=event.event_id,
            )
        if self.writer.produced_audio and config.audio.output.voice != self.config.audio.output.voice:
            raise ProtocolError(
                "Cannot update a conversation's voice if assistant audio is present.",
                code="cannot_update_voice",
                param="session.audio.output.voice",
                event_id=event.event_id,
            )
        self.config = config
        self.buffer.configure(config.audio.input)
        self._events.append(se.SessionUpdated(session=self.effective_session()))

    # --- conversation items ------------------------------------------------------------------------

    def _add(self, entry: Entry, *, after: str | None = None, event_id: str | None = None) -> None:
        previous = self.conversation.add(entry, after=after, event_id=event_id)
        self._events.append(se.ItemAdded(previous_item_id=previous, item=entry.item))

    def _item_done(self, entry: Entry) -> None:
        self._events.append(se.ItemDone(previous_item_id=self.conversation.previous_id(entry.id), item=entry.item))

    def _create_item(self, event: ce.ConversationItemCreate) -> None:
        item = event.item.model_dump(mode="json", exclude_none=True)
        item["id"] = item.get("id") or self._ids.new("item")
        item["object"] = "realtime.item"
        item["status"] = "completed"
        audio_part: dict[str, Any] | None = None
        if item["type"] == "message":
            for part in item["content"]:
                if item["role"] == "assistant" and part["type"] not in ("output_text", "output_audio"):
                    raise ProtocolError(
                        "Assistant messages take 'output_text' content.",
                        code="invalid_value",
                        param="item.content",
                        event_id=event.event_id,
                    )
                if part["type"] == "output_audio":
                    raise ProtocolError(
                        "Assistant audio messages cannot be created; use 'output_text'.",
                        code="invalid_value",
                        param="item.content",
                        event_id=event.event_id,
                    )
                if part["type"] == "input_audio":
                    part.setdefault("transcript", None)
                    if part.get("audio") and part.get("transcript") is None:
                        audio_part = part
        entry = Entry(item=item)
        if audio_part is not None:
            data = decode_base64_audio(audio_part["audio"], event_id=event.event_id)
            self._transcribe_item(entry, data)
        self._add(entry, after=event.previous_item_id, event_id=event.event_id)
        self._item_done(entry)

    def _transcribe_item(self, entry: Entry, data: bytes) -> None:
        fmt = AudioFormat(self.config.audio.input.format.type)
        audio = StreamResampler(fmt.rate_hz, ENGINE_RATE_HZ).process(decode_audio(data, fmt), last=True)
        job_id = self._ids.new("job")
        self._item_jobs[job_id] = entry.id
        entry.transcript_pending = True
        t = self.config.audio.input.transcription
        self._commands.append(
            Transcribe(
                job_id=job_id,
                item_id=entry.id,
                audio=audio,
                final=True,
                options=TranscribeOptions(language=t.language if t else None),
            )
        )

    def _on_committed(self, committed: CommittedAudio) -> None:
        self.buffer.last_commit_audio = None
        item = {
            "id": committed.item_id,
            "object": "realtime.item",
            "type": "message",
            "status": "completed",
            "role": "user",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        entry = Entry(item=item, transcript_pending=committed.item_id not in self.buffer.completed_transcripts)
        self._add(entry)
        self._item_done(entry)
        td = self.config.audio.input.turn_detection
        speculation = self._speculation
        if td is not None and td.create_response and self.active_response is None:
            response = self._params(None)
            if speculation is not None and speculation.item_id == committed.item_id:
                self._speculation = None
                self._promote(response, speculation)
            else:
                self._drop_speculation()
                self._start_response(response)
        else:
            self._drop_speculation()

    def _drop_speculation(self) -> None:
        """Cancel the answer started in the pause (the speaker went on, or what it was built on changed)."""
        if self._speculation is not None:
            self._commands.extend(CancelJob(job) for job in self._speculation.jobs())
            self._speculation = None

    def _on_speculation(self, item_id: str, text: str | None) -> None:
        """The pause may end the turn: start the answer now, so its first audio is ready sooner."""
        self._drop_speculation()
        td = self.config.audio.input.turn_detection
        if text is None or not text.strip() or td is None or not td.create_response:
            return
        if self.active_response is not None or any(e.transcript_pending for e in self.conversation):
            return
        response = self._params(None)
        pending = Entry(item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]})
        request = self._chat_request(response, [*self.conversation, pending])
        job_id = self._ids.new("job")
        self._speculation = _Speculation(item_id=item_id, job_id=job_id, voice=response.voice, spoken=response.audio)
        self._commands.append(Generate(job_id=job_id, request=request))

    def _on_speculative_result(self, speculation: _Speculation, result: object) -> None:
        """Keep what the answer started in the pause produces; synthesize its first clause early."""
        if isinstance(result, JobFailed):
            if result.job_id == speculation.job_id:
                self._drop_speculation()  # the real response will generate again after the commit
            else:
                speculation.tts_job, speculation.clause, speculation.audio = None, None, []
            return
        if isinstance(result, AudioChunk):
            speculation.audio.append(result)
        elif isinstance(result, SynthesisDone):
            speculation.tts_done = True
        elif isinstance(result, LlmChunk):
            speculation.chunks.append(result)
            if not speculation.spoken or speculation.clause is not None:
                return
            clauses = spoken_clauses(speculation.splitter, result.chunk)
            if not clauses:
                return
            first = clauses[0]
            if not first:
                speculation.spoken = False  # nothing to say up front: the response's own TTS starts later
                return
            speculation.clause, speculation.tts_job = first, self._ids.new("job")
            self._commands.append(
                Synthesize(job_id=speculation.tts_job, text=first, voice=speculation.voice, language="en")
            )

    def _promote(self, response: Response, speculation: _Speculation) -> None:
        """The turn ended as speculated: the early generation becomes the response's, as if just begun."""
        self._responses[response.id] = response
        self._events.append(se.ResponseCreated(response=self.writer.response_dict(response)))
        response.llm_job = speculation.job_id
        self._jobs[speculation.job_id] = response.id
        tts_job = speculation.tts_job
        handover = tts_job is not None and response.audio and response.voice == speculation.voice
        if tts_job is not None and handover:
            # The first clause's synthesis becomes the response's (its clause is taken below).
            response.tts_job, response.tts_clause, response.tts_started = tts_job, speculation.clause, False
            self._jobs[tts_job] = response.id
        elif tts_job is not None:
            self._commands.append(CancelJob(tts_job))
        for chunk in speculation.chunks:
            if response.status != "in_progress":
                break
            self.writer.on_llm(response, chunk)
        if not handover or response.status != "in_progress":
            return
        if response.clauses and response.clauses[0] == speculation.clause:
            response.clauses.popleft()
        for audio in speculation.audio:
            self.writer.on_audio(response, audio)
        if speculation.tts_done:
            self.writer.on_clause_spoken(response)

    def _on_transcript(self, item_id: str, text: str) -> None:
        entry = self.conversation.get(item_id)
        if entry is not None:
            entry.transcript_pending = False
            for part in entry.item.get("content", []):
                if part.get("type") == "input_audio":
                    part["transcript"] = text
        for response in list(self._responses.values()):
            if response.llm_job is None and response.status == "in_progress":
                self._maybe_generate(response)

    def _on_response_finished(self, response: Response) -> None:
        self._responses.pop(response.id, None)
        if response.in_conversation and response.status == "completed":
            # The listener hears the answer for as long as its audio lasts; silence counts after that.
            self._idle_from = self.buffer.buffer.end + ms_to_samples(response.audio_ms if response.audio else 0)

    def _check_idle(self) -> None:
        td = self.config.audio.input.turn_detection
        if not isinstance(td, ServerVad) or td.idle_timeout_ms is None or self._idle_from is None:
            return
        if self.buffer.turn is not None or self.active_response is not None:
            return
        if self.buffer.buffer.end - self._idle_from >= ms_to_samples(td.idle_timeout_ms):
            start, self._idle_from = self._idle_from, None
            self.buffer.commit_silence(start)

    def _on_speech_started(self, item_id: str) -> None:
        self._idle_from = None
        td = self.config.audio.input.turn_detection
        response = self.active_response
        if response is not None and isinstance(td, ServerVad | SemanticVad) and td.interrupt_response:
            # Barge-in: one joint step, right after speech_started (reference 6.3).
            self.writer.cancel(response, "turn_detected")

    # --- responses ---------------------------------------------------------------------------------

    def _params(self, params: ce.ResponseCreateParams | None, event_id: str | None = None) -> Response:
        c = self.config
        p = params or ce.ResponseCreateParams()
        in_conversation = p.conversation in (None, "auto")
        tool_choice: Any = p.tool_choice if p.tool_choice is not None else c.tool_choice
        choice = tool_choice.name if isinstance(tool_choice, NamedToolChoice) else str(tool_choice)
        max_tokens = p.max_output_tokens if p.max_output_tokens is not None else c.max_output_tokens
        voice = c.audio.output.voice
        if p.audio and p.audio.output and p.audio.output.voice:
            voice = p.audio.output.voice
        fmt = AudioFormat(c.audio.output.format.type)
        if p.audio and p.audio.output and p.audio.output.format:
            fmt = AudioFormat(p.audio.output.format.get("type", fmt.value))
        custom: list[Entry] | None = None
        if p.input is not None:
            custom = []
            for index, element in enumerate(p.input):
                if isinstance(element, ItemReference):
                    found = self.conversation.get(element.id)
                    if found is None:
                        raise ProtocolError(
                            f"Item reference '{element.id}' does not exist.",
                            code="invalid_value",
                            param=f"response.input[{index}].id",
                            event_id=event_id,
                        )
                    custom.append(found)
                else:
                    custom.append(Entry(item=element.model_dump(mode="json", exclude_none=True)))
        return Response(
            id=self._ids.new("resp"),
            in_conversation=in_conversation,
            modalities=list(p.output_modalities or c.output_modalities),
            voice=voice if isinstance(voice, str) else str(voice.get("id", "alloy")),
            output_format=fmt,
            instructions=p.instructions if p.instructions is not None else c.instructions,
            tools=list(p.tools if p.tools is not None else c.tools),
            tool_choice=choice,
            max_tokens=DEFAULT_MAX_TOKENS if max_tokens == "inf" else int(max_tokens),
            metadata=p.metadata,
            custom_input=custom,
        )

    def _create_response(self, event: ce.ResponseCreate) -> None:
        response = self._params(event.response, event.event_id)
        if response.in_conversation and (active := self.active_response) is not None:
            raise ProtocolError(
                f"Conversation already has an active response in progress: {active.id}. Wait "
                "until the response is finished before creating a new one.",
                code="conversation_already_has_active_response",
                event_id=event.event_id,
            )
        self._start_response(response)

    def _cancel_request(self, event: ce.ResponseCancel) -> None:
        response = self._responses.get(event.response_id) if event.response_id else self.active_response
        if response is None:
            raise ProtocolError(
                "Cancellation failed: no active response found",
                code="response_cancel_not_active",
                event_id=event.event_id,
            )
        self.writer.cancel(response, "client_cancelled")

    def _start_response(self, response: Response) -> None:
        self._responses[response.id] = response
        self._events.append(se.ResponseCreated(response=self.writer.response_dict(response)))
        self._maybe_generate(response)

    def _maybe_generate(self, response: Response) -> None:
        entries = response.custom_input if response.custom_input is not None else list(self.conversation)
        if any(e.transcript_pending for e in entries):
            return  # the user's words are still being transcribed: generate when they arrive
        job_id = self._ids.new("job")
        response.llm_job = job_id
        self._jobs[job_id] = response.id
        self._commands.append(Generate(job_id=job_id, request=self._chat_request(response, entries)))

    def _chat_request(self, response: Response, entries: list[Entry]) -> ChatRequest:
        """What the LLM gets: the instructions, the items that fit the context, the tools."""
        system = [{"role": "system", "content": response.instructions}] if response.instructions else []
        budget = self.rt.context_tokens - min(response.max_tokens, OUTPUT_RESERVE_TOKENS)
        if self.config.truncation != "disabled":
            entries = fit_context(system, entries, budget)
        tools = [ToolSpec(t.name, t.description or "", t.parameters) for t in response.tools]
        return ChatRequest(
            messages=system + self.conversation.chat_messages(entries),
            tools=tools if response.tool_choice != "none" else (),
            tool_choice=response.tool_choice,
            max_tokens=response.max_tokens,
            cache_key=self.info.session_id,
        )
