"""Compute version discovery: ``GET /compute`` and ``GET /compute/v2.1`` (public).

The SDK reads ``version`` of the v2.1 document as our maximum microversion
and never asks for more (``openstack-clients.md``, Compute).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from novad.api.common import Route, json_response
from novad.api.compute.views import Links
from novad.api.microversion import MAX_MICROVERSION, MIN_MICROVERSION
from novad.config import Config

V21_UPDATED = "2013-07-23T11:33:21Z"
V20_UPDATED = "2011-01-21T11:33:21Z"


def v21_document(links: Links) -> dict[str, Any]:
    """The v2.1 version object with Nova's links and media types."""
    return {
        "id": "v2.1", "status": "CURRENT", "version": MAX_MICROVERSION,
        "min_version": MIN_MICROVERSION, "updated": V21_UPDATED,
        "links": [{"rel": "self", "href": f"{links.api}/"},
                  {"rel": "describedby", "type": "text/html",
                   "href": "http://docs.openstack.org/"}],
        "media-types": [{"base": "application/json",
                         "type": "application/vnd.openstack.compute+json;version=2.1"}],
    }


def versions_document(links: Links) -> dict[str, Any]:
    """``GET /compute``: the legacy v2.0 entry and v2.1, as Nova lists them."""
    return {"versions": [
        {"id": "v2.0", "status": "SUPPORTED", "version": "", "min_version": "",
         "updated": V20_UPDATED, "links": [{"rel": "self", "href": f"{links.root}/v2/"}]},
        {"id": "v2.1", "status": "CURRENT", "version": MAX_MICROVERSION,
         "min_version": MIN_MICROVERSION, "updated": V21_UPDATED,
         "links": [{"rel": "self", "href": f"{links.api}/"}]},
    ]}


class VersionHandlers:
    """Handlers of the two version documents."""

    def __init__(self, config: Config) -> None:
        self.config = config

    async def versions(self, request: web.Request) -> web.StreamResponse:
        """List the Compute API versions."""
        return json_response(versions_document(Links.of(request, self.config)))

    async def v21(self, request: web.Request) -> web.StreamResponse:
        """Describe Compute API v2.1 and its microversion range."""
        return json_response({"version": v21_document(Links.of(request, self.config))})

    def root_routes(self) -> list[Route]:
        """Routes outside the versioned mounts."""
        return [Route("GET", "/compute", self.versions, public=True, tag="versions",
                      responses={200: "The versions of the Compute API"})]

    def routes(self) -> list[Route]:
        """Routes relative to a versioned mount (``""`` is the mount itself)."""
        return [Route("GET", "", self.v21, public=True, tag="versions",
                      responses={200: "The v2.1 version document"})]
