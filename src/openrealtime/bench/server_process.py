"""A server for a bench in its own process, so the CPU it reports is the server's alone, not the
bench clients' too (a WebRTC client spends about as much on Opus and SRTP as the server does).

:func:`spawned_server` starts ``python -m openrealtime serve`` on a free loopback port (the
``OPENREALTIME_*`` variables apply, as to any ``serve``), waits until ``/healthz`` answers 200 (the
models are loaded), and stops it at the end; its log goes to a temporary file, shown when it fails
to start.
:class:`CpuMeter` reads a process's CPU seconds from ``/proc/<pid>/stat`` (Linux), for a spawned
server or for one given by ``--server-pid``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

READY_TIMEOUT_S = 600.0  # the first start downloads and loads the models
POLL_S = 0.5
STOP_TIMEOUT_S = 15.0
LOG_TAIL_CHARS = 3000
# /proc/<pid>/stat fields 14 (utime) and 15 (stime), counted in what follows the command's ")": field 3 on
_UTIME, _STIME = 11, 12


class CpuMeter:
    """CPU seconds (user + system) of process ``pid``, and the cores it kept busy between marks."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._ticks = os.sysconf("SC_CLK_TCK")
        self._mark = (self.cpu_s(), time.perf_counter())

    def cpu_s(self) -> float:
        """The process's CPU seconds so far.

        Raises:
            OSError: There is no such process (or no ``/proc``).
        """
        stat = Path(f"/proc/{self.pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        return (int(fields[_UTIME]) + int(fields[_STIME])) / self._ticks

    def mark(self) -> None:
        """Start a new window for :meth:`cores`."""
        self._mark = (self.cpu_s(), time.perf_counter())

    def cores(self) -> float:
        """Cores busy on average since the last :meth:`mark` (CPU seconds per wall second)."""
        cpu0, wall0 = self._mark
        return (self.cpu_s() - cpu0) / max(1e-9, time.perf_counter() - wall0)


@dataclass(frozen=True)
class ServerProcess:
    """A server started by :func:`spawned_server`: its base URL (``ws://127.0.0.1:PORT``) and pid."""

    base_url: str
    pid: int


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ready(http_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{http_url}/healthz", timeout=2) as reply:
            return int(reply.status) == 200
    except (urllib.error.URLError, OSError):
        return False


@contextlib.asynccontextmanager
async def spawned_server(
    args: Sequence[str] = (), *, ready_timeout_s: float = READY_TIMEOUT_S
) -> AsyncIterator[ServerProcess]:
    """Run ``openrealtime serve ARGS`` on a free loopback port for the duration.

    Raises:
        RuntimeError: It exited or was not ready within ``ready_timeout_s`` (its log's end says why).
    """
    port = free_port()
    command = [sys.executable, "-m", "openrealtime", "serve", "--host", "127.0.0.1", "--port", str(port), *args]
    with tempfile.TemporaryFile(prefix="openrealtime-serve-") as log:
        process = await asyncio.create_subprocess_exec(
            *command, stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log
        )
        try:
            await _wait_ready(process, f"http://127.0.0.1:{port}", log, ready_timeout_s)
            yield ServerProcess(f"ws://127.0.0.1:{port}", process.pid)
        finally:
            await _stop(process)


async def _wait_ready(process: asyncio.subprocess.Process, http_url: str, log: IO[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not await asyncio.to_thread(_ready, http_url):
        if process.returncode is not None or time.monotonic() > deadline:
            log.seek(0)
            tail = log.read().decode(errors="replace")[-LOG_TAIL_CHARS:]
            state = f"exited with {process.returncode}" if process.returncode is not None else "was not ready"
            raise RuntimeError(f"the server started for the bench {state}; its log ends:\n{tail}")
        await asyncio.sleep(POLL_S)


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is not None:
        return
    process.terminate()
    try:
        async with asyncio.timeout(STOP_TIMEOUT_S):
            await process.wait()
    except TimeoutError:
        process.kill()
        await process.wait()
