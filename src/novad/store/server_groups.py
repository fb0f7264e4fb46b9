"""Server groups (os-server-groups) and their members, keyed by text ids.

The lead replicates these two tables between nodes, so every write is a
plain insert or delete of whole rows: no generated ids and no cascades.
Deleting a group deletes its member rows in the same transaction.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from novad import errors
from novad.store.db import Database
from novad.store.models import ServerGroup

_COLUMNS = "id, name, project_id, user_id, policy, rules, created_at"


def group_not_found(group_id: str) -> errors.NotFound:
    """Nova's 404 for a server group."""
    return errors.NotFound(f"Instance group {group_id} could not be found.")


def _group(row: Any, members: tuple[str, ...]) -> ServerGroup:
    gid, name, project_id, user_id, policy, rules, created_at = row
    return ServerGroup(id=gid, name=name, project_id=project_id, user_id=user_id,
                       policy=policy, rules=json.loads(rules), created_at=created_at,
                       members=members)


def _members(conn: sqlite3.Connection, group_ids: list[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {gid: [] for gid in group_ids}
    marks = ", ".join("?" for _ in group_ids)
    rows = conn.execute(
        f"SELECT group_id, instance_uuid FROM server_group_members WHERE group_id IN ({marks})"
        " ORDER BY instance_uuid", group_ids) if group_ids else []
    for gid, uuid in rows:
        found[gid].append(uuid)
    return found


class ServerGroupsMixin:
    """Server groups of :class:`novad.store.Store`."""

    _db: Database

    async def create_server_group(self, group: ServerGroup) -> ServerGroup:
        """Insert a new group (its members, if any, too).  Raises Conflict
        when the id is taken."""

        def run(conn: sqlite3.Connection) -> ServerGroup:
            try:
                conn.execute(f"INSERT INTO server_groups({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                             (group.id, group.name, group.project_id, group.user_id,
                              group.policy, json.dumps(group.rules), group.created_at))
            except sqlite3.IntegrityError as exc:
                raise errors.Conflict(f"Instance group {group.id} already exists.") from exc
            conn.executemany("INSERT INTO server_group_members(group_id, instance_uuid)"
                             " VALUES (?, ?)", [(group.id, m) for m in group.members])
            return group

        return await self._db.write(run)

    async def get_server_group(self, group_id: str) -> ServerGroup:
        """One group with its members.  Raises NotFound."""

        def run(conn: sqlite3.Connection) -> ServerGroup:
            row = conn.execute(f"SELECT {_COLUMNS} FROM server_groups WHERE id = ?",
                               (group_id,)).fetchone()
            if row is None:
                raise group_not_found(group_id)
            return _group(row, tuple(_members(conn, [group_id])[group_id]))

        return await self._db.read(run)

    async def list_server_groups(self, project_id: str | None) -> list[ServerGroup]:
        """A project's groups (every project's when None), oldest first."""

        def run(conn: sqlite3.Connection) -> list[ServerGroup]:
            sql = f"SELECT {_COLUMNS} FROM server_groups"
            params: tuple[str, ...] = ()
            if project_id is not None:
                sql += " WHERE project_id = ?"
                params = (project_id,)
            rows = conn.execute(sql + " ORDER BY created_at, id", params).fetchall()
            members = _members(conn, [r[0] for r in rows])
            return [_group(r, tuple(members[r[0]])) for r in rows]

        return await self._db.read(run)

    async def count_server_groups(self, project_id: str) -> int:
        """How many groups a project has (its ``server_groups`` usage)."""
        rows = await self._db.fetch("SELECT COUNT(*) FROM server_groups WHERE project_id = ?",
                                    (project_id,))
        return int(rows[0][0])

    async def delete_server_group(self, group_id: str) -> None:
        """Delete a group and its member rows.  Raises NotFound."""

        def run(conn: sqlite3.Connection) -> None:
            if conn.execute("DELETE FROM server_groups WHERE id = ?", (group_id,)).rowcount != 1:
                raise group_not_found(group_id)
            conn.execute("DELETE FROM server_group_members WHERE group_id = ?", (group_id,))

        await self._db.write(run)

    async def add_server_group_member(self, group_id: str, instance_uuid: str,
                                      max_members: int | None = None) -> ServerGroup:
        """Make an instance a member (idempotent) and return the group.
        Raises NotFound, and OverQuota when ``max_members`` are already in."""

        def run(conn: sqlite3.Connection) -> ServerGroup:
            row = conn.execute(f"SELECT {_COLUMNS} FROM server_groups WHERE id = ?",
                               (group_id,)).fetchone()
            if row is None:
                raise group_not_found(group_id)
            members = _members(conn, [group_id])[group_id]
            if instance_uuid not in members:
                if max_members is not None and 0 <= max_members <= len(members):
                    raise errors.OverQuota("Quota exceeded, too many servers in group")
                conn.execute("INSERT INTO server_group_members(group_id, instance_uuid)"
                             " VALUES (?, ?)", (group_id, instance_uuid))
                members = sorted([*members, instance_uuid])
            return _group(row, tuple(members))

        return await self._db.write(run)

    async def remove_server_group_member(self, group_id: str, instance_uuid: str) -> None:
        """Drop an instance from a group; nothing happens when it is not in."""

        def run(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM server_group_members WHERE group_id = ?"
                         " AND instance_uuid = ?", (group_id, instance_uuid))

        await self._db.write(run)

    async def server_groups_of(self, instance_uuid: str) -> list[str]:
        """The ids of the groups an instance is a member of."""
        rows = await self._db.fetch(
            "SELECT group_id FROM server_group_members WHERE instance_uuid = ?"
            " ORDER BY group_id", (instance_uuid,))
        return [str(r[0]) for r in rows]
