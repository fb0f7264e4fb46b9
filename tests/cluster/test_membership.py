"""The sans-IO membership core, message by message.

A tiny hand-driven network: messages are routed at once (breadth first)
between the memberships of a test, and only the node a test ticks runs its
timers.  Every message routed is checked to be plain JSON.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
from collections import deque
from collections.abc import Callable
from typing import Any

import pytest

from novad.cluster.awareness import Awareness
from novad.cluster.broadcasts import BroadcastQueue, retransmit_limit
from novad.cluster.members import Member, MemberState, NullDelegate
from novad.cluster.membership import (BadMessage, GossipConfig, Membership, Out,
                                      push_pull_scale)
from novad.cluster.suspicion import Suspicion, remaining_timeout, suspicion_timeout
from novad.config import ClusterSection

ALIVE, SUSPECT, DEAD, LEFT = (MemberState.ALIVE, MemberState.SUSPECT, MemberState.DEAD,
                              MemberState.LEFT)

QUIET = dataclasses.replace(GossipConfig.lan(), push_pull_interval=0.0,
                            reconnect_interval=1e9)
"""LAN timers without the periodic push-pull and reconnects, so traces stay short."""


class Changes(NullDelegate):
    """Records every notify_change."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, MemberState | None, MemberState]] = []

    def notify_change(self, member: Member, old_state: MemberState | None) -> None:
        self.seen.append((member.name, old_state, member.state))


class Net:
    """Routes messages between memberships; a message to nobody is lost."""

    def __init__(self, config: GossipConfig = QUIET) -> None:
        self.config = config
        self.now = 0.0
        self.nodes: dict[str, Membership] = {}
        self.changes: dict[str, Changes] = {}
        self.log: list[tuple[str, str, dict[str, Any]]] = []
        self.times: list[float] = []
        self.drop: Callable[[str, str, dict[str, Any]], bool] = lambda s, d, m: False

    def add(self, name: str, address: str | None = None,
            meta: dict[str, Any] | None = None) -> Membership:
        address = address or f"{name}:1"
        self.changes[address] = Changes()
        m = Membership(name, address, meta or {}, self.config, random.Random(address),
                       self.now, self.changes[address])
        self.nodes[address] = m
        return m

    def route(self, source: Membership, out: list[Out]) -> None:
        queue = deque((source.address, dst, msg) for dst, msg in out)
        while queue:
            src, dst, msg = queue.popleft()
            assert json.loads(json.dumps(msg)) == msg, "not plain JSON"
            self.log.append((src, dst, msg))
            self.times.append(self.now)
            target = self.nodes.get(dst)
            if target is None or self.drop(src, dst, msg):
                continue
            queue.extend((dst, d, m) for d, m in target.receive(msg, self.now))

    def tick(self, m: Membership, now: float) -> None:
        self.now = now
        self.route(m, m.tick(now))

    def tick_until(self, m: Membership, found: Callable[[str, str, dict[str, Any]], bool],
                   limit: float = 60.0) -> dict[str, Any]:
        """Tick ``m`` at its deadlines until a routed message matches."""
        start = len(self.log)
        while self.now < limit:
            self.tick(m, max(self.now, m.next_deadline()))
            for src, dst, msg in self.log[start:]:
                if found(src, dst, msg):
                    return msg
            start = len(self.log)
        raise AssertionError("no such message")

    def cluster(self, *names: str) -> list[Membership]:
        """Members that all know one another (each joined the first)."""
        nodes = [self.add(name) for name in names]
        for m in nodes[1:]:
            self.route(m, m.join([nodes[0].address], self.now))
        for m in nodes[1:]:
            self.route(m, m.join([nodes[0].address], self.now))
        return nodes


def state(m: Membership, name: str) -> MemberState | None:
    member = m.member(name)
    return None if member is None else member.state


def is_ping(src: str, dst: str, msg: dict[str, Any], to: str) -> bool:
    return msg["type"] == "ping" and dst == to


# -- config -----------------------------------------------------------------------------

def test_from_section_takes_every_cluster_option() -> None:
    section = ClusterSection(probe_interval=0.7, probe_timeout=0.3, indirect_checks=2,
                             suspicion_mult=5, suspicion_max_timeout_mult=3,
                             retransmit_mult=2, gossip_interval=0.1, gossip_nodes=4,
                             push_pull_interval=10.0, awareness_max_multiplier=5,
                             dead_node_reclaim_time=99.0)
    c = GossipConfig.from_section(section)
    assert (c.probe_interval, c.probe_timeout, c.indirect_checks, c.suspicion_mult,
            c.suspicion_max_timeout_mult, c.retransmit_mult, c.gossip_interval,
            c.gossip_nodes, c.push_pull_interval, c.awareness_max_multiplier,
            c.dead_node_reclaim_time) == (0.7, 0.3, 2, 5, 3, 2, 0.1, 4, 10.0, 5, 99.0)


def test_lan_preset_is_memberlists() -> None:
    c = GossipConfig.lan()
    assert (c.probe_interval, c.probe_timeout, c.indirect_checks, c.suspicion_mult,
            c.suspicion_max_timeout_mult, c.retransmit_mult, c.gossip_interval,
            c.gossip_nodes, c.push_pull_interval, c.awareness_max_multiplier) == (
        1.0, 0.5, 3, 4, 6, 4, 0.2, 3, 30.0, 8)
    assert GossipConfig.local().probe_interval < c.probe_interval


def test_push_pull_interval_grows_past_32_members() -> None:
    assert push_pull_scale(30.0, 32) == 30.0
    assert push_pull_scale(30.0, 33) == 60.0
    assert push_pull_scale(30.0, 64) == 60.0
    assert push_pull_scale(30.0, 100) == 90.0


# -- probing ----------------------------------------------------------------------------

def test_probe_is_acked_and_member_stays_alive() -> None:
    net = Net()
    a, b = net.cluster("a", "b")
    ping = net.tick_until(a, lambda s, d, m: is_ping(s, d, m, b.address))
    acks = [m for s, d, m in net.log if m["type"] == "ack" and d == a.address]
    assert ping["node"] == "b" and acks and acks[-1]["seq"] == ping["seq"]
    assert acks[-1]["from"] == "b"
    assert a._probe is None  # answered: nothing pending
    assert state(a, "b") is ALIVE and a.health_score == 0


def test_unanswered_ping_goes_indirect_and_relayed_ack_keeps_it_alive() -> None:
    net = Net()
    a, b, c = net.cluster("a", "b", "c")
    # a and b cannot talk directly; c can reach both
    net.drop = lambda s, d, m: {s, d} == {a.address, b.address}
    start = len(net.log)
    net.tick_until(a, lambda s, d, m: m["type"] == "ping-req" and m["node"] == "b", limit=30)
    trace = [(s, d, m["type"]) for s, d, m in net.log[start:]
             if m["type"] in ("ping", "ping-req", "ack", "nack")]
    assert (a.address, c.address, "ping-req") in trace
    assert (c.address, b.address, "ping") in trace
    assert (b.address, c.address, "ack") in trace
    assert (c.address, a.address, "ack") in trace
    assert a._probe is None
    assert state(a, "b") is ALIVE and a.suspicion("b") is None


def test_no_answer_at_all_suspects_then_declares_dead() -> None:
    net = Net()
    a, b, c = net.cluster("a", "b", "c")
    net.drop = lambda s, d, m: d == b.address or s == b.address
    net.tick_until(a, lambda s, d, m: m["type"] == "ping-req" and m["node"] == "b", limit=30)
    relay_deadline = min(r.deadline for r in c._relays.values())
    net.tick(c, relay_deadline)  # c's ping to b timed out: it nacks to a
    assert any(m["type"] == "nack" for _, d, m in net.log if d == a.address)
    assert a._probe is not None
    net.tick(a, a._probe.deadline)
    assert state(a, "b") is SUSPECT
    assert a.health_score == 0, "a nack came: the fault is not ours"
    timer = a.suspicion("b")
    assert timer is not None
    # N=3: min = 4 * max(1, log10 3) * 1 s = 4 s; memberlist expects
    # K = suspicion_mult - 2 = 2 confirmations, none when N - 2 < K: so just min
    assert timer.deadline == pytest.approx(timer.start + 4.0)
    net.tick(a, timer.deadline - 0.01)
    assert state(a, "b") is SUSPECT
    net.tick(a, timer.deadline)
    assert state(a, "b") is DEAD
    assert ("b", SUSPECT, DEAD) in net.changes[a.address].seen


def test_missing_nacks_raise_health_score_and_stretch_probes() -> None:
    net = Net()
    a, b, c = net.cluster("a", "b", "c")
    # a is cut off: nobody answers, not even with a nack
    net.drop = lambda s, d, m: d != a.address
    net.tick(a, 60.0)
    while net.now < 80.0:
        net.tick(a, a.next_deadline())
    assert a.health_score >= 3
    pings = [t for t, (s, _, m) in zip(net.times, net.log)
             if s == a.address and m["type"] == "ping" and t >= 60.0]
    gaps = [round(b - a, 6) for a, b in zip(pings, pings[1:])]
    # each failed probe stretches the next interval by one more probe interval
    assert gaps[:3] == [1.0, 2.0, 3.0], gaps


def test_health_score_is_bounded() -> None:
    health = Awareness(8)
    for _ in range(20):
        health.apply(1)
    assert health.score == 7 and health.scale(0.5) == 4.0
    health.apply(-100)
    assert health.score == 0 and health.scale(0.5) == 0.5


def test_a_ping_to_a_suspect_carries_the_suspicion_and_the_ack_refutes() -> None:
    net = Net()
    a, b, c = net.cluster("a", "b", "c")
    net.route(c, [(a.address, {"type": "gossip", "from": "c", "addr": c.address, "updates": [
        {"type": "suspect", "node": "b", "inc": 0, "from": "c"}]})])
    assert state(a, "b") is SUSPECT
    net.drop = lambda s, d, m: m["type"] == "gossip"  # only the probe can tell b
    ping = net.tick_until(a, lambda s, d, m: is_ping(s, d, m, b.address))
    assert ping["updates"][0] == {"type": "suspect", "node": "b", "inc": 0, "from": "a"}
    assert b.local_member.incarnation == 1
    assert state(a, "b") is ALIVE and a.member("b").incarnation == 1  # type: ignore[union-attr]
    assert ("b", SUSPECT, ALIVE) in net.changes[a.address].seen


# -- suspicion (Lifeguard) ----------------------------------------------------------------

def test_suspicion_timeout_formula() -> None:
    assert suspicion_timeout(4, 1, 1.0) == 4.0
    assert suspicion_timeout(4, 10, 1.0) == 4.0
    assert suspicion_timeout(4, 100, 1.0) == pytest.approx(8.0)
    assert suspicion_timeout(4, 1000, 0.5) == pytest.approx(6.0)
    lo, hi = 4.0, 24.0
    for c in range(4):
        expected = max(lo, hi - (hi - lo) * math.log(c + 1) / math.log(3 + 1))
        assert remaining_timeout(c, 3, lo, hi) == pytest.approx(expected)
    assert remaining_timeout(0, 0, lo, hi) == lo


def test_independent_confirmations_shorten_the_suspicion() -> None:
    net = Net()
    nodes = net.cluster("a", "b", "c", "d", "e", "x")
    a = nodes[0]

    def suspect(accuser: str) -> None:
        a.receive({"type": "gossip", "from": accuser, "addr": f"{accuser}:1", "updates": [
            {"type": "suspect", "node": "x", "inc": 0, "from": accuser}]}, net.now)

    suspect("b")
    timer = a.suspicion("x")
    assert timer is not None and state(a, "x") is SUSPECT
    lo = 4.0 * max(1.0, math.log10(6))
    hi, k = 6 * lo, 2  # memberlist's K = suspicion_mult - 2 (N - 2 = 4 is not less)
    assert timer.deadline == pytest.approx(hi)
    expected = [hi]
    for accuser in ("c", "d"):
        suspect(accuser)
        c = len(expected)
        expected.append(max(lo, hi - (hi - lo) * math.log(c + 1) / math.log(k + 1)))
        assert timer.deadline == pytest.approx(expected[-1])
    assert timer.deadline == pytest.approx(lo)
    before = timer.deadline
    suspect("c")  # the same accuser again, and the origin: not independent
    suspect("b")
    suspect("e")  # past K: counts for nothing more
    assert timer.deadline == before and timer.confirmations == 2


def test_new_confirmation_is_regossiped_and_repeat_is_not() -> None:
    s = Suspicion("b", 3, 4.0, 24.0, 0.0)
    assert s.confirm("c") is True
    assert s.confirm("c") is False
    assert s.confirm("b") is False
    assert s.confirm("d") and s.confirm("e")
    assert s.confirm("f") is False  # more than K confirmations add nothing


# -- refutation, leave ------------------------------------------------------------------

def test_refutation_by_incarnation_bump() -> None:
    net = Net()
    a, b, c = net.cluster("a", "b", "c")
    claim = {"type": "gossip", "from": "c", "addr": c.address,
             "updates": [{"type": "dead", "node": "b", "inc": 0, "from": "c"}]}
    net.route(c, [(a.address, claim)])
    assert state(a, "b") is DEAD
    net.route(c, [(b.address, claim)])
    assert state(b, "b") is ALIVE and b.local_member.incarnation == 1
    assert b.health_score == 1, "being accused hints that we are the slow one"
    net.tick_until(b, lambda s, d, m: m["type"] == "gossip" and d == a.address)
    assert state(a, "b") is ALIVE and a.member("b").incarnation == 1  # type: ignore[union-attr]
    assert ("b", DEAD, ALIVE) in net.changes[a.address].seen
    # a stale claim (older incarnation) changes nothing
    net.route(c, [(a.address, claim)])
    assert state(a, "b") is ALIVE


def test_graceful_leave_is_left_not_dead() -> None:
    net = Net()
    a, b, c = net.cluster("a", "b", "c")
    net.route(b, b.leave(net.now))
    assert state(b, "b") is LEFT and b.has_left
    assert state(a, "b") is LEFT or state(c, "b") is LEFT
    while not b.leave_finished:
        net.tick(b, b.next_deadline())
    for m in (a, c):
        assert state(m, "b") is LEFT
        assert all(new is not DEAD for name, _, new in net.changes[m.address].seen)
    # a leaving node probes no more and does not refute
    start = len(net.log)
    net.tick(b, net.now + 10)
    assert not [msg for s, _, msg in net.log[start:] if s == b.address and msg["type"] == "ping"]
    assert b.leave(net.now) == []


def test_leave_in_a_two_member_cluster_still_spreads() -> None:
    net = Net()
    a, b = net.cluster("a", "b")
    net.drop = lambda s, d, m: True  # the immediate round is lost
    net.route(b, b.leave(net.now))
    net.drop = lambda s, d, m: False
    assert not b.leave_finished and b.next_deadline() < math.inf
    while not b.leave_finished:
        net.tick(b, b.next_deadline())
    assert state(a, "b") is LEFT


# -- dissemination ----------------------------------------------------------------------

def test_transmit_limited_queue() -> None:
    q = BroadcastQueue()
    q.queue({"type": "alive", "node": "x", "inc": 1}, "x")
    q.queue({"type": "alive", "node": "x", "inc": 2}, "x")  # replaces inc 1
    q.queue({"type": "suspect", "node": "y", "inc": 0}, "y")
    assert len(q) == 2
    sent = [q.take(10_000, 3, 100) for _ in range(4)]
    assert [len(s) for s in sent] == [2, 2, 2, 0]
    assert all(u["inc"] == 2 for s in sent for u in s if u["node"] == "x")
    q.queue({"type": "user", "payload": {}})
    q.queue({"type": "alive", "node": "z", "inc": 0}, "z")
    q.take(10_000, 5, 1)  # the newest first among the fewest-sent
    assert q.transmits("z") == 1


@pytest.mark.parametrize("n, limit", [(1, 4), (9, 4), (10, 8), (99, 8), (100, 12), (999, 12)])
def test_retransmit_limit_grows_with_log_n(n: int, limit: int) -> None:
    assert retransmit_limit(4, n) == limit


@pytest.mark.parametrize("n", [10, 100])
def test_an_update_goes_out_retransmit_limit_times(n: int) -> None:
    net = Net()
    a = net.add("a")
    others = [{"node": f"m{i}", "addr": f"m{i}:1", "inc": 0, "state": "alive", "meta": {}}
              for i in range(n - 1)]
    a.receive({"type": "push-pull-reply", "from": "m0", "addr": "m0:1", "nodes": others,
               "user": None}, 0.0)
    assert a.num_alive() == n
    a.update_meta({"v": 2}, 0.0)
    sent = 0
    while a.pending_broadcasts:
        for _, msg in a.tick(max(net.now, a.next_deadline())):
            sent += sum(1 for u in msg.get("updates", ()) if u.get("node") == "a")
        net.now = a.next_deadline()
    assert sent == retransmit_limit(4, n)


# -- joining ----------------------------------------------------------------------------

def test_join_is_a_push_pull_that_merges_both_views() -> None:
    net = Net()
    a, b, c = net.cluster("a", "b", "c")
    d = net.add("d", meta={"vcpus": 8})
    net.route(d, d.join([a.address, d.address], net.now))
    assert d.push_pull_replies == 1 and d.join_refused is None
    assert {m.name for m in d.members()} == {"a", "b", "c", "d"}
    assert a.member("d").meta == {"vcpus": 8}  # type: ignore[union-attr]
    assert ("d", None, ALIVE) in net.changes[a.address].seen


def test_join_under_a_taken_name_is_refused() -> None:
    net = Net()
    a, b = net.cluster("a", "b")
    impostor = net.add("b", address="elsewhere:1")
    before = [(m.name, m.address, m.state, m.incarnation) for m in a.members()]
    net.route(impostor, impostor.join([a.address], net.now))
    assert impostor.join_refused == "node name 'b' is taken by b:1"
    assert [m.name for m in impostor.members()] == ["b"]
    assert [(m.name, m.address, m.state, m.incarnation) for m in a.members()] == before
    also_a = net.add("a", address="other:1")
    net.route(also_a, also_a.join([a.address], net.now))
    assert also_a.join_refused == "node name 'a' is taken by a:1"


def test_restart_at_the_same_address_is_accepted_and_refutes() -> None:
    net = Net()
    a, b = net.cluster("a", "b")
    for v in range(3):
        b.update_meta({"v": v}, net.now)
    net.tick_until(b, lambda s, d, m: m["type"] == "gossip")
    assert a.member("b").incarnation == 3  # type: ignore[union-attr]
    reborn = net.add("b", meta={"v": "new"})  # same name, same address, incarnation 0
    net.route(reborn, reborn.join([a.address], net.now))
    assert reborn.join_refused is None and reborn.local_member.incarnation == 4
    net.tick_until(reborn, lambda s, d, m: m["type"] == "gossip" and d == a.address)
    seen = a.member("b")
    assert seen is not None and seen.incarnation == 4 and seen.meta == {"v": "new"}


def test_restart_after_being_declared_dead_comes_back() -> None:
    net = Net()
    a, b, c = net.cluster("a", "b", "c")
    net.route(c, [(a.address, {"type": "gossip", "from": "c", "addr": c.address,
                               "updates": [{"type": "dead", "node": "b", "inc": 0,
                                            "from": "c"}]})])
    assert state(a, "b") is DEAD
    reborn = net.add("b")
    net.route(reborn, reborn.join([a.address], net.now))
    assert reborn.local_member.incarnation == 1, "the seed's 'dead' was refuted"
    net.tick_until(reborn, lambda s, d, m: m["type"] == "gossip" and d == a.address)
    assert state(a, "b") is ALIVE
    assert ("b", DEAD, ALIVE) in net.changes[a.address].seen


def test_update_meta_bumps_incarnation_and_spreads() -> None:
    net = Net()
    a, b = net.cluster("a", "b")
    a.update_meta({"resources": {"vcpus": 4}}, net.now)
    assert a.local_member.incarnation == 1
    net.tick_until(a, lambda s, d, m: m["type"] == "gossip")
    assert b.member("a").meta == {"resources": {"vcpus": 4}}  # type: ignore[union-attr]
    assert ("a", ALIVE, ALIVE) in net.changes[b.address].seen


def test_dead_members_are_reclaimed_after_the_reclaim_time() -> None:
    net = Net(dataclasses.replace(QUIET, dead_node_reclaim_time=100.0))
    a, b, c = net.cluster("a", "b", "c")
    net.route(c, [(a.address, {"type": "gossip", "from": "c", "addr": c.address,
                               "updates": [{"type": "dead", "node": "b", "inc": 0,
                                            "from": "c"}]})])
    net.drop = lambda s, d, m: True
    net.tick(a, 50.0)
    net.tick(a, 60.0)
    assert state(a, "b") is DEAD
    for t in range(101, 110):
        net.tick(a, float(t))
    assert state(a, "b") is None


# -- malformed messages -------------------------------------------------------------------

def _ok(kind: str, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "from": "b", "addr": "b:1", **fields}


ALIVE_U = {"type": "alive", "node": "new", "addr": "new:1", "inc": 0, "meta": {}}
NODE = {"node": "new", "addr": "new:1", "inc": 0, "state": "alive", "meta": {}}

GARBAGE: list[tuple[str, Any]] = [
    ("none", None), ("list", []), ("string", "ping"), ("number", 42), ("empty", {}),
    ("no type", {"from": "b", "addr": "b:1"}), ("unknown type", _ok("pong")),
    ("type not a string", {**_ok("ping", seq=1, node="a", updates=[]), "type": 7}),
    ("no from", {"type": "gossip", "addr": "b:1", "updates": []}),
    ("from not a string", {**_ok("gossip", updates=[]), "from": 5}),
    ("from empty", {**_ok("gossip", updates=[]), "from": ""}),
    ("from too long", {**_ok("gossip", updates=[]), "from": "x" * 256}),
    ("addr missing", {"type": "gossip", "from": "b", "updates": []}),
    ("addr null", {**_ok("gossip", updates=[]), "addr": None}),
    ("addr too long", {**_ok("gossip", updates=[]), "addr": "h" * 300}),
    ("ping without seq", _ok("ping", node="a", updates=[])),
    ("seq a string", _ok("ping", seq="1", node="a", updates=[])),
    ("seq negative", _ok("ping", seq=-1, node="a", updates=[])),
    ("seq a bool", _ok("ping", seq=True, node="a", updates=[])),
    ("seq a float", _ok("ping", seq=1.5, node="a", updates=[])),
    ("seq huge", _ok("ping", seq=2**64, node="a", updates=[])),
    ("ping without node", _ok("ping", seq=1, updates=[])),
    ("ping without updates", _ok("ping", seq=1, node="a")),
    ("updates not a list", _ok("ping", seq=1, node="a", updates={})),
    ("too many updates", _ok("gossip", updates=[ALIVE_U] * 1025)),
    ("update not an object", _ok("gossip", updates=[ALIVE_U, "alive"])),
    ("update of unknown type", _ok("gossip", updates=[{"type": "zombie", "node": "x"}])),
    ("alive without meta", _ok("gossip", updates=[{**ALIVE_U, "meta": None}])),
    ("alive meta a list", _ok("gossip", updates=[{**ALIVE_U, "meta": []}])),
    ("alive meta too big", _ok("gossip", updates=[{**ALIVE_U,
                                                   "meta": {str(i): i for i in range(257)}}])),
    ("alive inc negative", _ok("gossip", updates=[ALIVE_U, {**ALIVE_U, "inc": -3}])),
    ("alive node too long", _ok("gossip", updates=[{**ALIVE_U, "node": "n" * 256}])),
    ("alive without addr", _ok("gossip", updates=[{k: v for k, v in ALIVE_U.items()
                                                   if k != "addr"}])),
    ("suspect without from", _ok("gossip", updates=[{"type": "suspect", "node": "a",
                                                     "inc": 0}])),
    ("dead inc a string", _ok("gossip", updates=[{"type": "dead", "node": "a", "inc": "0",
                                                  "from": "b"}])),
    ("user payload a list", _ok("gossip", updates=[{"type": "user", "payload": []}])),
    ("ack without seq", _ok("ack", updates=[])),
    ("nack seq null", _ok("nack", seq=None)),
    ("ping-req without nack", _ok("ping-req", seq=1, node="c", node_addr="c:1", updates=[])),
    ("ping-req nack a string", _ok("ping-req", seq=1, node="c", node_addr="c:1", nack="yes",
                                   updates=[])),
    ("ping-req without node_addr", _ok("ping-req", seq=1, node="c", nack=True, updates=[])),
    ("push-pull without join", _ok("push-pull", nodes=[NODE], user=None)),
    ("push-pull without nodes", _ok("push-pull", join=True, user=None)),
    ("push-pull nodes an object", _ok("push-pull", join=False, nodes={}, user=None)),
    ("push-pull unknown state", _ok("push-pull", join=False,
                                    nodes=[NODE, {**NODE, "state": "zombie"}], user=None)),
    ("push-pull node not an object", _ok("push-pull", join=False, nodes=[NODE, 1],
                                         user=None)),
    ("push-pull without user", _ok("push-pull", join=False, nodes=[NODE])),
    ("push-pull user a list", _ok("push-pull", join=False, nodes=[NODE], user=[])),
    ("push-pull too many nodes", _ok("push-pull-reply", nodes=[NODE] * 10_001, user=None)),
    ("reply node without inc", _ok("push-pull-reply", user=None,
                                   nodes=[{k: v for k, v in NODE.items() if k != "inc"}])),
    ("join-refused without reason", _ok("join-refused")),
    ("join-refused empty reason", _ok("join-refused", reason="")),
    ("join-refused huge reason", _ok("join-refused", reason="r" * 5000)),
]


def snapshot(m: Membership) -> tuple[Any, ...]:
    return (tuple((x.name, x.address, x.state, x.incarnation, json.dumps(x.meta),
                   x.state_changed_at, x.last_seen) for x in m.members()),
            m.pending_broadcasts, m.next_deadline(), m.health_score, m.join_refused,
            m.push_pull_replies, m._seq, m._probe, dict(m._relays),
            tuple(sorted(m._suspicions)))


@pytest.mark.parametrize("label, message", GARBAGE, ids=[g[0] for g in GARBAGE])
def test_malformed_message_raises_and_changes_nothing(label: str, message: Any) -> None:
    net = Net()
    a, b = net.cluster("a", "b")
    net.tick(a, 5.0)
    before = snapshot(a)
    with pytest.raises(BadMessage):
        a.receive(message, 6.0)
    assert snapshot(a) == before
    assert isinstance(BadMessage("x"), ValueError)


def test_a_stale_accusation_is_answered_with_the_fresher_alive() -> None:
    net = Net()
    a, b, c = net.cluster("a", "b", "c")
    b.update_meta({"v": 1}, net.now)
    net.tick_until(b, lambda s, d, m: m["type"] == "gossip" and d == a.address)
    assert a.member("b").incarnation == 1  # type: ignore[union-attr]
    # c missed b's new incarnation and gossips an old suspicion of b to a
    out = a.receive({"type": "gossip", "from": "c", "addr": c.address, "updates": [
        {"type": "suspect", "node": "b", "inc": 0, "from": "c"}]}, net.now)
    assert state(a, "b") is ALIVE
    assert out == [(c.address, {"type": "gossip", "from": "a", "addr": a.address, "updates": [
        {"type": "alive", "node": "b", "addr": b.address, "inc": 1, "meta": {"v": 1}}]})]


def test_valid_versions_of_the_garbage_are_accepted() -> None:
    net = Net()
    a, b = net.cluster("a", "b")
    for message in (_ok("gossip", updates=[ALIVE_U]), _ok("nack", seq=1),
                    _ok("ack", seq=1, updates=[]), _ok("join-refused", reason="r"),
                    _ok("ping-req", seq=1, node="c", node_addr="c:1", nack=True, updates=[]),
                    _ok("push-pull-reply", nodes=[NODE], user={}),
                    {**_ok("gossip", updates=[]), "extra": "ignored"}):
        a.receive(message, 1.0)
    assert state(a, "new") is ALIVE


def test_ping_meant_for_another_name_is_not_acked() -> None:
    net = Net()
    a, b = net.cluster("a", "b")
    assert a.receive(_ok("ping", seq=9, node="someone-else", updates=[]), 1.0) == []
    assert a.receive(_ok("ping", seq=9, node="a", updates=[]), 1.0)[0][1]["type"] == "ack"


def test_an_update_larger_than_the_budget_still_goes_alone() -> None:
    q = BroadcastQueue()
    q.queue({"type": "alive", "node": "big", "meta": {"blob": "x" * 500}}, "big")
    q.queue({"type": "alive", "node": "small", "meta": {}}, "small")
    first = q.take(100, 4, 10)
    assert [u["node"] for u in first] == ["small"]
    second = q.take(100, 4, 10)
    assert [u["node"] for u in second] == ["big"]
