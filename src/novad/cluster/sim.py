"""A discrete-event simulator for :class:`~novad.cluster.membership.Membership`.

N members run on a simulated clock (a heap of events; no asyncio, no real
time) over a network model: loss probability, a delay distribution,
partitions, crashes (a crashed node stops processing and never answers) and
restarts.  Everything is drawn from seeded ``random.Random`` streams, so a
run is reproducible.  Every membership change each node sees is recorded,
with helpers to ask when every live member saw a join or a death, which
live members were ever declared dead (false positives), and whether the
views agree.

:class:`LwwRecords` is a sample delegate: last-writer-wins records spread by
user broadcasts and repaired by push-pull, so a test can show that data
written on both sides of a partition converges once it heals.
"""

from __future__ import annotations

import heapq
import json
import math
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from novad.cluster.members import Delegate, Member, MemberState
from novad.cluster.membership import GossipConfig, Membership, Out

__all__ = ["DeathRecord", "FailureTimes", "LwwRecords", "SimNode", "Simulation", "lan_delay",
           "measure_failure", "measure_join", "messages_per_node_period"]

DropRule = Callable[[str, str, dict[str, Any]], bool]
"""``(source address, destination address, message) -> drop it?``"""


def lan_delay(rng: random.Random) -> float:
    """One-way delay on a LAN: 0.5 to 5 ms."""
    return rng.uniform(0.0005, 0.005)


@dataclass(slots=True)
class DeathRecord:
    """A member declared dead by an observer while it was in fact running."""

    time: float
    observer: str
    member: str


@dataclass(eq=False)
class SimNode:
    """One simulated process: a membership and its counters."""

    name: str
    address: str
    membership: Membership
    user: Delegate | None = None
    up: bool = True
    sent: int = 0
    received: int = 0
    tick_at: float = math.inf
    tick_version: int = 0
    started_at: float = 0.0


class _Recorder:
    """The delegate the simulator installs: records, then forwards to the
    node's own delegate (if any)."""

    def __init__(self, sim: Simulation, observer: str, user: Delegate | None) -> None:
        self.sim, self.observer, self.user = sim, observer, user

    def notify_change(self, member: Member, old_state: MemberState | None) -> None:
        self.sim._record(self.observer, member)
        if self.user is not None:
            self.user.notify_change(member, old_state)

    def local_state(self) -> dict[str, Any]:
        return self.user.local_state() if self.user is not None else {}

    def merge_remote_state(self, state: dict[str, Any]) -> None:
        if self.user is not None:
            self.user.merge_remote_state(state)

    def get_broadcasts(self) -> list[dict[str, Any]]:
        return self.user.get_broadcasts() if self.user is not None else []

    def notify_user(self, payload: dict[str, Any]) -> None:
        if self.user is not None:
            self.user.notify_user(payload)


_DELIVER, _TICK, _CALL = 0, 1, 2


@dataclass
class Simulation:
    """Members on a simulated clock and network.

    ``loss`` is the probability that any one message is lost; ``delay`` draws
    a one-way delay; ``json_check`` round-trips every message through JSON
    (slower; proves the messages are plain JSON).
    """

    config: GossipConfig = field(default_factory=GossipConfig.lan)
    seed: int = 0
    loss: float = 0.0
    delay: Callable[[random.Random], float] = lan_delay
    json_check: bool = False
    now: float = 0.0
    nodes: dict[str, SimNode] = field(default_factory=dict)
    """By address (a restarted node keeps its entry)."""
    drop: DropRule | None = None
    """Extra loss rule (tests): drop a message when it returns True."""
    dropped: int = 0
    false_positives: list[DeathRecord] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._net = random.Random(self.seed)
        self._heap: list[tuple[float, int, int, Any, Any]] = []
        self._seq = 0
        self._groups: dict[str, int] | None = None
        self._by_name: dict[str, SimNode] = {}
        # (member, state) -> [(time, observer)]
        self._seen: dict[tuple[str, MemberState], list[tuple[float, str]]] = {}

    # -- building the cluster ---------------------------------------------------------

    def add_node(self, name: str, address: str | None = None, meta: dict[str, Any] | None = None,
                 user: Delegate | None = None, seeds: Sequence[str] = ()) -> SimNode:
        """Start a member now (joining through ``seeds``, names or addresses)."""
        address = address or f"{name}:7946"
        rng = random.Random(f"{self.seed}/{address}/{self.now}")
        membership = Membership(name, address, dict(meta or {}), self.config, rng, self.now,
                                _Recorder(self, name, user))
        node = SimNode(name, address, membership, user, started_at=self.now)
        self.nodes[address] = node
        self._by_name[name] = node
        if seeds:
            self.join(name, seeds)
        self._reschedule(node)
        return node

    def node(self, name: str) -> SimNode:
        """The latest node started under ``name``."""
        return self._by_name[name]

    def address(self, name_or_address: str) -> str:
        """An address for a name (addresses pass through)."""
        node = self._by_name.get(name_or_address)
        return node.address if node is not None else name_or_address

    def join(self, name: str, seeds: Sequence[str]) -> None:
        """``name`` (re)joins through ``seeds``."""
        node = self.node(name)
        self._send(node, node.membership.join([self.address(s) for s in seeds], self.now))
        self._reschedule(node)

    def bootstrap(self, n: int, prefix: str = "n", spacing: float = 0.01,
                  users: Callable[[str], Delegate] | None = None) -> list[SimNode]:
        """Start ``n`` members that join one another through the first, and
        run until every one knows every other as alive."""
        names = [f"{prefix}{i:03d}" for i in range(n)]
        nodes = [self.add_node(names[0], user=users(names[0]) if users else None)]
        for name in names[1:]:
            self.run_for(spacing)
            nodes.append(self.add_node(name, user=users(name) if users else None,
                                       seeds=[names[0]]))
        self.run_for(1.0)
        for name in names[1:]:  # a second push-pull, now that the seed knows everyone
            self.join(name, [names[0]])
        if not self.run_until_true(lambda: self.agreed(names), limit=60.0):
            raise AssertionError("bootstrap did not converge")
        return nodes

    # -- faults -----------------------------------------------------------------------

    def kill(self, name: str) -> None:
        """Crash ``name``: it stops processing and never answers."""
        self.node(name).up = False

    def restart(self, name: str, seeds: Sequence[str], meta: dict[str, Any] | None = None,
                user: Delegate | None = None) -> SimNode:
        """A fresh process under the same name and address, joining ``seeds``."""
        old = self.node(name)
        old.up = False
        return self.add_node(name, old.address, meta, user, seeds)

    def leave(self, name: str) -> None:
        """A graceful leave of ``name`` (it goes on gossiping)."""
        node = self.node(name)
        self._send(node, node.membership.leave(self.now))
        self._reschedule(node)

    def partition(self, *groups: Iterable[str]) -> None:
        """Only members of the same group (names or addresses) can talk;
        unlisted members talk to nobody."""
        self._groups = {self.address(a): i for i, group in enumerate(groups) for a in group}

    def heal(self) -> None:
        """Everyone can talk again."""
        self._groups = None

    # -- running ----------------------------------------------------------------------

    def at(self, when: float, action: Callable[[], None]) -> None:
        """Run ``action`` at simulated time ``when``."""
        self._push(when, _CALL, action, None)

    def run_until(self, until: float) -> None:
        """Process events up to ``until``; the clock ends there."""
        heap = self._heap
        while heap and heap[0][0] <= until:
            when, _, kind, a, b = heapq.heappop(heap)
            self.now = when
            if kind == _DELIVER:
                self._deliver(a, b)
            elif kind == _TICK:
                self._tick(a, b)
            else:
                a()
        self.now = max(self.now, until)

    def run_for(self, seconds: float) -> None:
        """Process events for ``seconds`` of simulated time."""
        self.run_until(self.now + seconds)

    def run_until_true(self, predicate: Callable[[], bool], limit: float,
                       step: float | None = None) -> bool:
        """Run until ``predicate()`` holds (checked every ``step``, default a
        gossip interval) or ``limit`` seconds pass; return whether it held."""
        step = step or self.config.gossip_interval
        end = self.now + limit
        while not predicate():
            if self.now >= end:
                return False
            self.run_until(min(end, self.now + step))
        return True

    def _push(self, when: float, kind: int, a: Any, b: Any) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (when, self._seq, kind, a, b))

    def _reschedule(self, node: SimNode) -> None:
        deadline = node.membership.next_deadline()
        if deadline < node.tick_at:
            node.tick_at = deadline
            node.tick_version += 1
            self._push(max(deadline, self.now), _TICK, node, node.tick_version)

    def _tick(self, node: SimNode, version: int) -> None:
        if version != node.tick_version or not node.up:
            return
        node.tick_at = math.inf
        self._send(node, node.membership.tick(self.now))
        self._reschedule(node)

    def _send(self, node: SimNode, out: list[Out]) -> None:
        net = self._net
        for address, message in out:
            node.sent += 1
            if self.json_check:
                message = json.loads(json.dumps(message))
            if (net.random() < self.loss or not self._can_talk(node.address, address)
                    or (self.drop is not None and self.drop(node.address, address, message))):
                self.dropped += 1
                continue
            self._push(self.now + self.delay(net), _DELIVER, address, message)

    def _can_talk(self, a: str, b: str) -> bool:
        groups = self._groups
        if groups is None:
            return True
        group = groups.get(a)
        return group is not None and group == groups.get(b)

    def _deliver(self, address: str, message: dict[str, Any]) -> None:
        node = self.nodes.get(address)
        if node is None or not node.up:
            self.dropped += 1
            return
        node.received += 1
        self._send(node, node.membership.receive(message, self.now))
        self._reschedule(node)

    # -- measuring --------------------------------------------------------------------

    def _record(self, observer: str, member: Member) -> None:
        self._seen.setdefault((member.name, member.state), []).append((self.now, observer))
        if member.state is MemberState.DEAD:
            node = self._by_name.get(member.name)
            if node is not None and node.up and node.address == member.address:
                self.false_positives.append(DeathRecord(self.now, observer, member.name))

    def live(self) -> list[SimNode]:
        """The nodes running now (the latest process of each name)."""
        return [n for n in self._by_name.values() if n.up and not n.membership.has_left]

    def saw(self, observer: str, member: str, state: MemberState, since: float = 0.0
            ) -> float | None:
        """When ``observer`` first saw ``member`` in ``state`` at or after ``since``."""
        for when, who in self._seen.get((member, state), ()):
            if when >= since and who == observer:
                return when
        return None

    def all_saw(self, member: str, states: Iterable[MemberState], since: float,
                observers: Iterable[str] | None = None) -> float | None:
        """When the last of ``observers`` (default: every live node but the
        member) first saw ``member`` in one of ``states`` since ``since``;
        None if one has not yet."""
        if observers is None:
            observers = [n.name for n in self.live() if n.name != member]
        first: dict[str, float] = {}
        for state in states:
            for when, who in self._seen.get((member, state), ()):
                if when >= since and (who not in first or when < first[who]):
                    first[who] = when
        times = []
        for observer in observers:
            if observer not in first:
                return None
            times.append(first[observer])
        return max(times, default=since)

    def first_saw(self, member: str, states: Iterable[MemberState], since: float
                  ) -> float | None:
        """When anyone first saw ``member`` in one of ``states`` since ``since``."""
        times = [when for state in states for when, _ in self._seen.get((member, state), ())
                 if when >= since]
        return min(times, default=None)

    def count_seen(self, state: MemberState, since: float = 0.0) -> int:
        """How many times any node saw any member enter ``state`` since ``since``."""
        return sum(1 for (_, s), seen in self._seen.items() if s is state
                   for when, _ in seen if when >= since)

    def views(self, names: Iterable[str] | None = None) -> dict[str, dict[str, MemberState]]:
        """Each live node's view: member name -> state."""
        chosen = set(names) if names is not None else None
        return {n.name: {m.name: m.state for m in n.membership.members()}
                for n in self.live() if chosen is None or n.name in chosen}

    def agreed(self, names: Sequence[str]) -> bool:
        """Whether every one of ``names`` sees every one of them alive."""
        for name in names:
            node = self._by_name[name]
            for other in names:
                m = node.membership.member(other)
                if m is None or m.state is not MemberState.ALIVE:
                    return False
        return True

    def reset_counters(self) -> None:
        """Zero the per-node message counters."""
        for node in self.nodes.values():
            node.sent = node.received = 0


# -- measurements -----------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class FailureTimes:
    """Seconds from a crash until: the first member suspected it, the first
    declared it dead, every live member had heard of the suspicion (or the
    death), and every live member marked it dead."""

    first_suspect: float
    first_dead: float
    all_suspect: float
    all_dead: float


def measure_failure(sim: Simulation, victim: str, limit: float = 600.0) -> FailureTimes:
    """Crash ``victim`` now and run until every live member marks it dead."""
    start = sim.now
    sim.kill(victim)
    dead = (MemberState.DEAD,)
    if not sim.run_until_true(lambda: sim.all_saw(victim, dead, start) is not None, limit):
        raise AssertionError(f"{victim} was not marked dead everywhere within {limit} s")
    heard = sim.all_saw(victim, (MemberState.SUSPECT, MemberState.DEAD), start)
    first_suspect = sim.first_saw(victim, (MemberState.SUSPECT,), start)
    first_dead = sim.first_saw(victim, dead, start)
    all_dead = sim.all_saw(victim, dead, start)
    assert heard is not None and first_dead is not None and all_dead is not None
    return FailureTimes((first_suspect if first_suspect is not None else first_dead) - start,
                        first_dead - start, heard - start, all_dead - start)


def measure_join(sim: Simulation, name: str, seed: str, limit: float = 120.0) -> float:
    """Start ``name`` now, joining through ``seed``; seconds until every
    live member sees it alive."""
    start = sim.now
    sim.add_node(name, seeds=[seed])
    alive = (MemberState.ALIVE,)
    if not sim.run_until_true(lambda: sim.all_saw(name, alive, start) is not None, limit):
        raise AssertionError(f"the join of {name} did not reach everyone within {limit} s")
    done = sim.all_saw(name, alive, start)
    assert done is not None
    return done - start


def messages_per_node_period(sim: Simulation, seconds: float) -> float:
    """Run ``seconds`` more; messages sent per live node per probe interval."""
    sim.reset_counters()
    sim.run_for(seconds)
    live = sim.live()
    sent = sum(n.sent for n in live)
    return sent / len(live) / (seconds / sim.config.probe_interval)


# -- a sample delegate ------------------------------------------------------------------

class LwwRecords:
    """Replicated records: key -> (value, hlc, origin), last writer wins by
    ``(hlc, origin)``.  Writes and news learnt are broadcast (so they spread
    epidemically); push-pull carries the whole set (so they converge)."""

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.records: dict[str, tuple[Any, int, str]] = {}
        self._hlc = 0
        self._outbox: list[dict[str, Any]] = []

    def write(self, key: str, value: Any, now: float) -> None:
        """A local write at (simulated) time ``now``."""
        self._hlc = max(self._hlc + 1, int(now * 1000) << 16)
        self._merge(key, value, self._hlc, self.origin)

    def _merge(self, key: str, value: Any, hlc: int, origin: str) -> None:
        self._hlc = max(self._hlc, hlc)
        current = self.records.get(key)
        if current is not None and (current[1], current[2]) >= (hlc, origin):
            return
        self.records[key] = (value, hlc, origin)
        self._outbox.append({"k": key, "v": value, "h": hlc, "o": origin})

    def _merge_entry(self, entry: Any) -> None:
        if not isinstance(entry, dict):
            return
        key, hlc, origin = entry.get("k"), entry.get("h"), entry.get("o")
        if isinstance(key, str) and isinstance(hlc, int) and isinstance(origin, str):
            self._merge(key, entry.get("v"), hlc, origin)

    def notify_change(self, member: Member, old_state: MemberState | None) -> None:
        """Membership changes do not matter to records."""

    def local_state(self) -> dict[str, Any]:
        """Every record."""
        return {"records": [{"k": k, "v": v, "h": h, "o": o}
                            for k, (v, h, o) in self.records.items()]}

    def merge_remote_state(self, state: dict[str, Any]) -> None:
        """A peer's records: the newer of each wins."""
        entries = state.get("records")
        if isinstance(entries, list):
            for entry in entries:
                self._merge_entry(entry)

    def get_broadcasts(self) -> list[dict[str, Any]]:
        """Writes and news since the last call."""
        out, self._outbox = self._outbox, []
        return out

    def notify_user(self, payload: dict[str, Any]) -> None:
        """A broadcast record."""
        self._merge_entry(payload)

    def values(self) -> dict[str, Any]:
        """key -> value."""
        return {k: v for k, (v, _, _) in self.records.items()}
