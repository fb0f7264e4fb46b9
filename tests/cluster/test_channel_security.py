"""Forged, replayed, stale, oversized and malformed node-to-node messages
(issue 14, item 4): each is refused with a 4xx, nothing changes, never a 5xx.

A real node serves on a real port (libvirt's test driver); the messages
are sent over real HTTP, signed (or not) as a peer would sign them.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from novad.app import Node, running
from novad.cluster.auth import MessageAuth, read_key
from novad.cluster.replication import Record
from novad.config import load

LIMIT = 65536


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[Node, str, bytes]]:
    config = load(None, {"DEFAULT": {"state_dir": str(tmp_path / "n"), "listen": "127.0.0.1:0",
                                     "host": "target"},
                         "cluster": {"max_message_size": LIMIT}, "vnc": {"enabled": False}})
    async with running(config) as (node, url):
        yield node, url, read_key(config.cluster_key_path)


def flavor_push(origin: str = "peer-origin", flavor_id: str = "evil") -> dict[str, Any]:
    row = {"id": flavor_id, "name": flavor_id, "vcpus": 1, "memory_mb": 64, "root_gb": 0,
           "ephemeral_gb": 0, "swap": 0, "rxtx_factor": 1.0, "is_public": 1, "disabled": 0,
           "description": None, "extra_specs": "{}"}
    rec = Record("flavors", json.dumps([flavor_id]), row, (int(time.time() * 1000) << 16), origin, 1)
    return {"records": [rec.to_json()], "origin": origin, "from": 0, "to": 1}


async def post(url: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as s, s.post(f"{url}{path}", data=body,
                                                    headers=headers) as resp:
        raw = await resp.read()
        return resp.status, json.loads(raw) if raw else None


def signed(key: bytes, path: str, body: bytes, clock: float | None = None) -> dict[str, str]:
    auth = MessageAuth(key, "peer", clock=(lambda: clock) if clock is not None else time.time)
    return auth.sign("POST", path, body)


async def has_flavor(node: Node, flavor_id: str) -> bool:
    return bool(await node.db.fetch("SELECT 1 FROM flavors WHERE id = ?", (flavor_id,)))


def refused_shape(status: int, body: Any) -> None:
    assert 400 <= status < 500, (status, body)
    [(key, err)] = body.items()
    assert err["code"] == status and err["message"]


async def test_a_signed_push_is_applied(served: tuple[Node, str, bytes]) -> None:
    node, url, key = served
    body = json.dumps(flavor_push(flavor_id="good")).encode()
    status, _ = await post(url, "/cluster/v1/records", body, signed(key, "/cluster/v1/records", body))
    assert status == 204
    assert await has_flavor(node, "good")


async def test_forged_altered_and_unsigned_messages_change_nothing(
        served: tuple[Node, str, bytes]) -> None:
    node, url, key = served
    path = "/cluster/v1/records"
    body = json.dumps(flavor_push()).encode()
    other_key = secrets.token_bytes(32)
    altered_headers = signed(key, path, body)
    altered = body.replace(b'"memory_mb": 64', b'"memory_mb": 65')
    assert altered != body
    cases = [
        (body, {}),                                    # unsigned
        (body, signed(other_key, path, body)),         # another cluster's key
        (altered, altered_headers),                    # body altered after signing
        (body, signed(key, "/cluster/v1/sync", body)),  # signed for another path
        (body, {**signed(key, path, body), "X-Novad-Node": "someone-else"}),
        (body, {**signed(key, path, body), "X-Novad-Timestamp": "soon"}),
    ]
    for data, headers in cases:
        status, answer = await post(url, path, data, headers)
        assert status == 401, (headers, answer)
        refused_shape(status, answer)
    assert not await has_flavor(node, "evil")
    assert node.cluster is not None and node.cluster.auth.refused["forged"] >= 4


async def test_a_replayed_message_is_refused(served: tuple[Node, str, bytes]) -> None:
    node, url, key = served
    path = "/cluster/v1/records"
    body = json.dumps(flavor_push(flavor_id="once")).encode()
    headers = signed(key, path, body)
    assert (await post(url, path, body, headers))[0] == 204
    async with node.db.transaction() as conn:
        await conn.execute("DELETE FROM flavors WHERE id = 'once'")
    status, answer = await post(url, path, body, headers)
    assert status == 401 and "replayed" in answer["unauthorized"]["message"]
    assert not await has_flavor(node, "once")


@pytest.mark.parametrize("skew", [-31.0, 31.0, -3600.0])
async def test_a_stale_or_future_message_is_refused(served: tuple[Node, str, bytes],
                                                   skew: float) -> None:
    node, url, key = served
    path = "/cluster/v1/records"
    body = json.dumps(flavor_push()).encode()
    status, answer = await post(url, path, body, signed(key, path, body, time.time() + skew))
    assert status == 401 and "stale" in answer["unauthorized"]["message"]
    assert not await has_flavor(node, "evil")


async def test_an_oversized_message_is_413(served: tuple[Node, str, bytes]) -> None:
    node, url, key = served
    path = "/cluster/v1/gossip"
    body = b'{"type":"ping","pad":"' + b"x" * LIMIT + b'"}'
    status, answer = await post(url, path, body, signed(key, path, body))
    assert status == 413
    refused_shape(status, answer)


GARBAGE: list[tuple[str, bytes]] = [
    ("/cluster/v1/gossip", b"not json"),
    ("/cluster/v1/gossip", b"[]"),
    ("/cluster/v1/gossip", b'{"type": "no-such-message"}'),
    ("/cluster/v1/gossip", b'{"type": "ping"}'),
    ("/cluster/v1/gossip", b"\xff\xfe\x00"),
    ("/cluster/v1/gossip", b'{"type": "alive", "name": 5}'),
    ("/cluster/v1/sync", b'{"have": "all"}'),
    ("/cluster/v1/sync", b'{"have": {"a": -1}}'),
    ("/cluster/v1/sync", b'{"have": {}, "limit": 1000000}'),
    ("/cluster/v1/records", b'{"records": [{"t": "secrets"}], "origin": "x", "from": 0, "to": 1}'),
    ("/cluster/v1/records", b'{"records": [], "origin": "x"}'),
    ("/cluster/v1/records", json.dumps(flavor_push(origin="a") | {"origin": "b"}).encode()),
    ("/cluster/v1/members", b'{"all": true}'),
]


@pytest.mark.parametrize(("path", "body"), GARBAGE)
async def test_malformed_messages_are_400_and_change_nothing(
        served: tuple[Node, str, bytes], path: str, body: bytes) -> None:
    node, url, key = served
    before = node.cluster.members() if node.cluster else []
    status, answer = await post(url, path, body, signed(key, path, body))
    assert status == 400, answer
    refused_shape(status, answer)
    assert not await has_flavor(node, "evil")
    after = node.cluster.members() if node.cluster else []
    assert [(m.name, m.state) for m in after] == [(m.name, m.state) for m in before]
    # the node still answers a well-formed request
    ok = b"{}"
    status, members = await post(url, "/cluster/v1/members", ok,
                                 signed(key, "/cluster/v1/members", ok))
    assert status == 200 and members["members"][0]["name"] == "target"
