"""The boundaries from 2.12 to 2.24 that need no server, over HTTP: the
same request at N-1 and N, showing the difference Nova documents for N.

Those that need a server (2.14, 2.16, 2.17, 2.19, 2.21, and the refusals
of 2.22-2.24) are in ``tests/e2e/test_microversions_cli.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, cast

import pytest
from aiohttp.test_utils import TestClient, TestServer
from api_helpers import (
    MEMBER,
    TOKENS,
    StaticNode,
    UnreachableCompute,
    error_of,
    headers,
    identity_shaped,
)

from novad.api.app import build_api
from novad.api.common import Route
from novad.api.compute import routes as compute_routes
from novad.compute.flavors import FlavorService
from novad.compute.interface import ComputeAPI
from novad.compute.keypairs import KeypairService
from novad.compute.server_groups import ServerGroupService
from novad.config import Config
from novad.context import RequestContext
from novad.errors import NotAuthenticated
from novad.store import Store
from novad.store.models import Flavor, Instance
from novad.states.enums import VmState

Client = TestClient[Any, Any]
V = "/compute/v2.1"
SERVER = "4f9a5c4e-2f7e-4d0b-9d55-1b2f6c1f0e6a"
HEX = RequestContext(user_id="hex-user", project_id="0123456789abcdef0123456789abcdef",
                     roles=frozenset({"member", "reader"}))
"""A caller whose project id looks like the identity service's (hex)."""


async def validate_token(token: str) -> RequestContext:
    """The shared test tokens and ``hex-token``."""
    try:
        return {**TOKENS, "hex-token": HEX}[token]
    except KeyError:
        raise NotAuthenticated() from None


def at(version: str, token: str = "member-token") -> dict[str, str]:
    return headers(token, **{"OpenStack-API-Version": f"compute {version}"})


@pytest.fixture
def app_routes(config: Config, store: Store, node: StaticNode) -> list[Route]:
    return compute_routes(cast(ComputeAPI, UnreachableCompute()), config, None, node,
                          flavors=FlavorService(store), keypairs=KeypairService(store),
                          migrations=store, server_groups=ServerGroupService(store))


@pytest.fixture
async def client(config: Config, app_routes: list[Route]) -> AsyncIterator[Client]:
    app = build_api(config, app_routes, validate_token, identity_shaped)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def test_2_12_virtual_interfaces_are_gone_on_both_sides(client: Client) -> None:
    for version in ("2.11", "2.12"):
        resp = await client.get(f"{V}/servers/{SERVER}/os-virtual-interfaces",
                                headers=at(version))
        assert resp.status == 410, version


async def create_group(client: Client, version: str, policy: str) -> Any:
    body = {"server_group": {"name": f"g-{policy}", "policies": [policy]}}
    return await client.post(f"{V}/os-server-groups", json=body, headers=at(version))


async def test_2_13_server_groups_show_project_and_user(client: Client) -> None:
    resp = await create_group(client, "2.13", "affinity")
    assert resp.status == 200
    created = (await resp.json())["server_group"]
    assert (created["project_id"], created["user_id"]) == (MEMBER.project_id, MEMBER.user_id)
    url = f"{V}/os-server-groups/{created['id']}"
    before = (await (await client.get(url, headers=at("2.12"))).json())["server_group"]
    after = (await (await client.get(url, headers=at("2.13"))).json())["server_group"]
    assert set(after) - set(before) == {"project_id", "user_id"}
    assert {k: after[k] for k in before} == before
    listed = (await (await client.get(f"{V}/os-server-groups", headers=at("2.13"))).json())
    assert listed["server_groups"][0]["project_id"] == MEMBER.project_id


@pytest.mark.parametrize("policy", ["soft-affinity", "soft-anti-affinity"])
async def test_2_15_soft_policies(client: Client, policy: str) -> None:
    resp = await create_group(client, "2.14", policy)
    status, code, message = await error_of(resp)
    assert (status, code) == (400, "badRequest") and policy in message
    resp = await create_group(client, "2.15", policy)
    assert resp.status == 200
    assert (await resp.json())["server_group"]["policies"] == [policy]


@pytest.mark.parametrize("version", ["2.17", "2.18"])
async def test_2_18_project_id_in_the_url(client: Client, store: Store, version: str) -> None:
    """Nova's router serves both forms at every version; 2.18 only promises
    the project-less one.  Links keep the project the URL named."""
    await store.create_flavor(Flavor(id="1", name="m1.tiny", vcpus=1, memory_mb=512, root_gb=1))
    project = HEX.project_id
    plain = await client.get(f"{V}/flavors", headers=at(version, "hex-token"))
    scoped = await client.get(f"{V}/{project}/flavors", headers=at(version, "hex-token"))
    assert plain.status == scoped.status == 200
    flavor = (await scoped.json())["flavors"][0]
    assert flavor["links"][0]["href"].endswith(f"/compute/v2.1/{project}/flavors/{flavor['id']}")
    assert flavor["links"][1]["href"].endswith(f"/compute/{project}/flavors/{flavor['id']}")
    assert (await plain.json())["flavors"][0]["links"][0]["href"].endswith(
        f"/compute/v2.1/flavors/{flavor['id']}")
    other = await client.get(f"{V}/0123abcd/flavors", headers=at(version, "hex-token"))
    assert await error_of(other) == (
        400, "badRequest", "Malformed request URL: URL's project_id '0123abcd' doesn't "
        f"match Context's project_id '{project}'")


@pytest.mark.parametrize(("method", "suffix", "body", "version"), [
    ("POST", "/1/action", {"force_complete": None}, "2.22"),
    ("GET", "", None, "2.23"),
    ("GET", "/1", None, "2.23"),
    ("DELETE", "/1", None, "2.24"),
])
async def test_2_22_to_2_24_server_migration_routes_appear(
        client: Client, method: str, suffix: str, body: Any, version: str) -> None:
    url = f"{V}/servers/{SERVER}/migrations{suffix}"
    before = f"2.{int(version.split('.')[1]) - 1}"
    resp = await client.request(method, url, json=body, headers=at(before, "admin-token"))
    assert await error_of(resp) == (404, "itemNotFound", "The resource could not be found.")
    resp = await client.request(method, url, json=body, headers=at(version))
    status, _, message = await error_of(resp)
    assert status == 403 and "os_compute_api:servers:migrations:" in message


async def test_2_22_force_complete_body(client: Client) -> None:
    url = f"{V}/servers/{SERVER}/migrations/1/action"
    resp = await client.post(url, json={"force_complete": {}}, headers=at("2.22", "admin-token"))
    assert (await error_of(resp))[0] == 400


async def test_2_23_os_migrations_type_and_links(client: Client, store: Store) -> None:
    flavor = Flavor(id="1", name="m1.tiny", vcpus=1, memory_mb=512, root_gb=1)
    inst = await store.create_instance(Instance(
        uuid=SERVER, name="vm", project_id="p", user_id="u", host="node-1", flavor=flavor,
        image_ref="img", vm_state=VmState.ACTIVE, task_state=None))
    live = await store.create_migration(inst.uuid, "live-migration", "running", "node-1",
                                        "node-2", "1", "1")
    await store.create_migration(inst.uuid, "migration", "error", "node-1", None, "1", "1")
    url = f"{V}/os-migrations"
    before = (await (await client.get(url, headers=at("2.22", "admin-token"))).json())
    after = (await (await client.get(url, headers=at("2.23", "admin-token"))).json())
    (b_live, b_cold), (a_live, a_cold) = before["migrations"], after["migrations"]
    assert set(a_live) - set(b_live) == {"migration_type", "links"}
    assert set(a_cold) - set(b_cold) == {"migration_type"}
    assert (a_live["migration_type"], a_cold["migration_type"]) == (
        "live-migration", "migration")
    assert [link["rel"] for link in a_live["links"]] == ["self", "bookmark"]
    assert a_live["links"][0]["href"].endswith(
        f"/compute/v2.1/servers/{SERVER}/migrations/{live.id}")
    assert a_live["links"][1]["href"].endswith(f"/compute/servers/{SERVER}/migrations/{live.id}")
