"""``/os-server-groups`` at 2.1: create (200), list, show, delete (204).

At 2.1 a group has a one-item ``policies`` list of ``affinity`` or
``anti-affinity``; the soft policies arrive at 2.15 and the single
``policy`` field with ``rules`` at 2.64, both above novad's maximum, so
they are refused here as Nova refuses them at 2.1.  The list pages with
``limit``/``offset`` (Nova's ``common.limited``).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from multidict import MultiMapping

from novad.api.common import Route, context, json_response
from novad.api.compute.parsing import MAX_LIMIT, limit_param, read_body
from novad.api.compute.schemas import NAME, Schema, envelope, strict
from novad.compute.server_groups import ServerGroupAPI
from novad.config import Config
from novad.errors import Invalid
from novad.store.models import ServerGroup

SERVER_GROUP_CREATE: Schema = envelope("server_group", strict({
    "name": NAME,
    "policies": {"type": "array", "items": {"type": "string",
                                            "enum": ["anti-affinity", "affinity"]},
                 "uniqueItems": True, "minItems": 1, "maxItems": 1},
}, required=["name", "policies"]))
"""Nova's 2.1-2.14 create body."""


def server_group_view(group: ServerGroup) -> dict[str, Any]:
    """A group at 2.1: ``policies`` as a list, the always-empty
    ``metadata`` Nova keeps, members' uuids; no project or user (2.13)."""
    return {"id": group.id, "name": group.name, "policies": [group.policy],
            "members": list(group.members), "metadata": {}}


def _offset_param(query: MultiMapping[str]) -> int:
    raw = query.get("offset")
    if raw is None:
        return 0
    try:
        offset = int(raw)
    except ValueError:
        raise Invalid("offset param must be an integer") from None
    if offset < 0:
        raise Invalid("offset param must be positive")
    return offset


class ServerGroupHandlers:
    """Handlers of ``/os-server-groups``."""

    def __init__(self, groups: ServerGroupAPI, config: Config) -> None:
        self.groups = groups
        self.max_body = config.DEFAULT.max_request_body_size

    async def index(self, request: web.Request) -> web.StreamResponse:
        """The caller's groups (every project's: admins with ``all_projects``,
        whatever its value, as Nova tests only its presence)."""
        offset = _offset_param(request.query)
        limit = limit_param(request.query) or MAX_LIMIT
        groups = await self.groups.list_groups(context(request),
                                               "all_projects" in request.query)
        page = groups[offset:offset + limit]
        return json_response({"server_groups": [server_group_view(g) for g in page]})

    async def create(self, request: web.Request) -> web.StreamResponse:
        """Create an empty group in the caller's project."""
        body = await read_body(request, self.max_body, SERVER_GROUP_CREATE)
        spec = body["server_group"]
        group = await self.groups.create_group(context(request), spec["name"],
                                               spec["policies"][0])
        return json_response({"server_group": server_group_view(group)})

    async def show(self, request: web.Request) -> web.StreamResponse:
        """Show one group."""
        group = await self.groups.get_group(context(request), request.match_info["id"])
        return json_response({"server_group": server_group_view(group)})

    async def delete(self, request: web.Request) -> web.StreamResponse:
        """Delete one group."""
        await self.groups.delete_group(context(request), request.match_info["id"])
        return web.Response(status=204)

    def routes(self) -> list[Route]:
        """The server-group routes, relative to a versioned mount."""
        return [
            Route("GET", "/os-server-groups", self.index, tag="server-groups"),
            Route("POST", "/os-server-groups", self.create, schema=SERVER_GROUP_CREATE,
                  tag="server-groups"),
            Route("GET", "/os-server-groups/{id}", self.show, tag="server-groups"),
            Route("DELETE", "/os-server-groups/{id}", self.delete, tag="server-groups",
                  responses={204: "Deleted"}),
        ]
