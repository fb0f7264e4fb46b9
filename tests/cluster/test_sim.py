"""Whole clusters on the simulator (simulated time only): dissemination and
detection at 100 members, constant load per member, no false positives
under loss, and a partition that heals with its replicated records.

Distributions are printed (``pytest -s``) and repeated in assertion messages.
"""

from __future__ import annotations

import math
import statistics

import pytest

from novad.cluster.members import MemberState
from novad.cluster.membership import GossipConfig
from novad.cluster.sim import (LwwRecords, Simulation, measure_failure, measure_join,
                               messages_per_node_period)

ALIVE, SUSPECT, DEAD, LEFT = (MemberState.ALIVE, MemberState.SUSPECT, MemberState.DEAD,
                              MemberState.LEFT)
LAN = GossipConfig.lan()


def spread(values: list[float]) -> str:
    """min / median / p90 / max of a sample, in protocol periods."""
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, math.ceil(0.9 * len(ordered)) - 1)]
    return (f"n={len(values)} min={ordered[0]:.2f} p50={statistics.median(ordered):.2f} "
            f"p90={p90:.2f} max={ordered[-1]:.2f} periods")


def test_a_hundred_members_hear_of_joins_and_failures_within_2_log2_n_periods() -> None:
    n, period = 100, LAN.probe_interval
    bound = 2 * math.log2(n)
    joins, detected, heard, dead_spread = [], [], [], []
    for seed in range(4):
        sim = Simulation(LAN, seed=seed)
        sim.bootstrap(n)
        sim.run_for(20.0)
        for j in range(2):
            joins.append(measure_join(sim, f"late{j}", "n000") / period)
            sim.run_for(2.0)
        for victim in ("n007", "n042", "n093"):
            times = measure_failure(sim, victim)
            detected.append(times.all_dead / period)
            heard.append((times.all_suspect - times.first_suspect) / period)
            dead_spread.append((times.all_dead - times.first_dead) / period)
            sim.run_for(2.0)
        assert not sim.false_positives, sim.false_positives
    report = (f"\n bound 2*log2({n}) = {bound:.2f} periods"
              f"\n join reaches everyone:               {spread(joins)}"
              f"\n suspicion reaches everyone:          {spread(heard)}"
              f"\n death reaches everyone:              {spread(dead_spread)}"
              f"\n kill -> every member marks it dead:  {spread(detected)}")
    print(report)
    # SWIM's claim: news reaches everyone in O(log N) periods.
    assert max(joins) <= bound, report
    assert max(heard) <= bound and max(dead_spread) <= bound, report
    # Detection adds the deliberate suspicion timeout: 8 periods at N=100
    # with K=3 confirmations, 16.3 with two, up to 48 with none (Lifeguard).
    ordered = sorted(detected)
    assert statistics.median(ordered) <= bound, report
    assert ordered[math.ceil(0.9 * len(ordered)) - 1] <= bound, report
    low = 4 * math.log10(n) * period
    assert max(detected) <= 4 + 6 * low, report


def test_messages_per_member_per_period_are_constant_from_10_to_100() -> None:
    rates = {}
    for n in (10, 50, 100):
        sim = Simulation(LAN, seed=n)
        sim.bootstrap(n)
        sim.run_for(40.0)  # the join wave's broadcasts have drained
        rates[n] = messages_per_node_period(sim, 60.0)
    report = " ".join(f"N={n}: {r:.3f}" for n, r in rates.items())
    print(f"\n messages sent per member per probe period: {report}")
    assert max(rates.values()) <= 1.10 * min(rates.values()), report


def test_ten_percent_loss_for_ten_minutes_declares_no_live_member_dead() -> None:
    sim = Simulation(LAN, seed=7)
    sim.bootstrap(10)
    sim.loss = 0.10
    before = {n.name: n.membership.local_member.incarnation for n in sim.live()}
    sim.run_for(600.0)
    refuted = sum(n.membership.local_member.incarnation - before[n.name] for n in sim.live())
    print(f"\n 10% loss, 10 members, 600 s: {refuted} false suspicions refuted, "
          f"{len(sim.false_positives)} false deaths")
    assert refuted > 0, "the loss should have caused some suspicions"
    assert sim.false_positives == []
    assert all(state is ALIVE for view in sim.views().values() for state in view.values())


def test_a_partition_heals_into_one_view_and_records_converge() -> None:
    sim = Simulation(LAN, seed=3, json_check=True)
    records = {f"n{i:03d}": LwwRecords(f"n{i:03d}") for i in range(9)}
    sim.bootstrap(9, users=lambda name: records[name])
    names = list(records)
    big, small = names[:6], names[6:]
    records["n000"].write("before", "everyone", sim.now)
    sim.run_for(5.0)
    sim.partition(big, small)
    records["n001"].write("shared", "big side, earlier", sim.now)
    sim.run_for(1.0)
    records["n007"].write("shared", "small side, later", sim.now)
    records["n002"].write("big-only", 1, sim.now)
    records["n008"].write("small-only", 2, sim.now)
    cut_off = sim.run_until_true(lambda: all(
        sim.node(a).membership.member(b).state is DEAD  # type: ignore[union-attr]
        for a in big for b in small), limit=120.0)
    assert cut_off, sim.views()
    # past the gossip-to-the-dead window: only reconnects can bring them back
    sim.run_for(2 * LAN.gossip_to_the_dead_time)
    healed_at = sim.now
    sim.heal()
    merged = sim.run_until_true(lambda: sim.agreed(names), limit=600.0, step=1.0)
    took = sim.now - healed_at
    assert merged, sim.views()
    converged = sim.run_until_true(
        lambda: all(r.records == records["n000"].records for r in records.values()),
        limit=120.0, step=0.5)
    values = {name: r.values() for name, r in records.items()}
    print(f"\n partition 6/3 healed into one view {took:.1f} s after the heal, records "
          f"{sim.now - healed_at:.1f} s after it: {values['n000']}")
    assert converged, values
    assert all(v == values["n000"] for v in values.values()), values
    assert values["n000"] == {"before": "everyone", "shared": "small side, later",
                              "big-only": 1, "small-only": 2}


def test_a_crashed_member_restarted_at_its_address_is_alive_again_everywhere() -> None:
    sim = Simulation(LAN, seed=11)
    sim.bootstrap(8)
    times = measure_failure(sim, "n003")
    old = sim.node("n000").membership.member("n003")
    assert old is not None and old.state is DEAD and times.all_dead > 0
    restarted_at = sim.now
    node = sim.restart("n003", ["n000"])
    back = sim.run_until_true(lambda: sim.all_saw("n003", (ALIVE,), restarted_at) is not None,
                              limit=30.0)
    assert back and node.membership.join_refused is None
    assert node.membership.local_member.incarnation > old.incarnation
    assert sim.agreed([f"n{i:03d}" for i in range(8)])


def test_a_graceful_leave_is_seen_as_left_and_never_dead() -> None:
    sim = Simulation(LAN, seed=5)
    sim.bootstrap(12)
    start = sim.now
    sim.leave("n004")
    everyone = sim.run_until_true(
        lambda: sim.all_saw("n004", (LEFT,), start) is not None, limit=10.0)
    sim.run_for(60.0)
    assert everyone
    assert sim.first_saw("n004", (DEAD, SUSPECT), start) is None
    assert all(view["n004"] is LEFT for view in sim.views().values())


@pytest.mark.parametrize("seed", [1, 2])
def test_simulations_are_reproducible(seed: int) -> None:
    def run() -> list[tuple[str, int, int]]:
        sim = Simulation(LAN, seed=seed, loss=0.05)
        sim.bootstrap(6)
        measure_failure(sim, "n002")
        return [(n.name, n.sent, n.received) for n in sim.nodes.values()]
    assert run() == run()
