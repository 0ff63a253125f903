"""Polls a server's ``/healthz`` from a process of its own, so what it times is the server's answer.

``bench abuse`` first polled from its own event loop, which its flooding clients share: a burst of
2,000 items is 4,000 events to parse in that loop, and the probe timed the client's stall as well as
the server's (``/healthz`` p99 55-65 ms under bursts whatever the server did). Run as
``python -m openrealtime.bench.healthz_probe URL [API_KEY]``: one ``GET /healthz`` over a fresh
connection every ``HEALTH_INTERVAL_S``, each written to stdout as ``seconds status`` (``status`` 0 for
no answer within ``HEALTH_TIMEOUT_S``), until its stdin closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from urllib.parse import urlsplit

HEALTH_INTERVAL_S = 0.1
HEALTH_TIMEOUT_S = 5.0  # a probe unanswered by then counts as failed, with this latency
NO_ANSWER = 0


async def healthz_status(host: str, port: int, tls: bool, api_key: str | None) -> int:
    """One ``GET /healthz`` over a fresh connection; the HTTP status."""
    reader, writer = await asyncio.open_connection(host, port, ssl=tls or None)
    try:
        auth = f"Authorization: Bearer {api_key}\r\n" if api_key else ""
        writer.write(f"GET /healthz HTTP/1.1\r\nHost: {host}:{port}\r\n{auth}Connection: close\r\n\r\n".encode())
        await writer.drain()
        status_line = await reader.readline()
        await reader.read()  # the body, to the server's close
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    return int(status_line.split()[1])


async def poll(url: str, api_key: str | None, stop: asyncio.Event) -> None:
    """Poll until ``stop``, one line per probe on stdout."""
    parts = urlsplit(url)
    tls = parts.scheme in ("wss", "https")
    host, port = parts.hostname or "127.0.0.1", parts.port or (443 if tls else 80)
    loop = asyncio.get_running_loop()
    due = loop.time()
    while not stop.is_set():
        started = loop.time()
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT_S):
                status = await healthz_status(host, port, tls, api_key)
        except (OSError, TimeoutError, ValueError, IndexError):
            status = NO_ANSWER
        print(f"{loop.time() - started:.6f} {status}", flush=True)
        due += HEALTH_INTERVAL_S
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), max(0.0, due - loop.time()))


async def main(url: str, api_key: str | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    stdin_closed = loop.run_in_executor(None, sys.stdin.read)  # returns at EOF: the parent is done
    stdin_closed.add_done_callback(lambda _: stop.set())
    await poll(url, api_key, stop)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None))
