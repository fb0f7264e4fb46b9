"""Instance actions, their events, and instance faults (Nova's
``instance_actions``, ``instance_actions_events``, ``instance_faults``).

The ``*_sync`` functions run on the database worker thread inside a write
transaction, so the compare-and-swap write can record an action, open or
close an event and add a fault in the same transaction as the state change.
:class:`ActionsMixin` holds the async API of :class:`novad.store.Store`.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from novad import errors
from novad.store.db import Database, utcnow
from novad.store.models import (
    ActionRecord,
    ActionStart,
    EventFinish,
    EventRecord,
    EventStart,
    Fault,
    FaultRecord,
)

_ACTION_COLUMNS = (
    "action, instance_uuid, request_id, user_id, project_id,"
    " start_time, finish_time, message, updated_at"
)
_EVENT_COLUMNS = "event, start_time, finish_time, result, traceback, host, details"

OBSERVING_ACTIONS = ("console",)
"""Actions that record an observation (a console session), never a state
change: "the instance's latest action" (crash recovery, events without an
action of their own) skips them, so a console opened during a reboot never
collects the reboot's events."""
_NOT_OBSERVING = "action NOT IN (" + ", ".join(f"'{a}'" for a in OBSERVING_ACTIONS) + ")"

# The action an event belongs to: the one with the event's request_id, or,
# when there is none, the instance's latest action.  Nova does the same so
# that events written at service restart (under a fresh request id) land on
# the action they finish.  The second column says which case it was.  Both
# arms are index lookups and LIMIT 1 stops after the first that yields a row
# (a single ORDER BY over the instance's actions would scan them all).
_FIND_ACTION = (
    "SELECT id, 1 FROM instance_actions WHERE instance_uuid = ? AND request_id = ?"
    " UNION ALL SELECT * FROM (SELECT id, 0 FROM instance_actions WHERE instance_uuid = ?"
    f" AND {_NOT_OBSERVING} ORDER BY id DESC LIMIT 1) LIMIT 1"
)


def insert_action_sync(conn: sqlite3.Connection, uuid: str, action: ActionStart, now: str) -> int:
    """Record the start of an action; returns its row id.  Raises Conflict
    on a reused request id."""
    try:
        cur = conn.execute(
            "INSERT INTO instance_actions(instance_uuid, action, request_id, user_id,"
            " project_id, start_time, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (uuid, action.action, action.request_id, action.user_id, action.project_id, now, now),
        )
    except sqlite3.IntegrityError as exc:
        raise errors.Conflict(
            f"Action for request_id {action.request_id} on instance {uuid} already exists"
        ) from exc
    return int(cur.lastrowid or 0)


def _find_action(conn: sqlite3.Connection, uuid: str, request_id: str) -> tuple[int, bool]:
    row = conn.execute(_FIND_ACTION, (uuid, request_id, uuid)).fetchone()
    if row is None:
        raise errors.NotFound(f"Action for request_id {request_id} on instance {uuid} not found")
    return int(row[0]), bool(row[1])


def start_event_sync(
    conn: sqlite3.Connection,
    uuid: str,
    event: EventStart,
    now: str,
    action_id: int | None = None,
) -> int:
    """Open ``event`` on its action (see :data:`_FIND_ACTION`) and return
    the action's id.  ``action_id`` is the action just inserted by the same
    write, which saves the lookup.  Raises NotFound when the instance has no
    action at all."""
    if action_id is None:
        action_id, _ = _find_action(conn, uuid, event.request_id)
        conn.execute("UPDATE instance_actions SET updated_at = ? WHERE id = ?", (now, action_id))
    conn.execute(
        "INSERT INTO instance_actions_events(action_id, event, start_time, host)"
        " VALUES (?, ?, ?, ?)",
        (action_id, event.event, now, event.host),
    )
    return action_id


def finish_event_sync(
    conn: sqlite3.Connection,
    uuid: str,
    event: EventFinish,
    now: str,
    finish_action: bool = False,
) -> int:
    """Close the latest open event named ``event.event`` of its action and
    return the action's id; with ``finish_action`` also finish the action.

    A result of ``Error`` also sets the action's message to ``Error``,
    except when the event landed on the latest action for want of one with
    its request id (Nova leaves that action's message alone).
    Raises NotFound when there is no such action or event.
    """
    action_id, exact = _find_action(conn, uuid, event.request_id)
    cur = conn.execute(
        "UPDATE instance_actions_events SET finish_time = ?, result = ?, traceback = ?,"
        " details = ? WHERE id = (SELECT id FROM instance_actions_events"
        "  WHERE action_id = ? AND event = ?"
        "  ORDER BY finish_time IS NULL DESC, id DESC LIMIT 1)",
        (now, event.result, event.traceback, event.details, action_id, event.event),
    )
    if cur.rowcount != 1:
        raise errors.NotFound(f"Event {event.event} not found for action id {event.request_id}")
    error = exact and event.result.lower() == "error"
    conn.execute(
        "UPDATE instance_actions SET updated_at = ?,"
        " message = CASE WHEN ? THEN 'Error' ELSE message END,"
        " finish_time = CASE WHEN ? THEN ? ELSE finish_time END WHERE id = ?",
        (now, error, finish_action, now, action_id),
    )
    return action_id


def finish_action_sync(conn: sqlite3.Connection, action_id: int, now: str) -> None:
    """Set an action's finish time."""
    conn.execute(
        "UPDATE instance_actions SET finish_time = ?, updated_at = ? WHERE id = ?",
        (now, now, action_id),
    )


def insert_fault_sync(conn: sqlite3.Connection, uuid: str, fault: Fault, now: str) -> None:
    """Record an instance fault."""
    conn.execute(
        "INSERT INTO instance_faults(instance_uuid, code, message, details, host, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (uuid, fault.code, fault.message, fault.details, fault.host, now),
    )


def _action(row: Any, events: tuple[EventRecord, ...] = ()) -> ActionRecord:
    (action, uuid, request_id, user_id, project_id, start, finish, message, updated) = row
    return ActionRecord(
        action, uuid, request_id, user_id, project_id, start, finish, message, updated, events
    )


class ActionsMixin:
    """Actions, events and faults of :class:`novad.store.Store`."""

    _db: Database

    async def record_event(self, uuid: str, event: EventStart | EventFinish) -> None:
        """Open (EventStart) or close (EventFinish) an action event outside a
        state change.  Raises NotFound when the action or event is missing."""

        def run(conn: sqlite3.Connection) -> None:
            if isinstance(event, EventStart):
                start_event_sync(conn, uuid, event, utcnow())
            else:
                finish_event_sync(conn, uuid, event, utcnow())

        await self._db.write(run)

    async def add_fault(self, uuid: str, fault: Fault) -> None:
        """Record an instance fault.  Raises InstanceNotFound for an unknown
        instance (the foreign key refuses the row)."""

        def run(conn: sqlite3.Connection) -> None:
            try:
                insert_fault_sync(conn, uuid, fault, utcnow())
            except sqlite3.IntegrityError as exc:
                raise errors.InstanceNotFound(uuid) from exc

        await self._db.write(run)

    async def latest_fault(self, uuid: str) -> FaultRecord | None:
        """The instance's most recent fault, or None."""
        rows = list(
            await self._db.fetch(
                "SELECT code, message, details, host, created_at FROM instance_faults"
                " WHERE instance_uuid = ? ORDER BY id DESC LIMIT 1",
                (uuid,),
            )
        )
        return FaultRecord(*rows[0]) if rows else None

    async def list_actions(self, uuid: str) -> list[ActionRecord]:
        """The instance's actions, newest first, without their events."""
        rows = await self._db.fetch(
            f"SELECT {_ACTION_COLUMNS} FROM instance_actions WHERE instance_uuid = ?"
            " ORDER BY start_time DESC, id DESC",
            (uuid,),
        )
        return [_action(row) for row in rows]

    async def latest_action(self, uuid: str) -> ActionRecord | None:
        """The instance's newest action (without events, console sessions
        skipped: :data:`OBSERVING_ACTIONS`), or None."""
        rows = list(
            await self._db.fetch(
                f"SELECT {_ACTION_COLUMNS} FROM instance_actions WHERE instance_uuid = ?"
                f" AND {_NOT_OBSERVING} ORDER BY start_time DESC, id DESC LIMIT 1",
                (uuid,),
            )
        )
        return _action(rows[0]) if rows else None

    async def get_action(self, uuid: str, request_id: str) -> ActionRecord:
        """One action with its events (newest event first).
        Raises NotFound."""

        def read(conn: sqlite3.Connection) -> ActionRecord | None:
            row = conn.execute(
                f"SELECT id, {_ACTION_COLUMNS} FROM instance_actions"
                " WHERE instance_uuid = ? AND request_id = ?",
                (uuid, request_id),
            ).fetchone()
            if row is None:
                return None
            events = conn.execute(
                f"SELECT {_EVENT_COLUMNS} FROM instance_actions_events"
                " WHERE action_id = ? ORDER BY start_time DESC, id DESC",
                (row[0],),
            ).fetchall()
            return _action(row[1:], tuple(EventRecord(*e) for e in events))

        found = await self._db.read(read)
        if found is None:
            raise errors.NotFound(
                f"Action for request_id {request_id} on instance {uuid} not found"
            )
        return found
