"""A response's speech, as a mixin of :class:`~openrealtime.session.responses.ResponseWriter` (whose
state it uses, through :class:`_Writer`): one clause synthesized at a time (:meth:`ResponseSpeech._speak_next`),
its words sent right before its first audio so captions follow the speech, and its audio resampled to
the session's rate and sent as ``response.output_audio.delta`` pieces of at most ``DELTA_MS`` (or as
:class:`~openrealtime.session.commands.PlayAudio` where the server plays it, a WebRTC call), each
clause's end noted so a truncation keeps the share of it that was heard.
"""

from __future__ import annotations

from typing import Protocol

from openrealtime.audio.codec import AudioOut
from openrealtime.audio.resample import StreamResampler
from openrealtime.audio.types import Samples
from openrealtime.protocol import server_events as se
from openrealtime.session.commands import AudioChunk, PlayAudio, Synthesize
from openrealtime.session.conversation import SpokenClause
from openrealtime.session.ids import Ids
from openrealtime.session.response import MS_PER_S, Response, part_ids
from openrealtime.session.signals import Output
from openrealtime.session.states import ResponseState

DELTA_MS = 200  # the longest response.output_audio.delta: a clause's audio goes out in pieces this long


class _Writer(Protocol):
    """What of the response writer the mixin uses."""

    server_playback: bool  # the server plays the audio itself (a WebRTC call)
    jobs: dict[str, Response]  # job id -> the response it works for
    produced_audio: bool
    _ids: Ids

    def _maybe_complete(self, response: Response) -> list[Output]: ...

    def _synthesize(self, response: Response, clause: str) -> list[Output]: ...

    def _speak_next(self, response: Response) -> list[Output]: ...

    def _begin_clause(self, response: Response) -> list[Output]: ...

    def _send_audio(self, response: Response, samples: Samples) -> list[Output]: ...

    def _heard(self, response: Response, samples: int) -> None: ...


class ResponseSpeech:
    """The speech of every response, for :class:`~openrealtime.session.responses.ResponseWriter`."""

    def _synthesize(self: _Writer, response: Response, clause: str) -> list[Output]:
        job_id = self._ids.new("job")
        response.tts_job, response.tts_clause, response.tts_started = job_id, clause, False
        self.jobs[job_id] = response
        return [
            Synthesize(
                job_id=job_id,
                text=clause,
                voice=response.voice,
                language="en",
                speed=response.speed,
                stream=response.id,
                at_ms=response.audio_ms,
            )
        ]

    def _speak_next(self: _Writer, response: Response) -> list[Output]:
        if response.tts_job is not None or not response.clauses or response.state is not ResponseState.IN_PROGRESS:
            return []
        return self._synthesize(response, response.clauses.popleft())

    def _begin_clause(self: _Writer, response: Response) -> list[Output]:
        """The clause's words go out right before its first audio, so captions follow the speech."""
        clause = response.tts_clause or ""
        delta = clause if not response.spoken else " " + clause
        response.spoken += delta
        response.tts_started = True
        assert response.message is not None
        # Recorded as it starts, so a truncation mid-clause keeps the share of it that was heard.
        response.message.clauses.append(SpokenClause(clause, response.audio_ms, response.audio_ms))
        return [se.OutputAudioTranscriptDelta(**part_ids(response), delta=delta)]

    def _on_audio(self: _Writer, response: Response, chunk: AudioChunk) -> list[Output]:
        out: list[Output] = [] if response.tts_started else self._begin_clause(response)
        if response.resampler is None or response.resampler_rate_hz != chunk.sample_rate_hz:
            response.resampler = StreamResampler(chunk.sample_rate_hz, response.rate_hz)
            response.resampler_rate_hz = chunk.sample_rate_hz
        return out + self._send_audio(response, response.resampler.process(chunk.audio))

    def _send_audio(self: _Writer, response: Response, samples: Samples) -> list[Output]:
        if samples.size == 0:
            return []
        self.produced_audio = True
        message = response.message
        assert message is not None, "audio follows its clause's words"
        if self.server_playback:
            self._heard(response, samples.size)
            return [PlayAudio(response.id, message.id, samples)]
        # A clause's audio in deltas of DELTA_MS, as OpenAI streams it (a whole 1-3 s clause before).
        step = max(1, response.rate_hz * DELTA_MS // MS_PER_S)
        out: list[Output] = []
        for start in range(0, samples.size, step):
            piece = samples[start : start + step]
            self._heard(response, piece.size)
            out.append(se.OutputAudioDelta(**part_ids(response), audio=AudioOut(piece, response.output_format)))
        return out

    @staticmethod
    def _heard(response: Response, samples: int) -> None:
        """Count ``samples`` more of the response's audio, and where its current clause ends."""
        response.audio_samples += samples
        assert response.message is not None
        response.message.audio_ms = response.audio_ms
        response.message.clauses[-1].end_ms = response.audio_ms

    def _on_clause_spoken(self: _Writer, response: Response) -> list[Output]:
        out: list[Output] = []
        if not response.tts_started and response.tts_clause:
            out += self._begin_clause(response)
        self.jobs.pop(response.tts_job or "", None)
        response.tts_job = None
        return out + self._speak_next(response) + self._maybe_complete(response)
