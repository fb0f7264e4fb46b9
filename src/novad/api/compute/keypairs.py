"""``/os-keypairs``: create or import, list, show, delete.

At 2.1 create answers 200 and delete 202; from 2.2 (key pair ``type``)
201 and 204.  From 2.10 an admin names another user: ``user_id`` in the
create body, ``?user_id=`` on list, show and delete (ignored before 2.10,
as Nova's query schemas allow any parameter there).  From 2.35 the list
takes ``limit`` and ``marker`` (a name) and links the next page.  From 2.92
create only imports (``public_key`` is required) and names may hold ``@``
and ``.``.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from novad.api import microversion
from novad.api.common import Route, context, json_response
from novad.api.compute import schemas
from novad.api.compute.parsing import limit_param, read_body
from novad.api.compute.views import Links, keypair_brief, keypair_created, keypair_detail
from novad.compute.keypairs import SSH, KeypairAPI
from novad.config import Config


def _create_schema(request: web.Request) -> schemas.Schema:
    if microversion.at_least(request, microversion.KEYPAIR_IMPORT_ONLY):
        return schemas.KEYPAIR_CREATE_V2_92
    if microversion.at_least(request, microversion.KEYPAIR_USER):
        return schemas.KEYPAIR_CREATE_V2_10
    if microversion.at_least(request, microversion.KEYPAIR_TYPE):
        return schemas.KEYPAIR_CREATE_V2_2
    return schemas.KEYPAIR_CREATE


def _user(request: web.Request) -> str | None:
    """The ``user_id`` query parameter from 2.10 (the first, as Nova reads it)."""
    if not microversion.at_least(request, microversion.KEYPAIR_USER):
        return None
    values = request.query.getall("user_id", [])
    return values[0] if values else None


class KeypairHandlers:
    """Handlers of ``/os-keypairs``."""

    def __init__(self, keypairs: KeypairAPI, config: Config) -> None:
        self.keypairs = keypairs
        self.config = config
        self.max_body = config.DEFAULT.max_request_body_size

    async def index(self, request: web.Request) -> web.StreamResponse:
        """List a user's key pairs (the caller's unless an admin names one);
        from 2.35 one page of them, by name."""
        paged = microversion.at_least(request, microversion.KEYPAIR_PAGES)
        limit = limit_param(request.query) if paged else None
        pairs = await self.keypairs.list_keypairs(
            context(request), _user(request), limit=limit,
            marker=request.query.get("marker") if paged else None)
        version = microversion.of(request)
        body: dict[str, Any] = {"keypairs": [{"keypair": keypair_brief(p, version)}
                                             for p in pairs]}
        if pairs and limit is not None and len(pairs) == limit:
            body["keypairs_links"] = Links.of(request, self.config).next_page(
                "os-keypairs", request.query.items(), pairs[-1].name)
        return json_response(body)

    async def create(self, request: web.Request) -> web.StreamResponse:
        """Import a public key, or generate a pair and return its private key once."""
        body = await read_body(request, self.max_body, _create_schema(request))
        spec = body["keypair"]
        created = await self.keypairs.create_keypair(
            context(request), spec["name"], spec.get("public_key"), spec.get("type", SSH),
            spec.get("user_id"),
            at_and_dot=microversion.at_least(request, microversion.KEYPAIR_IMPORT_ONLY))
        status = 201 if microversion.at_least(request, microversion.KEYPAIR_TYPE) else 200
        return json_response({"keypair": keypair_created(
            created.keypair, created.private_key, microversion.of(request))}, status=status)

    async def show(self, request: web.Request) -> web.StreamResponse:
        """Show one key pair."""
        pair = await self.keypairs.get_keypair(context(request), request.match_info["name"],
                                               _user(request))
        return json_response({"keypair": keypair_detail(pair, microversion.of(request))})

    async def delete(self, request: web.Request) -> web.StreamResponse:
        """Delete one key pair."""
        await self.keypairs.delete_keypair(context(request), request.match_info["name"],
                                           _user(request))
        status = 204 if microversion.at_least(request, microversion.KEYPAIR_TYPE) else 202
        return web.Response(status=status)

    def routes(self) -> list[Route]:
        """The key-pair routes, relative to a versioned mount."""
        return [
            Route("GET", "/os-keypairs", self.index, tag="keypairs"),
            Route("POST", "/os-keypairs", self.create, schema=schemas.KEYPAIR_CREATE_V2_10,
                  tag="keypairs", responses={200: "Created (2.1)", 201: "Created (2.2+)"}),
            Route("GET", "/os-keypairs/{name}", self.show, tag="keypairs"),
            Route("DELETE", "/os-keypairs/{name}", self.delete, tag="keypairs",
                  responses={202: "Deleted (2.1)", 204: "Deleted (2.2+)"}),
        ]
