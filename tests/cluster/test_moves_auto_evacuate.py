"""``[cluster] auto_evacuate`` on three real daemons (issue 15): a node that
stays dead is evacuated only once the operator's fence command reports
success; while it fails, nothing moves."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio

from cluster_helpers import Api, Proc, converged, eventually, running_cluster, token
from test_moves_processes import HOST, migrations, server, settled

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("auto")


@pytest.fixture(scope="module")
def procs(root: Path) -> Iterator[list[Proc]]:
    # The fence "powers off" a node only once the test allows it, and says which.
    fence = f"sh -c 'test -e {root}/allow && echo {{host}} >> {root}/fenced'"
    with running_cluster(root / "nodes", ["node1", "node2", "node3"], extra={"cluster": {
            "auto_evacuate": True, "auto_evacuate_after": 1.0, "fence_command": fence}}) as nodes:
        yield nodes


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def apis(procs: list[Proc], session: aiohttp.ClientSession) -> list[Api]:
    await converged(procs, session)
    tok = await token(session, procs[0], "admin", procs[0].admin_password())
    apis = [Api(session, p, tok) for p in procs]
    status, body = await apis[0].call("POST", "/compute/v2.1/flavors", {"flavor": {
        "name": "ae.small", "ram": 128, "vcpus": 1, "disk": 1, "id": "ae1"}})
    assert status == 200, body
    status, image = await apis[0].call("POST", "/image/v2/images", {
        "name": "ae-image", "disk_format": "raw", "container_format": "bare"})
    assert status == 201, image
    status, body = await apis[0].call("PUT", f"/image/v2/images/{image['id']}/file",
                                      data=b"\0" * 65536, ctype="application/octet-stream")
    assert status == 204, body
    IMAGE.append(image["id"])

    async def on_node3() -> bool:
        img_status, img = await apis[2].call("GET", f"/image/v2/images/{image['id']}")
        flavor, _ = await apis[2].call("GET", "/compute/v2.1/flavors/ae1")
        return flavor == 200 and img_status == 200 and img["status"] == "active"
    await eventually(on_node3, 15, "flavor and image on node 3")
    return apis


IMAGE: list[str] = []


async def test_a_dead_node_is_evacuated_only_after_its_fence_succeeded(
        root: Path, procs: list[Proc], apis: list[Api]) -> None:
    status, body = await apis[0].call("POST", "/compute/v2.1/servers", {"server": {
        "name": "ae-vm", "flavorRef": "ae1", "imageRef": IMAGE[0],
        "availability_zone": "nova:node3"}})
    assert status == 202, body
    sid = body["server"]["id"]
    assert (await settled(apis[0], sid, "ACTIVE"))[HOST] == "node3"
    procs[2].kill()

    async def fence_refused() -> bool:
        return "fence command did not fence the node" in procs[0].log()
    await eventually(fence_refused, 60, "node 1 tried to fence node 3 and failed")
    assert (await server(apis[1], sid))[HOST] == "node3"  # nothing moved
    assert not await migrations(apis[0], sid, "evacuation")

    (root / "allow").touch()

    async def evacuated() -> bool:
        return str((await server(apis[0], sid))[HOST]) in ("node1", "node2")
    await eventually(evacuated, 60, "the server evacuated after the fence succeeded")
    await settled(apis[0], sid, "ACTIVE")
    assert (root / "fenced").read_text().split() == ["node3"]
    [evacuation] = await migrations(apis[0], sid, "evacuation")
    assert evacuation["source_compute"] == "node3"
