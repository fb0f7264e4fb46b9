"""Resource claims: the node the scheduler chose checks, atomically in its
own store, that a new server still fits before it creates the server.

The scheduler decides on what gossip said a moment ago; several nodes may
pick the same host at once.  The claim is the authoritative check: under
one lock per node, the flavors of every live instance here (building ones
included, since their rows exist from the first moment) plus the new ones
must pass Nova's CoreFilter, RamFilter and DiskFilter against the
hypervisor's capacity with this node's allocation ratios and reserves.
A failed claim is 409 :class:`~novad.errors.ClaimFailed`, and the node
that placed the request tries its next candidate (``[scheduler] max_attempts``).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

from novad.cluster.scheduler import FILTERS, Flavor, HostState, RequestSpec
from novad.config import Config
from novad.drivers.base import Driver
from novad.errors import ClaimFailed
from novad.store import Store
from novad.store.models import Flavor as FlavorRow

_CHECKS = ("CoreFilter", "RamFilter", "DiskFilter")


class Claims:
    """This node's claims (see the module docstring)."""

    def __init__(self, config: Config, store: Store, driver: Driver) -> None:
        self.config = config
        self.store = store
        self.driver = driver
        self.host = config.host
        self._lock = asyncio.Lock()
        self._filters = [FILTERS[name](config) for name in _CHECKS]

    async def used(self) -> tuple[int, int, int]:
        """vCPUs, RAM (MiB) and disk (GiB) the live instances here hold."""
        rows = await self.store.db.fetch(
            "SELECT COALESCE(SUM(json_extract(flavor, '$.vcpus')), 0),"
            " COALESCE(SUM(json_extract(flavor, '$.memory_mb')), 0),"
            " COALESCE(SUM(json_extract(flavor, '$.root_gb')"
            " + json_extract(flavor, '$.ephemeral_gb')), 0)"
            " FROM instances WHERE deleted = 0 AND host = ?", (self.host,))
        vcpus, ram, disk = rows[0]
        # Moves prepared here hold their claim until the instance arrives.
        moving = await self.store.db.fetch(
            "SELECT COALESCE(SUM(json_extract(flavor, '$.vcpus')), 0),"
            " COALESCE(SUM(json_extract(flavor, '$.memory_mb')), 0),"
            " COALESCE(SUM(json_extract(flavor, '$.root_gb')"
            " + json_extract(flavor, '$.ephemeral_gb')), 0)"
            " FROM move_preps WHERE state = 'prepared'")
        return int(vcpus) + int(moving[0][0]), int(ram) + int(moving[0][1]), \
            int(disk) + int(moving[0][2])

    async def host_state(self) -> HostState:
        """This node as the scheduler sees it, with the store's usage."""
        res = await self.driver.host_resources()
        vcpus, ram, disk = await self.used()
        d = self.config.DEFAULT
        return HostState(
            name=self.host, vcpus=res.vcpus, vcpus_used=vcpus, memory_mb=res.memory_mb,
            memory_mb_used=ram, local_gb=res.local_gb, local_gb_used=disk,
            cpu_allocation_ratio=d.cpu_allocation_ratio,
            ram_allocation_ratio=d.ram_allocation_ratio,
            disk_allocation_ratio=d.disk_allocation_ratio,
            reserved_host_memory_mb=d.reserved_host_memory_mb,
            reserved_host_disk_mb=d.reserved_host_disk_mb,
            reserved_host_cpus=d.reserved_host_cpus)

    @contextlib.asynccontextmanager
    async def claim(self, flavor: FlavorRow, count: int) -> AsyncIterator[None]:
        """Hold the claim while the caller creates ``count`` instances of
        ``flavor``; ClaimFailed (nothing created) when they do not fit."""
        async with self._lock:
            host = await self.host_state()
            spec = RequestSpec(instance_uuid=str(uuid.uuid4()), flavor=Flavor(
                vcpus=flavor.vcpus, memory_mb=flavor.memory_mb, root_gb=flavor.root_gb,
                ephemeral_gb=flavor.ephemeral_gb, swap=flavor.swap))
            for _ in range(count):
                for check in self._filters:
                    if not check.host_passes(host, spec):
                        raise ClaimFailed(f"Claim failed on {self.host}: {check.name} "
                                          f"(flavor {flavor.id} × {count})")
                host = host.consume(spec)
            yield
