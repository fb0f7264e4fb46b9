"""Boundaries from 2.76 to 2.96 where what matters is what the API asks of
the compute service: the service is a recorder here, so the test sees the
parameters the API made of the request (the moves themselves need a cluster,
which the cluster tier runs)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, cast

import pytest
from aiohttp.test_utils import TestClient, TestServer
from api_helpers import StaticNode, headers, identity_shaped, validate_token

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


def at(version: str) -> dict[str, str]:
    return headers("admin-token", **{"OpenStack-API-Version": f"compute {version}"})


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


# -- 2.95 an evacuated server ends stopped ------------------------------------------------

async def test_2_95_evacuate_asks_for_a_stopped_server(client: Client,
                                                       compute: RecordingCompute) -> None:
    for version in ("2.94", "2.95"):
        resp = await client.post(f"{V}/servers/{SERVER}/action",
                                 json={"evacuate": {"host": "node-2"}}, headers=at(version))
        assert resp.status == 200, version
    [(row, before), (_, after)] = compute.acts
    assert row == "evacuate" and "target_state" not in before
    assert after == {**before, "target_state": "stopped"}


# -- 2.87 volume-backed rescue: no server is, nothing changes (2.93's rebuild: the
#    real-stack file) ---------------------------------------------------------------------

async def test_2_87_rescue_is_unchanged(client: Client, compute: RecordingCompute) -> None:
    argument = {"rescue": {"rescue_image_ref": "0d5c4b2e-6f3d-4e5a-9b7c-0d1e2f3a4b5c"}}
    answers = []
    for version in ("2.86", "2.87"):
        resp = await client.post(f"{V}/servers/{SERVER}/action", json=argument,
                                 headers=at(version))
        answers.append(resp.status)
    assert answers[0] == answers[1] and answers[0] < 300
    assert compute.acts[0] == compute.acts[1]
