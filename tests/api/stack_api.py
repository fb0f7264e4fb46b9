"""The API over a whole compute stack (real SQLite store, libvirt's test
driver, the real compute service), for the tests that boot servers.

``stack`` is the compute tests' fixture, a fresh stack per test
(tests/api/conftest.py makes it every API test's too);
:func:`stack_client` serves the real compute route table over a stack on a
test server, with the optional route groups a test names.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from api_helpers import StaticNode, identity_shaped, validate_token
from compute.conftest import Stack, stack

from novad.api.app import build_api
from novad.api.common import Route
from novad.api.compute import routes as compute_routes
from novad.compute.flavors import FlavorService
from novad.compute.keypairs import KeypairService

Client = TestClient[Any, Any]
__all__ = ["Client", "stack", "stack_client"]


@contextlib.asynccontextmanager
async def stack_client(stack: Stack, node: StaticNode | None = None, *, images: bool = False,
                       extra: Sequence[Route] = (), inner: Sequence[Any] = (),
                       **groups: Any) -> AsyncIterator[Client]:
    """The compute API over ``stack`` on a test server.  ``node``: this
    node as the API sees it (by default the stack's host with its service
    record); ``images``: with the image proxy over the stack's images;
    ``groups``: the optional route groups (``migrations=``, ``quotas=``,
    ``server_groups=`` ...); ``extra`` routes and ``inner`` middlewares as
    :func:`novad.api.app.build_api` takes them."""
    here = node or StaticNode(host=stack.config.host, store=stack.store, service=stack.service)
    app_routes = [*compute_routes(stack.compute, stack.config, stack.images if images else None,
                                  here, flavors=FlavorService(stack.store),
                                  keypairs=KeypairService(stack.store), **groups), *extra]
    app = build_api(stack.config, app_routes, validate_token, identity_shaped,
                    inner=list(inner))
    async with TestClient(TestServer(app)) as client:
        yield client
