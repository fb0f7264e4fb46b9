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
    access_ips,
    bool_param,
    check_user_data,
    generate_password,
    limit_param,
    personality_files,
    read_body,
    regex_param,
    strict_bool,
    time_param,
    to_bool,
    to_int,
)
from novad.api.compute.views import (
    Links,
    addresses,
    server_brief,
    server_changed,
    server_detail,
    server_unreachable,
)
from novad.api.compute.protocols import NodeInfo
from novad.compute.hosts import HostStatuses
from novad.compute.interface import ComputeAPI, CreateRequest, ListFilters
from novad.config import Config
from novad.context import RequestContext
from novad.errors import Forbidden, Invalid, NotFound
from novad.states.status import states_for_status, status_of
from novad.store.models import FaultRecord, Instance
from novad.strutils import parse_bool

MAX_METADATA_ITEMS = 128
"""Nova's ``[quota] metadata_items`` (also shown by /limits)."""

_VOLUME_TYPE_LOCAL = ("Block Device Mapping is Invalid: Specifying a volume_type with "
                      "destination_type=local is not supported.")

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
        if bdm.get("volume_type") and bdm.get("destination_type", "local") == "local":
            raise Invalid(_VOLUME_TYPE_LOCAL)  # 2.67, in Nova's words
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


def check_security_groups(server: Mapping[str, Any]) -> None:
    """Nova looks each requested group up in the network service, except
    ``default``, which it lets through unchecked; novad's network side has no
    security groups, so any other name is Nova's 400.  An item without a
    name (the schema allows ``{}``) names no group, and Nova skips it."""
    for group in server.get("security_groups") or ():
        name = group.get("name")
        if name and name != "default":
            raise Invalid(f"Security group {name} not found.")


def requested_networks(networks: Any) -> Any:
    """A schema-valid ``networks`` value as novad can honour it: omitted, ``[]``,
    ``auto`` (the guest's one user-mode NIC) or ``none`` (no NIC).  novad runs no
    network service, so any network or port named is refused with the 400 Nova
    gives for one that does not exist (or for a malformed item)."""
    if not isinstance(networks, list):
        return networks
    for item in networks:
        if item.get("port"):
            raise Invalid(f"Port id {item['port']} could not be found.")
        if "uuid" not in item:
            raise Invalid("Bad network format: missing 'uuid'")
        net_id = item["uuid"]
        try:
            _canonical_uuid(net_id)
        except ValueError:
            raise Invalid("Bad networks format: network uuid is not in proper format "
                          f"({net_id})") from None
        raise Invalid(f"Network {net_id} could not be found.")
    return networks


def create_request(server: Mapping[str, Any]) -> CreateRequest:
    """A schema-valid ``server`` object as a :class:`CreateRequest`."""
    check_security_groups(server)
    min_count = to_int(server.get("min_count", 1))
    max_count = to_int(server.get("max_count", min_count))
    if min_count > max_count:
        raise Invalid("min_count must be <= max_count")
    user_data = server.get("user_data")
    if user_data is not None:
        check_user_data(user_data)
    metadata = server.get("metadata") or {}
    check_metadata(metadata)
    if server.get("hostname") and max_count > 1:
        raise Invalid("Unable to set the same hostname on multiple instances: create them "
                      "one by one, or leave hostname out.")
    ips = access_ips(server)
    return CreateRequest(
        name=server["name"], flavor_id=str(server["flavorRef"]), image_id=boot_image(server),
        min_count=min_count, max_count=max_count, key_name=server.get("key_name"),
        user_data=user_data, metadata=dict(metadata),
        networks=requested_networks(server.get("networks")),
        config_drive=to_bool(server.get("config_drive", False)),
        availability_zone=server.get("availability_zone"),
        admin_pass=server.get("adminPass") or generate_password(),
        description=server.get("description"), access_ip_v4=ips.get("access_ip_v4"),
        access_ip_v6=ips.get("access_ip_v6"), hostname=server.get("hostname"),
        disk_config=server.get("OS-DCF:diskConfig", "MANUAL"),
        tags=tuple(server.get("tags") or ()),
        files=personality_files(server.get("personality") or []),
        trusted_certs=tuple(server["trusted_image_certificates"])
        if server.get("trusted_image_certificates") else None)


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


_BOOL_VALUES = "'0', '1', 'f', 'false', 'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes'"


def changes_window(query: MultiMapping[str], version: tuple[int, int]
                   ) -> tuple[str | None, str | None]:
    """``changes-since`` and, from 2.66, ``changes-before`` (below it ignored,
    as every unknown parameter); 400 when before is earlier than since."""
    since = time_param(query.get("changes-since"), "changes-since")
    if version < microversion.CHANGES_BEFORE.key:
        return since, None
    before = time_param(query.get("changes-before"), "changes-before")
    if since is not None and before is not None and before < since:
        raise Invalid("The value of changes-since must be less than or equal to "
                      "changes-before.")
    return since, before


def lock_filters(query: MultiMapping[str], version: tuple[int, int]) -> dict[str, Any]:
    """2.73's ``locked`` filter (a strict boolean) and ``sort_key=locked``
    as ListFilters fields; below 2.73 both are ignored."""
    if version < microversion.LOCK_REASON.key:
        return {}
    fields: dict[str, Any] = {}
    if "locked" in query:
        raw = query["locked"]
        parsed = parse_bool(raw)
        if parsed is None:
            raise Invalid(f"Unrecognized value '{raw}', acceptable values are: {_BOOL_VALUES}")
        fields["locked"] = parsed
    keys = query.getall("sort_key", [])
    if keys and keys[0] == "locked":
        directions = query.getall("sort_dir", [])
        fields["sort_locked"] = "asc" if directions and directions[0] == "asc" else "desc"
    return fields


LIST_PARAMS = frozenset({
    "user_id", "project_id", "tenant_id", "launch_index", "image_ref", "image", "kernel_id",
    "ramdisk_id", "hostname", "key_name", "power_state", "vm_state", "task_state", "host",
    "node", "flavor", "reservation_id", "launched_at", "terminated_at", "availability_zone",
    "name", "display_name", "description", "display_description", "locked_by", "uuid",
    "root_device_name", "config_drive", "access_ip_v4", "access_ip_v6", "auto_disk_config",
    "progress", "sort_key", "sort_dir", "all_tenants", "soft_deleted", "deleted", "status",
    "changes-since", "ip", "ip6", "created_at", "block_device_mapping", "services",
    "metadata", "system_metadata", "info_cache", "security_groups", "pci_devices", "limit",
    "marker", "tags", "tags-any", "not-tags", "not-tags-any", "changes-before", "locked"})
"""The query parameters Nova's server list knows (its 2.73 schema), the only
ones it accepts from 2.75."""

SORT_KEYS = frozenset({
    "access_ip_v4", "access_ip_v6", "auto_disk_config", "availability_zone", "config_drive",
    "created_at", "display_description", "display_name", "host", "hostname", "image_ref",
    "instance_type_id", "kernel_id", "key_name", "launch_index", "launched_at", "locked",
    "locked_by", "node", "power_state", "progress", "project_id", "ramdisk_id",
    "root_device_name", "task_state", "terminated_at", "updated_at", "user_id", "uuid",
    "vm_state"})
"""The sort keys Nova's server list accepts from 2.75 (the ones it ignored
before are refused)."""


def check_list_params(query: MultiMapping[str], version: tuple[int, int]) -> None:
    """2.75: an unknown query parameter or sort key of the server list is 400
    (Nova's schema wording); below 2.75 they are ignored."""
    if version < microversion.STRICT_PARAMS.key:
        return
    for name in query:
        if name not in LIST_PARAMS:
            raise Invalid(f"Additional properties are not allowed ('{name}' was unexpected)")
    for key in query.getall("sort_key", []):
        if key not in SORT_KEYS:
            known = ", ".join(f"'{k}'" for k in sorted(SORT_KEYS))
            raise Invalid(f"Invalid input for query parameters sort_key. Value: {key}. "
                          f"'{key}' is not one of [{known}]")


def status_filter(query: MultiMapping[str], version: tuple[int, int]) -> str | None:
    """The ``status`` the list is filtered by; one no server can have is 400
    from 2.38 (below, as in Nova, it simply matches nothing)."""
    status = query.get("status")
    if status is not None and not states_for_status(status) \
            and version >= microversion.STATUS_FILTER_STRICT.key:
        raise Invalid("Invalid status value")
    return status


ATTRIBUTE_FILTERS = ("availability_zone", "config_drive", "key_name", "created_at",
                     "launched_at", "terminated_at", "power_state", "task_state", "vm_state",
                     "progress", "user_id")
"""Filters Nova lets admins use, and from 2.83 everyone (below, ignored for
others, as Nova drops them)."""


def attribute_filters(query: MultiMapping[str], ctx: RequestContext,
                      version: tuple[int, int]) -> dict[str, tuple[str, ...]]:
    """The attribute filters of a list query, by Instance field; each may be
    repeated (any of the values matches).  ``config_drive`` is a boolean."""
    if not (ctx.is_admin or version >= microversion.USER_FILTERS.key):
        return {}
    found = {name: tuple(query.getall(name)) for name in ATTRIBUTE_FILTERS if name in query}
    if "config_drive" in found:
        found["config_drive"] = tuple(str(bool_param(v)) for v in found["config_drive"])
    return found


def list_filters(query: MultiMapping[str], ctx: RequestContext,
                 version: tuple[int, int] = microversion.BASE.key) -> ListFilters:
    """``GET /servers`` query as Nova reads it at 2.1: unknown parameters are
    ignored, admin-only ones are ignored for others, all_tenants is 403 for them;
    from 2.26 the tag filters apply."""
    check_list_params(query, version)
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
    since, before = changes_window(query, version)
    return ListFilters(
        name=regex_param(query.get("name"), "name"), status=status_filter(query, version),
        changes_since=since, changes_before=before, **lock_filters(query, version),
        limit=limit_param(query), marker=query.get("marker"), all_tenants=all_tenants,
        project_id=project, host=query.get("host") if admin else None,
        deleted=bool_param(query.get("deleted")) if admin else False,
        image=_last_segment(query.get("image")), flavor=_last_segment(query.get("flavor")),
        attributes=attribute_filters(query, ctx, version), **tag_filters(query, version))


def _last_segment(value: str | None) -> str | None:
    """An id given as itself or as a link to it (Nova takes both for the
    ``image`` and ``flavor`` filters)."""
    return None if value is None else value.rstrip("/").rsplit("/", 1)[-1]


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

    async def _hosts(self, request: web.Request, ctx: RequestContext) -> HostStatuses | None:
        """The cluster's hosts when the response shows ``host_status`` (2.16,
        admins as Nova's default policy); None otherwise."""
        if self.node is None or not ctx.is_admin \
                or not microversion.at_least(request, microversion.HOST_STATUS):
            return None
        return HostStatuses(await self.node.hosts.list_hosts())

    async def _fault(self, inst: Instance) -> FaultRecord | None:
        if status_of(inst.vm_state, inst.task_state, inst.deleted) in ("ERROR", "DELETED"):
            return await self.compute.fault(inst)
        return None

    async def _detail(self, request: web.Request, ctx: RequestContext, inst: Instance,
                      hosts: HostStatuses | None = None, *,
                      groups: bool = False, links: Links | None = None) -> dict[str, Any]:
        """The full server body; ``groups``: with 2.71's ``server_groups``
        (show, update and rebuild); ``links``: the request's, when a listing
        has them already."""
        fault = await self._fault(inst)
        return server_detail(inst, links or Links.of(request, self.config), ctx, fault,
                             version=microversion.of(request),
                             host_status=None if hosts is None else hosts.status(inst.host),
                             server_groups=await self._groups(request, ctx, inst, groups))

    async def _groups(self, request: web.Request, ctx: RequestContext, inst: Instance,
                      wanted: bool) -> list[str] | None:
        if not wanted or not microversion.at_least(request, microversion.SERVER_GROUPS_IN_SERVER):
            return None
        return await self.compute.server_groups_of(ctx, inst)

    def _unreachable(self, request: web.Request) -> frozenset[str]:
        """The hosts whose node this one cannot reach (dead or gone from
        membership) when the request is 2.69 or newer: their servers come
        back in Nova's down-cell form.  Empty below 2.69 (today's views)."""
        if self.node is None or not microversion.at_least(request, microversion.DOWN_CELL):
            return frozenset()
        return self.node.hosts.unreachable()

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
        down = self._unreachable(request)
        hosts = await self._hosts(request, ctx) if detail else None
        items = [server_unreachable(inst, links, detail=detail) if inst.host in down
                 else await self._detail(request, ctx, inst, hosts, links=links) if detail
                 else server_brief(inst, links) for inst in found]
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
        await self._requested_destination(ctx, body["server"])
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
        # Nova echoes the request's groups (else default) in create's answer only.
        server: dict[str, Any] = {"id": first.uuid, "links": links.pair("servers", first.uuid),
                                  "OS-DCF:diskConfig": body["server"].get(
                                      "OS-DCF:diskConfig", "MANUAL"),
                                  "security_groups": body["server"].get(
                                      "security_groups", [{"name": "default"}])}
        if self.config.api.enable_instance_password:
            server["adminPass"] = req.admin_pass
        return json_response({"server": server}, status=202,
                             headers={"Location": links.self_href("servers", first.uuid)})

    async def _requested_destination(self, ctx: RequestContext, server: Mapping[str, Any]
                                     ) -> None:
        """2.74's ``host`` and ``hypervisor_hostname``: admins only (Nova's
        default policy), not with an ``az:host:node`` zone, and naming a
        compute host of the cluster (one hypervisor per host, so both name
        the node).  The scheduler then checks the host as any other."""
        named = [server[k] for k in ("host", "hypervisor_hostname") if server.get(k)]
        if not named:
            return
        if not ctx.is_admin:
            raise Forbidden("Policy doesn't allow os_compute_api:servers:create:"
                            "requested_destination to be performed.")
        if ":" in str(server.get("availability_zone") or ""):
            raise Invalid("One mechanism with host and/or hypervisor_hostname and another "
                          "mechanism with zone:host:node are mutually exclusive.")
        known = {h.name for h in await self.node.hosts.list_hosts()} \
            if self.node is not None else set()
        for name in named:
            if name not in known:
                raise Invalid(f"Compute host {name} could not be found.")
        if len(set(named)) > 1:
            raise Invalid(f"Compute host {named[1]} could not be found.")

    async def show(self, request: web.Request) -> web.StreamResponse:
        """Show one server (another node's, while it is down: as last replicated)."""
        ctx = context(request)
        replica = request.get(REPLICA, False)
        inst = await self.compute.get(ctx, request.match_info["server_id"], replica=replica)
        if inst.host in self._unreachable(request) or (
                replica and microversion.at_least(request, microversion.DOWN_CELL)):
            return json_response({"server": server_unreachable(
                inst, Links.of(request, self.config), detail=True, show=True,
                server_groups=await self._groups(request, ctx, inst, True))})
        return json_response({"server": await self._detail(
            request, ctx, inst, await self._hosts(request, ctx), groups=True)})

    @staticmethod
    def _create_schema(request: web.Request) -> schemas.Schema:
        """The create body's schema at the request's version
        (:func:`schemas.server_create`, and 2.90's ``hostname``)."""
        return ServerHandlers._hostnamed(request, schemas.server_create(microversion.of(request)))

    @staticmethod
    def _described(request: web.Request) -> bool:
        return microversion.at_least(request, microversion.SERVER_DESCRIPTION)

    @staticmethod
    def _hostnamed(request: web.Request, schema: schemas.Schema) -> schemas.Schema:
        """``schema`` taking 2.90's ``hostname`` (an FQDN from 2.94), or as is below."""
        if not microversion.at_least(request, microversion.HOSTNAME):
            return schema
        return schemas.with_hostname(schema,
                                     microversion.at_least(request, microversion.HOSTNAME_FQDN))

    async def update(self, request: web.Request) -> web.StreamResponse:
        """Rename a server; from 2.19 also set or clear its ``description``,
        from 2.90 set its ``hostname``."""
        ctx = context(request)
        described = self._described(request)
        body = await read_body(request, self.max_body, self._hostnamed(
            request, schemas.SERVER_UPDATE_V2_19 if described else schemas.SERVER_UPDATE))
        server = body["server"]
        inst = await self.compute.update(ctx, request.match_info["server_id"], server.get("name"),
                                         server.get("description"),
                                         set_description=described and "description" in server,
                                         access_ips=access_ips(server),
                                         hostname=server.get("hostname"))
        hosts = await self._hosts(request, ctx)
        return json_response({"server": server_changed(
            inst, Links.of(request, self.config), ctx, await self._fault(inst),
            version=microversion.of(request),
            host_status=None if hosts is None else hosts.status(inst.host),
            server_groups=await self._groups(request, ctx, inst, True))})

    async def ips(self, request: web.Request) -> web.StreamResponse:
        """``GET /servers/{id}/ips``: the server's addresses by network (none)."""
        inst = await self.compute.get(context(request), request.match_info["server_id"])
        return json_response({"addresses": addresses(inst)})

    async def ips_of_network(self, request: web.Request) -> web.StreamResponse:
        """``GET /servers/{id}/ips/{network_label}``: 404 for a network the
        server is not on (every network: it has none)."""
        inst = await self.compute.get(context(request), request.match_info["server_id"])
        label = request.match_info["network_label"]
        if label not in addresses(inst):
            raise NotFound("Instance is not a member of specified network")
        return json_response({label: addresses(inst)[label]})

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
            Route("GET", one + "/ips", self.ips, tag="servers"),
            Route("GET", one + "/ips/{network_label}", self.ips_of_network, tag="servers"),
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
