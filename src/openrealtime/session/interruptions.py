"""The realtime session's side of barge-in and echo (issue 13): when speech over the assistant
interrupts it, and what the echo canceller is told, as a mixin of
:class:`~openrealtime.session.realtime.RealtimeSession` (whose state it uses, through :class:`_Session`).

OpenAI's barge-in cancels at ``speech_started``; the ``adaptive`` one holds a call's playback and
judges the speech (:mod:`~openrealtime.session.bargein`): an interruption cancels and clears, anything
else lets the answer go on. Every input passes the echo canceller first when the session has one
(:mod:`~openrealtime.session.echo`), which is told what the listener hears and when it stops.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from openrealtime.protocol import client_events as ce
from openrealtime.protocol.config import RealtimeSessionConfig, SemanticVad, ServerVad
from openrealtime.protocol.extension_events import SpeechJudged
from openrealtime.session.bargein import BargeIn, Verdict
from openrealtime.session.commands import AudioIn, SessionInput
from openrealtime.session.conversation import Conversation
from openrealtime.session.echo import RATE_HZ as ECHO_RATE_HZ
from openrealtime.session.echo import START_OVER_ECHO_MS, EchoCanceller
from openrealtime.session.ids import Ids
from openrealtime.session.input_buffer import InputAudioBuffer
from openrealtime.session.playback import ServerPlayback
from openrealtime.session.prompting import new_response
from openrealtime.session.response import Response
from openrealtime.session.responses import ResponseWriter
from openrealtime.session.signals import Output, TurnMayEnd
from openrealtime.session.vad import START_SPEECH_MS

if TYPE_CHECKING:
    from collections.abc import Iterable

    from openrealtime.session.realtime import RealtimeInfo


class _Session(Protocol):
    """What of the realtime session the mixin uses."""

    config: RealtimeSessionConfig
    rt: RealtimeInfo
    buffer: InputAudioBuffer
    playback: ServerPlayback
    writer: ResponseWriter
    conversation: Conversation
    _ids: Ids
    _barge: BargeIn
    _echo: EchoCanceller | None
    _speaking_until: int

    @property
    def active_response(self) -> Response | None: ...

    def _take(self, outputs: Iterable[Output]) -> None: ...

    def _respond(self, outputs: list[Output]) -> None: ...

    def _start_response(self, response: Response) -> None: ...

    def _speculate(self, may_end: TurnMayEnd) -> None: ...

    def _heard(self, outputs: list[Output]) -> list[Output]: ...

    def _silenced(self, item_id: str | None = None) -> None: ...

    def _settle_barge_in(self, verdict: Verdict) -> None: ...

    def _tell_verdict(self, item_id: str, *, interruption: bool) -> None: ...


class Interruptions:
    """Barge-in and echo for :class:`~openrealtime.session.realtime.RealtimeSession`."""

    def _barge_in(self: _Session, item_id: str) -> None:
        """Speech began: OpenAI's barge-in cancels at once; the adaptive one holds and judges."""
        td = self.config.audio.input.turn_detection
        if not isinstance(td, ServerVad | SemanticVad) or not td.interrupt_response:
            return
        if (td.barge_in or self.rt.barge_in) == "adaptive":
            client_playing = not self.rt.server_playback and self.buffer.buffer.end < self._speaking_until
            if self.active_response is not None or self.playback.pending or client_playing:
                self._take(self._heard(self._barge.begin(item_id, hold=self.playback.pending)))
                if self.buffer.turn is not None:
                    self.buffer.turn.urgent = True  # its words decide: decode them first
            else:  # nothing plays: an ordinary turn, answered (even one judged a backchannel in a pause)
                self._barge.dismissed = None
                self._tell_verdict(item_id, interruption=True)
            return
        if (response := self.active_response) is not None:
            # Barge-in: one joint step, right after speech_started (reference 6.3).
            self._respond(self.writer.cancel(response, "turn_detected"))
        # The server plays the audio: stop it, even after response.done (it is usually still playing
        # then); what was heard comes back as PlaybackCleared.
        self._take(self.playback.clear())
        self._silenced()

    def _without_echo(self: _Session, event: SessionInput) -> SessionInput:
        """The input with the server's own voice removed (session/echo.py); a commit takes the tail."""
        assert self._echo is not None
        if isinstance(event, AudioIn) and isinstance(event.event, ce.InputAudioBufferAppend):
            samples = self._echo.process(event.samples, event.rate_hz)
            self.buffer.speech_to_start(START_OVER_ECHO_MS if self._echo.echo_audible else START_SPEECH_MS)
            return AudioIn(event.event, samples, ECHO_RATE_HZ)
        if isinstance(event, ce.InputAudioBufferCommit) and self.buffer.turn is not None:
            self._take(self.buffer.append(self._echo.flush(), ECHO_RATE_HZ, event_id=event.event_id))
        return event

    def _heard(self: _Session, outputs: list[Output]) -> list[Output]:
        if self._echo is not None:
            self._echo.heard(outputs)  # where the listener hears them: the echo canceller's reference
        return outputs

    def _silenced(self: _Session, item_id: str | None = None) -> None:
        """The listener stopped hearing ``item_id`` (a truncate, a client's cancel), or everything."""
        if self._echo is not None:
            self._echo.silenced(item_id)

    def _judge_barge_in(self: _Session) -> None:
        """Judge the speech over the assistant again: it grew, or new words of it came."""
        pending = self._barge.pending
        if pending is None or pending.committed:
            return  # nothing to judge, or only the committed turn's final transcript decides now
        turn = self.buffer.turn
        if turn is None or turn.item_id != pending.item_id:
            self._take(self._heard(self._barge.dismiss()))  # the turn was cleared: nothing was said
            self._tell_verdict(pending.item_id, interruption=False)
            return
        self._settle_barge_in(self._barge.judge_turn(turn, self.buffer.buffer.end))

    def _settle_barge_in(self: _Session, verdict: Verdict) -> None:
        if verdict is Verdict.UNDECIDED:
            return
        if verdict is Verdict.NOT_AN_INTERRUPTION:
            dismissed = self._barge.pending
            self._take(self._heard(self._barge.dismiss()))  # the answer goes on from where it was held
            if dismissed is not None:
                self._tell_verdict(dismissed.item_id, interruption=False)
            return
        pending = self._barge.interrupted()
        if (response := self.active_response) is not None:
            self._respond(self.writer.cancel(response, "turn_detected"))
        self._take(self.playback.clear())
        self._silenced()
        if pending is not None:
            self._tell_verdict(pending.item_id, interruption=True)
        td = self.config.audio.input.turn_detection
        if pending is None or td is None or not td.create_response:
            return
        turn = self.buffer.turn
        if pending.committed:  # the turn ended before it was judged: answer it now
            self._start_response(new_response(self.config, None, self.conversation, ids=self._ids))
        elif turn is not None and turn.item_id == pending.item_id and turn.final_result is not None:
            self._speculate(TurnMayEnd(turn.item_id, turn.final_result))  # judged in its pause

    def _tell_verdict(self: _Session, item_id: str, *, interruption: bool) -> None:
        """The verdict as our extension event, to a session that named ``barge_in`` itself: a client
        that paused its player at ``speech_started`` resumes or clears it (protocol/extension_events.py)."""
        td = self.config.audio.input.turn_detection
        if isinstance(td, ServerVad | SemanticVad) and td.barge_in is not None:
            self._take([SpeechJudged(item_id=item_id, interruption=interruption)])
