"""Power-state synchronisation (facts §5), from lifecycle events and a sweep.

The hypervisor is the authority on power.  For an instance with no task
running, the driver's power state is written to the store, then vm_state is
reconciled by Nova's table: an ACTIVE guest found shut down is stopped
through the normal ``stop`` action, a STOPPED guest found running is forced
off again, and so on.  Lifecycle events trigger the same routine only if an
uncached query still agrees with the event; STOPPED events wait
``stopped_event_delay`` seconds (Nova: 15) so a reboot does not look like a
stop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

from novad.context import RequestContext
from novad.drivers.base import GuestEvent, LifecycleEvent
from novad.errors import InstanceInvalidState, InstanceNotFound, NovadError
from novad.states.enums import PowerState as P, VmState as V
from novad.store import Store
from novad.store.models import Expect, Instance

log = structlog.get_logger("novad.power_sync")

EVENT_POWER = {
    LifecycleEvent.STOPPED: P.SHUTDOWN,
    LifecycleEvent.STARTED: P.RUNNING,
    LifecycleEvent.PAUSED: P.PAUSED,
    LifecycleEvent.RESUMED: P.RUNNING,
    LifecycleEvent.SUSPENDED: P.SUSPENDED,
}

Act = Callable[[RequestContext, str, str], Awaitable[object]]


class PowerSync:
    """Reconciles stored power and vm states with the hypervisor."""

    def __init__(self, store: Store, get_power: Callable[[str], Awaitable[P]], host: str,
                 act: Act, force_stop: Callable[[Instance], Awaitable[None]],
                 stopped_event_delay: float = 15.0) -> None:
        self.store = store
        self.get_power = get_power
        self.host = host
        self.act = act
        self.force_stop = force_stop
        self.stopped_event_delay = stopped_event_delay
        self._in_flight: set[str] = set()
        self._pending_stop: dict[str, asyncio.TimerHandle] = {}
        self._queue: asyncio.Queue[str] = asyncio.Queue()

    async def sweep(self) -> int:
        """The periodic task: sync every instance on this host; returns how many."""
        rows = await self.store.list_instances(host=self.host)
        synced = 0
        for inst in rows:
            if inst.task_state is None and await self.sync(inst.uuid):
                synced += 1
        return synced

    async def sync(self, uuid: str, expected: P | None = None) -> bool:
        """Sync one instance; False when skipped (task running, gone, in flight)."""
        if uuid in self._in_flight:
            return False
        self._in_flight.add(uuid)
        try:
            return await self._sync(uuid, expected)
        finally:
            self._in_flight.discard(uuid)

    async def _sync(self, uuid: str, expected: P | None) -> bool:
        try:
            inst = await self.store.get_instance(uuid)
        except InstanceNotFound:
            return False
        if inst.task_state is not None or inst.host != self.host:
            return False
        power = await self.get_power(uuid)
        if expected is not None and power is not expected:
            return False  # a stale event: the guest has moved on
        if power is not inst.power_state:
            try:
                inst = await self.store.write(uuid, Expect(frozenset({inst.vm_state}),
                                                           frozenset({None})),
                                              {"power_state": power})
            except NovadError:
                return False  # a task started meanwhile; it owns the instance now
        await self._reconcile(inst, power)
        return True

    async def _reconcile(self, inst: Instance, power: P) -> None:
        vm = inst.vm_state
        ctx = RequestContext.admin()
        try:
            if vm is V.ACTIVE and power in (P.SHUTDOWN, P.CRASHED, P.SUSPENDED):
                log.warning("instance shut down behind our back; stopping it",
                            instance_id=inst.uuid, power_state=power.name)
                await self.act(ctx, inst.uuid, "stop")
            elif vm is V.ACTIVE and power in (P.PAUSED, P.NOSTATE):
                log.warning("instance is %s but vm_state is active" % power.name,
                            instance_id=inst.uuid)
            elif vm is V.STOPPED and power not in (P.NOSTATE, P.SHUTDOWN, P.CRASHED):
                log.warning("stopped instance is running; powering it off",
                            instance_id=inst.uuid, power_state=power.name)
                await self.force_stop(inst)
            elif vm is V.PAUSED and power in (P.SHUTDOWN, P.CRASHED):
                await self.force_stop(inst)
        except InstanceInvalidState as exc:
            log.info("power sync action refused", instance_id=inst.uuid, error=exc.message)

    def on_event(self, event: GuestEvent) -> None:
        """Queue an event's instance; STOPPED waits, any later event cancels it."""
        pending = self._pending_stop.pop(event.instance_id, None)
        if pending is not None:
            pending.cancel()
        if event.event is LifecycleEvent.STOPPED and self.stopped_event_delay > 0:
            loop = asyncio.get_running_loop()
            self._pending_stop[event.instance_id] = loop.call_later(
                self.stopped_event_delay, self._queue.put_nowait, event.instance_id)
            return
        self._queue.put_nowait(event.instance_id)

    async def consume(self, events: Callable[[], object]) -> None:
        """Run forever: feed driver events in, sync queued instances."""
        source = events()
        feeder = asyncio.create_task(self._feed(source), name="power-sync-feed")
        try:
            while True:
                uuid = await self._queue.get()
                await self.sync(uuid)
        finally:
            feeder.cancel()
            for handle in self._pending_stop.values():
                handle.cancel()

    async def _feed(self, source: object) -> None:
        async for event in source:  # type: ignore[attr-defined]
            self.on_event(event)
