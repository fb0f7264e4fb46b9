"""Flavors, their extra specs, and flavor access (os-flavor-access).

Flavors are hard-deleted, as in Nova's API database; instances keep their
own copy of the flavor, so deleting one never changes a server.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from typing import Any

from novad import errors
from novad.store.codec import FLAVOR_COLUMNS, FLAVOR_FIELDS, decode_flavor, flavor_row
from novad.store.db import Database
from novad.store.models import Flavor

_INSERT = f"INSERT INTO flavors({FLAVOR_COLUMNS}) VALUES ({', '.join('?' * len(FLAVOR_FIELDS))})"


def _require(conn: sqlite3.Connection, flavor_id: str) -> dict[str, str]:
    """The flavor's extra specs; raises FlavorNotFound."""
    row = conn.execute("SELECT extra_specs FROM flavors WHERE id = ?", (flavor_id,)).fetchone()
    if row is None:
        raise errors.FlavorNotFound(flavor_id)
    specs: dict[str, str] = json.loads(row[0])
    return specs


def _save_specs(conn: sqlite3.Connection, flavor_id: str, specs: Mapping[str, str]) -> None:
    conn.execute(
        "UPDATE flavors SET extra_specs = ? WHERE id = ?", (json.dumps(dict(specs)), flavor_id)
    )


class FlavorsMixin:
    """Flavors of :class:`novad.store.Store`."""

    _db: Database

    async def create_flavor(self, flavor: Flavor) -> Flavor:
        """Insert ``flavor``.  Raises Conflict on a duplicate id or name."""

        def run(conn: sqlite3.Connection) -> Flavor:
            if conn.execute("SELECT 1 FROM flavors WHERE id = ?", (flavor.id,)).fetchone():
                raise errors.Conflict(f"Flavor with ID {flavor.id} already exists.")
            if conn.execute("SELECT 1 FROM flavors WHERE name = ?", (flavor.name,)).fetchone():
                raise errors.Conflict(f"Flavor with name {flavor.name} already exists.")
            conn.execute(_INSERT, flavor_row(flavor))
            return flavor

        return await self._db.write(run)

    async def get_flavor(self, flavor_id: str) -> Flavor:
        """One flavor.  Raises FlavorNotFound."""
        rows = list(
            await self._db.fetch(
                f"SELECT {FLAVOR_COLUMNS} FROM flavors WHERE id = ?", (flavor_id,)
            )
        )
        if not rows:
            raise errors.FlavorNotFound(flavor_id)
        return decode_flavor(tuple(rows[0]))

    async def list_flavors(
        self,
        *,
        is_public: bool | None = None,
        project_id: str | None = None,
        limit: int | None = None,
        marker: str | None = None,
        min_ram: int | None = None,
        min_disk: int | None = None,
    ) -> list[Flavor]:
        """Flavors ordered by id, as Nova filters them.

        ``is_public=True``: public flavors plus the private ones
        ``project_id`` has access to; ``False``: private flavors only;
        ``None``: all.  ``min_ram``/``min_disk`` are lower bounds on
        memory_mb/root_gb.  ``marker`` is the id of the previous page's last
        flavor.  Raises Invalid for an unknown marker.
        """
        where: list[str] = []
        params: list[Any] = []
        if is_public is True and project_id is not None:
            where.append(
                "(is_public = 1 OR id IN"
                " (SELECT flavor_id FROM flavor_projects WHERE project_id = ?))"
            )
            params.append(project_id)
        elif is_public is not None:
            where.append("is_public = ?")
            params.append(is_public)
        for clause, value in (("memory_mb >= ?", min_ram), ("root_gb >= ?", min_disk)):
            if value is not None:
                where.append(clause)
                params.append(value)
        if marker is not None:
            await self._check_marker_flavor(marker)
            where.append("id > ?")
            params.append(marker)
        sql = f"SELECT {FLAVOR_COLUMNS} FROM flavors"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        rows = await self._db.fetch(sql, params)
        return [decode_flavor(tuple(r)) for r in rows]

    async def _check_marker_flavor(self, marker: str) -> None:
        # Nova answers an unknown marker with 400, not 404.
        try:
            await self.get_flavor(marker)
        except errors.FlavorNotFound as exc:
            raise errors.Invalid(f"Marker {marker} could not be found.") from exc

    async def delete_flavor(self, flavor_id: str) -> None:
        """Delete a flavor and its access list.  Raises FlavorNotFound."""

        def run(conn: sqlite3.Connection) -> None:
            if conn.execute("DELETE FROM flavors WHERE id = ?", (flavor_id,)).rowcount != 1:
                raise errors.FlavorNotFound(flavor_id)

        await self._db.write(run)

    async def set_flavor_description(self, flavor_id: str, description: str | None) -> Flavor:
        """Set or clear a flavor's description; returns the flavor.  Raises
        FlavorNotFound."""

        def run(conn: sqlite3.Connection) -> None:
            cur = conn.execute("UPDATE flavors SET description = ? WHERE id = ?",
                               (description, flavor_id))
            if cur.rowcount != 1:
                raise errors.FlavorNotFound(flavor_id)

        await self._db.write(run)
        return await self.get_flavor(flavor_id)

    async def count_flavors(self) -> int:
        """How many flavors exist."""
        rows = list(await self._db.fetch("SELECT COUNT(*) FROM flavors"))
        return int(rows[0][0])

    async def set_extra_specs(self, flavor_id: str, specs: Mapping[str, str]) -> dict[str, str]:
        """Add or overwrite extra specs; returns all of the flavor's specs.
        Raises FlavorNotFound."""

        def run(conn: sqlite3.Connection) -> dict[str, str]:
            merged = {**_require(conn, flavor_id), **specs}
            _save_specs(conn, flavor_id, merged)
            return merged

        return await self._db.write(run)

    async def delete_extra_spec(self, flavor_id: str, key: str) -> None:
        """Remove one extra spec.  Raises FlavorNotFound, or NotFound when
        the flavor has no such key."""

        def run(conn: sqlite3.Connection) -> None:
            specs = _require(conn, flavor_id)
            if specs.pop(key, None) is None:
                raise errors.NotFound(f"Flavor {flavor_id} has no extra specs with key {key}.")
            _save_specs(conn, flavor_id, specs)

        await self._db.write(run)

    async def add_flavor_access(self, flavor_id: str, project_id: str) -> None:
        """Give ``project_id`` access to a (private) flavor.  Raises
        FlavorNotFound, or Conflict when the access exists."""

        def run(conn: sqlite3.Connection) -> None:
            _require(conn, flavor_id)
            try:
                conn.execute(
                    "INSERT INTO flavor_projects(flavor_id, project_id) VALUES (?, ?)",
                    (flavor_id, project_id),
                )
            except sqlite3.IntegrityError as exc:
                raise errors.Conflict(
                    f"Flavor access already exists for flavor {flavor_id} and project"
                    f" {project_id} combination."
                ) from exc

        await self._db.write(run)

    async def remove_flavor_access(self, flavor_id: str, project_id: str) -> None:
        """Withdraw a project's access.  Raises FlavorNotFound, or NotFound
        when the project has no access."""

        def run(conn: sqlite3.Connection) -> None:
            _require(conn, flavor_id)
            cur = conn.execute(
                "DELETE FROM flavor_projects WHERE flavor_id = ? AND project_id = ?",
                (flavor_id, project_id),
            )
            if cur.rowcount != 1:
                raise errors.NotFound(
                    f"Flavor access not found for {flavor_id} / {project_id} combination."
                )

        await self._db.write(run)

    async def list_flavor_access(self, flavor_id: str) -> list[str]:
        """Projects with access to the flavor, sorted.  Raises FlavorNotFound."""

        def read(conn: sqlite3.Connection) -> list[str]:
            _require(conn, flavor_id)
            rows = conn.execute(
                "SELECT project_id FROM flavor_projects WHERE flavor_id = ? ORDER BY project_id",
                (flavor_id,),
            ).fetchall()
            return [str(r[0]) for r in rows]

        return await self._db.read(read)
