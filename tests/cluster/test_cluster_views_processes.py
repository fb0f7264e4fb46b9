"""Three real novad processes: every node's API shows the whole cluster
(issue 14: compute service list, hypervisor list, availability zone list,
server list --all-projects), and a node disabled through another node takes
no new servers.

Node 1 starts alone; nodes 2 and 3 name it as their seed; node 3 alone is
in zone ``edge``.  The tests run in order on the same cluster.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from cluster_helpers import Api, Proc, eventually, converged, running_cluster, token
from novad.compute.hosts import stable_id

pytestmark = pytest.mark.asyncio(loop_scope="module")

NAMES = ("node1", "node2", "node3")
ZONES = {"node1": "nova", "node2": "nova", "node3": "edge"}
C = "/compute/v2.1"


@pytest.fixture(scope="module")
def procs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Proc]]:
    with running_cluster(tmp_path_factory.mktemp("views"), list(NAMES),
                         only={"node3": {"DEFAULT": {"default_availability_zone": "edge"}}}
                         ) as nodes:
        yield nodes


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def apis(procs: list[Proc], session: aiohttp.ClientSession) -> list[Api]:
    """An admin client on every node, once all three see each other alive."""
    await converged(procs, session)
    admin = await token(session, procs[0], "admin", procs[0].admin_password())
    return [Api(session, proc, admin) for proc in procs]


async def get(api: Api, path: str) -> Any:
    status, body = await api.call("GET", C + path)
    assert status == 200, body
    return body


async def test_every_node_lists_every_compute_service(apis: list[Api]) -> None:
    for api in apis:
        services = (await get(api, "/os-services"))["services"]
        assert [(s["host"], s["zone"], s["status"], s["state"]) for s in services] == [
            (name, ZONES[name], "enabled", "up") for name in NAMES], api.proc.name
        ids = {s["host"]: s["id"] for s in services}
        assert ids == {n: 1 if n == api.proc.name else stable_id(n) for n in NAMES}


async def test_every_node_lists_every_hypervisor(apis: list[Api]) -> None:
    for api in apis:
        async def resources_known(api: Api = api) -> bool:  # meta is gossiped every 2 s
            listed = (await get(api, "/os-hypervisors/detail"))["hypervisors"]
            return len(listed) == 3 and all(h["vcpus"] > 0 for h in listed)
        await eventually(resources_known, 30, f"every hypervisor's resources on {api.proc.name}")
        listed = (await get(api, "/os-hypervisors"))["hypervisors"]
        assert [(h["hypervisor_hostname"], h["state"], h["status"]) for h in listed] == [
            (name, "up", "enabled") for name in NAMES]
        other = next(n for n in NAMES if n != api.proc.name)
        shown = await get(api, f"/os-hypervisors/{stable_id(other)}")
        assert shown["hypervisor"]["service"]["host"] == other


async def test_every_node_lists_every_zone(apis: list[Api]) -> None:
    for api in apis:
        zones = (await get(api, "/os-availability-zone"))["availabilityZoneInfo"]
        assert [(z["zoneName"], z["zoneState"]["available"]) for z in zones] == [
            ("edge", True), ("nova", True)], api.proc.name
        detail = (await get(api, "/os-availability-zone/detail"))["availabilityZoneInfo"]
        assert {z["zoneName"]: sorted(z["hosts"]) for z in detail} == {
            "edge": ["node3"], "nova": ["node1", "node2"]}


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def image(apis: list[Api]) -> str:
    status, img = await apis[0].call("POST", "/image/v2/images", {
        "name": "views-img", "disk_format": "raw", "container_format": "bare"})
    assert status == 201, img
    status, body = await apis[0].call("PUT", f"/image/v2/images/{img['id']}/file",
                                      data=os.urandom(4096), ctype="application/octet-stream")
    assert status == 204, body
    return str(img["id"])


async def boot(api: Api, name: str, image: str, zone: str) -> dict[str, Any]:
    """Boot through ``api`` and wait until the server is ACTIVE or ERROR; its body."""
    status, body = await api.call("POST", f"{C}/servers", {"server": {
        "name": name, "flavorRef": "42", "imageRef": image, "availability_zone": zone}})
    assert status == 202, body
    server = body["server"]["id"]
    seen: dict[str, Any] = {}

    async def settled() -> bool:
        code, shown = await api.call("GET", f"{C}/servers/{server}")
        assert code == 200, shown
        seen.update(shown["server"])
        return bool(shown["server"]["status"] in ("ACTIVE", "ERROR")
                    and shown["server"]["OS-EXT-STS:task_state"] is None)
    await eventually(settled, 60, f"{name} settled")
    return seen


async def delete(api: Api, server: str) -> None:
    code, body = await api.call("DELETE", f"{C}/servers/{server}")
    assert code == 204, body

    async def gone() -> bool:
        code, _ = await api.call("GET", f"{C}/servers/{server}")
        return code == 404
    await eventually(gone, 60, f"{server} deleted")


async def test_a_node_disabled_through_another_takes_no_new_servers(
        apis: list[Api], image: str) -> None:
    on1, on2 = apis[0], apis[1]
    status, body = await on1.call("PUT", f"{C}/os-services/disable-log-reason", {
        "host": "node2", "binary": "nova-compute", "disabled_reason": "drained from node1"})
    assert status == 200, body

    async def node2_knows() -> bool:
        [own] = (await get(on2, "/os-services?host=node2"))["services"]
        return bool(own["status"] == "disabled")
    await eventually(node2_knows, 15, "node2's replicated service row")

    async def refused() -> bool:  # node2 re-reads its record before every meta gossip
        shown = await boot(on1, "to-drained", image, "nova:node2")
        await delete(on1, shown["id"])
        return bool(shown["status"] == "ERROR")
    await eventually(refused, 30, "a boot on node2 finds no valid host")

    status, body = await apis[2].call("PUT", f"{C}/os-services/enable", {
        "host": "node2", "binary": "nova-compute"})
    assert status == 200, body

    async def accepted() -> bool:
        shown = await boot(on1, "to-enabled", image, "nova:node2")
        await delete(on1, shown["id"])
        return bool(shown["status"] == "ACTIVE")
    await eventually(accepted, 30, "a boot on node2 goes through again")


async def test_every_node_lists_every_nodes_servers(apis: list[Api], image: str) -> None:
    servers = {}
    for api, name in zip(apis, NAMES, strict=True):
        shown = await boot(api, f"on-{name}", image, f"{ZONES[name]}:{name}")
        assert (shown["status"], shown["OS-EXT-SRV-ATTR:host"]) == ("ACTIVE", name)
        servers[name] = shown["id"]
    for api in apis:
        async def lists_all(api: Api = api) -> bool:
            body = await get(api, "/servers/detail?all_tenants=1")
            return {(s["name"], s["OS-EXT-SRV-ATTR:host"], s["status"])
                    for s in body["servers"]} == {(f"on-{n}", n, "ACTIVE") for n in NAMES}
        await eventually(lists_all, 15, f"every server listed on {api.proc.name}")
        on3 = (await get(api, "/servers?all_tenants=1&host=node3"))["servers"]
        assert [s["id"] for s in on3] == [servers["node3"]]
    for name, server in servers.items():
        await delete(apis[0], server)
