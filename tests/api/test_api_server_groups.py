"""Server groups (os-server-groups at 2.1) over HTTP against a real SQLite
store: the 2.1 shapes, policy (readers read, members write, admins see
all), project isolation, quota, and the membership calls the lead makes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, cast

import pytest
from aiohttp.test_utils import TestClient, TestServer
from api_helpers import MEMBER, TOKENS, StaticNode, UnreachableCompute, headers, identity_shaped

from novad.api.app import build_api
from novad.api.common import Route
from novad.api.compute import routes as compute_routes
from novad.compute.flavors import FlavorService
from novad.compute.interface import ComputeAPI
from novad.compute.keypairs import KeypairService
from novad.compute.server_groups import MAX_SERVER_GROUPS, ServerGroupService, scheduler_info
from novad.config import Config
from novad.context import RequestContext
from novad.errors import NotAuthenticated, NotFound, OverQuota
from novad.store import Store

Client = TestClient[Any, Any]
G = "/compute/v2.1/os-server-groups"

READER = RequestContext(user_id="reader-user", project_id=MEMBER.project_id,
                        roles=frozenset({"reader"}))
CALLERS = {**TOKENS, "reader-token": READER}


async def validate_token(token: str) -> RequestContext:
    """The shared test tokens and a reader of the member's project."""
    try:
        return CALLERS[token]
    except KeyError:
        raise NotAuthenticated() from None


@pytest.fixture
def service(store: Store) -> ServerGroupService:
    return ServerGroupService(store)


@pytest.fixture
def app_routes(config: Config, store: Store, node: StaticNode,
               service: ServerGroupService) -> list[Route]:
    return compute_routes(cast(ComputeAPI, UnreachableCompute()), config, None, node,
                          flavors=FlavorService(store), keypairs=KeypairService(store),
                          server_groups=service)


@pytest.fixture
async def client(config: Config, app_routes: list[Route]) -> AsyncIterator[Client]:
    app = build_api(config, app_routes, validate_token, identity_shaped)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def create(client: Client, name: str, policy: str = "anti-affinity",
                 token: str = "member-token") -> dict[str, Any]:
    resp = await client.post(G, json={"server_group": {"name": name, "policies": [policy]}},
                             headers=headers(token))
    assert resp.status == 200, await resp.text()
    group: dict[str, Any] = (await resp.json())["server_group"]
    return group


async def test_create_show_list_delete(client: Client) -> None:
    group = await create(client, "g1")
    assert set(group) == {"id", "name", "policies", "members", "metadata"}
    assert (group["name"], group["policies"], group["members"], group["metadata"]) == (
        "g1", ["anti-affinity"], [], {})
    shown = await (await client.get(f"{G}/{group['id']}", headers=headers())).json()
    assert shown == {"server_group": group}
    other = await create(client, "g2", "affinity")
    listing = await (await client.get(G, headers=headers())).json()
    assert [g["name"] for g in listing["server_groups"]] == ["g1", "g2"]
    resp = await client.delete(f"{G}/{group['id']}", headers=headers())
    assert resp.status == 204 and await resp.read() == b""
    resp = await client.get(f"{G}/{group['id']}", headers=headers())
    assert resp.status == 404
    assert (await resp.json())["itemNotFound"]["message"] == \
        f"Instance group {group['id']} could not be found."
    assert (await client.delete(f"{G}/{group['id']}", headers=headers())).status == 404
    listing = await (await client.get(G, headers=headers())).json()
    assert [g["id"] for g in listing["server_groups"]] == [other["id"]]


async def test_served_under_nova_s_own_root_too(client: Client) -> None:
    group = await create(client, "g1")
    resp = await client.get(f"/v2.1/os-server-groups/{group['id']}", headers=headers())
    assert resp.status == 200


async def test_members_are_listed(client: Client, service: ServerGroupService) -> None:
    group = await create(client, "g1")
    await service.add_member(group["id"], "uuid-b")
    await service.add_member(group["id"], "uuid-a")
    await service.add_member(group["id"], "uuid-a")  # idempotent
    shown = (await (await client.get(f"{G}/{group['id']}", headers=headers())).json())
    assert shown["server_group"]["members"] == ["uuid-a", "uuid-b"]
    listing = await (await client.get(G, headers=headers())).json()
    assert listing["server_groups"][0]["members"] == ["uuid-a", "uuid-b"]
    await service.remove_member(group["id"], "uuid-b")
    await service.remove_member(group["id"], "uuid-b")  # idempotent
    assert (await service.get(group["id"])).members == ("uuid-a",)


async def test_project_isolation(client: Client) -> None:
    mine = await create(client, "mine")
    theirs = await create(client, "theirs", token="other-token")
    for token, visible in (("member-token", mine), ("other-token", theirs)):
        listing = await (await client.get(G, headers=headers(token))).json()
        assert [g["id"] for g in listing["server_groups"]] == [visible["id"]]
    assert (await client.get(f"{G}/{theirs['id']}", headers=headers())).status == 404
    assert (await client.delete(f"{G}/{theirs['id']}", headers=headers())).status == 404
    resp = await client.get(f"{G}/{theirs['id']}", headers=headers("other-token"))
    assert resp.status == 200


async def test_all_projects_is_for_admins(client: Client) -> None:
    mine = await create(client, "mine")
    theirs = await create(client, "theirs", token="other-token")
    resp = await client.get(f"{G}?all_projects=True", headers=headers("admin-token"))
    assert {g["id"] for g in (await resp.json())["server_groups"]} == {mine["id"], theirs["id"]}
    resp = await client.get(G, headers=headers("admin-token"))
    assert (await resp.json())["server_groups"] == []
    # Nova ignores the flag for others and tests only its presence.
    resp = await client.get(f"{G}?all_projects", headers=headers())
    assert [g["id"] for g in (await resp.json())["server_groups"]] == [mine["id"]]
    assert (await client.get(f"{G}/{theirs['id']}", headers=headers("admin-token"))).status == 200
    resp = await client.delete(f"{G}/{theirs['id']}", headers=headers("admin-token"))
    assert resp.status == 204


async def test_readers_read_but_do_not_write(client: Client) -> None:
    group = await create(client, "g1")
    listing = await (await client.get(G, headers=headers("reader-token"))).json()
    assert [g["id"] for g in listing["server_groups"]] == [group["id"]]
    assert (await client.get(f"{G}/{group['id']}", headers=headers("reader-token"))).status == 200
    resp = await client.post(G, json={"server_group": {"name": "r", "policies": ["affinity"]}},
                             headers=headers("reader-token"))
    assert resp.status == 403
    assert (await resp.json())["forbidden"]["message"] == (
        "Policy doesn't allow os_compute_api:os-server-groups:create to be performed.")
    resp = await client.delete(f"{G}/{group['id']}", headers=headers("reader-token"))
    assert resp.status == 403
    assert (await client.get(f"{G}/{group['id']}", headers=headers())).status == 200


@pytest.mark.parametrize("group", [
    {"name": "g", "policies": ["soft-affinity"]},  # 2.15
    {"name": "g", "policies": ["soft-anti-affinity"]},
    {"name": "g", "policies": ["affinity", "anti-affinity"]},
    {"name": "g", "policies": []},
    {"name": "g", "policies": "affinity"},
    {"name": "g", "policy": "affinity"},  # 2.64
    {"name": "g", "policies": ["affinity"], "rules": {"max_server_per_host": 2}},
    {"policies": ["affinity"]},
    {"name": "", "policies": ["affinity"]},
    {"name": " padded", "policies": ["affinity"]},
])
async def test_bodies_nova_refuses_at_2_1(client: Client, group: dict[str, Any]) -> None:
    resp = await client.post(G, json={"server_group": group}, headers=headers())
    assert resp.status == 400, group
    assert "badRequest" in await resp.json()


async def test_quota(client: Client) -> None:
    for i in range(MAX_SERVER_GROUPS):
        await create(client, f"g{i}")
    resp = await client.post(G, json={"server_group": {"name": "x", "policies": ["affinity"]}},
                             headers=headers())
    assert resp.status == 403
    assert (await resp.json())["forbidden"]["message"] == \
        "Quota exceeded, too many server groups."
    await create(client, "theirs", token="other-token")


async def test_limit_and_offset(client: Client) -> None:
    for i in range(4):
        await create(client, f"g{i}")

    async def names(query: str) -> list[str]:
        resp = await client.get(f"{G}?{query}", headers=headers())
        assert resp.status == 200, await resp.text()
        return [g["name"] for g in (await resp.json())["server_groups"]]

    assert await names("limit=2") == ["g0", "g1"]
    assert await names("limit=2&offset=1") == ["g1", "g2"]
    assert await names("offset=3") == ["g3"]
    assert await names("limit=0") == ["g0", "g1", "g2", "g3"]
    for query in ("limit=x", "offset=x", "offset=-1", "limit=-1"):
        assert (await client.get(f"{G}?{query}", headers=headers())).status == 400, query


async def test_member_quota_and_unknown_group(service: ServerGroupService) -> None:
    group = await service.create_group(MEMBER, "g", "anti-affinity")
    for i in range(service.max_members):
        await service.add_member(group.id, f"m{i}")
    await service.add_member(group.id, "m0")  # already in: no quota needed
    with pytest.raises(OverQuota, match="too many servers in group"):
        await service.add_member(group.id, "one-more")
    with pytest.raises(NotFound):
        await service.add_member("no-such-group", "m")
    with pytest.raises(NotFound):
        await service.get("no-such-group")


async def test_deleting_a_group_drops_its_members(store: Store,
                                                  service: ServerGroupService) -> None:
    group = await service.create_group(MEMBER, "g", "affinity")
    await service.add_member(group.id, "m1")
    assert await store.server_groups_of("m1") == [group.id]
    await service.delete_group(MEMBER, group.id)
    assert await store.server_groups_of("m1") == []
    rows = await store.db.fetch("SELECT COUNT(*) FROM server_group_members")
    assert rows[0][0] == 0


async def test_scheduler_info(service: ServerGroupService) -> None:
    group = await service.create_group(MEMBER, "g", "anti-affinity")
    group = await service.add_member(group.id, "m1")
    info = scheduler_info(group, ["node-2"])
    assert (info.uuid, info.policy, info.hosts, info.members, dict(info.rules)) == (
        group.id, "anti-affinity", frozenset({"node-2"}), frozenset({"m1"}), {})
