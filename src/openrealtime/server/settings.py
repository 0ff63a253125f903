"""Server settings from flags and ``OPENREALTIME_*`` environment variables (flags win)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from typing import Any

ENV_PREFIX = "OPENREALTIME_"
MAX_DEFAULT_THREADS = 8  # beyond this, more threads per call or more Whisper workers stop paying


def machine_cores() -> int:
    """CPU cores this process may use: its affinity mask (a container's CPU set), not the host's count."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _cores_up_to_max() -> int:
    return min(machine_cores(), MAX_DEFAULT_THREADS)


TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})


def _typed(kind: object, raw: str) -> Any:
    """An environment variable's text as its field's type (annotations are strings here)."""
    if kind in ("bool", bool):
        word = raw.strip().lower()
        if word not in TRUE_WORDS | FALSE_WORDS:
            raise ValueError(f"expected one of {sorted(TRUE_WORDS | FALSE_WORDS)} for a yes/no setting, got {raw!r}")
        return word in TRUE_WORDS
    if kind in ("int", int):
        return int(raw)
    if kind in ("float", float):
        return float(raw)
    if kind in ("bool", bool):
        return raw.strip().lower() in ("1", "true", "yes", "on")
    return raw


@dataclass(frozen=True)
class Settings:
    """Everything a server process is configured with.

    Attributes:
        host: Address to bind; loopback unless told otherwise.
        port: TCP port (0 picks a free one).
        api_key: If set, every WebSocket must carry it, or a live client secret (``ek_...``) minted
            with it (Bearer header or browser subprotocol); only it mints client secrets.
        ssl_certfile: A PEM certificate (chain) to serve HTTPS and ``wss://`` with; needs
            ``ssl_keyfile``. Browsers give a page the microphone only in a secure context (HTTPS, or
            ``localhost``), and the npm SDK always speaks ``wss://``.
        ssl_keyfile: The PEM private key of ``ssl_certfile``.
        asr_model: ``tiny.en`` (bundled), ``base`` (bundled multilingual), a CTranslate2 path or name.
        asr_device: ``cpu``, ``cuda`` or ``auto``.
        asr_compute_type: CTranslate2 compute type.
        threads: CPU threads per LLM call (default: the cores this process may use, up to 8).
        asr_threads: CPU threads per Whisper decode. One: on two cores a second thread does not
            make a tiny.en decode faster (65 ms with one, 71 ms with two) and keeps the other
            core from the next decode.
        asr_workers: Whisper decodes that run at once (each with ``asr_threads`` threads). Two
            one-thread workers on two cores run about 1.8 times as many decodes a second as one
            two-thread worker (26 against 14), which is what concurrent sessions need
            (``bench load``). Default: one per core, up to 8.
        llm: ``smollm2`` (bundled) or a path to any GGUF file, used when ``llm_url`` is not set.
        llm_url: Base URL (ending in ``/v1``) of an OpenAI-compatible chat endpoint: vLLM, Ollama,
            a llama.cpp server, OpenAI.
        llm_model: The model name to request from ``llm_url``.
        llm_api_key: Bearer key for ``llm_url``.
        llm_vision: The model at ``llm_url`` sees images: ``input_image`` items reach it (without
            this, and with the bundled text model, they are refused with an error).
        llm_context_tokens: Context window of the LLM (prompts are trimmed to fit).
        asr_url: Base URL (ending in ``/v1``) of an OpenAI-compatible ``/audio/transcriptions``
            endpoint (vLLM serving Whisper, speaches, another openrealtime) that replaces the
            in-process Whisper: ``asr_model`` is then the model name requested from it (a name
            ending in ``.en`` is taken as English only), ``asr_workers`` the requests in flight (at
            least 8). See engines/remote_asr.py.
        asr_api_key: Bearer key for ``asr_url``.
        tts_url: Base URL (ending in ``/v1``) of an OpenAI-compatible ``/audio/speech`` endpoint that
            streams raw ``pcm`` (vLLM-Omni, Kokoro-FastAPI, speaches, another openrealtime); it
            replaces the in-process voices (piper, espeak-ng) for every language.
        tts_model: The model name requested from ``tts_url``.
        tts_api_key: Bearer key for ``tts_url``.
        tts_voice_map: Session voice names -> the ``tts_url`` server's own (``"alloy=af_bella,echo=am_adam"``);
            names not listed are sent as they are.
        remote_timeout_s: The longest ``asr_url`` or ``tts_url`` may take to answer (between two bytes).
        llm_gpu_layers: Layers of the GGUF model offloaded to a GPU (``-1``: all); needs a CUDA build.
        llm_parallel: Answers the llama.cpp LLM decodes at once, in one context, each keeping its
            session's prompt cache between turns (concurrent voice sessions); more wait their turn.
        tts_instances: piper voices that speak at once (concurrent voice sessions; each ~60 MB).
        tts_voice: A piper ``.onnx`` voice for English; the bundled ``en_US-joe-medium`` by default.
        tts_voices: More piper voices by language, for translation into them:
            ``"es=/voices/es_ES-davefx-medium.onnx,de=/voices/de.onnx"`` (others speak with espeak-ng).
        instructions: Default system prompt of realtime sessions.
        session_lifetime_s: Maximum duration of a session, as OpenAI's 60 minutes (``expires_at``).
        speech_lead_s: How far ahead of a listener an answer's speech is synthesized: its first
            ``speech_lead_s`` as fast as the voice can, the rest at the pace of speech, so one
            session's long answers leave the engines to others (``0``: all as fast as it can; see
            runtime/pacing.py).
        barge_in: How speech over the assistant interrupts it in realtime sessions: ``immediate``
            (OpenAI's: ``interrupt_response`` cancels at ``speech_started``), ``adaptive``
            (backchannels, coughs and noise do not; session/bargein.py), or ``auto`` (the default):
            ``adaptive`` on WebRTC calls, where the server plays the audio, ``immediate`` on
            WebSockets. A session's ``turn_detection.barge_in`` overrides it.
        echo_cancellation: Remove the server's own voice from realtime sessions' input, with the
            output as the canceller's reference (session/echo.py), so a speakerphone user's echo
            does not interrupt the answer. Off by default: browsers and phones cancel their own
            echo, and until the canceller has learned the room (the first second or so of the first
            answer whose echo comes back) it cannot tell a voice from the echo. For clients that
            send a raw microphone near a loudspeaker.
        echo_canceller: Which canceller: ``linear``, our own (session/linear_echo.py: a voice over the
            answer passes whole), or ``aec3``, WebRTC's (the ``pywebrtc-audio`` binding; its
            suppressor also takes a voice over the answer for echo, docs/benchmarks.md).
        idle_timeout_s: A session in which neither the client nor the server sent anything for this
            long is closed (an ``error``, ``session_idle_timeout``, then 1001), so a client that
            went silent does not hold one of the few session places (``0``: never).
        allowed_origins: Web origins, besides the server's own, whose pages may use it
            (comma-separated, ``*`` for any, ``null`` for sandboxed pages); requests without an
            ``Origin`` header (the SDKs, curl) are always allowed. See docs/security.md.
        max_transcription_sessions: Transcription sessions open at once (``0``: unlimited); 16
            stayed within the latency targets on two cores (docs/benchmarks.md, Load).
        max_realtime_sessions: Voice-assistant sessions open at once (``0``: unlimited); 4 is the
            measured density on two cores with the default LLM and voices.
        max_translation_sessions: Translation sessions open at once (``0``: unlimited); one costs
            about 0.19 of a core (CPU real-time factor), twice a transcription session, so 8 is the
            transcription figure halved.
        max_audio_requests: REST audio requests (``/v1/audio/*``) served at once (``0``: unlimited);
            past it a request gets a 429. Each holds its decoded upload in memory (up to
            ``max_upload_audio_s`` at 16 kHz: 96 MB for 25 minutes).
        max_upload_bytes: Largest request body of ``/v1/audio/transcriptions`` and
            ``/translations``: OpenAI's 25 MB.
        max_upload_audio_s: Longest audio an upload may decode to (a small compressed file can hold
            hours); decoding stops there with a 400.
        max_speech_input_chars: Longest ``input`` of ``/v1/audio/speech``: OpenAI's 4096 characters.
        handshake_timeout_s: Seconds a connection may take to send a whole request header (an
            HTTP request or a WebSocket upgrade) before it is closed (slowloris).
        max_auth_failures_per_minute: Failed keys a client address may send in a minute; past it
            every attempt from that address is refused (``0``: no throttle).
        max_client_secrets: Ephemeral client secrets (``ek_...``) alive at once; past it minting
            answers 429 until one expires (server/secrets.py).
        ice_servers: WebRTC calls' ICE servers, a JSON list of ``RTCIceServer``
            (``[{"urls": "stun:stun.example.org:3478"}]``); none by default, so a call never reaches
            out to a STUN server (aiortc would ask Google's): host candidates serve loopback and a LAN.
        webrtc_hosts: The local addresses a call's ICE gathers candidates on (comma-separated); by
            default ``127.0.0.1`` when ``host`` is loopback, else every address but loopback.
        webrtc_udp_ports: The UDP ports a call's ICE binds, ``FIRST-LAST`` (``"40000-40100"``): one
            per gathered address per call; a call past the range's free ports gets a 503. Unset: any
            port the kernel picks.
        call_connect_timeout_s: A WebRTC call whose ICE has not connected this long after its
            answer is ended, freeing its place.
        state_url: Where sessions' durable state is kept for resuming (``?session_id=``):
            ``memory://`` (default: this process) or ``redis://host:port/db`` (shared by every
            server that uses the same Redis). See docs/compatibility.md, Resumable sessions.
        resume_grace_s: How long after its connection ends a session can be resumed.
        drain_grace_s: On SIGTERM, how long running turns may go on before every session is ended
            (each is ended sooner, as soon as it is between turns) and the process exits; see
            docs/readiness.md.
        advertise_url: The URL other front doors reach this one at (``http://10.0.0.5:8000``), for a
            WebRTC call's hang-up and sidebands that land on another door with ``state_url`` on
            Redis (docs/deploy.md). Unset: ``host`` and ``port`` when both are specific, else the
            local address a call's offer arrived on.
        web_app: Serve the browser app at ``/`` (assistant, live transcription, translation; its
            files under ``/app/``). It mints ephemeral keys from its own origin; see docs/security.md.
        mcp_hosts: The hosts (``host`` or ``host:port``, comma-separated) whose MCP servers sessions
            may name in ``tools`` (``type: "mcp"``): the server itself connects to them. ``*`` (the
            default) any host, as OpenAI; ``none`` no MCP server at all. See docs/security.md.
        mcp_timeout_s: The longest one MCP listing or tool call may take, connection included.
        log_level: Python logging level name.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    asr_model: str = "tiny.en"
    asr_device: str = "cpu"
    asr_compute_type: str = "int8"
    threads: int = field(default_factory=_cores_up_to_max)
    asr_threads: int = 1
    asr_workers: int = field(default_factory=_cores_up_to_max)
    llm: str = "smollm2"
    llm_url: str | None = None
    llm_model: str = "default"
    llm_api_key: str | None = None
    llm_vision: bool = False
    llm_context_tokens: int = 2048
    asr_url: str | None = None
    asr_api_key: str | None = None
    tts_url: str | None = None
    tts_model: str = "gpt-4o-mini-tts"
    tts_api_key: str | None = None
    tts_voice_map: str | None = None
    remote_timeout_s: float = 30.0
    llm_gpu_layers: int = 0
    llm_parallel: int = 4
    tts_instances: int = 2
    tts_voice: str | None = None
    tts_voices: str | None = None
    instructions: str | None = None
    session_lifetime_s: int = 3600
    speech_lead_s: float = 5.0
    idle_timeout_s: int = 600
    barge_in: str = "auto"
    echo_cancellation: bool = False
    echo_canceller: str = "linear"
    allowed_origins: str | None = None
    max_transcription_sessions: int = 16
    max_realtime_sessions: int = 4
    max_translation_sessions: int = 8
    max_audio_requests: int = 8
    max_upload_bytes: int = 25 * 1024 * 1024
    max_upload_audio_s: int = 1500
    max_speech_input_chars: int = 4096
    handshake_timeout_s: int = 10
    max_auth_failures_per_minute: int = 10
    max_client_secrets: int = 1000
    ice_servers: str | None = None
    webrtc_hosts: str | None = None
    webrtc_udp_ports: str | None = None
    call_connect_timeout_s: int = 30
    state_url: str | None = None
    resume_grace_s: int = 900
    drain_grace_s: float = 30.0
    advertise_url: str | None = None
    web_app: bool = True
    mcp_hosts: str = "*"
    mcp_timeout_s: float = 30.0
    log_level: str = "info"

    def __post_init__(self) -> None:
        if self.barge_in not in ("auto", "immediate", "adaptive"):  # stop at start, not at a session (bargein.py)
            raise ValueError(f"barge_in must be 'auto', 'immediate' or 'adaptive', got {self.barge_in!r}")
        if self.echo_canceller not in ("linear", "aec3"):
            raise ValueError(f"echo_canceller must be 'linear' or 'aec3', got {self.echo_canceller!r}")

    @classmethod
    def load(cls, **overrides: Any) -> Settings:
        """Defaults, then ``OPENREALTIME_<FIELD>`` variables, then non-``None`` ``overrides``."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = os.environ.get(ENV_PREFIX + f.name.upper())
            if raw is not None and raw != "":
                values[f.name] = _typed(f.type, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def redacted(self) -> dict[str, Any]:
        """For logs: the settings with the key hidden."""
        shown = {f.name: getattr(self, f.name) for f in fields(self)}
        shown["api_key"] = "***" if self.api_key else None
        shown["llm_api_key"] = "***" if self.llm_api_key else None
        shown["asr_api_key"] = "***" if self.asr_api_key else None
        shown["tts_api_key"] = "***" if self.tts_api_key else None
        return shown
