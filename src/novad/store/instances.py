"""Instance rows: create, read, list, and the compare-and-swap state write.

Every vm_state/task_state change goes through :meth:`InstancesMixin.write`:
one ``UPDATE ... WHERE uuid=? AND vm_state IN (...) AND task_state IN (...)
RETURNING *`` plus the action/event/fault rows, in one group-committed
transaction on the worker thread (see :mod:`novad.store.db`).  A lost race
raises :class:`novad.errors.UnexpectedTaskState` and writes nothing.
"""

from __future__ import annotations

import functools
import re
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from novad import errors
from novad.states.enums import Task, VmState
from novad.store import actions as act
from novad.store.codec import (
    INSTANCE_COLUMNS,
    INSTANCE_FIELDS,
    decode_instance,
    encode_changes,
    instance_row,
)
from novad.store.db import Database, utcnow
from novad.store.models import (
    ActionStart,
    EventFinish,
    EventStart,
    Expect,
    Fault,
    Instance,
    task_from_db,
)

# Fields no caller may set: the key, and the two timestamps the store owns.
_IMMUTABLE = frozenset({"uuid", "created_at", "updated_at"})
_STATE_FIELDS = frozenset({"vm_state", "task_state"})
_SETTABLE = frozenset(INSTANCE_FIELDS) - _IMMUTABLE

_INSERT = (
    f"INSERT INTO instances({INSTANCE_COLUMNS})"
    f" VALUES ({', '.join('?' * len(INSTANCE_FIELDS))})"
)


def _qmarks(n: int) -> str:
    return ", ".join("?" * n)


def _task_sql(n_values: int, null: bool) -> str:
    """The task_state condition for ``n_values`` non-null tasks (+ NULL)."""
    if n_values and null:
        return f"(task_state IS NULL OR task_state IN ({_qmarks(n_values)}))"
    if n_values:
        return f"task_state IN ({_qmarks(n_values)})"
    return "task_state IS NULL" if null else "0"


@functools.lru_cache(maxsize=1024)
def _cas_sql(keys: tuple[str, ...], n_vm: int, n_task: int, null_task: bool, live: bool) -> str:
    """The CAS UPDATE for one shape of (changes, expect).  Cached: the text
    is constant per shape, so sqlite3's statement cache reuses the prepared
    statement.  ``n_vm``/``n_task`` of -1 mean "not checked"."""
    sets = "".join(f"{k} = ?, " for k in keys) + "updated_at = ?"
    where = ["uuid = ?"]
    if live:
        where.append("deleted = 0")
    if n_vm >= 0:
        where.append(f"vm_state IN ({_qmarks(n_vm)})" if n_vm else "0")
    if n_task >= 0:
        where.append(_task_sql(n_task, null_task))
    return f"UPDATE instances SET {sets} WHERE {' AND '.join(where)} RETURNING {INSTANCE_COLUMNS}"


def _check_keys(changes: Mapping[str, Any]) -> None:
    bad = set(changes) - _SETTABLE
    if bad:
        raise ValueError(f"not settable instance fields: {sorted(bad)}")


def _expected(expect: Expect) -> dict[str, list[str | None]]:
    """The precondition as Nova prints it in UnexpectedTaskStateError."""
    out: dict[str, list[str | None]] = {}
    if expect.vm_states is not None:
        out["vm_state"] = [*sorted(str(v) for v in expect.vm_states)]
    if expect.task_states is not None:
        tasks = expect.task_states
        named = sorted(str(t) for t in tasks if t is not None)
        out["task_state"] = [None, *named] if None in tasks else [*named]
    return out


def _refusal(conn: sqlite3.Connection, uuid: str, expect: Expect, live: bool) -> errors.NovadError:
    """Why a CAS update matched no row: missing (or deleted) or a lost race."""
    row = conn.execute(
        "SELECT vm_state, task_state, deleted FROM instances WHERE uuid = ?", (uuid,)
    ).fetchone()
    if row is None or (live and row[2]):
        return errors.InstanceNotFound(uuid)
    return errors.UnexpectedTaskState(
        uuid, expected=_expected(expect), actual=(VmState(row[0]), task_from_db(row[1]))
    )


def _cas_statement(
    uuid: str, expect: Expect, enc: Mapping[str, Any], now: str
) -> tuple[str, list[Any]]:
    """The CAS UPDATE and its parameters."""
    keys = tuple(enc)
    params: list[Any] = [*enc.values(), now, uuid]
    n_vm = n_task = -1
    null_task = False
    if expect.vm_states is not None:
        n_vm = len(expect.vm_states)
        params.extend(sorted(expect.vm_states))
    if expect.task_states is not None:
        tasks = sorted(t for t in expect.task_states if t is not None)
        n_task, null_task = len(tasks), None in expect.task_states
        params.extend(tasks)
    return _cas_sql(keys, n_vm, n_task, null_task, "deleted" not in enc), params


def _record_sync(
    conn: sqlite3.Connection,
    uuid: str,
    now: str,
    action: ActionStart | None,
    event_start: EventStart | None,
    event_finish: EventFinish | None,
    finish_action: bool,
) -> None:
    """The action/event rows of a state write, in as few statements as the
    combination allows."""
    action_id: int | None = None
    if action is not None:
        action_id = act.insert_action_sync(conn, uuid, action, now)
    if event_start is not None:
        same = action is not None and action.request_id == event_start.request_id
        action_id = act.start_event_sync(
            conn, uuid, event_start, now, action_id if same else None
        )
    if event_finish is not None:
        act.finish_event_sync(conn, uuid, event_finish, now, finish_action)
    elif finish_action and action_id is not None:
        act.finish_action_sync(conn, action_id, now)


def _pairs_sql(pairs: Sequence[tuple[VmState, Task | Expect]]) -> tuple[str, list[Any]]:
    """``(vm_state = ? AND <task>) OR ...`` for a list filter."""
    parts: list[str] = []
    params: list[Any] = []
    for vm, task in pairs:
        params.append(vm)
        if isinstance(task, Expect):
            if task.task_states is None:
                parts.append("vm_state = ?")
                continue
            tasks = sorted(t for t in task.task_states if t is not None)
            parts.append(f"(vm_state = ? AND {_task_sql(len(tasks), None in task.task_states)})")
            params.extend(tasks)
        elif task is None:
            parts.append("(vm_state = ? AND task_state IS NULL)")
        else:
            parts.append("(vm_state = ? AND task_state = ?)")
            params.append(task)
    return "(" + " OR ".join(parts) + ")", params


def _marker_sql(mirror: bool) -> str:
    """The (created_at, uuid) of the marker row, here or (``mirror``) anywhere."""
    sql = "SELECT created_at, uuid FROM instances WHERE uuid = ?"
    if mirror:
        sql += " UNION ALL SELECT created_at, uuid FROM cluster_instances WHERE uuid = ? LIMIT 1"
    return sql


_ELSEWHERE = ("NOT EXISTS (SELECT 1 FROM instances AS here"
              " WHERE here.uuid = cluster_instances.uuid)")
"""A row of ``cluster_instances`` that is not also in ``instances`` (rows of
this node's own never land there, but one that moved here must show once)."""


def _with_mirror(where: Sequence[str], params: Sequence[Any]) -> tuple[str, list[Any]]:
    """This node's rows and the other nodes' (``cluster_instances``) under
    the same conditions, as one compound SELECT: each arm keeps its own
    indexes, and SQLite merges the two for the caller's ORDER BY."""
    arms = []
    for table, extra in (("instances", []), ("cluster_instances", [_ELSEWHERE])):
        conditions = [*where, *extra]
        arm = f"SELECT {INSTANCE_COLUMNS} FROM {table}"
        if conditions:
            arm += " WHERE " + " AND ".join(conditions)
        arms.append(arm)
    return " UNION ALL ".join(arms), [*params, *params]


class InstancesMixin:
    """Instance rows of :class:`novad.store.Store`."""

    _db: Database

    async def create_instance(
        self,
        inst: Instance,
        action: ActionStart | None = None,
        event: EventStart | None = None,
    ) -> Instance:
        """Insert ``inst`` (created_at/updated_at set to now) with its first
        action and event, in one transaction.  Raises Conflict if the uuid
        exists."""

        def run(conn: sqlite3.Connection) -> Instance:
            now = utcnow()
            row = inst.replace(created_at=now, updated_at=now)
            try:
                conn.execute(_INSERT, instance_row(row))
            except sqlite3.IntegrityError as exc:
                raise errors.Conflict(f"Instance {inst.uuid} already exists.") from exc
            _record_sync(conn, inst.uuid, now, action, event, None, False)
            return row

        return await self._db.write(run)

    async def get_instance(self, uuid: str, *, include_deleted: bool = False) -> Instance:
        """One instance.  Raises InstanceNotFound (also for a deleted one
        unless ``include_deleted``)."""
        sql = f"SELECT {INSTANCE_COLUMNS} FROM instances WHERE uuid = ?"
        if not include_deleted:
            sql += " AND deleted = 0"
        rows = list(await self._db.fetch(sql, (uuid,)))
        if not rows:
            raise errors.InstanceNotFound(uuid)
        return decode_instance(tuple(rows[0]))

    async def has_instance(self, uuid: str) -> bool:
        """Whether this node holds the instance's row (deleted or not)."""
        rows = list(await self._db.fetch("SELECT 1 FROM instances WHERE uuid = ?", (uuid,)))
        return bool(rows)

    async def get_replica(self, uuid: str) -> Instance:
        """Another node's instance as last replicated here (for reads while
        that node is unreachable).  Raises InstanceNotFound."""
        try:
            rows = list(await self._db.fetch(
                f"SELECT {INSTANCE_COLUMNS} FROM cluster_instances WHERE uuid = ? AND deleted = 0",
                (uuid,)))
        except sqlite3.OperationalError:  # no cluster_instances: never part of a cluster
            rows = []
        if not rows:
            raise errors.InstanceNotFound(uuid)
        return decode_instance(tuple(rows[0]))

    async def list_instances(
        self,
        *,
        project_id: str | None = None,
        host: str | None = None,
        include_deleted: bool = False,
        name_regex: str | None = None,
        vm_task_pairs: Sequence[tuple[VmState, Task | Expect]] | None = None,
        changes_since: str | None = None,
        limit: int | None = None,
        marker: str | None = None,
        everywhere: bool = False,
    ) -> list[Instance]:
        """Instances, newest first (created_at DESC, uuid DESC), in one SELECT.

        ``vm_task_pairs`` keeps rows matching any pair; the task part is a
        task (None = no task) or an Expect whose task_states are accepted
        (``models.ANY`` = any task).  ``changes_since`` keeps rows updated
        at or after it and, as in Nova, includes deleted rows.  ``marker`` is
        the uuid of the last row of the previous page (deleted rows are valid
        markers).  ``everywhere`` adds the other nodes' instances, as last
        replicated (see :func:`_with_mirror`).  Raises Invalid for an unknown
        marker or a bad regex.
        """
        where: list[str] = []
        params: list[Any] = []
        for clause, value in (("project_id = ?", project_id), ("host = ?", host)):
            if value is not None:
                where.append(clause)
                params.append(value)
        if changes_since is not None:
            where.append("updated_at >= ?")
            params.append(changes_since)
        elif not include_deleted:
            where.append("deleted = 0")
        if name_regex is not None:
            try:
                re.compile(name_regex)
            except re.error as exc:
                raise errors.Invalid(f"Invalid regular expression {name_regex!r}: {exc}") from exc
            where.append("name REGEXP ?")
            params.append(name_regex)
        if vm_task_pairs is not None:
            if not vm_task_pairs:
                return []
            clause, extra = _pairs_sql(vm_task_pairs)
            where.append(clause)
            params.extend(extra)
        mirror = everywhere and await self._has_mirror()
        if marker is not None:
            where.append(f"(created_at, uuid) < ({_marker_sql(mirror)})")
            params.extend([marker, marker] if mirror else [marker])
        if mirror:
            sql, params = _with_mirror(where, params)
        else:
            sql = f"SELECT {INSTANCE_COLUMNS} FROM instances"
            if where:
                sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at DESC, uuid DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        rows = await self._db.fetch(sql, params)
        result = [decode_instance(tuple(r)) for r in rows]
        if not result and marker is not None:
            await self._check_marker(marker, mirror)
        return result

    async def _check_marker(self, marker: str, mirror: bool) -> None:
        # Only reached on an empty page: an unknown marker also yields one.
        rows = list(await self._db.fetch(_marker_sql(mirror),
                                         [marker, marker] if mirror else [marker]))
        if not rows:
            raise errors.Invalid(f"Marker {marker} could not be found.")

    _mirror_seen = False

    async def _has_mirror(self) -> bool:
        """Whether ``cluster_instances`` exists (replication creates it when
        the node starts; a bare store in a test has none).  Once seen, it
        stays: nothing drops it."""
        if not self._mirror_seen:
            rows = list(await self._db.fetch(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'cluster_instances'"))
            self._mirror_seen = bool(rows)
        return self._mirror_seen

    async def write(
        self,
        uuid: str,
        expect: Expect,
        changes: Mapping[str, Any],
        *,
        action: ActionStart | None = None,
        event_start: EventStart | None = None,
        event_finish: EventFinish | None = None,
        fault: Fault | None = None,
        finish_action: bool = False,
    ) -> Instance:
        """The compare-and-swap state write; returns the updated instance.

        In one transaction: update ``changes`` (Instance field names, Python
        values) and updated_at where the row is live (unless ``changes`` sets
        ``deleted``) and matches ``expect``; then record ``action``, open
        ``event_start``, close ``event_finish``, add ``fault`` and, with
        ``finish_action``, finish the action (the one ``event_finish``
        landed on, else ``action`` or ``event_start``'s).  Setting ``deleted`` true without
        ``deleted_at`` also sets deleted_at.

        Raises UnexpectedTaskState when the row does not match (nothing is
        written), InstanceNotFound when it is absent or deleted, NotFound
        when an event's action is missing, ValueError for bad ``changes``.
        """
        _check_keys(changes)
        if finish_action and not (action or event_start or event_finish):
            raise ValueError("finish_action needs an action, event_start or event_finish")
        enc = encode_changes(changes)

        def run(conn: sqlite3.Connection) -> Instance:
            now = utcnow()
            if enc.get("deleted") and "deleted_at" not in enc:
                enc["deleted_at"] = now
            sql, params = _cas_statement(uuid, expect, enc, now)
            rows = conn.execute(sql, params).fetchall()
            if not rows:
                raise _refusal(conn, uuid, expect, "deleted" not in enc)
            _record_sync(conn, uuid, now, action, event_start, event_finish, finish_action)
            if fault is not None:
                act.insert_fault_sync(conn, uuid, fault, now)
            return decode_instance(rows[0])

        return await self._db.write(run)

    async def update_fields(self, uuid: str, changes: Mapping[str, Any]) -> Instance:
        """Update non-state fields (name, metadata, lock, power_state, ...)
        of a live instance.  Raises ValueError for vm_state/task_state (those
        change only through :meth:`write`) and InstanceNotFound."""
        if _STATE_FIELDS & set(changes):
            raise ValueError("vm_state/task_state change only through Store.write")
        return await self.write(uuid, Expect(), changes)

    async def instances_in_window(self, begin: str, end: str,
                                  project_id: str | None = None) -> list[Instance]:
        """Instances that may have run between ``begin`` and ``end`` (store
        timestamps), deleted ones included, oldest first: not terminated
        before ``begin`` and not launched after ``end`` (never-launched ones
        too), as Nova selects them for os-simple-tenant-usage.  Every node's
        instances count: the other nodes' as last replicated here."""
        where = ["(terminated_at IS NULL OR terminated_at > ?)",
                 "(launched_at IS NULL OR launched_at < ?)"]
        params: list[Any] = [begin, end]
        if project_id is not None:
            where.append("project_id = ?")
            params.append(project_id)
        sql = f"SELECT {INSTANCE_COLUMNS} FROM instances WHERE " + " AND ".join(where)
        if await self._has_mirror():
            sql, params = _with_mirror(where, params)
        rows = await self._db.fetch(sql + " ORDER BY created_at, uuid", params)
        return [decode_instance(tuple(r)) for r in rows]

    async def count_usage(self, project_id: str) -> tuple[int, int, int]:
        """(instances, vcpus, ram MB) of the project's live instances, for
        quotas.  Soft-deleted instances count, as in Nova."""
        usage = ("SELECT COUNT(*), COALESCE(SUM(json_extract(flavor, '$.vcpus')), 0),"
                 " COALESCE(SUM(json_extract(flavor, '$.memory_mb')), 0)"
                 " FROM {} WHERE project_id = ? AND deleted = 0")
        tables = ["instances"]
        if await self._db.fetch("SELECT 1 FROM sqlite_master WHERE type = 'table'"
                                " AND name = 'cluster_instances'"):
            tables.append("cluster_instances")  # a cluster's quotas count every node's
        count = vcpus = ram = 0
        for table in tables:
            [(n, cores, mem)] = await self._db.fetch(usage.format(table), (project_id,))
            count, vcpus, ram = count + int(n), vcpus + int(cores), ram + int(mem)
        return count, vcpus, ram

    async def purge_deleted(self, uuid: str) -> bool:
        """Hard-remove a deleted instance's row with its actions, events,
        faults and migrations.  Returns False if there is no such deleted
        row.  novad keeps deleted rows (as Nova does); this is for tests and
        archiving."""

        def run(conn: sqlite3.Connection) -> bool:
            cur = conn.execute("DELETE FROM instances WHERE uuid = ? AND deleted = 1", (uuid,))
            return cur.rowcount == 1

        return await self._db.write(run)
