"""Instances moving between three real novad processes (issue 15), on
libvirt's test driver: each daemon holds its own hypervisor state, so a
guest that moved exists only on its new node.

The tests run in order on one cluster: a cold migration with confirm, a
cross-node resize with revert, a stopped server's migration, then an
evacuation of a killed node that was forced down, and that node's return,
which destroys its stale copy.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from cluster_helpers import Api, Proc, converged, eventually, running_cluster, token

pytestmark = pytest.mark.asyncio(loop_scope="module")

SERVERS = "/compute/v2.1/servers"
HOST = "OS-EXT-SRV-ATTR:host"
IMAGE: list[str] = []


@pytest.fixture(scope="module")
def procs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Proc]]:
    with running_cluster(tmp_path_factory.mktemp("moves"), ["node1", "node2", "node3"],
                         extra={"cluster": {"rejoin_wait": 20.0}}) as nodes:
        yield nodes


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def apis(procs: list[Proc], session: aiohttp.ClientSession) -> list[Api]:
    await converged(procs, session)
    tok = await token(session, procs[0], "admin", procs[0].admin_password())
    apis = [Api(session, p, tok) for p in procs]
    status, body = await apis[0].call("POST", "/compute/v2.1/flavors", {"flavor": {
        "name": "mv.small", "ram": 128, "vcpus": 1, "disk": 1, "id": "mv1"}})
    assert status == 200, body
    status, body = await apis[0].call("POST", "/compute/v2.1/flavors", {"flavor": {
        "name": "mv.large", "ram": 256, "vcpus": 2, "disk": 2, "id": "mv2"}})
    assert status == 200, body

    status, image = await apis[0].call("POST", "/image/v2/images", {
        "name": "mv-image", "disk_format": "raw", "container_format": "bare"})
    assert status == 201, image
    status, body = await apis[0].call("PUT", f"/image/v2/images/{image['id']}/file",
                                      data=b"\0" * 65536, ctype="application/octet-stream")
    assert status == 204, body
    IMAGE.append(image["id"])

    async def everywhere() -> bool:
        for a in apis:
            flavor, _ = await a.call("GET", "/compute/v2.1/flavors/mv2")
            img_status, img = await a.call("GET", f"/image/v2/images/{image['id']}")
            if flavor != 200 or img_status != 200 or img["status"] != "active":
                return False
        return True
    await eventually(everywhere, 15, "flavors and image replicated")
    return apis


async def server(api: Api, sid: str) -> dict[str, Any]:
    status, body = await api.call("GET", f"{SERVERS}/{sid}")
    assert status == 200, body
    return dict(body["server"])


async def settled(api: Api, sid: str, status: str) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    async def reached() -> bool:
        seen.update(await server(api, sid))
        assert seen["status"] != "ERROR", seen.get("fault")
        return bool(seen["status"] == status and seen["OS-EXT-STS:task_state"] is None)
    await eventually(reached, 60, f"server {sid} {status}")
    return seen


async def boot(api: Api, name: str, on: str | None = None) -> dict[str, Any]:
    """A server ACTIVE; ``on`` names its host (an admin's ``nova:<host>``)."""
    zone = {"availability_zone": f"nova:{on}"} if on else {}
    status, body = await api.call("POST", SERVERS, {"server": {
        "name": name, "flavorRef": "mv1", "imageRef": IMAGE[0], **zone}})
    assert status == 202, body
    return await settled(api, body["server"]["id"], "ACTIVE")


async def act(api: Api, sid: str, body: dict[str, Any], expect: int = 202) -> Any:
    status, answer = await api.call("POST", f"{SERVERS}/{sid}/action", body)
    assert status == expect, answer
    return answer


async def migrations(api: Api, sid: str, kind: str | None = None) -> list[dict[str, Any]]:
    query = f"&migration_type={kind}" if kind else ""
    status, body = await api.call("GET",
                                  f"/compute/v2.1/os-migrations?instance_uuid={sid}{query}")
    assert status == 200, body
    return list(body["migrations"])


def by_name(apis: list[Api], host: str) -> Api:
    return next(a for a in apis if a.proc.name == host)


async def test_cold_migrate_moves_the_server_and_confirm_frees_the_source(
        apis: list[Api]) -> None:
    inst = await boot(apis[0], "mv-cold")
    source = inst[HOST]
    await act(apis[1], inst["id"], {"migrate": None})
    moved = await settled(apis[2], inst["id"], "VERIFY_RESIZE")
    assert moved[HOST] != source
    # the owner is now the destination; every node answers about it
    for api in apis:
        assert (await server(api, inst["id"]))[HOST] == moved[HOST]
    [migration] = await migrations(by_name(apis, moved[HOST]), inst["id"])
    assert (migration["source_compute"], migration["dest_compute"], migration["status"]) \
        == (source, moved[HOST], "finished")
    await act(apis[0], inst["id"], {"confirmResize": None}, expect=204)
    after = await settled(apis[0], inst["id"], "ACTIVE")
    assert after[HOST] == moved[HOST]

    async def confirmed() -> bool:
        return (await migrations(apis[0], inst["id"]))[0]["status"] == "confirmed"
    await eventually(confirmed, 15, "migration confirmed everywhere")
    # the instance's history came along with it
    status, body = await apis[1].call("GET", f"{SERVERS}/{inst['id']}/os-instance-actions")
    assert status == 200, body
    assert {"create", "migrate", "confirmResize"} <= {a["action"]
                                                      for a in body["instanceActions"]}


async def test_resize_to_another_node_and_revert_returns_to_the_source(
        apis: list[Api]) -> None:
    inst = await boot(apis[1], "mv-resize")
    source = inst[HOST]
    await act(apis[2], inst["id"], {"resize": {"flavorRef": "mv2"}})
    resized = await settled(apis[0], inst["id"], "VERIFY_RESIZE")
    assert resized[HOST] != source
    assert resized["flavor"]["id"] == "mv2"
    await act(apis[0], inst["id"], {"revertResize": None})
    back = await settled(apis[1], inst["id"], "ACTIVE")
    assert back[HOST] == source
    assert back["flavor"]["id"] == "mv1"

    async def reverted() -> bool:
        return [m["status"] for m in await migrations(apis[2], inst["id"])] == ["reverted"]
    await eventually(reverted, 15, "migration reverted everywhere")


async def test_a_stopped_server_migrates_stopped(apis: list[Api]) -> None:
    inst = await boot(apis[2], "mv-stopped")
    await act(apis[2], inst["id"], {"os-stop": None})
    await settled(apis[2], inst["id"], "SHUTOFF")
    await act(apis[0], inst["id"], {"migrate": None})
    moved = await settled(apis[1], inst["id"], "VERIFY_RESIZE")
    assert moved["OS-EXT-STS:power_state"] == 4  # SHUTDOWN: not started on the target
    await act(apis[1], inst["id"], {"confirmResize": None}, expect=204)
    assert (await settled(apis[1], inst["id"], "SHUTOFF"))[HOST] == moved[HOST]


async def test_refusals_leave_the_server_where_it_is(apis: list[Api]) -> None:
    inst = await boot(apis[0], "mv-refused")
    source = inst[HOST]
    await act(apis[0], inst["id"], {"resize": {"flavorRef": "no-such"}}, expect=400)
    answer = await act(apis[1], inst["id"], {"evacuate": {}}, expect=400)
    assert "still in use" in answer["badRequest"]["message"]
    after = await settled(apis[2], inst["id"], "ACTIVE")
    assert after[HOST] == source
    # 2.18's project-scoped path reaches the owner the same way
    for api in apis:
        status, body = await api.call(
            "GET", f"/compute/v2.1/{after['tenant_id']}/servers/{inst['id']}")
        assert status == 200, body
        assert body["server"][HOST] == source


async def test_confirm_waits_for_the_source_to_be_up(procs: list[Proc], apis: list[Api]) -> None:
    source = procs[1]
    inst = await boot(apis[0], "mv-source-down", on=source.name)
    await act(apis[0], inst["id"], {"resize": {"flavorRef": "mv2"}})
    resized = await settled(apis[0], inst["id"], "VERIFY_RESIZE")
    owner = by_name(apis, resized[HOST])
    source.kill()

    async def dead() -> bool:
        return all(p.states().get(source.name) == "dead" for p in procs if p is not source)
    await eventually(dead, 30, f"{source.name} dead")
    answer = await act(owner, inst["id"], {"confirmResize": None}, expect=409)
    assert source.name in answer["conflictingRequest"]["message"]
    assert (await settled(owner, inst["id"], "VERIFY_RESIZE"))[HOST] == resized[HOST]

    source.start()
    await eventually(lambda: source.ready(owner.session), 90, f"{source.name} ready")

    async def alive() -> bool:
        return all(p.states().get(source.name) == "alive" for p in procs if p is not source)
    await eventually(alive, 30, f"{source.name} alive again")
    await act(owner, inst["id"], {"confirmResize": None}, expect=204)
    await settled(owner, inst["id"], "ACTIVE")
    assert not (source.state_dir / "instances" / inst["id"]).exists()


async def force_down(api: Api, host: str, down: bool) -> None:
    async with api.session.put(
            f"{api.proc.url}/compute/v2.1/os-services/force-down",
            json={"host": host, "binary": "nova-compute", "forced_down": down},
            headers={"X-Auth-Token": api.token, "OpenStack-API-Version": "compute 2.11"}) as resp:
        assert resp.status == 200, await resp.text()


async def forced_down_seen(api: Api, host: str) -> bool:
    async with api.session.get(
            f"{api.proc.url}/compute/v2.1/os-services?binary=nova-compute",
            headers={"X-Auth-Token": api.token, "OpenStack-API-Version": "compute 2.11"}) as resp:
        assert resp.status == 200, await resp.text()
        services = (await resp.json())["services"]
    return any(s["host"] == host and s["forced_down"] for s in services)


def rows_held(proc: Proc) -> set[str]:
    """The instance rows a node's own store holds (its ``instances`` table)."""
    with sqlite3.connect(proc.state_dir / "novad.sqlite") as conn:
        return {r[0] for r in conn.execute("SELECT uuid FROM instances WHERE deleted = 0")}


async def test_evacuate_a_killed_node_only_once_it_is_forced_down(
        procs: list[Proc], apis: list[Api]) -> None:
    victim, survivors = procs[2], apis[:2]
    mine = []
    for name in ("ev-active", "ev-stopped"):
        mine.append((await boot(apis[0], name, on=victim.name))["id"])
    await act(apis[2], mine[1], {"os-stop": None})
    await settled(apis[2], mine[1], "SHUTOFF")
    for sid in mine:
        assert (await server(apis[0], sid))[HOST] == victim.name

    victim.kill()

    async def dead() -> bool:
        return all(p.states().get(victim.name) == "dead" for p in procs[:2])
    await eventually(dead, 30, f"{victim.name} dead everywhere")
    answer = await act(survivors[0], mine[0], {"evacuate": {}}, expect=400)
    assert "not marked down" in answer["badRequest"]["message"]
    await force_down(survivors[0], victim.name, True)
    await eventually(lambda: forced_down_seen(survivors[1], victim.name), 15,
                     "the forced-down service replicated")
    for sid in mine:
        await act(survivors[1], sid, {"evacuate": {}}, expect=200)
    for sid in mine:
        async def moved(sid: str = sid) -> bool:
            hosts = [(await server(a, sid))[HOST] for a in survivors]
            return victim.name not in hosts
        await eventually(moved, 30, f"{sid} rebuilt elsewhere")
    active = await settled(survivors[0], mine[0], "ACTIVE")
    stopped = await settled(survivors[1], mine[1], "SHUTOFF")
    assert {active[HOST], stopped[HOST]} <= {p.name for p in procs[:2]}
    [evacuation] = await migrations(survivors[0], mine[0], "evacuation")
    assert evacuation["source_compute"] == victim.name

    # The dead node comes back: it must not keep (or start) what moved on.
    victim.start()
    await eventually(lambda: victim.ready(apis[0].session), 90, f"{victim.name} ready")
    assert not set(mine) & rows_held(victim)
    for sid in mine:  # one copy, where it was evacuated to, seen alike from every node
        assert (await server(apis[2], sid))[HOST] in {p.name for p in procs[:2]}

    async def completed() -> bool:
        found = await migrations(survivors[0], mine[0], "evacuation")
        return [m["status"] for m in found] == ["completed"]
    await eventually(completed, 15, "the evacuation completed by the returning node")
    await force_down(survivors[0], victim.name, False)
