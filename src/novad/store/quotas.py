"""Per-project quota limits (os-quota-sets), one row per project and resource."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping

from novad.store.db import Database, utcnow


class QuotasMixin:
    """Project quotas of :class:`novad.store.Store`."""

    _db: Database

    async def project_quotas(self, project_id: str) -> dict[str, int]:
        """The limits set for ``project_id``, by resource; only those set."""
        rows = await self._db.fetch(
            "SELECT resource, hard_limit FROM project_quotas WHERE project_id = ?",
            (project_id,))
        return {str(resource): int(limit) for resource, limit in rows}

    async def set_project_quotas(self, project_id: str, limits: Mapping[str, int]) -> None:
        """Set (insert or replace) some of a project's limits, in one transaction."""
        stamp = utcnow()

        def run(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "INSERT INTO project_quotas(project_id, resource, hard_limit, updated_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT(project_id, resource) DO UPDATE SET"
                " hard_limit = excluded.hard_limit, updated_at = excluded.updated_at",
                [(project_id, resource, limit, stamp) for resource, limit in limits.items()])

        await self._db.write(run)

    async def delete_project_quotas(self, project_id: str) -> None:
        """Forget every limit set for ``project_id`` (back to the defaults)."""

        def run(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM project_quotas WHERE project_id = ?", (project_id,))

        await self._db.write(run)
