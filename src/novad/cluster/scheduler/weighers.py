"""Nova's host weighers and the way Nova combines them.

Each weigher gives every candidate a raw value (free RAM, free disk, free
vCPUs ...).  The values are normalised across this request's candidates to
0..1 (the smallest 0, the largest 1; all 0 when they are equal), multiplied
by the weigher's multiplier and summed.  The highest total wins.  A
positive multiplier spreads instances over the emptiest hosts; a negative
one stacks them onto the fullest.

The soft server-group policies are weighers in Nova too.  Their
multipliers (``soft_affinity_weight_multiplier``,
``soft_anti_affinity_weight_multiplier``) are not options here yet and keep
Nova's default of 1.0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol

from novad.cluster.scheduler.filters import members_on
from novad.cluster.scheduler.model import HostState, RequestSpec
from novad.config import Config


class HostWeigher(Protocol):
    """One weigher: a raw value per host, higher is better before the
    multiplier.  Pure; never raises."""

    name: ClassVar[str]

    @property
    def multiplier(self) -> float:
        """How much this weigher counts; negative inverts its preference."""
        ...

    def value(self, host: HostState, spec: RequestSpec) -> float:
        """The host's raw value for this request."""
        ...


@dataclass(frozen=True)
class RAMWeigher:
    """Free RAM (after the host's reserve), ``ram_weight_multiplier``."""

    multiplier: float
    name: ClassVar[str] = "RAMWeigher"

    def value(self, host: HostState, spec: RequestSpec) -> float:
        """Free RAM in MiB."""
        return float(host.free_ram_mb)


@dataclass(frozen=True)
class DiskWeigher:
    """Free disk (after the host's reserve), ``disk_weight_multiplier``."""

    multiplier: float
    name: ClassVar[str] = "DiskWeigher"

    def value(self, host: HostState, spec: RequestSpec) -> float:
        """Free disk in MiB."""
        return float(host.free_disk_mb)


@dataclass(frozen=True)
class CPUWeigher:
    """Free vCPUs under the allocation ratio, ``cpu_weight_multiplier``."""

    multiplier: float
    name: ClassVar[str] = "CPUWeigher"

    def value(self, host: HostState, spec: RequestSpec) -> float:
        """vCPUs × ratio minus the used and reserved ones."""
        return host.vcpus * host.cpu_allocation_ratio - host.vcpus_used_total


@dataclass(frozen=True)
class ServerGroupSoftAffinityWeigher:
    """``soft-affinity``: the more members a host has, the better."""

    multiplier: float = 1.0
    name: ClassVar[str] = "ServerGroupSoftAffinityWeigher"

    def value(self, host: HostState, spec: RequestSpec) -> float:
        """The group's members on the host; 0 for other policies."""
        group = spec.group
        if group is None or group.policy != "soft-affinity":
            return 0.0
        return float(members_on(host, group))


@dataclass(frozen=True)
class ServerGroupSoftAntiAffinityWeigher:
    """``soft-anti-affinity``: the fewer members a host has, the better."""

    multiplier: float = 1.0
    name: ClassVar[str] = "ServerGroupSoftAntiAffinityWeigher"

    def value(self, host: HostState, spec: RequestSpec) -> float:
        """Minus the group's members on the host; 0 for other policies."""
        group = spec.group
        if group is None or group.policy != "soft-anti-affinity":
            return 0.0
        return -float(members_on(host, group))


@dataclass(frozen=True)
class WeighedHost:
    """A candidate and its summed, normalised weight."""

    host: HostState
    weight: float


def build_weighers(config: Config) -> list[HostWeigher]:
    """Every weigher, with the configured multipliers."""
    section = config.filter_scheduler
    return [RAMWeigher(section.ram_weight_multiplier),
            DiskWeigher(section.disk_weight_multiplier),
            CPUWeigher(section.cpu_weight_multiplier),
            ServerGroupSoftAffinityWeigher(), ServerGroupSoftAntiAffinityWeigher()]


def normalize(values: Sequence[float]) -> list[float]:
    """Map ``values`` onto 0..1 by their minimum and maximum; all 0.0 when
    they are all equal (no weigher can tell the hosts apart)."""
    if not values:
        return []
    low, high = min(values), max(values)
    if low == high:
        return [0.0] * len(values)
    return [(v - low) / (high - low) for v in values]


def weigh_hosts(weighers: Sequence[HostWeigher], hosts: Sequence[HostState],
                spec: RequestSpec) -> list[WeighedHost]:
    """The hosts with their weights, heaviest first; ties keep the input
    order.  A single host is not weighed (weight 0), as in Nova."""
    totals = [0.0] * len(hosts)
    if len(hosts) > 1:
        for weigher in weighers:
            normalised = normalize([weigher.value(h, spec) for h in hosts])
            for i, share in enumerate(normalised):
                totals[i] += weigher.multiplier * share
    weighed = [WeighedHost(h, w) for h, w in zip(hosts, totals)]
    return sorted(weighed, key=lambda wh: wh.weight, reverse=True)
