"""Compute service records (os-services): one row per host and binary.

The table is replicated: every node holds every host's rows, and any node
may write any host's (an admin disables a node from wherever they are).
"""

from __future__ import annotations

import sqlite3

from novad.store.db import Database, utcnow
from novad.store.models import ServiceRow


class ServicesMixin:
    """Service records of :class:`novad.store.Store`."""

    _db: Database

    async def get_service(self, host: str, binary: str) -> ServiceRow | None:
        """The record of ``binary`` on ``host``; None if never written (enabled)."""
        rows = await self._db.fetch(
            "SELECT disabled, disabled_reason, updated_at FROM services"
            " WHERE host = ? AND binary = ?", (host, binary))
        if not rows:
            return None
        disabled, reason, updated_at = rows[0]
        return ServiceRow(host=host, binary=binary, disabled=bool(disabled),
                          disabled_reason=reason, updated_at=str(updated_at))

    async def list_services(self, binary: str) -> list[ServiceRow]:
        """Every record of ``binary``, by host (a host without one is enabled)."""
        rows = await self._db.fetch(
            "SELECT host, disabled, disabled_reason, updated_at FROM services"
            " WHERE binary = ? ORDER BY host", (binary,))
        return [ServiceRow(host=str(host), binary=binary, disabled=bool(disabled),
                           disabled_reason=reason, updated_at=str(updated_at))
                for host, disabled, reason, updated_at in rows]

    async def set_service(self, host: str, binary: str, disabled: bool,
                          reason: str | None) -> ServiceRow:
        """Enable or disable ``binary`` on ``host`` (insert or update)."""
        stamp = utcnow()

        def run(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO services(host, binary, disabled, disabled_reason, updated_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT(host, binary) DO UPDATE SET"
                " disabled = excluded.disabled, disabled_reason = excluded.disabled_reason,"
                " updated_at = excluded.updated_at",
                (host, binary, int(disabled), reason, stamp))

        await self._db.write(run)
        return ServiceRow(host=host, binary=binary, disabled=disabled, disabled_reason=reason,
                          updated_at=stamp)
