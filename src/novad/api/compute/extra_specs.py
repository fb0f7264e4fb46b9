"""Flavor extra spec validation (microversion 2.86), in Nova's rules.

A spec whose namespace (the text before the first ``:``) novad knows must be
one of that namespace's specs, with a value of the right kind; a spec of an
unknown namespace, or with none, passes untouched, as in Nova (a few
un-namespaced specs Nova knows, ``group_policy``, are checked too).  The
namespaces checked are those of the libvirt driver and the scheduler:
``hw``, ``hw_rng``, ``hw_video``, ``os``, ``quota``, ``resources``,
``trait``, ``aggregate_instance_extra_specs``, ``capabilities``,
``pci_passthrough`` and ``accel``.  Nova's ``powervm`` and ``vmware``
namespaces belong to drivers novad does not have and pass unchecked.

Every refusal is :class:`~novad.errors.Invalid` (400), naming the spec.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from novad.errors import Invalid
from novad.strutils import parse_bool

Check = Callable[[str], str | None]
"""A value check: None when ``value`` is fine, else what it should be."""


def _boolean(value: str) -> str | None:
    return None if parse_bool(value) is not None else "a boolean"


def _integer(minimum: int | None = None, maximum: int | None = None) -> Check:
    def check(value: str) -> str | None:
        try:
            number = int(value)
        except ValueError:
            return "an integer"
        if minimum is not None and number < minimum:
            return f"an integer of at least {minimum}"
        if maximum is not None and number > maximum:
            return f"an integer of at most {maximum}"
        return None
    return check


def _one_of(*choices: str) -> Check:
    def check(value: str) -> str | None:
        return None if value in choices else f"one of {', '.join(choices)}"
    return check


def _matching(pattern: str, what: str) -> Check:
    regex = re.compile(pattern)

    def check(value: str) -> str | None:
        return None if regex.fullmatch(value) else what
    return check


def _any(value: str) -> str | None:
    return None


_CPU_SET = _matching(r"\^?\d+(-\d+)?(,\^?\d+(-\d+)?)*", "a CPU set such as 0-3,^2,6")
_PAGE_SIZE = _matching(r"(small|large|any|\d+([KkMmGg][Bb]?)?)",
                       "small, large, any, or a size such as 2048 or 1GB")
_GROUP = r"(?:_[a-zA-Z0-9_-]{1,64}|\d+)?"
"""The optional request group suffix of ``resources`` and ``trait`` specs."""


@dataclass(frozen=True)
class SpecRule:
    """One known spec (``name`` a regular expression of the whole key) and
    its value check."""

    name: str
    check: Check

    def matches(self, key: str) -> bool:
        """Whether ``key`` is this spec."""
        return re.fullmatch(self.name, key) is not None


_HW = [
    SpecRule(r"hw:cpu_policy", _one_of("dedicated", "shared", "mixed")),
    SpecRule(r"hw:cpu_thread_policy", _one_of("prefer", "isolate", "require")),
    SpecRule(r"hw:emulator_threads_policy", _one_of("share", "isolate")),
    SpecRule(r"hw:cpu_dedicated_mask", _CPU_SET),
    SpecRule(r"hw:cpu_realtime", _boolean),
    SpecRule(r"hw:cpu_realtime_mask", _CPU_SET),
    SpecRule(r"hw:cpu_(max_)?(sockets|cores|threads)", _integer(1)),
    SpecRule(r"hw:numa_nodes", _integer(1)),
    SpecRule(r"hw:numa_cpus\.\d+", _CPU_SET),
    SpecRule(r"hw:numa_mem\.\d+", _integer(1)),
    SpecRule(r"hw:mem_page_size", _PAGE_SIZE),
    SpecRule(r"hw:pci_numa_affinity_policy",
             _one_of("required", "preferred", "legacy", "socket")),
    SpecRule(r"hw:(hide_hypervisor_id|boot_menu|vif_multiqueue_enabled|mem_encryption|pmu|"
             r"virtio_packed_ring|locked_memory|ephemeral_encryption|time_hpet)", _boolean),
    SpecRule(r"hw:serial_port_count", _integer(0)),
    SpecRule(r"hw:watchdog_action", _one_of("none", "pause", "poweroff", "reset", "disabled")),
    SpecRule(r"hw:tpm_version", _one_of("1.2", "2.0")),
    SpecRule(r"hw:tpm_model", _one_of("tpm-tis", "tpm-crb")),
    SpecRule(r"hw:viommu_model", _one_of("intel", "smmuv3", "virtio", "auto")),
    SpecRule(r"hw:maxphysaddr_mode", _one_of("emulate", "passthrough")),
    SpecRule(r"hw:maxphysaddr_bits", _integer(1)),
    SpecRule(r"hw:ephemeral_encryption_format", _one_of("luks", "plain")),
    SpecRule(r"hw:pmem", _matching(r"[^,\s]+(,[^,\s]+)*", "a comma-separated list of "
                                                          "namespace labels")),
]

_QUOTA = [
    SpecRule(r"quota:cpu_(shares|period|quota)", _integer()),
    SpecRule(r"quota:(cpu|memory|disk_io|vif)_(limit|reservation|shares_share)", _integer(0)),
    SpecRule(r"quota:(cpu|memory|disk_io|vif)_shares_level",
             _one_of("custom", "high", "normal", "low")),
    SpecRule(r"quota:disk_(read|write|total)_(bytes|iops)_sec(_max(_length)?)?", _integer(0)),
    SpecRule(r"quota:disk_size_iops_sec", _integer(0)),
    SpecRule(r"quota:vif_(inbound|outbound)_(average|peak|burst)", _integer(0)),
]

RULES: tuple[SpecRule, ...] = (
    *_HW,
    SpecRule(r"hw_rng:allowed", _boolean),
    SpecRule(r"hw_rng:rate_(bytes|period)", _integer(0)),
    SpecRule(r"hw_video:ram_max_mb", _integer(0)),
    SpecRule(r"os:secure_boot", _one_of("required", "disabled", "optional")),
    *_QUOTA,
    SpecRule(rf"resources{_GROUP}:[A-Z0-9_]+", _integer(0)),
    SpecRule(rf"trait{_GROUP}:[A-Z0-9_]+", _one_of("required", "forbidden")),
    SpecRule(r"aggregate_instance_extra_specs:.+", _any),
    SpecRule(r"capabilities:.+", _any),
    SpecRule(r"pci_passthrough:alias",
             _matching(r"[^:,\s]+:\d+(,[^:,\s]+:\d+)*", "alias:count[,alias:count]")),
    SpecRule(r"accel:device_profile", _any),
    SpecRule(r"group_policy", _one_of("none", "isolate")),
)
"""Every spec novad knows, by whole-key pattern."""

NAMESPACES = re.compile(rf"hw|hw_rng|hw_video|os|quota|resources{_GROUP}|trait{_GROUP}|"
                        r"aggregate_instance_extra_specs|capabilities|pci_passthrough|accel")
"""The namespaces whose every spec must be a known one."""


def validate(specs: Mapping[str, str]) -> None:
    """Refuse (400) a known spec with a bad value, or an unknown spec of a
    known namespace; anything else passes."""
    for key, value in specs.items():
        rule = next((r for r in RULES if r.matches(key)), None)
        if rule is None:
            if ":" in key and NAMESPACES.fullmatch(key.split(":", 1)[0]):
                raise Invalid(f"Validation failed; extra spec '{key}' does not appear to be "
                              "a valid extra spec.")
            continue
        wanted = rule.check(value)
        if wanted is not None:
            raise Invalid(f"Validation failed; the value of extra spec '{key}' must be "
                          f"{wanted}, not '{value}'.")
