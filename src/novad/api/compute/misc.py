"""The smaller Compute resources at 2.1: availability zones, limits, services,
hypervisors and instance actions.

Services, hypervisors and zones are the cluster's, as this node sees it
(:mod:`novad.compute.hosts`): one nova-compute service and one hypervisor
per member; this node's own has id 1, and every other member the id of
:func:`~novad.compute.hosts.stable_id`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from aiohttp import web

from novad.api import microversion
from novad.api.common import Route, context, json_response
from novad.api.compute.protocols import NodeInfo
from novad.api.compute import schemas
from novad.api.compute.parsing import limit_param, read_body, to_bool
from novad.api.compute import service_uuids
from novad.api.compute.paging import PAGE_PARAMS, Page, check_query
from novad.api.compute.servers import MAX_METADATA_ITEMS, changes_window
from novad.api.compute.views import (Links, action_view, event_details, event_view,
                                     instance_name)
from novad.compute.interface import ComputeAPI, ListFilters
from novad.compute.keypairs import MAX_KEYPAIRS
from novad.compute.quotas import RESOURCES, QuotaAPI
from novad.config import Config
from novad.context import RequestContext
from novad.drivers.base import HostResources
from novad.compute.hosts import ComputeHost, Zone, zones
from novad.compute.service_record import BINARY
from novad.errors import Forbidden, Invalid, NotFound, NotImplementedByDriver
from novad.store.models import EventRecord, Instance


def require_admin(ctx: RequestContext, rule: str) -> None:
    """403 in Nova's words unless the caller is an admin."""
    if not ctx.is_admin:
        raise Forbidden(f"Policy doesn't allow os_compute_api:{rule} to be performed.")


NETWORK_LIMITS = ("maxSecurityGroups", "maxSecurityGroupRules", "totalSecurityGroupsUsed",
                  "maxTotalFloatingIps", "totalFloatingIpsUsed")
"""The network limits, gone at 2.36 (the proxy APIs went)."""


def absolute_limits(limits: dict[str, int], used: tuple[int, int, int],
                    version: tuple[int, int] = microversion.BASE.key) -> dict[str, int]:
    """``limits.absolute`` at ``version``: at 2.1 the network quotas are
    Neutron's (-1, unlimited); they go at 2.36, and ``maxImageMeta`` at 2.39."""
    gone: tuple[str, ...] = ()
    if version >= microversion.PROXY_APIS_GONE.key:
        gone += NETWORK_LIMITS
    if version >= microversion.IMAGE_METADATA_PROXY_GONE.key:
        gone += ("maxImageMeta",)
    return {key: value for key, value in _absolute_limits(limits, used).items()
            if key not in gone}


def _absolute_limits(limits: dict[str, int], used: tuple[int, int, int]) -> dict[str, int]:
    instances, cores, ram = used
    return {
        "maxTotalInstances": limits["instances"], "maxTotalCores": limits["cores"],
        "maxTotalRAMSize": limits["ram"], "totalInstancesUsed": instances,
        "totalCoresUsed": cores, "totalRAMUsed": ram,
        "maxServerMeta": MAX_METADATA_ITEMS, "maxImageMeta": MAX_METADATA_ITEMS,
        "maxPersonality": limits.get("injected_files", 5),
        "maxPersonalitySize": limits.get("injected_file_content_bytes", 10240),
        "maxTotalKeypairs": MAX_KEYPAIRS,
        "maxServerGroups": 10, "maxServerGroupMembers": 10, "totalServerGroupsUsed": 0,
        "maxSecurityGroups": -1, "maxSecurityGroupRules": -1, "totalSecurityGroupsUsed": 0,
        "maxTotalFloatingIps": -1, "totalFloatingIpsUsed": 0,
    }


PERSONALITY_LIMITS = ("maxPersonality", "maxPersonalitySize")
"""The absolute limits 2.57 removes with personality."""


def service_view(host: ComputeHost, request: web.Request) -> dict[str, Any]:
    """One nova-compute service (``updated_at``: when last heard from; a
    forced-down one is ``down``); ``forced_down`` from 2.11."""
    uuids = microversion.at_least(request, microversion.SERVICE_UUIDS)
    body: dict[str, Any] = {
        "id": host.service_uuid if uuids else host.id, "binary": BINARY, "host": host.name,
        "zone": host.zone,
        "status": "enabled" if host.enabled else "disabled",
        "state": "up" if host.up else "down", "updated_at": host.seen_at,
        "disabled_reason": host.service.disabled_reason}
    if microversion.at_least(request, microversion.FORCED_DOWN):
        body["forced_down"] = host.forced_down
    return body


def service_unreachable(host: ComputeHost) -> dict[str, Any]:
    """The service of a node this one cannot reach, from 2.69: as Nova shows
    one of a down cell (``binary``, ``host``, ``status`` UNKNOWN)."""
    return {"binary": BINARY, "host": host.name, "status": "UNKNOWN"}


def cpu_info(text: str, version: tuple[int, int]) -> Any:
    """``cpu_info`` as Nova shows it: the driver's JSON text below 2.28, the
    object it encodes from 2.28 (an empty text is ``{}``)."""
    if version < microversion.CPU_INFO_OBJECT.key:
        return text
    return json.loads(text) if text else {}


def hypervisor_view(host: ComputeHost, res: HostResources, detail: bool,
                    version: tuple[int, int] = microversion.BASE.key, *,
                    servers: Sequence[tuple[str, str]] | None = None,
                    with_servers: bool = False) -> dict[str, Any]:
    """One hypervisor (integer-like id, a UUID from 2.53; ``cpu_info`` a JSON
    string at 2.1 and an object from 2.28; from 2.88 without the resource
    figures and ``cpu_info``, which the caller follows with ``uptime``).
    ``servers`` (name, uuid) are shown when there are any; asked
    ``with_servers`` (2.53's query), from 2.75 they are shown even when there
    are none, as Nova."""
    uuids = version >= microversion.SERVICE_UUIDS.key
    body: dict[str, Any] = {"id": host.hypervisor_uuid if uuids else host.id,
                            "hypervisor_hostname": res.hypervisor_hostname,
                            "state": "up" if host.up else "down",
                            "status": "enabled" if host.enabled else "disabled"}
    body.update(hypervisor_servers(servers, with_servers, version))
    if not detail:
        return body
    if version >= microversion.HYPERVISOR_SLIM.key:
        body.update({"hypervisor_type": res.hypervisor_type,
                     "hypervisor_version": getattr(res, "hypervisor_version", 0),
                     "host_ip": getattr(res, "host_ip", ""),
                     "service": {"id": host.id, "host": host.name,
                                 "disabled_reason": host.service.disabled_reason}})
        return body
    free_disk = res.local_gb - res.local_gb_used
    body.update({
        "vcpus": res.vcpus, "vcpus_used": res.vcpus_used, "memory_mb": res.memory_mb,
        "memory_mb_used": res.memory_mb_used, "local_gb": res.local_gb,
        "local_gb_used": res.local_gb_used, "free_ram_mb": res.memory_mb - res.memory_mb_used,
        "free_disk_gb": free_disk, "disk_available_least": free_disk,
        "current_workload": 0, "running_vms": res.running_vms,
        "hypervisor_type": res.hypervisor_type,
        "hypervisor_version": getattr(res, "hypervisor_version", 0),
        # Nova's is the node's my_ip, never ""; novad does not know one: null.
        "host_ip": getattr(res, "host_ip", None) or None,
        "cpu_info": cpu_info(getattr(res, "cpu_info", "{}"), version),
        "service": {"id": host.service_uuid if uuids else host.id, "host": host.name,
                    "disabled_reason": host.service.disabled_reason},
    })
    return body


def hypervisor_servers(servers: Sequence[tuple[str, str]] | None, with_servers: bool,
                       version: tuple[int, int]) -> dict[str, Any]:
    """The ``servers`` key of a hypervisor: its servers when it has some; an
    empty list only from 2.75 and only when they were asked for."""
    if servers:
        return {"servers": [{"name": name, "uuid": uuid} for name, uuid in servers]}
    if with_servers and version >= microversion.STRICT_PARAMS.key:
        return {"servers": []}
    return {}


Hypervisor = tuple[ComputeHost, HostResources]


def hypervisor_page(request: web.Request, found: Sequence[Hypervisor]
                    ) -> tuple[list[Hypervisor], int | None]:
    """From 2.33 one page of the hypervisors by id (``limit``, and ``marker``
    the last id seen: 400 when no hypervisor has it) and the limit it was cut
    to; below, all of them and None."""
    if not microversion.at_least(request, microversion.HYPERVISOR_PAGES):
        return list(found), None
    uuids = microversion.at_least(request, microversion.SERVICE_UUIDS)  # pages by UUID
    ordered = sorted(found, key=lambda pair: str(pair[0].hypervisor_uuid) if uuids
                     else pair[0].id)
    marker = request.query.get("marker")
    if marker is not None:
        at = next((i for i, (host, _) in enumerate(ordered)
                   if (str(host.hypervisor_uuid) == marker if uuids else host.known_as(marker))),
                  None)
        if at is None:
            raise Invalid(f"Marker {marker} could not be found.")
        ordered = ordered[at + 1:]
    limit = limit_param(request.query)
    return ordered[:limit], limit


def statistics(resources: Sequence[HostResources]) -> dict[str, int]:
    """``/os-hypervisors/statistics``: the sums over every hypervisor."""
    keys = ("vcpus", "vcpus_used", "memory_mb", "memory_mb_used", "local_gb", "local_gb_used",
            "running_vms")
    sums = {k: sum(int(getattr(r, k)) for r in resources) for k in keys}
    free_disk = sums["local_gb"] - sums["local_gb_used"]
    return {"count": len(resources), **sums,
            "free_ram_mb": sums["memory_mb"] - sums["memory_mb_used"],
            "free_disk_gb": free_disk, "disk_available_least": free_disk, "current_workload": 0}


def with_uptime(host: ComputeHost, body: dict[str, Any], version: tuple[int, int]
                ) -> dict[str, Any]:
    """A detailed hypervisor ``body`` with 2.88's ``uptime``: this node's own
    line, None for another node's (only its own node reads it), as Nova shows
    None where the driver cannot tell."""
    if version >= microversion.HYPERVISOR_SLIM.key:
        body["uptime"] = uptime_line() if host.local else None
    return body


def zone_view(zone: Zone, detail: bool) -> dict[str, Any]:
    """One availability zone; ``detail`` adds its hosts (admin)."""
    hosts = None
    if detail:
        hosts = {h.name: {"nova-compute": {"available": h.up, "active": h.enabled,
                                           "updated_at": h.seen_at}} for h in zone.hosts}
    return {"zoneName": zone.name, "zoneState": {"available": zone.available}, "hosts": hosts}


def uptime_line() -> str:
    """The host's ``uptime(1)`` line, as Nova's libvirt driver reports it."""
    try:
        with open("/proc/uptime", encoding="ascii") as f:
            seconds = int(float(f.read().split()[0]))
        loads = os.getloadavg()
    except (OSError, ValueError, IndexError):
        return ""
    days, rest = divmod(seconds, 86400)
    now = datetime.now().strftime("%H:%M:%S")
    return (f" {now} up {days} days, {rest // 3600:2d}:{rest % 3600 // 60:02d},  0 users,  "
            f"load average: {loads[0]:.2f}, {loads[1]:.2f}, {loads[2]:.2f}")


class NodeHandlers:
    """Handlers of the node-wide resources."""

    def __init__(self, node: NodeInfo, config: Config, quotas: QuotaAPI | None = None,
                 compute: ComputeAPI | None = None) -> None:
        self.node = node
        self.config = config
        self.quotas = quotas
        self.compute = compute

    async def _hosted(self, host: str) -> list[Instance]:
        """The servers on ``host`` (none known without the compute service)."""
        if self.compute is None:
            return []
        return await self.compute.list_servers(RequestContext.admin(),
                                               ListFilters(all_tenants=True, host=host))

    async def zones(self, request: web.Request) -> web.StreamResponse:
        """List the availability zones of the hosts that are up (one is not
        available while all its compute services are disabled, as in Nova)."""
        context(request)
        found = zones(await self.node.hosts.list_hosts())
        return json_response({"availabilityZoneInfo": [zone_view(z, False) for z in found]})

    async def zones_detail(self, request: web.Request) -> web.StreamResponse:
        """List availability zones with their hosts and services (admin)."""
        require_admin(context(request), "os-availability-zone:detail")
        found = zones(await self.node.hosts.list_hosts())
        return json_response({"availabilityZoneInfo": [zone_view(z, True) for z in found]})

    async def limits(self, request: web.Request) -> web.StreamResponse:
        """Show the project's limits and usage (``tenant_id``: admin only)."""
        ctx = context(request)
        project = request.query.get("tenant_id") or ctx.project_id
        if project != ctx.project_id:
            require_admin(ctx, "limits:other_project")
        if self.quotas is not None:
            limits = await self.quotas.show(ctx, project)
        else:
            quota = self.config.quota
            limits = {name: int(getattr(quota, name)) for name in RESOURCES}
        absolute = absolute_limits(limits, await self.node.usage(project),
                                   microversion.of(request))
        if microversion.at_least(request, microversion.PERSONALITY_GONE):
            for key in PERSONALITY_LIMITS:
                absolute.pop(key)
        return json_response({"limits": {"rate": [], "absolute": absolute}})

    async def services(self, request: web.Request) -> web.StreamResponse:
        """List compute services (admin): every host's nova-compute."""
        require_admin(context(request), "os-services:list")
        query = request.query
        down_form = microversion.at_least(request, microversion.DOWN_CELL)
        services = [service_unreachable(h) if down_form and not h.alive and not h.local
                    else service_view(h, request) for h in await self.node.hosts.list_hosts()]
        wanted = [s for s in services
                  if all(query.get(k) in (None, s[k]) for k in ("host", "binary"))]
        return json_response({"services": wanted})

    async def update_service(self, request: web.Request) -> web.StreamResponse:
        """Enable or disable any host's nova-compute (admin): ``enable``,
        ``disable`` and ``disable-log-reason``; from 2.11 also ``force-down``."""
        require_admin(context(request), "os-services:update")
        if microversion.at_least(request, microversion.SERVICE_UUIDS):
            return await self._update_by_uuid(request)
        forced = microversion.at_least(request, microversion.FORCED_DOWN)
        body = await read_body(request, self.config.DEFAULT.max_request_body_size,
                               schemas.SERVICE_UPDATE_V2_11 if forced
                               else schemas.SERVICE_UPDATE)
        action = request.match_info["action"]
        if action == "force-down" and forced:
            return await self._force_down(body)
        if action not in ("enable", "disable", "disable-log-reason"):
            raise NotFound("Unknown action")
        reason = body.get("disabled_reason")
        if action == "disable-log-reason" and reason is None:
            raise Invalid("Missing disabled reason field")
        disabled = action != "enable"
        await self.node.hosts.set_service(body["host"], body["binary"], disabled,
                                          reason if action == "disable-log-reason" else None)
        shown: dict[str, Any] = {"host": body["host"], "binary": BINARY,
                                 "status": "disabled" if disabled else "enabled"}
        if action == "disable-log-reason":
            shown["disabled_reason"] = reason
        return json_response({"service": shown})

    async def _update_by_uuid(self, request: web.Request) -> web.StreamResponse:
        """``PUT /os-services/{service_uuid}`` (2.53): status, reason and
        forced_down in one body; answers the whole service."""
        body = await read_body(request, self.config.DEFAULT.max_request_body_size,
                               service_uuids.SERVICE_UPDATE_V2_53)
        hosts = self.node.hosts
        host = service_uuids.service_by_uuid(await hosts.list_hosts(),
                                             request.match_info["action"])
        status, forced_down = service_uuids.service_changes(body)
        if status is not None:
            await hosts.set_service(host.name, BINARY, *status)
        if forced_down is not None:
            await hosts.force_down(host.name, BINARY, forced_down)
        [fresh] = [h for h in await hosts.list_hosts() if h.name == host.name]
        return json_response({"service": service_view(fresh, request)})

    async def delete_service(self, request: web.Request) -> web.StreamResponse:
        """Delete a service (admin): 400 for a malformed id, 404 for an
        unknown one, else 409 (see :mod:`~novad.api.compute.service_uuids`)."""
        require_admin(context(request), "os-services:delete")
        host = service_uuids.service_by_id(
            await self.node.hosts.list_hosts(), request.match_info["service_id"],
            microversion.at_least(request, microversion.SERVICE_UUIDS))
        service_uuids.refuse_delete(host, await self._hosted(host.name))
        return web.Response(status=204)

    async def _force_down(self, body: dict[str, Any]) -> web.StreamResponse:
        """``PUT /os-services/force-down`` (2.11): set or clear ``forced_down``."""
        if "forced_down" not in body:
            raise Invalid("Missing forced_down field")
        forced_down = to_bool(body["forced_down"])
        await self.node.hosts.force_down(body["host"], body["binary"], forced_down)
        return json_response({"service": {"host": body["host"], "binary": body["binary"],
                                          "forced_down": forced_down}})

    async def hypervisors(self, request: web.Request) -> web.StreamResponse:
        """List hypervisors (admin): one per host."""
        require_admin(context(request), "os-hypervisors:list")
        return await self._hypervisor_list(request, False, "os-hypervisors")

    async def _hypervisor_list(self, request: web.Request, detail: bool,
                               collection: str) -> web.StreamResponse:
        """Both lists: from 2.33 a page of them (a full page links the next);
        from 2.53 filtered by ``hypervisor_hostname_pattern`` and with each
        one's ``servers`` when ``with_servers``."""
        version = microversion.of(request)
        pattern, servers = None, False
        if microversion.at_least(request, microversion.SERVICE_UUIDS):
            pattern, servers = service_uuids.hypervisor_query(request.query)
        found = service_uuids.matching(await self.node.hosts.hypervisors(), pattern)
        shown, limit = hypervisor_page(request, found)
        views = [await self._hypervisor_body(h, r, detail, version, servers) for h, r in shown]
        body: dict[str, Any] = {"hypervisors": views}
        if views and limit is not None and len(views) == limit:
            body["hypervisors_links"] = Links.of(request, self.config).next_page(
                collection, request.query.items(), str(views[-1]["id"]))
        return json_response(body)

    async def _hypervisor_body(self, host: ComputeHost, res: HostResources, detail: bool,
                               version: tuple[int, int], servers: bool) -> dict[str, Any]:
        hosted = await self._hosted(host.name) if servers else []
        body = hypervisor_view(host, res, detail, version, with_servers=servers,
                               servers=[(str(instance_name(i)), i.uuid) for i in hosted])
        return with_uptime(host, body, version) if detail else body

    async def hypervisors_detail(self, request: web.Request) -> web.StreamResponse:
        """List hypervisors with details (admin)."""
        require_admin(context(request), "os-hypervisors:list-detail")
        return await self._hypervisor_list(request, True, "os-hypervisors/detail")

    async def _hypervisor(self, request: web.Request) -> tuple[ComputeHost, HostResources]:
        ident = request.match_info["hypervisor_id"]
        uuids = microversion.at_least(request, microversion.SERVICE_UUIDS)
        if uuids:
            service_uuids.check_uuid(ident)
        for host, res in await self.node.hosts.hypervisors():
            if (host.hypervisor_uuid == ident.lower()) if uuids else host.known_as(ident):
                return host, res
        raise NotFound(f"Hypervisor with ID '{ident}' could not be found.")

    async def hypervisor(self, request: web.Request) -> web.StreamResponse:
        """Show one hypervisor (admin); its id here or the one other nodes give it."""
        require_admin(context(request), "os-hypervisors:show")
        servers = False
        if microversion.at_least(request, microversion.SERVICE_UUIDS):
            check_query(request.query, ("with_servers",))
            servers = service_uuids.with_servers(request.query)
        host, res = await self._hypervisor(request)
        return json_response({"hypervisor": await self._hypervisor_body(
            host, res, True, microversion.of(request), servers)})

    async def hypervisor_uptime(self, request: web.Request) -> web.StreamResponse:
        """Show one hypervisor's uptime line (admin; ``hypervisor show`` below
        2.88).  Only this node's own: another's is 501, which the client skips."""
        if microversion.at_least(request, microversion.HYPERVISOR_SLIM):
            raise NotFound("The resource could not be found.")
        require_admin(context(request), "os-hypervisors:uptime")
        host, res = await self._hypervisor(request)
        if not host.local:
            raise NotImplementedByDriver(
                f"The uptime of hypervisor {host.name} is only shown by its own node.")
        body = hypervisor_view(host, res, False, microversion.of(request))
        body["uptime"] = uptime_line()
        return json_response({"hypervisor": body})

    async def aggregates(self, request: web.Request) -> web.StreamResponse:
        """List host aggregates (admin): this node belongs to none."""
        require_admin(context(request), "os-aggregates:index")
        return json_response({"aggregates": []})

    async def aggregate_images(self, request: web.Request) -> web.StreamResponse:
        """Pre-cache images on an aggregate's hosts (2.81, admin).  novad's
        nodes belong to no aggregate, so a well-formed request names one that
        does not exist: 404, as Nova answers for an unknown aggregate."""
        if not microversion.at_least(request, microversion.IMAGE_CACHE):
            raise NotFound("The resource could not be found.")
        body = await read_body(request, self.config.DEFAULT.max_request_body_size,
                               schemas.AGGREGATE_IMAGES_V2_81)
        if not context(request).is_admin:
            raise Forbidden("Policy doesn't allow compute:aggregates:images to be performed.")
        ident = request.match_info["aggregate_id"]
        if not ident.lstrip("-").isdigit():
            raise Invalid("Invalid input received: id must be an integer")
        ids = [item["id"] for item in body["cache"]]
        if len(set(ids)) != len(ids):
            raise Invalid("Duplicate images in request")
        raise NotFound(f"Aggregate {ident} could not be found.")

    async def hypervisor_statistics(self, request: web.Request) -> web.StreamResponse:
        """Show the totals over every hypervisor (admin; 404 from 2.88, as Nova)."""
        if microversion.at_least(request, microversion.HYPERVISOR_SLIM):
            raise NotFound("The resource could not be found.")
        require_admin(context(request), "os-hypervisors:statistics")
        found = await self.node.hosts.hypervisors()
        return json_response({"hypervisor_statistics": statistics([r for _, r in found])})

    def routes(self) -> list[Route]:
        """The node routes, relative to a versioned mount."""
        hyp = "/os-hypervisors"
        return [
            Route("GET", "/os-availability-zone", self.zones, tag="availability zones"),
            Route("GET", "/os-availability-zone/detail", self.zones_detail,
                  tag="availability zones"),
            Route("GET", "/limits", self.limits, tag="limits"),
            Route("GET", "/os-services", self.services, tag="services"),
            Route("PUT", "/os-services/{action}", self.update_service,
                  schema=schemas.SERVICE_UPDATE_V2_11, tag="services",
                  summary="Enable, disable or (2.11) force down a host's compute "
                          "service (admin); from 2.53 the path names the service's "
                          "UUID and the body says what changes"),
            Route("DELETE", "/os-services/{service_id}", self.delete_service, tag="services",
                  responses={204: "Deleted"},
                  summary="Delete a compute service (admin; 409 while the cluster has it)"),
            Route("GET", hyp, self.hypervisors, tag="hypervisors"),
            Route("GET", hyp + "/detail", self.hypervisors_detail, tag="hypervisors"),
            Route("GET", hyp + "/statistics", self.hypervisor_statistics, tag="hypervisors"),
            Route("GET", hyp + "/{hypervisor_id}", self.hypervisor, tag="hypervisors"),
            Route("GET", hyp + "/{hypervisor_id}/uptime", self.hypervisor_uptime,
                  tag="hypervisors"),
            Route("GET", "/os-aggregates", self.aggregates, tag="aggregates"),
            Route("POST", "/os-aggregates/{aggregate_id}/images", self.aggregate_images,
                  schema=schemas.AGGREGATE_IMAGES_V2_81, tag="aggregates",
                  summary="Pre-cache images on an aggregate's hosts (2.81, admin; "
                          "novad has no aggregates: 404)",
                  responses={404: "No such aggregate"}),
        ]


def _deleted_too(request: web.Request) -> bool:
    """Whether a deleted server's actions are shown (2.21; 404 before, as Nova)."""
    return microversion.at_least(request, microversion.DELETED_INSTANCE_ACTIONS)


class InstanceActionHandlers:
    """Handlers of ``/servers/{id}/os-instance-actions`` (2.1 shapes; deleted
    servers' from 2.21; pages and ``updated_at`` from 2.58)."""

    def __init__(self, compute: ComputeAPI, config: Config) -> None:
        self.compute = compute
        self.config = config

    async def index(self, request: web.Request) -> web.StreamResponse:
        """List a server's actions, newest first (a deleted server's from 2.21);
        from 2.58 a page of them, and no parameter but the paging ones (and,
        from 2.66, ``changes-before``: those changed at or before it)."""
        paged = microversion.at_least(request, microversion.ACTION_PAGES)
        before_too = microversion.at_least(request, microversion.CHANGES_BEFORE)
        if paged:
            check_query(request.query, (*PAGE_PARAMS, "changes-before") if before_too
                        else PAGE_PARAMS)
        before = None
        if before_too:
            _, before = changes_window(request.query, microversion.of(request))
        page = Page.of(request.query) if paged else None
        server_id = request.match_info["server_id"]
        actions = await self.compute.instance_actions(context(request), server_id,
                                                      deleted=_deleted_too(request))
        if before is not None:
            actions = [a for a in actions if (a.updated_at or a.start_time) <= before]
        version = microversion.of(request)
        if page is None:
            return json_response({"instanceActions": [action_view(a) for a in actions]})
        found = page.cut(actions, lambda a: a.request_id,
                         lambda a: a.updated_at or a.start_time)
        body: dict[str, Any] = {"instanceActions": [action_view(a, version) for a in found]}
        if page.full(found):
            body["links"] = Links.of(request, self.config).next_page(
                f"servers/{server_id}/os-instance-actions", request.query.items(),
                found[-1].request_id)
        return json_response(body)

    async def show(self, request: web.Request) -> web.StreamResponse:
        """Show one action; before 2.51 only admins see its events, from 2.51
        everyone does, the ``traceback`` still only admins (Nova's default
        policy); from 2.84 each event shows ``details`` (Nova's default
        events:details policy lets the owner see it too, unlike the traceback)."""
        ctx = context(request)
        action = await self.compute.instance_action(ctx, request.match_info["server_id"],
                                                    request.match_info["request_id"],
                                                    deleted=_deleted_too(request))
        body = action_view(action, microversion.of(request))
        if ctx.is_admin:
            body["events"] = await self._events(request, ctx, action.events, admin=True)
        elif microversion.at_least(request, microversion.ACTION_EVENTS_ALL):
            body["events"] = await self._events(request, ctx, action.events, admin=False)
        return json_response({"instanceAction": body})

    async def _events(self, request: web.Request, ctx: RequestContext,
                      events: Sequence[EventRecord], *, admin: bool) -> list[dict[str, Any]]:
        """The action's events as the caller may see them: the ``traceback``
        and (2.62) the ``host`` for admins only; 2.62's ``hostId``; 2.84's
        ``details``."""
        version = microversion.of(request)
        project = ""
        if version >= microversion.ACTION_EVENT_HOST.key:
            project = await self._owner(request, ctx)
        views = [event_view(e, version, project_id=project, show_host=admin, traceback=admin)
                 for e in events]
        if version >= microversion.ACTION_EVENT_DETAILS.key:
            for view, event in zip(views, events, strict=True):
                view["details"] = event_details(event)
        return views

    async def _owner(self, request: web.Request, ctx: RequestContext) -> str:
        """The server's project, whose ``hostId`` the events show (2.62): the
        project that created it (servers are created in the caller's project),
        which a deleted server's actions still record."""
        actions = await self.compute.instance_actions(ctx, request.match_info["server_id"],
                                                      deleted=_deleted_too(request))
        return next((a.project_id for a in actions if a.action == "create"), "")

    def routes(self) -> list[Route]:
        """The instance-action routes, relative to a versioned mount."""
        base = "/servers/{server_id}/os-instance-actions"
        return [Route("GET", base, self.index, tag="instance actions"),
                Route("GET", base + "/{request_id}", self.show, tag="instance actions")]
