"""What the scheduler reads: one host's state and one boot request.

Both are frozen dataclasses.  The lead builds :class:`HostState` values from
gossip data and may ship them between nodes, so they round-trip through
JSON-able dicts (``to_dict`` / ``from_dict``).  Readers are lenient with
keys they do not know (a newer node may send more) and fill missing ones
with the defaults, so a rolling upgrade does not break scheduling.

Resource use is recorded the way the hypervisor reports it: ``*_used``
counts what the instances use and nothing else.  Nova's resource tracker
folded the ``reserved_host_*`` amounts into its ``*_used`` columns; here the
reserved amounts stay separate fields and the ``free_*`` properties (which
the filters and weighers read) subtract them, giving the same numbers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

Policy = Literal["affinity", "anti-affinity", "soft-affinity", "soft-anti-affinity"]
POLICIES: tuple[str, ...] = get_args(Policy)


@dataclass(frozen=True)
class Flavor:
    """The sizes a request asks for, from the instance's flavor."""

    vcpus: int
    memory_mb: int
    root_gb: int
    ephemeral_gb: int = 0
    swap: int = 0
    """MiB, as Nova's flavor ``swap``."""
    extra_specs: Mapping[str, str] = field(default_factory=dict)

    @property
    def disk_mb(self) -> int:
        """What DiskFilter asks for: root and ephemeral disks plus swap."""
        return 1024 * (self.root_gb + self.ephemeral_gb) + self.swap


@dataclass(frozen=True)
class ServerGroupInfo:
    """The server group a request belongs to, as the lead resolved it.

    ``hosts`` are the hosts the group's members live on (known cluster-wide
    to the lead only); ``members`` are the members' instance uuids, which
    let anti-affinity count members per host for ``max_server_per_host``."""

    uuid: str
    policy: Policy
    hosts: frozenset[str] = frozenset()
    members: frozenset[str] = frozenset()
    rules: Mapping[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict."""
        return {"uuid": self.uuid, "policy": self.policy, "hosts": sorted(self.hosts),
                "members": sorted(self.members), "rules": dict(self.rules)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ServerGroupInfo:
        """Read :meth:`to_dict`'s output; ``ValueError`` on a bad policy."""
        policy = str(data["policy"])
        if policy not in POLICIES:
            raise ValueError(f"unknown server group policy {policy!r}")
        return cls(uuid=str(data["uuid"]), policy=policy,  # type: ignore[arg-type]
                   hosts=frozenset(data.get("hosts", ())),
                   members=frozenset(data.get("members", ())),
                   rules={str(k): int(v) for k, v in dict(data.get("rules", {})).items()})


@dataclass(frozen=True)
class RequestSpec:
    """One scheduling request (Nova's RequestSpec, reduced to what the
    filters read).

    ``ignore_hosts`` are dropped before filtering (a resize that must leave
    its host); ``retry_hosts`` are the hosts a claim already failed on,
    which RetryFilter refuses; ``force_hosts`` (an admin's ``--host`` or
    ``az:host``) replace filtering altogether, as in Nova."""

    instance_uuid: str
    flavor: Flavor
    image_properties: Mapping[str, Any] = field(default_factory=dict)
    availability_zone: str | None = None
    scheduler_hints: Mapping[str, Any] = field(default_factory=dict)
    group: ServerGroupInfo | None = None
    ignore_hosts: frozenset[str] = frozenset()
    retry_hosts: frozenset[str] = frozenset()
    force_hosts: tuple[str, ...] = ()
    requested_host: str | None = None
    """An admin's ``host`` on create (2.74): the only candidate, still filtered."""
    num_instances: int = 1
    instance_uuids: tuple[str, ...] = ()
    """Every instance of a multi-create, in order (Nova passes them beside
    the spec); empty means ``instance_uuid`` and numbered stand-ins."""

    def hint_list(self, name: str) -> list[str]:
        """A scheduler hint as a list: the CLI sends one value as a string."""
        value = self.scheduler_hints.get(name)
        if value is None or value == "":
            return []
        if isinstance(value, str):
            return [value]
        return [str(v) for v in value]

    def uuid_of_pick(self, index: int) -> str:
        """The instance uuid placed by pick ``index`` of :meth:`select_many`.

        Stand-ins must differ from each other: anti-affinity lets an
        instance stay on a host it is already on, so two picks with one
        uuid would land together."""
        if index < len(self.instance_uuids):
            return self.instance_uuids[index]
        return self.instance_uuid if index == 0 else f"{self.instance_uuid}#{index}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["flavor"] = dataclasses.asdict(self.flavor)
        data["flavor"]["extra_specs"] = dict(self.flavor.extra_specs)
        data["image_properties"] = dict(self.image_properties)
        data["scheduler_hints"] = dict(self.scheduler_hints)
        data["group"] = self.group.to_dict() if self.group is not None else None
        for name in ("ignore_hosts", "retry_hosts"):
            data[name] = sorted(data[name])
        for name in ("force_hosts", "instance_uuids"):
            data[name] = list(data[name])
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RequestSpec:
        """Read :meth:`to_dict`'s output."""
        flavor = dict(data["flavor"])
        group = data.get("group")
        return cls(
            instance_uuid=str(data["instance_uuid"]),
            flavor=Flavor(vcpus=int(flavor["vcpus"]), memory_mb=int(flavor["memory_mb"]),
                          root_gb=int(flavor["root_gb"]),
                          ephemeral_gb=int(flavor.get("ephemeral_gb", 0)),
                          swap=int(flavor.get("swap", 0)),
                          extra_specs={str(k): str(v) for k, v in
                                       dict(flavor.get("extra_specs", {})).items()}),
            image_properties=dict(data.get("image_properties", {})),
            availability_zone=data.get("availability_zone") or None,
            scheduler_hints=dict(data.get("scheduler_hints", {})),
            group=ServerGroupInfo.from_dict(group) if group else None,
            ignore_hosts=frozenset(data.get("ignore_hosts", ())),
            retry_hosts=frozenset(data.get("retry_hosts", ())),
            force_hosts=tuple(data.get("force_hosts", ())),
            requested_host=data.get("requested_host") or None,
            num_instances=int(data.get("num_instances", 1)),
            instance_uuids=tuple(data.get("instance_uuids", ())))


@dataclass(frozen=True)
class HostState:
    """One compute host as the scheduler sees it (Nova's HostState).

    ``enabled`` is the compute service not being disabled; ``up`` is gossip
    saying the node is alive; ``forced_down`` is an admin's ``--down``.
    ``capabilities`` plays the part of Nova's host stats and the
    ``cpu_info`` JSON: ComputeCapabilitiesFilter looks keys up there after
    the fields."""

    name: str
    availability_zone: str = ""
    """Empty means ``[DEFAULT] default_availability_zone``."""
    enabled: bool = True
    up: bool = True
    forced_down: bool = False
    hypervisor_type: str = "QEMU"
    hypervisor_version: int = 0
    """As libvirt reports it: 8002000 is 8.2.0."""
    supported_instances: tuple[tuple[str, str, str], ...] = ()
    """(architecture, hypervisor type, vm mode), e.g. ("x86_64", "qemu", "hvm")."""
    capabilities: Mapping[str, Any] = field(default_factory=dict)
    vcpus: int = 0
    vcpus_used: int = 0
    memory_mb: int = 0
    memory_mb_used: int = 0
    local_gb: int = 0
    local_gb_used: int = 0
    cpu_allocation_ratio: float = 4.0
    ram_allocation_ratio: float = 1.0
    disk_allocation_ratio: float = 1.0
    reserved_host_memory_mb: int = 512
    reserved_host_disk_mb: int = 0
    reserved_host_cpus: int = 0
    num_instances: int = 0
    instance_uuids: frozenset[str] = frozenset()

    @property
    def free_ram_mb(self) -> int:
        """RAM left before overcommit, after the host's reserve (may be < 0)."""
        return self.memory_mb - self.memory_mb_used - self.reserved_host_memory_mb

    @property
    def free_disk_mb(self) -> int:
        """Disk left before overcommit, after the host's reserve (may be < 0)."""
        return (self.local_gb - self.local_gb_used) * 1024 - self.reserved_host_disk_mb

    @property
    def vcpus_used_total(self) -> int:
        """vCPUs in use, counting the host's reserved CPUs as Nova's
        resource tracker did."""
        return self.vcpus_used + self.reserved_host_cpus

    def consume(self, spec: RequestSpec, instance_uuid: str | None = None) -> HostState:
        """The state after placing one instance of ``spec`` here.

        As Nova's ``consume_from_request``: the disk taken is root plus
        ephemeral (swap is not counted), and the instance joins the host's
        instances so that later picks see it."""
        flavor = spec.flavor
        uuid = instance_uuid or spec.instance_uuid
        return dataclasses.replace(
            self, vcpus_used=self.vcpus_used + flavor.vcpus,
            memory_mb_used=self.memory_mb_used + flavor.memory_mb,
            local_gb_used=self.local_gb_used + flavor.root_gb + flavor.ephemeral_gb,
            num_instances=self.num_instances + 1,
            instance_uuids=self.instance_uuids | {uuid})

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (sets become sorted lists, tuples lists)."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["supported_instances"] = [list(t) for t in self.supported_instances]
        data["capabilities"] = dict(self.capabilities)
        data["instance_uuids"] = sorted(self.instance_uuids)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HostState:
        """Read :meth:`to_dict`'s output: unknown keys are ignored, missing
        ones take their defaults; ``ValueError``/``TypeError`` on a value
        of the wrong shape and ``KeyError`` without ``name``."""
        values: dict[str, Any] = {"name": str(data["name"])}
        for f in dataclasses.fields(cls):
            if f.name in data and f.name != "name":
                values[f.name] = _READERS[f.name](data[f.name])
        return cls(**values)


def _as_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"expected a boolean, got {value!r}")
    return value


def _triples(value: Any) -> tuple[tuple[str, str, str], ...]:
    triples = []
    for item in value:
        arch, hv_type, vm_mode = (str(part) for part in item)
        triples.append((arch, hv_type, vm_mode))
    return tuple(triples)


_READERS: dict[str, Callable[[Any], Any]] = {
    "availability_zone": str, "enabled": _as_bool, "up": _as_bool, "forced_down": _as_bool,
    "hypervisor_type": str, "hypervisor_version": int, "supported_instances": _triples,
    "capabilities": dict, "vcpus": int, "vcpus_used": int, "memory_mb": int,
    "memory_mb_used": int, "local_gb": int, "local_gb_used": int,
    "cpu_allocation_ratio": float, "ram_allocation_ratio": float,
    "disk_allocation_ratio": float, "reserved_host_memory_mb": int,
    "reserved_host_disk_mb": int, "reserved_host_cpus": int, "num_instances": int,
    "instance_uuids": lambda v: frozenset(str(u) for u in v),
}
