"""What a session and its runtime say to each other: commands out, engine results in.

Both are frozen dataclasses in closed unions (:data:`Command`, :data:`EngineResult`). Every command
that starts engine work carries a ``job_id``, and every result carries the id of the job it belongs
to, so a session drops the late results of a job it cancelled by id alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from openrealtime.audio.types import Samples
from openrealtime.contracts import ChatChunk, ChatRequest, TranscribeOptions, Transcript
from openrealtime.protocol import client_events as ce
from openrealtime.session.mcp_commands import CallMcpTool, ListMcpTools, McpToolCalled, McpToolsListed


@dataclass(frozen=True)
class Transcribe:
    """Decode ``audio`` (16 kHz) for ``item_id``; ``final`` decodes outrank live-caption partials.

    ``first_caption`` marks a partial of a turn that has shown no words yet. The runtime serves it
    before other partials: the first delta is what tells a speaker they are heard, while a later
    partial only extends captions already on screen, so under load it is the one that should wait.
    """

    job_id: str
    item_id: str
    audio: Samples
    options: TranscribeOptions
    final: bool
    first_caption: bool = False


@dataclass(frozen=True)
class CancelJob:
    """Stop working on ``job_id``; any result that still arrives for it is dropped by the session."""

    job_id: str


@dataclass(frozen=True)
class CloseConnection:
    """Close the WebSocket after the events queued before this command are sent."""

    code: int
    reason: str


@dataclass(frozen=True)
class TranscriptReady:
    """Engine result: the decode of job ``job_id``."""

    job_id: str
    transcript: Transcript


@dataclass(frozen=True)
class JobFailed:
    """Engine result: job ``job_id`` raised an :class:`~openrealtime.exceptions.EngineError`."""

    job_id: str
    code: str
    message: str


@dataclass(frozen=True)
class Generate:
    """Stream a chat completion for ``request`` (the LLM stage of a response)."""

    job_id: str
    request: ChatRequest


@dataclass(frozen=True)
class WarmAnswer:
    """Evaluate the start of an answer not asked for yet into the LLM's cache: ``request`` is the
    conversation with the words heard so far of a turn still spoken, so that when the turn ends the
    answer evaluates only what came after. No result; an engine that cannot warm ignores it."""

    job_id: str
    request: ChatRequest


@dataclass(frozen=True)
class WarmTurnWords:
    """Evaluate ``words``, heard so far in a turn still spoken, into the text signal's LLM cache
    (:class:`ScoreTurnWords` at the pause then evaluates only the words after them). No result."""

    job_id: str
    words: str


@dataclass(frozen=True)
class LlmChunk:
    """Engine result: one streamed piece of the completion of job ``job_id``."""

    job_id: str
    chunk: ChatChunk


# --- end of turn (semantic_vad, issue 13) ----------------------------------------------------------


@dataclass(frozen=True)
class PredictTurnEnd:
    """Ask the end-of-turn model whether the turn of ``item_id`` is complete, from ``audio`` (16 kHz):
    the turn so far, the pause that prompted the question at its end.

    A command, not a model call inside the session: a decision costs 40-60 ms of CPU, which would
    stall the event loop (every connection) if the session made it inline, as it does the 0.1 ms
    VAD frames. The answer is :class:`TurnEndPredicted`, or :class:`JobFailed` with
    ``END_OF_TURN_UNAVAILABLE`` when the server has no model (the session then uses its word rule).
    """

    job_id: str
    item_id: str
    audio: Samples


END_OF_TURN_UNAVAILABLE = "end_of_turn_unavailable"


@dataclass(frozen=True)
class ScoreTurnWords:
    """Ask the LLM how likely the user's message ends after ``words`` (the pause's speculative final
    transcript): its probability of the chat template's end-of-message token there
    (:mod:`~openrealtime.session.eou_text`). A command for the same reason as :class:`PredictTurnEnd`
    (tens of ms of CPU). The answer is :class:`TurnEndPredicted`, or :class:`JobFailed` with
    ``END_OF_TURN_TEXT_UNAVAILABLE`` when the server's LLM cannot tell (a remote one).
    ``hold_ms``: how long the runtime may hold the question while an answer writes its first clause
    (the cores they share), so that its veto still comes in time (``eou_text.hold_ms``)."""

    job_id: str
    item_id: str
    words: str
    hold_ms: float = 0.0


END_OF_TURN_TEXT_UNAVAILABLE = "end_of_turn_text_unavailable"


@dataclass(frozen=True)
class TurnEndPredicted:
    """Engine result: the probability that the turn of job ``job_id`` is complete (from the audio for
    :class:`PredictTurnEnd`, from the words for :class:`ScoreTurnWords`)."""

    job_id: str
    probability: float


# --- translation sessions (issue 4) ----------------------------------------------------------------


@dataclass(frozen=True)
class TranslateText:
    """Translate ``text`` (one committed clause) from ``source`` into ``target`` (ISO-639-1 codes)."""

    job_id: str
    text: str
    source: str
    target: str


@dataclass(frozen=True)
class Synthesize:
    """Speak ``text`` in ``language`` with ``voice`` (an OpenAI or engine voice name; ``None`` for the
    language's default); ``speed`` above 1 speaks faster (to catch up a backlog).

    A clause of a longer speech names it: ``stream`` (a response id) and ``at_ms``, where the clause
    starts in that speech's audio. The runtime may then hold the synthesis until shortly before a
    listener who started hearing the speech at its first audio reaches ``at_ms``
    (:mod:`openrealtime.runtime.pacing`); ``""`` is speech that is never held.
    """

    job_id: str
    text: str
    language: str = "en"
    voice: str | None = None
    speed: float = 1.0
    stream: str = ""
    at_ms: float = 0.0


@dataclass(frozen=True)
class TextTranslated:
    """Engine result: the translation of job ``job_id``."""

    job_id: str
    text: str


@dataclass(frozen=True)
class AudioChunk:
    """Engine result: a piece of the speech of job ``job_id``, mono float32 at ``sample_rate_hz``."""

    job_id: str
    audio: Samples
    sample_rate_hz: int


@dataclass(frozen=True)
class SynthesisDone:
    """Engine result: job ``job_id`` has produced all its audio."""

    job_id: str


# --- the server's own playback (WebRTC calls, issue 11) -------------------------------------------


@dataclass(frozen=True)
class PlayAudio:
    """Play ``samples`` (mono float32, 24 kHz) of ``item_id``, the answer of ``response_id``, after what
    is queued: a session whose audio the server plays (a WebRTC call) sends this instead of
    ``response.output_audio.delta``."""

    response_id: str
    item_id: str
    samples: Samples


@dataclass(frozen=True)
class EndOfAudio:
    """``response_id`` will send no more audio: once what is queued of it has played, playback of it
    has stopped (``output_audio_buffer.stopped``)."""

    response_id: str


@dataclass(frozen=True)
class ClearPlayback:
    """Drop every queued, unplayed sample; the runtime answers at once with :class:`PlaybackCleared`."""


@dataclass(frozen=True)
class HoldPlayback:
    """Hold the playback where it is (``held``: silence goes out, nothing queued is lost) or let it go
    on from that very sample: speech over the assistant that may be only a backchannel (issue 13)."""

    held: bool


@dataclass(frozen=True)
class PlaybackStarted:
    """Media clock: the first sample of ``response_id`` left for the listener."""

    response_id: str


@dataclass(frozen=True)
class PlaybackStopped:
    """Media clock: the last sample of ``response_id`` left, and no more is coming."""

    response_id: str


@dataclass(frozen=True)
class PlayedItem:
    """How much of one item's queued audio was played before a clear: ``played_ms`` of it."""

    response_id: str
    item_id: str
    played_ms: int


@dataclass(frozen=True)
class PlaybackCleared:
    """Media clock: the queue was dropped; ``played`` has each item that had audio in it, in order
    (the first is the one that was playing), with the milliseconds of it that were played."""

    played: tuple[PlayedItem, ...]


PlaybackResult = PlaybackStarted | PlaybackStopped | PlaybackCleared
"""What the media clock of a call tells its session (``on_playback``)."""
PLAYBACK_TYPES = (PlaybackStarted, PlaybackStopped, PlaybackCleared)


# --- what the runtime hands a session besides results ---------------------------------------------


@dataclass(frozen=True)
class AudioIn:
    """A client event carrying audio (an append, or an item created with ``input_audio``), its audio
    decoded at the edge: ``samples`` at ``rate_hz``, mono float32. Sessions never see base64."""

    event: ce.InputAudioBufferAppend | ce.TranslationAppend | ce.ConversationItemCreate
    samples: Samples
    rate_hz: int

    @property
    def event_id(self) -> str | None:
        return self.event.event_id


SessionInput = ce.ClientEvent | AudioIn
"""What a session's ``receive`` takes: client events, with their audio already decoded."""

Command = (
    Transcribe
    | CancelJob
    | CloseConnection
    | Generate
    | WarmAnswer
    | WarmTurnWords
    | TranslateText
    | Synthesize
    | PlayAudio
    | EndOfAudio
    | ClearPlayback
    | HoldPlayback
    | PredictTurnEnd
    | ScoreTurnWords
    | ListMcpTools
    | CallMcpTool
)
"""Everything a session may ask of its runtime."""
COMMAND_TYPES = (
    Transcribe,
    CancelJob,
    CloseConnection,
    Generate,
    WarmAnswer,
    WarmTurnWords,
    TranslateText,
    Synthesize,
    PlayAudio,
    EndOfAudio,
    ClearPlayback,
    HoldPlayback,
    PredictTurnEnd,
    ScoreTurnWords,
    ListMcpTools,
    CallMcpTool,
)

EngineResult = (
    TranscriptReady
    | JobFailed
    | LlmChunk
    | TextTranslated
    | AudioChunk
    | SynthesisDone
    | TurnEndPredicted
    | McpToolsListed
    | McpToolCalled
)
"""Everything a runtime hands back to a session (``on_result``)."""
RESULT_TYPES = (
    TranscriptReady,
    JobFailed,
    LlmChunk,
    TextTranslated,
    AudioChunk,
    SynthesisDone,
    TurnEndPredicted,
    McpToolsListed,
    McpToolCalled,
)
