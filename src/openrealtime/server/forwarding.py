"""Front doors that share a Redis: a WebRTC call's hang-up and sidebands reach the door that holds it.

A call's peer connection, UDP ports and session live in the process that answered its offer. That
door records itself in the call directory (:mod:`~openrealtime.state.call_directory`) under the URL
other doors reach it at (:func:`door_url`); a door that gets a hang-up or a sideband for a call it
does not hold looks the owner up and forwards:

- the hang-up as an HTTP ``POST`` to the owner (:func:`forward_hangup`), its answer passed back;
- the sideband as a WebSocket relay (:func:`relay_sideband`): frames both ways, unchanged, and the
  owner's close code and reason passed on (``call_not_found``'s 4000 included).

A forwarded request carries :data:`FORWARDED_HEADER`, and a door never forwards a request that has
it: one hop at most, even when two doors advertise each other's URL by mistake. An owner that does
not answer holds no call (its calls died with it): the caller gets ``call_not_found``. Forwarding
rather than routing by call id in the load balancer is the robust choice (docs/deploy.md): it needs
no balancer support, survives doors coming and going, and costs one internal hop only for the rare
requests that land on the wrong door.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from starlette.responses import Response

from openrealtime.runtime.ports import Transport
from openrealtime.server.settings import Settings

log = logging.getLogger(__name__)

FORWARDED_HEADER = "x-openrealtime-forwarded"
FORWARD_TIMEOUT_S = 5.0  # connect and answer, for a hang-up or a sideband's upgrade on the owner
MAX_RELAY_FRAME_BYTES = 16 * 1024 * 1024  # as a connection's outbox: an event as large as it sends
CLOSE_NORMAL = 1000
CLOSE_ABNORMAL = 1011  # the owner's socket failed without a close frame: the sideband sees a server error
_WILDCARDS = ("", "0.0.0.0", "::")


def door_url(settings: Settings, local: tuple[str, int] | None = None) -> str:
    """The URL other front doors reach this one at: ``--advertise-url`` when set, else ``host`` and
    ``port`` when both are specific, else the local address a request arrived on (``local``, from
    the ASGI scope's ``server``): on a host with one address, the one a balancer and the other doors
    reach."""
    if settings.advertise_url:
        return settings.advertise_url.rstrip("/")
    scheme = "https" if settings.ssl_certfile else "http"
    host, port = settings.host, settings.port
    if (host in _WILDCARDS or port == 0) and local is not None:
        host, port = local
    if host in _WILDCARDS:
        host = _own_address()
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}:{port}"


def _own_address() -> str:
    with contextlib.suppress(OSError):
        return socket.gethostbyname(socket.gethostname())
    return "127.0.0.1"


def _headers(api_key: str | None) -> dict[str, str]:
    headers = {FORWARDED_HEADER: "1"}
    if api_key is not None:
        headers["authorization"] = f"Bearer {api_key}"
    return headers


def forwarded(headers: Mapping[str, str]) -> bool:
    """Whether a request came from another front door (and must not be forwarded again)."""
    return FORWARDED_HEADER in headers


async def forward_hangup(owner_url: str, path: str, api_key: str | None) -> Response | None:
    """``POST`` the hang-up to the door that holds the call; its answer, or ``None`` if it does not
    answer (it holds no calls then)."""
    import httpx

    try:
        async with httpx.AsyncClient(timeout=FORWARD_TIMEOUT_S) as client:
            answer = await client.post(owner_url + path, headers=_headers(api_key))
    except httpx.HTTPError as exc:
        log.warning("hang-up not forwarded to %s: %s", owner_url, exc)
        return None
    media_type = answer.headers.get("content-type")
    return Response(answer.content, status_code=answer.status_code, media_type=media_type)


async def relay_sideband(owner_url: str, call_id: str, api_key: str | None, sideband: Transport) -> bool:
    """Relay ``sideband`` to the call's sideband on the door that holds it, until either side ends;
    ``False`` (nothing sent) if that door does not answer."""
    import websockets

    ws_url = "ws" + owner_url.removeprefix("http") + f"/v1/realtime?call_id={quote(call_id, safe='')}"
    try:
        remote = await websockets.connect(
            ws_url,
            additional_headers=_headers(api_key),
            open_timeout=FORWARD_TIMEOUT_S,
            max_size=MAX_RELAY_FRAME_BYTES,
        )
    except (OSError, TimeoutError, websockets.InvalidHandshake) as exc:
        log.warning("sideband of call %s not relayed to %s: %s", call_id, owner_url, exc)
        return False
    log.info("call %s: sideband relayed to %s", call_id, owner_url)
    async with remote, asyncio.TaskGroup() as tg:  # the relay's socket closed however this ends
        up = tg.create_task(_up(sideband, remote))
        code, reason = await _down(remote, sideband)
        up.cancel()  # the owner ended it: what the sideband still sends goes nowhere
    with contextlib.suppress(Exception):
        await sideband.close(code, reason)
    return True


async def _up(sideband: Transport, remote: Any) -> None:
    """The sideband's frames to the owner; when the sideband leaves, the relay's socket closes."""
    import websockets

    try:
        while (frame := await sideband.receive()) is not None:
            await remote.send(frame)
    except websockets.ConnectionClosed:
        return
    await remote.close()


async def _down(remote: Any, sideband: Transport) -> tuple[int, str]:
    """The owner's frames to the sideband, until the owner closes; its close code and reason."""
    import websockets

    try:
        async for message in remote:
            text = message if isinstance(message, str) else message.decode("utf-8", "replace")
            try:
                await sideband.send(text)
            except Exception as exc:  # the sideband's socket went (Starlette raises several kinds)
                log.debug("sideband gone while relaying: %s", exc)
                await remote.close()
                break
    except websockets.ConnectionClosed:
        pass
    received = remote.close_code
    return (received if received is not None else CLOSE_ABNORMAL), remote.close_reason or ""
