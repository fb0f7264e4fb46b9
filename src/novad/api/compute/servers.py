"""``/servers``: create, list, show, rename, delete, and server metadata.

Handlers parse the request, call :class:`~novad.compute.interface.ComputeAPI`
and render a view; every rule about states, quotas or visibility lives in
the compute service.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web
from multidict import MultiMapping

from novad.api import microversion
from novad.api.common import PLACED, REPLICA, Route, context, json_response
from novad.api.compute import schemas
from novad.api.compute.parsing import (
    bool_param,
    check_user_data,
    generate_password,
    limit_param,
    read_body,
    regex_param,
    strict_bool,
    time_param,
    to_bool,
    to_int,
)
from novad.api.compute.views import Links, addresses, server_brief, server_detail
from novad.api.compute.protocols import NodeInfo
from novad.compute.hosts import ComputeHost, host_status
from novad.compute.interface import ComputeAPI, CreateRequest, ListFilters
from novad.config import Config
from novad.context import RequestContext
from novad.errors import Forbidden, Invalid, NotFound
from novad.states.status import status_of
from novad.store.models import Instance

MAX_METADATA_ITEMS = 128
"""Nova's ``[quota] metadata_items`` (also shown by /limits)."""

_BDM_ONLY_IMAGE = ("Block Device Mapping is Invalid: this node boots only from an image "
                   "(source_type image, destination_type local, boot_index 0).")


# -- request parsing (pure functions) ---------------------------------------------

def _canonical_uuid(value: str) -> str:
    return str(uuid.UUID(value))


def boot_image(server: Mapping[str, Any]) -> str:
    """The image to boot: ``imageRef``, or the image of the boot block device.

    Only image→local boot devices are supported; volumes and extra disks
    are refused with 400 rather than ignored.
    """
    bdms = server.get("block_device_mapping_v2") or []
    for bdm in bdms:
        if (bdm.get("source_type") != "image" or bdm.get("destination_type", "local") != "local"
                or str(bdm.get("boot_index")) != "0"):
            raise Invalid(_BDM_ONLY_IMAGE)
    if len(bdms) > 1:
        raise Invalid(_BDM_ONLY_IMAGE)
    image = server.get("imageRef") or ""
    if not image and bdms:
        image = bdms[0].get("uuid") or bdms[0].get("image_id") or ""
        if not image:
            raise Invalid(_BDM_ONLY_IMAGE)
    if not image:
        raise Invalid("Missing imageRef attribute")
    try:
        return _canonical_uuid(image)
    except ValueError:
        raise Invalid(f"Invalid imageRef provided: {image}") from None


def check_metadata(metadata: Mapping[str, str]) -> None:
    """Nova's metadata quota (403) on top of the schema's key/value rules."""
    if len(metadata) > MAX_METADATA_ITEMS:
        raise Forbidden(f"Maximum number of metadata items exceeds {MAX_METADATA_ITEMS}")


def checked(metadata: dict[str, str]) -> dict[str, str]:
    """``metadata`` once :func:`check_metadata` passes it."""
    check_metadata(metadata)
    return metadata


def create_request(server: Mapping[str, Any]) -> CreateRequest:
    """A schema-valid ``server`` object as a :class:`CreateRequest`."""
    min_count = to_int(server.get("min_count", 1))
    max_count = to_int(server.get("max_count", min_count))
    if min_count > max_count:
        raise Invalid("min_count must be <= max_count")
    user_data = server.get("user_data")
    if user_data is not None:
        check_user_data(user_data)
    metadata = server.get("metadata") or {}
    check_metadata(metadata)
    return CreateRequest(
        name=server["name"], flavor_id=str(server["flavorRef"]), image_id=boot_image(server),
        min_count=min_count, max_count=max_count, key_name=server.get("key_name"),
        user_data=user_data, metadata=dict(metadata), networks=server.get("networks"),
        config_drive=to_bool(server.get("config_drive", False)),
        availability_zone=server.get("availability_zone"),
        admin_pass=server.get("adminPass") or generate_password(),
        description=server.get("description"), tags=tuple(server.get("tags") or ()))


TAG_FILTERS = {"tags": "tags", "tags-any": "tags_any", "not-tags": "not_tags",
               "not-tags-any": "not_tags_any"}
"""2.26's list filters (comma-separated tags) and their ListFilters fields."""


def tag_filters(query: MultiMapping[str], version: tuple[int, int]) -> dict[str, Any]:
    """The tag filters of a list query as ListFilters fields: from 2.26 (below,
    as every unknown parameter, ignored)."""
    if version < microversion.SERVER_TAGS.key:
        return {}
    return {field: tuple(query[name].split(",")) for name, field in TAG_FILTERS.items()
            if name in query}


def list_filters(query: MultiMapping[str], ctx: RequestContext,
                 version: tuple[int, int] = microversion.BASE.key) -> ListFilters:
    """``GET /servers`` query as Nova reads it at 2.1: unknown parameters are
    ignored, admin-only ones are ignored for others, all_tenants is 403 for them;
    from 2.26 the tag filters apply."""
    all_tenants = False
    if "all_tenants" in query:
        raw = query["all_tenants"]
        all_tenants = strict_bool(raw, "all_tenants") if raw else True
        if all_tenants and not ctx.is_admin:
            raise Forbidden("Policy doesn't allow os_compute_api:servers:detail:"
                            "get_all_tenants to be performed.")
    admin = ctx.is_admin
    project = (query.get("project_id") or query.get("tenant_id")) if admin and all_tenants \
        else None
    return ListFilters(
        name=regex_param(query.get("name"), "name"), status=query.get("status"),
        changes_since=time_param(query.get("changes-since"), "changes-since"),
        limit=limit_param(query), marker=query.get("marker"), all_tenants=all_tenants,
        project_id=project, host=query.get("host") if admin else None,
        deleted=bool_param(query.get("deleted")) if admin else False,
        **tag_filters(query, version))


def ip6_filter(query: MultiMapping[str], ctx: RequestContext,
               version: tuple[int, int]) -> str | None:
    """The ``ip6`` regex the list is filtered by: admins' always, others'
    from 2.5 (Nova ignored it for them before)."""
    value = query.get("ip6")
    if value is None or not (ctx.is_admin or version >= microversion.IP6_FILTER.key):
        return None
    return value


def has_ip6(inst: Instance, pattern: str) -> bool:
    """Whether one of the server's IPv6 addresses matches ``pattern`` (as
    Nova's ``ip6`` filter, a regular expression searched in each)."""
    try:
        regex = re.compile(pattern)
    except re.error:
        return False
    return any(a.get("version") == 6 and regex.search(str(a.get("addr", "")))
               for network in addresses(inst).values() for a in network)


# -- handlers ---------------------------------------------------------------------

class ServerHandlers:
    """Handlers of ``/servers`` and ``/servers/{id}/metadata``."""

    def __init__(self, compute: ComputeAPI, config: Config,
                 node: NodeInfo | None = None) -> None:
        self.compute = compute
        self.config = config
        self.node = node
        self.max_body = config.DEFAULT.max_request_body_size

    async def _hosts(self, request: web.Request, ctx: RequestContext
                     ) -> dict[str, ComputeHost] | None:
        """The cluster's hosts by name when the response shows ``host_status``
        (2.16, admins as Nova's default policy); None otherwise."""
        if self.node is None or not ctx.is_admin \
                or not microversion.at_least(request, microversion.HOST_STATUS):
            return None
        return {h.name: h for h in await self.node.hosts.list_hosts()}

    async def _detail(self, request: web.Request, ctx: RequestContext, inst: Instance,
                      hosts: dict[str, ComputeHost] | None = None) -> dict[str, Any]:
        fault = None
        if status_of(inst.vm_state, inst.task_state, inst.deleted) in ("ERROR", "DELETED"):
            fault = await self.compute.fault(inst)
        return server_detail(inst, Links.of(request, self.config), ctx, fault,
                             version=microversion.of(request),
                             host_status=None if hosts is None else host_status(hosts, inst.host))

    async def index(self, request: web.Request) -> web.StreamResponse:
        """List servers (id, name, links)."""
        return await self._list(request, detail=False)

    async def detail(self, request: web.Request) -> web.StreamResponse:
        """List servers with details."""
        return await self._list(request, detail=True)

    async def _list(self, request: web.Request, detail: bool) -> web.StreamResponse:
        ctx = context(request)
        filters = list_filters(request.query, ctx, microversion.of(request))
        found = await self.compute.list_servers(ctx, filters)
        ip6 = ip6_filter(request.query, ctx, microversion.of(request))
        if ip6 is not None:
            found = [inst for inst in found if has_ip6(inst, ip6)]
        links = Links.of(request, self.config)
        if detail:
            hosts = await self._hosts(request, ctx)
            items = [await self._detail(request, ctx, inst, hosts) for inst in found]
        else:
            items = [server_brief(inst, links) for inst in found]
        body: dict[str, Any] = {"servers": items}
        if found and filters.limit is not None and len(found) >= filters.limit:
            collection = "servers/detail" if detail else "servers"
            body["servers_links"] = links.next_page(collection, request.query.items(),
                                                    found[-1].uuid)
        return json_response(body)

    async def create(self, request: web.Request) -> web.StreamResponse:
        """Create one or more servers (202; the boot goes on in the background)."""
        ctx = context(request)
        body = await read_body(request, self.max_body, self._create_schema(request))
        req = create_request(body["server"])
        hints = body.get("os:scheduler_hints") or body.get("OS-SCH-HNT:scheduler_hints") or {}
        if hints.get("group"):
            req = dataclasses.replace(req, group=str(hints["group"]))
        placed = request.get(PLACED)
        if placed is not None:
            req = dataclasses.replace(req, claim=placed.claim, no_valid_host=placed.no_valid_host)
        created = await self.compute.create(ctx, req)
        first = created[0]
        if to_bool(body["server"].get("return_reservation_id", False)):
            return json_response({"reservation_id": first.reservation_id}, status=202)
        links = Links.of(request, self.config)
        server: dict[str, Any] = {"id": first.uuid, "links": links.pair("servers", first.uuid),
                                  "OS-DCF:diskConfig": "MANUAL",
                                  "security_groups": [{"name": "default"}]}
        if self.config.api.enable_instance_password:
            server["adminPass"] = req.admin_pass
        return json_response({"server": server}, status=202,
                             headers={"Location": links.self_href("servers", first.uuid)})

    async def show(self, request: web.Request) -> web.StreamResponse:
        """Show one server (another node's, while it is down: as last replicated)."""
        ctx = context(request)
        inst = await self.compute.get(ctx, request.match_info["server_id"],
                                      replica=request.get(REPLICA, False))
        return json_response({"server": await self._detail(
            request, ctx, inst, await self._hosts(request, ctx))})

    @staticmethod
    def _create_schema(request: web.Request) -> schemas.Schema:
        """The create body's schema at the request's version: ``description``
        from 2.19, ``tags`` from 2.52."""
        if microversion.at_least(request, microversion.TAGS_ON_CREATE):
            return schemas.SERVER_CREATE_V2_52
        if microversion.at_least(request, microversion.SERVER_DESCRIPTION):
            return schemas.SERVER_CREATE_V2_19
        return schemas.SERVER_CREATE

    @staticmethod
    def _described(request: web.Request) -> bool:
        return microversion.at_least(request, microversion.SERVER_DESCRIPTION)

    async def update(self, request: web.Request) -> web.StreamResponse:
        """Rename a server; from 2.19 also set or clear its ``description``."""
        ctx = context(request)
        described = self._described(request)
        body = await read_body(request, self.max_body, schemas.SERVER_UPDATE_V2_19
                               if described else schemas.SERVER_UPDATE)
        server = body["server"]
        inst = await self.compute.update(ctx, request.match_info["server_id"], server.get("name"),
                                         server.get("description"),
                                         set_description=described and "description" in server)
        return json_response({"server": await self._detail(request, ctx, inst)})

    async def delete(self, request: web.Request) -> web.StreamResponse:
        """Delete a server (soft delete when reclaim_instance_interval > 0)."""
        await self.compute.delete(context(request), request.match_info["server_id"])
        return web.Response(status=204)

    # -- metadata -----------------------------------------------------------------

    async def _edit_metadata(self, request: web.Request, verb: str,
                             edit: Callable[[dict[str, str]], dict[str, str]]) -> dict[str, str]:
        return await self.compute.edit_metadata(context(request),
                                                request.match_info["server_id"], verb, edit)

    async def _metadata(self, request: web.Request) -> dict[str, str]:
        inst = await self.compute.get(context(request), request.match_info["server_id"])
        return dict(inst.metadata)

    async def metadata_index(self, request: web.Request) -> web.StreamResponse:
        """Show all metadata of a server."""
        return json_response({"metadata": await self._metadata(request)})

    async def metadata_merge(self, request: web.Request) -> web.StreamResponse:
        """Add or overwrite metadata items; returns all of them."""
        body = await read_body(request, self.max_body, schemas.METADATA_SET)
        return json_response({"metadata": await self._edit_metadata(
            request, "update", lambda current: checked({**current, **body["metadata"]}))})

    async def metadata_replace(self, request: web.Request) -> web.StreamResponse:
        """Replace all metadata of a server."""
        body = await read_body(request, self.max_body, schemas.METADATA_SET)
        return json_response({"metadata": await self._edit_metadata(
            request, "update", lambda _current: checked(dict(body["metadata"])))})

    async def metadata_show(self, request: web.Request) -> web.StreamResponse:
        """Show one metadata item."""
        key = request.match_info["key"]
        metadata = await self._metadata(request)
        if key not in metadata:
            raise NotFound("Metadata item was not found")
        return json_response({"meta": {key: metadata[key]}})

    async def metadata_put(self, request: web.Request) -> web.StreamResponse:
        """Set one metadata item; the body's key must be the URL's."""
        key = request.match_info["key"]
        body = await read_body(request, self.max_body, schemas.METADATA_ITEM)
        if key not in body["meta"]:
            raise Invalid("Request body and URI mismatch")
        value = body["meta"][key]
        await self._edit_metadata(request, "update",
                                  lambda current: checked({**current, key: value}))
        return json_response({"meta": {key: value}})

    async def metadata_delete(self, request: web.Request) -> web.StreamResponse:
        """Delete one metadata item."""
        key = request.match_info["key"]

        def without(current: dict[str, str]) -> dict[str, str]:
            if current.pop(key, None) is None:
                raise NotFound("Metadata item was not found")
            return current

        await self._edit_metadata(request, "delete", without)
        return web.Response(status=204)

    def routes(self) -> list[Route]:
        """The server routes, relative to a versioned mount."""
        one, meta = "/servers/{server_id}", "/servers/{server_id}/metadata"
        return [
            Route("GET", "/servers", self.index, tag="servers"),
            Route("GET", "/servers/detail", self.detail, tag="servers"),
            Route("POST", "/servers", self.create, schema=schemas.SERVER_CREATE,
                  tag="servers", responses={202: "Accepted; Location names the server"}),
            Route("GET", one, self.show, tag="servers"),
            Route("PUT", one, self.update, schema=schemas.SERVER_UPDATE, tag="servers"),
            Route("DELETE", one, self.delete, tag="servers", responses={204: "Deleting"}),
            Route("GET", meta, self.metadata_index, tag="server metadata"),
            Route("POST", meta, self.metadata_merge, schema=schemas.METADATA_SET,
                  tag="server metadata"),
            Route("PUT", meta, self.metadata_replace, schema=schemas.METADATA_SET,
                  tag="server metadata"),
            Route("GET", meta + "/{key}", self.metadata_show, tag="server metadata"),
            Route("PUT", meta + "/{key}", self.metadata_put, schema=schemas.METADATA_ITEM,
                  tag="server metadata"),
            Route("DELETE", meta + "/{key}", self.metadata_delete, tag="server metadata",
                  responses={204: "Deleted"}),
        ]
