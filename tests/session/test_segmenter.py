"""The translation segmenter alone: 16 kHz audio in, decodes out, stable source text and pieces back.

Every output of each call is compared, in order: a decode as (kind, job id, audio ms), a cancel as
its command, a source-transcript delta as its text, a piece in full.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from openrealtime.contracts import Transcript
from openrealtime.engines.fake import EnergyVad, FakeTranscriber
from openrealtime.session.commands import CancelJob, JobFailed, Transcribe, TranscriptReady
from openrealtime.session.ids import Ids
from openrealtime.session.pieces import Piece, SourceCase, sentence_case
from openrealtime.session.segmenter import SegmenterOutput, SpeechSegmenter, cut_point
from tests.conftest import quiet, tone

RATE_HZ = 16_000
FEED_SAMPLES = 3200  # 200 ms, the translation session's frame
MEETING = ("The", "meeting", "moved", "to", "Thursday,", "so", "please")


def t(ms: int) -> np.ndarray:
    return tone(ms, rate_hz=RATE_HZ)


def q(ms: int) -> np.ndarray:
    return quiet(ms, rate_hz=RATE_HZ)


def audio(*parts: np.ndarray) -> np.ndarray:
    return np.concatenate(parts)


class Harness:
    """Feeds a segmenter and answers its decodes with a fake ASR; ``hold`` keeps them for the test."""

    def __init__(
        self,
        words: tuple[str, ...] = MEETING,
        *,
        language: str | None = "en",
        whole: bool = False,
        eager: bool = False,
        hold: bool = True,
    ) -> None:
        self.segmenter = SpeechSegmenter(
            vad=EnergyVad(),
            ids=Ids(deterministic=True),
            language=language,
            whole_utterances=lambda _: whole,
            eager=lambda: eager,
        )
        self.asr = FakeTranscriber(words, words_per_second=4.0)
        self.hold = hold
        self.held: list[Transcribe] = []

    def feed(self, samples: np.ndarray) -> list[Any]:
        out: list[Any] = []
        for i in range(0, samples.size, FEED_SAMPLES):
            out += self._run(self.segmenter.feed(samples[i : i + FEED_SAMPLES]))
        return out

    def flush(self) -> list[Any]:
        return self._run(self.segmenter.flush())

    def release(self, index: int = 0, *, fail: bool = False, text: str | None = None) -> list[Any]:
        command = self.held.pop(index)
        if fail:
            result: TranscriptReady | JobFailed = JobFailed(command.job_id, "transcription_failed", "boom")
        elif text is not None:
            result = TranscriptReady(command.job_id, Transcript(text=text, language="en"))
        else:
            result = TranscriptReady(command.job_id, self.asr.transcribe(command.audio, command.options))
        return self._run(self.segmenter.on_result(result))

    def pending(self) -> list[tuple[str, str, int]]:
        return [shown(c) for c in self.held]

    def _run(self, outputs: list[SegmenterOutput]) -> list[Any]:
        out: list[Any] = []
        for output in outputs:
            out.append(shown(output))
            if isinstance(output, CancelJob):
                self.held = [h for h in self.held if h.job_id != output.job_id]
            elif isinstance(output, Transcribe):
                self.held.append(output)
        if not self.hold:
            while self.held:
                out += self.release()
        return out


def shown(output: SegmenterOutput) -> Any:
    if isinstance(output, Transcribe):
        return ("final" if output.final else "partial", output.job_id, output.audio.size * 1000 // RATE_HZ)
    if isinstance(output, Piece) and output.audio is not None:
        return Piece(output.text, output.language, None, output.final), output.audio.size * 1000 // RATE_HZ
    return output


def test_a_pause_ends_the_utterance_and_the_decode_started_at_it_is_the_final() -> None:
    h = Harness(("Hello", "there."), hold=False, eager=True)
    assert h.feed(audio(q(200), t(600), q(600))) == [
        ("partial", "job_1", 400),
        ("partial", "job_2", 600),
        ("partial", "job_3", 800),
        ("final", "job_4", 800),  # at the pause: the final if the pause lasts
        "Hello",
        " there.",
        Piece("Hello there.", "en", None, final=True),
    ]
    assert h.segmenter.idle


def test_speech_back_after_a_short_pause_makes_the_decode_of_the_pause_a_partial() -> None:
    h = Harness()
    assert h.feed(audio(q(200), t(1000))) == [("partial", "job_1", 400)]
    assert h.release() == [("partial", "job_2", 1200)]
    assert h.release() == []  # one decode: nothing agrees yet
    assert h.feed(q(150)) == [("final", "job_3", 1216)]
    assert h.feed(t(400)) == []  # not cancelled: it serves as the next partial ...
    assert h.pending() == [("final", "job_3", 1216)]
    assert h.release() == [("partial", "job_4", 1750), "The meeting"]  # ... and agrees with the last one
    assert not h.segmenter.idle


def test_speech_back_while_a_partial_runs_cancels_the_decode_of_the_pause() -> None:
    h = Harness()
    assert h.feed(audio(q(200), t(1000), q(150), t(400))) == [
        ("partial", "job_1", 400),
        ("final", "job_2", 1216),
        CancelJob("job_2"),
    ]
    assert h.pending() == [("partial", "job_1", 400)]


def test_a_pause_too_early_to_hold_a_word_is_not_decoded() -> None:
    h = Harness()
    assert h.feed(audio(t(100), q(150), t(400))) == [("partial", "job_1", 400)]
    assert h.pending() == [("partial", "job_1", 400)]


def test_a_blip_too_short_to_hold_a_word_is_never_decoded() -> None:
    h = Harness()
    assert h.feed(audio(t(100), q(600))) == []
    assert h.segmenter.idle


def test_a_failed_partial_gives_nothing_and_the_next_one_follows_the_new_audio() -> None:
    h = Harness()
    h.feed(audio(q(200), t(1000)))
    assert h.release() == [("partial", "job_2", 1200)]
    assert h.release(fail=True) == []
    assert h.feed(t(400)) == [("partial", "job_3", 1600)]


def test_a_failed_decode_of_the_pause_is_decoded_again_when_the_pause_ends_the_utterance() -> None:
    h = Harness()
    h.feed(audio(q(200), t(1000)))
    h.release()
    h.release()
    assert h.feed(q(200)) == [("final", "job_3", 1216)]
    assert h.release(fail=True) == []
    assert h.feed(q(400)) == [("final", "job_4", 1216)]
    assert h.release() == ["The meeting moved", Piece("The meeting moved", "en", None, final=True)]
    assert h.segmenter.idle


def test_a_decode_of_the_pause_that_came_back_settles_the_utterance_when_the_pause_ends_it() -> None:
    h = Harness()
    h.feed(audio(q(200), t(1000)))
    h.release()
    h.release()
    assert h.feed(q(200)) == [("final", "job_3", 1216)]
    assert h.release() == ["The meeting"]  # read as a partial while the pause may still end in speech
    assert h.feed(q(200)) == [" moved", Piece("The meeting moved", "en", None, final=True)]


def test_outputs_leave_in_utterance_order_and_a_failed_final_leaves_nothing() -> None:
    h = Harness(("Hello", "there."))
    assert h.feed(audio(q(200), t(600), q(600), t(600), q(600))) == [
        ("partial", "job_1", 400),
        ("final", "job_2", 800),
        CancelJob("job_1"),
        ("partial", "job_3", 424),
        ("final", "job_4", 840),
        CancelJob("job_3"),
    ]
    assert h.release(1) == []  # the second utterance waits for the first
    assert h.release(fail=True) == ["Hello there.", Piece("Hello there.", "en", None, final=True)]
    assert h.segmenter.idle


def test_results_of_unknown_jobs_are_dropped() -> None:
    h = Harness()
    h.feed(audio(q(200), t(1000), q(600)))
    assert h.segmenter.on_result(TranscriptReady("job_404", Transcript("ghost"))) == []
    assert h.segmenter.on_result(JobFailed("job_1", "transcription_failed", "cancelled already")) == []
    assert not h.segmenter.owns("job_1")


def test_flush_ends_the_utterance_at_its_pause() -> None:
    h = Harness(("Hello", "there."), hold=False)
    h.feed(audio(q(200), t(600)))
    h.feed(q(200))  # a pause, not yet long enough to end the utterance
    # The decode of the pause came back already: it is the final.
    assert h.flush() == [" there.", Piece("Hello there.", "en", None, final=True)]
    assert h.feed(q(400)) == []  # the detector still ends its turn: nothing is live to end
    assert h.segmenter.idle


def test_whole_utterances_carry_their_audio_and_are_not_cut() -> None:
    h = Harness(MEETING, hold=False, whole=True, eager=True)
    assert h.feed(audio(q(200), t(1800), q(600))) == [
        ("partial", "job_1", 400),
        ("partial", "job_2", 600),
        ("partial", "job_3", 800),
        ("partial", "job_4", 1000),
        "The",
        ("partial", "job_5", 1200),
        " meeting",
        ("partial", "job_6", 1400),
        ("partial", "job_7", 1600),
        " moved",
        ("partial", "job_8", 1800),
        " to",
        ("partial", "job_9", 2000),
        " Thursday,",  # a clause, but whole utterances are not cut
        ("final", "job_10", 2016),
        " so",
        " please",
        (Piece("The meeting moved to Thursday, so please", "en", None, final=True), 2016),
    ]


def test_a_detected_language_needs_a_second_of_audio_or_the_final_decode() -> None:
    class Detecting(FakeTranscriber):
        def transcribe(self, audio: np.ndarray, options: Any) -> Transcript:
            heard = super().transcribe(audio, options)
            return Transcript(text=heard.text, language="es")

    h = Harness(("Buenos", "días."), language=None, hold=False)
    h.asr = Detecting(("Buenos", "días."), words_per_second=4.0)
    out = h.feed(audio(q(200), t(600), q(600)))
    assert out[-1] == Piece("Buenos días.", "es", None, final=True)


def test_a_final_decode_with_no_language_falls_back_to_english() -> None:
    h = Harness(("Hola",), language=None)
    h.feed(audio(q(200), t(600), q(600)))
    while len(h.held) > 1:
        h.release(fail=True)
    assert h.release(text="Hola.") == ["Hola.", Piece("Hola.", "en", None, final=True)]


# --- pieces and their case ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "starts_sentence", "cased"),
    [
        ("hello there", True, "Hello there"),
        ("The bridge", False, "the bridge"),  # a function word that only looked like a start
        ("And then", False, "and then"),
        ("Paris is far", False, "Paris is far"),  # a name keeps its capital
        ("AND then", False, "AND then"),  # an acronym-like start is left alone
        ("¿qué tal?", True, "¿Qué tal?"),
        ("...", True, "..."),  # no letter to case
    ],
)
def test_sentence_case(text: str, starts_sentence: bool, cased: str) -> None:
    assert sentence_case(text, starts_sentence=starts_sentence) == cased


def test_deltas_and_pieces_are_each_cased_as_one_running_text() -> None:
    case = SourceCase()
    outputs = [
        "the meeting moved.",
        " ",  # blank: passed as is, and it changes nothing
        " The report",
        Piece("the meeting moved.", "en", None, final=True),
        Piece("The report", "en", None, final=False),
        Piece("The deadline.", "en", None, final=True),
    ]
    assert [case(o) for o in outputs] == [
        "The meeting moved.",
        " ",
        " The report",
        Piece("The meeting moved.", "en", None, final=True),
        Piece("The report", "en", None, final=False),
        Piece("the deadline.", "en", None, final=True),
    ]


# --- where a window without pauses is cut ---------------------------------------------------------


def test_the_cut_is_the_latest_gap_between_words() -> None:
    frames = [(0, 1.0), (512, 0.0), (1024, 0.0), (1536, 1.0), (2048, 0.0), (2560, 0.0), (3072, 1.0)]
    assert cut_point(frames, 0, 4000, gap_below=0.35) == 2560


def test_without_a_gap_the_cut_is_the_quietest_moment_with_its_neighbours() -> None:
    frames = [(0, 1.0), (512, 0.9), (1024, 0.6), (1536, 0.6), (2048, 1.0)]
    assert cut_point(frames, 512, 2048, gap_below=0.1) == 1024  # 0.7 on average with its neighbours
    level = [(0, 0.5), (512, 0.5), (1024, 0.5), (1536, 0.5)]
    assert cut_point(level, 0, 1536, gap_below=0.1) == 1536  # equally quiet: the latest


def test_without_frames_in_range_the_cut_is_the_latest_allowed() -> None:
    assert cut_point([(0, 0.0)], 512, 2048, gap_below=0.35) == 2048
