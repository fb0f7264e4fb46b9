"""Replication of cluster-wide records between real SQLite files: the
triggers capture writes, ``changes_since`` pages them, ``apply`` merges
them last-writer-wins."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from novad.app import SCHEMAS
from novad.cluster.replication import Record, Replicator, parse_records
from novad.store.db import Database


async def _node(path: Path, origin: str) -> Replicator:
    db = await Database.open(path)
    await db.migrate(SCHEMAS)
    rep = Replicator(db, origin, host=origin)
    await rep.install()
    return rep


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[tuple[Replicator, Replicator]]:
    a = await _node(tmp_path / "a.sqlite", "node-a")
    b = await _node(tmp_path / "b.sqlite", "node-b")
    yield a, b
    await a.db.close()
    await b.db.close()


async def sync(src: Replicator, dst: Replicator, limit: int = 2000) -> int:
    """Pull from ``src`` into ``dst`` until complete; records applied."""
    total = 0
    while True:
        records, reached, complete = await src.changes_since(await dst.have(), limit)
        total += await dst.apply(records, reached)
        if complete:
            return total


async def exec_(rep: Replicator, sql: str, *params: object) -> None:
    async with rep.db.transaction() as conn:
        await conn.execute(sql, params)


async def rows(rep: Replicator, sql: str) -> list[tuple[object, ...]]:
    return [tuple(r) for r in await rep.db.fetch(sql)]


FLAVOR = ("INSERT INTO flavors(id, name, vcpus, memory_mb, root_gb) VALUES (?, ?, ?, ?, ?)")


async def test_insert_update_delete_reach_the_other_node(pair: tuple[Replicator, Replicator]) -> None:
    a, b = pair
    await exec_(a, FLAVOR, "f1", "tiny", 1, 512, 1)
    assert await sync(a, b) == 1
    assert await rows(b, "SELECT id, name, memory_mb FROM flavors") == [("f1", "tiny", 512)]
    await exec_(a, "UPDATE flavors SET memory_mb = 1024 WHERE id = 'f1'")
    await sync(a, b)
    assert await rows(b, "SELECT memory_mb FROM flavors") == [(1024,)]
    await exec_(a, "DELETE FROM flavors WHERE id = 'f1'")
    await sync(a, b)
    assert await rows(b, "SELECT id FROM flavors") == []
    assert await sync(a, b) == 0, "a second sync finds nothing new"


async def test_applied_records_are_not_captured_as_local_writes(
        pair: tuple[Replicator, Replicator]) -> None:
    a, b = pair
    await exec_(a, FLAVOR, "f1", "tiny", 1, 512, 1)
    await sync(a, b)
    assert (await b.have())["node-b"] == 0
    records, _, _ = await b.changes_since({"node-a": (await a.have())["node-a"]})
    assert records == []


async def test_last_writer_wins_the_same_way_on_both_nodes(
        pair: tuple[Replicator, Replicator]) -> None:
    a, b = pair
    await exec_(a, FLAVOR, "f1", "tiny", 1, 512, 1)
    await sync(a, b)
    await exec_(a, "UPDATE flavors SET memory_mb = 1 WHERE id = 'f1'")
    await exec_(b, "UPDATE flavors SET memory_mb = 2 WHERE id = 'f1'")  # later: wins
    await sync(a, b)
    await sync(b, a)
    assert await rows(a, "SELECT memory_mb FROM flavors") == [(2,)]
    assert await rows(b, "SELECT memory_mb FROM flavors") == [(2,)]


async def test_a_child_before_its_parent_waits_then_lands(
        pair: tuple[Replicator, Replicator], tmp_path: Path) -> None:
    a, b = pair
    await exec_(a, "INSERT INTO projects(id, name, created_at) VALUES ('p1', 'p', 'now')")
    await exec_(a, "INSERT INTO roles(id, name) VALUES ('r1', 'member')")
    await exec_(a, "INSERT INTO users(id, name, created_at) VALUES ('u1', 'alice', 'now')")
    await exec_(a, "INSERT INTO assignments VALUES ('u1', 'p1', 'r1')")
    records, reached, _ = await a.changes_since({})
    child = [r for r in records if r.tbl == "assignments"]
    parents = [r for r in records if r.tbl != "assignments"]
    await b.apply(child)
    assert await rows(b, "SELECT * FROM assignments") == []
    await b.apply(parents, reached)
    assert await rows(b, "SELECT * FROM assignments") == [("u1", "p1", "r1")]
    assert await rows(b, "SELECT count(*) FROM repl_pending") == [(0,)]


async def test_paging_reaches_everything(pair: tuple[Replicator, Replicator]) -> None:
    a, b = pair
    for i in range(25):
        await exec_(a, FLAVOR, f"f{i}", f"n{i}", 1, 64, 1)
    await sync(a, b, limit=4)
    assert await rows(b, "SELECT count(*) FROM flavors") == [(25,)]


async def test_a_third_node_gets_records_relayed(pair: tuple[Replicator, Replicator],
                                                 tmp_path: Path) -> None:
    a, b = pair
    c = await _node(tmp_path / "c.sqlite", "node-c")
    try:
        await exec_(a, FLAVOR, "f1", "tiny", 1, 512, 1)
        await sync(a, b)
        await sync(b, c)
        assert await rows(c, "SELECT id FROM flavors") == [("f1",)]
        assert (await c.have())["node-a"] == (await a.have())["node-a"]
    finally:
        await c.db.close()


async def test_remote_instances_land_in_the_directory_not_in_instances(
        pair: tuple[Replicator, Replicator]) -> None:
    a, b = pair
    await exec_(a, "INSERT INTO instances(uuid, name, project_id, user_id, host, flavor,"
                " image_ref, vm_state, created_at, availability_zone)"
                " VALUES ('i1', 'vm', 'p', 'u', 'node-a', '{}', '', 'active', 'now', 'nova')")
    await sync(a, b)
    assert await rows(b, "SELECT uuid FROM instances") == []
    assert await rows(b, "SELECT uuid, host FROM cluster_instances") == [("i1", "node-a")]


async def test_rows_written_before_the_triggers_are_recorded(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "old.sqlite")
    await db.migrate(SCHEMAS)
    async with db.transaction() as conn:
        await conn.execute(FLAVOR, ("f1", "tiny", 1, 512, 1))
    await db.close()
    a = await _node(tmp_path / "old.sqlite", "node-a")
    b = await _node(tmp_path / "b.sqlite", "node-b")
    try:
        await sync(a, b)
        assert await rows(b, "SELECT id FROM flavors") == [("f1",)]
    finally:
        await a.db.close()
        await b.db.close()


@pytest.mark.parametrize("bad", [
    None, [], {"t": "flavors"}, {"t": "secrets", "k": "[1]", "r": None, "h": 1, "o": "x", "s": 1},
    {"t": "flavors", "k": "nope", "r": None, "h": 1, "o": "x", "s": 1},
    {"t": "flavors", "k": "[]", "r": None, "h": 1, "o": "x", "s": 1},
    {"t": "flavors", "k": "[1]", "r": [], "h": 1, "o": "x", "s": 1},
    {"t": "flavors", "k": "[1]", "r": None, "h": -1, "o": "x", "s": 1},
    {"t": "flavors", "k": "[1]", "r": None, "h": True, "o": "x", "s": 1},
])
def test_malformed_records_are_refused(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_records([bad])


def test_records_round_trip() -> None:
    rec = Record("flavors", json.dumps(["f1"]), {"id": "f1"}, 5, "node-a", 3)
    assert parse_records([rec.to_json()]) == [rec]
