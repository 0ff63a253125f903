"""A whole deployment on loopback, for the multi-door test and the resume measurement: redis-server,
an engine server (a third ``openrealtime serve``: the doors' shared ASR and voice, ``--asr-url`` /
``--tts-url``), a llama.cpp OpenAI-compatible server as the shared LLM when ``llama_cpp.server`` is
importable (else each door's own), two front doors (``openrealtime serve --state-url redis://``),
and nginx in front of them running deploy/nginx.conf with only its ports changed, as this user, its
pid, logs and temp files in a temp dir.

Every process gets free loopback ports, its log in the temp dir (shown when a start fails), and is
ended by its own pid (SIGTERM, then SIGKILL). A missing ``nginx`` or ``redis-server`` skips.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.state.redis_server import redis_server

ROOT = Path(__file__).resolve().parents[2]
NGINX_CONF = ROOT / "deploy" / "nginx.conf"
KEY = "sk-doors-test-key"
START_TIMEOUT_S = 600.0  # models load in a few seconds on a quiet machine; minutes on a loaded one
STOP_TIMEOUT_S = 10.0
POLL_S = 0.2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _openrealtime() -> str:
    script = Path(sys.executable).with_name("openrealtime")
    return str(script) if script.exists() else "openrealtime"


@dataclass
class Process:
    """One process of the deployment, started with its output in ``log``."""

    name: str
    args: list[str]
    log: Path
    port: int
    popen: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(self.args, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)

    def wait_ready(self, path: str, deadline: float) -> None:
        """Until ``GET path`` answers 200 (the door's engines loaded)."""
        while True:
            assert self.popen is not None
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.popen.returncode}):\n{self.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + path, timeout=2.0).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} not ready on {path}:\n{self.tail()}")
            time.sleep(POLL_S)

    def kill(self) -> None:
        """SIGKILL: the process dies at once, holding what it held (a crash, an OOM kill)."""
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait()

    def stop(self) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.terminate()
        try:
            self.popen.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Cluster:
    """The running deployment: ``nginx`` is the one address clients use."""

    redis_url: str
    engine: Process
    doors: list[Process]
    nginx: Process
    llm: Process | None = None
    extra: list[Process] = field(default_factory=list)

    @property
    def http_url(self) -> str:
        return self.nginx.url

    @property
    def ws_url(self) -> str:
        return self.nginx.url.replace("http://", "ws://")

    def door_at(self, url: str) -> Process:
        [door] = [d for d in self.doors if d.url == url.rstrip("/")]
        return door

    def realtime_open(self, door: Process) -> int:
        """The realtime sessions (calls included) a door holds now, from its ``/readyz``."""
        answer = httpx.get(door.url + "/readyz", headers={"Authorization": f"Bearer {KEY}"}, timeout=5.0)
        return int(answer.json()["sessions"]["realtime"]["open"])

    def restart(self, door: Process) -> None:
        door.stop()
        door.start()
        door.wait_ready("/readyz", time.monotonic() + START_TIMEOUT_S)


def render_nginx(listen: int, doors: list[int], directory: Path) -> str:
    """deploy/nginx.conf with its listen port and doors' ports changed, and its temp files and
    access log in ``directory`` (a user cannot write Debian's /var/lib/nginx)."""
    text = NGINX_CONF.read_text()
    text, listens = re.subn(r"listen 8000;", f"listen 127.0.0.1:{listen};", text)
    for template_port, port in zip((8001, 8002), doors, strict=True):
        text, found = re.subn(rf"server 127\.0\.0\.1:{template_port} ", f"server 127.0.0.1:{port} ", text)
        assert found == 1, f"deploy/nginx.conf no longer has the door 127.0.0.1:{template_port}"
    assert listens == 1, "deploy/nginx.conf no longer listens on 8000"
    paths = "\n".join(
        f"    {name}_temp_path {directory / name};" for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    local = f"http {{\n    access_log {directory / 'access.log'};\n{paths}\n"
    return text.replace("http {\n", local, 1)


def _nginx(directory: Path, listen: int, doors: list[int]) -> Process:
    binary = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if binary is None:
        pytest.skip("nginx is not installed (apt-get install nginx; ./run does it as root)")
    conf = directory / "nginx.conf"
    conf.write_text(render_nginx(listen, doors, directory))
    main = f"daemon off; pid {directory / 'nginx.pid'}; error_log {directory / 'error.log'} info;"
    if os.geteuid() == 0:
        main += " user root;"  # its workers write temp files in this root-owned temp dir
    args = [binary, "-p", str(directory), "-e", str(directory / "error.log"), "-c", str(conf), "-g", main]
    return Process("nginx", args, directory / "nginx.out", listen)


def _llm(directory: Path) -> Process | None:
    """A llama.cpp OpenAI-compatible server on the bundled SmolLM2, when ``llama-cpp-python[server]``
    is installed; ``None`` otherwise (each door then runs its own LLM)."""
    if importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("llama_cpp.server") is None:
        return None
    if importlib.util.find_spec("fastapi") is None or importlib.util.find_spec("starlette_context") is None:
        return None
    from openrealtime.engines.model_files import smollm2_gguf

    port = free_port()
    args = [sys.executable, "-m", "llama_cpp.server", "--model", str(smollm2_gguf()), "--model_alias", "smollm2"]
    args += ["--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048"]
    return Process("llama.cpp server", args, directory / "llm.log", port)


def _door(name: str, directory: Path, redis_url: str, engine: Process, llm: Process | None, limit: int) -> Process:
    port = free_port()
    args = [_openrealtime(), "serve", "--host", "127.0.0.1", "--port", str(port), "--api-key", KEY]
    args += ["--state-url", redis_url, "--advertise-url", f"http://127.0.0.1:{port}"]
    args += ["--max-realtime-sessions", str(limit), "--no-web-app", "--log-level", "info"]
    args += ["--asr-url", engine.url + "/v1", "--asr-model", "tiny.en", "--tts-url", engine.url + "/v1"]
    if llm is not None:
        args += ["--llm-url", llm.url + "/v1", "--llm-model", "smollm2"]
    return Process(name, args, directory / f"{name}.log", port)


@contextlib.contextmanager
def cluster(directory: Path, *, door_limits: tuple[int, int] = (1, 8)) -> Iterator[Cluster]:
    """Start the whole deployment; door A holds at most ``door_limits[0]`` realtime sessions, door B
    ``door_limits[1]``."""
    with redis_server(directory) as redis_url:
        started: list[Process] = []
        try:
            engine_port = free_port()
            engine = Process(
                "engine server",
                [_openrealtime(), "serve", "--host", "127.0.0.1", "--port", str(engine_port), "--no-web-app"],
                directory / "engine.log",
                engine_port,
            )
            llm = _llm(directory)
            deadline = time.monotonic() + START_TIMEOUT_S
            for process in [engine, *([llm] if llm is not None else [])]:
                process.start()
                started.append(process)
            engine.wait_ready("/readyz", deadline)
            if llm is not None:
                llm.wait_ready("/v1/models", deadline)
            doors = [
                _door(name, directory, redis_url, engine, llm, limit)
                for name, limit in zip(("door-a", "door-b"), door_limits, strict=True)
            ]
            for door in doors:
                door.start()
                started.append(door)
            for door in doors:
                door.wait_ready("/readyz", deadline)
            nginx = _nginx(directory, free_port(), [d.port for d in doors])
            nginx.start()
            started.append(nginx)
            nginx.wait_ready("/livez", deadline)
            yield Cluster(redis_url, engine, doors, nginx, llm)
        finally:
            for process in reversed(started):
                process.stop()
