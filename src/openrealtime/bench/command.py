"""``openrealtime bench KIND``: its flags and which bench each kind runs (the benches live beside it)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any

DEFAULT_BENCH_TURNS = 10  # --turns of every bench but abuse


def run_bench(args: argparse.Namespace) -> int:
    """Run the bench ``args.kind`` names; its exit status."""
    out = Path(args.out) if args.out else None
    if args.kind == "overhead":
        from openrealtime.bench.overhead import run_overhead_bench

        if args.url is not None:
            print(
                "bench overhead: measures this package's sessions in this process; --url does not apply",
                file=sys.stderr,
            )
            return 2
        return run_overhead_bench(out_dir=out, appends=args.appends)
    if args.kind == "state":  # --url is the state store here (memory:// by default, or redis://)
        from openrealtime.bench.state import run_state_bench

        return run_state_bench(url=args.url, out_dir=out, turns=args.turns)
    from openrealtime.bench.target import SERVER_ERRORS

    if args.remote_engines and (args.url is not None or args.kind not in ("assistant", "transcription")):
        print("bench: --remote-engines applies to assistant and transcription, without --url", file=sys.stderr)
        return 2
    key = args.api_key or (os.environ.get("OPENAI_API_KEY") if args.url and "openai.com" in args.url else None)
    turns = args.turns if args.turns is not None else DEFAULT_BENCH_TURNS
    if args.kind == "soak" and args.memory:
        from openrealtime.bench.memory import run_memory_bench

        if args.url is not None:
            print("bench soak --memory: measures a server in this process; --url does not apply", file=sys.stderr)
            return 2
        job = run_memory_bench(out_dir=out, sessions=args.sessions)
    elif args.kind == "soak":
        from openrealtime.bench.soak import run_soak_bench

        job = run_soak_bench(url=args.url, out_dir=out, minutes=args.minutes, api_key=key)
    elif args.kind == "abuse":
        from openrealtime.bench.abuse import DEFAULT_TURNS, run_abuse_bench

        job = run_abuse_bench(
            url=args.url,
            out_dir=out,
            turns=args.turns if args.turns is not None else DEFAULT_TURNS,
            responses=args.responses,
            flood_sessions=args.flood_sessions,
            items=args.items,
            api_key=key,
        )
    elif args.kind == "load":
        from openrealtime.bench.load import run_load_bench

        if args.session_kind == "assistant":
            from openrealtime.bench.assistant_load import run_assistant_load_bench

            modes = _turn_modes(args.turn_modes)
            if modes is None:
                return 2
            job = run_assistant_load_bench(
                url=args.url,
                out_dir=out,
                max_sessions=args.max_sessions,
                turns=turns,
                api_key=key,
                turn_detection=modes[0].turn_detection if args.turn_modes else None,
            )
        else:
            job = run_load_bench(url=args.url, out_dir=out, max_sessions=args.max_sessions, api_key=key)
    elif args.kind == "calls":
        from openrealtime.bench.calls import run_calls_bench

        job = run_calls_bench(
            url=args.url,
            out_dir=out,
            max_calls=args.max_sessions,
            turns=turns,
            compare=args.compare,
            browser=args.browser,
            api_key=key,
            server_pid=args.server_pid,
        )
    elif args.kind == "translation":
        from openrealtime.bench.translation import run_translation_bench

        job = run_translation_bench(url=args.url, out_dir=out, language=args.to, api_key=key)
    elif args.kind == "turns":
        from openrealtime.bench.turns import run_turns_bench

        parts = tuple(int(p) for p in args.turn_parts.split(","))
        modes = _turn_modes(args.turn_modes)
        if modes is None:
            return 2
        job = run_turns_bench(
            url=args.url,
            out_dir=out,
            sessions=args.turn_sessions,
            api_key=key,
            parts=parts,
            limit=args.turn_limit,
            turn_modes=modes,
            trace=args.turn_trace,
            echo_room=args.turn_echo_room,
        )
    elif args.kind == "assistant" and args.remote_engines:
        from openrealtime.bench.remote_engines import run_remote_assistant_bench

        job = run_remote_assistant_bench(out_dir=out, turns=turns)
    elif args.kind == "assistant":
        from openrealtime.bench.assistant import MIN_TURNS, run_assistant_bench

        job = run_assistant_bench(url=args.url, out_dir=out, turns=max(turns, MIN_TURNS), api_key=key)
    else:
        from openrealtime.bench.transcription import run_transcription_bench

        remote = args.remote_engines
        job = run_transcription_bench(url=args.url, out_dir=out, turns=turns, api_key=key, remote_engines=remote)
    try:
        return asyncio.run(job)
    except SERVER_ERRORS as exc:
        print(f"bench {args.kind}: {exc}", file=sys.stderr)
        return 1


def _turn_modes(spec: str | None) -> tuple[Any, ...] | None:
    """The turn detections ``--turn-modes`` names (every one for ``None``); ``None`` after saying why
    when it names an unknown one."""
    from openrealtime.bench.turns import select_modes

    try:
        return select_modes(spec)
    except ValueError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return None


def add_bench_parser(sub: Any) -> None:
    """The ``bench`` subcommand on ``sub`` (the CLI's subparsers)."""
    bench = sub.add_parser("bench", help="measure latency and accuracy")
    bench.add_argument(
        "kind",
        choices=[
            "transcription",
            "assistant",
            "turns",
            "translation",
            "load",
            "overhead",
            "abuse",
            "soak",
            "calls",
            "state",
        ],
    )
    bench.add_argument("--url", default=None, help="a running server, ours or OpenAI's (default: start one here)")
    bench.add_argument(
        "--session-kind",
        choices=["transcription", "assistant"],
        default="transcription",
        help="load: the kind of concurrent sessions",
    )
    bench.add_argument(
        "--api-key",
        default=os.environ.get("OPENREALTIME_API_KEY"),
        help="key for --url (or OPENREALTIME_API_KEY; OPENAI_API_KEY for an openai.com URL)",
    )
    bench.add_argument("--out", default=None, help="directory for results.json, summary.md and the plots")
    bench.add_argument(
        "--turns",
        type=int,
        default=None,
        help=(
            f"spoken turns (transcription, assistant; per session for load --session-kind assistant; "
            f"default {DEFAULT_BENCH_TURNS}); abuse: the victim's questions per scenario (default 3)"
        ),
    )
    bench.add_argument("--to", default="es", help="translation: the target language")
    bench.add_argument(
        "--remote-engines",
        action="store_true",
        help="assistant, transcription: the ASR and voice on a second openrealtime started here (--asr-url, "
        "--tts-url); assistant: side by side with everything in process",
    )
    bench.add_argument(
        "--max-sessions", type=int, default=12, help="load: the most concurrent sessions tried; calls: the most calls"
    )
    bench.add_argument(
        "--compare", action="store_true", help="calls: the same questions over WebSocket and WebRTC, side by side"
    )
    bench.add_argument(
        "--browser", action="store_true", help="calls --compare: also in the browser app, in headless Chromium"
    )
    bench.add_argument("--server-pid", type=int, default=None, help="calls with --url: the server's pid, for its CPU")
    bench.add_argument("--appends", type=int, default=None, help="overhead: timed 100 ms appends per run")
    bench.add_argument("--responses", type=int, default=40, help="abuse: out-of-band response.create in flood A")
    bench.add_argument(
        "--flood-sessions", type=int, default=4, help="abuse: sessions appending audio at 10x real time in flood B"
    )
    bench.add_argument("--items", type=int, default=2000, help="abuse: conversation.item.create per burst in flood C")
    bench.add_argument("--minutes", type=float, default=60.0, help="soak: how long the voice conversation is held")
    bench.add_argument(
        "--memory", action="store_true", help="soak: big sessions opened and closed in turn, RSS after each close"
    )
    bench.add_argument("--sessions", type=int, default=7, help="soak --memory: the sessions opened in turn")
    bench.add_argument(
        "--turn-sessions", type=int, default=1, help="turns: trials run at once (default 1: one speaker)"
    )
    bench.add_argument(
        "--turn-parts",
        default="1,2,3",
        help="turns: 1 end of turn, 2 interruptions over an answer, 3 its echo (default 1,2,3)",
    )
    bench.add_argument("--turn-limit", type=int, default=None, help="turns: at most this many clips of each kind")
    bench.add_argument(
        "--turn-modes",
        default=None,
        help="turns: part 1's turn detections, e.g. semantic_vad:medium,server_vad:500 (default: all five); "
        "load --session-kind assistant: the sessions' one (default server_vad), with the model's cost",
    )
    bench.add_argument(
        "--turn-echo-room",
        choices=["bench", "reverberant"],
        default="bench",
        help="turns: part 3's room: one path and two reflections (default), or a reverberant one (RT60 400 ms, "
        "a loudspeaker that distorts a little, a microphone's noise)",
    )
    bench.add_argument(
        "--turn-trace",
        action="store_true",
        help="turns: part 1 traces where the time from the last word to the answer goes (server in process)",
    )
    bench.set_defaults(func=run_bench)
