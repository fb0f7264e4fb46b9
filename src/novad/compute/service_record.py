"""This node's nova-compute service record: whether it takes new instances.

An admin disables a node (``openstack compute service set --disable``) to
drain it for maintenance: what runs there keeps running and every action on
it still works, but nothing new is placed on it.  Nova's ComputeFilter skips
a disabled host, so a boot, the unshelve of an offloaded server and a resize
end with NoValidHost (see :mod:`novad.compute.operations`).

As Nova's libvirt driver does, the node disables itself while libvirt is
unreachable, with a reason starting ``AUTO: ``, and enables itself again
when the connection is back -- but only if the disable is still its own, so
an admin's disable is never undone.

An admin may also force the service down (``openstack compute service set
--down``, microversion 2.11), telling the cloud the node is dead whatever
its heartbeat says -- the precondition of evacuating its instances.  A
forced-down service counts as down, so, as Nova's ComputeFilter does with a
service that is not up, nothing new is placed on it either.

The record is a row of the replicated ``services`` table, so an admin may
change it from any node: :meth:`ServiceRecord.load` re-reads it (the node
does so before every gossip of its meta), and the automatic enable and
disable decide on a fresh read.
"""

from __future__ import annotations

import asyncio
from typing import Final

import structlog

from novad.store import Store
from novad.store.models import ServiceRow

log = structlog.get_logger("novad.compute")

BINARY: Final = "nova-compute"
AUTO_PREFIX: Final = "AUTO: "
"""Nova's mark on a disable the service made itself."""


def never_written(host: str) -> ServiceRow:
    """The record of a host nobody has enabled or disabled: enabled."""
    return ServiceRow(host=host, binary=BINARY, disabled=False, disabled_reason=None,
                      updated_at="", forced_down=False)


class ServiceRecord:
    """The durable enabled/disabled state of this node's nova-compute."""

    def __init__(self, store: Store, host: str) -> None:
        self.store = store
        self.host = host
        self._row = never_written(host)  # until load()
        self._lock = asyncio.Lock()

    async def load(self) -> None:
        """Read the stored record (none written yet: enabled).  Called again
        whenever the row may have changed behind this object's back: the
        ``services`` table is replicated, so an admin on another node can
        enable or disable this one."""
        async with self._lock:
            await self._read()

    @property
    def row(self) -> ServiceRow:
        """The current record."""
        return self._row

    @property
    def forced_down(self) -> bool:
        """Whether an admin forced the service down (as last read)."""
        return self._row.forced_down

    def schedulable(self) -> bool:
        """Whether new instances may be placed here (Nova's ComputeFilter:
        enabled, and up -- which a forced-down service is not)."""
        return not self._row.disabled and not self._row.forced_down

    async def set(self, disabled: bool, reason: str | None = None) -> ServiceRow:
        """An admin's enable or disable; enabling clears the reason."""
        async with self._lock:
            return await self._write(disabled, reason if disabled else None)

    async def force_down(self, forced_down: bool) -> ServiceRow:
        """An admin's ``--down`` (True) or ``--up`` (False); the enabled state
        stays as it is."""
        async with self._lock:
            self._row = await self.store.set_forced_down(self.host, BINARY, forced_down)
            return self._row

    async def auto_disable(self, why: str) -> None:
        """Disable because the hypervisor is unreachable, unless already disabled."""
        async with self._lock:
            await self._read()
            if not self._row.disabled:
                log.warning("compute service disabled", reason=AUTO_PREFIX + why)
                await self._write(True, AUTO_PREFIX + why)

    async def auto_enable(self) -> None:
        """Undo :meth:`auto_disable` once the hypervisor is back; an admin's
        disable (any reason not starting ``AUTO: ``) stays."""
        async with self._lock:
            await self._read()
            reason = self._row.disabled_reason or ""
            if self._row.disabled and reason.startswith(AUTO_PREFIX):
                log.info("compute service enabled again", was=reason)
                await self._write(False, None)

    async def _read(self) -> None:
        row = await self.store.get_service(self.host, BINARY)
        self._row = row or never_written(self.host)

    async def _write(self, disabled: bool, reason: str | None) -> ServiceRow:
        self._row = await self.store.set_service(self.host, BINARY, disabled, reason)
        return self._row
