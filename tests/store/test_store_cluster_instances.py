"""Listing every node's instances: ``instances`` (this node's) together with
``cluster_instances`` (the other nodes', as replication mirrors them), on
real SQLite files, the remote rows arriving through the real replicator."""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from novad import errors
from novad.app import SCHEMAS
from novad.cluster.replication import Replicator
from novad.states.enums import PowerState, VmState
from novad.store import Database, Store
from novad.store.models import Expect, Flavor, Instance

TINY = Flavor("1", "m1.tiny", vcpus=1, memory_mb=512, root_gb=1)


def make(name: str, host: str, **kw: Any) -> Instance:
    fields: dict[str, Any] = dict(
        uuid=str(uuidlib.uuid4()), name=name, project_id="p1", user_id="u1", host=host,
        flavor=TINY, image_ref="img-1", vm_state=VmState.ACTIVE, task_state=None,
        power_state=PowerState.RUNNING, metadata={}, system_metadata={}, networks=[])
    fields.update(kw)
    return Instance(**fields)


class Node:
    """One node's database, store and replicator."""

    def __init__(self, db: Database, name: str) -> None:
        self.db = db
        self.store = Store(db)
        self.replicator = Replicator(db, f"origin-{name}", name)

    @classmethod
    async def open(cls, path: Path, name: str) -> Node:
        db = await Database.open(path)
        await db.migrate(SCHEMAS)
        node = cls(db, name)
        await node.replicator.install()
        return node

    async def pull(self, other: Node) -> None:
        """Everything ``other`` has that this node lacks."""
        while True:
            records, reached, complete = await other.replicator.changes_since(
                await self.replicator.have())
            await self.replicator.apply(records, reached)
            if complete:
                return


@pytest.fixture
async def nodes(tmp_path: Path) -> AsyncIterator[tuple[Node, Node]]:
    one = await Node.open(tmp_path / "one.sqlite", "node-1")
    two = await Node.open(tmp_path / "two.sqlite", "node-2")
    yield one, two
    await one.db.close()
    await two.db.close()


async def names(store: Store, **kw: Any) -> list[str]:
    return [i.name for i in await store.list_instances(**kw)]


async def test_every_nodes_instances_newest_first(nodes: tuple[Node, Node]) -> None:
    one, two = nodes
    for name in ("a", "b", "c", "d", "e"):  # interleaved: created_at decides the order
        owner = one if name in "ace" else two
        await owner.store.create_instance(make(name, "node-1" if owner is one else "node-2",
                                               project_id="p2" if name == "e" else "p1"))
    await one.pull(two)
    assert await names(one.store) == ["e", "c", "a"], "the local list stays local"
    assert await names(one.store, everywhere=True) == ["e", "d", "c", "b", "a"]
    assert await names(one.store, everywhere=True, host="node-2") == ["d", "b"]
    assert await names(one.store, everywhere=True, project_id="p1") == ["d", "c", "b", "a"]
    assert await names(one.store, everywhere=True, name_regex="^[bc]$") == ["c", "b"]


async def test_paging_crosses_nodes(nodes: tuple[Node, Node]) -> None:
    one, two = nodes
    for i in range(6):
        owner = one if i % 2 else two
        await owner.store.create_instance(make(f"vm{i}", "node-1" if i % 2 else "node-2"))
    await one.pull(two)
    seen: list[str] = []
    marker = None
    while True:
        page = await one.store.list_instances(everywhere=True, limit=2, marker=marker)
        if not page:
            break
        seen += [i.name for i in page]
        marker = page[-1].uuid  # every other page ends on another node's instance
    assert seen == [f"vm{i}" for i in reversed(range(6))]
    with pytest.raises(errors.Invalid, match="Marker nope could not be found"):
        await one.store.list_instances(everywhere=True, marker="nope")
    remote = (await two.store.list_instances())[0]
    with pytest.raises(errors.Invalid):  # another node's marker is unknown to a local list
        await one.store.list_instances(marker=remote.uuid)


async def test_deleted_rows_follow_the_same_rules(nodes: tuple[Node, Node]) -> None:
    one, two = nodes
    gone = await two.store.create_instance(make("gone", "node-2"))
    await two.store.create_instance(make("kept", "node-2"))
    await two.store.write(gone.uuid, Expect(), {"deleted": True})
    await one.pull(two)
    assert await names(one.store, everywhere=True) == ["kept"]
    assert await names(one.store, everywhere=True, include_deleted=True) == ["kept", "gone"]


async def test_an_instance_in_both_tables_is_listed_once(nodes: tuple[Node, Node]) -> None:
    one, two = nodes
    inst = await two.store.create_instance(make("moved", "node-2"))
    await one.pull(two)
    # as if it had moved here: the mirror's row is stale, this node's wins
    await one.store.create_instance(inst.replace(host="node-1"))
    [listed] = await one.store.list_instances(everywhere=True)
    assert (listed.name, listed.host) == ("moved", "node-1")


async def test_usage_counts_every_nodes_instances(nodes: tuple[Node, Node]) -> None:
    one, two = nodes
    here = await one.store.create_instance(make("here", "node-1"))
    there = await two.store.create_instance(make("there", "node-2"))
    await one.pull(two)
    window = await one.store.instances_in_window("2000-01-01T00:00:00.000000",
                                                 "2999-01-01T00:00:00.000000")
    assert [i.uuid for i in window] == [here.uuid, there.uuid]
    assert [i.name for i in await one.store.instances_in_window(
        "2000-01-01T00:00:00.000000", "2999-01-01T00:00:00.000000", "p9")] == []


async def test_a_store_without_the_mirror_lists_its_own(db: Database) -> None:
    store = Store(db)  # migrated, but replication never installed: no cluster_instances
    await store.create_instance(make("solo", "node-1"))
    assert await names(store, everywhere=True) == ["solo"]
    assert len(await store.instances_in_window("2000-01-01T00:00:00.000000",
                                               "2999-01-01T00:00:00.000000")) == 1
    with pytest.raises(errors.Invalid):
        await store.list_instances(everywhere=True, marker="nope")
