"""The store against a real SQLite file: migrations, the compare-and-swap
write, actions/events/faults, listing, flavors, key pairs, migrations."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import sqlite3
import threading
import uuid as uuidlib
from pathlib import Path
from typing import Any

import pytest

from novad import errors
from novad.states.enums import PowerState, TaskState, VmState
from novad.store import COMPUTE, Component, Database, SchemaMigration, Store, utcnow
from novad.store.models import (
    ANY,
    NO_TASK,
    ActionStart,
    EventFinish,
    EventStart,
    Expect,
    Fault,
    Flavor,
    Instance,
    Migration,
)

TINY = Flavor("1", "m1.tiny", vcpus=1, memory_mb=512, root_gb=1, extra_specs={"hw:x": "1"})


@pytest.fixture
def store(db: Database) -> Store:
    return Store(db)


def make(name: str = "vm", **kw: Any) -> Instance:
    fields: dict[str, Any] = dict(
        uuid=str(uuidlib.uuid4()),
        name=name,
        project_id="p1",
        user_id="u1",
        host="node1",
        flavor=TINY,
        image_ref="img-1",
        vm_state=VmState.ACTIVE,
        task_state=None,
        power_state=PowerState.RUNNING,
        metadata={"k": "v"},
        system_metadata={"image_base": "img-1"},
        networks=[{"uuid": "net-1"}],
    )
    fields.update(kw)
    return Instance(**fields)


async def snapshot(db: Database, uuid: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row the compute tables hold about one instance."""
    out = {}
    for table, col in (
        ("instances", "uuid"),
        ("instance_actions", "instance_uuid"),
        ("instance_faults", "instance_uuid"),
    ):
        rows = await db.conn.execute_fetchall(f"SELECT * FROM {table} WHERE {col} = ?", (uuid,))
        out[table] = [tuple(r) for r in rows]
    rows = await db.conn.execute_fetchall(
        "SELECT e.* FROM instance_actions_events e JOIN instance_actions a ON a.id = e.action_id"
        " WHERE a.instance_uuid = ?",
        (uuid,),
    )
    out["events"] = [tuple(r) for r in rows]
    return out


# --- database and schema migrations ---------------------------------------


async def test_pragmas(db: Database, tmp_path: Path) -> None:
    assert await db.pragma("journal_mode") == "wal"
    assert await db.pragma("synchronous") == 2  # FULL
    assert await db.pragma("foreign_keys") == 1
    assert await db.pragma("busy_timeout") == 5000
    normal = await Database.open(tmp_path / "n.db", synchronous="NORMAL")
    assert await normal.pragma("synchronous") == 1
    await normal.close()
    with pytest.raises(ValueError):
        await Database.open(tmp_path / "off.db", synchronous="OFF")


def test_utcnow_format() -> None:
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}", utcnow())


async def test_instances_columns_are_instance_fields(db: Database) -> None:
    rows = await db.conn.execute_fetchall("PRAGMA table_info(instances)")
    assert [r[1] for r in rows] == [f.name for f in dataclasses.fields(Instance)]


async def test_migrations_apply_once_and_survive_reopen(tmp_path: Path) -> None:
    counter = Component(
        "counter",
        [
            SchemaMigration(1, "CREATE TABLE runs(n INTEGER); INSERT INTO runs VALUES (1);"),
            (2, "INSERT INTO runs VALUES (2);"),
        ],
    )
    for _ in range(2):
        db = await Database.open(tmp_path / "m.db")
        await db.migrate([COMPUTE, counter])
        await db.migrate([COMPUTE, counter])
        assert await db.versions() == {"compute": COMPUTE.latest, "counter": 2}
        rows = await db.conn.execute_fetchall("SELECT n FROM runs ORDER BY n")
        assert [r[0] for r in rows] == [1, 2]
        await db.close()


async def test_failed_migration_leaves_previous_version(tmp_path: Path) -> None:
    broken = Component(
        "demo",
        [
            (1, "CREATE TABLE t1(x INTEGER);"),
            (2, "CREATE TABLE t2(x); INSERT INTO t2 VALUES (1); INSERT INTO nope VALUES (1);"),
        ],
    )
    db = await Database.open(tmp_path / "c.db")
    with pytest.raises(sqlite3.OperationalError, match="nope"):
        await db.migrate([broken])
    assert await db.versions() == {"demo": 1}
    tables = {r[0] for r in await db.conn.execute_fetchall("SELECT name FROM sqlite_master")}
    assert "t1" in tables and "t2" not in tables
    assert not db.conn.in_transaction
    await db.close()

    fixed = Component("demo", [(1, "CREATE TABLE t1(x INTEGER);"), (2, "CREATE TABLE t2(x);")])
    db = await Database.open(tmp_path / "c.db")
    await db.migrate([fixed])
    assert await db.versions() == {"demo": 2}
    await db.close()


async def test_database_newer_than_code_is_refused(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "v.db")
    await db.migrate([Component("x", [(1, "SELECT 1;"), (2, "SELECT 1;")])])
    with pytest.raises(RuntimeError, match="v2"):
        await db.migrate([Component("x", [(1, "SELECT 1;")])])
    await db.close()


def test_component_validation() -> None:
    with pytest.raises(ValueError):
        Component("bad name'", [])
    with pytest.raises(ValueError):
        Component("x", [(2, ""), (1, "")])


async def test_transaction_commits_and_rolls_back(db: Database) -> None:
    await db.migrate([Component("t", [(1, "CREATE TABLE kv(k TEXT PRIMARY KEY, v TEXT);")])])
    async with db.transaction() as conn:
        await conn.execute("INSERT INTO kv VALUES ('a', '1')")
    with pytest.raises(RuntimeError):
        async with db.transaction() as conn:
            await conn.execute("INSERT INTO kv VALUES ('b', '2')")
            raise RuntimeError("boom")
    rows = await db.conn.execute_fetchall("SELECT k FROM kv")
    assert [r[0] for r in rows] == ["a"]


async def test_transactions_and_writes_never_interleave(db: Database, store: Store) -> None:
    """A write submitted while a transaction is open waits for it; the
    transaction's rollback does not take the write with it."""
    inst = await store.create_instance(make())
    await db.migrate([Component("t", [(1, "CREATE TABLE kv(k TEXT);")])])

    async def tx() -> None:
        async with db.transaction() as conn:
            await conn.execute("INSERT INTO kv VALUES ('x')")
            await asyncio.sleep(0.05)
            raise RuntimeError("rollback")

    task = asyncio.create_task(tx())
    await asyncio.sleep(0.01)
    written = await store.write(inst.uuid, NO_TASK, {"task_state": TaskState.PAUSING})
    assert written.task_state is TaskState.PAUSING
    with pytest.raises(RuntimeError):
        await task
    assert list(await db.conn.execute_fetchall("SELECT * FROM kv")) == []
    assert (await store.get_instance(inst.uuid)).task_state is TaskState.PAUSING


async def _kv(db: Database) -> list[str]:
    return [r[0] for r in await db.conn.execute_fetchall("SELECT k FROM kv ORDER BY k")]


def _insert(key: str, gate: threading.Event | None = None) -> Any:
    """A write job; with ``gate`` it holds the worker thread until the gate
    opens, so that writes submitted meanwhile queue up behind it."""

    def run(conn: sqlite3.Connection) -> str:
        if gate is not None:
            gate.wait(5)
        conn.execute("INSERT INTO kv VALUES (?)", (key,))
        return key

    return run


async def test_concurrent_writes_share_a_commit(db: Database) -> None:
    await db.migrate([Component("t", [(1, "CREATE TABLE kv(k TEXT PRIMARY KEY);")])])
    begins: list[str] = []
    await db.conn.set_trace_callback(lambda sql: begins.append(sql) if "BEGIN" in sql else None)
    gate = threading.Event()
    first = asyncio.create_task(db.write(_insert("a", gate)))
    await asyncio.sleep(0)
    rest = [asyncio.create_task(db.write(_insert(f"b{i}"))) for i in range(10)]
    await asyncio.sleep(0)
    gate.set()
    assert await first == "a"
    assert await asyncio.gather(*rest) == [f"b{i}" for i in range(10)]
    assert len(begins) == 2  # "a" alone, then the ten that queued behind it
    assert len(await _kv(db)) == 11


async def test_failing_job_in_a_batch_undoes_only_itself(db: Database) -> None:
    await db.migrate([Component("t", [(1, "CREATE TABLE kv(k TEXT PRIMARY KEY);")])])

    def half_then_fail(conn: sqlite3.Connection) -> str:
        conn.execute("INSERT INTO kv VALUES ('partial')")
        raise errors.Conflict("changed my mind")

    gate = threading.Event()
    first = asyncio.create_task(db.write(_insert("a", gate)))
    await asyncio.sleep(0)
    batch = [
        asyncio.create_task(db.write(_insert("b"))),
        asyncio.create_task(db.write(half_then_fail)),
        asyncio.create_task(db.write(_insert("c"))),
    ]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(first, *batch, return_exceptions=True)
    assert results[:2] == ["a", "b"] and results[3] == "c"
    assert isinstance(results[2], errors.Conflict)
    assert await _kv(db) == ["a", "b", "c"]


async def test_cancelled_writes_never_run_and_never_stall(db: Database) -> None:
    await db.migrate([Component("t", [(1, "CREATE TABLE kv(k TEXT PRIMARY KEY);")])])
    async with db.transaction():  # holds the lock: writes queue behind it
        leader = asyncio.create_task(db.write(_insert("leader")))
        await asyncio.sleep(0)
        follower = asyncio.create_task(db.write(_insert("follower")))
        other = asyncio.create_task(db.write(_insert("other")))
        await asyncio.sleep(0)
        leader.cancel()
        follower.cancel()
        await asyncio.sleep(0)
    assert await asyncio.wait_for(other, 2) == "other"
    for task in (leader, follower):
        with pytest.raises(asyncio.CancelledError):
            await task
    assert await _kv(db) == ["other"]


class _CancelOnPromotion(Database):
    """Cancels ``victim`` right after it is handed the lead, before it runs."""

    victim: asyncio.Task[Any] | None = None

    def _hand_off(self) -> None:
        super()._hand_off()
        if self.victim is not None:
            self.victim.cancel()
            self.victim = None


async def test_cancelled_new_leader_passes_the_lead_on(tmp_path: Path) -> None:
    db = await _CancelOnPromotion.open(tmp_path / "p.db")
    await db.migrate([Component("t", [(1, "CREATE TABLE kv(k TEXT PRIMARY KEY);")])])
    gate = threading.Event()
    first = asyncio.create_task(db.write(_insert("a", gate)))
    await asyncio.sleep(0)
    victim = asyncio.create_task(db.write(_insert("b")))
    last = asyncio.create_task(db.write(_insert("c")))
    await asyncio.sleep(0)
    assert isinstance(db, _CancelOnPromotion)
    db.victim = victim
    gate.set()
    assert await asyncio.wait_for(last, 2) == "c"
    assert await first == "a"
    with pytest.raises(asyncio.CancelledError):
        await victim
    assert await _kv(db) == ["a", "c"]
    await db.close()


# --- instances and the compare-and-swap write -------------------------------


async def test_create_and_get_round_trip(store: Store) -> None:
    inst = make(key_name="k", config_drive=True, locked=True, locked_by="owner")
    created = await store.create_instance(inst)
    assert created.created_at and created.updated_at == created.created_at
    assert created == inst.replace(created_at=created.created_at, updated_at=created.updated_at)
    assert await store.get_instance(inst.uuid) == created
    with pytest.raises(errors.Conflict):
        await store.create_instance(inst)
    with pytest.raises(errors.InstanceNotFound):
        await store.get_instance("nope")


async def test_create_records_action_and_event(store: Store) -> None:
    inst = make()
    await store.create_instance(
        inst,
        ActionStart("create", "req-1", "u1", "p1"),
        EventStart("req-1", "compute__do_build_and_run_instance", "node1"),
    )
    action = await store.get_action(inst.uuid, "req-1")
    assert action.action == "create" and action.message is None and action.finish_time is None
    assert [e.event for e in action.events] == ["compute__do_build_and_run_instance"]
    assert action.events[0].finish_time is None and action.events[0].host == "node1"


async def test_cas_success_records_everything(store: Store) -> None:
    inst = await store.create_instance(make())
    paused = await store.write(
        inst.uuid,
        Expect(frozenset({VmState.ACTIVE}), frozenset({None})),
        {"task_state": TaskState.PAUSING, "metadata": {"a": "b"}},
        action=ActionStart("pause", "req-p", "u1", "p1"),
        event_start=EventStart("req-p", "compute_pause_instance", "node1"),
    )
    assert paused.task_state is TaskState.PAUSING and paused.metadata == {"a": "b"}
    assert paused.updated_at is not None and paused.updated_at > inst.created_at
    assert await store.get_instance(inst.uuid) == paused
    action = await store.get_action(inst.uuid, "req-p")
    assert action.action == "pause" and len(action.events) == 1

    done = await store.write(
        inst.uuid,
        Expect.task(TaskState.PAUSING),
        {"vm_state": VmState.PAUSED, "task_state": None, "power_state": PowerState.PAUSED},
        event_finish=EventFinish("req-p", "compute_pause_instance", "Success"),
        finish_action=True,
    )
    assert (done.vm_state, done.task_state, done.power_state) == (
        VmState.PAUSED, None, PowerState.PAUSED,
    )
    action = await store.get_action(inst.uuid, "req-p")
    assert action.finish_time is not None and action.message is None
    assert action.events[0].result == "Success" and action.events[0].finish_time is not None


async def test_cas_refusal_changes_nothing(db: Database, store: Store) -> None:
    inst = await store.create_instance(make(task_state=TaskState.DELETING))
    before = await snapshot(db, inst.uuid)
    with pytest.raises(errors.UnexpectedTaskState) as info:
        await store.write(
            inst.uuid,
            NO_TASK,
            {"task_state": TaskState.PAUSING},
            action=ActionStart("pause", "req-x", "u1", "p1"),
            event_start=EventStart("req-x", "compute_pause_instance", "node1"),
            fault=Fault(500, "nope"),
        )
    assert info.value.actual == (VmState.ACTIVE, TaskState.DELETING)
    assert info.value.expected == {"task_state": [None]}
    assert info.value.status == 409
    assert await snapshot(db, inst.uuid) == before
    assert await store.list_actions(inst.uuid) == []


async def test_cas_vm_state_and_task_sets(store: Store) -> None:
    inst = await store.create_instance(make())
    with pytest.raises(errors.UnexpectedTaskState):
        await store.write(inst.uuid, Expect(frozenset({VmState.STOPPED})), {"progress": 1})
    with pytest.raises(errors.UnexpectedTaskState):
        await store.write(inst.uuid, Expect.task(TaskState.PAUSING), {"progress": 1})
    # None among other tasks: matches a row with no task.
    either = Expect.task(None, TaskState.PAUSING)
    w = await store.write(inst.uuid, either, {"task_state": TaskState.PAUSING})
    assert w.task_state is TaskState.PAUSING
    # ... and a row with one of the others.
    w = await store.write(inst.uuid, either, {"task_state": None})
    assert w.task_state is None
    # Empty sets match nothing; ANY matches everything.
    with pytest.raises(errors.UnexpectedTaskState):
        await store.write(inst.uuid, Expect(task_states=frozenset()), {"progress": 1})
    assert (await store.write(inst.uuid, ANY, {"progress": 7})).progress == 7


async def test_cas_missing_and_deleted_instances(store: Store) -> None:
    with pytest.raises(errors.InstanceNotFound):
        await store.write("missing", ANY, {"progress": 1})
    inst = await store.create_instance(make())
    gone = await store.write(
        inst.uuid, ANY, {"vm_state": VmState.DELETED, "task_state": None, "deleted": True}
    )
    assert gone.deleted and gone.deleted_at is not None
    with pytest.raises(errors.InstanceNotFound):
        await store.write(inst.uuid, ANY, {"progress": 1})
    with pytest.raises(errors.InstanceNotFound):
        await store.get_instance(inst.uuid)
    assert (await store.get_instance(inst.uuid, include_deleted=True)).deleted


async def test_write_rejects_bad_fields(store: Store) -> None:
    inst = await store.create_instance(make())
    with pytest.raises(ValueError):
        await store.write(inst.uuid, ANY, {"nonsense": 1})
    with pytest.raises(ValueError):
        await store.write(inst.uuid, ANY, {"uuid": "other"})
    with pytest.raises(ValueError):
        await store.write(inst.uuid, ANY, {}, finish_action=True)


async def test_error_event_marks_action(store: Store) -> None:
    inst = await store.create_instance(make())
    await store.write(
        inst.uuid, NO_TASK, {"task_state": TaskState.POWERING_OFF},
        action=ActionStart("stop", "req-s", "u1", "p1"),
        event_start=EventStart("req-s", "compute_stop_instance", "node1"),
    )
    failed = await store.write(
        inst.uuid, Expect.task(TaskState.POWERING_OFF),
        {"vm_state": VmState.ERROR, "task_state": None},
        event_finish=EventFinish("req-s", "compute_stop_instance", "Error", "Traceback...", "boom"),
        fault=Fault(500, "boom", "Traceback...", "node1"),
    )
    assert failed.vm_state is VmState.ERROR
    action = await store.get_action(inst.uuid, "req-s")
    assert action.message == "Error"
    (event,) = action.events
    assert (event.result, event.traceback, event.details) == ("Error", "Traceback...", "boom")
    fault = await store.latest_fault(inst.uuid)
    assert fault is not None and (fault.code, fault.message, fault.host) == (500, "boom", "node1")


async def test_restart_event_lands_on_latest_action(store: Store) -> None:
    """An event under a fresh request id (service restart) attaches to the
    instance's latest action and leaves its message alone."""
    inst = await store.create_instance(make())
    await store.write(inst.uuid, NO_TASK, {"task_state": TaskState.POWERING_OFF},
                      action=ActionStart("stop", "req-1", "u1", "p1"))
    await store.record_event(inst.uuid, EventStart("req-init", "compute_init_host", "node1"))
    await store.record_event(inst.uuid, EventFinish("req-init", "compute_init_host", "Error"))
    action = await store.get_action(inst.uuid, "req-1")
    assert [(e.event, e.result) for e in action.events] == [("compute_init_host", "Error")]
    assert action.message is None


async def test_event_without_action_rolls_back_write(db: Database, store: Store) -> None:
    inst = await store.create_instance(make())
    before = await snapshot(db, inst.uuid)
    with pytest.raises(errors.NotFound):
        await store.write(inst.uuid, NO_TASK, {"task_state": TaskState.PAUSING},
                          event_start=EventStart("req-?", "compute_pause_instance", "node1"))
    assert await snapshot(db, inst.uuid) == before


async def test_actions_listing(store: Store) -> None:
    inst = await store.create_instance(make(), ActionStart("create", "req-1", "u1", "p1"))
    await store.write(inst.uuid, ANY, {}, action=ActionStart("pause", "req-2", "u1", "p1"))
    assert [a.request_id for a in await store.list_actions(inst.uuid)] == ["req-2", "req-1"]
    latest = await store.latest_action(inst.uuid)
    assert latest is not None and latest.action == "pause"
    assert await store.latest_action("other") is None
    message = f"Action for request_id req-9 on instance {inst.uuid} not found"
    with pytest.raises(errors.NotFound, match=message):
        await store.get_action(inst.uuid, "req-9")
    with pytest.raises(errors.Conflict):
        await store.write(inst.uuid, ANY, {}, action=ActionStart("pause", "req-2", "u1", "p1"))


async def test_concurrent_writes_exactly_one_wins(db: Database, store: Store) -> None:
    inst = await store.create_instance(make())

    async def attempt(i: int) -> bool:
        try:
            await store.write(
                inst.uuid, NO_TASK, {"task_state": TaskState.PAUSING},
                action=ActionStart("pause", f"req-{i}", "u1", "p1"),
            )
        except errors.UnexpectedTaskState:
            return False
        return True

    results = await asyncio.gather(*(attempt(i) for i in range(50)))
    assert results.count(True) == 1
    assert len(await store.list_actions(inst.uuid)) == 1
    assert (await store.get_instance(inst.uuid)).task_state is TaskState.PAUSING


async def test_batched_writes_fail_independently(store: Store) -> None:
    """Concurrent writes share transactions; a refused one undoes only itself."""
    insts = [await store.create_instance(make(f"vm{i}")) for i in range(20)]

    async def attempt(i: int, inst: Instance) -> str:
        expect = NO_TASK if i % 2 == 0 else Expect.task(TaskState.REBOOTING)
        try:
            await store.write(inst.uuid, expect, {"task_state": TaskState.PAUSING},
                              action=ActionStart("pause", f"r{i}", "u1", "p1"))
        except errors.UnexpectedTaskState:
            return "refused"
        return "ok"

    results = await asyncio.gather(*(attempt(i, x) for i, x in enumerate(insts)))
    assert results == ["ok", "refused"] * 10
    for i, inst in enumerate(insts):
        row = await store.get_instance(inst.uuid)
        assert row.task_state is (TaskState.PAUSING if i % 2 == 0 else None)
        assert len(await store.list_actions(inst.uuid)) == (1 if i % 2 == 0 else 0)


async def test_writes_are_durable_across_reopen(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "d.db")
    await db.migrate([COMPUTE])
    inst = await Store(db).create_instance(make())
    await Store(db).write(inst.uuid, NO_TASK, {"vm_state": VmState.STOPPED})
    await db.close()
    db = await Database.open(tmp_path / "d.db")
    assert (await Store(db).get_instance(inst.uuid)).vm_state is VmState.STOPPED
    await db.close()


async def test_update_fields(store: Store) -> None:
    inst = await store.create_instance(make())
    for key in ("vm_state", "task_state"):
        with pytest.raises(ValueError):
            await store.update_fields(inst.uuid, {key: None})
    renamed = await store.update_fields(inst.uuid, {"name": "new", "metadata": {"x": "y"}})
    assert (renamed.name, renamed.metadata, renamed.vm_state) == ("new", {"x": "y"}, VmState.ACTIVE)
    assert await store.get_instance(inst.uuid) == renamed
    with pytest.raises(errors.InstanceNotFound):
        await store.update_fields("nope", {"name": "x"})


async def test_faults(store: Store) -> None:
    inst = await store.create_instance(make())
    assert await store.latest_fault(inst.uuid) is None
    await store.add_fault(inst.uuid, Fault(500, "first"))
    await store.add_fault(inst.uuid, Fault(404, "second", "d", "node1"))
    fault = await store.latest_fault(inst.uuid)
    assert fault is not None and (fault.code, fault.message, fault.details) == (404, "second", "d")
    with pytest.raises(errors.InstanceNotFound):
        await store.add_fault("nope", Fault(500, "x"))


async def test_count_usage_and_purge(store: Store) -> None:
    big = dataclasses.replace(TINY, id="2", name="big", vcpus=4, memory_mb=4096)
    a = await store.create_instance(make(flavor=TINY))
    b = await store.create_instance(make(flavor=big))
    await store.create_instance(make(project_id="p2"))
    assert await store.count_usage("p1") == (2, 5, 4608)
    assert await store.purge_deleted(a.uuid) is False  # not deleted yet
    await store.write(a.uuid, ANY, {"deleted": True, "vm_state": VmState.DELETED})
    assert await store.count_usage("p1") == (1, 4, 4096)
    assert await store.purge_deleted(a.uuid) is True
    with pytest.raises(errors.InstanceNotFound):
        await store.get_instance(a.uuid, include_deleted=True)
    assert (await store.get_instance(b.uuid)).uuid == b.uuid


# --- listing ---------------------------------------------------------------


async def test_list_order_pagination_and_marker(store: Store) -> None:
    made = [await store.create_instance(make(f"vm{i}")) for i in range(7)]
    newest_first = [i.uuid for i in reversed(made)]
    assert [i.uuid for i in await store.list_instances()] == newest_first
    pages: list[str] = []
    marker = None
    while True:
        page = await store.list_instances(limit=3, marker=marker)
        if not page:
            break
        pages += [i.uuid for i in page]
        marker = page[-1].uuid
    assert pages == newest_first
    with pytest.raises(errors.Invalid, match="Marker nope could not be found"):
        await store.list_instances(marker="nope")


async def test_list_filters(store: Store) -> None:
    a = await store.create_instance(make("web-1"))
    b = await store.create_instance(make("web-2", host="node2", task_state=TaskState.PAUSING))
    c = await store.create_instance(make("db-1", project_id="p2", vm_state=VmState.STOPPED))
    d = await store.create_instance(make("web-old"))
    cut = utcnow()
    await store.write(d.uuid, ANY, {"deleted": True, "vm_state": VmState.DELETED})

    async def names(**kw: Any) -> set[str]:
        return {i.name for i in await store.list_instances(**kw)}

    assert await names() == {"web-1", "web-2", "db-1"}
    assert await names(include_deleted=True) == {"web-1", "web-2", "db-1", "web-old"}
    assert await names(project_id="p2") == {"db-1"}
    assert await names(host="node2") == {"web-2"}
    assert await names(name_regex="^web-\\d") == {"web-1", "web-2"}
    assert await names(changes_since=cut) == {"web-old"}
    assert await names(vm_task_pairs=[(VmState.ACTIVE, None)]) == {"web-1"}
    assert await names(vm_task_pairs=[(VmState.ACTIVE, ANY)]) == {"web-1", "web-2"}
    pairs: list[tuple[VmState, Any]] = [(VmState.ACTIVE, TaskState.PAUSING), (VmState.STOPPED, ANY)]
    assert await names(vm_task_pairs=pairs) == {"web-2", "db-1"}
    pairs = [(VmState.ACTIVE, Expect.task(TaskState.PAUSING, None))]
    assert await names(vm_task_pairs=pairs) == {"web-1", "web-2"}
    assert await names(vm_task_pairs=[]) == set()
    with pytest.raises(errors.Invalid):
        await store.list_instances(name_regex="(")
    assert {a.uuid, b.uuid, c.uuid} == {i.uuid for i in await store.list_instances()}


# --- flavors ---------------------------------------------------------------


async def test_flavor_crud_and_conflicts(store: Store) -> None:
    assert await store.create_flavor(TINY) == TINY
    assert await store.get_flavor("1") == TINY
    with pytest.raises(errors.Conflict, match="Flavor with ID 1 already exists."):
        await store.create_flavor(dataclasses.replace(TINY, name="other"))
    with pytest.raises(errors.Conflict, match="Flavor with name m1.tiny already exists."):
        await store.create_flavor(dataclasses.replace(TINY, id="9"))
    with pytest.raises(errors.FlavorNotFound):
        await store.get_flavor("nope")
    assert await store.count_flavors() == 1
    await store.delete_flavor("1")
    assert await store.count_flavors() == 0
    with pytest.raises(errors.FlavorNotFound):
        await store.delete_flavor("1")


async def test_flavor_extra_specs(store: Store) -> None:
    await store.create_flavor(TINY)
    assert await store.set_extra_specs("1", {"a": "1", "hw:x": "2"}) == {"hw:x": "2", "a": "1"}
    await store.delete_extra_spec("1", "a")
    assert (await store.get_flavor("1")).extra_specs == {"hw:x": "2"}
    with pytest.raises(errors.NotFound, match="has no extra specs with key a"):
        await store.delete_extra_spec("1", "a")
    with pytest.raises(errors.FlavorNotFound):
        await store.set_extra_specs("nope", {})


async def test_flavor_listing_and_access(store: Store) -> None:
    await store.create_flavor(TINY)
    await store.create_flavor(Flavor("2", "small", 1, 2048, 20))
    await store.create_flavor(Flavor("3", "private", 2, 4096, 40, is_public=False))
    await store.create_flavor(Flavor("4", "hidden", 2, 4096, 40, is_public=False))

    async def ids(**kw: Any) -> list[str]:
        return [f.id for f in await store.list_flavors(**kw)]

    assert await ids() == ["1", "2", "3", "4"]
    assert await ids(is_public=True) == ["1", "2"]
    assert await ids(is_public=False) == ["3", "4"]
    await store.add_flavor_access("3", "p1")
    await store.add_flavor_access("3", "p2")
    assert await ids(is_public=True, project_id="p1") == ["1", "2", "3"]
    assert await ids(is_public=True, project_id="p9") == ["1", "2"]
    assert await ids(min_ram=2048) == ["2", "3", "4"]
    assert await ids(min_disk=40) == ["3", "4"]
    assert await ids(limit=2, marker="1") == ["2", "3"]
    with pytest.raises(errors.Invalid):
        await store.list_flavors(marker="nope")
    assert await store.list_flavor_access("3") == ["p1", "p2"]
    with pytest.raises(errors.Conflict):
        await store.add_flavor_access("3", "p1")
    await store.remove_flavor_access("3", "p2")
    with pytest.raises(errors.NotFound):
        await store.remove_flavor_access("3", "p2")
    with pytest.raises(errors.FlavorNotFound):
        await store.add_flavor_access("nope", "p1")
    await store.delete_flavor("3")  # access rows go with it
    await store.create_flavor(Flavor("3", "private", 2, 4096, 40, is_public=False))
    assert await store.list_flavor_access("3") == []


# --- key pairs and migration records ----------------------------------------


async def test_keypairs(store: Store) -> None:
    kp = await store.create_keypair("u1", "b", "ssh-ed25519 AAA", "aa:bb")
    await store.create_keypair("u1", "a", "ssh-ed25519 BBB", "cc:dd", "x509")
    await store.create_keypair("u2", "b", "ssh-ed25519 CCC", "ee:ff")
    assert kp.type == "ssh" and kp.created_at
    assert await store.get_keypair("u1", "b") == kp
    with pytest.raises(errors.Conflict, match="Key pair 'b' already exists."):
        await store.create_keypair("u1", "b", "x", "y")
    assert [k.name for k in await store.list_keypairs("u1")] == ["a", "b"]
    assert [k.name for k in await store.list_keypairs("u1", marker="a")] == ["b"]
    await store.delete_keypair("u1", "b")
    with pytest.raises(errors.NotFound, match="Keypair b not found for user u1"):
        await store.get_keypair("u1", "b")
    with pytest.raises(errors.NotFound):
        await store.delete_keypair("u1", "b")
    assert (await store.get_keypair("u2", "b")).public_key == "ssh-ed25519 CCC"


async def test_migration_records(store: Store) -> None:
    inst = await store.create_instance(make())
    m1 = await store.create_migration(
        inst.uuid, "resize", "pre-migrating", "node1", "node1", "1", "2"
    )
    assert (m1.status, m1.old_flavor_id, m1.new_flavor_id) == ("pre-migrating", "1", "2")
    m2 = await store.update_migration_status(m1.id, "finished", expect_status="pre-migrating")
    assert m2.status == "finished" and m2.updated_at is not None
    with pytest.raises(errors.Conflict):
        await store.update_migration_status(m1.id, "confirmed", expect_status="pre-migrating")
    with pytest.raises(errors.NotFound):
        await store.update_migration_status(999, "confirmed")
    found = await store.get_migration_for_instance(inst.uuid, {"finished"})
    assert found == m2
    assert await store.get_migration_for_instance(inst.uuid, {"confirmed"}) is None
    assert [m.id for m in await store.list_migrations({"finished"})] == [m1.id]
    assert await store.list_migrations({"finished"}, older_than="2000-01-01T00:00:00.000000") == []
    assert len(await store.list_migrations({"finished"}, older_than=utcnow())) == 1
    with pytest.raises(errors.InstanceNotFound):
        await store.create_migration("nope", "resize", "x", "node1")


async def test_reader_opens_a_state_dir_with_uri_characters(tmp_path: Path) -> None:
    """The read-only connection is opened by URI: '?', '#' and '%' in the
    path must not cut it short."""
    folder = tmp_path / "odd ?#% dir"
    folder.mkdir()
    db = await Database.open(folder / "novad.sqlite")
    try:
        await db.migrate([COMPUTE])
        store = Store(db)
        made = await store.create_instance(make("vm"))
        assert (await store.get_instance(made.uuid)).name == "vm"
    finally:
        await db.close()


async def test_project_quotas_set_merge_survive_reopen_and_delete(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "q.db")
    await db.migrate([COMPUTE])
    store = Store(db)
    assert await store.project_quotas("p1") == {}
    await store.set_project_quotas("p1", {"instances": 3, "ram": 1024})
    await store.set_project_quotas("p1", {"instances": 5})
    await store.set_project_quotas("p2", {"cores": -1})
    await db.close()

    db = await Database.open(tmp_path / "q.db")
    await db.migrate([COMPUTE])
    store = Store(db)
    assert await store.project_quotas("p1") == {"instances": 5, "ram": 1024}
    await store.delete_project_quotas("p1")
    assert await store.project_quotas("p1") == {}
    assert await store.project_quotas("p2") == {"cores": -1}
    await db.close()


async def test_a_v1_compute_database_gains_the_quota_table(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "v1.db")
    await db.migrate([Component("compute", COMPUTE.migrations[:1])])
    assert await db.versions() == {"compute": 1}
    await db.migrate([COMPUTE])
    assert await db.versions() == {"compute": COMPUTE.latest}
    await Store(db).set_project_quotas("p", {"instances": 1})
    assert await Store(db).project_quotas("p") == {"instances": 1}
    await db.close()


async def test_service_records_round_trip_and_survive_reopen(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "s.db")
    await db.migrate([COMPUTE])
    store = Store(db)
    assert await store.get_service("node1", "nova-compute") is None
    await store.set_service("node1", "nova-compute", True, "new disks")
    await store.set_service("node2", "nova-compute", False, None)
    await db.close()

    db = await Database.open(tmp_path / "s.db")
    await db.migrate([COMPUTE])
    store = Store(db)
    row = await store.get_service("node1", "nova-compute")
    assert row is not None and (row.disabled, row.disabled_reason) == (True, "new disks")
    await store.set_service("node1", "nova-compute", False, None)
    row = await store.get_service("node1", "nova-compute")
    assert row is not None and (row.disabled, row.disabled_reason) == (False, None)
    other = await store.get_service("node2", "nova-compute")
    assert other is not None and not other.disabled
    await db.close()


async def test_a_v2_compute_database_gains_the_services_table(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "v2.db")
    await db.migrate([Component("compute", COMPUTE.migrations[:2])])
    await Store(db).set_project_quotas("p", {"instances": 1})
    await db.migrate([COMPUTE])
    assert await db.versions() == {"compute": COMPUTE.latest}
    await Store(db).set_service("n", "nova-compute", True, "r")
    assert (await Store(db).get_service("n", "nova-compute")) is not None
    assert await Store(db).project_quotas("p") == {"instances": 1}
    await db.close()


async def test_search_migrations_filters(store: Store) -> None:
    a = await store.create_instance(make("a"))
    b = await store.create_instance(make("b"))
    resize = await store.create_migration(a.uuid, "resize", "finished", "node1", "node1",
                                          "42", "1")
    moved = await store.create_migration(b.uuid, "migration", "error", "node1", None)
    evac = await store.create_migration(b.uuid, "evacuation", "done", "node2", "node3")

    def ids(found: list[Migration]) -> list[int]:
        return [m.id for m in found]

    assert ids(await store.search_migrations()) == [resize.id, moved.id, evac.id]
    assert ids(await store.search_migrations(status="error")) == [moved.id]
    assert ids(await store.search_migrations(instance_uuid=b.uuid)) == [moved.id, evac.id]
    assert ids(await store.search_migrations(host="node3")) == [evac.id]
    assert ids(await store.search_migrations(host="node1")) == [resize.id, moved.id]
    assert ids(await store.search_migrations(source_compute="node2")) == [evac.id]
    assert ids(await store.search_migrations(migration_type="resize", host="node1")) == [
        resize.id]
