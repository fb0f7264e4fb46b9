"""Compute service records (os-services): one row per host and binary.

The table is replicated: every node holds every host's rows, and any node
may write any host's (an admin disables a node, or forces it down, from
wherever they are).  Enabling or disabling leaves ``forced_down`` alone and
forcing down leaves the enabled state alone, as Nova's two updates do.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from novad.store.db import Database, utcnow
from novad.store.models import ServiceRow

_COLUMNS = "host, binary, disabled, disabled_reason, updated_at, forced_down"


def _row(values: Sequence[Any]) -> ServiceRow:
    host, binary, disabled, reason, updated_at, forced_down = values
    return ServiceRow(host=str(host), binary=str(binary), disabled=bool(disabled),
                      disabled_reason=reason, updated_at=str(updated_at),
                      forced_down=bool(forced_down))


class ServicesMixin:
    """Service records of :class:`novad.store.Store`."""

    _db: Database

    async def get_service(self, host: str, binary: str) -> ServiceRow | None:
        """The record of ``binary`` on ``host``; None if never written (enabled,
        not forced down)."""
        rows = await self._db.fetch(
            f"SELECT {_COLUMNS} FROM services WHERE host = ? AND binary = ?", (host, binary))
        return _row(rows[0]) if rows else None

    async def list_services(self, binary: str) -> list[ServiceRow]:
        """Every record of ``binary``, by host (a host without one is enabled)."""
        rows = await self._db.fetch(
            f"SELECT {_COLUMNS} FROM services WHERE binary = ? ORDER BY host", (binary,))
        return [_row(r) for r in rows]

    async def set_service(self, host: str, binary: str, disabled: bool,
                          reason: str | None) -> ServiceRow:
        """Enable or disable ``binary`` on ``host`` (insert or update);
        ``forced_down`` is kept."""
        return await self._upsert(
            host, binary, {"disabled": int(disabled), "disabled_reason": reason})

    async def set_forced_down(self, host: str, binary: str, forced_down: bool) -> ServiceRow:
        """Force ``binary`` on ``host`` down, or clear that (insert or update);
        the enabled state and its reason are kept."""
        return await self._upsert(host, binary, {"forced_down": int(forced_down)})

    async def _upsert(self, host: str, binary: str, changes: dict[str, Any]) -> ServiceRow:
        """Write ``changes`` (column → value) to the row, creating it with
        the defaults for the other columns; returns the row as written."""
        stamp = utcnow()
        values = {**changes, "updated_at": stamp}
        names = ", ".join(values)
        marks = ", ".join("?" * len(values))
        updates = ", ".join(f"{c} = excluded.{c}" for c in values)

        def run(conn: sqlite3.Connection) -> ServiceRow:
            conn.execute(
                f"INSERT INTO services(host, binary, {names}) VALUES (?, ?, {marks})"
                f" ON CONFLICT(host, binary) DO UPDATE SET {updates}",
                (host, binary, *values.values()))
            row = conn.execute(f"SELECT {_COLUMNS} FROM services WHERE host = ? AND binary = ?",
                               (host, binary)).fetchone()
            return _row(row)

        return await self._db.write(run)
