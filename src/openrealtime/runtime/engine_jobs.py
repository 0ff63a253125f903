"""A connection's engine jobs, as a mixin of :class:`~openrealtime.runtime.connection.Connection`
(whose state it uses, through :class:`_Connection`): one task per command id that forwards the
command's results to the session loop (an engine failure becomes ``JobFailed``), started paced
(:mod:`~openrealtime.runtime.pacing`) or as bulk work, or refused by the transcription backlog
(:mod:`~openrealtime.runtime.backlog`); a ``CancelJob`` ends its task.

A job waits for one of the inbox's ``RESULTS_LIMIT`` result slots before it queues a result (the
session loop frees one as it takes it): backpressure on our own engines, never a drop.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import AsyncIterator, Callable
from typing import Protocol

from openrealtime.exceptions import EngineError
from openrealtime.runtime.backlog import TranscriptionBacklog
from openrealtime.runtime.pacing import SpeechPacer
from openrealtime.runtime.scheduler import bulk_work
from openrealtime.session.commands import JobFailed, Synthesize, Transcribe

log = logging.getLogger(__name__)


class _Connection(Protocol):
    """What of the connection the mixin uses."""

    _inbox: asyncio.Queue[object]
    _jobs: dict[str, asyncio.Task[None]]
    _tg: asyncio.TaskGroup
    _backlog: TranscriptionBacklog
    _pacer: SpeechPacer
    _result_slots: asyncio.Semaphore
    _run_job: Callable[[object], AsyncIterator[object] | None]
    _cancel_job: Callable[[str], None]

    async def _job(self, job_id: str, results: AsyncIterator[object], delay_s: float = 0) -> None: ...

    async def _put_result(self, result: object) -> None: ...


class EngineJobs:
    """Engine jobs started, cancelled and forwarded, for :class:`~openrealtime.runtime.connection.Connection`."""

    def _start_job(self: _Connection, command: object) -> None:
        """Start ``command``'s job (a transcription the backlog refuses fails at once, as a job)."""
        if isinstance(command, Transcribe):
            refusal = self._backlog.admit(command)
            if refusal is not None:
                self._jobs[command.job_id] = self._tg.create_task(self._job(command.job_id, refusal))
                return
        results = self._run_job(command)
        job_id = getattr(command, "job_id", None)
        if results is None or job_id is None:
            return
        delay_s = self._pacer.delay_s(command.stream, command.at_ms) if isinstance(command, Synthesize) else 0
        context = None  # the task copies the current one, as usual
        if isinstance(command, Transcribe) and self._backlog.bulk():
            context = contextvars.copy_context()
            context.run(bulk_work.set, True)  # audio faster than real time: decoded as bulk work
        self._jobs[job_id] = self._tg.create_task(self._job(job_id, results, delay_s), context=context)

    def _cancel(self: _Connection, job_id: str) -> None:
        """``CancelJob``: the engine drops it, and its task ends."""
        self._cancel_job(job_id)
        self._backlog.ended(job_id)
        task = self._jobs.pop(job_id, None)
        if task is not None:
            task.cancel()

    async def _job(self: _Connection, job_id: str, results: AsyncIterator[object], delay_s: float = 0) -> None:
        """Forward a command's results to the session loop, starting it after ``delay_s`` (paced
        speech); an engine failure becomes ``JobFailed``."""
        try:
            if delay_s > 0:
                await asyncio.sleep(delay_s)
            async for result in results:
                await self._put_result(result)
        except EngineError as exc:
            await self._put_result(JobFailed(job_id=job_id, code=exc.code, message=exc.message))
        except Exception as exc:  # a crashing engine fails its job, never the session
            log.exception("engine job %s crashed", job_id)
            await self._put_result(JobFailed(job_id=job_id, code="engine_error", message=f"engine crashed: {exc}"))
        finally:
            self._jobs.pop(job_id, None)
            self._backlog.ended(job_id)
            aclose = getattr(results, "aclose", None)
            if aclose is not None:
                await aclose()

    async def _put_result(self: _Connection, result: object) -> None:
        """Queue an engine result; a job may wait here for room, the session loop never does."""
        await self._result_slots.acquire()
        self._inbox.put_nowait(result)
