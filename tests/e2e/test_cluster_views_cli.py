"""Server lists and usage show every node's instances (issue 14).

One real daemon, and a second node's database beside it: the second node's
instances reach the daemon through the real replicator, as a push from a
peer would bring them, and land in ``cluster_instances``.  Then the
unmodified CLI and raw HTTP list them with the daemon's own.  The tests run
in file order and share the fixtures.
"""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from e2e_helpers import OPENSTACK, Daemon

from novad.app import SCHEMAS
from novad.cluster.replication import Replicator
from novad.compute.build import DEFAULT_FLAVORS
from novad.states.enums import PowerState, VmState
from novad.store import Database, Store
from novad.store.models import Instance

pytestmark = [
    pytest.mark.cli,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.skipif(not OPENSTACK.exists(), reason="python-openstackclient not installed"),
]

NANO = next(f for f in DEFAULT_FLAVORS if f.name == "m1.nano")


def an_hour_ago() -> str:
    moment = datetime.now(UTC) - timedelta(hours=1)
    return moment.replace(tzinfo=None).isoformat(timespec="microseconds")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def far(novad: Daemon, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """A local server ``near``, then two servers of node-2's (``far-1``,
    ``far-2``) replicated to the daemon; the admin project's id."""
    await novad.upload_image("img", public=True)
    await novad.cli("server", "create", "--flavor", "m1.nano", "--image", "img", "--wait",
                    "near")
    project = (await novad.cli_json("project", "show", "admin"))["id"]
    db = await Database.open(tmp_path_factory.mktemp("node-2") / "novad.sqlite")
    await db.migrate(SCHEMAS)
    other = Replicator(db, "origin-node-2", "node-2")
    await other.install()
    store = Store(db)
    for name in ("far-1", "far-2"):
        await store.create_instance(Instance(
            uuid=str(uuidlib.uuid4()), name=name, project_id=project, user_id="u-2",
            host="node-2", flavor=NANO, image_ref="", vm_state=VmState.ACTIVE,
            task_state=None, power_state=PowerState.RUNNING, launched_at=an_hour_ago()))
    assert novad.node.cluster is not None
    mine = novad.node.cluster.replicator
    records, reached, complete = await other.changes_since(await mine.have())
    assert complete
    await mine.apply(records, reached)
    await db.close()
    yield project


async def test_server_list_shows_every_nodes_servers(novad: Daemon, far: str) -> None:
    listed = await novad.cli_json("server", "list", "--all-projects", "--long")
    assert [(s["Name"], s["Host"]) for s in listed] == [
        ("far-2", "node-2"), ("far-1", "node-2"), ("near", novad.node.host)]
    assert {s["Status"] for s in listed} == {"ACTIVE"}
    own = await novad.cli_json("server", "list")
    assert [s["Name"] for s in own] == ["far-2", "far-1", "near"], "the admin project's"


async def test_server_list_by_host(novad: Daemon, far: str) -> None:
    there = await novad.cli_json("server", "list", "--all-projects", "--host", "node-2")
    assert [s["Name"] for s in there] == ["far-2", "far-1"]
    here = await novad.cli_json("server", "list", "--all-projects", "--host", novad.node.host)
    assert [s["Name"] for s in here] == ["near"]


async def test_pages_cross_nodes(novad: Daemon, far: str) -> None:
    token = await novad.token()
    seen: list[str] = []
    path = "/compute/v2.1/servers/detail?all_tenants=1&limit=1"
    while True:
        status, body = await novad.call("GET", path, token)
        assert status == 200, body
        seen += [s["name"] for s in body["servers"]]
        links = body.get("servers_links")
        if not links:
            break
        path = links[0]["href"].removeprefix(novad.url)
    assert seen == ["far-2", "far-1", "near"]


async def test_usage_counts_every_nodes_servers(novad: Daemon, far: str) -> None:
    (row,) = [r for r in await novad.cli_json("usage", "list") if r["Project"] == far]
    assert sorted(s["name"] for s in row["Servers"]) == ["far-1", "far-2", "near"]
    shown = await novad.cli_json("usage", "show", "--project", far)
    assert float(shown["CPU Hours"]) >= 2 * 0.99, "the far servers ran for an hour each"
