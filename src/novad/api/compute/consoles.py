"""``GET /os-console-auth-tokens/{console_token}``: what a console token grants (admin).

Nova serves only RDP tokens here below microversion 2.31; novad, which
advertises 2.1 only, answers for its noVNC tokens with Nova's body shape,
as the later microversions do.
"""

from __future__ import annotations

from typing import Protocol

from aiohttp import web

from novad.api.common import Route, context, json_response
from novad.api.compute.misc import require_admin
from novad.console.tokens import ConsoleGrant


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
        """Show a console token's instance, host and port (admin)."""
        require_admin(context(request), "os-console-auth-tokens")
        grant = await self.consoles.token_info(request.match_info["console_token"])
        return json_response({"console": {
            "instance_uuid": grant.instance_uuid, "host": grant.host, "port": grant.port,
            "internal_access_path": grant.internal_access_path}})

    def routes(self) -> list[Route]:
        """The route, relative to a versioned mount."""
        return [Route("GET", "/os-console-auth-tokens/{console_token}", self.show,
                      summary="Show console connection information", tag="consoles",
                      responses={200: "The token's instance, host and port",
                                 404: "Unknown or expired token"})]
