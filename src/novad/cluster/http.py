"""The node-to-node channel over aiohttp, on the API port under ``/cluster/v1/``.

:class:`ClusterClient` sends signed requests (see :mod:`novad.cluster.auth`)
and checks that each answer is signed for its request.  :class:`HttpTransport`
is membership's :class:`~novad.cluster.transport.Transport` on top of it:
one-way datagrams, each a ``POST /cluster/v1/gossip`` whose 204 carries
nothing; a lost or refused one is dropped, as a UDP packet would be.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import aiohttp
import structlog

from novad.cluster.auth import NONCE, AuthFailed, MessageAuth

log = structlog.get_logger("novad.cluster.http")

PREFIX = "/cluster/v1"
GOSSIP_PATH = f"{PREFIX}/gossip"


class PeerError(Exception):
    """A node-to-node request got no valid answer (unreachable, refused,
    not signed, or not JSON); ``status`` is the HTTP status when there was one."""

    def __init__(self, address: str, why: str, status: int | None = None) -> None:
        super().__init__(f"{address}: {why}")
        self.address = address
        self.status = status


def encode(message: Any) -> bytes:
    """Compact JSON, as every node-to-node body is sent."""
    return json.dumps(message, separators=(",", ":")).encode()


class ClusterClient:
    """Signed requests to other members.  Open with :meth:`start`."""

    def __init__(self, auth: MessageAuth, timeout: float = 5.0) -> None:
        self.auth = auth
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        """Open the connection pool (keep-alive to every peer)."""
        connector = aiohttp.TCPConnector(limit=0, limit_per_host=8, ttl_dns_cache=300)
        self._session = aiohttp.ClientSession(connector=connector, auto_decompress=False,
                                              skip_auto_headers=("User-Agent",))

    async def close(self) -> None:
        """Close the pool.  Idempotent."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        """The open session; RuntimeError before :meth:`start`."""
        if self._session is None:
            raise RuntimeError("cluster client is not started")
        return self._session

    async def post(self, address: str, path: str, message: Any,
                   timeout: float | None = None) -> Any:
        """POST ``message`` to ``address`` and return the JSON answer;
        PeerError when there is none we can trust."""
        body = encode(message)
        headers = self.auth.sign("POST", path, body)
        headers["Content-Type"] = "application/json"
        wait = aiohttp.ClientTimeout(total=timeout or self.timeout)
        try:
            async with self.session.post(f"http://{address}{path}", data=body, headers=headers,
                                         timeout=wait) as resp:
                raw = await resp.read()
                status = resp.status
                answer_headers = {k: v for k, v in resp.headers.items()}
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise PeerError(address, f"unreachable: {type(exc).__name__} {exc}") from None
        if status == 204:
            return None
        try:
            self.auth.verify_response(headers[NONCE], status, answer_headers, raw)
        except AuthFailed:
            raise PeerError(address, f"answer {status} is not signed with the cluster key",
                            status) from None
        if status >= 400:
            raise PeerError(address, f"refused with {status}: {raw[:200]!r}", status)
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            raise PeerError(address, "answer is not JSON", status) from None


class HttpTransport:
    """Membership's transport over :class:`ClusterClient` (best effort)."""

    def __init__(self, client: ClusterClient, address: str, timeout: float = 2.0) -> None:
        self.client = client
        self.address = address
        self.timeout = timeout
        self._handler: Callable[[dict[str, Any]], None] | None = None

    def set_handler(self, handler: Callable[[dict[str, Any]], None]) -> None:
        """Who gets inbound messages (the HTTP route calls :meth:`deliver`)."""
        self._handler = handler

    def deliver(self, message: dict[str, Any]) -> None:
        """Hand an inbound, authenticated message to membership; raises what
        the handler raises (BadMessage for a malformed one)."""
        if self._handler is not None:
            self._handler(message)

    async def send(self, address: str, message: dict[str, Any]) -> None:
        """Send one datagram; failures are dropped (membership copes with loss)."""
        try:
            await self.client.post(address, GOSSIP_PATH, message, self.timeout)
        except PeerError as exc:
            log.debug("gossip message dropped", peer=address, why=str(exc))

    async def close(self) -> None:
        """Nothing to close: the client belongs to the cluster service."""
