"""``openrealtime serve | transcribe | demo | bench``."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from openrealtime.client.captions import CaptionBoard

DEFAULT_URL = "ws://127.0.0.1:8000/v1/realtime?intent=transcription"
CHUNK_MS = 100


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
    async with await RealtimeConnection.connect(args.url, api_key=key) as conn:
        result = await transcribe_audio(
            conn,
            chunks,
            model=args.model,
            language=args.language,
            vad=not args.manual,
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
                on_event=LiveCaptions(),
            )
    expected = (_sample_path().with_suffix(".txt")).read_text().strip()
    print(f"\nreference: {expected}")
    return 0 if result.transcripts else 1


def _serve(args: argparse.Namespace) -> int:
    from openrealtime.server.app import serve
    from openrealtime.server.settings import Settings

    serve(
        Settings.load(
            host=args.host,
            port=args.port,
            api_key=args.api_key,
            asr_model=args.asr_model,
            asr_device=args.asr_device,
            threads=args.threads,
            log_level=args.log_level,
        )
    )
    return 0


def _bench(args: argparse.Namespace) -> int:
    from openrealtime.bench.transcription import run_transcription_bench

    if args.kind == "load":
        from openrealtime.bench.load import run_load_bench

        out = Path(args.out) if args.out else None
        return asyncio.run(run_load_bench(url=args.url, out_dir=out, max_sessions=args.max_sessions))
    if args.kind != "transcription":
        print(f"bench {args.kind}: not implemented yet (see the open issues)", file=sys.stderr)
        return 2
    return asyncio.run(
        run_transcription_bench(url=args.url, out_dir=Path(args.out) if args.out else None, turns=args.turns)
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="openrealtime", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the Realtime server")
    serve.add_argument("--host", default=None, help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="port (default 8000)")
    serve.add_argument("--api-key", default=None, help="require this key (or OPENREALTIME_API_KEY)")
    serve.add_argument("--asr-model", default=None, help="tiny.en (default), base, or a CTranslate2 path")
    serve.add_argument("--asr-device", default=None, help="cpu (default), cuda or auto")
    serve.add_argument("--threads", type=int, default=None, help="CPU threads per model call")
    serve.add_argument("--log-level", default=None)
    serve.set_defaults(func=_serve)

    tr = sub.add_parser("transcribe", help="live captions of a WAV file or the microphone")
    source = tr.add_mutually_exclusive_group(required=True)
    source.add_argument("file", nargs="?", help="a 16-bit PCM WAV file (any rate)")
    source.add_argument("--mic", action="store_true", help="use the default microphone")
    tr.add_argument("--url", default=os.environ.get("OPENREALTIME_URL", DEFAULT_URL))
    tr.add_argument("--api-key", default=os.environ.get("OPENREALTIME_API_KEY"))
    tr.add_argument("--model", default="gpt-4o-transcribe", help="transcription model name to request")
    tr.add_argument("--language", default="en")
    tr.add_argument("--fast", action="store_true", help="send the file as fast as possible")
    tr.add_argument("--manual", action="store_true", help="no server VAD: one commit at the end")
    tr.set_defaults(func=lambda a: asyncio.run(_transcribe(a)))

    demo = sub.add_parser("demo", help="start the offline server and run the bundled sample through it")
    demo.add_argument("--fast", action="store_true")
    demo.set_defaults(func=lambda a: asyncio.run(_demo(a)))

    bench = sub.add_parser("bench", help="measure latency and accuracy")
    bench.add_argument("kind", choices=["transcription", "assistant", "translation", "load"])
    bench.add_argument("--url", default=None, help="a running server (default: start one here)")
    bench.add_argument("--out", default=None, help="directory for results.json and summary.md")
    bench.add_argument("--turns", type=int, default=10)
    bench.add_argument(
        "--max-sessions", type=int, default=12, help="load: the most concurrent sessions tried"
    )
    bench.set_defaults(func=_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
