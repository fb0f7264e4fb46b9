"""Placement under load (issue 14, item 2): 100 concurrent creates spread
over 5 real daemons, with a flavor that fills the cluster exactly.

Each node offers 16 vCPUs × 1.25 = 20 one-vCPU servers, so the cluster
holds 100.  Whatever the interleaving: no node holds more than its
allocation ratio allows, every create that found no room is ERROR with
NoValidHost, and every server accepted exists exactly once.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest

from cluster_helpers import Api, Proc, eventually, converged, running_cluster, token

pytestmark = pytest.mark.asyncio(loop_scope="module")

NODES = 5
CAPACITY = 20  # per node: 16 vCPUs (libvirt's test driver) × cpu_allocation_ratio 1.25
CREATES = 100


@pytest.fixture(scope="module")
def procs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Proc]]:
    extra = {"DEFAULT": {"cpu_allocation_ratio": 1.25, "reserved_host_memory_mb": 0},
             "quota": {"instances": -1, "cores": -1, "ram": -1}}
    with running_cluster(tmp_path_factory.mktemp("placement"),
                         [f"p{i}" for i in range(1, NODES + 1)], extra) as nodes:
        yield nodes


async def listing(api: Api) -> list[dict[str, Any]]:
    code, body = await api.call("GET", "/compute/v2.1/servers/detail?all_tenants=1")
    assert code == 200, body
    return list(body["servers"])


async def test_concurrent_creates_fill_the_cluster_without_overcommit(
        procs: list[Proc], session: aiohttp.ClientSession) -> None:
    await converged(procs, session)

    async def resources_known() -> bool:  # a member's resources arrive with its gossip
        return all(m["resources"].get("vcpus", 0) > 0 for p in procs for m in p.members())
    await eventually(resources_known, 30, "every node knows every node's resources")
    tok = await token(session, procs[0], "admin", procs[0].admin_password())
    apis = [Api(session, p, tok) for p in procs]
    code, body = await apis[0].call("POST", "/compute/v2.1/flavors", {"flavor": {
        "name": "one", "ram": 64, "vcpus": 1, "disk": 0, "id": "one"}})
    assert code == 200, body
    code, image = await apis[0].call("POST", "/image/v2/images", {
        "name": "tiny", "disk_format": "raw", "container_format": "bare"})
    assert code == 201, image
    code, _ = await apis[0].call("PUT", f"/image/v2/images/{image['id']}/file",
                                 data=os.urandom(4096), ctype="application/octet-stream")
    assert code == 204

    async def everywhere() -> bool:
        for api in apis:
            f, _ = await api.call("GET", "/compute/v2.1/flavors/one")
            i, shown = await api.call("GET", f"/image/v2/images/{image['id']}")
            if (f, i) != (200, 200) or shown["status"] != "active":
                return False
        return True
    await eventually(everywhere, 15, "flavor and image on every node")

    async def create(i: int) -> str:
        code, body = await apis[i % NODES].call("POST", "/compute/v2.1/servers", {"server": {
            "name": f"load-{i}", "flavorRef": "one", "imageRef": image["id"]}})
        assert code == 202, body
        return str(body["server"]["id"])
    accepted = await asyncio.gather(*(create(i) for i in range(CREATES)))
    assert len(set(accepted)) == CREATES, "every create got its own server"

    owned: dict[str, dict[str, Any]] = {}

    async def settled() -> bool:
        owned.clear()
        for api in apis:
            for server in await listing(api):
                if server["OS-EXT-SRV-ATTR:host"] != api.proc.name:
                    continue  # another node's server, listed from the directory
                assert server["id"] not in owned, f"{server['id']} owned twice"
                owned[server["id"]] = server
        return len(owned) == CREATES and all(
            s["status"] in ("ACTIVE", "ERROR") for s in owned.values())
    await eventually(settled, 180, "all 100 servers ACTIVE or ERROR")
    assert set(owned) == set(accepted), "no server lost, none extra"

    active = Counter(s["OS-EXT-SRV-ATTR:host"] for s in owned.values() if s["status"] == "ACTIVE")
    errors = [s for s in owned.values() if s["status"] == "ERROR"]
    print(f"placed per node: {dict(sorted(active.items()))}; NoValidHost: {len(errors)}")
    for why, n in Counter(s["fault"].get("details", "").strip().splitlines()[-1] for s in errors).most_common(5):
        print(f"  {n} × {why}")
    for host, count in active.items():
        assert count <= CAPACITY, f"{host} over-committed: {count} > {CAPACITY}"
    for server in errors:
        assert "No valid host was found" in server["fault"]["message"], server["fault"]
    assert sum(active.values()) + len(errors) == CREATES


async def test_a_full_cluster_refuses_with_no_valid_host_naming_the_filter(
        procs: list[Proc], session: aiohttp.ClientSession) -> None:
    tok = await token(session, procs[0], "admin", procs[0].admin_password())
    apis = [Api(session, p, tok) for p in procs]
    used = 0
    for api in apis:
        used += sum(1 for s in await listing(api)
                    if s["OS-EXT-SRV-ATTR:host"] == api.proc.name and s["status"] == "ACTIVE")
    if used < NODES * CAPACITY:
        pytest.fail(f"the previous test left the cluster at {used} of {NODES * CAPACITY}")
    _, images = await apis[1].call("GET", "/image/v2/images?name=tiny")
    [image] = images["images"]
    code, body = await apis[2].call("POST", "/compute/v2.1/servers", {"server": {
        "name": "one-too-many", "flavorRef": "one", "imageRef": image["id"]}})
    assert code == 202, body
    server = body["server"]["id"]
    shown: dict[str, Any] = {}

    async def failed() -> bool:
        code, body = await apis[2].call("GET", f"/compute/v2.1/servers/{server}")
        shown.update(body["server"])
        return bool(code == 200 and body["server"]["status"] == "ERROR")
    await eventually(failed, 60, "the extra server ERROR")
    assert "No valid host was found" in shown["fault"]["message"]
    assert "CoreFilter" in shown["fault"].get("details", ""), shown["fault"]
