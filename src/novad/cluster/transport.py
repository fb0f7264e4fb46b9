"""How membership messages travel (memberlist's ``Transport``), and an
in-memory network so that a whole cluster runs in one test process
(memberlist's ``MockNetwork``).

Semantics are those of a datagram: :meth:`Transport.send` is best effort,
one way, and never raises for a network failure; membership copes with loss.
Messages are plain JSON objects (str, int, float, bool, None, list, dict):
the HTTP transport encodes them as JSON, and :class:`MemoryTransport` does
too, so a message that is not plain JSON fails in tests as it would in
production.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import structlog

from novad.cluster.messages import BadMessage

__all__ = ["MemoryNetwork", "MemoryTransport", "Transport"]

log = structlog.get_logger("novad.cluster.transport")

Handler = Callable[[dict[str, Any]], None]


class Transport(Protocol):
    """A best-effort datagram channel between members."""

    address: str
    """Where other members reach this one."""

    def set_handler(self, handler: Handler) -> None:
        """Who gets inbound messages.  The handler runs synchronously on the
        event loop and may raise :class:`BadMessage` (the transport answers
        the peer's request with a 400, or drops the datagram)."""

    async def send(self, address: str, message: dict[str, Any]) -> None:
        """Send one message.  Never raises for network failures (it drops
        and logs at debug); may block as long as the peer is slow, so callers
        do not await it in their main loop."""

    async def close(self) -> None:
        """Stop sending and receiving.  Idempotent."""


class MemoryNetwork:
    """A hub of :class:`MemoryTransport` endpoints on one event loop.

    ``loss`` is the probability that a message is lost; ``delay`` draws the
    one-way delay in seconds.  :meth:`partition` splits the network into
    groups that can only talk among themselves.
    """

    def __init__(self, *, loss: float = 0.0,
                 delay: Callable[[random.Random], float] | None = None,
                 seed: int | None = None) -> None:
        self.loss = loss
        self.delay = delay or (lambda rng: 0.0)
        self.rng = random.Random(seed)
        self.sent: Counter[str] = Counter()
        """Messages sent, by source address."""
        self.received: Counter[str] = Counter()
        """Messages handed to a handler, by destination address."""
        self.dropped = 0
        self._endpoints: dict[str, MemoryTransport] = {}
        self._groups: dict[str, int] | None = None

    def transport(self, address: str) -> MemoryTransport:
        """A new endpoint at ``address`` (replacing a closed one there)."""
        old = self._endpoints.get(address)
        if old is not None and not old.closed:
            raise ValueError(f"address {address} is in use")
        endpoint = MemoryTransport(self, address)
        self._endpoints[address] = endpoint
        return endpoint

    def partition(self, *groups: Iterable[str]) -> None:
        """Only addresses of the same group can talk; unlisted ones talk to
        nobody."""
        self._groups = {address: i for i, group in enumerate(groups) for address in group}

    def heal(self) -> None:
        """Everyone can talk again."""
        self._groups = None

    def can_talk(self, source: str, destination: str) -> bool:
        """Whether a message from ``source`` may reach ``destination`` now."""
        if self._groups is None:
            return True
        group = self._groups.get(source)
        return group is not None and group == self._groups.get(destination)

    def route(self, source: str, destination: str, raw: str) -> None:
        """Carry one encoded message (called by :meth:`MemoryTransport.send`)."""
        self.sent[source] += 1
        if self.rng.random() < self.loss or not self.can_talk(source, destination):
            self.dropped += 1
            return
        delay = self.delay(self.rng)
        asyncio.get_running_loop().call_later(delay, self._arrive, destination, raw)

    def _arrive(self, destination: str, raw: str) -> None:
        endpoint = self._endpoints.get(destination)
        if endpoint is None or endpoint.closed or endpoint.handler is None:
            self.dropped += 1
            return
        self.received[destination] += 1
        try:
            endpoint.handler(json.loads(raw))
        except BadMessage as exc:
            log.debug("gossip message refused", address=destination, why=str(exc))


class MemoryTransport:
    """One endpoint of a :class:`MemoryNetwork`; implements :class:`Transport`."""

    def __init__(self, network: MemoryNetwork, address: str) -> None:
        self.network = network
        self.address = address
        self.handler: Handler | None = None
        self.closed = False

    def set_handler(self, handler: Handler) -> None:
        """Who gets inbound messages."""
        self.handler = handler

    async def send(self, address: str, message: dict[str, Any]) -> None:
        """Encode as JSON (raises TypeError for a message that is not plain
        JSON: a bug, not a network failure) and hand to the network."""
        raw = json.dumps(message)
        if self.closed:
            log.debug("gossip message dropped: transport closed", peer=address)
            return
        self.network.route(self.address, address, raw)

    async def close(self) -> None:
        """Stop sending and receiving."""
        self.closed = True
