"""Migration records: resizes, cold and live migrations, evacuations.

(Not schema migrations; those are :class:`novad.store.db.Component`.)
"""

from __future__ import annotations

import secrets
import sqlite3
import time
import uuid as uuidlib
from collections.abc import Collection
from typing import Any

from novad import errors
from novad.store.db import Database, utcnow
from novad.store.models import Migration

_COLUMNS = (
    "id, instance_uuid, migration_type, status, source_compute, dest_compute,"
    " old_flavor_id, new_flavor_id, created_at, updated_at, uuid, user_id, project_id"
)


def new_migration_id() -> int:
    """An id unique across the cluster, in creation order (see
    :mod:`novad.store.moves`)."""
    return time.time_ns() // 1_000_000 * 256 + secrets.randbelow(256)


def _qmarks(n: int) -> str:
    return ", ".join("?" * n)


def _next_id(conn: sqlite3.Connection) -> int:
    """A new id: unique across the cluster, and above every id held here,
    so this node's records list in creation order."""
    held = conn.execute("SELECT MAX(id) FROM migrations").fetchone()[0]
    return max(new_migration_id(), int(held or 0) + 1)


class MigrationsMixin:
    """Migration records of :class:`novad.store.Store`."""

    _db: Database

    async def create_migration(
        self,
        instance_uuid: str,
        migration_type: str,
        status: str,
        source_compute: str,
        dest_compute: str | None = None,
        old_flavor_id: str | None = None,
        new_flavor_id: str | None = None,
        *,
        user_id: str | None = None,
        project_id: str | None = None,
    ) -> Migration:
        """Record a migration asked for by ``user_id`` of ``project_id``.
        Raises InstanceNotFound for an unknown instance."""

        def run(conn: sqlite3.Connection) -> Migration:
            now = utcnow()
            try:
                exists = conn.execute("SELECT 1 FROM instances WHERE uuid = ?",
                                      (instance_uuid,)).fetchone()
                if exists is None:
                    raise sqlite3.IntegrityError("no such instance here")
                row = conn.execute(
                    "INSERT INTO migrations(id, instance_uuid, migration_type, status,"
                    " source_compute, dest_compute, old_flavor_id, new_flavor_id,"
                    f" created_at, updated_at, uuid, user_id, project_id)"
                    f" VALUES ({_qmarks(13)}) RETURNING {_COLUMNS}",
                    (_next_id(conn), instance_uuid, migration_type, status, source_compute,
                     dest_compute, old_flavor_id, new_flavor_id, now, now, str(uuidlib.uuid4()),
                     user_id, project_id),
                ).fetchall()[0]
            except sqlite3.IntegrityError as exc:
                raise errors.InstanceNotFound(instance_uuid) from exc
            return Migration(*row)

        return await self._db.write(run)

    async def update_migration_status(
        self, migration_id: int, status: str, expect_status: str | None = None
    ) -> Migration:
        """Set a migration's status, optionally only if it is
        ``expect_status`` now (compare-and-swap).  Raises NotFound, or
        Conflict when the current status differs."""

        def run(conn: sqlite3.Connection) -> Migration:
            sql = "UPDATE migrations SET status = ?, updated_at = ? WHERE id = ?"
            params: list[Any] = [status, utcnow(), migration_id]
            if expect_status is not None:
                sql += " AND status = ?"
                params.append(expect_status)
            rows = conn.execute(sql + f" RETURNING {_COLUMNS}", params).fetchall()
            if rows:
                return Migration(*rows[0])
            row = conn.execute("SELECT status FROM migrations WHERE id = ?", (migration_id,))
            current = row.fetchone()
            if current is None:
                raise errors.NotFound(f"Migration {migration_id} could not be found.")
            raise errors.Conflict(
                f"Migration {migration_id} is {current[0]}, expected {expect_status}."
            )

        return await self._db.write(run)

    async def set_migration_dest(self, migration_id: int, dest_compute: str) -> None:
        """Record where a migration goes, once the destination has claimed it."""
        await self._db.write(lambda conn: conn.execute(
            "UPDATE migrations SET dest_compute = ?, updated_at = ? WHERE id = ?",
            (dest_compute, utcnow(), migration_id)))

    async def get_migration(self, migration_id: int) -> Migration | None:
        """One migration record, or None."""
        rows = list(await self._db.fetch(f"SELECT {_COLUMNS} FROM migrations WHERE id = ?",
                                         (migration_id,)))
        return Migration(*rows[0]) if rows else None

    async def get_migration_for_instance(
        self, uuid: str, statuses: Collection[str]
    ) -> Migration | None:
        """The instance's latest migration whose status is in ``statuses``."""
        rows = list(
            await self._db.fetch(
                f"SELECT {_COLUMNS} FROM migrations WHERE instance_uuid = ?"
                f" AND status IN ({_qmarks(len(statuses))}) ORDER BY id DESC LIMIT 1",
                (uuid, *statuses),
            )
        )
        return Migration(*rows[0]) if rows else None

    async def list_migrations(
        self, statuses: Collection[str], older_than: str | None = None
    ) -> list[Migration]:
        """Migrations in ``statuses``, oldest first; with ``older_than``,
        only those last updated at or before it (resize auto-confirm)."""
        sql = f"SELECT {_COLUMNS} FROM migrations WHERE status IN ({_qmarks(len(statuses))})"
        params: list[Any] = list(statuses)
        if older_than is not None:
            sql += " AND updated_at <= ?"
            params.append(older_than)
        rows = await self._db.fetch(sql + " ORDER BY id", params)
        return [Migration(*r) for r in rows]

    async def search_migrations(self, *, status: str | None = None,
                                instance_uuid: str | None = None, host: str | None = None,
                                source_compute: str | None = None,
                                migration_type: str | None = None,
                                user_id: str | None = None,
                                project_id: str | None = None) -> list[Migration]:
        """Every migration matching the given filters, oldest first (Nova's
        os-migrations filters; ``host`` matches the source or the destination;
        ``user_id`` and ``project_id`` who asked, from 2.80)."""
        where: list[str] = []
        params: list[Any] = []
        for clause, value in (("status = ?", status), ("instance_uuid = ?", instance_uuid),
                              ("source_compute = ?", source_compute),
                              ("migration_type = ?", migration_type),
                              ("user_id = ?", user_id), ("project_id = ?", project_id)):
            if value is not None:
                where.append(clause)
                params.append(value)
        if host is not None:
            where.append("(source_compute = ? OR dest_compute = ?)")
            params.extend((host, host))
        sql = f"SELECT {_COLUMNS} FROM migrations"
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = await self._db.fetch(sql + " ORDER BY id", params)
        return [Migration(*r) for r in rows]
