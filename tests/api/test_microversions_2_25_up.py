"""The boundaries from 2.25 on, over HTTP: the same request at N-1 and N,
showing the difference Nova documents for N and nothing else.

The compute service is a recorder here: what reaches it is what the API
made of the request.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, cast

import pytest
from aiohttp.test_utils import TestClient, TestServer
from api_helpers import StaticNode, error_of, headers, identity_shaped, validate_token

from novad.api.app import build_api
from novad.api.compute import routes as compute_routes
from novad.compute.flavors import FlavorService
from novad.compute.interface import ActionResult, ComputeAPI
from novad.compute.keypairs import KeypairService
from novad.config import Config
from novad.context import RequestContext
from novad.store import Store

Client = TestClient[Any, Any]
V = "/compute/v2.1"
SERVER = "4f9a5c4e-2f7e-4d0b-9d55-1b2f6c1f0e6a"


@dataclass
class RecordingCompute:
    """Accepts every action and remembers the (row, params) it was given."""

    acts: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    async def act(self, ctx: RequestContext, instance_id: str, action: str,
                  params: dict[str, Any]) -> ActionResult:
        self.acts.append((action, params))
        return ActionResult()


def at(version: str, token: str = "admin-token") -> dict[str, str]:
    return headers(token, **{"OpenStack-API-Version": f"compute {version}"})


@pytest.fixture
def compute() -> RecordingCompute:
    return RecordingCompute()


@pytest.fixture
async def client(config: Config, store: Store, node: StaticNode,
                 compute: RecordingCompute) -> AsyncIterator[Client]:
    app_routes = compute_routes(cast(ComputeAPI, compute), config, None, node,
                                flavors=FlavorService(store), keypairs=KeypairService(store))
    app = build_api(config, app_routes, validate_token, identity_shaped)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def live(client: Client, version: str, **argument: Any) -> Any:
    return await client.post(f"{V}/servers/{SERVER}/action",
                             json={"os-migrateLive": argument}, headers=at(version))


# -- 2.25 block_migration "auto"; disk_over_commit gone -----------------------------

async def test_2_25_block_migration_auto(client: Client, compute: RecordingCompute) -> None:
    before = await live(client, "2.24", host=None, block_migration="auto",
                        disk_over_commit=False)
    assert (await error_of(before))[0] == 400
    after = await live(client, "2.25", host=None, block_migration="auto")
    assert after.status == 202
    # (below 2.34 the destination is checked before the 202)
    assert compute.acts == [("live_migrate", {"host": None, "block_migration": True,
                                              "force": False, "check_destination": True})]


async def test_2_25_disk_over_commit_is_gone(client: Client,
                                             compute: RecordingCompute) -> None:
    old = {"host": "node-2", "block_migration": False, "disk_over_commit": False}
    assert (await live(client, "2.24", **old)).status == 202
    status, _, message = await error_of(await live(client, "2.25", **old))
    assert status == 400 and "disk_over_commit" in message
    new = {"host": "node-2", "block_migration": False}
    assert (await error_of(await live(client, "2.24", **new)))[0] == 400
    assert (await live(client, "2.25", **new)).status == 202
    # below 2.30 a named host is always forced (no scheduler checks), as in Nova
    assert compute.acts == [("live_migrate", {"host": "node-2", "block_migration": False,
                                              "force": True, "check_destination": True})] * 2


async def test_2_25_still_requires_host_and_block_migration(client: Client) -> None:
    for argument in ({"block_migration": "auto"}, {"host": None}):
        assert (await error_of(await live(client, "2.25", **argument)))[0] == 400, argument


# -- 2.26 (server tags): tests/api/test_server_tags.py and the e2e tier ------------------

# -- 2.27 the new header form: accepted at every version, nothing changes ---------------

async def test_2_27_both_header_forms_on_both_sides(client: Client) -> None:
    for version in ("2.26", "2.27"):
        for hdrs in ({"OpenStack-API-Version": f"compute {version}"},
                     {"X-OpenStack-Nova-API-Version": version}):
            resp = await client.get(f"{V}/flavors", headers=headers("member-token", **hdrs))
            assert resp.status == 200
            assert resp.headers["OpenStack-API-Version"] == f"compute {version}"
            assert resp.headers["X-OpenStack-Nova-API-Version"] == version


# -- 2.28 cpu_info as an object ----------------------------------------------------------

async def test_2_28_cpu_info_is_an_object(client: Client) -> None:
    async def detail(version: str) -> list[dict[str, Any]]:
        resp = await client.get(f"{V}/os-hypervisors/detail", headers=at(version))
        assert resp.status == 200
        listed: list[dict[str, Any]] = (await resp.json())["hypervisors"]
        return listed

    before, after = await detail("2.27"), await detail("2.28")
    assert len(before) == len(after) >= 1
    for old, new in zip(before, after, strict=True):
        assert isinstance(old["cpu_info"], str) and isinstance(new["cpu_info"], dict)
        assert new["cpu_info"] == (json.loads(old["cpu_info"]) if old["cpu_info"] else {})
        assert {k: v for k, v in old.items() if k != "cpu_info"} == {
            k: v for k, v in new.items() if k != "cpu_info"}
    ident = after[0]["id"]
    shown = {v: (await (await client.get(f"{V}/os-hypervisors/{ident}", headers=at(v))).json())
             ["hypervisor"]["cpu_info"] for v in ("2.27", "2.28")}
    assert isinstance(shown["2.27"], str) and isinstance(shown["2.28"], dict)


# -- 2.29 evacuate force; 2.30 os-migrateLive force ---------------------------------------

async def evacuate(client: Client, version: str, **argument: Any) -> Any:
    return await client.post(f"{V}/servers/{SERVER}/action",
                             json={"evacuate": argument}, headers=at(version))


async def test_2_29_evacuate_takes_force(client: Client, compute: RecordingCompute) -> None:
    status, _, message = await error_of(await evacuate(client, "2.28", host="n2", force=False))
    assert status == 400 and "force" in message
    assert (await evacuate(client, "2.28", host="n2")).status == 200
    assert (await evacuate(client, "2.29", host="n2")).status == 200
    assert (await evacuate(client, "2.29", host="n2", force=True)).status == 200
    # below 2.29 a named host is forced; from it only with force: true
    assert [p["force"] for _, p in compute.acts] == [True, False, True]
    status, _, message = await error_of(await evacuate(client, "2.29", force=True))
    assert (status, message) == (400, "Can't force to a non-provided destination")


async def test_2_30_live_migration_takes_force(client: Client,
                                               compute: RecordingCompute) -> None:
    status, _, message = await error_of(await live(client, "2.29", host="n2",
                                                   block_migration="auto", force=True))
    assert status == 400 and "force" in message
    assert (await live(client, "2.29", host="n2", block_migration="auto")).status == 202
    assert (await live(client, "2.30", host="n2", block_migration="auto")).status == 202
    assert (await live(client, "2.30", host="n2", block_migration="auto",
                       force=True)).status == 202
    assert [p["force"] for _, p in compute.acts] == [True, False, True]
    status, _, message = await error_of(await live(client, "2.30", host=None,
                                                   block_migration="auto", force=True))
    assert (status, message) == (400, "Can't force to a non-provided destination")
