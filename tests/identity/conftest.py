"""Fixtures for the identity tests: a real SQLite store and a real HTTP server.

The server is a tiny aiohttp app that mounts the identity route table behind
a minimal stand-in for the app's middleware (X-Auth-Token validation and
Keystone-shaped errors).  It listens on a real port, so the ``openstack`` CLI
can talk to it from a subprocess.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestServer
from identity_helpers import FakeClock, Server, wrap

from novad.config import Config
from novad.identity.routes import routes
from novad.identity.schema import IDENTITY
from novad.identity.service import IdentityService
from novad.identity.tokens import load_or_create_cluster_key
from novad.store.db import Database


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    path = tmp_path / "state"
    path.mkdir()
    return path


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def service(db: Database, state_dir: Path, clock: FakeClock) -> IdentityService:
    return IdentityService(db, Config(), load_or_create_cluster_key(state_dir), clock=clock)


@pytest.fixture
async def server(service: IdentityService, state_dir: Path) -> AsyncIterator[Server]:
    """The identity API on a real port, bootstrapped, with an HTTP session."""
    app = web.Application()
    for route in routes(service, Config()):
        app.router.add_route(route.method, route.path, wrap(route, service))
    test_server = TestServer(app, host="127.0.0.1", port=0)
    await test_server.start_server()
    url = str(test_server.make_url("")).rstrip("/")
    created = await service.bootstrap(state_dir, url)
    assert created is not None
    clouds = yaml.safe_load(Path(created).read_text())
    password = clouds["clouds"]["novad"]["auth"]["password"]
    async with aiohttp.ClientSession() as session:
        yield Server(url, service, state_dir, Path(created), password, session)
    await test_server.close()
