"""Node-wide resources: availability zones, limits, services, hypervisors."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient
import pytest
from api_helpers import StaticNode, headers

from novad.store import Store

Client = TestClient[Any, Any]
C = "/compute/v2.1"


async def test_availability_zones(client: Client) -> None:
    body = await (await client.get(f"{C}/os-availability-zone", headers=headers())).json()
    assert body == {"availabilityZoneInfo": [{"zoneName": "nova",
                                              "zoneState": {"available": True},
                                              "hosts": None}]}
    assert (await client.get(f"{C}/os-availability-zone/detail",
                             headers=headers())).status == 403
    body = await (await client.get(f"{C}/os-availability-zone/detail",
                                   headers=headers("admin-token"))).json()
    (zone,) = body["availabilityZoneInfo"]
    assert zone["hosts"]["node-1"]["nova-compute"]["active"] is True


async def test_limits(client: Client, node: StaticNode) -> None:
    node.used["project-a"] = (2, 3, 1024)
    body = await (await client.get(f"{C}/limits", headers=headers())).json()
    absolute = body["limits"]["absolute"]
    assert body["limits"]["rate"] == []
    assert (absolute["maxTotalInstances"], absolute["maxTotalCores"],
            absolute["maxTotalRAMSize"]) == (10, 20, 51200)
    assert (absolute["totalInstancesUsed"], absolute["totalCoresUsed"],
            absolute["totalRAMUsed"]) == (2, 3, 1024)
    assert (absolute["maxServerMeta"], absolute["maxImageMeta"], absolute["maxPersonality"],
            absolute["maxPersonalitySize"], absolute["maxTotalKeypairs"],
            absolute["maxServerGroups"], absolute["maxServerGroupMembers"]) == (
        128, 128, 5, 10240, 100, 10, 10)
    assert absolute["maxTotalFloatingIps"] == -1
    resp = await client.get(f"{C}/limits?tenant_id=project-b", headers=headers())
    assert resp.status == 403
    body = await (await client.get(f"{C}/limits?tenant_id=project-a",
                                   headers=headers("admin-token"))).json()
    assert body["limits"]["absolute"]["totalInstancesUsed"] == 2


async def test_services(client: Client) -> None:
    assert (await client.get(f"{C}/os-services", headers=headers())).status == 403
    body = await (await client.get(f"{C}/os-services", headers=headers("admin-token"))).json()
    (service,) = body["services"]
    assert {k: service[k] for k in ("id", "binary", "host", "zone", "status", "state",
                                    "disabled_reason")} == {
        "id": 1, "binary": "nova-compute", "host": "node-1", "zone": "nova",
        "status": "enabled", "state": "up", "disabled_reason": None}
    body = await (await client.get(f"{C}/os-services?binary=nova-conductor",
                                   headers=headers("admin-token"))).json()
    assert body == {"services": []}


async def test_hypervisors(client: Client) -> None:
    admin = headers("admin-token")
    assert (await client.get(f"{C}/os-hypervisors", headers=headers())).status == 403
    body = await (await client.get(f"{C}/os-hypervisors", headers=admin)).json()
    assert body == {"hypervisors": [{"id": 1, "hypervisor_hostname": "node-1", "state": "up",
                                     "status": "enabled"}]}
    detail = (await (await client.get(f"{C}/os-hypervisors/detail",
                                      headers=admin)).json())["hypervisors"][0]
    assert (detail["vcpus"], detail["vcpus_used"], detail["free_ram_mb"],
            detail["free_disk_gb"], detail["running_vms"], detail["hypervisor_type"]) == (
        8, 2, 14336, 90, 1, "QEMU")
    assert detail["service"] == {"id": 1, "host": "node-1", "disabled_reason": None}
    shown = await (await client.get(f"{C}/os-hypervisors/1", headers=admin)).json()
    assert shown["hypervisor"] == detail
    resp = await client.get(f"{C}/os-hypervisors/2", headers=admin)
    assert resp.status == 404
    assert (await resp.json())["itemNotFound"]["message"] == \
        "Hypervisor with ID '2' could not be found."
    stats = await (await client.get(f"{C}/os-hypervisors/statistics", headers=admin)).json()
    assert stats["hypervisor_statistics"]["count"] == 1


async def test_hypervisor_uptime_and_aggregates(client: Client) -> None:
    admin = headers("admin-token")
    body = await (await client.get(f"{C}/os-hypervisors/1/uptime", headers=admin)).json()
    assert body["hypervisor"]["id"] == 1 and " up " in body["hypervisor"]["uptime"]
    assert (await client.get(f"{C}/os-hypervisors/9/uptime", headers=admin)).status == 404
    assert await (await client.get(f"{C}/os-aggregates", headers=admin)).json() == {
        "aggregates": []}
    assert (await client.get(f"{C}/os-aggregates", headers=headers())).status == 403


async def test_an_admin_disables_and_enables_the_compute_service(
        client: Client, node: StaticNode, store: Store) -> None:
    admin = headers("admin-token")
    body = {"host": "node-1", "binary": "nova-compute", "disabled_reason": "new disks"}
    resp = await client.put(f"{C}/os-services/disable-log-reason", json=body, headers=headers())
    assert resp.status == 403
    assert node.service is not None and not node.service.row.disabled

    resp = await client.put(f"{C}/os-services/disable-log-reason", json=body, headers=admin)
    assert resp.status == 200
    assert await resp.json() == {"service": {"host": "node-1", "binary": "nova-compute",
                                             "status": "disabled",
                                             "disabled_reason": "new disks"}}
    (service,) = (await (await client.get(f"{C}/os-services", headers=admin)).json())["services"]
    assert (service["status"], service["state"], service["disabled_reason"]) == (
        "disabled", "up", "new disks")
    (hyp,) = (await (await client.get(f"{C}/os-hypervisors/detail",
                                      headers=admin)).json())["hypervisors"]
    assert (hyp["status"], hyp["service"]["disabled_reason"]) == ("disabled", "new disks")
    zones = await (await client.get(f"{C}/os-availability-zone", headers=headers())).json()
    assert zones["availabilityZoneInfo"][0]["zoneState"] == {"available": False}
    detail = await (await client.get(f"{C}/os-availability-zone/detail", headers=admin)).json()
    assert detail["availabilityZoneInfo"][0]["hosts"]["node-1"]["nova-compute"]["active"] \
        is False
    stored = await store.get_service("node-1", "nova-compute")
    assert stored is not None and (stored.disabled, stored.disabled_reason) == (
        True, "new disks")

    resp = await client.put(f"{C}/os-services/enable",
                            json={"host": "node-1", "binary": "nova-compute"}, headers=admin)
    assert await resp.json() == {"service": {"host": "node-1", "binary": "nova-compute",
                                             "status": "enabled"}}
    (service,) = (await (await client.get(f"{C}/os-services", headers=admin)).json())["services"]
    assert (service["status"], service["disabled_reason"]) == ("enabled", None)

    resp = await client.put(f"{C}/os-services/disable",
                            json={"host": "node-1", "binary": "nova-compute"}, headers=admin)
    assert (await resp.json())["service"] == {"host": "node-1", "binary": "nova-compute",
                                              "status": "disabled"}
    stored = await store.get_service("node-1", "nova-compute")
    assert stored is not None and (stored.disabled, stored.disabled_reason) == (True, None)


@pytest.mark.parametrize(("action", "body", "status", "message"), [
    ("reboot", {"host": "node-1", "binary": "nova-compute"}, 404, "Unknown action"),
    ("disable", {"host": "node-9", "binary": "nova-compute"}, 404,
     "Compute host node-9 with binary nova-compute could not be found."),
    ("enable", {"host": "node-1", "binary": "nova-scheduler"}, 404,
     "Compute host node-1 with binary nova-scheduler could not be found."),
    ("disable-log-reason", {"host": "node-1", "binary": "nova-compute"}, 400,
     "Missing disabled reason field"),
    ("disable-log-reason", {"host": "node-1", "binary": "nova-compute",
                            "disabled_reason": "x" * 256}, 400, None),
    ("disable", {"host": "node-1"}, 400, None),
    ("disable", {"host": "node-1", "binary": "nova-compute", "zone": "nova"}, 400, None),
])
async def test_service_updates_nova_refuses(client: Client, node: StaticNode, action: str,
                                            body: dict[str, Any], status: int,
                                            message: str | None) -> None:
    resp = await client.put(f"{C}/os-services/{action}", json=body,
                            headers=headers("admin-token"))
    assert resp.status == status
    error = await resp.json()
    (shape,) = error.values()
    assert shape["code"] == status
    if message is not None:
        assert shape["message"] == message
    assert node.service is not None and not node.service.row.disabled
