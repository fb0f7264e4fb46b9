"""Node-to-node routes under ``/cluster/v1/`` on the API port.

They take no API token: each request must be signed with the cluster key
(:mod:`novad.cluster.auth`), and each answer is signed for its request.  A
request is read only up to ``[cluster] max_message_size`` (413 past it);
an unsigned, forged, stale or replayed one is 401; a body that is not JSON
or not the message it claims to be is 400.  Nothing changes for any of
them, and none is ever a 5xx.

* ``POST /cluster/v1/gossip``: a membership datagram (204).
* ``POST /cluster/v1/sync``: a peer's ``have`` vector; answers the records it lacks.
* ``POST /cluster/v1/records``: records a peer pushes as it writes them (204).
* ``POST /cluster/v1/members``: the member list (for ``novad cluster members``).
* ``POST /cluster/v1/image-data``: an image's data, streamed (checked by the receiver
  against the image record's checksums).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from novad.api.common import Route, read_limited
from novad.cluster.auth import NONCE, AuthFailed
from novad.cluster.http import PREFIX, encode
from novad.cluster.membership import BadMessage
from novad.cluster.service import ClusterService, member_view
from novad.compute.moves import FILE_PATH, MOVE_HEADER, Mover
from novad.errors import ImageNotFound, Invalid, NotAuthenticated
from novad.images.service import ImageService

Answer = Callable[[ClusterService, Any], Awaitable[Any]]


def routes(cluster: ClusterService, images: ImageService,
           mover: Mover | None = None) -> list[Route]:
    """The node-to-node routes, bound to this node's cluster service (and
    its mover, for the moves between nodes)."""
    limit = cluster.config.cluster.max_message_size

    async def image_data(request: web.Request) -> web.StreamResponse:
        """An image's data, streamed to a node that has only its record."""
        body = await read_limited(request, 4096)
        try:
            cluster.auth.verify(request.method, request.path, request.headers, body,
                                request.remote or "?")
        except AuthFailed as exc:
            raise NotAuthenticated(f"Node-to-node message refused: {exc.reason}") from None
        try:
            message = json.loads(body)
            image_id = message["id"]
            if not isinstance(image_id, str) or set(message) != {"id"}:
                raise ValueError
        except (ValueError, KeyError, TypeError):
            raise Invalid("Malformed node-to-node message: expected {id}") from None
        path = images.files.path(image_id) if "/" not in image_id else None
        if path is None or not path.is_file():
            raise ImageNotFound(image_id)
        return web.FileResponse(path, headers={"Content-Type": "application/octet-stream"})

    def endpoint(answer: Answer) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            body = await read_limited(request, limit)
            peer = request.remote or "?"
            try:
                cluster.auth.verify(request.method, request.path, request.headers, body, peer)
            except AuthFailed as exc:
                raise NotAuthenticated(f"Node-to-node message refused: {exc.reason}") from None
            try:
                message = json.loads(body) if body else None
                result = await answer(cluster, message)
            except (ValueError, BadMessage) as exc:
                raise Invalid(f"Malformed node-to-node message: {str(exc)[:200]}") from None
            if result is None:
                return web.Response(status=204)
            raw = encode(result)
            headers = cluster.auth.sign_response(request.headers[NONCE], 200, raw)
            return web.Response(body=raw, status=200, headers=headers,
                                content_type="application/json")
        handle.__doc__ = answer.__doc__
        return handle

    def route(path: str, answer: Answer) -> Route:
        return Route("POST", f"{PREFIX}/{path}", endpoint(answer), public=True, streaming=True,
                     tag="cluster", summary=(answer.__doc__ or "").strip().splitlines()[0],
                     responses={200: "Answer", 204: "Accepted", 400: "Malformed",
                                401: "Not signed with the cluster key", 413: "Too large"})

    async def move_file(request: web.Request) -> web.StreamResponse:
        """One file of a move, streamed; the signature covers its descriptor
        (in a header), the answer carries the BLAKE3 digest the sender checks."""
        assert mover is not None
        try:
            descriptor_raw = base64.b64decode(request.headers.get(MOVE_HEADER, ""), validate=True)
        except ValueError:
            raise Invalid("Malformed node-to-node message: bad move descriptor") from None
        try:
            cluster.auth.verify(request.method, request.path, request.headers, descriptor_raw,
                                request.remote or "?")
        except AuthFailed as exc:
            raise NotAuthenticated(f"Node-to-node message refused: {exc.reason}") from None
        try:
            descriptor = json.loads(descriptor_raw)
            if set(descriptor) != {"migration", "instance", "name"}:
                raise ValueError
        except (ValueError, TypeError):
            raise Invalid("Malformed node-to-node message: expected {migration, instance, "
                          "name}") from None
        answer = await mover.receive_file(descriptor, request.content.iter_any())
        raw = encode(answer)
        headers = cluster.auth.sign_response(request.headers[NONCE], 200, raw)
        return web.Response(body=raw, status=200, headers=headers,
                            content_type="application/json")

    table = [route("gossip", _gossip), route("sync", _sync), route("records", _records),
             route("members", _members)]
    if mover is not None:
        table += [route(f"moves/{kind}", _move(fn)) for kind, fn in (
            ("prepare", mover.prepare), ("adopt", mover.adopt), ("abort", mover.abort),
            ("confirm", mover.drop_source), ("evacuate", mover.rebuild_here))]
        table.append(Route("POST", FILE_PATH, move_file, public=True, streaming=True,
                           tag="cluster", summary="One file of an instance moving here",
                           responses={200: "Received, with its BLAKE3 digest", 401: "Not signed",
                                      409: "No such move prepared here"}))
    return [*table,
            Route("POST", f"{PREFIX}/image-data", image_data, public=True, streaming=True,
                  tag="cluster", summary="An image's data, for a node that has its record",
                  responses={200: "The data", 401: "Not signed", 404: "Not here"})]


def _move(fn: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]) -> Answer:
    async def answer(cluster: ClusterService, message: Any) -> Any:
        if not isinstance(message, dict):
            raise ValueError("move: expected an object")
        try:
            return await fn(message)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"move: {type(exc).__name__} {exc}") from None
    answer.__doc__ = fn.__doc__
    return answer


async def _gossip(cluster: ClusterService, message: Any) -> None:
    """A membership datagram (SWIM ping, ack, gossip, push-pull)."""
    cluster.receive_gossip(message)


async def _sync(cluster: ClusterService, message: Any) -> Any:
    """The records a peer's have vector lacks (anti-entropy pull)."""
    return await cluster.answer_sync(message)


async def _records(cluster: ClusterService, message: Any) -> None:
    """Records a peer pushes as it writes them."""
    await cluster.accept_push(message)


async def _members(cluster: ClusterService, message: Any) -> Any:
    """Every member this node knows, with state, incarnation and resources."""
    if message not in (None, {}):
        raise ValueError("members: expected an empty body")
    now = time.monotonic()
    return {"members": [member_view(m, now) for m in cluster.members()]}
