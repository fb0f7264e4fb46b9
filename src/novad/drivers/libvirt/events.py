"""libvirt's event loop and the bridge from lifecycle events to asyncio.

Why libvirt's own event loop in a thread, not ``libvirtaio``: every blocking
libvirt call runs in the driver's worker threads, and libvirt calls the
registered event implementation from whichever thread makes the API call
(measured: ``virDomainSuspend`` on ``test:///default`` updates a timer from
the calling thread; every RPC on ``qemu:///system`` updates the socket
watch from it).  ``libvirtaio`` then touches the asyncio loop from a worker
thread (``loop.add_reader``, ``ensure_future``), which asyncio does not
allow, and it stays bound to the first event loop of the process.
libvirt's default implementation is thread-safe; run in one daemon thread,
as Nova does, it delivers events there, and the bridge hands each one to
the driver's loop with ``call_soon_threadsafe``.  Nothing ever waits for
the event thread to drain.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from typing import Any, Final

import libvirt

from novad.drivers.base import GuestEvent, LifecycleEvent
from novad.drivers.libvirt.virt import VirDomain, error_message, instance_id_of

_log = logging.getLogger(__name__)

_registered = False
_register_lock = threading.Lock()

EVENT_STARTED: Final[int] = libvirt.VIR_DOMAIN_EVENT_STARTED
EVENT_SUSPENDED: Final[int] = libvirt.VIR_DOMAIN_EVENT_SUSPENDED
EVENT_RESUMED: Final[int] = libvirt.VIR_DOMAIN_EVENT_RESUMED
EVENT_STOPPED: Final[int] = libvirt.VIR_DOMAIN_EVENT_STOPPED
EVENT_PMSUSPENDED: Final[int] = libvirt.VIR_DOMAIN_EVENT_PMSUSPENDED
STOPPED_SAVED: Final[int] = libvirt.VIR_DOMAIN_EVENT_STOPPED_SAVED

QUEUE_LIMIT: Final = 10_000
"""Events kept for a slow consumer; past this the oldest are dropped.
Power-state sync is the backstop for a lost event, as in Nova."""


def ensure_event_loop() -> None:
    """Register libvirt's event loop and start its thread, once per process.

    Must run before the first ``libvirt.open`` that wants events.
    """
    global _registered
    with _register_lock:
        if _registered:
            return
        libvirt.virEventRegisterDefaultImpl()
        threading.Thread(target=_run_event_loop, name="libvirt-events", daemon=True).start()
        _registered = True


def _run_event_loop() -> None:
    """Body of the event thread: run libvirt's loop for the process's life."""
    while True:
        try:
            libvirt.virEventRunDefaultImpl()
        except Exception as exc:  # the loop must outlive any failing callback
            _log.warning("libvirt event loop iteration failed: %s", error_message(exc))
            time.sleep(0.1)


def map_lifecycle(event: int, detail: int) -> LifecycleEvent | None:
    """Map a libvirt lifecycle event to novad's vocabulary (None: not reported).

    A managed save is STOPPED with detail SAVED, reported as SUSPENDED; a
    restore is STARTED (detail RESTORED), reported as STARTED.
    """
    if event == EVENT_STARTED:
        return LifecycleEvent.STARTED
    if event == EVENT_STOPPED:
        return LifecycleEvent.SUSPENDED if detail == STOPPED_SAVED else LifecycleEvent.STOPPED
    if event == EVENT_SUSPENDED:
        return LifecycleEvent.PAUSED
    if event == EVENT_RESUMED:
        return LifecycleEvent.RESUMED
    if event == EVENT_PMSUSPENDED:
        return LifecycleEvent.SUSPENDED
    return None


class EventBridge:
    """Carries lifecycle events from libvirt's thread to asyncio consumers.

    Each running :meth:`events` iteration has its own queue, so several
    consumers each see every event.  Events that arrive while nobody
    listens (between ``start()`` and the first consumer, say) wait in a
    backlog that the next consumer receives first.  A driver call waiting
    for one guest to change (a shutdown) :meth:`watch`-es it instead of
    polling.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._queues: set[asyncio.Queue[GuestEvent | None]] = set()
        self._watchers: dict[str, set[asyncio.Event]] = {}
        self._backlog: deque[GuestEvent] = deque(maxlen=QUEUE_LIMIT)
        self._closed = False
        self._dropped = 0

    def on_lifecycle(self, _conn: Any, dom: VirDomain, event: int, detail: int,
                     _opaque: Any) -> None:
        """libvirt's callback; runs on the event thread, so it only hands over."""
        kind = map_lifecycle(event, detail)
        if kind is None:
            return
        instance_id = instance_id_of(dom.name())
        if instance_id is None:
            return
        try:
            self._loop.call_soon_threadsafe(self._put, GuestEvent(instance_id, kind))
        except RuntimeError:
            pass  # the loop is closed: nobody is listening any more

    def announce(self, instance_id: str, kind: LifecycleEvent) -> None:
        """Report a guest's state as an event (loop thread), e.g. what it is
        found in after events could not arrive."""
        self._put(GuestEvent(instance_id, kind))

    @contextlib.contextmanager
    def watch(self, instance_id: str) -> Iterator[asyncio.Event]:
        """An :class:`asyncio.Event` that every lifecycle event of
        ``instance_id`` sets while the block runs (loop thread).  Clear it
        before reading the guest's state, and no change can slip between
        the read and the wait."""
        changed = asyncio.Event()
        watchers = self._watchers.setdefault(instance_id, set())
        watchers.add(changed)
        try:
            yield changed
        finally:
            watchers.discard(changed)
            if not watchers:
                self._watchers.pop(instance_id, None)

    def _put(self, item: GuestEvent | None) -> None:
        """Hand an item to every consumer, or to the backlog (loop thread).
        A full queue or backlog loses its oldest event."""
        if item is not None:
            for changed in self._watchers.get(item.instance_id, ()):
                changed.set()
        if item is not None and not self._queues:
            if len(self._backlog) == QUEUE_LIMIT:
                self._note_drop()
            self._backlog.append(item)
            return
        for queue in self._queues:
            if item is not None and queue.qsize() >= QUEUE_LIMIT:
                queue.get_nowait()
                self._note_drop()
            queue.put_nowait(item)

    def _note_drop(self) -> None:
        """Count a lost event; say so once per thousand."""
        self._dropped += 1
        if self._dropped % 1000 == 1:
            _log.warning("lifecycle events not consumed; %d dropped so far", self._dropped)

    def close(self) -> None:
        """End every ``events()`` iteration after the events already queued."""
        self._closed = True
        self._put(None)

    async def events(self) -> AsyncIterator[GuestEvent]:
        """Yield the backlog, then new events until :meth:`close`."""
        if self._closed:
            return
        queue: asyncio.Queue[GuestEvent | None] = asyncio.Queue()
        while self._backlog:
            queue.put_nowait(self._backlog.popleft())
        self._queues.add(queue)
        try:
            while (item := await queue.get()) is not None:
                yield item
        finally:
            self._queues.discard(queue)
