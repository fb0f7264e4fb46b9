"""One supervisor for all background work: named periodic jobs and operations.

Periodic jobs (power sync, resize auto-confirm, shelved offload, reclaim,
token purge) and the long-running part of every accepted action run as
named tasks of one ``asyncio.TaskGroup``.  Nothing is fire-and-forget: the
supervisor knows every task, logs every failure, and on shutdown gives
in-flight operations a grace period before cancelling them (a cancelled
operation is finished by crash recovery at the next start).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import structlog

log = structlog.get_logger("novad.supervisor")


class Supervisor:
    """Owns the daemon's background tasks."""

    def __init__(self) -> None:
        self._group: asyncio.TaskGroup | None = None
        self._runner: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._ready = asyncio.Event()
        self._operations: set[asyncio.Task[None]] = set()
        self._jobs: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Open the task group."""
        self._runner = asyncio.create_task(self._run(), name="supervisor")
        await self._ready.wait()

    async def _run(self) -> None:
        async with asyncio.TaskGroup() as group:
            self._group = group
            self._ready.set()
            await self._stopping.wait()
            for task in self._jobs:
                task.cancel()
        self._group = None

    def _create(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        if self._group is None:
            coro.close()
            raise RuntimeError("supervisor is not running")
        return self._group.create_task(coro, name=name)

    def spawn(self, name: str, work: Callable[[], Awaitable[object]]) -> asyncio.Task[None]:
        """Run one operation in the background; its errors are logged, never
        raised.  The task is returned so a caller may wait for the end."""
        task = self._create(self._guarded(name, work), name)
        self._operations.add(task)
        task.add_done_callback(self._operations.discard)
        return task

    def every(self, name: str, interval: float, job: Callable[[], Awaitable[object]],
              *, run_now: bool = True, jitter: float = 0.0) -> None:
        """Run ``job`` every ``interval`` seconds (first run at once if ``run_now``)."""
        task = self._create(self._periodic(name, interval, job, run_now, jitter), name)
        self._jobs.add(task)

    def run_forever(self, name: str, job: Callable[[], Awaitable[object]]) -> None:
        """Run a long-lived job (an event consumer); cancelled at shutdown."""
        task = self._create(self._guarded(name, job), name)
        self._jobs.add(task)

    async def _guarded(self, name: str, work: Callable[[], Awaitable[object]]) -> None:
        try:
            await work()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("background task failed", task=name)

    async def _periodic(self, name: str, interval: float, job: Callable[[], Awaitable[object]],
                        run_now: bool, jitter: float) -> None:
        if not run_now:
            await asyncio.sleep(interval + random.uniform(0, jitter))
        while True:
            await self._guarded(name, job)
            await asyncio.sleep(interval)

    @property
    def in_flight(self) -> int:
        """Operations still running."""
        return len(self._operations)

    async def drain(self) -> None:
        """Wait until no operation is running (tests and benchmarks)."""
        while self._operations:
            await asyncio.gather(*list(self._operations), return_exceptions=True)

    async def stop(self, grace: float = 10.0) -> None:
        """Stop the jobs, give operations ``grace`` seconds, then cancel them."""
        if self._operations:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace):
                    await self.drain()
        for task in list(self._operations):
            task.cancel()
        self._stopping.set()
        if self._runner is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
