"""``/os-keypairs`` at 2.1: create (200) or import, list, show, delete (202)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from novad.api.common import Route, context, json_response
from novad.api.compute import schemas
from novad.api.compute.parsing import read_body
from novad.api.compute.views import keypair_brief, keypair_detail
from novad.compute.keypairs import KeypairAPI
from novad.config import Config


class KeypairHandlers:
    """Handlers of ``/os-keypairs``."""

    def __init__(self, keypairs: KeypairAPI, config: Config) -> None:
        self.keypairs = keypairs
        self.max_body = config.DEFAULT.max_request_body_size

    async def index(self, request: web.Request) -> web.StreamResponse:
        """List the caller's key pairs."""
        pairs = await self.keypairs.list_keypairs(context(request))
        return json_response({"keypairs": [{"keypair": keypair_brief(p)} for p in pairs]})

    async def create(self, request: web.Request) -> web.StreamResponse:
        """Import a public key, or generate a pair and return its private key once."""
        body = await read_body(request, self.max_body, schemas.KEYPAIR_CREATE)
        spec = body["keypair"]
        created = await self.keypairs.create_keypair(context(request), spec["name"],
                                                     spec.get("public_key"))
        view: dict[str, Any] = {**keypair_brief(created.keypair),
                                "user_id": created.keypair.user_id}
        if created.private_key is not None:
            view["private_key"] = created.private_key
        return json_response({"keypair": view})

    async def show(self, request: web.Request) -> web.StreamResponse:
        """Show one key pair."""
        pair = await self.keypairs.get_keypair(context(request), request.match_info["name"])
        return json_response({"keypair": keypair_detail(pair)})

    async def delete(self, request: web.Request) -> web.StreamResponse:
        """Delete one key pair."""
        await self.keypairs.delete_keypair(context(request), request.match_info["name"])
        return web.Response(status=202)

    def routes(self) -> list[Route]:
        """The key-pair routes, relative to a versioned mount."""
        return [
            Route("GET", "/os-keypairs", self.index, tag="keypairs"),
            Route("POST", "/os-keypairs", self.create, schema=schemas.KEYPAIR_CREATE,
                  tag="keypairs"),
            Route("GET", "/os-keypairs/{name}", self.show, tag="keypairs"),
            Route("DELETE", "/os-keypairs/{name}", self.delete, tag="keypairs",
                  responses={202: "Deleted"}),
        ]
