"""Any node serves any request: requests about an instance another node owns
are forwarded to that node, and a new server is placed where the scheduler
says, then created by that node.

The forwarded request is the client's own (method, path, query, token,
body), plus a signature of this node (:mod:`novad.cluster.auth`) that marks
it as forwarded, so the owner serves it itself and never forwards it again.
The owner's status, body and headers come back unchanged, except for the
hop-by-hop headers and the request id, which stays the one this node gave
the client.  While the owner is not alive, showing one of its instances
answers from the replicated record, and any other request about it is 409
with a message that names the node.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable

import aiohttp
import structlog
from aiohttp import web
from aiohttp.typedefs import Middleware

from novad.api.common import PLACED, RAW_BODY, REPLICA, Placed
from novad.cluster.auth import AuthFailed
from novad.cluster.service import ClusterService
from novad.compute.placement import Decision
from novad.errors import ClaimFailed, Conflict, NotAuthenticated, NoValidHost

log = structlog.get_logger("novad.api.forward")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Placer = Callable[[web.Request, bytes], Awaitable[Decision]]
"""Candidate hosts for a create request, best first (NoValidHost if none)."""

FORWARDED = "X-Novad-Forwarded"
CLAIM = "X-Novad-Claim"
_CLAIM_FAILED = b"Claim failed on "
_PREFIX = r"^/(?:compute/)?v2\.1/(?:[0-9a-fA-F-]+/)?"  # with 2.18's optional project id
_SERVER = re.compile(_PREFIX + r"servers/([0-9a-fA-F-]{36})(?:/.*)?$")
_SHOW = re.compile(_PREFIX + r"servers/[0-9a-fA-F-]{36}/?$")
_CREATE = re.compile(_PREFIX + r"servers/?$")
_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length",
                  "content-encoding", "host", "x-openstack-request-id", "x-compute-request-id",
                  "date", "server"})


class OwnerUnreachable(Conflict):
    """409: the instance's node is not alive; the message names it."""


def middleware(cluster: ClusterService, owner_of: Callable[[str], Awaitable[str | None]],
               place: Placer, attempts: int = 3) -> Middleware:
    """The forwarding middleware; ``owner_of(uuid)`` names the node that
    owns an instance (None: no node is known to)."""

    @web.middleware
    async def forward(request: web.Request, handler: Handler) -> web.StreamResponse:
        if cluster.alone():
            return await handler(request)
        if FORWARDED in request.headers:
            await _check_forwarded(cluster, request)
            if request.headers.get(CLAIM) == "1":
                request[PLACED] = Placed(claim=True)
            return await handler(request)
        match = _SERVER.match(request.path)
        if match is not None:
            uuid = match.group(1).lower()
            host = await owner_of(uuid)
            if host is None:  # perhaps created a moment ago elsewhere: ask the others
                await cluster.pull_from_all()
                host = await owner_of(uuid)
            if host is None or host == cluster.name:
                return await handler(request)
            try:
                answer = await _to_owner(cluster, request, host, await _body(request))
                if answer.status != 404:
                    return answer
                # The instance may have just moved on from that node: look again.
                await cluster.pull_from_all()
                moved = await owner_of(uuid)
                if moved is None or moved == host:
                    return answer
                if moved == cluster.name:
                    return await handler(request)
                return await _to_owner(cluster, request, moved, request[RAW_BODY])
            except OwnerUnreachable:
                if _evacuation(request):
                    return await handler(request)  # a dead node's instance: rebuilt elsewhere
                if request.method != "GET" or not _SHOW.match(request.path):
                    raise
                request[REPLICA] = True  # a read: the record as last replicated
                return await handler(request)
        if request.method == "POST" and _CREATE.match(request.path):
            return await _create(cluster, request, handler, place, attempts)
        return await handler(request)

    return forward


def _evacuation(request: web.Request) -> bool:
    """Whether this is an evacuate action (served where it arrives when the
    owner is unreachable: the owner is the node being evacuated)."""
    if request.method != "POST" or not request.path.rstrip("/").endswith("/action"):
        return False
    try:
        body = json.loads(request[RAW_BODY])
    except (ValueError, KeyError):
        return False
    return isinstance(body, dict) and "evacuate" in body


async def _body(request: web.Request) -> bytes:
    """The body, read once and kept for the handler (``RAW_BODY``)."""
    body = await request.read()
    request[RAW_BODY] = body
    return body


async def _check_forwarded(cluster: ClusterService, request: web.Request) -> None:
    body = await _body(request)
    headers = {k[len(FORWARDED) + 1:]: v for k, v in request.headers.items()
               if k.startswith(FORWARDED + "-")}
    try:
        cluster.auth.verify(request.method, request.path_qs, headers, body,
                            request.remote or "?")
    except AuthFailed as exc:
        raise NotAuthenticated(f"Forwarded request refused: {exc.reason}") from None


async def _create(cluster: ClusterService, request: web.Request, handler: Handler,
                  place: Placer, attempts: int) -> web.StreamResponse:
    """Claim on the best candidate, then the next, up to ``attempts``;
    NoValidHost (the servers go to ERROR here) when none has room."""
    body = await _body(request)
    try:
        decision = await place(request, body)
    except NoValidHost as exc:
        request[PLACED] = Placed(no_valid_host=exc.detail or exc.message)
        return await handler(request)
    failed: list[str] = []
    for host in decision.hosts[:attempts]:
        decision.trying(host)
        if host == cluster.name:
            request[PLACED] = Placed(claim=True)
            try:
                return await handler(request)
            except ClaimFailed as exc:
                decision.failed(host)
                failed.append(exc.message)
                continue
        try:
            answer = await _to_owner(cluster, request, host, body, claim=True)
        except OwnerUnreachable as exc:
            decision.failed(host)
            failed.append(exc.message)
            continue
        refused = _claim_failure(answer)
        if refused is not None:
            decision.failed(host)
            failed.append(refused)
            continue
        if answer.status >= 400:
            decision.failed(host)
        return answer
    log.info("no candidate could claim", tried=failed)
    request[PLACED] = Placed(no_valid_host="; ".join(failed) or "no candidate host")
    return await handler(request)


def _claim_failure(answer: web.Response) -> str | None:
    """The claim failure an owner answered with, if it was one."""
    if answer.status != 409 or not isinstance(answer.body, bytes) \
            or _CLAIM_FAILED not in answer.body:
        return None
    try:
        message = json.loads(answer.body)["conflictingRequest"]["message"]
    except (ValueError, KeyError, TypeError):
        return "Claim failed"
    return str(message)


async def _to_owner(cluster: ClusterService, request: web.Request, host: str,
                    body: bytes, claim: bool = False) -> web.Response:
    member = cluster.member(host)
    if member is None or str(member.state) != "alive":
        state = "unknown" if member is None else str(member.state)
        raise OwnerUnreachable(f"Node {host} that owns this instance is {state}; "
                               "try again when it is back")
    signature = cluster.auth.sign(request.method, request.path_qs, body)
    headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
    headers.update({f"{FORWARDED}-{k}": v for k, v in signature.items()})
    headers[FORWARDED] = cluster.name
    if claim:
        headers[CLAIM] = "1"
    timeout = aiohttp.ClientTimeout(total=120)
    try:
        async with cluster.client.session.request(
                request.method, f"http://{member.address}{request.path_qs}", data=body,
                headers=headers, timeout=timeout) as resp:
            raw = await resp.read()
            answer = web.Response(body=raw, status=resp.status)
            for key, value in resp.headers.items():
                if key.lower() not in _HOP:
                    answer.headers.add(key, value)
            return answer
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
        raise OwnerUnreachable(f"Node {host} that owns this instance did not answer: "
                               f"{type(exc).__name__}") from None
