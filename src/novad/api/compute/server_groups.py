"""``/os-server-groups``: create (200), list, show, delete (204).

At 2.1 a group has a one-item ``policies`` list of ``affinity`` or
``anti-affinity``; 2.13 shows its ``project_id`` and ``user_id``; 2.15
accepts ``soft-affinity`` and ``soft-anti-affinity`` (the scheduler's soft
weighers place their members).  The single ``policy`` field with
``rules`` (2.64, ``max_server_per_host`` for anti-affinity, which the
scheduler's anti-affinity filter enforces) replaces them from 2.64.  A group created with a soft
policy still shows at 2.1, as in Nova.  The list pages with
``limit``/``offset`` (Nova's ``common.limited``).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from multidict import MultiMapping

from novad.api import microversion
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

SERVER_GROUP_CREATE_V2_15: Schema = envelope("server_group", strict({
    "name": NAME,
    "policies": {"type": "array", "items": {"type": "string", "enum": [
        "anti-affinity", "affinity", "soft-anti-affinity", "soft-affinity"]},
                 "uniqueItems": True, "minItems": 1, "maxItems": 1},
}, required=["name", "policies"]))
"""2.15-2.63: the soft policies too."""

SERVER_GROUP_CREATE_V2_64: Schema = envelope("server_group", strict({
    "name": NAME,
    "policy": {"type": "string", "enum": [
        "anti-affinity", "affinity", "soft-anti-affinity", "soft-affinity"]},
    "rules": strict({"max_server_per_host": {"type": ["integer", "string"],
                                             "pattern": "^[0-9]*$", "minimum": 1,
                                             "minLength": 1}}),
}, required=["name", "policy"]))
"""2.64: one ``policy`` and its ``rules`` replace ``policies``."""


def server_group_view(group: ServerGroup, version: tuple[int, int] = microversion.BASE.key
                      ) -> dict[str, Any]:
    """A group: ``policies`` as a list, the always-empty ``metadata`` Nova
    keeps, members' uuids; from 2.13 its ``project_id`` and ``user_id``;
    from 2.64 one ``policy`` and its ``rules`` instead of ``policies`` and
    ``metadata``."""
    body: dict[str, Any] = {"id": group.id, "name": group.name}
    if version >= microversion.GROUP_POLICY_RULES.key:
        body.update(policy=group.policy, rules=dict(group.rules),
                    members=list(group.members))
    else:
        body.update(policies=[group.policy], members=list(group.members), metadata={})
    if version >= microversion.SERVER_GROUP_OWNER.key:
        body["project_id"] = group.project_id
        body["user_id"] = group.user_id
    return body


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
        version = microversion.of(request)
        return json_response({"server_groups": [server_group_view(g, version) for g in page]})

    async def create(self, request: web.Request) -> web.StreamResponse:
        """Create an empty group in the caller's project."""
        if microversion.at_least(request, microversion.GROUP_POLICY_RULES):
            body = await read_body(request, self.max_body, SERVER_GROUP_CREATE_V2_64)
            spec = body["server_group"]
            policy, rules = spec["policy"], {k: int(v) for k, v in
                                             (spec.get("rules") or {}).items()}
            if any(v < 1 for v in rules.values()):  # "0" as a string passes the schema
                raise Invalid("Invalid input for field/attribute max_server_per_host. "
                              "Value: 0. 0 is less than the minimum of 1")
        else:
            soft = microversion.at_least(request, microversion.SOFT_AFFINITY)
            body = await read_body(request, self.max_body,
                                   SERVER_GROUP_CREATE_V2_15 if soft else SERVER_GROUP_CREATE)
            spec = body["server_group"]
            policy, rules = spec["policies"][0], {}
        group = await self.groups.create_group(context(request), spec["name"], policy, rules)
        return json_response({"server_group": server_group_view(
            group, microversion.of(request))})

    async def show(self, request: web.Request) -> web.StreamResponse:
        """Show one group."""
        group = await self.groups.get_group(context(request), request.match_info["id"])
        return json_response({"server_group": server_group_view(
            group, microversion.of(request))})

    async def delete(self, request: web.Request) -> web.StreamResponse:
        """Delete one group."""
        await self.groups.delete_group(context(request), request.match_info["id"])
        return web.Response(status=204)

    def routes(self) -> list[Route]:
        """The server-group routes, relative to a versioned mount."""
        return [
            Route("GET", "/os-server-groups", self.index, tag="server-groups"),
            Route("POST", "/os-server-groups", self.create, schema=SERVER_GROUP_CREATE_V2_15,
                  tag="server-groups"),
            Route("GET", "/os-server-groups/{id}", self.show, tag="server-groups"),
            Route("DELETE", "/os-server-groups/{id}", self.delete, tag="server-groups",
                  responses={204: "Deleted"}),
        ]
