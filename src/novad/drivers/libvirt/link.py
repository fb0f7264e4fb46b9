"""The driver's connection to libvirt: its worker threads, its lifecycle
events, and getting it back when libvirtd goes away.

One :class:`Link` owns one ``virConnect`` at a time, the thread pool every
blocking call runs in, and the :class:`~novad.drivers.libvirt.events.EventBridge`
that carries lifecycle events to asyncio.  When libvirtd restarts (an
upgrade, a crash), libvirt's close callback fires; the link opens a new
connection with back-off, subscribes it to the same bridge, swaps it in and
tells its owner (``on_reconnected``), which reports what changed meanwhile.
Calls made while libvirtd is down fail on the old connection, as they would
against a stopped libvirtd.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final, TypeVar

import structlog

from novad.drivers.base import GuestEvent
from novad.drivers.libvirt import virt
from novad.drivers.libvirt.events import EventBridge, ensure_event_loop
from novad.drivers.libvirt.virt import LibvirtError, VirConnect, error_code
from novad.errors import DriverError

log = structlog.get_logger("novad.driver")

_T = TypeVar("_T")

RECONNECT_FIRST_DELAY: Final = 0.5
RECONNECT_MAX_DELAY: Final = 10.0
"""Seconds between attempts to reach libvirtd again after losing it
(doubling from the first, up to the most)."""


class Link:
    """A libvirt connection that comes back by itself."""

    def __init__(self, uri: str, workers: int,
                 on_lost: Callable[[int], None],
                 on_reconnected: Callable[[], Awaitable[None]]) -> None:
        self.uri = uri
        self._workers = workers
        self._on_lost = on_lost
        self._on_reconnected = on_reconnected
        self._pool: ThreadPoolExecutor | None = None
        self._conn: VirConnect | None = None
        self._bridge: EventBridge | None = None
        self._callback_id: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reconnecting: asyncio.Task[None] | None = None

    @property
    def started(self) -> bool:
        return self._conn is not None

    @property
    def conn(self) -> VirConnect:
        """The current connection (DriverError before :meth:`start`)."""
        if self._conn is None:
            raise DriverError("The libvirt driver is not started.")
        return self._conn

    @property
    def bridge(self) -> EventBridge:
        """Where lifecycle events go (DriverError before :meth:`start`)."""
        if self._bridge is None:
            raise DriverError("The libvirt driver is not started.")
        return self._bridge

    async def run(self, fn: Callable[..., _T], *args: Any) -> _T:
        """Run one blocking libvirt call in the link's threads."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def start(self) -> None:
        """Connect and subscribe to lifecycle events.  Raises DriverError
        (one line, naming the URI) when libvirt is unreachable.  Idempotent."""
        if self._conn is not None:
            return
        virt.silence_default_error_handler()
        ensure_event_loop()
        loop = asyncio.get_running_loop()
        self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="libvirt")
        try:
            conn = await loop.run_in_executor(self._pool, virt.open_connection, self.uri)
        except LibvirtError as exc:
            self._pool.shutdown(wait=False)
            self._pool = None
            message = " ".join(virt.error_message(exc).split())
            raise DriverError(f"Cannot connect to libvirt at {self.uri}: {message}") from exc
        self._loop, self._bridge = loop, EventBridge(loop)
        try:
            self._callback_id = await loop.run_in_executor(self._pool, self._subscribe, conn)
        except LibvirtError as exc:
            await loop.run_in_executor(self._pool, conn.close)
            self._pool.shutdown(wait=False)
            self._pool = None
            raise virt.driver_error(exc) from exc
        self._conn = conn

    async def close(self) -> None:
        """Stop events and disconnect; guests keep running.  Idempotent."""
        conn, pool = self._conn, self._pool
        if conn is None or pool is None:
            return
        self._conn, self._pool = None, None
        if self._reconnecting is not None:
            self._reconnecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reconnecting
        loop = asyncio.get_running_loop()
        with contextlib.suppress(LibvirtError):  # none registered (test:///), or gone
            await loop.run_in_executor(pool, conn.unregisterCloseCallback)
        try:
            if self._callback_id is not None:
                await loop.run_in_executor(pool, conn.domainEventDeregisterAny, self._callback_id)
            await loop.run_in_executor(pool, conn.close)
        except LibvirtError:
            pass  # the connection is already gone; nothing left to release
        finally:
            self._callback_id = None
            if self._bridge is not None:
                self._bridge.close()
            pool.shutdown(wait=False)

    async def events(self) -> AsyncIterator[GuestEvent]:
        """Lifecycle events until :meth:`close` (see EventBridge.events)."""
        async for event in self.bridge.events():
            yield event

    # -- losing libvirtd and getting it back ------------------------------

    def _subscribe(self, conn: VirConnect) -> int:
        """Lifecycle events and the close callback of ``conn`` (blocks);
        returns the event callback's id."""
        callback_id = int(conn.domainEventRegisterAny(None, virt.EVENT_ID_LIFECYCLE,
                                                      self.bridge.on_lifecycle, None))
        try:
            conn.registerCloseCallback(self._on_close, None)
        except LibvirtError as exc:  # in-process drivers (test:///) have no daemon to lose
            if error_code(exc) != virt.ERR_NO_SUPPORT:
                raise
        return callback_id

    def _on_close(self, conn: VirConnect, reason: int, _opaque: Any) -> None:
        """libvirt's close callback (event thread): libvirtd went away or
        the connection broke.  Reconnecting happens on the loop."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._lost, conn, reason)

    def _lost(self, conn: VirConnect, reason: int) -> None:
        if conn is not self._conn or self._reconnecting is not None:
            return  # closed by us, or already being replaced
        log.warning("libvirt connection lost; reconnecting", uri=self.uri, reason=reason)
        self._on_lost(reason)
        self._reconnecting = asyncio.get_running_loop().create_task(
            self._reconnect(conn), name="libvirt-reconnect")

    async def _reconnect(self, old: VirConnect) -> None:
        """Open a new connection (retrying with back-off while the link is
        started), subscribe it, swap it in, then call ``on_reconnected``."""
        loop = asyncio.get_running_loop()
        delay = RECONNECT_FIRST_DELAY
        try:
            while self._conn is old and self._pool is not None:
                try:
                    conn = await loop.run_in_executor(self._pool, virt.open_connection, self.uri)
                    callback_id = await loop.run_in_executor(self._pool, self._subscribe, conn)
                except LibvirtError as exc:
                    log.info("libvirt still unreachable", uri=self.uri,
                             error=virt.error_message(exc), retry_in=delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, RECONNECT_MAX_DELAY)
                    continue
                self._conn, self._callback_id = conn, callback_id
                with contextlib.suppress(LibvirtError):
                    await loop.run_in_executor(self._pool, old.close)
                log.info("libvirt connection re-established", uri=self.uri)
                await self._on_reconnected()
        finally:
            self._reconnecting = None
