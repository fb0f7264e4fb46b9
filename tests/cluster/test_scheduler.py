"""The scheduler's filters one by one, at their pass/fail boundaries, and
the data it reads (HostState, RequestSpec) through JSON."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from novad.cluster.scheduler import (
    FILTERS,
    Flavor,
    HostState,
    RequestSpec,
    ServerGroupInfo,
    validate_filters,
)
from novad.cluster.scheduler.extra_specs import match
from novad.config import Config, ConfigError, DefaultSection

CONFIG = Config()


def host(name: str = "h1", **kw: Any) -> HostState:
    """A roomy, healthy host with no reserve unless told otherwise."""
    values: dict[str, Any] = dict(
        vcpus=8, memory_mb=16384, local_gb=100, reserved_host_memory_mb=0,
        supported_instances=(("x86_64", "qemu", "hvm"),), hypervisor_version=8002000)
    values.update(kw)
    return HostState(name=name, **values)


def spec(vcpus: int = 1, memory_mb: int = 512, root_gb: int = 1, **kw: Any) -> RequestSpec:
    """A request for one small instance."""
    flavor_kw = {k: kw.pop(k) for k in ("ephemeral_gb", "swap", "extra_specs") if k in kw}
    return RequestSpec(instance_uuid=kw.pop("instance_uuid", "i-new"),
                       flavor=Flavor(vcpus=vcpus, memory_mb=memory_mb, root_gb=root_gb,
                                     **flavor_kw), **kw)


def passes(filter_name: str, h: HostState, s: RequestSpec, config: Config = CONFIG) -> bool:
    return FILTERS[filter_name](config).host_passes(h, s)


# -- the filter table ---------------------------------------------------------

def test_default_enabled_filters_are_all_known() -> None:
    validate_filters(CONFIG.filter_scheduler.enabled_filters)
    assert set(CONFIG.filter_scheduler.enabled_filters) <= set(FILTERS)


def test_unknown_filter_is_refused_with_its_name() -> None:
    with pytest.raises(ConfigError, match="unknown filter 'NUMATopologyFilter'"):
        validate_filters(["RamFilter", "NUMATopologyFilter"])


def test_every_filter_carries_nova_s_name() -> None:
    for name, factory in FILTERS.items():
        assert factory(CONFIG).name == name


# -- RamFilter ----------------------------------------------------------------

def test_ram_exact_fit_passes_one_mib_more_fails() -> None:
    h = host(memory_mb=4096, memory_mb_used=1024, reserved_host_memory_mb=512)
    assert passes("RamFilter", h, spec(memory_mb=2560))
    assert not passes("RamFilter", h, spec(memory_mb=2561))


def test_ram_ratio_overcommits_against_others() -> None:
    h = host(memory_mb=4096, memory_mb_used=4096, ram_allocation_ratio=1.5)
    assert passes("RamFilter", h, spec(memory_mb=2048))
    assert not passes("RamFilter", h, spec(memory_mb=2049))


def test_ram_never_overcommits_against_itself() -> None:
    h = host(memory_mb=4096, ram_allocation_ratio=10.0)
    assert passes("RamFilter", h, spec(memory_mb=4096))
    assert not passes("RamFilter", h, spec(memory_mb=4097))


def test_ram_reserve_is_counted_as_used_before_the_ratio() -> None:
    # limit 2 * 4096 = 8192; used 0 + reserve 1024 -> 7168 left
    h = host(memory_mb=4096, ram_allocation_ratio=2.0, reserved_host_memory_mb=1024)
    assert passes("RamFilter", dataclasses.replace(h, memory_mb_used=3072), spec(memory_mb=4096))
    assert not passes("RamFilter", dataclasses.replace(h, memory_mb_used=3073),
                      spec(memory_mb=4096))


# -- DiskFilter ---------------------------------------------------------------

def test_disk_counts_root_ephemeral_and_swap() -> None:
    h = host(local_gb=10, local_gb_used=4, reserved_host_disk_mb=512)
    # free: 6 GiB * 1024 - 512 = 5632 MiB
    assert passes("DiskFilter", h, spec(root_gb=3, ephemeral_gb=2, swap=512))
    assert not passes("DiskFilter", h, spec(root_gb=3, ephemeral_gb=2, swap=513))


def test_disk_ratio_and_no_overcommit_against_itself() -> None:
    h = host(local_gb=10, local_gb_used=10, disk_allocation_ratio=2.0)
    assert passes("DiskFilter", h, spec(root_gb=10))
    assert not passes("DiskFilter", h, spec(root_gb=10, swap=1))
    empty = host(local_gb=10, disk_allocation_ratio=5.0)
    assert not passes("DiskFilter", empty, spec(root_gb=11))


# -- CoreFilter ---------------------------------------------------------------

def test_cores_ratio_exact_fit() -> None:
    h = host(vcpus=4, vcpus_used=14, cpu_allocation_ratio=4.0)
    assert passes("CoreFilter", h, spec(vcpus=2))
    assert not passes("CoreFilter", h, spec(vcpus=3))


def test_cores_reserved_cpus_count_as_used() -> None:
    h = host(vcpus=4, vcpus_used=12, cpu_allocation_ratio=4.0, reserved_host_cpus=2)
    assert passes("CoreFilter", h, spec(vcpus=2))
    assert not passes("CoreFilter", h, spec(vcpus=3))


def test_cores_never_more_than_the_host_has() -> None:
    h = host(vcpus=4, cpu_allocation_ratio=16.0)
    assert passes("CoreFilter", h, spec(vcpus=4))
    assert not passes("CoreFilter", h, spec(vcpus=5))


def test_cores_unknown_count_fails_safe() -> None:
    assert passes("CoreFilter", host(vcpus=0), spec(vcpus=64))


# -- ComputeFilter, RetryFilter, AvailabilityZoneFilter -------------------------

@pytest.mark.parametrize(("kw", "ok"), [
    ({}, True), ({"enabled": False}, False), ({"up": False}, False),
    ({"forced_down": True}, False)])
def test_compute_filter(kw: dict[str, Any], ok: bool) -> None:
    assert passes("ComputeFilter", host(**kw), spec()) is ok


def test_retry_excludes_hosts_already_tried() -> None:
    s = spec(retry_hosts=frozenset({"h1"}))
    assert not passes("RetryFilter", host("h1"), s)
    assert passes("RetryFilter", host("h2"), s)


def test_availability_zone() -> None:
    assert passes("AvailabilityZoneFilter", host(availability_zone="az2"), spec())
    assert passes("AvailabilityZoneFilter", host(availability_zone="az2"),
                  spec(availability_zone="az2"))
    assert not passes("AvailabilityZoneFilter", host(availability_zone="az2"),
                      spec(availability_zone="nova"))


def test_availability_zone_unnamed_host_is_in_the_default_zone() -> None:
    assert passes("AvailabilityZoneFilter", host(), spec(availability_zone="nova"))
    other = Config(DEFAULT=DefaultSection(default_availability_zone="zone-b"))
    assert passes("AvailabilityZoneFilter", host(), spec(availability_zone="zone-b"), other)
    assert not passes("AvailabilityZoneFilter", host(), spec(availability_zone="nova"), other)


# -- extra specs ----------------------------------------------------------------

@pytest.mark.parametrize(("value", "req", "ok"), [
    ("4", "= 4", True), ("8", "= 4", True), ("3", "= 4", False), ("x", "= 4", False),
    ("4", "== 4.0", True), ("5", "== 4", False), ("5", "!= 4", True), ("4", "!= 4", False),
    ("4", ">= 4", True), ("3", ">= 4", False), ("4", "<= 4", True), ("5", "<= 4", False),
    ("qemu", "s== qemu", True), ("QEMU", "s== qemu", False), ("kvm", "s!= qemu", True),
    ("abc", "s< abd", True), ("abd", "s< abd", False), ("abd", "s<= abd", True),
    ("b", "s> a", True), ("a", "s> a", False), ("a", "s>= a", True), ("a", "s>= b", False),
    ("sse avx2 aes", "<in> avx", True), ("sse", "<in> avx", False),
    ("sse avx2 aes", "<all-in> aes sse", True), ("sse aes", "<all-in> aes avx", False),
    ("b", "<or> a <or> b <or> c", True), ("d", "<or> a <or> b <or> c", False),
    ("plain", "plain", True), ("plain", "other", False), ("two words", "two words", True),
    ("4", "=", False), ("4", ">=", False),
])
def test_extra_spec_operators(value: str, req: str, ok: bool) -> None:
    assert match(value, req) is ok


def cap_host() -> HostState:
    cpu_info = json.dumps({"arch": "x86_64", "features": ["sse", "avx2"], "topology": {
        "cores": 4}})
    return host(capabilities={"cpu_info": cpu_info, "gpu": "yes"})


@pytest.mark.parametrize(("extra", "ok"), [
    ({}, True),
    ({"capabilities:hypervisor_type": "s== QEMU"}, True),
    ({"capabilities:hypervisor_type": "s== xen"}, False),
    ({"capabilities:vcpus": ">= 8"}, True),
    ({"capabilities:vcpus": ">= 9"}, False),
    ({"capabilities:cpu_info:arch": "x86_64"}, True),
    ({"capabilities:cpu_info:features": "<in> avx2"}, True),
    ({"capabilities:cpu_info:topology:cores": "= 4"}, True),
    ({"capabilities:cpu_info:topology:cores": "= 5"}, False),
    ({"capabilities:cpu_info:missing": "1"}, False),
    ({"capabilities:gpu": "yes"}, True),
    ({"capabilities:gpu:model": "x"}, False),
    ({"capabilities:nothing": "1"}, False),
    ({"hw:cpu_policy": "dedicated", "quota:cpu_shares": "2048"}, True),
    ({"gpu": "yes"}, True),
    ({"gpu": "no"}, False),
    ({"memory_mb": ">= 16384"}, True),
    ({"unknown_key": "anything"}, True),
])
def test_compute_capabilities(extra: dict[str, str], ok: bool) -> None:
    assert passes("ComputeCapabilitiesFilter", cap_host(), spec(extra_specs=extra)) is ok


# -- image properties -----------------------------------------------------------

@pytest.mark.parametrize(("props", "ok"), [
    ({}, True),
    ({"hw_architecture": "x86_64"}, True),
    ({"architecture": "amd64"}, True),
    ({"hw_architecture": "aarch64"}, False),
    ({"img_hv_type": "qemu", "hw_vm_mode": "hvm"}, True),
    ({"hypervisor_type": "QEMU", "vm_mode": "hv"}, True),
    ({"img_hv_type": "xen"}, False),
    ({"hw_vm_mode": "exe"}, False),
    ({"hw_architecture": "x86_64", "img_hv_requested_version": ">=8.2"}, True),
    ({"hw_architecture": "x86_64", "img_hv_requested_version": ">=7.0, <9"}, True),
    ({"hw_architecture": "x86_64", "img_hv_requested_version": ">8.2.0"}, False),
    ({"hw_architecture": "x86_64", "img_hv_requested_version": "==8.2.0"}, True),
    ({"hw_architecture": "x86_64", "img_hv_requested_version": "nonsense"}, False),
    ({"img_hv_requested_version": ">=99"}, True),  # only checked with another property
])
def test_image_properties(props: dict[str, str], ok: bool) -> None:
    assert passes("ImagePropertiesFilter", host(), spec(image_properties=props)) is ok


def test_image_properties_need_advertised_instances() -> None:
    bare = host(supported_instances=())
    assert passes("ImagePropertiesFilter", bare, spec())
    assert not passes("ImagePropertiesFilter", bare,
                      spec(image_properties={"hw_architecture": "x86_64"}))


def test_image_version_unknown_on_host_passes() -> None:
    h = host(hypervisor_version=0)
    s = spec(image_properties={"hw_architecture": "x86_64", "img_hv_requested_version": ">=99"})
    assert passes("ImagePropertiesFilter", h, s)


# -- server groups ----------------------------------------------------------------

def group(policy: Any, hosts: set[str] = set(), members: set[str] = set(),
          **rules: int) -> ServerGroupInfo:
    return ServerGroupInfo(uuid="g", policy=policy, hosts=frozenset(hosts),
                           members=frozenset(members), rules=rules)


def test_affinity_first_member_goes_anywhere_then_follows() -> None:
    assert passes("ServerGroupAffinityFilter", host("h1"), spec(group=group("affinity")))
    s = spec(group=group("affinity", hosts={"h2"}, members={"m1"}))
    assert passes("ServerGroupAffinityFilter", host("h2"), s)
    assert not passes("ServerGroupAffinityFilter", host("h1"), s)


def test_anti_affinity_avoids_members_hosts() -> None:
    s = spec(group=group("anti-affinity", hosts={"h2"}, members={"m1"}))
    assert passes("ServerGroupAntiAffinityFilter", host("h1"), s)
    assert not passes("ServerGroupAntiAffinityFilter", host("h2"), s)
    # a member known by uuid on a host the group's hosts do not list yet
    assert not passes("ServerGroupAntiAffinityFilter",
                      host("h3", instance_uuids=frozenset({"m1"})), s)


def test_anti_affinity_max_server_per_host() -> None:
    s = spec(group=group("anti-affinity", hosts={"h1"}, members={"m1", "m2"},
                         max_server_per_host=2))
    one = host("h1", instance_uuids=frozenset({"m1", "other"}))
    two = host("h1", instance_uuids=frozenset({"m1", "m2"}))
    assert passes("ServerGroupAntiAffinityFilter", one, s)
    assert not passes("ServerGroupAntiAffinityFilter", two, s)


def test_anti_affinity_lets_an_instance_stay_on_its_own_host() -> None:
    s = spec(instance_uuid="m1", group=group("anti-affinity", hosts={"h1"}, members={"m1"}))
    assert passes("ServerGroupAntiAffinityFilter", host("h1", instance_uuids=frozenset({"m1"})),
                  s)


@pytest.mark.parametrize("policy", ["soft-affinity", "soft-anti-affinity"])
def test_group_filters_ignore_other_policies(policy: str) -> None:
    s = spec(group=group(policy, hosts={"h2"}, members={"m1"}))
    assert passes("ServerGroupAffinityFilter", host("h1"), s)
    assert passes("ServerGroupAntiAffinityFilter", host("h2"), s)


# -- same / different host -----------------------------------------------------------

def test_same_host() -> None:
    h = host(instance_uuids=frozenset({"a", "b"}))
    assert passes("SameHostFilter", h, spec())
    assert passes("SameHostFilter", h, spec(scheduler_hints={"same_host": "a"}))
    assert passes("SameHostFilter", h, spec(scheduler_hints={"same_host": ["x", "b"]}))
    assert not passes("SameHostFilter", h, spec(scheduler_hints={"same_host": ["x"]}))


def test_different_host() -> None:
    h = host(instance_uuids=frozenset({"a", "b"}))
    assert passes("DifferentHostFilter", h, spec())
    assert passes("DifferentHostFilter", h, spec(scheduler_hints={"different_host": ["x"]}))
    assert not passes("DifferentHostFilter", h, spec(scheduler_hints={"different_host": "a"}))
    assert not passes("DifferentHostFilter", h,
                      spec(scheduler_hints={"different_host": ["x", "b"]}))


# -- the data -------------------------------------------------------------------

def test_host_state_round_trips_through_json() -> None:
    h = cap_host()
    h = dataclasses.replace(h, instance_uuids=frozenset({"b", "a"}), forced_down=True,
                            availability_zone="az1", cpu_allocation_ratio=2.5)
    assert HostState.from_dict(json.loads(json.dumps(h.to_dict()))) == h


def test_host_state_reader_is_lenient_with_keys_strict_with_values() -> None:
    h = HostState.from_dict({"name": "h9", "vcpus": 4, "from_a_newer_node": 1})
    assert (h.name, h.vcpus, h.memory_mb) == ("h9", 4, 0)
    with pytest.raises(TypeError):
        HostState.from_dict({"name": "h9", "enabled": "yes"})
    with pytest.raises(KeyError):
        HostState.from_dict({"vcpus": 4})


def test_request_spec_round_trips_through_json() -> None:
    s = spec(vcpus=2, extra_specs={"capabilities:vcpus": ">= 2"}, swap=256,
             image_properties={"hw_architecture": "x86_64"}, availability_zone="az1",
             scheduler_hints={"same_host": ["a"]},
             group=group("anti-affinity", hosts={"h1"}, members={"m"}, max_server_per_host=2),
             ignore_hosts=frozenset({"h3"}), retry_hosts=frozenset({"h4"}),
             force_hosts=("h1",), num_instances=2, instance_uuids=("i-new", "i-2"))
    assert RequestSpec.from_dict(json.loads(json.dumps(s.to_dict()))) == s


def test_consume_takes_the_instance_s_resources() -> None:
    h = host(vcpus_used=1, memory_mb_used=100, local_gb_used=2, num_instances=1)
    after = h.consume(spec(vcpus=2, memory_mb=512, root_gb=5, ephemeral_gb=1, swap=1024))
    assert (after.vcpus_used, after.memory_mb_used, after.local_gb_used) == (3, 612, 8)
    assert after.num_instances == 2 and after.instance_uuids == {"i-new"}
    assert h.memory_mb_used == 100  # the original is untouched
