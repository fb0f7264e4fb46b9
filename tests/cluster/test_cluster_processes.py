"""Five real novad processes clustered on loopback (issue 14, item 1).

Node 1 starts alone; nodes 2-5 name it as their seed.  The tests run in
order on the same cluster: what one node creates is used on another, one
node is killed and restarted, and nodes with a wrong key or a taken name
are refused.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio

from cluster_helpers import NOVAD, Api, Proc, eventually, free_port, converged, running_cluster, token
from novad.cluster.auth import init_key

pytestmark = pytest.mark.asyncio(loop_scope="module")

NODES = 5


@pytest.fixture(scope="module")
def procs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Proc]]:
    # node 5 alone is in zone "edge": a boot asking for that zone must land there
    with running_cluster(tmp_path_factory.mktemp("cluster"),
                         [f"node{i}" for i in range(1, NODES + 1)],
                         only={f"node{NODES}": {"DEFAULT": {"default_availability_zone": "edge"}}}
                         ) as nodes:
        yield nodes


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def cluster(procs: list[Proc], session: aiohttp.ClientSession) -> list[Proc]:
    await converged(procs, session)
    return procs


async def admin(session: aiohttp.ClientSession, issuer: Proc, user: Proc) -> Api:
    """An admin API client on ``user`` with a token ``issuer`` issued."""
    password = issuer.admin_password() if (issuer.state_dir / "clouds.yaml").exists() else ""
    return Api(session, user, await token(session, issuer, "admin", password))


async def test_only_the_first_node_bootstrapped(cluster: list[Proc]) -> None:
    assert (cluster[0].state_dir / "clouds.yaml").exists()
    for proc in cluster[1:]:
        assert not (proc.state_dir / "clouds.yaml").exists(), proc.name


async def test_a_token_issued_by_node1_works_on_node4(cluster: list[Proc],
                                                      session: aiohttp.ClientSession) -> None:
    tok = await token(session, cluster[0], "admin", cluster[0].admin_password())
    status, body = await Api(session, cluster[3], tok).call("GET", "/compute/v2.1/flavors")
    assert status == 200, body
    assert {f["name"] for f in body["flavors"]} >= {"m1.tiny", "m1.small"}
    # and node 4 issues tokens for the same admin (the password hash travelled)
    assert await token(session, cluster[3], "admin", cluster[0].admin_password())


async def test_objects_created_on_node2_are_usable_on_node5(
        cluster: list[Proc], session: aiohttp.ClientSession) -> None:
    on2 = Api(session, cluster[1], await token(session, cluster[1], "admin",
                                               cluster[0].admin_password()))
    on5 = Api(session, cluster[4], on2.token)
    status, body = await on2.call("POST", "/compute/v2.1/flavors", {"flavor": {
        "name": "c1.replicated", "ram": 128, "vcpus": 1, "disk": 1, "id": "c1r"}})
    assert status == 200, body
    status, body = await on2.call("POST", "/compute/v2.1/os-keypairs", {"keypair": {
        "name": "k-replicated"}})
    assert status == 200, body
    status, image = await on2.call("POST", "/image/v2/images", {
        "name": "img-replicated", "disk_format": "raw", "container_format": "bare"})
    assert status == 201, image
    data = os.urandom(4096)
    status, body = await on2.call("PUT", f"/image/v2/images/{image['id']}/file", data=data,
                                  ctype="application/octet-stream")
    assert status == 204, body

    async def on_node5() -> bool:
        flavor, _ = await on5.call("GET", "/compute/v2.1/flavors/c1r")
        key, _ = await on5.call("GET", "/compute/v2.1/os-keypairs/k-replicated")
        img_status, img = await on5.call("GET", f"/image/v2/images/{image['id']}")
        return flavor == 200 and key == 200 and img_status == 200 and img["status"] == "active"
    await eventually(on_node5, 15, "flavor, key pair and image visible on node 5")
    _, img = await on5.call("GET", f"/image/v2/images/{image['id']}")
    assert img["checksum"] == hashlib.md5(data).hexdigest()  # noqa: S324 - Glance's checksum


def log_lines(procs: list[Proc], needle: str, last: int = 12) -> str:
    """Each node's last ``last`` log lines that mention ``needle``: what a
    failure message needs to tell which node answered what, and when."""
    return "\n".join(f"--- {p.name}:\n" + "\n".join(
        [line for line in p.log().splitlines() if needle in line][-last:]) for p in procs)


async def wait_status(api: Api, server: str, status: str,
                      everyone: list[Proc] | None = None) -> dict[str, object]:
    seen: dict[str, object] = {}

    async def reached() -> bool:
        code, body = await api.call("GET", f"/compute/v2.1/servers/{server}")
        assert code == 200, (api.proc.name, seen.get("status"), seen.get("OS-EXT-STS:task_state"),
                             body, log_lines(everyone or [], server))
        seen.update(body["server"])
        assert body["server"]["status"] != "ERROR", body["server"].get("fault")
        return bool(body["server"]["status"] == status and
                    body["server"]["OS-EXT-STS:task_state"] is None)
    await eventually(reached, 60, f"server {status} via {api.proc.name}")
    return seen


def actions(image_id: str) -> list[tuple[dict[str, object], str]]:
    """(action body, status after), each sent to the next node in turn."""
    return [
        ({"os-stop": None}, "SHUTOFF"), ({"os-start": None}, "ACTIVE"),
        ({"pause": None}, "PAUSED"), ({"unpause": None}, "ACTIVE"),
        ({"suspend": None}, "SUSPENDED"), ({"resume": None}, "ACTIVE"),
        ({"reboot": {"type": "HARD"}}, "ACTIVE"), ({"reboot": {"type": "SOFT"}}, "ACTIVE"),
        ({"lock": None}, "ACTIVE"), ({"unlock": None}, "ACTIVE"),
        ({"rescue": None}, "RESCUE"), ({"unrescue": None}, "ACTIVE"),
        ({"resize": {"flavorRef": "c2r"}}, "VERIFY_RESIZE"), ({"confirmResize": None}, "ACTIVE"),
        ({"resize": {"flavorRef": "c1r"}}, "VERIFY_RESIZE"), ({"revertResize": None}, "ACTIVE"),
        ({"rebuild": {"imageRef": image_id}}, "ACTIVE"),
        ({"createImage": {"name": "roamer-snap"}}, "ACTIVE"),
        ({"createBackup": {"name": "roamer-bak", "backup_type": "daily", "rotation": 1}},
         "ACTIVE"),
        ({"os-resetState": {"state": "active"}}, "ACTIVE"),
        ({"shelve": None}, "SHELVED_OFFLOADED"), ({"unshelve": None}, "ACTIVE"),
    ]


async def test_a_server_created_via_node3_lands_where_the_filters_say_and_obeys_every_node(
        cluster: list[Proc], session: aiohttp.ClientSession) -> None:
    tok = await token(session, cluster[0], "admin", cluster[0].admin_password())
    apis = [Api(session, p, tok) for p in cluster]
    _, images = await apis[2].call("GET", "/image/v2/images?name=img-replicated")
    [image] = images["images"]
    status, body = await apis[2].call("POST", "/compute/v2.1/servers", {"server": {
        "name": "roamer", "flavorRef": "c1r", "imageRef": image["id"],
        "key_name": "k-replicated", "availability_zone": "edge"}})
    assert status == 202, body
    server = body["server"]["id"]
    shown = await wait_status(apis[0], server, "ACTIVE")
    assert shown["OS-EXT-SRV-ATTR:host"] == "node5", "AvailabilityZoneFilter: only node5 is edge"
    assert shown["key_name"] == "k-replicated"
    code, body = await apis[1].call("POST", "/compute/v2.1/flavors", {"flavor": {
        "name": "c2.replicated", "ram": 192, "vcpus": 2, "disk": 1, "id": "c2r"}})
    assert code == 200, body
    steps = actions(image["id"])
    for i, (action, after) in enumerate(steps):
        api = apis[i % len(apis)]
        code, answer = await api.call("POST", f"/compute/v2.1/servers/{server}/action", action)
        assert code in (200, 202, 204), (api.proc.name, action, answer)
        await wait_status(apis[(i + 1) % len(apis)], server, after, cluster)
    code, events = await apis[1].call("GET", f"/compute/v2.1/servers/{server}/os-instance-actions")
    assert code == 200 and len(events["instanceActions"]) >= len(steps) + 1
    code, answer = await apis[3].call("DELETE", f"/compute/v2.1/servers/{server}")
    assert code == 204, answer

    async def gone() -> bool:
        code, _ = await apis[0].call("GET", f"/compute/v2.1/servers/{server}")
        return code == 404
    await eventually(gone, 60, "server deleted")


@pytest.mark.parametrize("policy", ["anti-affinity", "affinity"])
async def test_server_groups_place_across_the_cluster(
        cluster: list[Proc], session: aiohttp.ClientSession, policy: str) -> None:
    tok = await token(session, cluster[0], "admin", cluster[0].admin_password())
    apis = [Api(session, p, tok) for p in cluster]
    code, body = await apis[0].call("POST", "/compute/v2.1/os-server-groups", {
        "server_group": {"name": f"g-{policy}", "policies": [policy]}})
    assert code == 200, body
    group = body["server_group"]["id"]
    _, images = await apis[0].call("GET", "/image/v2/images?name=img-replicated")
    servers = []
    for i in range(3):  # each sent to another node; each must see the group's members so far
        api = apis[(i + 1) % len(apis)]

        async def group_known(api: Api = api) -> bool:
            code, shown = await api.call("GET", f"/compute/v2.1/os-server-groups/{group}")
            return code == 200 and len(shown["server_group"]["members"]) == len(servers)
        await eventually(group_known, 15, "the group's members so far on the next node")
        code, body = await api.call("POST", "/compute/v2.1/servers", {
            "server": {"name": f"{policy}-{i}", "flavorRef": "c1r",
                       "imageRef": images["images"][0]["id"]},
            "os:scheduler_hints": {"group": group}})
        assert code == 202, body
        servers.append(body["server"]["id"])
        await wait_status(apis[0], servers[-1], "ACTIVE")
    hosts = [(await wait_status(apis[0], s, "ACTIVE"))["OS-EXT-SRV-ATTR:host"] for s in servers]
    if policy == "anti-affinity":
        assert len(set(hosts)) == 3, hosts
    else:
        assert len(set(hosts)) == 1, hosts
    for server in servers:
        code, _ = await apis[2].call("DELETE", f"/compute/v2.1/servers/{server}")
        assert code == 204

    async def members_gone() -> bool:  # a deleted server leaves its group, everywhere
        code, shown = await apis[0].call("GET", f"/compute/v2.1/os-server-groups/{group}")
        return code == 200 and shown["server_group"]["members"] == []
    await eventually(members_gone, 30, "deleted servers left the group")


async def test_sigkill_is_seen_as_dead_by_all_others(
        cluster: list[Proc], session: aiohttp.ClientSession) -> None:
    victim, others = cluster[2], [p for i, p in enumerate(cluster) if i != 2]
    tok = await token(session, cluster[0], "admin", cluster[0].admin_password())
    apis = [Api(session, p, tok) for p in cluster]
    _, images = await apis[0].call("GET", "/image/v2/images?name=img-replicated")
    code, body = await apis[0].call("POST", "/compute/v2.1/servers", {"server": {
        "name": "stranded", "flavorRef": "c1r", "imageRef": images["images"][0]["id"],
        "availability_zone": "nova:node3"}})
    assert code == 202, body
    stranded = body["server"]["id"]
    shown = await wait_status(apis[1], stranded, "ACTIVE")
    assert shown["OS-EXT-SRV-ATTR:host"] == "node3", "an admin's zone:host forces the host"

    async def replicated_to_node1() -> bool:  # replication is asynchronous: let it land
        db = sqlite3.connect(f"file:{cluster[0].state_dir / 'novad.sqlite'}?mode=ro", uri=True)
        try:
            row = db.execute("SELECT vm_state, task_state FROM cluster_instances WHERE uuid = ?",
                             (stranded,)).fetchone()
        finally:
            db.close()
        return row == ("active", None)
    await eventually(replicated_to_node1, 15, "the ACTIVE record on node 1")
    victim.kill()
    started = time.monotonic()

    async def everyone_sees_it_dead() -> bool:
        return all(p.states().get(victim.name) == "dead" for p in others)
    await eventually(everyone_sees_it_dead, 30, f"{victim.name} dead everywhere")
    print(f"{victim.name} seen dead by all {len(others)} others after "
          f"{time.monotonic() - started:.1f} s (bench: scripts/bench/gossip.py --real)")
    # reads come from the replicated record; writes name the node that is down
    code, body = await apis[0].call("GET", f"/compute/v2.1/servers/{stranded}")
    assert code == 200 and body["server"]["status"] == "ACTIVE", body
    code, body = await apis[1].call("POST", f"/compute/v2.1/servers/{stranded}/action",
                                    {"os-stop": None})
    assert code == 409 and "node3" in body["conflictingRequest"]["message"], body


async def test_a_restarted_node_rejoins_and_catches_up(
        cluster: list[Proc], session: aiohttp.ClientSession) -> None:
    victim = cluster[2]
    on1 = Api(session, cluster[0], await token(session, cluster[0], "admin",
                                               cluster[0].admin_password()))
    status, body = await on1.call("POST", "/compute/v2.1/flavors", {"flavor": {
        "name": "made-while-down", "ram": 64, "vcpus": 1, "disk": 0, "id": "mwd"}})
    assert status == 200, body
    victim.start()
    await eventually(lambda: victim.ready(session), 60, "restarted node ready")

    async def alive_everywhere() -> bool:
        return all(p.states().get(victim.name) == "alive" for p in cluster)
    await eventually(alive_everywhere, 30, "restarted node alive everywhere")
    on3 = Api(session, victim, on1.token)

    async def caught_up() -> bool:
        status, _ = await on3.call("GET", "/compute/v2.1/flavors/mwd")
        return status == 200
    await eventually(caught_up, 15, "flavor made while down reached the restarted node")


async def test_a_node_with_the_wrong_key_is_refused(
        cluster: list[Proc], session: aiohttp.ClientSession, tmp_path: Path) -> None:
    wrong_key = tmp_path / "wrong.key"
    init_key(wrong_key)
    stranger = Proc("stranger", tmp_path / "stranger", free_port(), wrong_key,
                    [cluster[0].address])
    stranger.start()
    try:
        time.sleep(3)
        assert not await stranger.ready(session), "a node with another key never becomes ready"
        for proc in cluster:
            assert "stranger" not in proc.states(), proc.name
        assert "forged" in cluster[0].log(), "the refusal is logged with its reason"
    finally:
        stranger.terminate()


async def test_a_second_node_with_a_taken_name_is_refused(
        cluster: list[Proc], tmp_path: Path) -> None:
    twin = Proc("node2", tmp_path / "twin", free_port(), cluster[0].key_file,
                [cluster[0].address])
    twin.start()
    assert twin.process is not None
    code = twin.process.wait(60)
    assert code != 0
    assert "node name 'node2' is taken" in twin.log(), twin.log()[-2000:]
    for proc in cluster:
        assert {m["address"] for m in proc.members() if m["name"] == "node2"} \
            == {cluster[1].address}


async def test_members_command_prints_a_table(cluster: list[Proc]) -> None:
    out = subprocess.run([*NOVAD, "cluster", "members", "--config", str(cluster[0].config_file)],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    header, *rows = out.stdout.splitlines()
    assert header.split()[:4] == ["NAME", "ADDRESS", "STATE", "INC"]
    assert {r.split()[0] for r in rows} == {p.name for p in cluster}


async def test_members_needs_the_cluster_key(cluster: list[Proc], tmp_path: Path) -> None:
    wrong = tmp_path / "k"
    init_key(wrong)
    conf = tmp_path / "n.toml"
    conf.write_text(cluster[0].config_file.read_text().replace(str(cluster[0].key_file),
                                                              str(wrong)))
    out = subprocess.run([*NOVAD, "cluster", "members", "--config", str(conf)],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 1
    assert "401" in out.stderr or "not signed" in out.stderr
