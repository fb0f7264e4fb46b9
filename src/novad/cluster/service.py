"""This node's membership of the cluster: joining, gossip, record sync.

:class:`ClusterService` owns the signed client, the membership runner and
the replicator.  The daemon calls, in order: :meth:`start` (before the
store is used: triggers installed), :meth:`catch_up` (a joiner waits here
for the cluster's records, so it creates no admin or flavors of its own),
:meth:`join` (once the API serves, since peers answer on it), then
:meth:`schedule`; :meth:`stop` leaves gracefully.

Records travel two ways: every ``push_interval`` this node sends its own
new records to every live member at once (so a flavor made here is usable
elsewhere within a fraction of a second), and every ``sync_interval`` it
pulls what it lacks from one random live member (anti-entropy: a push that
was lost, or a node that was down, is caught up within seconds).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any

import aiohttp
import structlog

from novad.cluster.auth import MessageAuth
from novad.cluster.http import PREFIX, ClusterClient, HttpTransport, PeerError, encode
from novad.cluster.membership import BadMessage, GossipConfig, Member, Membership, MemberState
from novad.cluster.replication import Record, Replicator, parse_records
from novad.cluster.runner import GossipRunner, JoinFailed, JoinRefused
from novad.config import Config
from novad.store.db import Database

log = structlog.get_logger("novad.cluster")

SYNC_PATH = f"{PREFIX}/sync"
RECORDS_PATH = f"{PREFIX}/records"
IMAGE_DATA_PATH = f"{PREFIX}/image-data"
PAGE = 2000
"""Records per sync answer (a page is well under the message size limit)."""

__all__ = ["BadMessage", "ClusterService", "JoinFailed", "JoinRefused"]


class ClusterService:
    """One node's part in the cluster (see the module docstring)."""

    def __init__(self, config: Config, db: Database, origin: str, key: bytes,
                 *, sync_interval: float = 1.0, push_interval: float = 0.1) -> None:
        section = config.cluster
        host, port = config.listen_addr
        self.config = config
        self.name = config.host
        self.address = section.advertise_address or f"{host}:{port}"
        self.seeds = tuple(s for s in section.seeds if s != self.address)
        self.auth = MessageAuth(key, self.name, section.max_clock_skew)
        self.client = ClusterClient(self.auth)
        self.replicator = Replicator(db, origin, self.name)
        self.gossip = GossipConfig.from_section(section)
        self.sync_interval = sync_interval
        self.push_interval = push_interval
        self.runner: GossipRunner | None = None
        self._pushed = 0
        self._stopping = False
        self._rng = random.Random()
        self.meta: dict[str, Any] = {"az": config.DEFAULT.default_availability_zone}

    @property
    def clustered(self) -> bool:
        """Whether this node was given other members to join."""
        return bool(self.seeds)

    async def start(self) -> None:
        """Open the client and install the record capture."""
        await self.client.start()
        await self.replicator.install()
        self._pushed = (await self.replicator.have()).get(self.replicator.origin, 0)

    async def catch_up(self, wait: bool) -> bool:
        """Pull every record from a seed.  With ``wait`` (a node that has
        never synced), retry until a seed answers; else try each seed once.
        Returns whether a seed answered."""
        delay = 0.2
        while True:
            for seed in self.seeds:
                try:
                    await self._pull(seed)
                    return True
                except PeerError as exc:
                    log.warning("seed did not answer", seed=seed, why=str(exc))
            if not wait:
                return False
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def join(self, timeout: float = 10.0) -> None:
        """Start membership and, with seeds, join through them.  Raises
        JoinRefused (name taken) or JoinFailed (no seed answered)."""
        membership = Membership(self.name, self.address, dict(self.meta), self.gossip,
                                random.Random(), time.monotonic())
        transport = HttpTransport(self.client, self.address, timeout=max(1.0, self.gossip.probe_timeout * 4))
        self.runner = GossipRunner(membership, transport)
        if self.seeds:
            await self.runner.join(list(self.seeds), timeout)

    def schedule(self, every: Callable[[str, float, Callable[[], Awaitable[object]]], None],
                 forever: Callable[[str, Callable[[], Awaitable[object]]], None]) -> None:
        """Register the background jobs with the daemon's supervisor."""
        if self.runner is not None:
            forever("gossip", self.runner.run)
        every("records-push", self.push_interval, self.push)
        every("records-sync", self.sync_interval, self.anti_entropy)

    async def stop(self) -> None:
        """Leave the cluster (others see LEFT, not DEAD) and close the client."""
        self._stopping = True
        if self.runner is not None:
            try:
                await self.runner.leave(timeout=1.0)
            except Exception:
                log.exception("graceful leave failed")
            await self.runner.stop()
        await self.client.close()

    # -- what the rest of the daemon asks ------------------------------------------------

    def members(self) -> list[Member]:
        """Every member this node knows, itself included."""
        if self.runner is None:
            return []
        return self.runner.members()

    def alive_peers(self) -> list[Member]:
        """Other members currently alive."""
        return [m for m in self.members()
                if m.name != self.name and m.state is MemberState.ALIVE]

    def member(self, name: str) -> Member | None:
        """The member called ``name``, if known."""
        return None if self.runner is None else self.runner.membership.member(name)

    def alone(self) -> bool:
        """Whether no other member is known (a single node: nothing to forward)."""
        return self.runner is None or self.runner.membership.size() <= 1

    def update_meta(self, meta: Mapping[str, Any]) -> None:
        """Gossip new facts about this node (resources, service state)."""
        if dict(meta) == self.meta:
            return
        self.meta = dict(meta)
        if self.runner is not None:
            self.runner.update_meta(dict(meta))

    # -- records -------------------------------------------------------------------------

    async def _pull(self, address: str) -> int:
        applied = 0
        while True:
            answer = await self.client.post(address, SYNC_PATH,
                                            {"have": await self.replicator.have(), "limit": PAGE})
            records, reached, complete = _parse_sync_answer(address, answer)
            applied += await self.replicator.apply(records, reached)
            if complete:
                return applied

    async def anti_entropy(self) -> None:
        """Pull what this node lacks from one random live member."""
        peers = self.alive_peers()
        if not peers or self._stopping:
            return
        peer = self._rng.choice(peers)
        try:
            await self._pull(peer.address)
        except PeerError as exc:
            log.debug("anti-entropy pull failed", peer=peer.name, why=str(exc))

    async def pull_from_all(self, timeout: float = 2.0) -> None:
        """Pull from every live member at once (an instance id nobody here
        knows may have been created elsewhere a moment ago)."""
        async def one(peer: Member) -> None:
            try:
                async with asyncio.timeout(timeout):
                    await self._pull(peer.address)
            except (PeerError, TimeoutError) as exc:
                log.debug("pull failed", peer=peer.name, why=str(exc))
        await asyncio.gather(*(one(p) for p in self.alive_peers()))

    async def push(self) -> None:
        """Send this node's records written since the last push to every
        live member (best effort: anti-entropy repairs a loss)."""
        origin = self.replicator.origin
        top = (await self.replicator.have()).get(origin, 0)
        if top <= self._pushed or self._stopping:
            return
        start = self._pushed
        records, reached, _ = await self.replicator.changes_since({origin: start}, PAGE, origin)
        end = reached.get(origin, start)
        body = {"records": [r.to_json() for r in records], "origin": origin, "from": start,
                "to": end}
        peers = self.alive_peers()
        await asyncio.gather(*(self._push_one(p, body) for p in peers))
        self._pushed = end

    async def _push_one(self, peer: Member, body: dict[str, Any]) -> None:
        try:
            await self.client.post(peer.address, RECORDS_PATH, body, timeout=2.0)
        except PeerError as exc:
            log.debug("record push failed", peer=peer.name, why=str(exc))

    async def answer_sync(self, body: Any) -> dict[str, Any]:
        """A peer's pull: the records its ``have`` lacks (ValueError if malformed)."""
        if not isinstance(body, dict) or set(body) - {"have", "limit"}:
            raise ValueError("sync: expected {have, limit}")
        have = _parse_have(body.get("have"))
        limit = body.get("limit", PAGE)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= PAGE:
            raise ValueError(f"sync: limit must be 1..{PAGE}")
        records, reached, complete = await self.replicator.changes_since(have, limit)
        return {"records": [r.to_json() for r in records], "have": reached, "complete": complete}

    async def accept_push(self, body: Any) -> None:
        """A peer's pushed records (ValueError if malformed)."""
        if not isinstance(body, dict) or set(body) != {"records", "origin", "from", "to"}:
            raise ValueError("records: expected {records, origin, from, to}")
        records_raw = body["records"]
        origin, start, end = body["origin"], body["from"], body["to"]
        if not isinstance(records_raw, list) or not isinstance(origin, str):
            raise ValueError("records: bad records or origin")
        if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in (start, end)):
            raise ValueError("records: bad range")
        records = parse_records(records_raw)
        if any(r.origin != origin for r in records):
            raise ValueError("records: a push carries its sender's own records only")
        have = (await self.replicator.have()).get(origin, 0)
        await self.replicator.apply(records, {origin: end} if have >= start else None)

    def image_data(self, image_id: str) -> Iterator[tuple[str, AsyncIterator[bytes]]]:
        """For each live peer, a stream of ``image_id``'s data from it (the
        caller checks it against the image record's checksums)."""
        for peer in self.alive_peers():
            yield peer.name, self._stream_image(peer.address, image_id)

    async def _stream_image(self, address: str, image_id: str) -> AsyncIterator[bytes]:
        body = encode({"id": image_id})
        headers = self.auth.sign("POST", IMAGE_DATA_PATH, body)
        wait = aiohttp.ClientTimeout(total=None, sock_connect=5, sock_read=60)
        async with self.client.session.post(f"http://{address}{IMAGE_DATA_PATH}", data=body,
                                            headers=headers, timeout=wait) as resp:
            if resp.status != 200:
                raise PeerError(address, f"image data: {resp.status}", resp.status)
            async for chunk in resp.content.iter_chunked(1 << 20):
                yield chunk

    def receive_gossip(self, message: Any) -> None:
        """An authenticated membership datagram; BadMessage when malformed."""
        if self.runner is None:
            raise BadMessage("membership is not running")
        if not isinstance(message, dict):
            raise BadMessage("gossip: expected an object")
        self.runner.deliver(message)


def _parse_have(value: Any) -> dict[str, int]:
    if not isinstance(value, dict) or len(value) > 10_000:
        raise ValueError("have: expected an object of origin -> seq")
    for origin, seq in value.items():
        if len(origin) > 64 or isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
            raise ValueError("have: bad entry")
    return dict(value)


def _parse_sync_answer(address: str, answer: Any) -> tuple[list[Record], dict[str, int], bool]:
    try:
        if not isinstance(answer, dict) or set(answer) != {"records", "have", "complete"}:
            raise ValueError("expected {records, have, complete}")
        records = parse_records(answer["records"])
        return records, _parse_have(answer["have"]), bool(answer["complete"])
    except ValueError as exc:
        raise PeerError(address, f"bad sync answer: {exc}") from None


def member_view(member: Member, now: float) -> dict[str, Any]:
    """One member as ``novad cluster members --json`` prints it."""
    return {"name": member.name, "address": member.address, "state": str(member.state),
            "incarnation": member.incarnation, "az": member.meta.get("az", ""),
            "resources": member.meta.get("resources", {}),
            "last_seen_age": round(max(0.0, now - member.last_seen), 1)}


def members_table(members: Sequence[dict[str, Any]]) -> str:
    """The members as an aligned text table."""
    head = ("NAME", "ADDRESS", "STATE", "INC", "AZ", "VCPUS", "RAM_MB", "DISK_GB", "SEEN")
    rows = [head]
    for m in members:
        r = m["resources"]
        rows.append((m["name"], m["address"], m["state"], str(m["incarnation"]), m["az"],
                     f"{r.get('vcpus_used', '-')}/{r.get('vcpus', '-')}",
                     f"{r.get('memory_mb_used', '-')}/{r.get('memory_mb', '-')}",
                     f"{r.get('local_gb_used', '-')}/{r.get('local_gb', '-')}",
                     f"{m['last_seen_age']}s"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows)
