"""The HTTP side of an engine on another server: one pooled client, timeouts, bounded retries, and
the one place where its failures become :class:`EngineError`.

:class:`RemoteEndpoint` owns a synchronous ``httpx.Client`` (keep-alive connections, shared by every
session of the process; the engines call it from worker threads, as they call a model) and
:meth:`RemoteEndpoint.open`, which sends one request and returns the streamed response once its
status is a success. A request is tried again, at most ``retries`` times with a short growing pause,
when the connection was refused or dropped before an answer (a keep-alive connection the server had
closed), or when the server answered 429 or 5xx: failures that say nothing about the request itself.
A timeout is not retried: a connect timeout has already cost its seconds, and a read timeout means
the server is busy, so asking again would add to its load while the listener waits. Once a
response's body has begun, nothing is retried (its audio may already be on its way to a listener).

Errors are the server's (``*_unavailable``, ``*_http_<status>``) or the answer's (``*_bad_response``),
with the engine's prefix (``asr``, ``tts``) so that a client can tell which engine failed.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from openrealtime.exceptions import EngineError

DEFAULT_TIMEOUT_S = 30.0
DEFAULT_CONNECT_TIMEOUT_S = 5.0
DEFAULT_RETRIES = 2
RETRY_PAUSE_S = 0.05  # the first retry's pause; each next one waits RETRY_GROWTH times as long
RETRY_GROWTH = 4
MAX_CONNECTIONS = 32  # per endpoint; a front door's sessions share them
HTTP_ERROR_STATUS = 400
HTTP_TOO_MANY_REQUESTS = 429
HTTP_SERVER_ERROR = 500
ERROR_BODY_MAX_CHARS = 500

#: Failures before any answer that are quick to tell: refused, reset, or a pooled connection the server
#: had closed (a decode or a clause asked again is the same request). Timeouts are not among them: a
#: connect timeout has already cost its seconds, and a read timeout means a busy server.
RETRIED_ERRORS: tuple[type[httpx.HTTPError], ...] = (httpx.NetworkError, httpx.RemoteProtocolError)


@dataclass(frozen=True)
class RemoteOptions:
    """Where an engine server is and how to call it.

    Attributes:
        base_url: The API root that ends in ``/v1`` (``http://10.0.0.5:8000/v1``).
        api_key: Sent as ``Authorization: Bearer ...`` when set.
        timeout_s: Read timeout between two bytes of an answer (a decode or a clause's first audio
            may take this long at most).
        connect_timeout_s: Timeout to open a connection.
        retries: How many times a request that got no answer, a 429 or a 5xx is sent again.
    """

    base_url: str
    api_key: str | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S
    retries: int = DEFAULT_RETRIES


def retry_pauses(retries: int) -> list[float]:
    """The pauses before each retry: 50 ms, then four times longer each time."""
    return [RETRY_PAUSE_S * RETRY_GROWTH**attempt for attempt in range(retries)]


class RemoteEndpoint:
    """One engine server's HTTP client, shared by every session of the process.

    Args:
        options: The server, key, timeouts and retries.
        engine: The error codes' prefix (``asr``, ``tts``) and the name in messages.
        transport: An httpx transport to use instead of the network (tests, proxies).
        sleep: How to wait between retries (tests pass a recorder).
    """

    def __init__(
        self,
        options: RemoteOptions,
        *,
        engine: str,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.options = options
        self.engine = engine
        self._sleep = sleep
        headers = {"Authorization": f"Bearer {options.api_key}"} if options.api_key else {}
        self._client = httpx.Client(
            base_url=options.base_url.rstrip("/") + "/",
            headers=headers,
            timeout=httpx.Timeout(options.timeout_s, connect=options.connect_timeout_s),
            limits=httpx.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS),
            transport=transport,
        )

    def url(self, path: str) -> str:
        """The full URL of ``path`` (``audio/speech``) on this server."""
        return str(self._client.base_url.join(path))

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    @contextlib.contextmanager
    def open(self, path: str, **request: Any) -> Iterator[httpx.Response]:
        """``POST path`` with ``request`` (httpx's ``json``, ``data``, ``files``), retried as the module
        says; yields the response with its body not yet read, its status a success.

        Raises:
            EngineError: No answer after the retries (``<engine>_unavailable``), an error status
                (``<engine>_http_<status>``, the server's own message in it), or a read timeout or
                broken body while the caller reads it (``<engine>_unavailable``).
        """
        response = self._answer(path, request)
        try:
            yield response
        except httpx.HTTPError as exc:  # the body broke off or stalled: never retried
            raise EngineError(
                f"{self.engine} server {self.url(path)} failed: {describe(exc)}", code=self.unavailable
            ) from exc
        finally:
            response.close()

    def _answer(self, path: str, request: Mapping[str, Any]) -> httpx.Response:
        """The first success answer to ``POST path``, its body unread (see :meth:`open`)."""
        pauses = retry_pauses(self.options.retries)
        for attempt in range(len(pauses) + 1):
            retry = attempt < len(pauses)
            try:
                response = self._client.send(self._client.build_request("POST", path, **request), stream=True)
            except RETRIED_ERRORS as exc:
                if not retry:
                    raise self._unreachable(path, exc) from exc
            except httpx.HTTPError as exc:  # a timeout waiting for the answer: the server is busy
                raise self._unreachable(path, exc) from exc
            else:
                if response.status_code < HTTP_ERROR_STATUS:
                    return response
                try:
                    response.read()
                except httpx.HTTPError as exc:
                    raise self._unreachable(path, exc) from exc
                finally:
                    response.close()
                if not (retry and retried_status(response.status_code)):
                    raise EngineError(
                        f"{self.engine} server {self.url(path)} answered HTTP {response.status_code}: "
                        f"{error_message(response)}",
                        code=f"{self.engine}_http_{response.status_code}",
                    )
            self._sleep(pauses[attempt])
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _unreachable(self, path: str, exc: httpx.HTTPError) -> EngineError:
        return EngineError(f"{self.engine} server {self.url(path)} failed: {describe(exc)}", code=self.unavailable)

    @property
    def unavailable(self) -> str:
        return f"{self.engine}_unavailable"

    def bad_response(self, message: str) -> EngineError:
        """The error for an answer that is not what the API promises."""
        return EngineError(f"{self.engine} server sent {message}", code=f"{self.engine}_bad_response")


def retried_status(status: int) -> bool:
    """Whether an answer with ``status`` is worth asking again: busy (429) or failing (5xx)."""
    return status == HTTP_TOO_MANY_REQUESTS or status >= HTTP_SERVER_ERROR


def describe(exc: httpx.HTTPError) -> str:
    """An httpx error in words, its class named when its message is empty (a bare timeout)."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def error_message(response: httpx.Response) -> str:
    """OpenAI's ``{"error": {"message": ...}}`` of an error answer, else the start of its body."""
    text = response.text[:ERROR_BODY_MAX_CHARS]
    try:
        body = response.json()
        error = body.get("error") if isinstance(body, Mapping) else None
        if isinstance(error, Mapping) and error.get("message"):
            text = str(error["message"])
        elif isinstance(error, str):
            text = error
    except ValueError:  # not JSON
        pass
    return text
