"""The smaller Compute resources at 2.1: availability zones, limits, services,
hypervisors, instance actions, and Glance-shaped image look-ups.

This node is the only nova-compute service, the only hypervisor (id 1) and
the only host of the one availability zone, ``nova``.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

from aiohttp import web

from novad.api.common import Route, base_url, context, json_response
from novad.api.compute.protocols import ImageLookup, NodeInfo
from novad.api.compute import schemas
from novad.api.compute.parsing import limit_param, read_body
from novad.api.compute.servers import MAX_METADATA_ITEMS
from novad.api.compute.views import action_view, event_view, now_micro
from novad.compute.interface import ComputeAPI
from novad.compute.keypairs import MAX_KEYPAIRS
from novad.compute.quotas import QuotaAPI
from novad.config import Config
from novad.context import RequestContext
from novad.drivers.base import HostResources
from novad.compute.service_record import BINARY
from novad.errors import Forbidden, Invalid, NotFound

ZONE = "nova"
HYPERVISOR_ID = "1"


def require_admin(ctx: RequestContext, rule: str) -> None:
    """403 in Nova's words unless the caller is an admin."""
    if not ctx.is_admin:
        raise Forbidden(f"Policy doesn't allow os_compute_api:{rule} to be performed.")


def absolute_limits(limits: dict[str, int], used: tuple[int, int, int]) -> dict[str, int]:
    """``limits.absolute`` at 2.1 (network quotas are Neutron's: -1, unlimited)."""
    instances, cores, ram = used
    return {
        "maxTotalInstances": limits["instances"], "maxTotalCores": limits["cores"],
        "maxTotalRAMSize": limits["ram"], "totalInstancesUsed": instances,
        "totalCoresUsed": cores, "totalRAMUsed": ram,
        "maxServerMeta": MAX_METADATA_ITEMS, "maxImageMeta": 128, "maxPersonality": 5,
        "maxPersonalitySize": 10240, "maxTotalKeypairs": MAX_KEYPAIRS,
        "maxServerGroups": 10, "maxServerGroupMembers": 10, "totalServerGroupsUsed": 0,
        "maxSecurityGroups": -1, "maxSecurityGroupRules": -1, "totalSecurityGroupsUsed": 0,
        "maxTotalFloatingIps": -1, "totalFloatingIpsUsed": 0,
    }


def service_status(node: NodeInfo) -> tuple[str, str | None]:
    """This node's nova-compute ``status`` and ``disabled_reason``."""
    if node.service is None or not node.service.row.disabled:
        return "enabled", None
    return "disabled", node.service.row.disabled_reason


def service_enabled(node: NodeInfo) -> bool:
    """Whether this node's nova-compute takes new instances."""
    return service_status(node)[0] == "enabled"


def hypervisor_view(node: NodeInfo, res: HostResources, detail: bool) -> dict[str, Any]:
    """One hypervisor at 2.1 (integer-like id, ``cpu_info`` as a JSON string)."""
    status, reason = service_status(node)
    body: dict[str, Any] = {"id": int(HYPERVISOR_ID), "hypervisor_hostname":
                            res.hypervisor_hostname, "state": "up", "status": status}
    if not detail:
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
        "host_ip": getattr(res, "host_ip", ""), "cpu_info": getattr(res, "cpu_info", "{}"),
        "service": {"id": 1, "host": node.host, "disabled_reason": reason},
    })
    return body


def statistics(res: HostResources) -> dict[str, int]:
    """``/os-hypervisors/statistics`` of this one hypervisor."""
    free_disk = res.local_gb - res.local_gb_used
    return {"count": 1, "vcpus": res.vcpus, "vcpus_used": res.vcpus_used,
            "memory_mb": res.memory_mb, "memory_mb_used": res.memory_mb_used,
            "free_ram_mb": res.memory_mb - res.memory_mb_used, "local_gb": res.local_gb,
            "local_gb_used": res.local_gb_used, "free_disk_gb": free_disk,
            "disk_available_least": free_disk, "current_workload": 0,
            "running_vms": res.running_vms}


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

    def __init__(self, node: NodeInfo, config: Config, quotas: QuotaAPI | None = None) -> None:
        self.node = node
        self.config = config
        self.quotas = quotas

    async def zones(self, request: web.Request) -> web.StreamResponse:
        """List availability zones (not available while its only compute
        service is disabled, as Nova lists a zone of disabled services)."""
        context(request)
        enabled = service_enabled(self.node)
        return json_response({"availabilityZoneInfo": [
            {"zoneName": ZONE, "zoneState": {"available": enabled}, "hosts": None}]})

    async def zones_detail(self, request: web.Request) -> web.StreamResponse:
        """List availability zones with their hosts and services (admin)."""
        require_admin(context(request), "os-availability-zone:detail")
        enabled = service_enabled(self.node)
        service = {"available": True, "active": enabled, "updated_at": now_micro()}
        return json_response({"availabilityZoneInfo": [
            {"zoneName": ZONE, "zoneState": {"available": enabled},
             "hosts": {self.node.host: {"nova-compute": service}}}]})

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
            limits = {"instances": quota.instances, "cores": quota.cores, "ram": quota.ram}
        absolute = absolute_limits(limits, await self.node.usage(project))
        return json_response({"limits": {"rate": [], "absolute": absolute}})

    async def services(self, request: web.Request) -> web.StreamResponse:
        """List compute services (admin): this node's nova-compute."""
        require_admin(context(request), "os-services:list")
        status, reason = service_status(self.node)
        service = {"id": 1, "binary": BINARY, "host": self.node.host, "zone": ZONE,
                   "status": status, "state": "up", "updated_at": now_micro(),
                   "disabled_reason": reason}
        query = request.query
        wanted = all(query.get(k) in (None, service[k]) for k in ("host", "binary"))
        return json_response({"services": [service] if wanted else []})

    async def update_service(self, request: web.Request) -> web.StreamResponse:
        """Enable or disable this node's nova-compute (admin): ``enable``,
        ``disable`` and ``disable-log-reason``, as at 2.1."""
        require_admin(context(request), "os-services:update")
        body = await read_body(request, self.config.DEFAULT.max_request_body_size,
                               schemas.SERVICE_UPDATE)
        action = request.match_info["action"]
        if action not in ("enable", "disable", "disable-log-reason"):
            raise NotFound("Unknown action")
        reason = body.get("disabled_reason")
        if action == "disable-log-reason" and reason is None:
            raise Invalid("Missing disabled reason field")
        if body["host"] != self.node.host or body["binary"] != BINARY \
                or self.node.service is None:
            raise NotFound(f"Compute host {body['host']} with binary {body['binary']} "
                           "could not be found.")
        disabled = action != "enable"
        await self.node.service.set(disabled, reason if action == "disable-log-reason" else None)
        shown: dict[str, Any] = {"host": body["host"], "binary": BINARY,
                                 "status": "disabled" if disabled else "enabled"}
        if action == "disable-log-reason":
            shown["disabled_reason"] = reason
        return json_response({"service": shown})

    async def hypervisors(self, request: web.Request) -> web.StreamResponse:
        """List hypervisors (admin)."""
        require_admin(context(request), "os-hypervisors:list")
        res = await self.node.resources()
        return json_response({"hypervisors": [hypervisor_view(self.node, res, False)]})

    async def hypervisors_detail(self, request: web.Request) -> web.StreamResponse:
        """List hypervisors with details (admin)."""
        require_admin(context(request), "os-hypervisors:list-detail")
        res = await self.node.resources()
        return json_response({"hypervisors": [hypervisor_view(self.node, res, True)]})

    async def hypervisor(self, request: web.Request) -> web.StreamResponse:
        """Show one hypervisor (admin)."""
        require_admin(context(request), "os-hypervisors:show")
        ident = request.match_info["hypervisor_id"]
        if ident != HYPERVISOR_ID:
            raise NotFound(f"Hypervisor with ID '{ident}' could not be found.")
        res = await self.node.resources()
        return json_response({"hypervisor": hypervisor_view(self.node, res, True)})

    async def hypervisor_uptime(self, request: web.Request) -> web.StreamResponse:
        """Show one hypervisor's uptime line (admin; ``hypervisor show`` below 2.88)."""
        require_admin(context(request), "os-hypervisors:uptime")
        ident = request.match_info["hypervisor_id"]
        if ident != HYPERVISOR_ID:
            raise NotFound(f"Hypervisor with ID '{ident}' could not be found.")
        body = hypervisor_view(self.node, await self.node.resources(), False)
        body["uptime"] = uptime_line()
        return json_response({"hypervisor": body})

    async def aggregates(self, request: web.Request) -> web.StreamResponse:
        """List host aggregates (admin): this node belongs to none."""
        require_admin(context(request), "os-aggregates:index")
        return json_response({"aggregates": []})

    async def hypervisor_statistics(self, request: web.Request) -> web.StreamResponse:
        """Show hypervisor totals (admin)."""
        require_admin(context(request), "os-hypervisors:statistics")
        return json_response({"hypervisor_statistics": statistics(await self.node.resources())})

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
                  schema=schemas.SERVICE_UPDATE, tag="services",
                  summary="Enable or disable this node's compute service (admin)"),
            Route("GET", hyp, self.hypervisors, tag="hypervisors"),
            Route("GET", hyp + "/detail", self.hypervisors_detail, tag="hypervisors"),
            Route("GET", hyp + "/statistics", self.hypervisor_statistics, tag="hypervisors"),
            Route("GET", hyp + "/{hypervisor_id}", self.hypervisor, tag="hypervisors"),
            Route("GET", hyp + "/{hypervisor_id}/uptime", self.hypervisor_uptime,
                  tag="hypervisors"),
            Route("GET", "/os-aggregates", self.aggregates, tag="aggregates"),
        ]


class InstanceActionHandlers:
    """Handlers of ``/servers/{id}/os-instance-actions`` (2.1 shapes)."""

    def __init__(self, compute: ComputeAPI) -> None:
        self.compute = compute

    async def index(self, request: web.Request) -> web.StreamResponse:
        """List a server's actions, newest first."""
        actions = await self.compute.instance_actions(context(request),
                                                      request.match_info["server_id"])
        return json_response({"instanceActions": [action_view(a) for a in actions]})

    async def show(self, request: web.Request) -> web.StreamResponse:
        """Show one action; before 2.51 only admins see its events."""
        ctx = context(request)
        action = await self.compute.instance_action(ctx, request.match_info["server_id"],
                                                    request.match_info["request_id"])
        body = action_view(action)
        if ctx.is_admin:
            body["events"] = [event_view(e) for e in action.events]
        return json_response({"instanceAction": body})

    def routes(self) -> list[Route]:
        """The instance-action routes, relative to a versioned mount."""
        base = "/servers/{server_id}/os-instance-actions"
        return [Route("GET", base, self.index, tag="instance actions"),
                Route("GET", base + "/{request_id}", self.show, tag="instance actions")]


class ImageHandlers:
    """Glance-shaped image look-ups under the compute mounts.

    With ``--os-auth-type none --os-endpoint .../compute/v2.1`` the clients
    look images up here and expect Glance v2's shapes, not Nova's image proxy.
    """

    def __init__(self, images: ImageLookup, config: Config) -> None:
        self.images = images
        self.config = config

    async def index(self, request: web.Request) -> web.StreamResponse:
        """List images (Glance v2 shape; ``name``, ``id=in:…``, ``status`` filters)."""
        query = request.query
        raw_id = query.get("id")
        id_in = None if raw_id is None else [i for i in raw_id.removeprefix("in:").split(",")
                                             if i]
        found = await self.images.list(context(request), name=query.get("name"),
                                       id_in=id_in, status=query.get("status"),
                                       limit=limit_param(query), marker=query.get("marker"))
        base = base_url(request, self.config.api.public_endpoint)
        return json_response({"images": [i.to_api(base) for i in found],
                              "first": "/v2/images", "schema": "/v2/schemas/images"})

    async def show(self, request: web.Request) -> web.StreamResponse:
        """Show one image as Glance v2 does (the bare image object)."""
        image = await self.images.get(context(request), request.match_info["image_id"])
        return json_response(image.to_api(base_url(request, self.config.api.public_endpoint)))

    def routes(self) -> list[Route]:
        """The image routes, relative to a versioned mount."""
        return [Route("GET", "/images", self.index, tag="images"),
                Route("GET", "/images/{image_id}", self.show, tag="images")]

