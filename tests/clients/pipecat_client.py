"""A pipecat bot against openrealtime: run in ``.venv-clients`` (pipecat-ai[openai]), never in ``.venv``.

    python tests/clients/pipecat_client.py ws://127.0.0.1:PORT/v1/realtime [--speech WAV]

Pipecat's own ``OpenAIRealtimeLLMService`` in the pipeline its realtime example builds (user
aggregator, the service, an output, the assistant aggregator), with a collector in place of a
transport: it feeds the service 24 kHz ``InputAudioRawFrame``s in 20 ms chunks at twice real time
(a tone, or the ``--speech`` WAV), and keeps what comes out. Three user turns, one after another:

1. a plain spoken turn (the server transcribes it and answers with text and audio),
2. a turn whose answer is a call of ``get_weather``, a function registered with pipecat; pipecat runs
   it, sends its result, and asks for the answer built on it,
3. a turn answered at length, talked over as soon as the answer's audio starts: the server's VAD
   cancels the answer, and pipecat truncates what it had played.

It prints one JSON summary on its last line of stdout (the test asserts on it). Pipecat's parser of
server events is wrapped, not replaced, so that every event it read, and any it could not, is counted.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import json
import sys
import time
import wave
from typing import Any

import numpy as np
from pipecat.adapters.schemas.function_schema import FunctionSchema
from pipecat.adapters.schemas.tools_schema import ToolsSchema
from pipecat.frames.frames import (
    BotStoppedSpeakingFrame,
    ErrorFrame,
    Frame,
    InputAudioRawFrame,
    LLMRunFrame,
    LLMTextFrame,
    TTSAudioRawFrame,
    TTSStoppedFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.runner import PipelineRunner
from pipecat.pipeline.task import PipelineParams, PipelineTask
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import LLMContextAggregatorPair
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.services.llm_service import FunctionCallParams
from pipecat.services.openai.realtime import events
from pipecat.services.openai.realtime.llm import OpenAIRealtimeLLMService

RATE = 24_000
CHUNK = RATE // 50  # 20 ms
PACE = 2.0  # audio is fed this many times faster than real time
TOOL_RESULT = {"city": "Paris", "forecast": "sunny and 21 degrees"}

server_events: list[str] = []
responses: list[dict[str, Any]] = []  # each response.done's status and reason
unparsed: list[str] = []
client_events: list[dict[str, Any]] = []


def wrap_parser() -> None:
    """Count what pipecat's own parser reads; what it cannot read is recorded, then raised as before."""
    parse = events.parse_server_event

    def counted(message: str) -> Any:
        try:
            event = parse(message)
        except Exception as error:
            unparsed.append(str(error)[:2000])
            raise
        data = json.loads(message)
        server_events.append(data["type"])
        if data["type"] == "response.done":
            details = data["response"].get("status_details") or {}
            items = [item["id"] for item in data["response"].get("output") or []]
            responses.append({"status": data["response"]["status"], "reason": details.get("reason"), "items": items})
        if event is not None and event.type == "error":
            unparsed.append("error event: " + message[:2000])
        return event

    events.parse_server_event = counted


class Collector(FrameProcessor):
    """Keeps the frames that pass (both directions), in order, and passes them on.

    As the output, it stands in for a transport that plays audio instantly: when the bot's audio
    ends (``TTSStoppedFrame``) it says so upstream (``BotStoppedSpeakingFrame``), as pipecat's output
    transports do when playback ends, so that pipecat truncates only an answer still being played.
    """

    def __init__(self, name: str, *, plays: bool = False) -> None:
        super().__init__(name=name)
        self.plays = plays
        self.frames: list[tuple[float, Frame]] = []

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        self.frames.append((time.monotonic(), frame))
        await self.push_frame(frame, direction)
        if self.plays and isinstance(frame, TTSStoppedFrame):
            await self.push_frame(BotStoppedSpeakingFrame(), FrameDirection.UPSTREAM)

    def count(self, kind: type) -> int:
        return sum(isinstance(frame, kind) for _, frame in self.frames)


def tone(seconds: float) -> bytes:
    t = np.arange(int(RATE * seconds), dtype=np.float32) / RATE
    return (0.1 * np.sin(2 * np.pi * 300.0 * t) * 32767).astype("<i2").tobytes()


def silence(seconds: float) -> bytes:
    return bytes(2 * int(RATE * seconds))


def read_speech(path: str) -> bytes:
    with wave.open(path, "rb") as wav:
        if wav.getnchannels() != 1 or wav.getsampwidth() != 2:
            raise SystemExit(f"{path}: mono PCM16 only")
        rate, pcm = wav.getframerate(), wav.readframes(wav.getnframes())
    if rate == RATE:
        return pcm
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32)
    positions = np.arange(int(len(samples) * RATE / rate)) * rate / RATE
    return np.interp(positions, np.arange(len(samples)), samples).astype("<i2").tobytes()


async def feed(task: PipelineTask, audio: bytes) -> None:
    for start in range(0, len(audio), 2 * CHUNK):
        await task.queue_frame(
            InputAudioRawFrame(audio=audio[start : start + 2 * CHUNK], sample_rate=RATE, num_channels=1)
        )
        await asyncio.sleep(CHUNK / RATE / PACE)


async def until(condition: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def main() -> dict[str, Any]:
    parser = argparse.ArgumentParser()
    parser.add_argument("url", help="the server's realtime endpoint, ws://host:port/v1/realtime")
    parser.add_argument("--speech", help="a mono PCM16 WAV to speak on every turn (default: a tone)")
    parser.add_argument("--spoken-turn-only", action="store_true", help="stop after step 1 (no tools)")
    parser.add_argument("--timeout-s", type=float, default=20.0, help="for each step")
    args = parser.parse_args()
    speech = read_speech(args.speech) if args.speech else tone(1.5)
    wrap_parser()

    llm = OpenAIRealtimeLLMService(
        api_key="sk-pipecat-test",
        base_url=args.url,
        settings=OpenAIRealtimeLLMService.Settings(
            model="gpt-realtime",
            system_instruction="You are a helpful assistant. Be brief.",
            session_properties=events.SessionProperties(
                audio=events.AudioConfiguration(
                    input=events.AudioInput(
                        transcription=events.InputAudioTranscription(),  # pipecat's default model
                        turn_detection=events.TurnDetection(type="server_vad", silence_duration_ms=500),
                    )
                )
            ),
        ),
    )
    calls: list[dict[str, Any]] = []

    async def get_weather(params: FunctionCallParams) -> None:
        calls.append(dict(params.arguments))
        await params.result_callback(TOOL_RESULT)

    llm.register_function("get_weather", get_weather)

    original_send = llm.send_client_event

    async def send_client_event(event: events.ClientEvent) -> None:
        client_events.append(event.model_dump(exclude_none=True, exclude={"audio"}))
        await original_send(event)

    llm.send_client_event = send_client_event  # type: ignore[method-assign]

    weather = FunctionSchema(
        name="get_weather",
        description="The weather in a city.",
        properties={"city": {"type": "string"}},
        required=["city"],
    )
    tools = ToolsSchema(standard_tools=[] if args.spoken_turn_only else [weather])
    context = LLMContext([{"role": "user", "content": "Say hello."}], tools=tools)
    aggregators = LLMContextAggregatorPair(context)
    upstream = Collector("upstream")
    output = Collector("output", plays=True)
    pipeline = Pipeline([upstream, aggregators.user(), llm, output, aggregators.assistant()])
    task = PipelineTask(
        pipeline,
        params=PipelineParams(audio_in_sample_rate=RATE, audio_out_sample_rate=RATE),
        idle_timeout_secs=None,
    )
    runner = PipelineRunner(handle_sigint=False)
    run = asyncio.create_task(runner.run(task))
    step = args.timeout_s

    def done_count() -> int:
        return server_events.count("response.done")

    def fail_fast() -> None:
        if unparsed or run.done():
            raise RuntimeError(f"pipecat stopped: {unparsed or run}")

    async def wait(condition: Any, what: str) -> None:
        await until(lambda: fail_fast() or condition(), step, what)

    summary: dict[str, Any] = {"pipecat": importlib.metadata.version("pipecat-ai")}
    try:
        # The greeting the example asks for, once session.updated has come back.
        summary["failure"] = None
        await task.queue_frame(LLMRunFrame())
        await wait(lambda: done_count() >= 1, "the greeting's response.done")
        summary["greeting_done"] = done_count()

        # 1. A spoken turn.
        before = done_count()
        await feed(task, silence(0.3) + speech + silence(1.0))
        await wait(lambda: done_count() >= before + 1, "the answer to the spoken turn")

        if args.spoken_turn_only:
            return summary

        # 2. A tool call round trip: the function runs, its result goes back, an answer follows.
        before = done_count()
        await feed(task, silence(0.3) + speech + silence(1.0))
        await wait(lambda: done_count() >= before + 2, "the call's response and the answer after it")

        # 3. Talked over: speech as soon as the long answer's audio starts.
        before_audio = output.count(TTSAudioRawFrame)
        before = done_count()
        await feed(task, silence(0.3) + speech + silence(1.0))
        await wait(lambda: output.count(TTSAudioRawFrame) > before_audio, "the long answer's audio")
        await feed(task, speech + silence(1.0))
        await wait(lambda: done_count() >= before + 2, "the cancelled answer and the one after it")
        await asyncio.sleep(0.5)
    except Exception as error:  # reported in the summary, for the test to show
        summary["failure"] = f"{type(error).__name__}: {error}"
    finally:
        summary.update(
            server_events=server_events,
            responses=responses,
            unparsed=unparsed,
            client_events=[e["type"] for e in client_events],
            truncates=[e for e in client_events if e["type"] == "conversation.item.truncate"],
            function_outputs=[
                e["item"]
                for e in client_events
                if e["type"] == "conversation.item.create" and e["item"].get("type") == "function_call_output"
            ],
            calls=calls,
            text="".join(f.text for _, f in output.frames if isinstance(f, LLMTextFrame)),
            audio_frames=output.count(TTSAudioRawFrame),
            tts_stopped=output.count(TTSStoppedFrame),
            errors=[str(f.error) for _, f in upstream.frames + output.frames if isinstance(f, ErrorFrame)],
            context=[
                {k: v for k, v in m.items() if k in ("role", "content", "tool_calls", "tool_call_id")}
                for m in context.get_messages()
                if isinstance(m, dict)
            ],
        )
        await task.cancel()
        try:
            await asyncio.wait_for(run, 10)
        except Exception as error:
            summary["failure"] = summary.get("failure") or f"pipeline: {type(error).__name__}: {error}"
    return summary


if __name__ == "__main__":
    result = asyncio.run(main())
    sys.stdout.write("\n" + json.dumps(result, default=str) + "\n")
