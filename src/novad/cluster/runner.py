"""Runs one :class:`~novad.cluster.membership.Membership` on the event loop.

:class:`GossipRunner` is the only place where membership meets time and
I/O: it feeds the core the loop's monotonic clock, calls ``tick`` when the
next timer is due (or sooner, when an inbound message moved it), and sends
what the core returns, each message in a task of its own so that a slow
peer never holds up the protocol.  The daemon registers :meth:`run` with its
supervisor (``supervisor.run_forever("gossip", runner.run)``); tests may use
:meth:`start` and :meth:`stop` instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable, Sequence
from typing import Any

import structlog

from novad.cluster.members import Member
from novad.cluster.membership import Membership, Out
from novad.cluster.transport import Transport

__all__ = ["GossipRunner", "JoinFailed", "JoinRefused"]

log = structlog.get_logger("novad.cluster.runner")

_MAX_SLEEP = 5.0
"""Wake at least this often, whatever the core says (robustness only)."""


class JoinRefused(Exception):
    """A seed refused the join: this node's name is taken by a live member
    at another address."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class JoinFailed(Exception):
    """No seed answered the join in time."""


class GossipRunner:
    """Drives a membership with a transport and the event loop's clock."""

    def __init__(self, membership: Membership, transport: Transport,
                 max_in_flight: int = 512) -> None:
        self.membership = membership
        self.transport = transport
        self.max_in_flight = max_in_flight
        self._sends: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._running = False
        self._sleep_until = math.inf
        transport.set_handler(self.deliver)

    # -- the inbound path -------------------------------------------------------------

    def deliver(self, message: dict[str, Any]) -> None:
        """Hand one inbound message to membership and send its answers.
        Synchronous; raises BadMessage (nothing changed) when malformed."""
        self._send_all(self.membership.receive(message, self._now()))
        self._poke()

    # -- running ----------------------------------------------------------------------

    async def run(self) -> None:
        """Tick the protocol until cancelled (a supervisor job)."""
        if self._running:
            raise RuntimeError("the gossip runner is already running")
        self._running = True
        loop = asyncio.get_running_loop()
        try:
            while True:
                self._wake.clear()
                try:
                    self._send_all(self.membership.tick(loop.time()))
                except Exception:  # a delegate's bug must not end membership
                    log.exception("membership tick failed")
                    await asyncio.sleep(self.membership.config.probe_interval)
                self._pulse()
                self._sleep_until = self.membership.next_deadline()
                delay = min(self._sleep_until - loop.time(), _MAX_SLEEP)
                if delay > 0:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(delay):
                            await self._wake.wait()
        finally:
            self._running = False
            self._sleep_until = math.inf

    async def start(self) -> None:
        """Run :meth:`run` in a task this runner owns (stopped by :meth:`stop`)."""
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="gossip")
            await asyncio.sleep(0)

    async def stop(self) -> None:
        """Stop ticking, drop the sends in flight and close the transport.
        Idempotent.  Others will find this node dead unless it left first."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        sends = list(self._sends)
        for send in sends:
            send.cancel()
        await asyncio.gather(*sends, return_exceptions=True)
        await self.transport.close()

    async def join(self, seeds: Sequence[str], timeout: float = 10.0) -> int:
        """Join the cluster through ``seeds`` (push-pull, resent until one
        answers).  Returns how many members are alive, this one included.
        Raises :class:`JoinRefused` (name taken) or :class:`JoinFailed`
        (no seed answered within ``timeout`` seconds)."""
        m = self.membership
        before = m.push_pull_replies
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        resend = max(0.2, min(1.0, timeout / 5))
        while True:
            out = m.join(seeds, loop.time())
            if not out:
                raise JoinFailed("no seed to join but this node's own address")
            self._send_all(out)
            answered = await self._wait_for(
                lambda: m.join_refused is not None or m.push_pull_replies > before,
                min(resend, deadline - loop.time()))
            if m.join_refused is not None:
                log.warning("join refused", reason=m.join_refused)
                raise JoinRefused(m.join_refused)
            if answered:
                log.info("joined the cluster", members=m.num_alive())
                return m.num_alive()
            if loop.time() >= deadline:
                raise JoinFailed(f"no seed answered within {timeout:g} s: {', '.join(seeds)}")

    async def leave(self, timeout: float = 5.0) -> None:
        """Leave gracefully: others will record this node LEFT, not DEAD.
        Returns once the leave went out as often as any update does (or
        after ``timeout`` seconds); the node then only answers pings.
        Ticks by itself when :meth:`run` is not running."""
        m = self.membership
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        self._send_all(m.leave(loop.time()))
        while not m.leave_finished and loop.time() < deadline:
            if not self._running:
                self._send_all(m.tick(loop.time()))
            wait = min(m.next_deadline(), deadline) - loop.time()
            await self._wait_for(lambda: m.leave_finished, max(0.0, wait))
        pending = list(self._sends)
        if pending:
            await asyncio.wait(pending, timeout=max(0.0, deadline - loop.time()))
        log.info("left the cluster", finished=m.leave_finished)

    # -- what the daemon asks ---------------------------------------------------------

    def members(self) -> list[Member]:
        """Every member known, this node included (snapshots)."""
        return self.membership.members()

    def update_meta(self, meta: dict[str, Any]) -> None:
        """Publish this node's new meta (gossiped at the next round)."""
        self.membership.update_meta(meta, self._now())
        self._poke()

    def now(self) -> float:
        """The clock membership's times are on (the loop's monotonic clock)."""
        return self._now()

    # -- helpers ----------------------------------------------------------------------

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def _send_all(self, out: list[Out]) -> None:
        for address, message in out:
            if len(self._sends) >= self.max_in_flight:
                log.debug("gossip message dropped: too many sends in flight", peer=address)
                continue
            task = asyncio.get_running_loop().create_task(self._send(address, message))
            self._sends.add(task)
            task.add_done_callback(self._sends.discard)

    async def _send(self, address: str, message: dict[str, Any]) -> None:
        try:
            await self.transport.send(address, message)
        except Exception as exc:  # a transport must not raise; if it does, it is a drop
            log.debug("gossip send failed", peer=address, why=repr(exc))

    def _poke(self) -> None:
        """Something changed: wake the loop if its next timer moved earlier."""
        self._pulse()
        if self.membership.next_deadline() < self._sleep_until:
            self._wake.set()

    def _pulse(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def _wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``predicate()`` holds (checked at each change) or
        ``timeout`` passes; return whether it holds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await self._changed.wait()
        return True
