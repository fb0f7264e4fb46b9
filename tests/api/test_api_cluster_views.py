"""The cluster as any node's API shows it: os-services, os-hypervisors and
os-availability-zone list every member that membership knows.

Membership is stood in for by a list of members (``StaticNode.members``);
the service records are in a real SQLite store, as replication leaves them.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from api_helpers import StaticNode, headers

from novad.cluster.members import Member, MemberState
from novad.compute.hosts import HostStatuses, host_status, stable_id
from novad.compute.service_record import ServiceRecord
from novad.store import Store

Client = TestClient[Any, Any]
C = "/compute/v2.1"
ADMIN = headers("admin-token")


def member(name: str, state: MemberState, az: str = "nova", seen: float = 990.0,
           **resources: int) -> Member:
    res = {"vcpus": 4, "vcpus_used": 1, "memory_mb": 8192, "memory_mb_used": 1024,
           "local_gb": 50, "local_gb_used": 5, "running_vms": 1, **resources}
    meta = {"az": az, "hypervisor_type": "QEMU", "enabled": True, "resources": res}
    return Member(name, f"10.0.0.{name[-1]}:8774", state, 1, meta, 0.0, seen)


@pytest.fixture
def cluster(node: StaticNode) -> StaticNode:
    """node-1 (this one), node-2 alive, node-3 dead in zone edge, node-4 left,
    node-5 alive in zone edge; membership lists this node too."""
    node.members = [member("node-1", MemberState.ALIVE, seen=1000.0),
                    member("node-2", MemberState.ALIVE, vcpus=16),
                    member("node-3", MemberState.DEAD, az="edge", seen=400.0),
                    member("node-4", MemberState.LEFT),
                    member("node-5", MemberState.ALIVE, az="edge")]
    return node


async def get(client: Client, path: str) -> Any:
    resp = await client.get(f"{C}{path}", headers=ADMIN)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def test_one_compute_service_per_member(client: Client, cluster: StaticNode) -> None:
    services = (await get(client, "/os-services"))["services"]
    assert [(s["host"], s["zone"], s["status"], s["state"]) for s in services] == [
        ("node-1", "nova", "enabled", "up"), ("node-2", "nova", "enabled", "up"),
        ("node-3", "edge", "enabled", "down"), ("node-4", "nova", "enabled", "down"),
        ("node-5", "edge", "enabled", "up")]
    assert [s["id"] for s in services] == [1, *(stable_id(f"node-{i}") for i in (2, 3, 4, 5))]
    assert {s["binary"] for s in services} == {"nova-compute"}
    dead = services[2]
    assert dead["updated_at"] < services[1]["updated_at"], "last heard from 600 s earlier"
    (only,) = (await get(client, "/os-services?host=node-3"))["services"]
    assert only["host"] == "node-3"


async def test_a_host_is_disabled_from_another_node(client: Client, cluster: StaticNode,
                                                    store: Store) -> None:
    body = {"host": "node-2", "binary": "nova-compute", "disabled_reason": "new disks"}
    resp = await client.put(f"{C}/os-services/disable-log-reason", json=body, headers=ADMIN)
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["service"]["status"] == "disabled"
    stored = await store.get_service("node-2", "nova-compute")
    assert stored is not None and (stored.disabled, stored.disabled_reason) == (
        True, "new disks")
    assert cluster.service is not None and not cluster.service.row.disabled, "this node: no"

    # node-2's own record, reading the row replication brought it
    owner = ServiceRecord(store, "node-2")
    await owner.load()
    assert not owner.schedulable()

    by_host = {s["host"]: s for s in (await get(client, "/os-services"))["services"]}
    assert (by_host["node-2"]["status"], by_host["node-2"]["disabled_reason"]) == (
        "disabled", "new disks")
    hyp = await get(client, f"/os-hypervisors/{stable_id('node-2')}")
    assert (hyp["hypervisor"]["status"], hyp["hypervisor"]["service"]["disabled_reason"]) == (
        "disabled", "new disks")

    resp = await client.put(f"{C}/os-services/enable",
                            json={"host": "node-2", "binary": "nova-compute"}, headers=ADMIN)
    assert resp.status == 200
    await owner.load()
    assert owner.schedulable() and owner.row.disabled_reason is None


async def test_a_dead_member_can_be_disabled_but_a_stranger_cannot(
        client: Client, cluster: StaticNode) -> None:
    ok = await client.put(f"{C}/os-services/disable",
                          json={"host": "node-3", "binary": "nova-compute"}, headers=ADMIN)
    assert ok.status == 200
    resp = await client.put(f"{C}/os-services/disable",
                            json={"host": "node-9", "binary": "nova-compute"}, headers=ADMIN)
    assert resp.status == 404
    assert (await resp.json())["itemNotFound"]["message"] == \
        "Compute host node-9 with binary nova-compute could not be found."


async def test_one_hypervisor_per_member(client: Client, cluster: StaticNode) -> None:
    listed = (await get(client, "/os-hypervisors"))["hypervisors"]
    assert [(h["id"], h["hypervisor_hostname"], h["state"]) for h in listed] == [
        (1, "node-1", "up"), (stable_id("node-2"), "node-2", "up"),
        (stable_id("node-3"), "node-3", "down"), (stable_id("node-4"), "node-4", "down"),
        (stable_id("node-5"), "node-5", "up")]
    detail = {h["hypervisor_hostname"]: h
              for h in (await get(client, "/os-hypervisors/detail"))["hypervisors"]}
    two = detail["node-2"]
    assert (two["vcpus"], two["vcpus_used"], two["free_ram_mb"], two["free_disk_gb"],
            two["running_vms"], two["hypervisor_type"]) == (16, 1, 7168, 45, 1, "QEMU")
    assert two["service"] == {"id": stable_id("node-2"), "host": "node-2",
                              "disabled_reason": None}
    assert detail["node-1"]["vcpus"] == 8, "this node's own from its driver"
    shown = await get(client, f"/os-hypervisors/{stable_id('node-2')}")
    assert shown["hypervisor"] == two
    # this node's id elsewhere names it here too
    mine = await get(client, f"/os-hypervisors/{stable_id('node-1')}")
    assert mine["hypervisor"]["id"] == 1
    stats = (await get(client, "/os-hypervisors/statistics"))["hypervisor_statistics"]
    assert (stats["count"], stats["vcpus"], stats["running_vms"]) == (5, 8 + 16 + 4 * 3, 1 + 4)


async def test_another_members_uptime_is_501(client: Client, cluster: StaticNode) -> None:
    resp = await client.get(f"{C}/os-hypervisors/{stable_id('node-2')}/uptime",
                            headers=ADMIN)
    assert resp.status == 501
    body = await get(client, "/os-hypervisors/1/uptime")
    assert " up " in body["hypervisor"]["uptime"]


async def test_zones_of_the_members_that_are_up(client: Client, cluster: StaticNode) -> None:
    zones = (await get(client, "/os-availability-zone"))["availabilityZoneInfo"]
    assert zones == [
        {"zoneName": "edge", "zoneState": {"available": True}, "hosts": None},
        {"zoneName": "nova", "zoneState": {"available": True}, "hosts": None}]
    await client.put(f"{C}/os-services/disable",
                     json={"host": "node-5", "binary": "nova-compute"}, headers=ADMIN)
    detail = {z["zoneName"]: z for z in
              (await get(client, "/os-availability-zone/detail"))["availabilityZoneInfo"]}
    assert detail["edge"]["zoneState"] == {"available": False}, "its one host up is disabled"
    assert set(detail["edge"]["hosts"]) == {"node-5"}, "node-3 is dead"
    assert detail["edge"]["hosts"]["node-5"]["nova-compute"]["active"] is False
    assert set(detail["nova"]["hosts"]) == {"node-1", "node-2"}
    assert detail["nova"]["zoneState"] == {"available": True}


async def test_services_and_zones_answer_while_libvirt_is_down(
        client: Client, cluster: StaticNode) -> None:
    cluster.libvirt_down = True
    services = (await get(client, "/os-services"))["services"]
    assert len(services) == 5
    assert len((await get(client, "/os-availability-zone"))["availabilityZoneInfo"]) == 2
    resp = await client.get(f"{C}/os-hypervisors", headers=ADMIN)
    assert resp.status >= 500, "this node's own hypervisor cannot be read"


async def test_unreachable_hosts_are_the_listed_hosts_not_alive(cluster: StaticNode) -> None:
    """``Hosts.unreachable`` (what servers' down-cell views use) reads
    membership only, and names exactly the hosts ``list_hosts`` calls not
    alive, never this node."""
    listed = await cluster.hosts.list_hosts()
    assert cluster.hosts.unreachable() == {h.name for h in listed if not h.alive and not h.local}
    assert cluster.hosts.unreachable() == {"node-3", "node-4"}


async def test_host_statuses_give_each_hosts_host_status(cluster: StaticNode) -> None:
    """A listing's ``HostStatuses`` answers what ``host_status`` answers, for
    known hosts, an unknown one and no host at all."""
    listed = await cluster.hosts.list_hosts()
    statuses = HostStatuses(listed)
    by_name = {h.name: h for h in listed}
    for name in [*by_name, "stranger", ""]:
        assert statuses.status(name) == host_status(by_name, name)
    assert [statuses.status(n) for n in ("node-2", "node-3", "stranger", "")] == \
        ["UP", "UNKNOWN", "UNKNOWN", ""]
