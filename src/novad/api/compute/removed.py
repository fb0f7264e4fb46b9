"""APIs Nova answers 410 Gone for, because the service behind them is gone.

``os-fixed-ips`` belonged to nova-network, which Nova removed: show and the
reserve/unreserve actions answer 410 at every microversion, so the 2.4
delta (``reserved`` in the fixed IP) is never visible.  So is
``os-virtual-interfaces`` (nova-network's VIFs), so the 2.12 delta (each
VIF's ``net_id``) is never visible either.  novad, which has no network
service, answers the same.
"""

from __future__ import annotations

from aiohttp import web

from novad.api.common import Route, context
from novad.errors import Gone


async def gone(request: web.Request) -> web.StreamResponse:
    """410: this API was removed from Nova (with nova-network)."""
    context(request)
    raise Gone()


def routes() -> list[Route]:
    """The removed routes, relative to a versioned mount."""
    answer = {410: "Removed with nova-network, as in Nova"}
    return [Route("GET", "/os-fixed-ips/{fixed_ip}", gone, tag="fixed ips (removed)",
                  summary="Show a fixed IP (410: removed)", responses=answer),
            Route("POST", "/os-fixed-ips/{fixed_ip}/action", gone, tag="fixed ips (removed)",
                  summary="Reserve or unreserve a fixed IP (410: removed)", responses=answer),
            Route("GET", "/servers/{server_id}/os-virtual-interfaces", gone,
                  tag="virtual interfaces (removed)",
                  summary="List a server's virtual interfaces (410: removed)", responses=answer)]
