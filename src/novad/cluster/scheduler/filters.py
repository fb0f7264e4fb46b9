"""Nova's host filters, by Nova's names and with Nova's semantics.

Each filter is a small class with a ``name`` and ``host_passes(host, spec)``;
:data:`FILTERS` is the table ``[filter_scheduler] enabled_filters`` names
entries of, and :func:`validate_filters` refuses a name that is not in it.
The resource filters are the pre-Placement ones (RamFilter, DiskFilter,
CoreFilter): a limit of total × allocation ratio, against which the used
amount plus the host's reserve is counted, and no instance may overcommit
against itself.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar, Protocol

from novad.cluster.scheduler import extra_specs
from novad.cluster.scheduler.model import HostState, RequestSpec, ServerGroupInfo
from novad.config import Config, ConfigError


class HostFilter(Protocol):
    """One filter: does ``host`` suit ``spec``?  Pure; never raises."""

    name: ClassVar[str]

    def host_passes(self, host: HostState, spec: RequestSpec) -> bool:
        """True when the host stays a candidate."""
        ...


class RetryFilter:
    """Hosts a claim already failed on for this request are not tried again."""

    name: ClassVar[str] = "RetryFilter"

    def __init__(self, config: Config) -> None:
        pass

    def host_passes(self, host: HostState, spec: RequestSpec) -> bool:
        """Pass unless the host is among ``spec.retry_hosts``."""
        return host.name not in spec.retry_hosts


class AvailabilityZoneFilter:
    """The host is in the requested availability zone."""

    name: ClassVar[str] = "AvailabilityZoneFilter"

    def __init__(self, config: Config) -> None:
        self.default_zone = config.DEFAULT.default_availability_zone

    def host_passes(self, host: HostState, spec: RequestSpec) -> bool:
        """Pass when no zone is asked for or the host's zone (the default
        zone when it names none) is the one asked for."""
        if not spec.availability_zone:
            return True
        return (host.availability_zone or self.default_zone) == spec.availability_zone


class ComputeFilter:
    """The host's compute service is enabled and up."""

    name: ClassVar[str] = "ComputeFilter"

    def __init__(self, config: Config) -> None:
        pass

    def host_passes(self, host: HostState, spec: RequestSpec) -> bool:
        """Pass when enabled, alive by gossip and not forced down."""
        return host.enabled and host.up and not host.forced_down


class RamFilter:
    """Enough RAM under ``ram_allocation_ratio``, after the host's reserve."""

    name: ClassVar[str] = "RamFilter"

    def __init__(self, config: Config) -> None:
        pass

    def host_passes(self, host: HostState, spec: RequestSpec) -> bool:
        """Pass when the instance fits the host's RAM without overcommit
        and fits the overcommitted limit beside what is used."""
        wanted = spec.flavor.memory_mb
        if host.memory_mb < wanted:
            return False
        limit = host.memory_mb * host.ram_allocation_ratio
        used = host.memory_mb - host.free_ram_mb
        return limit - used >= wanted


class DiskFilter:
    """Enough disk under ``disk_allocation_ratio``, after the host's reserve."""

    name: ClassVar[str] = "DiskFilter"

    def __init__(self, config: Config) -> None:
        pass

    def host_passes(self, host: HostState, spec: RequestSpec) -> bool:
        """Pass when root + ephemeral + swap fit the host's disk without
        overcommit and fit the overcommitted limit beside what is used."""
        wanted = spec.flavor.disk_mb
        total_mb = host.local_gb * 1024
        if total_mb < wanted:
            return False
        limit = total_mb * host.disk_allocation_ratio
        used = total_mb - host.free_disk_mb
        return limit - used >= wanted


class CoreFilter:
    """Enough vCPUs under ``cpu_allocation_ratio``, after reserved CPUs."""

    name: ClassVar[str] = "CoreFilter"

    def __init__(self, config: Config) -> None:
        pass

    def host_passes(self, host: HostState, spec: RequestSpec) -> bool:
        """Pass when the instance has no more vCPUs than the host has CPUs
        and fits the overcommitted limit beside what is used.  A host that
        reports no CPUs passes, as in Nova (its collection is broken)."""
        if not host.vcpus:
            return True
        wanted = spec.flavor.vcpus
        if wanted > host.vcpus:
            return False
        limit = host.vcpus * host.cpu_allocation_ratio
        return limit - host.vcpus_used_total >= wanted


class ComputeCapabilitiesFilter:
    """The flavor's extra specs match the host's capabilities.

    Keys scoped ``capabilities:`` are looked up (nested scopes walk into
    dicts and JSON strings, as ``capabilities:cpu_info:arch``); other
    scopes (``hw:``, ``quota:`` ...) belong to other parts and are ignored.
    An unscoped key is checked only when the host has it, as Nova kept for
    old flavors."""

    name: ClassVar[str] = "ComputeCapabilitiesFilter"

    def __init__(self, config: Config) -> None:
        pass

    def host_passes(self, host: HostState, spec: RequestSpec) -> bool:
        """Pass when every relevant extra spec matches."""
        fields = host.to_dict()
        for key, requirement in spec.flavor.extra_specs.items():
            scope = key.split(":")
            if len(scope) == 1:
                if key not in fields and key not in host.capabilities:
                    continue
            elif scope[0] != "capabilities":
                continue
            else:
                scope = scope[1:]
            value = _capability(fields, host.capabilities, scope)
            if value is None or not extra_specs.match(str(value), requirement):
                return False
        return True


def _capability(fields: Mapping[str, Any], capabilities: Mapping[str, Any],
                scope: list[str]) -> Any:
    """The value at ``scope``: the first part names a host field or else a
    capability; later parts walk into dicts, parsing JSON strings."""
    value = fields.get(scope[0])
    if value is None:
        value = capabilities.get(scope[0])
    for part in scope[1:]:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                return None
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


class ImagePropertiesFilter:
    """The host supports the image's architecture, hypervisor type, vm mode
    and requested hypervisor version."""

    name: ClassVar[str] = "ImagePropertiesFilter"

    def __init__(self, config: Config) -> None:
        pass

    def host_passes(self, host: HostState, spec: RequestSpec) -> bool:
        """Pass when the image asks for nothing, or one of the host's
        supported instance types has every property the image asks for and
        the hypervisor version satisfies ``img_hv_requested_version``."""
        props = spec.image_properties
        wanted = (_canonical_arch(_prop(props, "hw_architecture", "architecture")),
                  _canonical_hv_type(_prop(props, "img_hv_type", "hypervisor_type")),
                  _canonical_vm_mode(_prop(props, "hw_vm_mode", "vm_mode")))
        if not any(wanted):
            return True
        for arch, hv_type, vm_mode in host.supported_instances:
            offered = (_canonical_arch(arch), _canonical_hv_type(hv_type),
                       _canonical_vm_mode(vm_mode))
            if all(not w or w == o for w, o in zip(wanted, offered)) and \
                    _version_ok(host.hypervisor_version, props.get("img_hv_requested_version")):
                return True
        return False


def _prop(props: Mapping[str, Any], name: str, legacy: str) -> str:
    """An image property by its current name, else by its pre-Liberty one."""
    return str(props.get(name) or props.get(legacy) or "")


_ARCH_ALIASES = {"i386": "i686", "i486": "i686", "i586": "i686", "x86_32": "i686",
                 "x86_32p": "i686", "amd64": "x86_64"}
_HV_ALIASES = {"xapi": "xen"}
_VM_MODE_ALIASES = {"pv": "xen", "hv": "hvm", "baremetal": "hvm"}


def _canonical_arch(name: str) -> str:
    name = name.lower()
    return _ARCH_ALIASES.get(name, name)


def _canonical_hv_type(name: str) -> str:
    name = name.lower()
    return _HV_ALIASES.get(name, name)


def _canonical_vm_mode(name: str) -> str:
    name = name.lower()
    return _VM_MODE_ALIASES.get(name, name)


_CLAUSE = re.compile(r"^\s*(<=|>=|<|>|!=|==)\s*(\d+(?:\.\d+)*)\s*$")
_COMPARE: dict[str, Callable[[tuple[int, ...], tuple[int, ...]], bool]] = {
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b,
}


def _version_ok(hypervisor_version: int, requested: Any) -> bool:
    """``img_hv_requested_version`` (``">=6.0"``, ``">=6.0, <9"``) against
    libvirt's integer version (8002000 is 8.2.0).  Either missing passes;
    a predicate that cannot be read fails (Nova raised)."""
    if not hypervisor_version or not requested:
        return True
    have = _version_tuple(_version_text(hypervisor_version))
    for clause in str(requested).split(","):
        m = _CLAUSE.match(clause)
        if m is None or not _COMPARE[m.group(1)](have, _version_tuple(m.group(2))):
            return False
    return True


def _version_text(number: int) -> str:
    """oslo's ``convert_version_to_str``: three decimal digits per part."""
    parts: list[str] = []
    while number:
        number, part = divmod(number, 1000)
        parts.insert(0, str(part))
    return ".".join(parts)


def _version_tuple(text: str) -> tuple[int, ...]:
    """Parts padded to three, so 6.0 == 6.0.0 as distutils compared them."""
    parts = tuple(int(p) for p in text.split("."))
    return parts + (0,) * (3 - len(parts))


def members_on(host: HostState, group: ServerGroupInfo) -> int:
    """How many of the group's members live on ``host``: the members found
    among its instances, and at least one when the group lists the host."""
    count = len(host.instance_uuids & group.members)
    if count == 0 and host.name in group.hosts:
        return 1
    return count


class ServerGroupAffinityFilter:
    """Members of an ``affinity`` group go where the group already is."""

    name: ClassVar[str] = "ServerGroupAffinityFilter"

    def __init__(self, config: Config) -> None:
        pass

    def host_passes(self, host: HostState, spec: RequestSpec) -> bool:
        """Pass without an affinity group or before its first member is
        placed; then only the group's hosts pass."""
        group = spec.group
        if group is None or group.policy != "affinity" or not group.hosts:
            return True
        return members_on(host, group) > 0


class ServerGroupAntiAffinityFilter:
    """Members of an ``anti-affinity`` group spread out: at most
    ``max_server_per_host`` (rule, default 1) members per host."""

    name: ClassVar[str] = "ServerGroupAntiAffinityFilter"

    def __init__(self, config: Config) -> None:
        pass

    def host_passes(self, host: HostState, spec: RequestSpec) -> bool:
        """Pass while the host holds fewer members than the limit.  The
        instance's own host passes, as Nova allows for resize to the same
        host."""
        group = spec.group
        if group is None or group.policy != "anti-affinity":
            return True
        if spec.instance_uuid in host.instance_uuids:
            return True
        limit = group.rules.get("max_server_per_host", 1)
        return members_on(host, group) < limit


class SameHostFilter:
    """``--hint same_host=<uuid>``: on a host of one of those instances."""

    name: ClassVar[str] = "SameHostFilter"

    def __init__(self, config: Config) -> None:
        pass

    def host_passes(self, host: HostState, spec: RequestSpec) -> bool:
        """Pass without the hint, or when the host holds one of them."""
        wanted = spec.hint_list("same_host")
        return not wanted or not host.instance_uuids.isdisjoint(wanted)


class DifferentHostFilter:
    """``--hint different_host=<uuid>``: away from all those instances."""

    name: ClassVar[str] = "DifferentHostFilter"

    def __init__(self, config: Config) -> None:
        pass

    def host_passes(self, host: HostState, spec: RequestSpec) -> bool:
        """Pass without the hint, or when the host holds none of them."""
        return host.instance_uuids.isdisjoint(spec.hint_list("different_host"))


FILTERS: dict[str, Callable[[Config], HostFilter]] = {
    cls.name: cls for cls in (
        RetryFilter, AvailabilityZoneFilter, ComputeFilter, RamFilter, DiskFilter, CoreFilter,
        ComputeCapabilitiesFilter, ImagePropertiesFilter, ServerGroupAffinityFilter,
        ServerGroupAntiAffinityFilter, SameHostFilter, DifferentHostFilter)
}
"""Every filter ``enabled_filters`` may name, by Nova's class name."""


def validate_filters(names: Iterable[str]) -> None:
    """Refuse, at start-up, ``enabled_filters`` naming a filter novad lacks.

    Raises :class:`ConfigError` naming the first unknown filter and the
    known ones."""
    for name in names:
        if name not in FILTERS:
            raise ConfigError(
                f"filter_scheduler.enabled_filters: unknown filter {name!r}; "
                f"known filters: {', '.join(sorted(FILTERS))}")


def build_filters(config: Config) -> list[HostFilter]:
    """The enabled filters in their configured order (validated first)."""
    names = config.filter_scheduler.enabled_filters
    validate_filters(names)
    return [FILTERS[name](config) for name in names]
