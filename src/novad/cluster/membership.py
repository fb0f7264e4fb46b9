"""Cluster membership: SWIM with Lifeguard, shaped as HashiCorp memberlist.

Sans-IO: :class:`Membership` never reads a clock, sleeps or sends.  It is
given ``now`` and messages, and answers with the messages to send, as
``(address, message)`` pairs of plain JSON.  With the same ``random.Random``
and the same inputs it does the same thing, which is what lets
:mod:`novad.cluster.sim` run a hundred of them on a simulated clock and
:mod:`novad.cluster.runner` run one on the event loop.

The protocol, as memberlist does it:

* **failure detection** — every probe interval, ping the next member of a
  shuffled round-robin list.  No ack within the probe timeout: ask
  ``indirect_checks`` random members to ping it for us (``ping-req``); they
  forward its ack, or a nack if it did not answer them.  No ack by the end of
  the interval: suspect it.  A suspect that does not refute (by gossiping an
  alive with a higher incarnation) before its suspicion timeout is dead.
* **Lifeguard** — (a) a health score that missed acks and missing nacks
  raise, stretching this node's own probe interval and timeout; (b) a
  suspicion timeout that starts long and shrinks with independent
  confirmations (:mod:`~novad.cluster.suspicion`); (c) the buddy system: a
  ping to a suspect carries the suspicion, so it can refute at once.
* **dissemination** — every update (alive, suspect, dead) goes into a
  transmit-limited queue (:mod:`~novad.cluster.broadcasts`), piggybacked on
  pings, acks and ping-reqs and sent every gossip interval to
  ``gossip_nodes`` random members (and to the recently dead).
* **anti-entropy** — every push-pull interval (stretched past 32 members) a
  full state exchange with one random member; a join is a push-pull.  Dead
  members are retried now and then (as Serf's reconnect does), so a healed
  partition becomes one cluster again.
* **one addition** — a suspect or dead claim older than an alive we hold is
  answered, straight to the claimant, with that alive: a node that missed a
  refutation (the epidemic's tail) learns it before its own suspicion timer
  fires, instead of at the next push-pull.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from novad.cluster.awareness import Awareness
from novad.cluster.broadcasts import BroadcastQueue, retransmit_limit
from novad.cluster.members import Delegate, Member, MemberState, NullDelegate
from novad.cluster.messages import MAX_UPDATES, BadMessage, validate
from novad.cluster.suspicion import Suspicion, suspicion_timeout
from novad.config import ClusterSection

__all__ = ["BadMessage", "Delegate", "GossipConfig", "Member", "MemberState", "Membership",
           "NullDelegate", "Out", "push_pull_scale"]

Out = tuple[str, dict[str, Any]]
"""One message to send: (destination address, JSON-able message)."""

ALIVE, SUSPECT, DEAD, LEFT = (MemberState.ALIVE, MemberState.SUSPECT, MemberState.DEAD,
                              MemberState.LEFT)
_LIVE = (ALIVE, SUSPECT)
_PUSH_PULL_SCALE_THRESHOLD = 32
_EPSILON = 1e-9


@dataclass(frozen=True)
class GossipConfig:
    """Membership's timers and fan-outs; the defaults are memberlist's LAN."""

    probe_interval: float = 1.0
    """Seconds between failure-detection probes (stretched by ill health)."""
    probe_timeout: float = 0.5
    """Seconds to wait for a direct ack before asking others to probe."""
    indirect_checks: int = 3
    """Members asked to probe a node that did not answer directly."""
    suspicion_mult: int = 4
    """Minimum suspicion timeout = mult * max(1, log10(N)) * probe_interval."""
    suspicion_max_timeout_mult: int = 6
    """A suspicion starts at this many times the minimum."""
    retransmit_mult: int = 4
    """Each update is sent mult * ceil(log10(N + 1)) times."""
    gossip_interval: float = 0.2
    """Seconds between gossip rounds (none while nothing is queued)."""
    gossip_nodes: int = 3
    """Members each gossip round sends to."""
    push_pull_interval: float = 30.0
    """Seconds between full state syncs with a random member; 0 = never."""
    awareness_max_multiplier: int = 8
    """Ill health stretches probe interval and timeout up to this many times."""
    dead_node_reclaim_time: float = 3600.0
    """Seconds a dead or left member stays listed before it is forgotten."""
    gossip_to_the_dead_time: float = 30.0
    """Seconds a dead member still receives gossip (so it can refute)."""
    reconnect_interval: float = 30.0
    """Seconds between attempts to push-pull with a random dead member."""
    piggyback_bytes: int = 16384
    """Budget of encoded updates piggybacked on one message."""

    @classmethod
    def from_section(cls, section: ClusterSection) -> GossipConfig:
        """The daemon's ``[cluster]`` options."""
        return cls(probe_interval=section.probe_interval, probe_timeout=section.probe_timeout,
                   indirect_checks=section.indirect_checks,
                   suspicion_mult=section.suspicion_mult,
                   suspicion_max_timeout_mult=section.suspicion_max_timeout_mult,
                   retransmit_mult=section.retransmit_mult,
                   gossip_interval=section.gossip_interval, gossip_nodes=section.gossip_nodes,
                   push_pull_interval=section.push_pull_interval,
                   awareness_max_multiplier=section.awareness_max_multiplier,
                   dead_node_reclaim_time=section.dead_node_reclaim_time)

    @classmethod
    def lan(cls) -> GossipConfig:
        """memberlist's ``DefaultLANConfig``."""
        return cls()

    @classmethod
    def local(cls) -> GossipConfig:
        """Ten times faster than LAN, for tests on one machine."""
        return cls(probe_interval=0.1, probe_timeout=0.05, gossip_interval=0.02,
                   push_pull_interval=3.0, gossip_to_the_dead_time=3.0,
                   reconnect_interval=1.0, dead_node_reclaim_time=60.0)


def push_pull_scale(interval: float, n: int) -> float:
    """The push-pull interval for ``n`` members: past 32, one more interval
    per doubling (memberlist's ``pushPullScale``), so the sync load per member
    stays bounded."""
    if n <= _PUSH_PULL_SCALE_THRESHOLD:
        return interval
    return interval * (math.ceil(math.log2(n) - math.log2(_PUSH_PULL_SCALE_THRESHOLD)) + 1)


@dataclass(slots=True)
class _Probe:
    """The probe in flight: direct until ``direct_deadline``, then indirect."""

    seq: int
    target: str
    direct_deadline: float
    deadline: float
    indirect: bool = False
    expected_nacks: int = 0
    nacks: int = 0


@dataclass(slots=True)
class _Relay:
    """A ping we send on someone's behalf (their ping-req)."""

    origin_addr: str
    origin_seq: int
    deadline: float
    nack: bool


_MAX_RELAYS = 1024


class Membership:
    """One node's view of the cluster, and the protocol that keeps it.

    Not thread-safe; every method is synchronous and never blocks.  Methods
    that take ``now`` return the messages to send.
    """

    def __init__(self, name: str, address: str, meta: dict[str, Any], config: GossipConfig,
                 rng: random.Random, now: float, delegate: Delegate | None = None) -> None:
        self.name = name
        self.address = address
        self.config = config
        self._rng = rng
        self._delegate = delegate
        self._now = now
        self._members: dict[str, Member] = {}
        self._names: list[str] = []
        self._counts = {state: 0 for state in MemberState}
        self._probe_order: list[str] = []
        self._probe_index = 0
        self._self = Member(name, address, ALIVE, 0, dict(meta), now, now)
        self._add(self._self)
        self._probe: _Probe | None = None
        self._relays: dict[int, _Relay] = {}
        self._suspicions: dict[str, Suspicion] = {}
        self._queue = BroadcastQueue()
        self._awareness = Awareness(config.awareness_max_multiplier)
        self._seq = rng.randrange(1 << 31)
        self._left = False
        self._join_pending = False
        self.join_refused: str | None = None
        """Why a seed refused our join (our name is taken), else None."""
        self.push_pull_replies = 0
        """Push-pull answers received (the first one completes a join)."""
        self._probe_at = now + rng.uniform(0, config.probe_interval)
        self._gossip_at = now + rng.uniform(0, config.gossip_interval)
        self._push_pull_at = (now + rng.uniform(0, config.push_pull_interval)
                              if config.push_pull_interval > 0 else math.inf)
        self._reconnect_at = now + rng.uniform(0, config.reconnect_interval)
        self._handlers: dict[str, Callable[[dict[str, Any], float], list[Out]]] = {
            "ping": self._on_ping, "ack": self._on_ack, "nack": self._on_nack,
            "ping-req": self._on_ping_req, "gossip": self._on_gossip,
            "push-pull": self._on_push_pull, "push-pull-reply": self._on_push_pull_reply,
            "join-refused": self._on_join_refused,
        }
        # As memberlist does: a newcomer gossips its own alive too, so the
        # join reaches everyone from two sources, the seed and itself.
        self._queue_alive(self._self)
        self._notify(self._self, None)

    # -- what the daemon asks ---------------------------------------------------------

    @property
    def local_member(self) -> Member:
        """This node, as others should see it (a snapshot)."""
        return self._self.copy()

    def members(self) -> list[Member]:
        """Every member known, this node included, dead and left ones too
        (until reclaimed); snapshots."""
        return [self._members[name].copy() for name in self._names]

    def size(self) -> int:
        """How many members are known, this node and dead or left ones included."""
        return len(self._names)

    def member(self, name: str) -> Member | None:
        """One member by name (a snapshot), or None."""
        m = self._members.get(name)
        return None if m is None else m.copy()

    def num_alive(self) -> int:
        """Members believed alive, this node included (unless it left)."""
        return self._counts[ALIVE]

    def num_live(self) -> int:
        """Members alive or suspect: the N of every formula."""
        return self._counts[ALIVE] + self._counts[SUSPECT]

    @property
    def health_score(self) -> int:
        """Lifeguard's local health score; 0 is healthy."""
        return self._awareness.score

    @property
    def pending_broadcasts(self) -> int:
        """Updates waiting in the broadcast queue."""
        return len(self._queue)

    @property
    def has_left(self) -> bool:
        """Whether :meth:`leave` was called."""
        return self._left

    @property
    def leave_finished(self) -> bool:
        """Whether our leave went out as often as any update does, or there is
        nobody left to tell."""
        return self._left and (self.name not in self._queue or not self._others_live())

    def _others_live(self) -> int:
        return self.num_live() - (1 if self._self.state in _LIVE else 0)

    def suspicion(self, name: str) -> Suspicion | None:
        """The running suspicion timer of a member (tests, diagnostics)."""
        return self._suspicions.get(name)

    # -- inputs -----------------------------------------------------------------------

    def join(self, seeds: Sequence[str], now: float) -> list[Out]:
        """A push-pull to every seed (our address skipped).  The first reply
        merges the cluster's state; a refusal sets :attr:`join_refused`."""
        self._now = max(self._now, now)
        self.join_refused = None
        self._join_pending = True
        message = self._push_pull_message("push-pull", join=True)
        return [(seed, message) for seed in dict.fromkeys(seeds) if seed != self.address]

    def receive(self, message: dict[str, Any], now: float) -> list[Out]:
        """Handle one inbound message.  Raises :class:`BadMessage` (and
        changes nothing) when it does not match the schema."""
        kind = validate(message)
        self._now = max(self._now, now)
        sender = message["from"]
        if kind == "push-pull" and message["join"]:
            refusal = self._refuse_join(sender, message["addr"])
            if refusal is not None:
                return [refusal]
        if sender == self.name and kind != "join-refused":
            return []  # a node with our name: only its refusal of our join matters
        self._self.last_seen = now
        member = self._members.get(sender)
        if member is not None and member.address == message["addr"]:
            member.last_seen = max(member.last_seen, now)
        out = self._handlers[kind](message, now)
        self._poll_user()
        return out

    def tick(self, now: float) -> list[Out]:
        """Run every timer that is due; harmless when none is."""
        out: list[Out] = []
        self._now = max(self._now, now)
        self._self.last_seen = now
        self._poll_user()
        self._expire_suspicions(now)
        self._expire_relays(now, out)
        self._advance_probe(now, out)
        if now >= self._gossip_at - _EPSILON:
            interval = self.config.gossip_interval
            beats = math.floor((now - self._gossip_at) / interval + _EPSILON) + 1
            self._gossip_at += beats * interval
            self._gossip(now, out)
        if not self._left:
            self._maybe_push_pull(now, out)
            self._maybe_reconnect(now, out)
        return out

    def next_deadline(self) -> float:
        """When :meth:`tick` next has something to do."""
        deadline = math.inf if self._left else min(self._probe_at, self._push_pull_at)
        probe = self._probe
        if probe is not None:
            deadline = min(deadline, probe.deadline if probe.indirect else probe.direct_deadline)
        if self._relays:
            deadline = min(deadline, min(r.deadline for r in self._relays.values()))
        if self._suspicions:
            deadline = min(deadline, min(s.deadline for s in self._suspicions.values()))
        if self._queue and (self._others_live() or self._counts[DEAD]):
            deadline = min(deadline, self._next_gossip())
        if not self._left and self._counts[DEAD]:
            deadline = min(deadline, self._reconnect_at)
        return deadline

    def _next_gossip(self) -> float:
        """The gossip ticker's next beat at or after the latest ``now`` seen:
        news queued while idle waits for it, as with memberlist's ticker."""
        late = self._now - self._gossip_at
        if late <= 0:
            return self._gossip_at
        interval = self.config.gossip_interval
        return self._gossip_at + math.ceil(late / interval - _EPSILON) * interval

    def leave(self, now: float) -> list[Out]:
        """Leave gracefully: declare ourselves LEFT (others record LEFT, not
        DEAD) and gossip it at once.  Probing stops; gossip goes on, so keep
        ticking until :attr:`leave_finished`.  Idempotent."""
        if self._left:
            return []
        self._now = max(self._now, now)
        self._left = True
        self._on_dead(self.name, self._self.incarnation, self.name, now)
        out: list[Out] = []
        self._gossip(now, out)
        return out

    def update_meta(self, meta: dict[str, Any], now: float) -> None:
        """Publish new meta: a new incarnation of ourselves, gossiped.
        Ignored after :meth:`leave`."""
        if self._left:
            return
        self._now = max(self._now, now)
        self._self.meta = dict(meta)
        self._self.incarnation += 1
        self._queue_alive(self._self)
        self._notify(self._self, ALIVE)

    # -- the four transitions ---------------------------------------------------------

    def _on_alive(self, name: str, address: str, incarnation: int, meta: dict[str, Any],
                  now: float) -> None:
        """An alive claim: a new member, news about one, or one back from the dead."""
        if name == self.name:
            self._alive_about_self(address, incarnation, meta)
            return
        member = self._members.get(name)
        if member is None:
            member = Member(name, address, ALIVE, incarnation, dict(meta), now, now)
            self._add(member)
            self._queue_alive(member)
            self._notify(member, None)
            return
        if address != member.address:
            if member.state in _LIVE:
                return  # another node claims a live member's name: ignored
        elif incarnation <= member.incarnation:
            return
        old_state, changed = member.state, member.meta != meta or member.address != address
        self._suspicions.pop(name, None)
        member.address, member.incarnation, member.meta = address, incarnation, dict(meta)
        member.last_seen = max(member.last_seen, now)
        if old_state is not ALIVE:
            self._set_state(member, ALIVE, now)
        self._queue_alive(member)
        if old_state is not ALIVE or changed:
            self._notify(member, old_state)

    def _alive_about_self(self, address: str, incarnation: int, meta: dict[str, Any]) -> None:
        me = self._self
        if self._left or incarnation < me.incarnation:
            return
        if incarnation == me.incarnation and address == me.address and meta == me.meta:
            return
        self._refute(incarnation)

    def _on_suspect(self, name: str, incarnation: int, accuser: str, now: float) -> None:
        """A suspicion: start the timer, or count a confirmation of a running one."""
        member = self._members.get(name)
        if member is None or incarnation < member.incarnation:
            return
        timer = self._suspicions.get(name)
        if timer is not None:
            if timer.confirm(accuser):
                self._queue_suspect(name, incarnation, accuser)
            return
        if member.state is not ALIVE:
            return
        if member is self._self:
            if not self._left:
                self._refute(incarnation)
            return
        self._queue_suspect(name, incarnation, accuser)
        member.incarnation = incarnation
        self._set_state(member, SUSPECT, now)
        n = self.num_live()
        # memberlist's expected confirmations: suspicion_mult - 2, none in a tiny cluster
        k = self.config.suspicion_mult - 2
        k = 0 if n - 2 < k else k
        low = suspicion_timeout(self.config.suspicion_mult, n, self.config.probe_interval)
        high = self.config.suspicion_max_timeout_mult * low
        self._suspicions[name] = Suspicion(accuser, k, low, high, now)
        self._notify(member, ALIVE)

    def _on_dead(self, name: str, incarnation: int, accuser: str, now: float) -> None:
        """A death (or, when the accuser is the node itself, a leave)."""
        member = self._members.get(name)
        if member is None or incarnation < member.incarnation:
            return
        self._suspicions.pop(name, None)
        if member.state in (DEAD, LEFT):
            return
        if member is self._self and not self._left:
            self._refute(incarnation)
            return
        self._queue.queue({"type": "dead", "node": name, "inc": incarnation, "from": accuser},
                          name)
        old_state = member.state
        member.incarnation = incarnation
        self._set_state(member, LEFT if accuser == name else DEAD, now)
        self._notify(member, old_state)

    def _refute(self, accused: int) -> None:
        """Someone thinks we are suspect or dead, or spreads a stale alive of
        ours: outbid their incarnation.  Being accused is also a hint that we
        may be the slow one (Lifeguard)."""
        me = self._self
        me.incarnation = max(me.incarnation, accused) + 1
        self._awareness.apply(1)
        self._queue_alive(me)

    # -- bookkeeping ------------------------------------------------------------------

    def _add(self, member: Member) -> None:
        self._members[member.name] = member
        self._names.append(member.name)
        self._counts[member.state] += 1
        if member is not self._self:
            # Into the part of this round not yet probed, so it is probed soon.
            order = self._probe_order
            order.insert(self._rng.randint(self._probe_index, len(order)), member.name)

    def _set_state(self, member: Member, state: MemberState, now: float) -> None:
        self._counts[member.state] -= 1
        self._counts[state] += 1
        member.state = state
        member.state_changed_at = now

    def _notify(self, member: Member, old_state: MemberState | None) -> None:
        if self._delegate is not None:
            self._delegate.notify_change(member.copy(), old_state)

    @staticmethod
    def _alive_update(member: Member) -> dict[str, Any]:
        return {"type": "alive", "node": member.name, "addr": member.address,
                "inc": member.incarnation, "meta": member.meta}

    def _queue_alive(self, member: Member) -> None:
        self._queue.queue(self._alive_update(member), member.name)

    def _queue_suspect(self, name: str, incarnation: int, accuser: str) -> None:
        self._queue.queue({"type": "suspect", "node": name, "inc": incarnation,
                           "from": accuser}, name)

    def _reclaim(self, now: float) -> None:
        """Forget members dead or left for longer than the reclaim time."""
        limit = self.config.dead_node_reclaim_time
        gone = [name for name, m in self._members.items()
                if m.state in (DEAD, LEFT) and m is not self._self
                and now - m.state_changed_at > limit]
        for name in gone:
            self._counts[self._members.pop(name).state] -= 1
        if gone:
            self._names = [name for name in self._names if name in self._members]

    # -- messages ---------------------------------------------------------------------

    def _message(self, kind: str, **fields: Any) -> dict[str, Any]:
        return {"type": kind, "from": self.name, "addr": self.address, **fields}

    def _piggyback(self, budget: int | None = None) -> list[dict[str, Any]]:
        if not self._queue:
            return []
        limit = retransmit_limit(self.config.retransmit_mult, self.num_live())
        return self._queue.take(self.config.piggyback_bytes if budget is None else budget,
                                limit, MAX_UPDATES)

    def _apply_updates(self, message: dict[str, Any], now: float) -> list[Out]:
        """Apply piggybacked updates.  A suspect or dead claim older than an
        alive we hold is answered with that alive, straight to the claimant:
        a node that missed a refutation learns it before its own suspicion
        timer declares a live member dead (an addition to memberlist, which
        leaves such stragglers to the next push-pull)."""
        stale: list[dict[str, Any]] = []
        for update in message["updates"]:
            kind = update["type"]
            if kind == "alive":
                self._on_alive(update["node"], update["addr"], update["inc"], update["meta"],
                               now)
            elif kind == "suspect" or kind == "dead":
                known = self._members.get(update["node"])
                if (known is not None and known.state is ALIVE
                        and update["inc"] < known.incarnation and len(stale) < 32):
                    stale.append(self._alive_update(known))
                elif kind == "suspect":
                    self._on_suspect(update["node"], update["inc"], update["from"], now)
                else:
                    self._on_dead(update["node"], update["inc"], update["from"], now)
            elif self._delegate is not None:
                self._delegate.notify_user(update["payload"])
        if not stale:
            return []
        return [(message["addr"], self._message("gossip", updates=stale))]

    def _on_ping(self, message: dict[str, Any], now: float) -> list[Out]:
        out = self._apply_updates(message, now)
        if message["node"] != self.name:
            return out  # meant for a node that had our address before us
        out.append((message["addr"], self._message("ack", seq=message["seq"],
                                                   updates=self._piggyback())))
        return out

    def _on_ack(self, message: dict[str, Any], now: float) -> list[Out]:
        out = self._apply_updates(message, now)
        seq = message["seq"]
        probe = self._probe
        if probe is not None and probe.seq == seq:
            self._awareness.apply(-1)
            self._probe = None
            return out
        relay = self._relays.pop(seq, None)
        if relay is not None:
            out.append((relay.origin_addr, self._message("ack", seq=relay.origin_seq,
                                                         updates=self._piggyback())))
        return out

    def _on_nack(self, message: dict[str, Any], now: float) -> list[Out]:
        probe = self._probe
        if probe is not None and probe.seq == message["seq"] and probe.indirect:
            probe.nacks += 1
        return []

    def _on_ping_req(self, message: dict[str, Any], now: float) -> list[Out]:
        out = self._apply_updates(message, now)
        if len(self._relays) >= _MAX_RELAYS:
            return out
        self._seq += 1
        self._relays[self._seq] = _Relay(message["addr"], message["seq"],
                                         now + self.config.probe_timeout, message["nack"])
        out.append((message["node_addr"], self._message(
            "ping", seq=self._seq, node=message["node"], updates=self._piggyback())))
        return out

    def _on_gossip(self, message: dict[str, Any], now: float) -> list[Out]:
        return self._apply_updates(message, now)

    def _refuse_join(self, name: str, address: str) -> Out | None:
        """A join under a name a live member at another address holds."""
        holder: str | None = None
        if name == self.name:
            holder = self.address if address != self.address else None
        else:
            member = self._members.get(name)
            if member is not None and member.state in _LIVE and member.address != address:
                holder = member.address
        if holder is None:
            return None
        reason = f"node name {name!r} is taken by {holder}"
        return (address, self._message("join-refused", reason=reason))

    def _on_push_pull(self, message: dict[str, Any], now: float) -> list[Out]:
        # Merge first, so that our answer already carries any refutation it
        # called for (a healed partition converges a round sooner).
        self._merge_state(message, now)
        return [(message["addr"], self._push_pull_message("push-pull-reply"))]

    def _on_push_pull_reply(self, message: dict[str, Any], now: float) -> list[Out]:
        self._merge_state(message, now)
        self.push_pull_replies += 1
        self._join_pending = False
        return []

    def _on_join_refused(self, message: dict[str, Any], now: float) -> list[Out]:
        if self._join_pending:
            self.join_refused = message["reason"]
            self._join_pending = False
        return []

    def _push_pull_message(self, kind: str, join: bool | None = None) -> dict[str, Any]:
        nodes = [{"node": m.name, "addr": m.address, "inc": m.incarnation,
                  "state": str(m.state), "meta": m.meta} for m in self._members.values()]
        user = self._delegate.local_state() if self._delegate is not None else None
        if join is None:
            return self._message(kind, nodes=nodes, user=user)
        return self._message(kind, join=join, nodes=nodes, user=user)

    def _merge_state(self, message: dict[str, Any], now: float) -> None:
        """A peer's full state.  A remote dead is only a suspicion here: we
        give the member its chance to refute (memberlist's mergeState)."""
        for node in message["nodes"]:
            state = node["state"]
            if state == "alive":
                self._on_alive(node["node"], node["addr"], node["inc"], node["meta"], now)
            elif state == "left":
                self._on_dead(node["node"], node["inc"], node["node"], now)
            else:
                self._on_suspect(node["node"], node["inc"], self.name, now)
        if self._delegate is not None and message["user"] is not None:
            self._delegate.merge_remote_state(message["user"])

    # -- timers -----------------------------------------------------------------------

    def _expire_suspicions(self, now: float) -> None:
        for name in [n for n, s in self._suspicions.items() if s.deadline <= now]:
            member = self._members.get(name)
            del self._suspicions[name]
            if member is not None and member.state is SUSPECT:
                self._on_dead(name, member.incarnation, self.name, now)

    def _expire_relays(self, now: float, out: list[Out]) -> None:
        for seq in [s for s, r in self._relays.items() if r.deadline <= now]:
            relay = self._relays.pop(seq)
            if relay.nack:
                out.append((relay.origin_addr, self._message("nack", seq=relay.origin_seq)))

    def _advance_probe(self, now: float, out: list[Out]) -> None:
        probe = self._probe
        if probe is not None and not probe.indirect and now >= probe.direct_deadline:
            self._probe_indirectly(probe, out)
        if probe is not None and now >= probe.deadline:
            self._probe = None
            self._probe_failed(probe, now)
        if self._probe is None and now >= self._probe_at and not self._left:
            interval = self._awareness.scale(self.config.probe_interval)
            self._probe_at += interval
            if self._probe_at <= now:
                self._probe_at = now + interval
            self._start_probe(now, out)

    def _start_probe(self, now: float, out: list[Out]) -> None:
        target = self._next_probe_target(now)
        if target is None:
            return
        self._seq += 1
        scale = self._awareness.scale
        self._probe = _Probe(self._seq, target.name, now + scale(self.config.probe_timeout),
                             now + scale(self.config.probe_interval))
        updates = []
        if target.state is SUSPECT:
            # Lifeguard's buddy system: tell the suspect, so it refutes at once.
            updates.append({"type": "suspect", "node": target.name, "inc": target.incarnation,
                            "from": self.name})
        updates += self._piggyback()
        out.append((target.address, self._message("ping", seq=self._seq, node=target.name,
                                                  updates=updates)))

    def _probe_indirectly(self, probe: _Probe, out: list[Out]) -> None:
        probe.indirect = True
        target = self._members.get(probe.target)
        if target is None:
            return
        peers = self._random_members(
            self.config.indirect_checks,
            lambda m: m.state is ALIVE and m is not self._self and m is not target)
        probe.expected_nacks = len(peers)
        for peer in peers:
            out.append((peer.address, self._message(
                "ping-req", seq=probe.seq, node=target.name, node_addr=target.address,
                nack=True, updates=self._piggyback())))

    def _probe_failed(self, probe: _Probe, now: float) -> None:
        # Relays that did not even nack suggest the fault is ours (Lifeguard).
        if probe.expected_nacks:
            self._awareness.apply(max(0, probe.expected_nacks - probe.nacks))
        else:
            self._awareness.apply(1)
        target = self._members.get(probe.target)
        if target is not None and target.state in _LIVE:
            self._on_suspect(target.name, target.incarnation, self.name, now)

    def _next_probe_target(self, now: float) -> Member | None:
        """The next live member of the shuffled round-robin list."""
        for _ in range(2 * len(self._probe_order) + 2):
            if self._probe_index >= len(self._probe_order):
                self._reset_probe_order(now)
                if not self._probe_order:
                    return None
            name = self._probe_order[self._probe_index]
            self._probe_index += 1
            member = self._members.get(name)
            if member is not None and member is not self._self and member.state in _LIVE:
                return member
        return None

    def _reset_probe_order(self, now: float) -> None:
        self._reclaim(now)
        self._probe_order = [name for name in self._names if name != self.name]
        self._rng.shuffle(self._probe_order)
        self._probe_index = 0

    def _poll_user(self) -> None:
        if self._delegate is not None:
            for payload in self._delegate.get_broadcasts():
                self._queue.queue({"type": "user", "payload": payload})

    def _gossip(self, now: float, out: list[Out]) -> None:
        self._poll_user()
        if not self._queue:
            return
        dead_time = self.config.gossip_to_the_dead_time
        targets = self._random_members(
            self.config.gossip_nodes,
            lambda m: m is not self._self and (
                m.state in _LIVE or (m.state is DEAD and now - m.state_changed_at <= dead_time)))
        for target in targets:
            updates = self._piggyback()
            if not updates:
                break
            out.append((target.address, self._message("gossip", updates=updates)))

    def _maybe_push_pull(self, now: float, out: list[Out]) -> None:
        if now < self._push_pull_at:
            return
        self._push_pull_at = now + push_pull_scale(self.config.push_pull_interval,
                                                   self.num_live())
        peers = self._random_members(1, lambda m: m.state is ALIVE and m is not self._self)
        if peers:
            out.append((peers[0].address, self._push_pull_message("push-pull", join=False)))

    def _maybe_reconnect(self, now: float, out: list[Out]) -> None:
        """Now and then, a push-pull with a dead member: if it was only cut
        off, the exchange makes both sides refute (Serf's reconnect)."""
        if now < self._reconnect_at:
            return
        self._reconnect_at = now + self.config.reconnect_interval
        dead = self._counts[DEAD]
        if not dead or self._rng.random() > dead / max(1, self.num_live()):
            return
        peers = self._random_members(1, lambda m: m.state is DEAD)
        if peers:
            out.append((peers[0].address, self._push_pull_message("push-pull", join=False)))

    def _random_members(self, k: int, accept: Callable[[Member], bool]) -> list[Member]:
        """Up to ``k`` distinct random members that ``accept`` takes."""
        names, members = self._names, self._members
        n = len(names)
        if n <= 64:
            pool = [m for m in (members[name] for name in names) if accept(m)]
            return self._rng.sample(pool, min(k, len(pool)))
        picked: list[Member] = []
        seen: set[int] = set()
        random = self._rng.random
        for _ in range(3 * n):
            i = int(random() * n)
            if i not in seen:
                seen.add(i)
                member = members[names[i]]
                if accept(member):
                    picked.append(member)
                    if len(picked) >= k:
                        break
        return picked
