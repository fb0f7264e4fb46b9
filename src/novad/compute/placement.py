"""Where a new server goes: Nova's filter scheduler over what gossip says
about every live member.

Each node gossips its resources, zone, service state and allocation
ratios (``app._gossip_meta``); :class:`Placement` turns the members into
:class:`~novad.cluster.scheduler.HostState` values, the create request
into a :class:`~novad.cluster.scheduler.RequestSpec`, and asks the
scheduler for candidates, best first.  The chosen node creates the server
itself (the request is forwarded to it, see :mod:`novad.api.forward`).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from novad.cluster.members import Member, MemberState
from novad.cluster.scheduler import FilterScheduler, Flavor, HostState, RequestSpec, ServerGroupInfo
from novad.config import Config
from novad.context import RequestContext
from novad.compute.server_groups import scheduler_info
from novad.errors import FlavorNotFound, ImageNotFound, NotFound, NoValidHost
from novad.images.service import ImageService
from novad.store import Store


def host_state(member: Member, instances: Iterable[str] = ()) -> HostState:
    """One member as the scheduler sees it (unknown resources count as none);
    ``instances`` are those the request's hints and group name that it holds."""
    meta = member.meta
    res: Mapping[str, Any] = meta.get("resources") or {}
    ratios: Mapping[str, Any] = meta.get("ratios") or {}
    uuids = frozenset(instances)
    return HostState(
        name=member.name, availability_zone=str(meta.get("az", "")),
        enabled=bool(meta.get("enabled", True)), up=member.state is MemberState.ALIVE,
        forced_down=bool(meta.get("forced_down", False)),
        hypervisor_type=str(meta.get("hypervisor_type", "QEMU")),
        vcpus=int(res.get("vcpus", 0)), vcpus_used=int(res.get("vcpus_used", 0)),
        memory_mb=int(res.get("memory_mb", 0)), memory_mb_used=int(res.get("memory_mb_used", 0)),
        local_gb=int(res.get("local_gb", 0)), local_gb_used=int(res.get("local_gb_used", 0)),
        cpu_allocation_ratio=float(ratios.get("cpu", 4.0)),
        ram_allocation_ratio=float(ratios.get("ram", 1.0)),
        disk_allocation_ratio=float(ratios.get("disk", 1.0)),
        reserved_host_memory_mb=int(ratios.get("reserved_host_memory_mb", 0)),
        reserved_host_disk_mb=int(ratios.get("reserved_host_disk_mb", 0)),
        reserved_host_cpus=int(ratios.get("reserved_host_cpus", 0)),
        num_instances=int(res.get("running_vms", 0)), instance_uuids=uuids)


class Decision:
    """The scheduler's candidates for one create, best first.

    The node that places a request counts what it has sent to a host until
    that host's own gossip shows it (as Nova's scheduler consumes from its
    host state cache), so that concurrent creates arriving here spread out
    instead of all picking the host that looked emptiest a moment ago."""

    def __init__(self, placement: Placement, hosts: list[str], spec: RequestSpec) -> None:
        self.hosts = hosts
        self._placement = placement
        self._spec = spec
        self._tried: set[str] = set()

    def trying(self, host: str) -> None:
        """A claim on ``host`` is about to be asked for (idempotent)."""
        if host in self._tried:
            return
        self._tried.add(host)
        self._placement.pending.setdefault(host, []).append((time.time(), self._spec))

    def failed(self, host: str) -> None:
        """The claim on ``host`` failed: it holds nothing of ours."""
        entries = self._placement.pending.get(host, [])
        for entry in entries:
            if entry[1] is self._spec:
                entries.remove(entry)
                break


class Placement:
    """Candidates for a create request (see the module docstring)."""

    def __init__(self, config: Config, store: Store, images: ImageService) -> None:
        self.scheduler = FilterScheduler(config)
        self.store = store
        self.images = images
        self.pending: dict[str, list[tuple[float, RequestSpec]]] = {}

    async def candidates(self, ctx: RequestContext, body: Any,
                         members: list[Member]) -> Decision:
        """The candidate hosts, best first; NoValidHost when none passes (or
        when the body is not one this can read: the local create answers it)."""
        server = body.get("server") if isinstance(body, dict) else None
        if not isinstance(server, dict):
            raise NoValidHost("unreadable create request")
        spec = await self._spec(ctx, server, body)
        alive = [m for m in members if m.state is MemberState.ALIVE]
        # The filters look at a host's instances only for the hints and the
        # group: where those instances are is all that is read.
        wanted = {*spec.hint_list("same_host"), *spec.hint_list("different_host"),
                  *(spec.group.members if spec.group else ())}
        placed = await self._hosts_of(wanted)
        states = [host_state(m, placed.get(m.name, ())) for m in alive]
        # From here on nothing awaits: concurrent creates see each other's picks.
        hosts = [self._with_pending(h, m) for h, m in zip(states, alive)]
        chosen = self.scheduler.select_destinations(hosts, spec)
        decision = Decision(self, [h.name for h in chosen], spec)
        if chosen:
            decision.trying(chosen[0].name)
        return decision

    async def for_move(self, flavor: Any, image_properties: Mapping[str, Any],
                       members: list[Member], ignore: frozenset[str],
                       force_host: str | None, requested: str | None = None) -> Decision:
        """Candidates for moving an instance of ``flavor`` (a migrate, a
        resize, an evacuation): never a host in ``ignore``; an admin's
        ``force_host`` replaces filtering, as Nova's forced ``--host`` does;
        a ``requested`` host is the only candidate, if it passes the filters
        (Nova's requested destination, 2.29/2.30 without ``force``)."""
        spec = RequestSpec(
            instance_uuid=str(uuid.uuid4()),
            flavor=Flavor(vcpus=flavor.vcpus, memory_mb=flavor.memory_mb, root_gb=flavor.root_gb,
                          ephemeral_gb=flavor.ephemeral_gb, swap=flavor.swap,
                          extra_specs=dict(flavor.extra_specs)),
            image_properties=dict(image_properties), ignore_hosts=ignore,
            force_hosts=(force_host,) if force_host else ())
        alive = [m for m in members if m.state is MemberState.ALIVE]
        hosts = [self._with_pending(host_state(m), m) for m in alive]
        chosen = self.scheduler.select_destinations(hosts, spec)
        names = [h.name for h in chosen if h.name not in ignore
                 and (requested is None or h.name == requested)]
        decision = Decision(self, names, spec)
        if decision.hosts:
            decision.trying(decision.hosts[0])
        return decision

    def _with_pending(self, host: HostState, member: Member) -> HostState:
        """``host`` with what this node sent it since its gossip was sampled."""
        sampled = float(member.meta.get("at", 0.0))
        entries = [e for e in self.pending.get(host.name, []) if e[0] >= sampled]
        self.pending[host.name] = entries
        for _, spec in entries:
            host = host.consume(spec)
        return host

    async def _spec(self, ctx: RequestContext, server: Mapping[str, Any],
                    body: Mapping[str, Any]) -> RequestSpec:
        flavor_ref = str(server.get("flavorRef", "")).rstrip("/").rsplit("/", 1)[-1]
        try:
            row = await self.store.get_flavor(flavor_ref)
        except FlavorNotFound:
            raise NoValidHost("unknown flavor") from None
        image_ref = str(server.get("imageRef") or "").rstrip("/").rsplit("/", 1)[-1]
        props: dict[str, Any] = {}
        if image_ref:
            try:
                props = dict((await self.images.get(ctx, image_ref)).properties)
            except ImageNotFound:
                raise NoValidHost("unknown image") from None
        hints = body.get("os:scheduler_hints") or body.get("OS-SCH-HNT:scheduler_hints") or {}
        group = await self._group(hints.get("group") if isinstance(hints, dict) else None)
        zone, _, forced = str(server.get("availability_zone") or "").partition(":")
        return RequestSpec(
            instance_uuid=str(uuid.uuid4()),
            flavor=Flavor(vcpus=row.vcpus, memory_mb=row.memory_mb, root_gb=row.root_gb,
                          ephemeral_gb=row.ephemeral_gb, swap=row.swap,
                          extra_specs=dict(row.extra_specs)),
            image_properties=props, scheduler_hints=dict(hints) if isinstance(hints, dict) else {},
            availability_zone=zone or None, group=group,
            force_hosts=(forced,) if forced and ctx.is_admin else (),
            requested_host=(server.get("host") or server.get("hypervisor_hostname") or None)
            if ctx.is_admin else None)

    async def _group(self, group_id: Any) -> ServerGroupInfo | None:
        """The ``group`` hint's server group, with the hosts of its members."""
        if not group_id:
            return None
        try:
            group = await self.store.get_server_group(str(group_id))
        except NotFound:
            raise NoValidHost("unknown server group") from None  # the local create says 400
        hosts = await self._hosts_of(set(group.members))
        return scheduler_info(group, set(hosts))

    async def _hosts_of(self, uuids: set[str]) -> dict[str, set[str]]:
        """Host → which of ``uuids`` (live instances) it holds, every node's."""
        if not uuids:
            return {}
        marks = ", ".join("?" for _ in uuids)
        rows = await self.store.db.fetch(
            f"SELECT host, uuid FROM instances WHERE deleted = 0 AND uuid IN ({marks}) UNION"
            f" SELECT host, uuid FROM cluster_instances WHERE deleted = 0 AND uuid IN ({marks})",
            (*uuids, *uuids))
        placed: dict[str, set[str]] = {}
        for host, uuid in rows:
            placed.setdefault(str(host), set()).add(str(uuid))
        return placed


async def owner_of(store: Store, instance_id: str) -> str | None:
    """The node that owns ``instance_id``: this node's name when it is here,
    None when no node is known to have it."""
    rows = await store.db.fetch("SELECT host FROM instances WHERE uuid = ?", (instance_id,))
    if not rows:
        rows = await store.db.fetch("SELECT host FROM cluster_instances WHERE uuid = ?",
                                    (instance_id,))
    return str(rows[0][0]) if rows else None


__all__ = ["Decision", "Placement", "host_state", "owner_of"]
