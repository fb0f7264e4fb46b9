"""Nova's network proxy look-ups below microversion 2.36: ``/os-networks``
and ``/os-tenant-networks``, list and show (404 from 2.36, with the other
proxy APIs).

Nova answers them from Neutron.  novad's guests get one user-mode network
that has no id and no record, so there is no network to list: the lists
are empty and any id is Nova's 404 for a network that does not exist.
Clients that resolve a ``net-id`` through these (``openstack server create
--nic net-id=...`` with no network endpoint) thus learn at once that the
network is unknown.
"""

from __future__ import annotations

from aiohttp import web

from novad.api import microversion
from novad.api.common import Route, context, json_response
from novad.errors import NotFound


def proxy_served(request: web.Request) -> None:
    """404 from 2.36, where Nova's proxy APIs went."""
    if microversion.at_least(request, microversion.PROXY_APIS_GONE):
        raise NotFound("The resource could not be found.")


async def index(request: web.Request) -> web.StreamResponse:
    """List the networks (below 2.36): none has a record here."""
    context(request)
    proxy_served(request)
    return json_response({"networks": []})


async def show(request: web.Request) -> web.StreamResponse:
    """Show a network (below 2.36): 404, none has a record here."""
    context(request)
    proxy_served(request)
    raise NotFound("Network not found")


def routes() -> list[Route]:
    """The network proxy routes, relative to a versioned mount."""
    found: list[Route] = []
    for path in ("/os-networks", "/os-tenant-networks"):
        tag = f"{path[1:]} (below 2.36)"
        found += [Route("GET", path, index, tag=tag),
                  Route("GET", path + "/{network_id}", show, tag=tag,
                        responses={404: "No such network"})]
    return found
