"""Fixtures for the HTTP-level API tests.

The application is the real one (:func:`novad.api.app.build_api` with the
real compute route table), served on a test server.  Flavors and key pairs
run against a real SQLite store.  The compute service is not used here:
every request in these tests is refused before it would reach it, and the
stand-in raises if it is ever called, so a test cannot pass by accident.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import pytest
from aiohttp.test_utils import TestClient, TestServer
from stack_api import stack  # noqa: F401 - the fixture, for every API test
from api_helpers import (
    StaticNode,
    UnreachableCompute,
    boom,
    identity_probe,
    identity_shaped,
    validate_token,
)

from novad.api.app import build_api
from novad.api.common import Route
from novad.api.compute import routes as compute_routes
from novad.compute.flavors import FlavorService
from novad.compute.interface import ComputeAPI
from novad.compute.keypairs import KeypairService
from novad.compute.service_record import ServiceRecord
from novad.config import Config, load
from novad.store import COMPUTE, Database, Store


@pytest.fixture
def config(tmp_path: Path) -> Config:
    """Defaults, with a small body limit so the 413 test stays small."""
    return load(None, {"DEFAULT": {"state_dir": str(tmp_path),
                                   "max_request_body_size": 262144}})


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    """A real, migrated compute store."""
    db = await Database.open(tmp_path / "novad.sqlite")
    await db.migrate([COMPUTE])
    yield Store(db)
    await db.close()


@pytest.fixture
async def node(store: Store) -> StaticNode:
    """This node, with a real nova-compute record in the store."""
    service = ServiceRecord(store, "node-1")
    await service.load()
    return StaticNode(service=service, store=store)


@pytest.fixture
def app_routes(config: Config, store: Store, node: StaticNode) -> list[Route]:
    extra = [Route("GET", "/boom", boom, public=True),
             Route("GET", "/identity/v3/probe", identity_probe)]
    return [*extra, *compute_routes(cast(ComputeAPI, UnreachableCompute()), config, None, node,
                                    flavors=FlavorService(store),
                                    keypairs=KeypairService(store))]


@pytest.fixture
async def client(config: Config, app_routes: list[Route]) -> AsyncIterator[TestClient[Any, Any]]:
    """The API on a test server."""
    app = build_api(config, app_routes, validate_token, identity_shaped)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client
