"""The process-wide engine set: one instance of each model, its worker thread, and job dispatch."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from openrealtime.audio.types import Samples
from openrealtime.contracts import (
    MAX_SPEED,
    MIN_SPEED,
    ChatChunk,
    ChatModel,
    EndOfTurnModel,
    EndOfTurnTextModel,
    FirstWordsWriter,
    NoiseSuppressor,
    PromptWarmer,
    Synthesizer,
    TranscribeOptions,
    Transcriber,
    Transcript,
    Translator,
    VadModel,
)
from openrealtime.exceptions import EngineError
from openrealtime.runtime.bulk_asr import BulkAsr
from openrealtime.runtime.decoded_windows import DecodedWindows
from openrealtime.runtime.mcp_client import McpClient
from openrealtime.runtime.scheduler import (
    PRIORITY_FINAL,
    PRIORITY_FIRST_CAPTION,
    PRIORITY_PARTIAL,
    FairExecutor,
    FirstWords,
    ModelWorker,
    bulk_work,
    current_session,
    wait_future,
)
from openrealtime.runtime.threads import iterate_in_thread
from openrealtime.session.commands import (
    END_OF_TURN_TEXT_UNAVAILABLE,
    END_OF_TURN_UNAVAILABLE,
    AudioChunk,
    Generate,
    LlmChunk,
    PredictTurnEnd,
    ScoreTurnWords,
    SynthesisDone,
    Synthesize,
    TextTranslated,
    Transcribe,
    TranscriptReady,
    TranslateText,
    TurnEndPredicted,
    WarmAnswer,
    WarmTurnWords,
)
from openrealtime.session.mcp_commands import CallMcpTool, ListMcpTools

log = logging.getLogger(__name__)

STREAM_THREADS = 8
# End-of-turn decisions (40-60 ms each, one core) get threads of their own: queued behind an LLM or TTS
# stream, a decision would wait for it, and every millisecond of it is a millisecond of the user's wait.
END_OF_TURN_THREADS = 2
# The text signal's question waits while an answer writes its first clause, as long as the session lets
# it (``ScoreTurnWords.hold_ms``: its veto must still come in time). Both are asked the moment the
# pause's words are known; on two cores the question's llama.cpp context stalled the answer's (their
# threads meet at a barrier after every layer): the answer's first clause came ~20 ms later.
ANSWER_APPEARS_S = 0.005  # ... the answer begun on the same words has this long to reach the LLM
YIELD_POLL_S = 0.002
# The stage that reports one end-of-turn decision's CPU time (its thread's: the model runs on one), as
# ``/metrics`` shows it: what semantic_vad costs per decision and per session (issue 13).
END_OF_TURN_CPU_STAGE = "end_of_turn_cpu"
END_OF_TURN_TEXT_CPU_STAGE = "end_of_turn_text_cpu"  # the same for the LLM's text signal (session/eou_text.py)
# Audio longer than this is decoded as windows of about WINDOW_S, each a job of its own, so one long turn
# never holds the recogniser for more than one window at a time. 26 s is what Whisper decodes in one pass
# (engines/whisper.py: 30 s less a silence margin); past it faster-whisper's own long-form loop is 8 times
# slower (a 5-minute turn in 28 s windows: 63 s, in 24 s windows: 7.8 s, on two cores).
LONG_AUDIO_S = 26.0
WINDOW_S = 24.0
# A window is prompted with the last words of the one before it. The whole previous text made tiny.en
# drop words (611 of 747 in a 5-minute turn); its last 12 words, none (756; no prompt: 721).
PROMPT_WORDS = 12
CUT_SEARCH_S = 2.0  # a window ends at the quietest CUT_FRAME_S of its last CUT_SEARCH_S
CUT_FRAME_S = 0.1
DEFAULT_VOICE = "alloy"  # OpenAI's default voice name; each TTS engine maps it to one of its own
# A later clause of a speech (made ahead of its listener: runtime/pacing.py) waits at most this long
# for someone's first words or final transcript to be done before it takes a voice and a core.
HOLD_BACK_S = 0.3

# OpenAI transcription model names that clients send; all map to the configured ASR engine.
OPENAI_TRANSCRIPTION_MODELS = frozenset(
    {
        "whisper-1",
        "gpt-4o-transcribe",
        "gpt-4o-mini-transcribe",
        "gpt-4o-mini-transcribe-2025-03-20",
        "gpt-4o-mini-transcribe-2025-12-15",
        "gpt-4o-transcribe-latest",
        "gpt-4o-transcribe-diarize",
        "gpt-transcribe",
        "gpt-live-transcribe",
        "gpt-realtime-whisper",
    }
)


@dataclass
class EngineSet:
    """Engines shared by every session of one server process."""

    vad: VadModel
    transcriber: Transcriber
    transcriber_name: str
    noise: NoiseSuppressor | None = None
    # semantic_vad's end-of-turn model; without one, its sessions fall back to their word rule.
    end_of_turn: EndOfTurnModel | None = None
    # Its text signal (the LLM's P(end of message) after the pause's words); absent with a remote LLM.
    end_of_turn_text: EndOfTurnTextModel | None = None
    chat: ChatModel | None = None
    # Called with (stage, seconds) for asr, llm_first_token, tts_first_audio, end_of_turn and its CPU
    # time, END_OF_TURN_CPU_STAGE (``/metrics``).
    on_stage: Callable[[str, float], None] | None = None
    # TTS engines by language code; "*" is the fallback for every other language.
    synthesizers: dict[str, Synthesizer] = field(default_factory=dict)
    # Text translators by preference (Apertium before an LLM); the first that covers a pair serves it.
    translators: list[Translator] = field(default_factory=list)
    asr_worker: ModelWorker[Transcript] = field(default_factory=lambda: ModelWorker("asr"))
    # Decodes of audio sent faster than real time, on a replica at the lowest priority (bulk_asr.py);
    # without one they take the recogniser's bulk lane (never its last free thread).
    bulk_asr: BulkAsr | None = None
    # Streaming engine calls (LLM, TTS, MT) run here, sessions served in turn (runtime/scheduler.py);
    # each engine serialises its own model access.
    stream_pool: Executor = field(default_factory=lambda: FairExecutor("engine", threads=STREAM_THREADS))
    # What a listener waits for now (final decodes, first clauses): later work holds back for it.
    first_words: FirstWords = field(default_factory=FirstWords)
    # Long turns' windows already decoded: a turn's next final decodes only its last window.
    decoded_windows: DecodedWindows = field(default_factory=DecodedWindows)
    turn_pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(END_OF_TURN_THREADS, thread_name_prefix="end-of-turn")
    )
    # Remote MCP servers' tools (network I/O on the event loop, under its timeout).
    mcp: McpClient = field(default_factory=McpClient)
    # Called by close: what the engines hold beyond their threads (remote engines' connection pools).
    closers: list[Callable[[], None]] = field(default_factory=list)

    def accepts_transcription_model(self, name: str) -> bool:
        return name in OPENAI_TRANSCRIPTION_MODELS or name == self.transcriber_name

    def run_job(self, command: object) -> AsyncIterator[object] | None:
        """The results of one command, as they come; ``None`` for a command with no engine work."""
        handler = self._handlers().get(type(command))
        if handler is None:
            log.warning("no engine for command %r", type(command).__name__)
            return None
        return handler(command)

    def _handlers(self) -> dict[type, Callable[[Any], AsyncIterator[object]]]:
        return {
            Transcribe: self._transcribe,
            Synthesize: self._synthesize,
            Generate: self._generate,
            WarmAnswer: self._warm_answer,
            WarmTurnWords: self._warm_turn_words,
            TranslateText: self._translate,
            PredictTurnEnd: self._predict_turn_end,
            ScoreTurnWords: self._score_turn_words,
            ListMcpTools: self.mcp.list_tools,
            CallMcpTool: self.mcp.call_tool,
        }

    async def _predict_turn_end(self, command: PredictTurnEnd) -> AsyncIterator[object]:
        model = self.end_of_turn
        if model is None:
            raise EngineError("no end-of-turn model is loaded on this server", code=END_OF_TURN_UNAVAILABLE)

        def call() -> TurnEndPredicted:
            started, started_cpu = time.perf_counter(), time.thread_time()
            probability = model.completion_probability(command.audio)
            self._stage("end_of_turn", time.perf_counter() - started)
            self._stage(END_OF_TURN_CPU_STAGE, time.thread_time() - started_cpu)  # its one thread's CPU
            return TurnEndPredicted(command.job_id, probability)

        yield await asyncio.get_running_loop().run_in_executor(self.turn_pool, call)

    async def _score_turn_words(self, command: ScoreTurnWords) -> AsyncIterator[object]:
        model = self.end_of_turn_text
        if model is None:
            raise EngineError("this server's LLM gives no end-of-turn signal", code=END_OF_TURN_TEXT_UNAVAILABLE)

        chat = self.chat

        def call() -> TurnEndPredicted:
            if isinstance(chat, FirstWordsWriter):
                let_first_words_go(chat, command.hold_ms / 1000)
            started, started_cpu = time.perf_counter(), time.thread_time()
            probability = model.end_probability(command.words)
            self._stage("end_of_turn_text", time.perf_counter() - started)
            self._stage(END_OF_TURN_TEXT_CPU_STAGE, time.thread_time() - started_cpu)
            return TurnEndPredicted(command.job_id, probability)

        yield await asyncio.get_running_loop().run_in_executor(self.turn_pool, call)

    def translator_for(self, source: str, target: str) -> Translator | None:
        """The first configured text translator that covers ``source`` -> ``target``."""
        return next((t for t in self.translators if t.supports(source, target)), None)

    async def _translate(self, command: TranslateText) -> AsyncIterator[object]:
        translator = self.translator_for(command.source, command.target)
        if translator is None:
            raise EngineError(f"no translator for {command.source}->{command.target}", code="unsupported_language_pair")

        def call() -> object:
            text = translator.translate(command.text, source=command.source, target=command.target)
            return TextTranslated(command.job_id, text)

        yield await asyncio.get_running_loop().run_in_executor(self.stream_pool, call)

    async def _synthesize(self, command: Synthesize) -> AsyncIterator[object]:
        synthesizer = self.synthesizer_for(command.language)
        rate = synthesizer.sample_rate_hz
        speed = min(MAX_SPEED, max(MIN_SPEED, command.speed))
        key = current_session.get()

        def chunks(stop: threading.Event) -> Iterator[Samples]:
            voice = command.voice or DEFAULT_VOICE
            speech = synthesizer.synthesize(command.text, voice=voice, stop=stop, speed=speed)
            if command.at_ms > 0:  # a later clause, seconds ahead of its listener
                self.first_words.hold_back(HOLD_BACK_S)
                return iter(speech)
            return self._urgently(speech, key)  # the first clause: someone is waiting for it

        started = time.perf_counter()
        first = True
        async for samples in iterate_in_thread(chunks, self.stream_pool):
            if first:
                self._stage("tts_first_audio", time.perf_counter() - started)
                first = False
            yield AudioChunk(command.job_id, samples, rate)
        yield SynthesisDone(command.job_id)

    def _urgently(self, items: Iterable[Samples], key: str) -> Iterator[Samples]:
        with self.first_words.urgent(key):
            yield from items

    def _stage(self, stage: str, seconds: float) -> None:
        if self.on_stage is not None:
            self.on_stage(stage, seconds)

    async def _generate(self, command: Generate) -> AsyncIterator[object]:
        if self.chat is None:
            raise EngineError("no LLM is configured on this server", code="llm_not_configured")
        chat = self.chat
        # While this session's first clause is being voiced, the rest of its answer (a second away
        # from its listener) may wait: on two cores the LLM's next tokens and the voice slowed each
        # other, and the first audio came later (session 23's trace).
        request = dataclasses.replace(
            command.request, hold_while=functools.partial(self.first_words.busy, current_session.get())
        )

        def chunks(stop: threading.Event) -> Iterator[ChatChunk]:
            return iter(chat.chat(request, stop))

        started = time.perf_counter()
        first = True
        async for chunk in iterate_in_thread(chunks, self.stream_pool):
            if first:
                self._stage("llm_first_token", time.perf_counter() - started)
                first = False
            yield LlmChunk(command.job_id, chunk)

    async def _warm_answer(self, command: WarmAnswer) -> AsyncIterator[object]:
        """Hand the warming to the LLM (rendering the prompt takes a few ms: not on the loop); no result."""
        chat = self.chat
        if isinstance(chat, PromptWarmer):
            await asyncio.get_running_loop().run_in_executor(self.stream_pool, chat.warm, command.request)
        return
        yield  # an async generator with no results

    async def _warm_turn_words(self, command: WarmTurnWords) -> AsyncIterator[object]:
        """The text signal's head start (on the streaming pool: the end-of-turn threads stay free for
        decisions); no result."""
        model = self.end_of_turn_text
        if model is not None:
            await asyncio.get_running_loop().run_in_executor(self.stream_pool, model.warm, command.words)
        return
        yield  # an async generator with no results

    def synthesizer_for(self, language: str) -> Synthesizer:
        """The TTS engine for ``language``: the default voice for English, else a multilingual one."""
        synthesizer = self.synthesizers.get(language) or self.synthesizers.get("*")
        if synthesizer is None:
            raise EngineError(f"no text-to-speech voice for language {language!r}", code="tts_unavailable")
        return synthesizer

    async def _transcribe(self, command: Transcribe) -> AsyncIterator[object]:
        """One decode job; audio over ``LONG_AUDIO_S`` is decoded as a sequence of window jobs.

        Each window is queued on its own (under the command's id, so ``cancel_job`` drops the one
        waiting), so the worker serves other sessions between two windows of a long turn (issue 10
        defect 5: two 327 s commits held the recogniser for 72 s). Each window is prompted with the
        text of the one before it; a cancelled task stops at the window it waits for.
        """
        transcriber = self.transcriber
        priority = transcribe_priority(command)
        key = current_session.get()
        rate = transcriber.sample_rate_hz
        stage = "asr_final" if command.final else "asr_partial"
        bulk = self.bulk_asr if bulk_work.get() else None  # audio faster than real time: its own replica
        worker = bulk.worker if bulk is not None else self.asr_worker

        def decode(audio: Samples, options: TranscribeOptions) -> Transcript:
            started = time.perf_counter()
            if bulk is not None:
                transcript = bulk.transcriber().transcribe(audio, options)
            elif command.final:  # someone waits for this turn's text (and its answer)
                with self.first_words.urgent():
                    transcript = transcriber.transcribe(audio, options)
            else:
                transcript = transcriber.transcribe(audio, options)
            self._stage(stage, time.perf_counter() - started)
            return transcript

        options = command.options
        pieces: list[tuple[float, Transcript]] = []
        windows = audio_windows(command.audio, rate)
        for start, end in windows:
            kept = self.decoded_windows.key(command.audio[start:end], options) if len(windows) > 1 else None
            transcript = self.decoded_windows.get(kept) if kept is not None else None
            if transcript is None:
                window = functools.partial(decode, command.audio[start:end], options)
                transcript = await wait_future(worker.submit(command.job_id, priority, window, key=key))
                if kept is not None:
                    self.decoded_windows.put(kept, transcript)
            pieces.append((start / rate, transcript))
            # The next window goes on from this one's words (after the client's own prompt), in its language.
            last_words = " ".join(transcript.text.split()[-PROMPT_WORDS:])
            prompt = " ".join(p for p in (command.options.prompt, last_words) if p) or None
            language = options.language or (transcript.language if transcriber.multilingual else None)
            options = dataclasses.replace(options, prompt=prompt, language=language)
        yield TranscriptReady(command.job_id, stitch(pieces))

    def cancel_job(self, job_id: str) -> None:
        self.asr_worker.cancel(job_id)
        if self.bulk_asr is not None:
            self.bulk_asr.worker.cancel(job_id)

    def close(self) -> None:
        for close in self.closers:
            close()
        self.asr_worker.close()
        if self.bulk_asr is not None:
            self.bulk_asr.close()
        self.stream_pool.shutdown(wait=False, cancel_futures=True)
        self.turn_pool.shutdown(wait=False, cancel_futures=True)


def audio_windows(audio: Samples, rate_hz: int) -> list[tuple[int, int]]:
    """``audio`` as decode windows ``[start, end)``: the whole of it up to ``LONG_AUDIO_S``, else
    windows of about ``WINDOW_S``, each cut at the quietest ``CUT_FRAME_S`` of its last ``CUT_SEARCH_S``
    (a pause, if there is one, so a word is rarely split), the last one at most ``LONG_AUDIO_S``."""
    total = len(audio)
    windows: list[tuple[int, int]] = []
    start = 0
    frame = round(CUT_FRAME_S * rate_hz)
    frames = round(CUT_SEARCH_S / CUT_FRAME_S)
    while total - start > LONG_AUDIO_S * rate_hz:
        search = start + round(WINDOW_S * rate_hz) - frames * frame
        energy = np.square(audio[search : search + frames * frame], dtype=np.float64).reshape(frames, frame).sum(axis=1)
        end = search + int(np.argmin(energy)) * frame + frame // 2
        windows.append((start, end))
        start = end
    windows.append((start, total))
    return windows


def stitch(pieces: Sequence[tuple[float, Transcript]]) -> Transcript:
    """The transcripts of consecutive windows, each with its start in seconds, as one: segments and
    their words moved by the window's start, tokens kept as they are."""
    if len(pieces) == 1:
        return pieces[0][1]
    text = " ".join(t.text.strip() for _, t in pieces if t.text.strip())
    segments = tuple(
        dataclasses.replace(
            segment,
            start_s=segment.start_s + offset,
            end_s=segment.end_s + offset,
            words=tuple(
                dataclasses.replace(word, start_s=word.start_s + offset, end_s=word.end_s + offset)
                for word in segment.words
            ),
        )
        for offset, transcript in pieces
        for segment in transcript.segments
    )
    return Transcript(text, segments, next((t.language for _, t in pieces if t.language), None))


def transcribe_priority(command: Transcribe) -> int:
    """The ASR queue tier of ``command`` (see :mod:`openrealtime.runtime.scheduler`)."""
    if command.final:
        return PRIORITY_FINAL
    return PRIORITY_FIRST_CAPTION if command.first_caption else PRIORITY_PARTIAL


def let_first_words_go(chat: FirstWordsWriter, limit_s: float) -> None:
    """Wait while ``chat`` has an answer writing its first clause, at most ``limit_s``; the answer
    begun on the same words is given ``ANSWER_APPEARS_S`` to reach it."""
    started = time.monotonic()
    seen = False
    while (waited := time.monotonic() - started) < limit_s:
        if chat.writing_first_words():
            seen = True
        elif seen or waited >= ANSWER_APPEARS_S:
            return
        time.sleep(YIELD_POLL_S)
