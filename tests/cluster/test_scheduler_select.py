"""Weighing and choosing: normalisation, multipliers, host_subset_size,
NoValidHost naming its filter, and multi-instance requests."""

from __future__ import annotations

import random
from typing import Any

import pytest

from novad.cluster.scheduler import (
    FilterScheduler,
    Flavor,
    HostState,
    RequestSpec,
    ServerGroupInfo,
    normalize,
    weigh_hosts,
)
from novad.cluster.scheduler.weighers import CPUWeigher, DiskWeigher, RAMWeigher, build_weighers
from novad.config import (
    Config,
    ConfigError,
    FilterSchedulerSection,
    SchedulerSection,
)
from novad.errors import NoValidHost


def host(name: str, **kw: Any) -> HostState:
    values: dict[str, Any] = dict(vcpus=8, memory_mb=8192, local_gb=100,
                                  reserved_host_memory_mb=0, cpu_allocation_ratio=1.0)
    values.update(kw)
    return HostState(name=name, **values)


def spec(memory_mb: int = 1024, vcpus: int = 1, root_gb: int = 1, **kw: Any) -> RequestSpec:
    return RequestSpec(instance_uuid=kw.pop("instance_uuid", "i-1"),
                       flavor=Flavor(vcpus=vcpus, memory_mb=memory_mb, root_gb=root_gb), **kw)


def config(ram: float = 1.0, disk: float = 1.0, cpu: float = 1.0, subset: int = 1,
           attempts: int = 3, filters: tuple[str, ...] | None = None) -> Config:
    extra: dict[str, Any] = {} if filters is None else {"enabled_filters": filters}
    section = FilterSchedulerSection(ram_weight_multiplier=ram, disk_weight_multiplier=disk,
                                     cpu_weight_multiplier=cpu, host_subset_size=subset, **extra)
    return Config(filter_scheduler=section, scheduler=SchedulerSection(max_attempts=attempts))


def names(hosts: list[HostState]) -> list[str]:
    return [h.name for h in hosts]


# -- weighers -------------------------------------------------------------------

def test_normalize_min_max() -> None:
    assert normalize([]) == []
    assert normalize([5.0, 5.0]) == [0.0, 0.0]
    assert normalize([10.0, 20.0, 15.0]) == [0.0, 1.0, 0.5]
    assert normalize([-4.0, 0.0, 4.0]) == [0.0, 0.5, 1.0]


def test_weights_are_sums_of_multiplier_times_normalised_value() -> None:
    hosts = [host("a", memory_mb_used=0, local_gb_used=50),      # ram 1.0, disk 0.0
             host("b", memory_mb_used=4096, local_gb_used=0),   # ram 0.0, disk 1.0
             host("c", memory_mb_used=2048, local_gb_used=25)]  # ram 0.5, disk 0.5
    weighed = weigh_hosts([RAMWeigher(2.0), DiskWeigher(1.0)], hosts, spec())
    assert [(w.host.name, w.weight) for w in weighed] == [("a", 2.0), ("c", 1.5), ("b", 1.0)]


def test_a_single_host_is_not_weighed() -> None:
    (only,) = weigh_hosts([RAMWeigher(1.0)], [host("a")], spec())
    assert only.weight == 0.0


def test_ties_keep_the_input_order() -> None:
    weighed = weigh_hosts([RAMWeigher(1.0)], [host("b"), host("a"), host("c")], spec())
    assert [w.host.name for w in weighed] == ["b", "a", "c"]


def test_cpu_weigher_counts_ratio_and_reserved() -> None:
    w = CPUWeigher(1.0)
    assert w.value(host("a", vcpus=4, cpu_allocation_ratio=4.0, vcpus_used=3,
                        reserved_host_cpus=1), spec()) == 12.0


def test_ram_and_disk_weighers_read_free_amounts_after_reserve() -> None:
    h = host("a", memory_mb_used=1000, reserved_host_memory_mb=192, local_gb_used=40,
             reserved_host_disk_mb=24)
    assert RAMWeigher(1.0).value(h, spec()) == 8192 - 1192
    assert DiskWeigher(1.0).value(h, spec()) == 60 * 1024 - 24


def test_build_weighers_uses_the_configured_multipliers() -> None:
    built = build_weighers(config(ram=2.0, disk=0.5, cpu=-1.0))
    assert {w.name: w.multiplier for w in built}["RAMWeigher"] == 2.0
    assert {w.name: w.multiplier for w in built}["DiskWeigher"] == 0.5
    assert {w.name: w.multiplier for w in built}["CPUWeigher"] == -1.0


# -- select_destinations ---------------------------------------------------------

FREE = [host("full", memory_mb_used=6144), host("empty"), host("half", memory_mb_used=4096)]


def test_positive_ram_multiplier_spreads() -> None:
    scheduler = FilterScheduler(config(disk=0.0, cpu=0.0))
    assert names(scheduler.select_destinations(FREE, spec())) == ["empty", "half", "full"]


def test_negative_ram_multiplier_stacks() -> None:
    scheduler = FilterScheduler(config(ram=-1.0, disk=0.0, cpu=0.0))
    assert names(scheduler.select_destinations(FREE, spec())) == ["full", "half", "empty"]


def test_candidates_are_capped_at_max_attempts() -> None:
    scheduler = FilterScheduler(config(attempts=2, disk=0.0, cpu=0.0))
    assert names(scheduler.select_destinations(FREE, spec())) == ["empty", "half"]


def test_host_subset_size_picks_at_random_among_the_best() -> None:
    hosts = [host(f"h{i}", memory_mb_used=512 * i) for i in range(6)]
    scheduler = FilterScheduler(config(subset=3, attempts=6, disk=0.0, cpu=0.0),
                                rng=random.Random(7))
    firsts = set()
    for _ in range(60):
        chosen = names(scheduler.select_destinations(hosts, spec()))
        firsts.add(chosen[0])
        rest = [n for n in ["h0", "h1", "h2", "h3", "h4", "h5"] if n != chosen[0]]
        assert chosen[1:] == rest  # the others keep their weighed order
    assert firsts == {"h0", "h1", "h2"}


def test_host_subset_size_larger_than_the_candidates() -> None:
    scheduler = FilterScheduler(config(subset=10), rng=random.Random(1))
    assert set(names(scheduler.select_destinations(FREE, spec()))) == {"full", "empty", "half"}


def test_seeded_rng_is_repeatable() -> None:
    hosts = [host(f"h{i}") for i in range(5)]
    picks = [names(FilterScheduler(config(subset=5), rng=random.Random(3))
                   .select_destinations(hosts, spec())) for _ in range(2)]
    assert picks[0] == picks[1]


def test_unknown_filter_stops_the_scheduler_from_starting() -> None:
    with pytest.raises(ConfigError, match="AllHostsFilter"):
        FilterScheduler(config(filters=("RamFilter", "AllHostsFilter")))


def test_filters_run_in_order_and_the_last_one_is_named() -> None:
    hosts = [host("down", up=False), host("small", memory_mb=512)]
    with pytest.raises(NoValidHost) as caught:
        FilterScheduler(config()).select_destinations(hosts, spec(memory_mb=1024))
    assert caught.value.filter_name == "RamFilter"
    assert caught.value.message == (
        "No valid host was found. There are not enough hosts available.")
    assert caught.value.detail == "Filter RamFilter returned 0 hosts"
    assert "Filter RamFilter returned 0 hosts" in str(caught.value)


def test_no_hosts_at_all_and_all_ignored() -> None:
    scheduler = FilterScheduler(config())
    with pytest.raises(NoValidHost) as caught:
        scheduler.select_destinations([], spec())
    assert caught.value.filter_name is None and caught.value.detail
    with pytest.raises(NoValidHost, match="ignore_hosts"):
        scheduler.select_destinations([host("a")], spec(ignore_hosts=frozenset({"A"})))


def test_retry_hosts_are_excluded() -> None:
    scheduler = FilterScheduler(config(disk=0.0, cpu=0.0))
    got = scheduler.select_destinations(FREE, spec(retry_hosts=frozenset({"empty"})))
    assert names(got) == ["half", "full"]
    with pytest.raises(NoValidHost) as caught:
        scheduler.select_destinations(FREE, spec(retry_hosts=frozenset(names(FREE))))
    assert caught.value.filter_name == "RetryFilter"


def test_forced_host_skips_the_filters() -> None:
    scheduler = FilterScheduler(config())
    disabled = host("Admin-Pick", enabled=False)
    got = scheduler.select_destinations([host("a"), disabled], spec(force_hosts=("admin-pick",)))
    assert names(got) == ["Admin-Pick"]
    with pytest.raises(NoValidHost, match="force_hosts 'nowhere'"):
        scheduler.select_destinations([host("a")], spec(force_hosts=("nowhere",)))


def test_availability_zone_narrows_candidates() -> None:
    hosts = [host("a", availability_zone="az1"), host("b", availability_zone="az2"), host("c")]
    scheduler = FilterScheduler(config())
    assert names(scheduler.select_destinations(hosts, spec(availability_zone="az2"))) == ["b"]
    with pytest.raises(NoValidHost) as caught:
        scheduler.select_destinations(hosts, spec(availability_zone="az9"))
    assert caught.value.filter_name == "AvailabilityZoneFilter"


def test_soft_anti_affinity_prefers_hosts_without_members() -> None:
    hosts = [host("a", instance_uuids=frozenset({"m1"})), host("b")]
    g = ServerGroupInfo(uuid="g", policy="soft-anti-affinity", hosts=frozenset({"a"}),
                        members=frozenset({"m1"}))
    scheduler = FilterScheduler(config(ram=0.0, disk=0.0, cpu=0.0))
    assert names(scheduler.select_destinations(hosts, spec(group=g))) == ["b", "a"]
    soft = ServerGroupInfo(uuid="g", policy="soft-affinity", hosts=frozenset({"b"}))
    assert names(scheduler.select_destinations(hosts, spec(group=soft))) == ["b", "a"]


# -- select_many -------------------------------------------------------------------

def test_select_many_consumes_between_picks() -> None:
    hosts = [host("a", memory_mb=4096), host("b", memory_mb=2048)]
    scheduler = FilterScheduler(config(disk=0.0, cpu=0.0))
    picks = scheduler.select_many(hosts, spec(memory_mb=1024, num_instances=5,
                                              instance_uuids=("u0", "u1", "u2", "u3", "u4")))
    # free RAM a/b: 4096/2048, 3072/2048, 2048/2048 (tie: input order), 1024/2048, 1024/1024
    assert [p[0].name for p in picks] == ["a", "a", "a", "b", "a"]
    assert picks[1][0].name == "a" and picks[1][0].memory_mb_used == 1024


def test_select_many_never_overcommits() -> None:
    hosts = [host("a", memory_mb=2048), host("b", memory_mb=2048)]
    scheduler = FilterScheduler(config())
    picks = scheduler.select_many(hosts, spec(memory_mb=1024, num_instances=4))
    assert sorted(p[0].name for p in picks) == ["a", "a", "b", "b"]
    with pytest.raises(NoValidHost) as caught:
        scheduler.select_many(hosts, spec(memory_mb=1024, num_instances=5))
    assert caught.value.filter_name == "RamFilter"
    assert caught.value.detail is not None and "instance 5 of 5" in caught.value.detail


def test_select_many_spreads_an_anti_affinity_group() -> None:
    hosts = [host("a", memory_mb_used=0), host("b", memory_mb_used=6000), host("c")]
    g = ServerGroupInfo(uuid="g", policy="anti-affinity")
    scheduler = FilterScheduler(config())
    picks = scheduler.select_many(hosts, spec(num_instances=3, group=g))
    assert sorted(p[0].name for p in picks) == ["a", "b", "c"]
    with pytest.raises(NoValidHost) as caught:
        scheduler.select_many(hosts, spec(num_instances=4, group=g))
    assert caught.value.filter_name == "ServerGroupAntiAffinityFilter"


def test_select_many_anti_affinity_with_max_server_per_host() -> None:
    hosts = [host("a"), host("b")]
    g = ServerGroupInfo(uuid="g", policy="anti-affinity", rules={"max_server_per_host": 2})
    picks = FilterScheduler(config()).select_many(hosts, spec(num_instances=4, group=g))
    assert sorted(p[0].name for p in picks) == ["a", "a", "b", "b"]


def test_select_many_keeps_an_affinity_group_together() -> None:
    hosts = [host("a", memory_mb_used=1024), host("b")]
    g = ServerGroupInfo(uuid="g", policy="affinity")
    picks = FilterScheduler(config()).select_many(hosts, spec(num_instances=3, group=g))
    assert [p[0].name for p in picks] == ["b", "b", "b"]
