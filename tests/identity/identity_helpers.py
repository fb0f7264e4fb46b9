"""Shared helpers of the identity tests (a module name of its own, because
several test folders have a ``conftest``)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from novad.api.common import CTX, Handler, Route, json_response
from novad.errors import NotAuthenticated, NovadError
from novad.identity.routes import keystone_error_body
from novad.identity.service import IdentityService


class FakeClock:
    """Real time plus an offset the test can advance."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


def wrap(route: Route, service: IdentityService) -> Handler:
    """The route's handler behind token auth and Keystone error rendering."""

    async def handler(request: web.Request) -> web.StreamResponse:
        try:
            if not route.public:
                token = request.headers.get("X-Auth-Token")
                if not token:
                    raise NotAuthenticated()
                request[CTX] = await service.validate_token(token)
            return await route.handler(request)
        except NovadError as exc:
            return json_response(keystone_error_body(exc), status=exc.status)

    return handler


@dataclass
class Server:
    """The running identity server and what a test needs to talk to it."""

    url: str
    service: IdentityService
    state_dir: Path
    clouds_yaml: Path
    admin_password: str
    session: aiohttp.ClientSession

    async def login(self, user: str, password: str, project: str | None = None
                    ) -> tuple[int, str | None, dict[str, Any]]:
        """POST /auth/tokens; (status, token, body)."""
        auth: dict[str, Any] = {"identity": {"methods": ["password"], "password": {
            "user": {"name": user, "domain": {"name": "Default"}, "password": password}}}}
        if project is not None:
            auth["scope"] = {"project": {"name": project, "domain": {"id": "default"}}}
        async with self.session.post(f"{self.url}/identity/v3/auth/tokens",
                                     json={"auth": auth}) as resp:
            return resp.status, resp.headers.get("X-Subject-Token"), await resp.json()

    async def admin_token(self) -> str:
        status, token, _ = await self.login("admin", self.admin_password, "admin")
        assert status == 201 and token
        return token

    async def call(self, method: str, path: str, token: str | None, body: Any = None,
                   headers: dict[str, str] | None = None) -> tuple[int, Any]:
        """One request to ``/identity/v3<path>``; (status, JSON body or None)."""
        hdrs = dict(headers or {})
        if token is not None:
            hdrs["X-Auth-Token"] = token
        async with self.session.request(method, f"{self.url}/identity/v3{path}",
                                        json=body, headers=hdrs) as resp:
            data = await resp.json() if resp.content_type == "application/json" else None
            return resp.status, data
