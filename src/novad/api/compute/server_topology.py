"""``GET /servers/{id}/topology`` (2.78): the guest's NUMA topology.

novad's driver gives no guest a NUMA topology (it pins no CPUs and places no
memory: the flavor's ``hw:`` NUMA specs are not applied), so every server
answers as Nova answers for an instance without one: no nodes and no page
size.  Below 2.78 the route is 404, as Nova.
"""

from __future__ import annotations

from aiohttp import web

from novad.api import microversion
from novad.api.common import Route, context, json_response
from novad.compute.interface import ComputeAPI
from novad.errors import NotFound


class ServerTopologyHandlers:
    """Handler of ``/servers/{server_id}/topology``."""

    def __init__(self, compute: ComputeAPI) -> None:
        self.compute = compute

    async def index(self, request: web.Request) -> web.StreamResponse:
        """Show a visible server's NUMA topology (2.78): always none here."""
        if not microversion.at_least(request, microversion.SERVER_TOPOLOGY):
            raise NotFound("The resource could not be found.")
        await self.compute.get(context(request), request.match_info["server_id"])
        return json_response({"nodes": [], "pagesize_kb": None})

    def routes(self) -> list[Route]:
        """The topology route, relative to a versioned mount."""
        return [Route("GET", "/servers/{server_id}/topology", self.index,
                      tag="server topology",
                      summary="Show a server's NUMA topology (2.78; none here)")]
