"""Consoles: ``POST /servers/{id}/remote-consoles`` (2.6+) issues a console
URL, and ``GET /os-console-auth-tokens/{console_token}`` shows what a
console token grants (admin).

remote-consoles takes the place of the ``os-getVNCConsole`` action, which
is 404 from 2.6 on (:mod:`~novad.api.compute.actions`).  Only noVNC is
served; every other protocol is answered as Nova answers with that console
disabled (400 ``Unavailable console type <type>.``), mks (2.8) included.

Below microversion 2.31 Nova shows only RDP tokens at os-console-auth-tokens
and answers 401 for any other console type; novad, which issues noVNC
tokens only, answers the same, and from 2.31 shows every token.
"""

from __future__ import annotations

from typing import Protocol

from aiohttp import web

from novad.api import microversion
from novad.api.common import Route, context, json_response
from novad.api.compute import schemas
from novad.api.compute.misc import require_admin
from novad.api.compute.parsing import read_body
from novad.compute.interface import ComputeAPI
from novad.config import Config
from novad.console.tokens import ConsoleGrant
from novad.errors import NotAuthenticated, NotFound

RDP_CONSOLE = "rdp-html5"
"""The only console type os-console-auth-tokens shows below 2.31."""


class ConsoleTokenLookup(Protocol):
    """Console tokens, for the admin look-up."""

    async def token_info(self, token: str) -> ConsoleGrant:
        """The grant of a valid token; raises NotFound (404) when the token is
        unknown or expired.  Does not block."""


class ConsoleTokenHandlers:
    """Handlers of ``/os-console-auth-tokens``."""

    def __init__(self, consoles: ConsoleTokenLookup) -> None:
        self.consoles = consoles

    async def show(self, request: web.Request) -> web.StreamResponse:
        """Show a console token's instance, host and port (admin; below 2.31
        only an RDP token's, 401 for any other, as Nova)."""
        require_admin(context(request), "os-console-auth-tokens")
        grant = await self.consoles.token_info(request.match_info["console_token"])
        if grant.console_type != RDP_CONSOLE \
                and not microversion.at_least(request, microversion.CONSOLE_AUTH_TOKENS):
            raise NotAuthenticated("The requested console type details are not accessible")
        return json_response({"console": {
            "instance_uuid": grant.instance_uuid, "host": grant.host, "port": grant.port,
            "internal_access_path": grant.internal_access_path}})

    def routes(self) -> list[Route]:
        """The route, relative to a versioned mount."""
        return [Route("GET", "/os-console-auth-tokens/{console_token}", self.show,
                      summary="Show console connection information", tag="consoles",
                      responses={200: "The token's instance, host and port",
                                 401: "Below 2.31, a token of a console other than RDP",
                                 404: "Unknown or expired token"})]


class RemoteConsoleHandlers:
    """Handlers of ``/servers/{id}/remote-consoles``."""

    def __init__(self, compute: ComputeAPI, config: Config) -> None:
        self.compute = compute
        self.max_body = config.DEFAULT.max_request_body_size

    async def create(self, request: web.Request) -> web.StreamResponse:
        """Issue a console URL for a server (2.6+; a noVNC one, with a fresh token)."""
        if not microversion.at_least(request, microversion.REMOTE_CONSOLES):
            raise NotFound("The resource could not be found.")
        schema = schemas.REMOTE_CONSOLE_V2_8 \
            if microversion.at_least(request, microversion.MKS_CONSOLE) \
            else schemas.REMOTE_CONSOLE_V2_6
        body = await read_body(request, self.max_body, schema)
        protocol, kind = body["remote_console"]["protocol"], body["remote_console"]["type"]
        url = await self.compute.console_url(context(request), request.match_info["server_id"],
                                             protocol, kind)
        return json_response({"remote_console": {"protocol": protocol, "type": kind,
                                                 "url": url}})

    def routes(self) -> list[Route]:
        """The route, relative to a versioned mount."""
        return [Route("POST", "/servers/{server_id}/remote-consoles", self.create,
                      schema=schemas.REMOTE_CONSOLE_V2_8, tag="consoles",
                      summary="Create a remote console (2.6+; noVNC)",
                      responses={200: "The console's protocol, type and URL",
                                 400: "A console type not enabled here",
                                 404: "Below 2.6, or no such server"})]
