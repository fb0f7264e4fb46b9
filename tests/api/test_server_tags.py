"""Server tags (2.26) over HTTP against a real compute stack: the routes,
Nova's guards and codes, the list filters, and the 2.25 side of each."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from api_helpers import MEMBER, StaticNode, error_of, headers
from stack_api import stack_client
from compute.conftest import Stack

from novad.states.enums import TaskState, VmState

Client = TestClient[Any, Any]
V = "/compute/v2.1"


def at(version: str, token: str = "member-token") -> dict[str, str]:
    return headers(token, **{"OpenStack-API-Version": f"compute {version}"})


@pytest.fixture
async def client(stack: Stack) -> AsyncIterator[Client]:
    async with stack_client(stack, StaticNode(store=stack.store)) as test_client:
        yield test_client


@pytest.fixture
async def server(stack: Stack) -> str:
    return (await stack.boot("tagged", MEMBER)).uuid


async def test_2_26_routes_appear(client: Client, server: str) -> None:
    base = f"{V}/servers/{server}/tags"
    for method, path, body in (("GET", base, None), ("PUT", base, {"tags": ["a"]}),
                               ("GET", f"{base}/a", None), ("PUT", f"{base}/a", None),
                               ("DELETE", f"{base}/a", None), ("DELETE", base, None)):
        resp = await client.request(method, path, json=body, headers=at("2.25"))
        assert await error_of(resp) == (404, "itemNotFound",
                                        "The resource could not be found."), (method, path)
        resp = await client.request(method, path, json=body, headers=at("2.26"))
        assert resp.status < 300, (method, path, await resp.text())


async def test_tags_add_check_replace_delete(client: Client, server: str) -> None:
    base, h = f"{V}/servers/{server}/tags", at("2.26")
    added = await client.put(f"{base}/blue", headers=h)
    assert added.status == 201
    assert added.headers["Location"].endswith(f"/compute/v2.1/servers/{server}/tags/blue")
    assert (await client.put(f"{base}/blue", headers=h)).status == 204
    assert (await client.get(f"{base}/blue", headers=h)).status == 204
    assert await error_of(await client.get(f"{base}/red", headers=h)) == (
        404, "itemNotFound", f"Server {server} has no tag 'red'")
    replaced = await client.put(base, json={"tags": ["x", "y", "x"]}, headers=h)
    assert (replaced.status, await replaced.json()) == (200, {"tags": ["x", "y"]})
    assert await (await client.get(base, headers=h)).json() == {"tags": ["x", "y"]}
    assert (await client.delete(f"{base}/x", headers=h)).status == 204
    assert await error_of(await client.delete(f"{base}/x", headers=h)) == (
        404, "itemNotFound", f"Instance {server} has no tag 'x'")
    assert (await client.delete(base, headers=h)).status == 204
    assert await (await client.get(base, headers=h)).json() == {"tags": []}


async def test_tag_validation_and_limit(client: Client, server: str) -> None:
    base, h = f"{V}/servers/{server}/tags", at("2.26")
    status, _, message = await error_of(await client.put(f"{base}/a,b", headers=h))
    assert status == 400 and message.startswith(
        "Tag 'a,b' is invalid. It must be a non empty string without characters '/' and ','.")
    assert (await error_of(await client.put(f"{base}/{'t' * 61}", headers=h)))[0] == 400
    for bad in ({"tags": ["a/b"]}, {"tags": [""]}, {"tags": ["t"] * 51}, {"tag": []}, {}):
        assert (await error_of(await client.put(base, json=bad, headers=h)))[0] == 400, bad
    fifty = [f"t{i}" for i in range(50)]
    assert (await client.put(base, json={"tags": fifty}, headers=h)).status == 200
    assert await error_of(await client.put(f"{base}/one-more", headers=h)) == (
        400, "badRequest", "The number of tags exceeded the per-server limit 50")
    assert (await client.put(f"{base}/t0", headers=h)).status == 400  # the count comes first
    body = await client.put(f"{base}/t0", json={"x": 1}, headers=h)
    assert (await error_of(body))[0] == 400


async def test_writes_refused_outside_nova_states(stack: Stack, client: Client,
                                                  server: str) -> None:
    base, h = f"{V}/servers/{server}/tags", at("2.26")
    inst = await stack.store.get_instance(server)
    await stack.force_task(inst, TaskState.REBOOTING)  # a task does not stop a tag write
    assert (await client.put(f"{base}/busy", headers=h)).status == 201
    await stack.force_task(inst, None, VmState.SHELVED)
    for method, path, body in (("PUT", f"{base}/a", None), ("PUT", base, {"tags": []}),
                               ("DELETE", f"{base}/busy", None), ("DELETE", base, None)):
        status, kind, message = await error_of(
            await client.request(method, path, json=body, headers=h))
        assert (status, kind) == (409, "conflictingRequest"), (method, path)
        assert "while it is in vm_state shelved" in message
    assert await (await client.get(base, headers=h)).json() == {"tags": ["busy"]}


async def test_another_projects_server_is_404(client: Client, server: str) -> None:
    base = f"{V}/servers/{server}/tags"
    for method, path in (("GET", base), ("PUT", f"{base}/a"), ("DELETE", base)):
        resp = await client.request(method, path, headers=at("2.26", "other-token"))
        assert (await error_of(resp))[0] == 404, (method, path)


async def test_2_26_tags_in_the_server_views(client: Client, server: str) -> None:
    await client.put(f"{V}/servers/{server}/tags/blue", headers=at("2.26"))
    before = (await (await client.get(f"{V}/servers/{server}", headers=at("2.25"))).json())
    after = (await (await client.get(f"{V}/servers/{server}", headers=at("2.26"))).json())
    assert set(after["server"]) - set(before["server"]) == {"tags"}
    assert after["server"]["tags"] == ["blue"]
    listed = await (await client.get(f"{V}/servers/detail", headers=at("2.26"))).json()
    assert listed["servers"][0]["tags"] == ["blue"]
    body = {"server": {"name": "renamed"}}
    old = await (await client.put(f"{V}/servers/{server}", json=body, headers=at("2.25"))).json()
    new = await (await client.put(f"{V}/servers/{server}", json=body, headers=at("2.26"))).json()
    assert set(new["server"]) - set(old["server"]) == {"tags"}


async def test_2_26_list_filters(stack: Stack, client: Client) -> None:
    ids = {}
    for name, tags in (("ab", ["a", "b"]), ("a", ["a"]), ("c", ["c"]), ("none", [])):
        ids[name] = (await stack.boot(name, MEMBER)).uuid
        await client.put(f"{V}/servers/{ids[name]}/tags", json={"tags": tags},
                         headers=at("2.26"))

    async def names(version: str, query: str) -> set[str]:
        resp = await client.get(f"{V}/servers?{query}", headers=at(version))
        assert resp.status == 200
        return {s["name"] for s in (await resp.json())["servers"]}

    everyone = {"ab", "a", "c", "none"}
    for query, wanted in (("tags=a,b", {"ab"}), ("tags=a", {"ab", "a"}),
                          ("tags-any=b,c", {"ab", "c"}), ("not-tags=a,b", everyone - {"ab"}),
                          ("not-tags-any=a,c", {"none"}), ("tags=a&not-tags=b", {"a"})):
        assert await names("2.25", query) == everyone, query  # ignored before 2.26
        assert await names("2.26", query) == wanted, query
    limited = await client.get(f"{V}/servers?tags=a&limit=1", headers=at("2.26"))
    assert len((await limited.json())["servers"]) == 1
