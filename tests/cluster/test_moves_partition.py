"""A node cut off by a real network partition (issue 15, item 2).

Node 3 runs in a network namespace this test makes, joined to the host's
namespace by a veth pair (10.231.0.1 on the host side, where nodes 1 and 2
listen; 10.231.0.2 inside).  Taking the host's end of the pair down cuts
node 3 off while it, and its guests (libvirt's test driver keeps them in
its process), keep running.  Its server is evacuated only once its
service is forced down; when the link comes back, node 3 hears that the
server moved on to a higher generation and destroys its own copy, so
exactly one copy is left.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio

from cluster_helpers import NOVAD, Api, Proc, converged, eventually, free_port, token
from novad.cluster.auth import init_key
from test_moves_processes import (
    HOST, act, force_down, forced_down_seen, migrations, server, settled)

NS = "novad-part3"
HOST_IF, NS_IF = "nvpart0", "nvpart1"
HOST_ADDR, NS_ADDR = "10.231.0.1", "10.231.0.2"


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "iproute2's ip is not installed"
    return None


pytestmark = [pytest.mark.asyncio(loop_scope="module"),
              pytest.mark.skipif(_why_not() is not None, reason=str(_why_not()))]


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@dataclass
class NetProc(Proc):
    """A daemon listening on ``host``, inside network namespace ``netns`` if set."""

    host: str = "127.0.0.1"
    netns: str | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.write_config()
        log = open(self.root / "novad.log", "ab")  # noqa: SIM115 - the child owns it
        prefix = ["ip", "netns", "exec", self.netns] if self.netns else []
        self.process = subprocess.Popen(
            [*prefix, *NOVAD, "serve", "--config", str(self.config_file)], stdout=log,
            stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        log.close()


@pytest.fixture(scope="module")
def procs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[NetProc]]:
    root = tmp_path_factory.mktemp("partition")
    subprocess.run(["ip", "netns", "del", NS], capture_output=True)
    subprocess.run(["ip", "link", "del", HOST_IF], capture_output=True)
    ip("netns", "add", NS)
    ip("link", "add", HOST_IF, "type", "veth", "peer", "name", NS_IF)
    ip("link", "set", NS_IF, "netns", NS)
    ip("addr", "add", f"{HOST_ADDR}/24", "dev", HOST_IF)
    ip("link", "set", HOST_IF, "up")
    ip("netns", "exec", NS, "ip", "addr", "add", f"{NS_ADDR}/24", "dev", NS_IF)
    ip("netns", "exec", NS, "ip", "link", "set", NS_IF, "up")
    ip("netns", "exec", NS, "ip", "link", "set", "lo", "up")
    key = root / "cluster.key"
    init_key(key)
    extra = {"cluster": {"rejoin_wait": 20.0}}
    first = NetProc("node1", root / "node1", free_port(), key, [], dict(extra), host=HOST_ADDR)
    nodes = [first,
             NetProc("node2", root / "node2", free_port(), key, [first.address], dict(extra),
                     host=HOST_ADDR),
             NetProc("node3", root / "node3", free_port(), key, [first.address], dict(extra),
                     host=NS_ADDR, netns=NS)]
    for proc in nodes:
        proc.start()
    try:
        yield nodes
    finally:
        for proc in nodes:
            proc.terminate()
        subprocess.run(["ip", "link", "del", HOST_IF], capture_output=True)
        subprocess.run(["ip", "netns", "del", NS], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def apis(procs: list[NetProc], session: aiohttp.ClientSession) -> list[Api]:
    await converged(list(procs), session)
    tok = await token(session, procs[0], "admin", procs[0].admin_password())
    apis = [Api(session, p, tok) for p in procs]
    status, body = await apis[0].call("POST", "/compute/v2.1/flavors", {"flavor": {
        "name": "pt.small", "ram": 128, "vcpus": 1, "disk": 1, "id": "pt1"}})
    assert status == 200, body
    status, image = await apis[0].call("POST", "/image/v2/images", {
        "name": "pt-image", "disk_format": "raw", "container_format": "bare"})
    assert status == 201, image
    status, body = await apis[0].call("PUT", f"/image/v2/images/{image['id']}/file",
                                      data=b"\0" * 65536, ctype="application/octet-stream")
    assert status == 204, body
    IMAGE.append(image["id"])

    async def on_node3() -> bool:
        flavor, _ = await apis[2].call("GET", "/compute/v2.1/flavors/pt1")
        img_status, img = await apis[2].call("GET", f"/image/v2/images/{image['id']}")
        return flavor == 200 and img_status == 200 and img["status"] == "active"
    await eventually(on_node3, 15, "flavor and image on node 3")
    return apis


IMAGE: list[str] = []


def replica_settled(proc: Proc, sid: str) -> bool:
    """Whether ``proc`` holds the instance's record as active with no task:
    what it will act on once the owner is cut off."""
    with sqlite3.connect(proc.state_dir / "novad.sqlite") as conn:
        row = conn.execute("SELECT vm_state, task_state FROM cluster_instances WHERE uuid = ?",
                           (sid,)).fetchone()
    return row is not None and tuple(row) == ("active", None)


def rows_held(proc: Proc) -> set[str]:
    with sqlite3.connect(proc.state_dir / "novad.sqlite") as conn:
        return {r[0] for r in conn.execute("SELECT uuid FROM instances WHERE deleted = 0")}


async def test_a_cut_off_node_is_evacuated_once_down_and_keeps_no_copy_after_healing(
        procs: list[NetProc], apis: list[Api]) -> None:
    status, body = await apis[0].call("POST", "/compute/v2.1/servers", {"server": {
        "name": "pt-vm", "flavorRef": "pt1", "imageRef": IMAGE[0],
        "availability_zone": "nova:node3"}})
    assert status == 202, body
    sid = body["server"]["id"]
    assert (await settled(apis[0], sid, "ACTIVE"))[HOST] == "node3"
    guest_dir = procs[2].state_dir / "instances" / sid
    assert guest_dir.is_dir()
    # The others must have heard it is ACTIVE before the cut: a node that last
    # heard "building" refuses evacuate for that (409), rightly.
    async def heard_active() -> bool:
        return all(replica_settled(p, sid) for p in procs[:2])
    await eventually(heard_active, 30, "the ACTIVE record on nodes 1 and 2")

    ip("link", "set", HOST_IF, "down")  # the partition
    try:
        async def cut_off() -> bool:
            return all(p.states().get("node3") == "dead" for p in procs[:2])
        await eventually(cut_off, 30, "node 3 dead to nodes 1 and 2")
        # node 3 still runs its guest, so without an admin's word it stays
        answer = await act(apis[1], sid, {"evacuate": {}}, expect=400)
        assert "not marked down" in answer["badRequest"]["message"]
        assert sid in rows_held(procs[2]) and guest_dir.is_dir()
        await force_down(apis[0], "node3", True)
        await eventually(lambda: forced_down_seen(apis[1], "node3"), 15, "forced down seen")
        await act(apis[1], sid, {"evacuate": {}}, expect=200)

        async def rebuilt() -> bool:
            return str((await server(apis[0], sid))[HOST]) in ("node1", "node2")
        await eventually(rebuilt, 30, "server rebuilt on node 1 or 2")
        target = str((await settled(apis[0], sid, "ACTIVE"))[HOST])
        # both copies exist for now: node 3 cannot hear of the evacuation
        assert sid in rows_held(procs[2]) and guest_dir.is_dir()
    finally:
        ip("link", "set", HOST_IF, "up")  # the partition heals

    async def one_copy() -> bool:
        return sid not in rows_held(procs[2]) and not guest_dir.exists()
    await eventually(one_copy, 60, "node 3 destroyed its stale copy")
    assert sid in rows_held(next(p for p in procs if p.name == target))
    for api in apis:
        assert (await server(api, sid))[HOST] == target
    [evacuation] = await migrations(apis[0], sid, "evacuation")
    assert evacuation["source_compute"] == "node3"
    await force_down(apis[0], "node3", False)
    assert isinstance(procs[2].process, subprocess.Popen) and procs[2].process.poll() is None
    assert Path(procs[2].state_dir).is_dir()
