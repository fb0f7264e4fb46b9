"""``GET /servers/{id}/diagnostics`` (admin): what the hypervisor says about a
running guest.

Below 2.48 the body is the libvirt driver's flat blob, as Nova's was
(``cpu0_time``, ``memory``, ``vda_read``, ``<nic>_rx``... ``memory-<stat>``),
with a key left out when libvirt does not report it.  From 2.48 it has
Nova's standard shape, with ``null`` for what the driver cannot tell (the
rates, the uptime and the CPU use, which libvirt's counters do not give).
The forwarding middleware sends the request to the server's node.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from novad.api import microversion
from novad.api.common import Route, context, json_response
from novad.api.compute.misc import require_admin
from novad.compute.interface import ComputeAPI
from novad.compute.service import POWER_STATE_NAMES
from novad.config import Config
from novad.drivers.base import GuestDiagnostics
from novad.store.models import Instance


def blob_view(d: GuestDiagnostics) -> dict[str, Any]:
    """The pre-2.48 body: the driver's readings as flat keys."""
    body: dict[str, Any] = {f"cpu{c.id}_time": c.time for c in d.cpus}
    body["memory"] = d.memory_used_kib
    for disk in d.disks:
        for suffix, value in (("read", disk.read_bytes), ("read_req", disk.read_requests),
                              ("write", disk.write_bytes), ("write_req", disk.write_requests),
                              ("errors", disk.errors_count)):
            body[f"{disk.device}_{suffix}"] = value
    for nic in d.nics:
        for suffix, value in (("rx", nic.rx_octets), ("rx_packets", nic.rx_packets),
                              ("rx_errors", nic.rx_errors), ("rx_drop", nic.rx_drop),
                              ("tx", nic.tx_octets), ("tx_packets", nic.tx_packets),
                              ("tx_errors", nic.tx_errors), ("tx_drop", nic.tx_drop)):
            body[f"{nic.device}_{suffix}"] = value
    body.update({f"memory-{name}": value for name, value in d.memory_stats.items()})
    return {key: value for key, value in body.items() if value is not None}


def standard_view(inst: Instance, d: GuestDiagnostics, hypervisor: str) -> dict[str, Any]:
    """The 2.48 body."""
    return {
        "state": POWER_STATE_NAMES[d.power_state], "driver": "libvirt",
        "hypervisor": hypervisor, "hypervisor_os": "linux", "uptime": None,
        "config_drive": inst.config_drive, "num_cpus": len(d.cpus), "num_nics": len(d.nics),
        "num_disks": len(d.disks),
        "cpu_details": [{"id": c.id, "time": c.time, "utilisation": c.utilisation}
                        for c in d.cpus],
        "nic_details": [{"mac_address": n.mac_address, "rx_octets": n.rx_octets,
                         "rx_errors": n.rx_errors, "rx_drop": n.rx_drop,
                         "rx_packets": n.rx_packets, "rx_rate": None,
                         "tx_octets": n.tx_octets, "tx_errors": n.tx_errors,
                         "tx_drop": n.tx_drop, "tx_packets": n.tx_packets, "tx_rate": None}
                        for n in d.nics],
        "disk_details": [{"read_bytes": k.read_bytes, "read_requests": k.read_requests,
                          "write_bytes": k.write_bytes, "write_requests": k.write_requests,
                          "errors_count": k.errors_count} for k in d.disks],
        "memory_details": {"maximum": d.memory_max_kib // 1024,
                           "used": d.memory_used_kib // 1024},
    }


class DiagnosticsHandlers:
    """The server-diagnostics endpoint."""

    def __init__(self, compute: ComputeAPI, config: Config) -> None:
        self.compute = compute
        self.hypervisor = config.libvirt.virt_type

    async def show(self, request: web.Request) -> web.StreamResponse:
        """A running server's diagnostics (admin; 409 unless it runs)."""
        ctx = context(request)
        require_admin(ctx, "os-server-diagnostics")
        inst, readings = await self.compute.diagnostics(ctx, request.match_info["server_id"])
        if not microversion.at_least(request, microversion.STANDARD_DIAGNOSTICS):
            return json_response(blob_view(readings))
        return json_response(standard_view(inst, readings, self.hypervisor))

    def routes(self) -> list[Route]:
        """The diagnostics route, relative to a versioned mount."""
        return [Route("GET", "/servers/{server_id}/diagnostics", self.show,
                      tag="server diagnostics",
                      summary="Show a running server's diagnostics (admin)")]
