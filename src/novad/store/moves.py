"""What moving instances between nodes adds to the store.

These are version 6 of the compute component (:data:`MOVES_SQL`).

* ``instances.generation``: raised each time an instance changes node.  A
  node that holds a copy of a lower generation than the cluster's record
  holds a stale copy (an evacuated node coming back, seed 000 §5 step 4).
* ``migrations`` becomes a cluster-wide record: replicated to every node, so
  its id must be unique across nodes (milliseconds since the epoch × 256 +
  a random byte, which keeps ids in creation order), it gains Nova's
  ``uuid`` (2.59), and it loses its foreign key (a node holds the records
  of instances it does not own).
* ``move_preps``: a destination's side of a move in flight.  A prepared
  move holds its claim (its flavor counts as used here) until the source
  hands the instance over (``adopted``) or the move is called off
  (``aborted``).  Once aborted, a hand-over for that migration is refused,
  and once adopted, an abort is: the source always gets a definite answer,
  so no instance can end up running on both nodes.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
import sqlite3
from dataclasses import dataclass
from typing import Any

from novad.store.db import Database, utcnow
from novad.store.models import Flavor

MOVES_SQL = """
ALTER TABLE instances ADD COLUMN generation INTEGER NOT NULL DEFAULT 1;

CREATE TABLE migrations_v2 (
    id             INTEGER PRIMARY KEY NOT NULL,  -- unique cluster-wide, in creation order
    instance_uuid  TEXT NOT NULL,
    migration_type TEXT NOT NULL,
    status         TEXT NOT NULL,
    source_compute TEXT NOT NULL,
    dest_compute   TEXT,
    old_flavor_id  TEXT,
    new_flavor_id  TEXT,
    created_at     TEXT NOT NULL,
    updated_at     TEXT,
    uuid           TEXT NOT NULL UNIQUE
);
INSERT INTO migrations_v2
    SELECT CAST((julianday(created_at) - 2440587.5) * 86400000 AS INTEGER) * 256 + (id % 256),
           instance_uuid, migration_type, status, source_compute, dest_compute,
           old_flavor_id, new_flavor_id, created_at, updated_at,
           substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-4' || substr(h, 14, 3) || '-a'
           || substr(h, 18, 3) || '-' || substr(h, 21, 12)
    FROM (SELECT *, lower(hex(randomblob(16))) AS h FROM migrations);
DROP TABLE migrations;
ALTER TABLE migrations_v2 RENAME TO migrations;
CREATE INDEX migrations_instance ON migrations(instance_uuid, id);
CREATE INDEX migrations_status ON migrations(status, updated_at);

CREATE TABLE move_preps (
    migration_id  INTEGER PRIMARY KEY NOT NULL,
    instance_uuid TEXT NOT NULL,
    source        TEXT NOT NULL,
    flavor        TEXT NOT NULL,                 -- JSON: the flavor it will have here
    state         TEXT NOT NULL,                 -- prepared | adopted | aborted
    created_at    TEXT NOT NULL
);
CREATE INDEX move_preps_instance ON move_preps(instance_uuid);
"""


PREPARED, ADOPTED, ABORTED = "prepared", "adopted", "aborted"


@dataclass(frozen=True)
class MovePrep:
    """A destination's record of one incoming move."""

    migration_id: int
    instance_uuid: str
    source: str
    flavor: Flavor | None  # None: aborted before it was ever prepared
    state: str
    created_at: str


def _prep(row: Any) -> MovePrep:
    flavor = json.loads(row[3])
    return MovePrep(int(row[0]), str(row[1]), str(row[2]),
                    Flavor.from_dict(flavor) if flavor else None, str(row[4]), str(row[5]))


class MovesMixin:
    """Incoming moves of :class:`novad.store.Store`."""

    _db: Database

    async def prepare_move(self, migration_id: int, instance_uuid: str, source: str,
                           flavor: Flavor) -> MovePrep:
        """Record a prepared move (idempotent: a repeat returns the record
        as it is, which may be adopted or aborted by now)."""
        def run(conn: sqlite3.Connection) -> MovePrep:
            conn.execute(
                "INSERT INTO move_preps(migration_id, instance_uuid, source, flavor, state,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(migration_id) DO NOTHING",
                (migration_id, instance_uuid, source, json.dumps(flavor.to_dict()), PREPARED,
                 utcnow()))
            return _prep(conn.execute("SELECT * FROM move_preps WHERE migration_id = ?",
                                      (migration_id,)).fetchone())
        return await self._db.write(run)

    async def get_move(self, migration_id: int) -> MovePrep | None:
        """The incoming move of ``migration_id``, if this node prepared it."""
        rows = list(await self._db.fetch("SELECT * FROM move_preps WHERE migration_id = ?",
                                         (migration_id,)))
        return _prep(rows[0]) if rows else None

    async def settle_move(self, migration_id: int, state: str, instance_uuid: str = "",
                          source: str = "") -> str:
        """Move a prepared move to ``state`` (adopted or aborted); returns
        the state it has afterwards, which is the other one when that was
        settled first (the caller tells its peer so).  Aborting a move never
        prepared records it aborted, so a late prepare cannot revive it."""
        def run(conn: sqlite3.Connection) -> str:
            conn.execute("UPDATE move_preps SET state = ? WHERE migration_id = ? AND state = ?",
                         (state, migration_id, PREPARED))
            if state == ABORTED:
                conn.execute(
                    "INSERT INTO move_preps(migration_id, instance_uuid, source, flavor, state,"
                    " created_at) VALUES (?, ?, ?, '{}', ?, ?) ON CONFLICT DO NOTHING",
                    (migration_id, instance_uuid, source, ABORTED, utcnow()))
            row = conn.execute("SELECT state FROM move_preps WHERE migration_id = ?",
                               (migration_id,)).fetchone()
            return ABORTED if row is None else str(row[0])
        return await self._db.write(run)

    async def list_moves(self, state: str) -> list[MovePrep]:
        """Incoming moves in ``state``, oldest first."""
        rows = await self._db.fetch(
            "SELECT * FROM move_preps WHERE state = ? ORDER BY created_at", (state,))
        return [_prep(r) for r in rows]

    async def purge_moves(self, older_than_days: int) -> None:
        """Forget settled moves older than ``older_than_days`` (a late message
        about one that old is refused by the channel's clock check anyway)."""
        await self._db.write(lambda conn: conn.execute(
            "DELETE FROM move_preps WHERE state != ? AND created_at < ?",
            (PREPARED, (datetime.now(UTC) - timedelta(days=older_than_days))
             .replace(tzinfo=None).isoformat(timespec="microseconds"))))
