"""What membership knows about one node, and the narrow interface through
which it tells the rest of the daemon (memberlist's ``Node``, ``NodeState``
and its ``Delegate``/``EventDelegate`` folded into one small protocol).

A member moves between four states; each move is one function of
:class:`~novad.cluster.membership.Membership` (``_on_alive``,
``_on_suspect``, ``_on_dead``; leaving is a death declared by the node
itself)::

    ALIVE ──probe fails──▶ SUSPECT ──suspicion expires──▶ DEAD
      ▲ ◀──refuted (higher incarnation)──┘                  │
      └────────────── alive again (higher incarnation) ◀────┤
    ALIVE ──the node says it leaves──▶ LEFT ────────────────┘
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol


class MemberState(StrEnum):
    """A member's state as this node believes it."""

    ALIVE = "alive"
    """It answers probes, or someone heard from it more recently than any claim
    to the contrary (a higher incarnation wins)."""
    SUSPECT = "suspect"
    """A probe went unanswered, directly and through ``indirect_checks`` relays;
    it has until the suspicion timeout to refute."""
    DEAD = "dead"
    """The suspicion expired unrefuted."""
    LEFT = "left"
    """It announced its own departure (a graceful leave)."""


@dataclass(slots=True)
class Member:
    """One member of the cluster, as this node sees it.

    Times are on the clock of the ``now`` values given to
    :class:`~novad.cluster.membership.Membership` (the runner passes the event
    loop's monotonic clock).  ``meta`` is the member's own JSON-able
    description (resources, zone): opaque to membership.
    """

    name: str
    address: str
    state: MemberState
    incarnation: int
    meta: dict[str, Any]
    state_changed_at: float
    last_seen: float
    """Last time a message from it, or an accepted alive about it, arrived."""

    def copy(self) -> Member:
        """A snapshot that the caller may keep or change freely."""
        return Member(self.name, self.address, self.state, self.incarnation, dict(self.meta),
                      self.state_changed_at, self.last_seen)


class Delegate(Protocol):
    """What membership calls back into (all optional in spirit: subclass
    :class:`NullDelegate` and override what you need).

    Every method is called synchronously from inside ``Membership.receive``,
    ``tick``, ``join``, ``leave`` or ``update_meta``: it must not block and must
    not call back into the membership.  An exception propagates to the caller.
    """

    def notify_change(self, member: Member, old_state: MemberState | None) -> None:
        """A member joined (``old_state`` None), changed meta or address, was
        suspected, died, left, or came back.  ``member`` is a snapshot."""

    def local_state(self) -> dict[str, Any]:
        """This node's user state, sent whole in every push-pull (anti-entropy)."""

    def merge_remote_state(self, state: dict[str, Any]) -> None:
        """A peer's :meth:`local_state`, from a push-pull.  Untrusted input:
        ignore what cannot be used."""

    def get_broadcasts(self) -> list[dict[str, Any]]:
        """New user payloads to piggyback on gossip; each is returned once
        and then retransmitted by membership like its own updates.  Polled
        at every ``receive`` and ``tick`` (so at least every probe interval)."""

    def notify_user(self, payload: dict[str, Any]) -> None:
        """A user payload some member broadcast (may arrive more than once,
        and should be re-broadcast by the delegate when it is news, so that it
        spreads epidemically)."""


class NullDelegate:
    """A :class:`Delegate` that ignores everything; subclass it."""

    def notify_change(self, member: Member, old_state: MemberState | None) -> None:
        """Ignored."""

    def local_state(self) -> dict[str, Any]:
        """Nothing."""
        return {}

    def merge_remote_state(self, state: dict[str, Any]) -> None:
        """Ignored."""

    def get_broadcasts(self) -> list[dict[str, Any]]:
        """Nothing."""
        return []

    def notify_user(self, payload: dict[str, Any]) -> None:
        """Ignored."""
