"""Key pairs (os-keypairs), keyed by (user_id, name)."""

from __future__ import annotations

import sqlite3
from typing import Any

from novad import errors
from novad.store.db import Database, utcnow
from novad.store.models import Keypair

_COLUMNS = "name, user_id, type, public_key, fingerprint, created_at"


class KeypairsMixin:
    """Key pairs of :class:`novad.store.Store`."""

    _db: Database

    async def create_keypair(
        self, user_id: str, name: str, public_key: str, fingerprint: str, type: str = "ssh"
    ) -> Keypair:
        """Register a key pair.  Raises Conflict when the user has one of
        that name."""

        def run(conn: sqlite3.Connection) -> Keypair:
            pair = Keypair(name, user_id, type, public_key, fingerprint, utcnow())
            try:
                conn.execute(
                    f"INSERT INTO keypairs({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
                    (pair.name, pair.user_id, pair.type, pair.public_key,
                     pair.fingerprint, pair.created_at),
                )
            except sqlite3.IntegrityError as exc:
                raise errors.Conflict(f"Key pair '{name}' already exists.") from exc
            return pair

        return await self._db.write(run)

    async def get_keypair(self, user_id: str, name: str) -> Keypair:
        """One key pair.  Raises NotFound."""
        rows = list(
            await self._db.fetch(
                f"SELECT {_COLUMNS} FROM keypairs WHERE user_id = ? AND name = ?",
                (user_id, name),
            )
        )
        if not rows:
            raise errors.NotFound(f"Keypair {name} not found for user {user_id}")
        return Keypair(*rows[0])

    async def list_keypairs(
        self, user_id: str, *, limit: int | None = None, marker: str | None = None
    ) -> list[Keypair]:
        """The user's key pairs ordered by name; ``marker`` is the previous
        page's last name (microversion 2.35).  Raises Invalid for an unknown
        marker."""
        sql = f"SELECT {_COLUMNS} FROM keypairs WHERE user_id = ?"
        params: list[Any] = [user_id]
        if marker is not None:
            try:
                await self.get_keypair(user_id, marker)
            except errors.NotFound as exc:
                raise errors.Invalid(f"Marker {marker} could not be found.") from exc
            sql += " AND name > ?"
            params.append(marker)
        sql += " ORDER BY name"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        rows = await self._db.fetch(sql, params)
        return [Keypair(*r) for r in rows]

    async def delete_keypair(self, user_id: str, name: str) -> None:
        """Delete a key pair.  Raises NotFound."""

        def run(conn: sqlite3.Connection) -> None:
            cur = conn.execute(
                "DELETE FROM keypairs WHERE user_id = ? AND name = ?", (user_id, name)
            )
            if cur.rowcount != 1:
                raise errors.NotFound(f"Keypair {name} not found for user {user_id}")

        await self._db.write(run)
