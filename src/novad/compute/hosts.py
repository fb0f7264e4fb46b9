"""The cluster's compute hosts as this node sees them: what ``os-services``,
``os-hypervisors`` and ``os-availability-zone`` show, the same from any node.

There is one :class:`ComputeHost` per member that membership knows (dead and
left ones too, until membership forgets them), and always one for this node:

- what it has and where it is: this node's resources from its own driver,
  every other member's from the meta it gossips (``app._gossip_meta``);
- whether it is up: this node always, another while membership believes it
  alive -- unless an admin forced it down (``forced_down`` of its row), which
  makes it down whatever its heartbeat says, as Nova's service group does;
- whether it takes new instances: its row of the replicated ``services``
  table, which every node holds and any node may write (a host without a
  row is enabled).  The owner notices a change made elsewhere when it
  re-reads its :class:`~novad.compute.service_record.ServiceRecord`.
"""

from __future__ import annotations

import time
import uuid
import zlib
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from novad.cluster.members import Member, MemberState
from novad.compute.service_record import BINARY, ServiceRecord, never_written
from novad.drivers.base import HostResources
from novad.errors import NotFound
from novad.store.db import utcnow
from novad.store.models import ServiceRow

LOCAL_ID = 1
"""This node's id in ``os-services`` and ``os-hypervisors`` (as before the cluster)."""


def stable_id(name: str) -> int:
    """A member's id as the other nodes show it: the same on every node and
    across restarts (a hash of its name), and never :data:`LOCAL_ID`."""
    return 2 + zlib.crc32(name.encode()) % (2**31 - 2)


UUID_NAMESPACE = uuid.UUID("6b1e3c52-7f0a-5d43-9a8e-2c41d0f5b7e9")
"""The namespace of the UUIDs novad derives for services and hypervisors."""


def service_uuid(name: str) -> str:
    """A host's nova-compute UUID (os-services from 2.53): derived from its
    name, so the same on every node and across restarts."""
    return str(uuid.uuid5(UUID_NAMESPACE, f"service/{BINARY}/{name}"))


def hypervisor_uuid(name: str) -> str:
    """A host's hypervisor UUID (os-hypervisors from 2.53), as :func:`service_uuid`."""
    return str(uuid.uuid5(UUID_NAMESPACE, f"hypervisor/{name}"))


@dataclass(frozen=True)
class ComputeHost:
    """One nova-compute host of the cluster."""

    name: str
    id: int
    zone: str
    alive: bool
    """What the heartbeat says: this node always, another by membership."""
    service: ServiceRow
    seen_at: str
    """When this node last heard from it (store timestamp format, UTC)."""
    local: bool
    meta: Mapping[str, Any]
    """What it gossips about itself (empty for this node: its driver knows better)."""

    @property
    def enabled(self) -> bool:
        """Whether it takes new instances."""
        return not self.service.disabled

    @property
    def forced_down(self) -> bool:
        """Whether an admin forced its service down (os-services force-down)."""
        return self.service.forced_down

    @property
    def up(self) -> bool:
        """Whether its service is up: alive and not forced down (Nova's
        ``service_is_up``)."""
        return self.alive and not self.service.forced_down

    @property
    def service_uuid(self) -> str:
        """Its nova-compute's UUID (2.53)."""
        return service_uuid(self.name)

    @property
    def hypervisor_uuid(self) -> str:
        """Its hypervisor's UUID (2.53)."""
        return hypervisor_uuid(self.name)

    def known_as(self, ident: str) -> bool:
        """Whether ``ident`` names it: its id here, or the id other nodes give it."""
        return ident in (str(self.id), str(stable_id(self.name)))


def host_status(hosts: Mapping[str, ComputeHost], host: str) -> str:
    """An instance's ``host_status`` (microversion 2.16) from the host it is
    on, in Nova's order: ``""`` without a host; ``UNKNOWN`` for a host no
    node knows; ``DOWN`` when an admin forced its service down;
    ``MAINTENANCE`` when its service is disabled; ``UP`` while membership
    believes it alive, else ``UNKNOWN`` (a silent node may still run it)."""
    if not host:
        return ""
    found = hosts.get(host)
    if found is None:
        return "UNKNOWN"
    if found.forced_down:
        return "DOWN"
    if not found.enabled:
        return "MAINTENANCE"
    return "UP" if found.alive else "UNKNOWN"


class HostStatuses:
    """:func:`host_status` of the hosts of one listing, each worked out once
    however many of the listed instances are on it."""

    def __init__(self, hosts: Iterable[ComputeHost]) -> None:
        self._hosts = {h.name: h for h in hosts}
        self._known: dict[str, str] = {}

    def status(self, host: str) -> str:
        """``host``'s :func:`host_status`."""
        found = self._known.get(host)
        if found is None:
            found = self._known[host] = host_status(self._hosts, host)
        return found


@dataclass(frozen=True)
class Zone:
    """An availability zone and its hosts that are up."""

    name: str
    available: bool
    hosts: tuple[ComputeHost, ...]


def zones(hosts: Sequence[ComputeHost]) -> list[Zone]:
    """The zones of the hosts that are up, by name; a zone is available
    while one of them takes new instances (as Nova lists the zone of a
    disabled service as not available)."""
    by_zone: dict[str, list[ComputeHost]] = {}
    for host in hosts:  # a forced-down host is listed, not available (as Nova)
        if host.alive and host.zone:
            by_zone.setdefault(host.zone, []).append(host)
    return [Zone(name, any(h.enabled for h in members), tuple(members))
            for name, members in sorted(by_zone.items())]


class ServiceStore(Protocol):
    """The service records (:class:`novad.store.Store` fits as it is)."""

    async def list_services(self, binary: str) -> list[ServiceRow]:
        """Every record of ``binary``."""

    async def set_service(self, host: str, binary: str, disabled: bool,
                          reason: str | None) -> ServiceRow:
        """Enable or disable ``binary`` on ``host``; durable on return."""

    async def set_forced_down(self, host: str, binary: str, forced_down: bool) -> ServiceRow:
        """Force ``binary`` on ``host`` down or clear that; durable on return."""


class Hosts:
    """The compute hosts of the cluster (see the module docstring).

    ``members`` is membership's view (``ClusterService.members``; empty
    before the node joined), ``clock`` the clock its ``last_seen`` times are
    on.  ``record`` is this node's own service record; None: this node is
    always enabled and cannot be disabled.
    """

    def __init__(self, store: ServiceStore, host: str, zone: str,
                 resources: Callable[[], Awaitable[HostResources]],
                 record: ServiceRecord | None = None,
                 members: Callable[[], Sequence[Member]] = list,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.host = host
        self.zone = zone
        self.resources = resources
        self.record = record
        self.members = members
        self.clock = clock

    async def list_hosts(self) -> list[ComputeHost]:
        """Every host, by name; does not block (one read of the store)."""
        rows = {r.host: r for r in await self.store.list_services(BINARY)}
        mine = rows.get(self.host) if self.record is not None else None
        hosts = [ComputeHost(self.host, LOCAL_ID, self.zone, True,
                             mine or never_written(self.host), utcnow(), True, {})]
        now = self.clock()
        for member in self.members():
            if member.name == self.host:
                continue
            hosts.append(ComputeHost(
                member.name, stable_id(member.name), str(member.meta.get("az") or self.zone),
                member.state is MemberState.ALIVE,
                rows.get(member.name) or never_written(member.name),
                _wall(member.last_seen, now), False, member.meta))
        return sorted(hosts, key=lambda h: h.name)

    def unreachable(self) -> frozenset[str]:
        """The hosts membership does not believe alive (this node's own is
        always reachable): :meth:`list_hosts`'s ``not alive`` ones, from
        membership alone, without reading the store."""
        return frozenset(m.name for m in self.members()
                         if m.name != self.host and m.state is not MemberState.ALIVE)

    async def hypervisors(self) -> list[tuple[ComputeHost, HostResources]]:
        """Every host with its resources: this node's from its driver (which
        raises DriverError while libvirt is unreachable), the others' as
        they last gossiped them."""
        return [(h, await self.resources() if h.local else gossiped(h.name, h.meta))
                for h in await self.list_hosts()]

    async def set_service(self, host: str, binary: str, disabled: bool,
                          reason: str | None) -> ServiceRow:
        """Enable or disable ``host``'s nova-compute; enabling clears the
        reason.  Another member's row replicates to it (and to every node);
        it stops or starts taking new instances once it re-reads it.
        Raises NotFound for another binary or a host membership does not know."""
        missing = NotFound(f"Compute host {host} with binary {binary} could not be found.")
        if binary != BINARY:
            raise missing
        if host == self.host:
            if self.record is None:
                raise missing
            return await self.record.set(disabled, reason)
        if not any(m.name == host for m in self.members()):
            raise missing
        return await self.store.set_service(host, BINARY, disabled,
                                            reason if disabled else None)

    async def force_down(self, host: str, binary: str, forced_down: bool) -> ServiceRow:
        """Force ``host``'s nova-compute down (True) or clear that (False).
        Its row replicates to every node: each shows it down, and the owner
        stops taking new instances once it re-reads its record.  Raises
        NotFound for another binary or a host membership does not know."""
        missing = NotFound(f"Compute host {host} with binary {binary} could not be found.")
        if binary != BINARY:
            raise missing
        if host == self.host:
            if self.record is None:
                raise missing
            return await self.record.force_down(forced_down)
        if not any(m.name == host for m in self.members()):
            raise missing
        return await self.store.set_forced_down(host, BINARY, forced_down)


def gossiped(name: str, meta: Mapping[str, Any]) -> HostResources:
    """A member's resources from its meta (anything missing or malformed: 0)."""
    raw = meta.get("resources")
    res: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}

    def number(key: str) -> int:
        value = res.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return 0
        return int(value)

    return HostResources(
        hypervisor_type=str(meta.get("hypervisor_type") or "QEMU"), hypervisor_hostname=name,
        vcpus=number("vcpus"), vcpus_used=number("vcpus_used"),
        memory_mb=number("memory_mb"), memory_mb_used=number("memory_mb_used"),
        local_gb=number("local_gb"), local_gb_used=number("local_gb_used"),
        running_vms=number("running_vms"))


def _wall(seen: float, now: float) -> str:
    """A time on membership's clock, ``now`` being its present, as a store timestamp."""
    moment = datetime.fromtimestamp(time.time() - max(now - seen, 0.0), UTC)
    return moment.replace(tzinfo=None).isoformat(timespec="microseconds")
