"""``/os-hosts`` (admin), which Nova serves below microversion 2.43 and
answers 404 from it (os-hypervisors and os-services replace it).

Each compute host of the cluster is one row (novad runs one nova-compute
per node and no other service Nova would list).  A host's resources are
its hypervisor's totals and use, and the instances recorded on it.
Enabling, disabling, maintenance mode and the host power actions are
what Nova's libvirt driver does not implement: 501, after the 404 of an
unknown host.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from novad.api import microversion
from novad.api.common import Route, context, json_response
from novad.api.compute import schemas
from novad.api.compute.misc import require_admin
from novad.api.compute.parsing import read_body
from novad.api.compute.protocols import NodeInfo
from novad.compute.hosts import ComputeHost
from novad.compute.interface import ComputeAPI, ListFilters
from novad.config import Config
from novad.drivers.base import HostResources
from novad.errors import NotFound, NotImplementedByDriver
from novad.store.models import Instance

POWER_ACTIONS = ("reboot", "shutdown", "startup")
"""``GET /os-hosts/{host}/{action}``: the host power actions."""

NOT_SUPPORTED = "The requested functionality is not supported."


def _served(request: web.Request) -> None:
    """404 from 2.43, as Nova."""
    if microversion.at_least(request, microversion.OS_HOSTS_GONE):
        raise NotFound("The resource could not be found.")


def _resource(host: str, project: str, cpu: int, memory_mb: int, disk_gb: int
              ) -> dict[str, Any]:
    return {"resource": {"host": host, "project": project, "cpu": cpu,
                         "memory_mb": memory_mb, "disk_gb": disk_gb}}


def host_resources(host: str, res: HostResources, instances: list[Instance]
                   ) -> list[dict[str, Any]]:
    """Nova's ``os-hosts`` show body: the host's totals, its use now, the sums
    of its instances' flavors, then those sums per project."""
    rows = [_resource(host, "(total)", res.vcpus, res.memory_mb, res.local_gb),
            _resource(host, "(used_now)", res.vcpus_used, res.memory_mb_used,
                      res.local_gb_used)]
    per_project: dict[str, list[int]] = {}
    for inst in instances:
        sums = per_project.setdefault(inst.project_id, [0, 0, 0])
        flavor = inst.flavor
        sums[0] += flavor.vcpus
        sums[1] += flavor.memory_mb
        sums[2] += flavor.root_gb + flavor.ephemeral_gb
    total = [sum(values[i] for values in per_project.values()) for i in range(3)]
    rows.append(_resource(host, "(used_max)", *total))
    rows += [_resource(host, project, *sums) for project, sums in per_project.items()]
    return rows


class HostHandlers:
    """Handlers of ``/os-hosts``."""

    def __init__(self, compute: ComputeAPI, node: NodeInfo, config: Config) -> None:
        self.compute = compute
        self.node = node
        self.max_body = config.DEFAULT.max_request_body_size

    async def index(self, request: web.Request) -> web.StreamResponse:
        """List the hosts whose compute service is enabled (``zone`` filters)."""
        _served(request)
        require_admin(context(request), "os-hosts:list")
        zone = request.query.get("zone")
        hosts = [h for h in await self.node.hosts.list_hosts()
                 if h.enabled and (not zone or h.zone == zone)]
        return json_response({"hosts": [{"host_name": h.name, "service": "compute",
                                         "zone": h.zone} for h in hosts]})

    async def _host(self, name: str) -> ComputeHost:
        for host in await self.node.hosts.list_hosts():
            if host.name == name:
                return host
        raise NotFound(f"Compute host {name} could not be found.")

    async def show(self, request: web.Request) -> web.StreamResponse:
        """Show a host's resources and what its instances use, per project."""
        _served(request)
        ctx = context(request)
        require_admin(ctx, "os-hosts:show")
        name = request.match_info["host_name"]
        found = {h.name: r for h, r in await self.node.hosts.hypervisors()}
        if name not in found:
            raise NotFound(f"Compute host {name} could not be found.")
        instances = await self.compute.list_servers(ctx, ListFilters(all_tenants=True,
                                                                     host=name))
        return json_response({"host": host_resources(name, found[name], instances)})

    async def update(self, request: web.Request) -> web.StreamResponse:
        """Enable, disable or put into maintenance a host: 501 (libvirt)."""
        _served(request)
        require_admin(context(request), "os-hosts:update")
        await read_body(request, self.max_body, schemas.HOST_UPDATE)
        await self._host(request.match_info["host_name"])
        raise NotImplementedByDriver(NOT_SUPPORTED)

    async def power(self, request: web.Request) -> web.StreamResponse:
        """Reboot, shut down or start a host: 501 (libvirt)."""
        _served(request)
        action = request.match_info["action"]
        if action not in POWER_ACTIONS:
            raise NotFound("The resource could not be found.")
        require_admin(context(request), f"os-hosts:{action}")
        await self._host(request.match_info["host_name"])
        raise NotImplementedByDriver(NOT_SUPPORTED)

    def routes(self) -> list[Route]:
        """The os-hosts routes, relative to a versioned mount."""
        one, tag = "/os-hosts/{host_name}", "hosts (below 2.43)"
        return [Route("GET", "/os-hosts", self.index, tag=tag),
                Route("GET", one, self.show, tag=tag),
                Route("PUT", one, self.update, schema=schemas.HOST_UPDATE, tag=tag,
                      responses={501: "Not supported by the libvirt driver"}),
                Route("GET", one + "/{action}", self.power, tag=tag,
                      summary="Reboot, shut down or start up a host (501)",
                      responses={501: "Not supported by the libvirt driver"})]
