"""Fixtures for the image tests: a real SQLite store and a real HTTP server.

The server mounts the image route table behind a test-only stand-in for the
app's middleware: ``X-Auth-Token: <project>:<role>[,<role>...]`` becomes the
RequestContext (user ``u-<project>``), and every NovadError is rendered with
its own ``body()``.  It listens on a real port so openstacksdk can talk to
it from a thread.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from aiohttp.typedefs import Handler as AioHandler

from novad.api.common import CTX, json_response
from novad.config import Config
from novad.context import RequestContext
from novad.errors import NotAuthenticated, NovadError
from novad.images.routes import routes
from novad.images.schema import IMAGES
from novad.images.service import ImageService
from novad.store.db import Database

SIZE_CAP = 64 << 20
"""The image size cap the test server enforces (bytes)."""


def token_context(token: str) -> RequestContext:
    """``project:role,role`` as a caller."""
    project, sep, roles = token.partition(":")
    if not project or not sep:
        raise NotAuthenticated()
    return RequestContext(user_id=f"u-{project}", project_id=project,
                          roles=frozenset(r for r in roles.split(",") if r))


def build_app(service: ImageService, config: Config) -> web.Application:
    """The image routes behind the test auth and error middleware."""
    public: set[tuple[str, str]] = set()

    @web.middleware
    async def middleware(request: web.Request, handler: AioHandler) -> web.StreamResponse:
        try:
            resource = request.match_info.route.resource
            canonical = resource.canonical if resource is not None else ""
            if (request.method, canonical) not in public:
                request[CTX] = token_context(request.headers.get("X-Auth-Token", ""))
            return await handler(request)
        except NovadError as exc:
            return json_response(exc.body(), status=exc.status)

    app = web.Application(middlewares=[middleware], client_max_size=1 << 40)
    for route in routes(service, config, image_size_cap=SIZE_CAP):
        app.router.add_route(route.method, route.path, route.handler)
        if route.public:
            public.add((route.method, route.path))
    return app


@dataclass
class Api:
    """The running image API and an HTTP session to call it with."""

    url: str
    service: ImageService
    images_dir: Path
    session: aiohttp.ClientSession

    async def call(self, method: str, path: str, token: str | None = "p1:member", *,
                   json: Any = None, data: Any = None,
                   headers: dict[str, str] | None = None) -> tuple[int, Any]:
        """One request to ``/image<path>``; (status, JSON body or raw bytes or None)."""
        hdrs = dict(headers or {})
        if token is not None:
            hdrs["X-Auth-Token"] = token
        async with self.session.request(method, f"{self.url}/image{path}", json=json,
                                        data=data, headers=hdrs) as resp:
            raw = await resp.read()
            if not raw:
                return resp.status, None
            if resp.content_type == "application/json":
                return resp.status, await resp.json()
            return resp.status, raw

    async def create(self, token: str = "p1:member", **fields: Any) -> dict[str, Any]:
        """POST an image (qcow2/bare unless told); its JSON."""
        body = {"disk_format": "qcow2", "container_format": "bare", **fields}
        status, image = await self.call("POST", "/v2/images", token, json=body)
        assert status == 201, image
        assert isinstance(image, dict)
        return image

    async def upload(self, image_id: str, data: Any, token: str = "p1:member") -> int:
        """PUT data; the status."""
        status, _ = await self.call("PUT", f"/v2/images/{image_id}/file", token, data=data,
                                    headers={"Content-Type": "application/octet-stream"})
        return status


@pytest.fixture
def images_dir(tmp_path: Path) -> Path:
    return tmp_path / "state" / "images"


@pytest.fixture
async def service(db: Database, images_dir: Path) -> ImageService:
    svc = ImageService(db, images_dir)
    await svc.start()
    return svc


@pytest.fixture
async def api(service: ImageService, images_dir: Path) -> AsyncIterator[Api]:
    """The image API on a real port, with a client session."""
    server = TestServer(build_app(service, Config()), host="127.0.0.1", port=0)
    await server.start_server()
    url = str(server.make_url("")).rstrip("/")
    async with aiohttp.ClientSession() as session:
        yield Api(url, service, images_dir, session)
    await server.close()
