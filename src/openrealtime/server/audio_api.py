"""OpenAI's audio REST endpoints on the realtime server: ``POST /v1/audio/transcriptions``,
``/v1/audio/translations`` and ``/v1/audio/speech``, and ``GET /v1/models`` (``/v1/models/{id}``).

They use the same engines as the live sessions, through :meth:`EngineSet.run_job
<openrealtime.runtime.engines.EngineSet.run_job>` with the same ``Transcribe`` and ``Synthesize``
commands, and each request is its own "session" for the schedulers (:data:`current_session`), so an
upload waits for one decode of every live session at most, and a live session waits for one window
of an upload at most. Uploads are decoded in the shared engine pool too.

Every request carries the server's key (as ``/metrics``: a 401 or 429 JSON error), passes the same
Origin check (the app's middleware), and is refused with OpenAI's JSON error shape, never a stack
trace: 400 ``invalid_request_error`` with the ``param`` at fault, 413 for a body over
``max_upload_bytes``, 415 for a body that is not a form (or JSON, for speech), 429 while
``max_audio_requests`` are being served, and 500 ``server_error`` when an engine fails (the server
goes on). How each field is checked, and which are refused by name, is
:mod:`~openrealtime.server.audio_requests`; files in and out are :mod:`~openrealtime.server.media`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import json
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from openrealtime.audio.types import Samples
from openrealtime.contracts import TranscribeOptions, Transcript
from openrealtime.exceptions import EngineError, ProtocolError
from openrealtime.runtime.engines import PROMPT_WORDS, EngineSet, audio_windows
from openrealtime.runtime.scheduler import current_session
from openrealtime.server.audio_requests import (
    ApiError,
    SpeechRequest,
    TranscriptionRequest,
    bad_request,
    speech_request,
    transcription_request,
    translation_request,
)
from openrealtime.server.media import (
    OUTPUT_RATE_HZ,
    MediaError,
    SpeechEncoder,
    available_formats,
    decode_upload,
)
from openrealtime.server.metrics import Metrics
from openrealtime.server.model_catalog import ModelCatalog
from openrealtime.server.multipart import BodyTooLargeError, FormData, UploadedFile, parse_form, read_body
from openrealtime.server.settings import Settings
from openrealtime.server.transcript_formats import delta_events, render
from openrealtime.session.clauses import ClauseSplitter
from openrealtime.session.commands import AudioChunk, SynthesisDone, Synthesize, Transcribe, TranscriptReady
from openrealtime.session.ids import Ids

log = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[Response]]
T = TypeVar("T")

HTTP_NOT_FOUND = 404
HTTP_CLIENT_CLOSED = 499  # nginx's status for a request its client abandoned (never seen by the client)
HTTP_TOO_LARGE = 413
HTTP_UNSUPPORTED_MEDIA = 415
HTTP_TOO_MANY_REQUESTS = 429
HTTP_SERVER_ERROR = 500
UNLIMITED = 0
JSON_BYTES_PER_CHAR = 12  # the longest JSON escape of one character: a surrogate pair, "\\ud83d\\ude00"
JSON_BODY_SLACK_BYTES = 4096  # the other fields of a speech request
SPEECH_LANGUAGE = "en"  # OpenAI's speech endpoint has no language; the default voice is English
SSE_MEDIA_TYPE = "text/event-stream"
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def engine_failure(exc: EngineError) -> ApiError:
    return ApiError(HTTP_SERVER_ERROR, exc.message, code=exc.code, error_type="server_error")


def sse(event: Mapping[str, Any]) -> bytes:
    """One server-sent event, as OpenAI streams them: a ``data:`` line of JSON and a blank line."""
    return b"data: " + json.dumps(event, separators=(",", ":")).encode() + b"\n\n"


# --- the engines, shared ---------------------------------------------------------------------------


async def transcribe(engines: EngineSet, job_id: str, audio: Samples, options: TranscribeOptions) -> Transcript:
    """One decode through the engine set, as a live session's final (long audio in windows)."""
    results = engines.run_job(Transcribe(job_id, job_id, audio, options, final=True))
    assert isinstance(results, AsyncGenerator), "the engine set has no transcription handler"
    try:
        async with contextlib.aclosing(results):
            async for result in results:
                if isinstance(result, TranscriptReady):
                    return result.transcript
    finally:
        engines.cancel_job(job_id)
    raise EngineError("the recognizer returned no transcript", code="transcription_failed")


async def transcribe_windows(
    engines: EngineSet, job_id: str, audio: Samples, options: TranscribeOptions
) -> AsyncIterator[Transcript]:
    """The transcript of each decode window of ``audio`` as it is ready (for ``stream=true``).

    The windows and their prompts are :meth:`EngineSet._transcribe`'s own: each window after the
    first is prompted with the last words of the one before, after the client's prompt.
    """
    rate = engines.transcriber.sample_rate_hz
    multilingual = engines.transcriber.multilingual
    for index, (start, end) in enumerate(audio_windows(audio, rate)):
        transcript = await transcribe(engines, f"{job_id}_{index}", audio[start:end], options)
        yield transcript
        last_words = " ".join(transcript.text.split()[-PROMPT_WORDS:])
        prompt = " ".join(p for p in (options.prompt, last_words) if p) or None
        language = options.language or (transcript.language if multilingual else None)
        options = dataclasses.replace(options, prompt=prompt, language=language)


async def synthesize(engines: EngineSet, job_id: str, request: SpeechRequest) -> AsyncGenerator[AudioChunk, None]:
    """The speech of ``request`` in chunks, as the voice produces them.

    The text is spoken clause by clause, as a response's is (a short first clause, then sentences),
    each clause its own engine call: the first audio comes after one short clause, and between two
    clauses the shared voices and threads serve the other sessions (4,096 characters are minutes of
    speech, which would otherwise hold a voice throughout).
    """
    splitter = ClauseSplitter()
    for index, clause in enumerate([*splitter.feed(request.text), *splitter.flush()]):
        command = Synthesize(f"{job_id}_{index}", clause, SPEECH_LANGUAGE, request.voice, request.speed)
        results = engines.run_job(command)
        assert isinstance(results, AsyncGenerator), "the engine set has no synthesis handler"
        async with contextlib.aclosing(results):
            async for result in results:
                if isinstance(result, AudioChunk):
                    yield result
                elif isinstance(result, SynthesisDone):
                    break


async def _disconnected(request: Request) -> None:
    """Returns when the client goes away (its body already read, ``receive`` waits for that)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def unless_disconnected(request: Request, work: Coroutine[Any, Any, T]) -> T:
    """The result of ``work``, unless the client goes away first: then ``work`` is cancelled (a
    transcription stops at its next decode window; queued windows never run) and a 499 is raised.

    A client whose HTTP timeout expires (the SDK's is 600 s) and who retries would otherwise have
    the recognizer decode the same long upload twice.
    """
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        if not task.done():
            task.cancel()
    if not task.done():  # the client went away first: let the work clean up (its queued windows)
        await asyncio.wait({task})
        raise ApiError(HTTP_CLIENT_CLOSED, "The client closed the request.", code="client_closed_request")
    return task.result()


# --- the endpoints ---------------------------------------------------------------------------------


@dataclass
class AudioApi:
    """The REST endpoints of one server.

    Args:
        settings: Limits (``max_upload_bytes``, ``max_upload_audio_s``, ``max_speech_input_chars``,
            ``max_audio_requests``).
        engines: The loaded engine set (asked per request: it loads in the app's lifespan).
        refuse: The app's key check of an HTTP request: the 401/429 response, or ``None`` to go on.
        metrics: Where requests are counted (``openrealtime_audio_requests_total``).
    """

    settings: Settings
    engines: Callable[[], EngineSet]
    refuse: Callable[[Request], Awaitable[Response | None]]
    metrics: Metrics
    started_at_s: int = dataclasses.field(default_factory=lambda: int(time.time()))

    def __post_init__(self) -> None:
        self.in_flight = 0  # audio requests being served (checked and taken with no await between)
        self.ids = Ids()
        self._formats = available_formats()

    def routes(self) -> list[Route]:
        """The routes to add to the app."""
        return [
            Route("/v1/audio/transcriptions", _Endpoint(self, "transcriptions", self.transcriptions), methods=["POST"]),
            Route("/v1/audio/translations", _Endpoint(self, "translations", self.translations), methods=["POST"]),
            Route("/v1/audio/speech", _Endpoint(self, "speech", self.speech), methods=["POST"]),
            Route("/v1/models", _Endpoint(self, "models", self.models, limited=False), methods=["GET"]),
            Route("/v1/models/{model:path}", _Endpoint(self, "models", self.model, limited=False), methods=["GET"]),
        ]

    def catalog(self) -> ModelCatalog:
        engines = self.engines()
        return ModelCatalog(engines.transcriber_name, created_s=self.started_at_s)

    async def models(self, request: Request) -> Response:
        return JSONResponse(self.catalog().listing())

    async def model(self, request: Request) -> Response:
        model_id = request.path_params["model"]
        entry = self.catalog().entry(model_id)
        if entry is None:
            raise ApiError(
                HTTP_NOT_FOUND,
                f"The model '{model_id}' does not exist or you do not have access to it.",
                code="model_not_found",
            )
        return JSONResponse(entry)

    async def _form(self, request: Request) -> FormData:
        content_type = request.headers.get("content-type", "")
        if not content_type.lower().startswith("multipart/form-data"):
            raise ApiError(
                HTTP_UNSUPPORTED_MEDIA,
                f"Send the audio as multipart/form-data, not {content_type or 'a body without a Content-Type'}.",
                code="unsupported_media_type",
            )
        body = await self._body(request, self.settings.max_upload_bytes)
        try:
            return parse_form(body, content_type)
        except ProtocolError as exc:
            raise bad_request(exc.message, param=exc.param, code=exc.code or "invalid_multipart") from exc

    async def _body(self, request: Request, max_bytes: int) -> bytes:
        try:
            declared = request.headers.get("content-length")
            return await read_body(request.stream(), declared=declared, max_bytes=max_bytes)
        except BodyTooLargeError as exc:
            raise ApiError(HTTP_TOO_LARGE, exc.message, code=exc.code) from exc

    async def _decode(self, engines: EngineSet, upload: UploadedFile) -> Samples:
        """The upload as samples for the recognizer, decoded in the engines' shared, fair pool."""
        rate = engines.transcriber.sample_rate_hz
        max_s = float(self.settings.max_upload_audio_s)

        def decode() -> Samples | MediaError:  # returned, not raised: the pool reports raised errors as crashes
            try:
                return decode_upload(upload.data, rate_hz=rate, max_s=max_s)
            except MediaError as exc:
                return exc

        decoded = await asyncio.get_running_loop().run_in_executor(engines.stream_pool, decode)
        if isinstance(decoded, MediaError):
            raise bad_request(f"{decoded.message} (file '{upload.filename}')", param="file", code=decoded.code)
        return decoded

    async def transcriptions(self, request: Request) -> Response:
        engines = self.engines()
        form = await self._form(request)
        checked = transcription_request(form, engines)
        return await self._transcription(request, engines, checked, task="transcribe")

    async def translations(self, request: Request) -> Response:
        engines = self.engines()
        form = await self._form(request)
        checked = translation_request(form, engines)
        return await self._transcription(request, engines, checked, task="translate")

    async def _transcription(
        self, request: Request, engines: EngineSet, checked: TranscriptionRequest, *, task: str
    ) -> Response:
        audio = await self._decode(engines, checked.audio_file)
        duration_s = audio.size / engines.transcriber.sample_rate_hz
        job_id = self.ids.new("rest")
        if checked.stream:
            return StreamingResponse(
                self._transcript_events(engines, job_id, audio, checked.options),
                media_type=SSE_MEDIA_TYPE,
                headers=SSE_HEADERS,
            )
        transcript = await unless_disconnected(request, transcribe(engines, job_id, audio, checked.options))
        language = "en" if task == "translate" else checked.options.language
        body = render(
            transcript,
            checked.response_format,
            duration_s=duration_s,
            task=task,
            language=language,
            granularities=checked.granularities,
            logprobs=checked.options.logprobs,
        )
        if isinstance(body, str):
            return PlainTextResponse(body, media_type=checked.response_format.media_type)
        return JSONResponse(body)

    async def _transcript_events(
        self, engines: EngineSet, job_id: str, audio: Samples, options: TranscribeOptions
    ) -> AsyncIterator[bytes]:
        pieces: list[str] = []
        logprobs: list[dict[str, Any]] = []
        try:
            async for transcript in transcribe_windows(engines, job_id, audio, options):
                for event in delta_events(transcript, first=not pieces, logprobs=options.logprobs):
                    pieces.append(event["delta"])
                    logprobs += event.get("logprobs", [])
                    yield sse(event)
        except EngineError as exc:
            log.warning("streamed transcription %s failed: %s", job_id, exc.message)
            yield sse({"type": "error", **engine_failure(exc).body()})
            return
        done: dict[str, Any] = {"type": "transcript.text.done", "text": "".join(pieces)}
        if options.logprobs:
            done["logprobs"] = logprobs  # the deltas' own, so they cover the text exactly
        yield sse(done)

    async def speech(self, request: Request) -> Response:
        engines = self.engines()
        content_type = request.headers.get("content-type", "")
        if not content_type.lower().startswith("application/json"):
            raise ApiError(
                HTTP_UNSUPPORTED_MEDIA,
                f"Send the speech request as application/json, not {content_type or 'a body without a Content-Type'}.",
                code="unsupported_media_type",
            )
        max_chars = self.settings.max_speech_input_chars
        raw = await self._body(request, max_chars * JSON_BYTES_PER_CHAR + JSON_BODY_SLACK_BYTES)
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            raise bad_request(f"The body is not valid JSON: {exc}", param=None, code="invalid_json") from None
        voices = engines.synthesizer_for(SPEECH_LANGUAGE).voices()
        checked = speech_request(body, max_chars=max_chars, formats=self._formats, voices=voices)
        chunks = synthesize(engines, self.ids.new("rest"), checked)
        # The status waits for the first audio, so a voice that fails at once is a plain 500.
        first = await anext(chunks, None)
        if checked.sse:
            return StreamingResponse(
                self._speech_events(checked, first, chunks), media_type=SSE_MEDIA_TYPE, headers=SSE_HEADERS
            )
        audio = self._speech_audio(checked, first, chunks)
        return StreamingResponse(audio, media_type=checked.response_format.media_type)

    async def _speech_audio(
        self, checked: SpeechRequest, first: AudioChunk | None, rest: AsyncGenerator[AudioChunk, None]
    ) -> AsyncIterator[bytes]:
        async with contextlib.aclosing(rest):
            encoder = SpeechEncoder(checked.response_format, first.sample_rate_hz if first else OUTPUT_RATE_HZ)
            chunks = [first] if first is not None else []
            for chunk in chunks:
                if data := encoder.encode(chunk.audio):
                    yield data
            async for chunk in rest:
                if data := encoder.encode(chunk.audio):
                    yield data
            yield encoder.finish()

    async def _speech_events(
        self, checked: SpeechRequest, first: AudioChunk | None, rest: AsyncGenerator[AudioChunk, None]
    ) -> AsyncIterator[bytes]:
        usage = {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}  # no token billing here
        try:
            async for data in self._speech_audio(checked, first, rest):
                if data:
                    yield sse({"type": "speech.audio.delta", "audio": base64.b64encode(data).decode()})
        except EngineError as exc:
            log.warning("streamed speech failed: %s", exc.message)
            yield sse({"type": "error", **engine_failure(exc).body()})
            return
        yield sse({"type": "speech.audio.done", "usage": usage})


class _Endpoint:
    """An ASGI endpoint: the key check, the in-flight limit, the handler, and its errors as JSON.

    The in-flight place is held until the response is sent in full (a stream included), and each
    request is its own session for the engines' fair schedulers.
    """

    def __init__(self, api: AudioApi, name: str, handler: Handler, *, limited: bool = True) -> None:
        self.api, self.name, self.handler, self.limited = api, name, handler, limited

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        api = self.api
        request = Request(scope, receive)
        refusal = await api.refuse(request)
        if refusal is not None:
            await self._send(refusal, scope, receive, send)
            return
        limit = api.settings.max_audio_requests
        if self.limited and limit != UNLIMITED and api.in_flight >= limit:
            api.metrics.refusals.add(reason="capacity", request="audio")
            refused = ApiError(
                HTTP_TOO_MANY_REQUESTS,
                f"This server is serving its limit of {limit} audio requests; try again shortly.",
                code="rate_limit_exceeded",
                error_type="requests",
            )
            await self._send(refused.response(), scope, receive, send)
            return
        api.in_flight += self.limited
        try:
            # Each ASGI request runs in its own task, so this sets the key for this request alone.
            current_session.set(api.ids.new("rest"))
            await self._send(await self._respond(request), scope, receive, send)
        finally:
            api.in_flight -= self.limited

    async def _respond(self, request: Request) -> Response:
        try:
            return await self.handler(request)
        except ApiError as exc:
            return exc.response()
        except EngineError as exc:
            log.warning("%s request failed in an engine: %s", self.name, exc.message)
            return engine_failure(exc).response()
        except Exception:  # our bug: logged with its traceback, answered without it
            log.exception("%s request crashed", self.name)
            return ApiError(
                HTTP_SERVER_ERROR,
                "The server had an error processing your request.",
                code="internal_error",
                error_type="server_error",
            ).response()

    async def _send(self, response: Response, scope: Scope, receive: Receive, send: Send) -> None:
        self.api.metrics.audio_requests.add(endpoint=self.name, status=str(response.status_code))
        try:
            await response(scope, receive, send)
        except EngineError as exc:  # a stream that broke after its status went out: it ends unfinished
            log.warning("%s response stream failed in an engine: %s", self.name, exc.message)
        except Exception:
            log.exception("%s response stream failed", self.name)
