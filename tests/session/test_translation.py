"""The translation session, driven with scripted inputs and fake engines; whole events compared."""

from __future__ import annotations

import base64
import json
import threading
from typing import Any

import numpy as np
import pytest

from openrealtime.audio.codec import float_to_pcm16
from openrealtime.contracts import TranscribeOptions, Transcript
from openrealtime.engines.fake import EnergyVad, FakeTranscriber, ToneSynthesizer, UppercaseTranslator
from openrealtime.exceptions import EngineError, ProtocolError
from openrealtime.protocol import client_events as ce
from openrealtime.protocol.codec import SessionKind, server_event_dict
from openrealtime.runtime.wire import ClientFrames
from openrealtime.session.commands import (
    AudioChunk,
    AudioIn,
    CancelJob,
    CloseConnection,
    JobFailed,
    SynthesisDone,
    Synthesize,
    TextTranslated,
    Transcribe,
    TranscriptReady,
    TranslateText,
)
from openrealtime.session.ids import Ids
from openrealtime.session.segmenter import WINDOW_LIMIT_MS, piece_cut
from openrealtime.session.translation import (
    FRAME_SAMPLES,
    Route,
    TranslationInfo,
    TranslationSession,
    language_base,
)
from tests.conftest import quiet, tone
from tests.session.driver import error_event

FRAME_BYTES = FRAME_SAMPLES * 2  # a 200 ms frame of PCM16 on the wire

CREATED_AT_S = 1_700_000_000
SCRIPT = ("Good", "morning,", "how", "can", "I", "help", "you", "today?")
ROUTES = {("en", "es"): Route.TEXT, ("es", "en"): Route.SPEECH}
VOICES = {"en", "es", "de", "fr"}


def info(*, multilingual: bool = False) -> TranslationInfo:
    return TranslationInfo(
        session_id="sess_1",
        created_at_s=CREATED_AT_S,
        model="gpt-realtime-translate",
        route=lambda source, target: ROUTES.get((source, target)),
        can_speak=lambda language: language_base(language) in VOICES,
        multilingual=multilingual,
        accepts_model=lambda name: name in {"gpt-realtime-whisper", "whisper-1"},
    )


def wire(event: Any) -> dict[str, Any]:
    body = server_event_dict(event, "event_x")
    del body["event_id"]
    return body


class Driver:
    """Feeds a session and answers its commands with fakes; command types in ``hold`` wait for the test."""

    def __init__(
        self,
        session: TranslationSession,
        *,
        asr: Any = None,
        tts: Any = None,
        hold: tuple[type, ...] = (),
    ) -> None:
        self.session = session
        self.frames = ClientFrames(SessionKind.TRANSLATION)
        self.asr = asr or FakeTranscriber(SCRIPT, words_per_second=4.0)
        self.mt = UppercaseTranslator()
        self.tts = tts or ToneSynthesizer()
        self.hold = hold
        self.held: list[Any] = []
        self.commands: list[Any] = []
        self.events: list[dict[str, Any]] = []

    def send(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        try:
            parsed = self.frames.parse(json.dumps(event), self.session.input_format)
        except ProtocolError as exc:  # as the runtime reports codec errors
            self.session.error(exc)
        else:
            self.session.receive(parsed)
        return self.pump()

    def append(self, samples: np.ndarray, *, chunk_bytes: int = 4800) -> list[dict[str, Any]]:
        data = float_to_pcm16(samples)
        out: list[dict[str, Any]] = []
        for i in range(0, len(data), chunk_bytes):
            chunk = base64.b64encode(data[i : i + chunk_bytes]).decode()
            out += self.send({"type": "session.input_audio_buffer.append", "audio": chunk})
        return out

    def configure(self, language: str = "es", *, transcription: bool = True) -> list[dict[str, Any]]:
        audio: dict[str, Any] = {"output": {"language": language}}
        if transcription:
            audio["input"] = {"transcription": {"model": "gpt-realtime-whisper"}}
        return self.send({"type": "session.update", "session": {"audio": audio}})

    def result(self, result: object) -> list[dict[str, Any]]:
        self.session.on_result(result)
        return self.pump()

    def run(self, command: Any) -> None:
        if isinstance(command, Transcribe):
            try:
                outcome: Any = TranscriptReady(command.job_id, self.asr.transcribe(command.audio, command.options))
            except EngineError as exc:
                outcome = JobFailed(command.job_id, exc.code, exc.message)
            self.session.on_result(outcome)
        elif isinstance(command, TranslateText):
            text = self.mt.translate(command.text, source=command.source, target=command.target)
            self.session.on_result(TextTranslated(command.job_id, text))
        elif isinstance(command, Synthesize):
            for audio in self.tts.synthesize(command.text, voice=command.voice or "", stop=threading.Event()):
                self.session.on_result(AudioChunk(command.job_id, audio, self.tts.sample_rate_hz))
            self.session.on_result(SynthesisDone(command.job_id))

    def release(self, command: Any) -> list[dict[str, Any]]:
        self.held.remove(command)
        self.run(command)
        return self.pump()

    def pump(self) -> list[dict[str, Any]]:
        produced: list[dict[str, Any]] = []
        while True:
            events, commands = self.session.drain()
            produced += [wire(e) for e in events]
            self.commands += commands
            work = [c for c in commands if isinstance(c, Transcribe | TranslateText | Synthesize)]
            for command in commands:
                if isinstance(command, CancelJob):
                    self.held = [h for h in self.held if h.job_id != command.job_id]
            if not work:
                break
            for command in work:
                if isinstance(command, self.hold):
                    self.held.append(command)
                else:
                    self.run(command)
        self.events += produced
        return produced


def make(*, multilingual: bool = False, **kwargs: Any) -> tuple[TranslationSession, Driver]:
    session = TranslationSession(info(multilingual=multilingual), vad=EnergyVad(), ids=Ids(deterministic=True))
    driver = Driver(session, **kwargs)
    driver.pump()
    return session, driver


class Blip:
    """One short chunk per text (1 ms per character), so audio deltas can be written out in full."""

    sample_rate_hz = 24_000

    def synthesize(self, text: str, *, voice: str, stop: threading.Event) -> Any:
        yield np.full(len(text) * 24, 0.25, dtype=np.float32)


def audio_delta(text: str, elapsed_ms: int) -> dict[str, Any]:
    pcm = float_to_pcm16(np.full(len(text) * 24, 0.25, dtype=np.float32))
    return {
        "type": "session.output_audio.delta",
        "delta": base64.b64encode(pcm).decode(),
        "elapsed_ms": elapsed_ms,
        "format": "pcm16",
        "sample_rate": 24_000,
        "channels": 1,
    }


error = error_event


def session_dict(**audio: Any) -> dict[str, Any]:
    input_ = {"noise_reduction": None, "transcription": None} | audio.get("input", {})
    return {
        "id": "sess_1",
        "type": "translation",
        "model": "gpt-realtime-translate",
        "expires_at": CREATED_AT_S + 3600,
        "audio": {"input": input_, "output": {"language": audio.get("language", "en")}},
    }


MEETING = (
    "The",
    "meeting",
    "moved",
    "to",
    "Thursday,",
    "so",
    "please",
    "send",
    "the",
    "report",
    "before",
    "noon.",
)


def speech_session(**kwargs: Any) -> tuple[TranslationSession, Driver]:
    kwargs.setdefault("asr", FakeTranscriber(MEETING, words_per_second=4.0))
    kwargs.setdefault("tts", Blip())
    session, driver = make(**kwargs)
    driver.configure()
    driver.events.clear()
    return session, driver


# --- session.created / session.update ---------------------------------------------------------------


def test_session_created_is_the_first_event() -> None:
    _, driver = make()
    assert driver.events == [{"type": "session.created", "session": session_dict()}]


def test_update_answers_with_the_whole_effective_session() -> None:
    session, driver = make()
    out = driver.send(
        {
            "type": "session.update",
            "session": {
                "audio": {
                    "input": {
                        "transcription": {"model": "gpt-realtime-whisper"},
                        "noise_reduction": {"type": "near_field", "strength": 0.5},
                    },
                    "output": {"language": "es"},
                }
            },
        }
    )
    nr = {"type": "near_field", "strength": 0.5}
    transcription = {"model": "gpt-realtime-whisper"}
    assert out == [
        {
            "type": "session.updated",
            "session": session_dict(input={"noise_reduction": nr, "transcription": transcription}, language="es"),
        }
    ]
    # Omitting strength keeps it, also when the type changes; fields left out stay as they are.
    out = driver.send(
        {
            "type": "session.update",
            "session": {"audio": {"input": {"noise_reduction": {"type": "far_field"}}}},
        }
    )
    far = {"type": "far_field", "strength": 0.5}
    assert out[0]["session"]["audio"] == {
        "input": {"noise_reduction": far, "transcription": transcription},
        "output": {"language": "es"},
    }
    out = driver.send({"type": "session.update", "session": {"audio": {"input": {"transcription": None}}}})
    assert out[0]["session"]["audio"]["input"]["transcription"] is None
    assert session.target == "es"


def test_update_refuses_a_language_no_engine_serves_and_changes_nothing() -> None:
    session, driver = make()
    french = driver.send(
        {"type": "session.update", "event_id": "u1", "session": {"audio": {"output": {"language": "fr"}}}}
    )
    unspoken = driver.send({"type": "session.update", "session": {"audio": {"output": {"language": "xx"}}}})
    malformed = driver.send({"type": "session.update", "session": {"audio": {"output": {"language": "e s"}}}})
    param = "session.audio.output.language"
    assert french == [
        error(
            "unsupported_language",
            "Unsupported language pair en->fr: no translation engine of this server translates English "
            "into 'fr' (configure an LLM translator, or pick a language that Apertium covers).",
            param,
            "u1",
        )
    ]
    assert unspoken == [
        error(
            "unsupported_language",
            "Unsupported output language 'xx': this server has no voice that speaks it.",
            param,
        )
    ]
    assert malformed == [
        error("invalid_value", "Invalid value: 'e s'. Expected a language code such as 'es' or 'pt-BR'.", param)
    ]
    assert session.effective_session() == session_dict()


def test_update_refuses_fixed_fields_and_unknown_transcription_models() -> None:
    _, driver = make()
    model = driver.send({"type": "session.update", "session": {"model": "other", "audio": {}}})
    same = driver.send({"type": "session.update", "session": {"model": "gpt-realtime-translate", "audio": {}}})
    asr = driver.send({"type": "session.update", "session": {"audio": {"input": {"transcription": {"model": "nope"}}}}})
    extra = driver.send({"type": "session.update", "session": {"audio": {"output": {"voice": "alloy"}}}})
    assert model == [
        error(
            "invalid_value",
            "Invalid value: 'other'. 'session.model' is fixed when the session is created and cannot be updated.",
            "session.model",
        )
    ]
    assert same == [{"type": "session.updated", "session": session_dict()}]
    assert asr == [
        error(
            "invalid_value",
            "Invalid value: 'nope'. This server has no transcription model of that name; use an OpenAI "
            "name (e.g. 'gpt-realtime-whisper') or a configured engine.",
            "session.audio.input.transcription.model",
        )
    ]
    assert extra == [
        error(
            "unknown_parameter",
            "Unknown parameter: 'session.audio.output.voice'.",
            "session.audio.output.voice",
        )
    ]


# --- input frames ------------------------------------------------------------------------------------


def test_appends_of_any_size_are_consumed_in_200_ms_frames() -> None:
    session, driver = make()
    pcm = float_to_pcm16(quiet(2000))
    sizes_and_elapsed = [
        (1, 0),
        (FRAME_BYTES - 2, 0),
        (1, 200),
        (FRAME_BYTES * 3 + 7, 800),
        (FRAME_BYTES - 7, 1000),
    ]
    position = 0
    for size, elapsed_ms in sizes_and_elapsed:
        chunk = pcm[position : position + size]
        position += size
        driver.send({"type": "session.input_audio_buffer.append", "audio": base64.b64encode(chunk).decode()})
        assert session.elapsed_ms == elapsed_ms
    # One append of many frames is consumed whole.
    driver.append(quiet(3000), chunk_bytes=len(float_to_pcm16(quiet(3000))))
    assert session.elapsed_ms == 4000


def test_audio_at_a_calls_48_khz_lasts_as_long_as_it_did() -> None:
    # A WebRTC call's track delivers 48 kHz; counted as 24 kHz it lasted twice as long and sounded an
    # octave low (Whisper heard "You are a sh..." for "What is the capital of France?").
    session, driver = make()
    append = ce.TranslationAppend(type="session.input_audio_buffer.append", audio="")
    for _ in range(11):
        session.receive(AudioIn(append, quiet(100, rate_hz=48_000), 48_000))
    assert session.elapsed_ms == 1000  # five whole 200 ms frames, the rest pending
    driver.send({"type": "session.close"})
    assert session.elapsed_ms == 1200  # the rest, the resampler's tail with it, padded to a frame


def test_silence_and_gaps_cost_nothing() -> None:
    session, driver = make()
    driver.configure()
    driver.events.clear()
    driver.append(quiet(60_000), chunk_bytes=FRAME_BYTES * 5)  # a minute, more than the buffer cap
    assert driver.events == []
    assert not [c for c in driver.commands if isinstance(c, Transcribe)]
    assert session.elapsed_ms == 60_000


def test_bad_input_is_an_error_and_the_session_goes_on() -> None:
    session, driver = make()
    bad = driver.send({"type": "session.input_audio_buffer.append", "event_id": "a1", "audio": "***"})
    unknown = driver.send({"type": "input_audio_buffer.commit", "event_id": "c1"})
    assert bad == [error("invalid_value", "Invalid 'audio': the value is not valid base64.", "audio", "a1")]
    assert unknown == [
        error(
            "invalid_value",
            "Invalid value: 'input_audio_buffer.commit'. Supported values are: 'session.update', "
            "'session.input_audio_buffer.append', and 'session.close'.",
            "type",
            "c1",
        )
    ]
    driver.append(quiet(400))
    assert session.elapsed_ms == 400


# --- simultaneous translation ------------------------------------------------------------------------


def test_translation_starts_before_the_sentence_ends() -> None:
    _, driver = speech_session()
    driver.append(np.concatenate([quiet(200), tone(3200), quiet(600)]))
    first = "[es] THE MEETING MOVED TO THURSDAY,"
    second = "[es] SO PLEASE SEND"
    third = "[es] THE REPORT BEFORE NOON."
    assert driver.events == [
        {"type": "session.input_transcript.delta", "delta": "The", "elapsed_ms": 1000},
        {"type": "session.input_transcript.delta", "delta": " meeting", "elapsed_ms": 1200},
        {"type": "session.input_transcript.delta", "delta": " moved", "elapsed_ms": 1600},
        {"type": "session.input_transcript.delta", "delta": " to", "elapsed_ms": 1800},
        {"type": "session.input_transcript.delta", "delta": " Thursday,", "elapsed_ms": 2000},
        # a clause is stable: it is translated and spoken while the speaker goes on
        {"type": "session.output_transcript.delta", "delta": first, "elapsed_ms": 2000},
        audio_delta(first, 2000),
        {"type": "session.input_transcript.delta", "delta": " so", "elapsed_ms": 2400},
        {"type": "session.input_transcript.delta", "delta": " please", "elapsed_ms": 2800},
        {"type": "session.input_transcript.delta", "delta": " send the", "elapsed_ms": 3200},
        # the listener has heard everything for a second: a finer cut (before "the") buys latency
        {"type": "session.output_transcript.delta", "delta": " " + second, "elapsed_ms": 3200},
        audio_delta(second, 3200),
        {"type": "session.input_transcript.delta", "delta": " report", "elapsed_ms": 3600},
        # the pause ends the utterance: its final decode settles the rest
        {"type": "session.input_transcript.delta", "delta": " before noon.", "elapsed_ms": 3800},
        {"type": "session.output_transcript.delta", "delta": " " + third, "elapsed_ms": 3800},
        audio_delta(third, 3800),
    ]
    translations = [c for c in driver.commands if isinstance(c, TranslateText)]
    assert [(t.text, t.source, t.target) for t in translations] == [
        ("The meeting moved to Thursday,", "en", "es"),
        ("so please send", "en", "es"),
        ("the report before noon.", "en", "es"),
    ]
    synths = [c for c in driver.commands if isinstance(c, Synthesize)]
    assert [(c.text, c.language, c.voice, c.speed) for c in synths] == [
        (first, "es", "es", 1.0),
        (second, "es", "es", 1.0),
        (third, "es", "es", 1.0),
    ]
    # ASR runs at 16 kHz, only on speech, from the prefix padding before the onset on.
    decodes = [c for c in driver.commands if isinstance(c, Transcribe)]
    assert decodes[0].options == TranscribeOptions(language="en")
    assert [d.final for d in decodes] == [False] * 11 + [True]


def test_while_the_listener_is_busy_pieces_are_whole_clauses() -> None:
    _, driver = speech_session(hold=(Synthesize,))  # the first clause is still being spoken
    driver.append(np.concatenate([quiet(200), tone(3200), quiet(600)]))
    translations = [c.text for c in driver.commands if isinstance(c, TranslateText)]
    assert translations == ["The meeting moved to Thursday,", "so please send the report before noon."]


def test_source_deltas_need_transcription_to_be_configured() -> None:
    _, driver = make(asr=FakeTranscriber(MEETING, words_per_second=4.0), tts=Blip())
    driver.configure(transcription=False)
    driver.events.clear()
    driver.append(np.concatenate([quiet(200), tone(3200), quiet(600)]))
    assert [e["type"] for e in driver.events] == [
        "session.output_transcript.delta",
        "session.output_audio.delta",
    ] * 3


def test_next_utterance_continues_the_transcripts_with_a_space() -> None:
    _, driver = speech_session(asr=FakeTranscriber(("Hello", "there."), words_per_second=4.0))
    driver.append(np.concatenate([quiet(200), tone(600), quiet(600), tone(600), quiet(600)]))
    source = "".join(e["delta"] for e in driver.events if e["type"] == "session.input_transcript.delta")
    target = "".join(e["delta"] for e in driver.events if e["type"] == "session.output_transcript.delta")
    assert source == "Hello there. Hello there."
    assert target == "[es] HELLO THERE. [es] HELLO THERE."


def test_pass_through_when_the_speaker_speaks_the_target_language() -> None:
    _, driver = make(asr=FakeTranscriber(("Hello", "there."), words_per_second=4.0), tts=Blip())
    driver.configure("en-US")
    driver.events.clear()
    driver.append(np.concatenate([quiet(200), tone(600), quiet(600)]))
    assert driver.events == [
        {"type": "session.input_transcript.delta", "delta": "Hello", "elapsed_ms": 1000},
        {"type": "session.input_transcript.delta", "delta": " there.", "elapsed_ms": 1200},
        {"type": "session.output_transcript.delta", "delta": "Hello there.", "elapsed_ms": 1200},
        audio_delta("Hello there.", 1200),
    ]
    assert not [c for c in driver.commands if isinstance(c, TranslateText)]
    assert [c for c in driver.commands if isinstance(c, Synthesize)] == [
        Synthesize("job_4", "Hello there.", "en", "en-US", 1.0)
    ]


class SpanishSpeaker(FakeTranscriber):
    """Detects Spanish; Whisper's translate task answers in English."""

    def transcribe(self, audio: Any, options: TranscribeOptions) -> Transcript:
        heard = super().transcribe(audio, options)
        if options.task == "translate":
            return Transcript(text="Good morning.", language="es")
        return Transcript(text=heard.text, language=options.language or "es")


def test_speech_into_english_uses_whisper_translate_on_whole_utterances() -> None:
    _, driver = make(multilingual=True, asr=SpanishSpeaker(("Buenos", "días."), words_per_second=4.0), tts=Blip())
    driver.configure("en")
    driver.events.clear()
    driver.append(np.concatenate([quiet(200), tone(1200), quiet(600)]))
    decodes = [c for c in driver.commands if isinstance(c, Transcribe)]
    assert decodes[0].options == TranscribeOptions(language=None)  # detect
    assert decodes[-2].options == TranscribeOptions(language="es")  # fixed once detected on 1 s
    translate = decodes[-1]
    assert translate.options == TranscribeOptions(language="es", task="translate")
    assert translate.final
    assert translate.audio.size == decodes[-2].audio.size  # the whole utterance
    assert [e for e in driver.events if e["type"] != "session.output_audio.delta"] == [
        {"type": "session.input_transcript.delta", "delta": "Buenos", "elapsed_ms": 1000},
        {"type": "session.input_transcript.delta", "delta": " días.", "elapsed_ms": 1800},
        {"type": "session.output_transcript.delta", "delta": "Good morning.", "elapsed_ms": 1800},
    ]


def test_a_detected_language_no_engine_translates_is_an_error_not_silence() -> None:
    _, driver = make(multilingual=True, asr=SpanishSpeaker(("Buenos", "días."), words_per_second=4.0), tts=Blip())
    driver.configure("de")
    driver.events.clear()
    driver.append(np.concatenate([quiet(200), tone(1200), quiet(600), tone(1200), quiet(600)]))
    message = (
        "Unsupported language pair es->de: the speaker speaks 'es' and no translation engine of this "
        "server translates it into 'de'."
    )
    errors = [e for e in driver.events if e["type"] == "error"]
    assert errors == [error("unsupported_language", message, "session.audio.output.language")]  # once


def test_long_speech_without_pauses_keeps_decode_windows_bounded() -> None:
    words = tuple(f"w{i}" for i in range(400))
    _, driver = speech_session(asr=FakeTranscriber(words, words_per_second=3.0))
    driver.append(np.concatenate([quiet(200), tone(40_000)]))
    decodes = [c for c in driver.commands if isinstance(c, Transcribe)]
    longest_ms = max(d.audio.size for d in decodes) * 1000 // 16_000
    assert longest_ms <= WINDOW_LIMIT_MS + 200
    outputs = [e for e in driver.events if e["type"] == "session.output_transcript.delta"]
    late = [e for e in outputs if e["elapsed_ms"] >= 39_000]
    assert len(outputs) > 10
    assert late  # translation keeps pace with the speech


# --- order, late results, failures -------------------------------------------------------------------


def test_outputs_leave_in_piece_order_whatever_order_engines_finish_in() -> None:
    _, driver = speech_session(hold=(TranslateText,))
    driver.append(np.concatenate([quiet(200), tone(3200), quiet(600)]))
    first, second = driver.held
    driver.events.clear()
    assert [e for e in driver.release(second) if e["type"] != "session.input_transcript.delta"] == []
    out = driver.release(first)
    assert [(e["type"], e.get("delta", "")[:12]) for e in out] == [
        ("session.output_transcript.delta", "[es] THE MEE"),
        ("session.output_transcript.delta", " [es] SO PLE"),
        ("session.output_audio.delta", audio_delta("[es] THE MEETING MOVED TO THURSDAY,", 0)["delta"][:12]),
        ("session.output_audio.delta", audio_delta(" [es] SO PLEASE", 0)["delta"][:12]),
    ]


def test_late_results_are_dropped_by_job_id() -> None:
    _, driver = speech_session(hold=(Transcribe,))
    driver.append(np.concatenate([quiet(200), tone(1000)]))
    partial = driver.held[0]
    driver.append(quiet(600))  # the pause ends the utterance: the partial is cancelled
    assert CancelJob(partial.job_id) in driver.commands
    assert driver.result(TranscriptReady(partial.job_id, Transcript("The meeting moved"))) == []
    assert driver.result(TextTranslated("job_404", "ghost")) == []
    assert driver.result(AudioChunk("job_404", np.ones(240, np.float32), 24_000)) == []
    assert driver.result(SynthesisDone("job_404")) == []
    assert driver.result(JobFailed("job_404", "engine_error", "boom")) == []


def test_an_engine_failure_is_reported_and_the_session_goes_on() -> None:
    _, driver = speech_session(hold=(TranslateText,))
    driver.append(np.concatenate([quiet(200), tone(3200), quiet(600)]))
    first, second = driver.held
    driver.events.clear()
    failed = driver.result(JobFailed(first.job_id, "translation_failed", "Apertium exited with 1"))
    assert failed == [
        {
            "type": "error",
            "error": {
                "type": "server_error",
                "code": "translation_failed",
                "message": "Apertium exited with 1",
                "param": None,
                "event_id": None,
            },
        }
    ]
    out = driver.release(second)
    assert [e["type"] for e in out] == ["session.output_transcript.delta", "session.output_audio.delta"]
    assert out[0]["delta"] == "[es] SO PLEASE SEND THE REPORT BEFORE NOON."


def test_speech_speeds_up_while_the_listener_falls_behind() -> None:
    _, driver = speech_session(tts=ToneSynthesizer())  # 60 ms of speech per character: too slow
    for _ in range(8):
        driver.append(np.concatenate([quiet(200), tone(3200), quiet(400)]))
    speeds = [c.speed for c in driver.commands if isinstance(c, Synthesize)]
    assert speeds[:2] == [1.0, 1.0]
    assert max(speeds) > 1.2
    assert max(speeds) <= 1.35


# --- close -------------------------------------------------------------------------------------------


def test_close_flushes_pending_input_then_closes() -> None:
    session, driver = speech_session()
    # speech right up to the close, and a last append shorter than a frame
    driver.append(np.concatenate([quiet(200), tone(3100)]))
    assert session.elapsed_ms == 3200
    driver.events.clear()
    out = driver.send({"type": "session.close", "event_id": "close_1"})
    rest = "[es] THE REPORT BEFORE NOON."
    assert session.elapsed_ms == 3400
    assert out == [
        {"type": "session.input_transcript.delta", "delta": " report before noon.", "elapsed_ms": 3400},
        {"type": "session.output_transcript.delta", "delta": " " + rest, "elapsed_ms": 3400},
        audio_delta(rest, 3400),
        {"type": "session.closed"},
    ]
    assert driver.commands[-1] == CloseConnection(1000, "")
    assert [c.final for c in driver.commands if isinstance(c, Transcribe)][-1] is True


def test_close_waits_for_pending_output_and_refuses_more_input() -> None:
    session, driver = speech_session(hold=(Synthesize,))
    driver.append(np.concatenate([quiet(200), tone(3200), quiet(600)]))
    driver.events.clear()
    assert driver.send({"type": "session.close"}) == []
    assert session.closing
    assert not session.closed
    late = driver.send({"type": "session.input_audio_buffer.append", "event_id": "late", "audio": "AAAA"})
    assert late == [
        error(
            "session_closing",
            "The session is closing: no input is accepted after 'session.close'.",
            None,
            "late",
        )
    ]
    # A microphone that streams on (a call's page) is told once, not once per chunk.
    assert driver.send({"type": "session.input_audio_buffer.append", "event_id": "later", "audio": "AAAA"}) == []
    assert driver.send({"type": "session.close"}) == []  # a second close changes nothing
    (synth,) = driver.held
    out = driver.release(synth)
    assert [e["type"] for e in out] == ["session.output_audio.delta"]
    out = driver.release(driver.held[0])
    assert [e["type"] for e in out] == ["session.output_audio.delta", "session.closed"]
    assert driver.commands[-1] == CloseConnection(1000, "")


def test_close_of_an_idle_session_closes_at_once() -> None:
    _, driver = make()
    driver.events.clear()
    assert driver.send({"type": "session.close"}) == [{"type": "session.closed"}]
    assert driver.commands[-1] == CloseConnection(1000, "")


# --- noise reduction ---------------------------------------------------------------------------------


class RecordingNoise:
    sample_rate_hz = 16_000

    def __init__(self) -> None:
        self.streams: list[tuple[str, float]] = []
        self.samples = 0

    def new_stream(self, kind: Any, strength: float) -> RecordingNoise:
        self.streams.append((kind, strength))
        return self

    def process(self, samples: np.ndarray) -> np.ndarray:
        self.samples += samples.size
        return samples * 0  # "removes" everything: VAD and ASR must see the denoised audio


def test_noise_reduction_runs_before_vad_and_asr() -> None:
    noise = RecordingNoise()
    session = TranslationSession(info(), vad=EnergyVad(), noise=noise, ids=Ids(deterministic=True))
    driver = Driver(session)
    driver.send(
        {
            "type": "session.update",
            "session": {"audio": {"input": {"noise_reduction": {"type": "far_field"}}}},
        }
    )
    driver.append(np.concatenate([quiet(200), tone(2000), quiet(600)]))
    assert noise.streams == [("far_field", 1.0)]
    assert abs(noise.samples - 2800 * 16) < 320  # all of it (less the resampler's delay)
    assert not [c for c in driver.commands if isinstance(c, Transcribe)]  # nothing left to hear


# --- where pieces are cut ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "english", "eager", "cut"),
    [
        ("Good morning", True, True, 0),  # too short, no boundary yet
        ("Good morning, how", True, False, 0),  # a comma after two words is not a clause of three
        ("The meeting moved to Thursday, so", True, False, 5),  # clause punctuation
        ("I think we should go because it", True, False, 5),  # before a clause opener
        ("The quick brown fox jumps over the lazy", True, False, 0),  # no clause boundary yet
        ("The quick brown fox jumps over the lazy", True, True, 6),  # eager: before a determiner
        ("The fox jumps over", True, True, 0),  # eager, but no boundary and under the word cap
        ("one two three four five six seven eight", True, True, 8),  # eager: the word cap
        ("one two three four five six seven of", True, True, 7),  # never end on a preposition
        ("uno dos tres cuatro cinco seis siete ocho", False, True, 8),
        ("uno dos tres cuatro cinco seis siete ocho", False, False, 0),
        ("uno dos tres, cuatro", False, False, 3),  # punctuation in any language
    ],
)
def test_piece_cut(text: str, english: bool, eager: bool, cut: int) -> None:
    assert piece_cut(text.split(), english=english, eager=eager) == cut
