"""``openrealtime serve | transcribe | demo | bench``."""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from openrealtime.bench.command import add_bench_parser
from openrealtime.client.captions import CaptionBoard

DEFAULT_URL = "ws://127.0.0.1:8000/v1/realtime?intent=transcription"
DEFAULT_ASSISTANT_URL = "ws://127.0.0.1:8000/v1/realtime?model=gpt-realtime"
DEFAULT_TRANSLATE_URL = "ws://127.0.0.1:8000/v1/realtime/translations?model=gpt-realtime-translate"
TRANSLATION_CHUNK_MS = 200  # the engine frame of translation sessions
CHUNK_MS = 100
DEMO_SILENCE_MS = 500  # captions by sentence rather than by comma
WEB_APP_URL = "http://127.0.0.1:8000/"  # where serve's defaults put the browser app
DOORS = "the server's URL; give it again for more front doors, tried in turn with backoff (docs/readiness.md)"


class _DoorUrls(argparse.Action):
    """``--url`` given more than once lists front doors of one service (client/failover.py): ``url``
    is the first given, ``urls`` every one; without the flag, ``url`` is the default and ``urls`` None."""

    def __call__(self, parser: Any, namespace: argparse.Namespace, values: Any, option: str | None = None) -> None:
        given = [*(getattr(namespace, "urls", None) or []), str(values)]
        namespace.urls, namespace.url = given, given[0]


def _doors(args: argparse.Namespace) -> list[str]:
    return list(getattr(args, "urls", None) or [args.url])  # no --url given: no ``urls`` at all


def _sample_path() -> Path:
    return Path(__file__).parent / "samples" / "demo.wav"


class LiveCaptions:
    """Prints captions: the turn being spoken is rewritten in place on a TTY, then fixed when final."""

    def __init__(self, stream: Any = sys.stdout) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self._printed_final: set[str] = set()

    def __call__(self, event: dict[str, Any], board: CaptionBoard) -> None:
        kind = event.get("type", "")
        if kind == "conversation.item.input_audio_transcription.delta" and self.tty:
            turn = board.turns[event["item_id"]]
            self.stream.write("\r\x1b[2K… " + turn.text[-150:])
            self.stream.flush()
        elif kind == "conversation.item.input_audio_transcription.completed":
            self._print_ready(board)

    def _print_ready(self, board: CaptionBoard) -> None:
        # Print final turns in turn order, holding back any whose predecessor is not final yet.
        for turn in board.ordered():
            if not turn.final:
                break
            if turn.item_id in self._printed_final:
                continue
            self._printed_final.add(turn.item_id)
            prefix = "\r\x1b[2K" if self.tty else ""
            self.stream.write(f"{prefix}» {turn.text}\n")
        self.stream.flush()


async def _transcribe(args: argparse.Namespace) -> int:
    from openrealtime.client.audio_io import file_chunks, microphone_chunks, read_wav
    from openrealtime.client.connection import RealtimeConnection
    from openrealtime.client.transcribe import transcribe_audio

    chunks = (
        microphone_chunks(chunk_ms=CHUNK_MS)
        if args.mic
        else file_chunks(read_wav(Path(args.file)), chunk_ms=CHUNK_MS, realtime=not args.fast)
    )
    key = args.api_key or os.environ.get("OPENAI_API_KEY") if "openai.com" in args.url else args.api_key
    async with await RealtimeConnection.connect(_doors(args), api_key=key) as conn:
        result = await transcribe_audio(
            conn,
            chunks,
            model=args.model,
            language=args.language,
            vad=not args.manual,
            silence_duration_ms=args.silence_ms,
            on_event=LiveCaptions(),
        )
    for error in result.errors:
        if error.get("code") != "input_audio_buffer_commit_empty":
            print(f"error: {error.get('message')}", file=sys.stderr)
    return 0


async def _demo(args: argparse.Namespace) -> int:
    from openrealtime.client.audio_io import file_chunks, read_wav
    from openrealtime.client.connection import RealtimeConnection
    from openrealtime.client.transcribe import transcribe_audio
    from openrealtime.server.embedded import running_server
    from openrealtime.server.settings import Settings

    print("openrealtime demo: starting the server with the offline models …", flush=True)
    async with running_server(Settings.load(port=0)) as base:
        print(f"server up at {base}; transcribing {_sample_path().name} at real-time pace:\n", flush=True)
        async with await RealtimeConnection.connect(f"{base}/v1/realtime?intent=transcription") as conn:
            result = await transcribe_audio(
                conn,
                file_chunks(read_wav(_sample_path()), chunk_ms=CHUNK_MS, realtime=not args.fast),
                silence_duration_ms=DEMO_SILENCE_MS,
                on_event=LiveCaptions(),
            )
        expected = (_sample_path().with_suffix(".txt")).read_text().strip()
        print(f"\nreference: {expected}")
        answer = await _demo_question(base, fast=args.fast)
        translated = await _demo_translation(base, fast=args.fast)
    print(
        "\nto talk with it yourself in a browser (assistant, live captions, translation):\n"
        "  openrealtime serve\n"
        f"  then open {WEB_APP_URL} (the microphone needs http://127.0.0.1, http://localhost or https)"
    )
    return 0 if result.transcripts and answer and translated else 1


DEMO_ANSWER_WAV = "demo-answer.wav"


async def _demo_question(base: str, *, fast: bool) -> list[str]:
    """The demo's second part: a spoken question to the voice assistant; the answer is saved."""
    from openrealtime.audio.codec import pcm16_to_float
    from openrealtime.client.assistant import Assistant, scripted_turn
    from openrealtime.client.assistant_config import AssistantOptions
    from openrealtime.client.audio_io import WIRE_RATE_HZ, read_wav, write_wav
    from openrealtime.client.history import ConversationHistory, TranscriptPrinter

    question = Path(__file__).parent / "samples" / "question.wav"
    print(f"\nasking the voice assistant the spoken question in {question.name}:\n", flush=True)
    history = ConversationHistory()
    options = AssistantOptions(url=f"{base}/v1/realtime?model=gpt-realtime", keep_audio=True)
    async with Assistant(options, history=history, on_event=TranscriptPrinter(history)) as assistant:
        turn = await scripted_turn(assistant, read_wav(question), realtime=not fast)
    out = Path(os.getcwd()) / DEMO_ANSWER_WAV
    write_wav(out, pcm16_to_float(turn.audio))
    print(f"\nsaved the spoken answer ({len(turn.audio) / 2 / WIRE_RATE_HZ:.1f} s) to {out}")
    return [text for text in turn.assistant if text]


DEMO_TRANSLATION_WAV = "demo-translation.wav"
DEMO_TARGET_LANGUAGE = "es"


async def _demo_translation(base: str, *, fast: bool) -> str:
    """The demo's third part: the sample translated into Spanish as it is spoken; the speech is saved."""
    from openrealtime.audio.codec import pcm16_to_float
    from openrealtime.client.audio_io import file_chunks, read_wav, write_wav
    from openrealtime.client.connection import RealtimeConnection
    from openrealtime.client.translate import SideBySideCaptions, translate_audio

    print(f"\ntranslating {_sample_path().name} into Spanish while it plays:\n", flush=True)
    captions = SideBySideCaptions()
    url = f"{base}/v1/realtime/translations?model=gpt-realtime-translate"
    async with await RealtimeConnection.connect(url) as conn:
        result = await translate_audio(
            conn,
            file_chunks(read_wav(_sample_path()), chunk_ms=TRANSLATION_CHUNK_MS, realtime=not fast),
            language=DEMO_TARGET_LANGUAGE,
            on_event=captions,
        )
    captions.flush()
    out = Path(os.getcwd()) / DEMO_TRANSLATION_WAV
    write_wav(out, pcm16_to_float(bytes(result.audio)), rate_hz=result.sample_rate_hz)
    seconds = len(result.audio) / 2 / result.sample_rate_hz
    print(f"\nsource:      {result.source.strip()}\ntranslation: {result.target.strip()}")
    print(f"saved the translated speech ({seconds:.1f} s) to {out}")
    return result.target.strip()


async def _translate(args: argparse.Namespace) -> int:
    import signal

    from openrealtime.audio.codec import pcm16_to_float
    from openrealtime.client.audio_io import file_chunks, microphone_chunks, read_wav, write_wav
    from openrealtime.client.connection import RealtimeConnection
    from openrealtime.client.playback import SpeakerPlayer
    from openrealtime.client.translate import SideBySideCaptions, translate_audio
    from openrealtime.exceptions import ConnectionClosedError

    stop = asyncio.Event()

    async def until_stopped(chunks: Any) -> Any:
        async for chunk in chunks:
            if stop.is_set():
                return
            yield chunk

    if args.mic:  # Ctrl+C ends the input; the session then flushes, closes, and the tail still plays
        asyncio.get_running_loop().add_signal_handler(signal.SIGINT, stop.set)
        chunks = until_stopped(microphone_chunks(chunk_ms=TRANSLATION_CHUNK_MS))
        print("listening; Ctrl+C to stop", file=sys.stderr)
    else:
        chunks = file_chunks(read_wav(Path(args.file)), chunk_ms=TRANSLATION_CHUNK_MS, realtime=not args.fast)
    player = None
    if args.out is None:
        try:
            player = SpeakerPlayer()
        except SystemExit as exc:
            args.out = "translation.wav"
            print(f"{exc}; saving to {args.out} instead", file=sys.stderr)
    captions = SideBySideCaptions()

    def on_event(event: dict[str, Any]) -> None:
        captions(event)
        if player is not None and event.get("type") == "session.output_audio.delta":
            player.play("translation", base64.b64decode(event.get("delta") or ""))

    key = args.api_key or os.environ.get("OPENAI_API_KEY") if "openai.com" in args.url else args.api_key
    try:
        async with await RealtimeConnection.connect(_doors(args), api_key=key) as conn:
            result = await translate_audio(
                conn,
                chunks,
                language=args.to,
                transcription_model=None if args.no_source else args.transcription_model,
                noise_reduction=args.noise_reduction,
                on_event=on_event,
            )
    except (RuntimeError, OSError, ConnectionClosedError) as exc:  # refused (a language, every door), unreachable
        print(f"error: {exc}", file=sys.stderr)
        if player is not None:
            player.close()
        return 2
    captions.flush()
    for error in result.errors:
        print(f"error: {error.get('message')}", file=sys.stderr)
    if args.out:
        write_wav(Path(args.out), pcm16_to_float(bytes(result.audio)), rate_hz=result.sample_rate_hz)
        seconds = len(result.audio) / 2 / result.sample_rate_hz
        print(f"saved {seconds:.1f} s of translated speech to {args.out}", file=sys.stderr)
    if player is not None:
        await player.drained()
        player.close()
    return 0 if result.closed else 1


async def _assistant(args: argparse.Namespace) -> int:
    from openrealtime.audio.codec import pcm16_to_float
    from openrealtime.client.assistant import Assistant, scripted_turn
    from openrealtime.client.assistant_config import AssistantOptions
    from openrealtime.client.audio_io import WIRE_RATE_HZ, microphone_chunks, read_wav, write_wav
    from openrealtime.client.history import ConversationHistory, TranscriptPrinter
    from openrealtime.client.playback import ClockPlayer, Player, SpeakerPlayer
    from openrealtime.client.tools import ToolDefinitionError, ToolRegistry

    key = args.api_key or os.environ.get("OPENAI_API_KEY") if "openai.com" in args.url else args.api_key
    out = None if args.mic else Path(args.out or "answer.wav")
    options = AssistantOptions(
        url=args.url,
        urls=tuple(_doors(args)[1:]),
        api_key=key,
        voice=args.voice,
        instructions=args.instructions,
        tool_choice=args.tool_choice,
        mute_mic=args.mute_mic,
        keep_audio=out is not None,
        transport=args.transport,
        # Our extension, named only when asked: such a session is told each verdict (speech_judged).
        turn_detection={"type": "server_vad", **({"barge_in": args.barge_in} if args.barge_in else {})},
    )
    try:
        tools = ToolRegistry.from_module(Path(args.tools)) if args.tools else None
    except ToolDefinitionError as exc:
        print(f"--tools: {exc}", file=sys.stderr)
        return 2
    player: Player = SpeakerPlayer() if args.mic or args.play else ClockPlayer()
    history = ConversationHistory()
    assistant = Assistant(options, player=player, tools=tools, history=history, on_event=TranscriptPrinter(history))
    try:
        async with assistant:
            if args.mic:
                print("listening (Ctrl+C to stop) …", file=sys.stderr)
                await assistant.stream(microphone_chunks(chunk_ms=CHUNK_MS))
                return 0
            turn = await scripted_turn(assistant, read_wav(Path(args.file)), realtime=not args.fast)
            if args.play:
                await player.drained()
    finally:
        player.close()
    for error in assistant.errors:
        print(f"error: {error.get('message')}", file=sys.stderr)
    if out is not None:
        write_wav(out, pcm16_to_float(turn.audio))
        print(f"saved {len(turn.audio) / 2 / WIRE_RATE_HZ:.1f} s of answer audio to {out}", file=sys.stderr)
    return 0 if any(turn.assistant) else 1


def _serve(args: argparse.Namespace) -> int:
    from dataclasses import fields

    from openrealtime.server.app import serve
    from openrealtime.server.settings import Settings

    # Every serve flag is named after its Settings field; unset flags (None) leave the variable or default.
    serve(Settings.load(**{f.name: getattr(args, f.name) for f in fields(Settings) if hasattr(args, f.name)}))
    return 0


def build_parser() -> argparse.ArgumentParser:
    from openrealtime.server.settings import Settings

    parser = argparse.ArgumentParser(prog="openrealtime", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the Realtime server")
    serve.add_argument("--host", default=None, help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="port (default 8000)")
    serve.add_argument("--api-key", default=None, help="require this key (or OPENREALTIME_API_KEY)")
    serve.add_argument("--ssl-certfile", default=None, help="serve HTTPS and wss:// with this PEM certificate")
    serve.add_argument("--ssl-keyfile", default=None, help="the PEM private key of --ssl-certfile")
    serve.add_argument(
        "--asr-model", default=None, help="tiny.en (default), base, a CTranslate2 path; the model to ask --asr-url for"
    )
    serve.add_argument("--asr-device", default=None, help="cpu (default), cuda or auto")
    serve.add_argument("--threads", type=int, default=None, help="CPU threads per LLM call")
    serve.add_argument("--asr-threads", type=int, default=None, help="CPU threads per Whisper decode")
    serve.add_argument("--asr-workers", type=int, default=None, help="Whisper decodes that run at once")
    serve.add_argument("--llm", default=None, help="smollm2 (bundled) or a path to any GGUF file")
    serve.add_argument("--llm-url", default=None, help="an OpenAI-compatible endpoint ending in /v1 (vLLM, Ollama)")
    serve.add_argument("--llm-model", default=None, help="model name to request from --llm-url")
    serve.add_argument("--llm-api-key", default=None, help="key for --llm-url (or OPENREALTIME_LLM_API_KEY)")
    serve.add_argument(
        "--llm-vision", action="store_true", default=None, help="the model at --llm-url sees images (input_image)"
    )
    serve.add_argument(
        "--asr-url", default=None, help="an OpenAI-compatible /audio/transcriptions server ending in /v1 (no Whisper)"
    )
    serve.add_argument("--asr-api-key", default=None, help="key for --asr-url (or OPENREALTIME_ASR_API_KEY)")
    serve.add_argument(
        "--tts-url", default=None, help="an OpenAI-compatible /audio/speech server ending in /v1 (no voice here)"
    )
    serve.add_argument("--tts-model", default=None, help="model name to request from --tts-url (gpt-4o-mini-tts)")
    serve.add_argument("--tts-api-key", default=None, help="key for --tts-url (or OPENREALTIME_TTS_API_KEY)")
    serve.add_argument(
        "--tts-voice-map", default=None, help="our voice names -> --tts-url's: alloy=af_bella,echo=am_adam"
    )
    serve.add_argument("--tts-voice", default=None, help="a piper .onnx voice for English")
    serve.add_argument("--instructions", default=None, help="default system prompt of voice sessions")
    serve.add_argument("--session-lifetime-s", type=int, default=None, help="longest session, seconds (default 3600)")
    serve.add_argument(
        "--speech-lead-s",
        type=float,
        default=None,
        help="how far ahead of its listener an answer is spoken; the rest at the pace of speech (default 5, 0: off)",
    )
    serve.add_argument(
        "--barge-in",
        choices=["auto", "immediate", "adaptive"],
        default=None,
        help="speech over an answer: cancel it at once, as OpenAI (immediate), or only a real interruption, "
        "not a backchannel or a cough (adaptive); auto (the default): adaptive on WebRTC calls, immediate "
        "on WebSockets",
    )
    serve.add_argument(
        "--echo-cancellation",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="remove the server's own voice from realtime sessions' input, for clients that send a raw "
        "microphone near a loudspeaker (default off: browsers and phones cancel their own echo)",
    )
    serve.add_argument(
        "--echo-canceller",
        choices=["linear", "aec3"],
        default=None,
        help="with --echo-cancellation: our own canceller (linear, the default: a voice over the answer passes "
        "whole) or WebRTC's AEC3 (needs pywebrtc-audio)",
    )
    serve.add_argument(
        "--state-url",
        default=None,
        help="where resumable sessions' state lives: memory:// (default) or redis://host:port/db",
    )
    serve.add_argument(
        "--resume-grace-s", type=int, default=None, help="how long a lost session can be resumed (default 900)"
    )
    serve.add_argument(
        "--drain-grace-s",
        type=float,
        default=None,
        help="on SIGTERM: how long running turns may finish before sessions move to other doors (default 30)",
    )
    serve.add_argument(
        "--advertise-url",
        default=None,
        help="the URL other front doors reach this one at, for calls' hang-ups and sidebands with "
        "--state-url redis:// (default: --host and --port, or the address a call arrived on)",
    )
    serve.add_argument(
        "--idle-timeout-s",
        type=int,
        default=None,
        help="close a session where nothing was sent either way for this long (default 600, 0: never)",
    )
    serve.add_argument(
        "--allowed-origins", default=None, help="web origins allowed besides the server's own (comma-separated, *)"
    )
    serve.add_argument(
        "--mcp-hosts",
        default=None,
        help="hosts (host or host:port, comma-separated) of the MCP servers sessions may use (default *: any; none)",
    )
    serve.add_argument(
        "--mcp-timeout-s", type=float, default=None, help="the longest one MCP listing or tool call may take (30)"
    )
    for kind in ("transcription", "realtime", "translation"):
        default = Settings.__dataclass_fields__[f"max_{kind}_sessions"].default
        limit_help = f"{kind} sessions at once (default {default}, 0: no limit)"
        serve.add_argument(f"--max-{kind}-sessions", type=int, default=None, help=limit_help)
    serve.add_argument(
        "--handshake-timeout-s", type=int, default=None, help="seconds to send a whole request header (default 10)"
    )
    serve.add_argument(
        "--max-auth-failures-per-minute", type=int, default=None, help="failed keys per address before refusal (10)"
    )
    serve.add_argument(
        "--max-client-secrets", type=int, default=None, help="ephemeral ek_ keys alive at once (default 1000)"
    )
    serve.add_argument(
        "--ice-servers",
        default=None,
        help='WebRTC calls\' ICE servers, a JSON list ([{"urls": "stun:host:3478"}]); default none: no STUN',
    )
    serve.add_argument(
        "--webrtc-hosts",
        default=None,
        help="local addresses WebRTC calls gather candidates on (default 127.0.0.1 when --host is loopback)",
    )
    serve.add_argument(
        "--webrtc-udp-ports",
        default=None,
        help="UDP ports WebRTC calls bind, FIRST-LAST (e.g. 40000-40100; one per address per call); default any",
    )
    serve.add_argument(
        "--call-connect-timeout-s", type=int, default=None, help="end a call not connected by then (default 30)"
    )
    serve.add_argument(
        "--no-web-app",
        dest="web_app",
        action="store_false",
        default=None,
        help="do not serve the browser app at / (served by default)",
    )
    serve.add_argument("--log-level", default=None)
    serve.set_defaults(func=_serve)

    tr = sub.add_parser("transcribe", help="live captions of a WAV file or the microphone")
    source = tr.add_mutually_exclusive_group(required=True)
    source.add_argument("file", nargs="?", help="a 16-bit PCM WAV file (any rate)")
    source.add_argument("--mic", action="store_true", help="use the default microphone")
    tr.add_argument("--url", action=_DoorUrls, default=os.environ.get("OPENREALTIME_URL", DEFAULT_URL), help=DOORS)
    tr.add_argument("--api-key", default=os.environ.get("OPENREALTIME_API_KEY"))
    tr.add_argument("--model", default="gpt-4o-transcribe", help="transcription model name to request")
    tr.add_argument("--language", default="en")
    tr.add_argument("--fast", action="store_true", help="send the file as fast as possible")
    tr.add_argument("--manual", action="store_true", help="no server VAD: one commit at the end")
    tr.add_argument("--silence-ms", type=int, default=500, help="pause that ends a turn (server VAD)")
    tr.set_defaults(func=lambda a: asyncio.run(_transcribe(a)))

    tl = sub.add_parser("translate", help="live translation of a WAV file or the microphone")
    tl_source = tl.add_mutually_exclusive_group(required=True)
    tl_source.add_argument("file", nargs="?", help="a 16-bit PCM WAV file (any rate)")
    tl_source.add_argument("--mic", action="store_true", help="use the default microphone")
    tl.add_argument("--to", required=True, help="target language, e.g. es")
    tl.add_argument(
        "--url",
        action=_DoorUrls,
        default=os.environ.get("OPENREALTIME_TRANSLATE_URL", DEFAULT_TRANSLATE_URL),
        help=DOORS,
    )
    tl.add_argument("--api-key", default=os.environ.get("OPENREALTIME_API_KEY"))
    tl.add_argument("--out", default=None, help="save the translated speech to this WAV (else play it)")
    tl.add_argument("--fast", action="store_true", help="send the file as fast as possible")
    tl.add_argument("--transcription-model", default="gpt-realtime-whisper", help="for the source captions")
    tl.add_argument("--no-source", action="store_true", help="no source captions")
    tl.add_argument("--noise-reduction", choices=["near_field", "far_field"], default=None)
    tl.set_defaults(func=lambda a: asyncio.run(_translate(a)))

    va = sub.add_parser("assistant", help="talk with the voice assistant (microphone, or one turn from a WAV)")
    va_source = va.add_mutually_exclusive_group(required=True)
    va_source.add_argument("file", nargs="?", help="a 16-bit PCM WAV file (any rate): one scripted turn")
    va_source.add_argument("--mic", action="store_true", help="live conversation: microphone and speaker")
    va.add_argument(
        "--url",
        action=_DoorUrls,
        default=os.environ.get("OPENREALTIME_ASSISTANT_URL", DEFAULT_ASSISTANT_URL),
        help=DOORS,
    )
    va.add_argument("--api-key", default=os.environ.get("OPENREALTIME_API_KEY"))
    va.add_argument("--voice", default=None, help="output voice, e.g. alloy or marin")
    va.add_argument("--instructions", default=None, help="system prompt (the server's default if unset)")
    va.add_argument("--tools", default=None, help="a Python file whose public functions become tools")
    va.add_argument("--tool-choice", default="auto", help="auto, none, required, or a tool name")
    va.add_argument("--mute-mic", action="store_true", help="mute the mic while the assistant speaks")
    va.add_argument(
        "--barge-in",
        choices=["immediate", "adaptive"],
        default=None,
        help="our servers only: ask for this barge-in; adaptive pauses the answer while speech over it is "
        "judged and resumes it after a backchannel (default: the server's)",
    )
    va.add_argument("--out", default=None, help="file turn: save the answer here (default answer.wav)")
    va.add_argument("--play", action="store_true", help="file turn: also play the answer on the speaker")
    va.add_argument("--fast", action="store_true", help="send the file as fast as possible")
    va.add_argument(
        "--transport",
        choices=["websocket", "webrtc"],
        default="websocket",
        help="webrtc: hold the conversation over a WebRTC call to the URL's server (needs aiortc)",
    )
    va.set_defaults(func=lambda a: asyncio.run(_assistant(a)))

    demo = sub.add_parser("demo", help="start the offline server and run the bundled sample through it")
    demo.add_argument("--fast", action="store_true")
    demo.set_defaults(func=lambda a: asyncio.run(_demo(a)))

    add_bench_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
