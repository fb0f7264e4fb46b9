"""Cluster-wide records: every node keeps the same identity, flavors, images,
key pairs, quotas and service states, durable in its own SQLite.

How a write becomes a replicated record
---------------------------------------
SQLite triggers on each replicated table copy every insert, update and
delete, *in the same transaction*, into ``repl_rows``: one row per record
(table + primary key) holding its latest value as JSON (NULL for a
deletion: a tombstone), its version and where that version came from.
Nothing in the services had to change, and a crash can never separate a
write from its record.  A version is a hybrid logical clock (milliseconds
since the epoch × 65,536 + a counter, kept in ``repl_clock``, advanced past
every version a node receives) with the writing node's id as tie-break:
the last writer wins, everywhere the same way.

Each node numbers its own writes (``seq``).  ``repl_have`` says, per
origin, the highest ``seq`` whose effect a node has: a peer asking with
its ``have`` vector gets every record it lacks, in one or more pages
(:meth:`Replicator.changes_since`).  Only the winning version of a record
is kept; that is enough, because whoever holds a newer version of a record
also holds (or will be sent) the winner through the winner's own origin.

Instance rows are replicated too, as the cluster's instance directory (who
owns which instance, its state for reads while the owner is unreachable):
other nodes keep them in ``cluster_instances``, never in ``instances``,
which only ever holds this node's own.

Applying remote records sets ``repl_mute`` for the transaction, so the
triggers do not record them as local writes.  A record whose parent has not
arrived yet (a role assignment before its user) waits in ``repl_pending``
and is retried on every apply.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from novad.store.db import Component, Database

log = structlog.get_logger("novad.cluster.replication")

REPLICATED_TABLES: tuple[str, ...] = (
    "projects", "users", "roles", "assignments", "revoked_tokens",
    "flavors", "flavor_projects", "keypairs", "project_quotas", "services",
    "images", "server_groups", "server_group_members", "instances", "migrations",
)
"""Tables whose rows every node holds (those that exist are replicated)."""

MIRRORED = {"instances": "cluster_instances"}
"""Remote rows of these tables land in the mirror table, not the table."""

_V1 = """
CREATE TABLE repl_clock (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    origin TEXT NOT NULL,             -- this node's id
    hlc    INTEGER NOT NULL,          -- highest version written or seen
    seq    INTEGER NOT NULL           -- this node's own write counter
);
CREATE TABLE repl_mute (id INTEGER PRIMARY KEY CHECK (id = 1));
CREATE TABLE repl_rows (
    tbl    TEXT NOT NULL,
    pk     TEXT NOT NULL,             -- JSON array of the primary key's values
    row    TEXT,                      -- JSON object; NULL: deleted (tombstone)
    hlc    INTEGER NOT NULL,
    origin TEXT NOT NULL,
    seq    INTEGER NOT NULL,
    PRIMARY KEY (tbl, pk)
);
CREATE INDEX repl_rows_origin ON repl_rows(origin, seq);
CREATE TABLE repl_have (origin TEXT PRIMARY KEY NOT NULL, seq INTEGER NOT NULL);
CREATE TABLE repl_pending (
    tbl TEXT NOT NULL, pk TEXT NOT NULL, row TEXT, hlc INTEGER NOT NULL,
    origin TEXT NOT NULL, seq INTEGER NOT NULL, why TEXT NOT NULL,
    PRIMARY KEY (tbl, pk)
);
"""

CLUSTER = Component("cluster", [(1, _V1)])
"""The replication bookkeeping tables; migrated with the other schemas."""

_NOW_HLC = "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) * 65536"


@dataclass(frozen=True)
class Record:
    """One version of one record, as it travels between nodes."""

    tbl: str
    pk: str
    row: dict[str, Any] | None
    hlc: int
    origin: str
    seq: int

    def to_json(self) -> dict[str, Any]:
        """The wire form."""
        return {"t": self.tbl, "k": self.pk, "r": self.row, "h": self.hlc, "o": self.origin,
                "s": self.seq}

    @classmethod
    def from_json(cls, data: Any) -> Record:
        """Parse the wire form; ValueError when it is not one."""
        if not isinstance(data, dict) or set(data) != {"t", "k", "r", "h", "o", "s"}:
            raise ValueError("record: expected keys t, k, r, h, o, s")
        tbl, pk, row, hlc, origin, seq = (data[k] for k in "tkrhos")
        if tbl not in REPLICATED_TABLES:
            raise ValueError(f"record: table {tbl!r} is not replicated")
        if not isinstance(pk, str) or not isinstance(origin, str) or len(origin) > 64:
            raise ValueError("record: bad key or origin")
        if row is not None and not isinstance(row, dict):
            raise ValueError("record: row must be an object or null")
        for number in (hlc, seq):
            if isinstance(number, bool) or not isinstance(number, int) or number < 0:
                raise ValueError("record: bad version")
        try:
            key = json.loads(pk)
        except ValueError:
            raise ValueError("record: key is not JSON") from None
        if not isinstance(key, list) or not key:
            raise ValueError("record: key must be a non-empty list")
        return cls(tbl, pk, row, hlc, origin, seq)


@dataclass(frozen=True)
class _Table:
    name: str
    columns: tuple[str, ...]
    key: tuple[str, ...]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _describe(conn: sqlite3.Connection, table: str) -> _Table | None:
    info = conn.execute(f"PRAGMA table_info({_quote(table)})").fetchall()
    if not info:
        return None
    columns = tuple(str(r[1]) for r in info)
    key = tuple(str(r[1]) for r in sorted((r for r in info if r[5]), key=lambda r: int(r[5])))
    return _Table(table, columns, key or ("rowid",))


def _trigger_sql(t: _Table) -> list[str]:
    q = _quote(t.name)

    def pk(ref: str) -> str:
        return "json_array(" + ", ".join(f"{ref}.{_quote(c)}" for c in t.key) + ")"

    row = "json_object(" + ", ".join(f"'{c}', NEW.{_quote(c)}" for c in t.columns) + ")"
    bump = (f"UPDATE repl_clock SET hlc = MAX(hlc + 1, {_NOW_HLC}), seq = seq + 1;"
            "UPDATE repl_have SET seq = (SELECT seq FROM repl_clock)"
            " WHERE origin = (SELECT origin FROM repl_clock);")

    def record(key: str, value: str) -> str:
        return (f"INSERT INTO repl_rows(tbl, pk, row, hlc, origin, seq)"
                f" SELECT '{t.name}', {key}, {value}, hlc, origin, seq FROM repl_clock WHERE true"
                " ON CONFLICT(tbl, pk) DO UPDATE SET row = excluded.row, hlc = excluded.hlc,"
                " origin = excluded.origin, seq = excluded.seq;")

    unmuted = "NOT EXISTS (SELECT 1 FROM repl_mute)"
    moved = " OR ".join(f"OLD.{_quote(c)} IS NOT NEW.{_quote(c)}" for c in t.key)
    return [
        f"CREATE TRIGGER repl_{t.name}_insert AFTER INSERT ON {q} WHEN {unmuted}"
        f" BEGIN {bump} {record(pk('NEW'), row)} END",
        f"CREATE TRIGGER repl_{t.name}_update AFTER UPDATE ON {q} WHEN {unmuted}"
        f" BEGIN {bump} {record(pk('NEW'), row)} END",
        f"CREATE TRIGGER repl_{t.name}_rekey AFTER UPDATE ON {q} WHEN {unmuted} AND ({moved})"
        f" BEGIN {bump} {record(pk('OLD'), 'NULL')} END",
        f"CREATE TRIGGER repl_{t.name}_delete AFTER DELETE ON {q} WHEN {unmuted}"
        f" BEGIN {bump} {record(pk('OLD'), 'NULL')} END",
    ]


def _install(conn: sqlite3.Connection, origin: str) -> list[_Table]:
    """Triggers, mirror tables and the records of rows written before them."""
    conn.execute("INSERT INTO repl_clock(id, origin, hlc, seq) VALUES (1, ?, 0, 0)"
                 " ON CONFLICT(id) DO UPDATE SET origin = excluded.origin", (origin,))
    conn.execute("INSERT OR IGNORE INTO repl_have(origin, seq) VALUES (?, 0)", (origin,))
    conn.execute("DELETE FROM repl_mute")
    tables = []
    for name in REPLICATED_TABLES:
        t = _describe(conn, name)
        if t is None:
            continue
        tables.append(t)
        for kind in ("insert", "update", "rekey", "delete"):
            conn.execute(f"DROP TRIGGER IF EXISTS repl_{name}_{kind}")
        for sql in _trigger_sql(t):
            conn.execute(sql)
        if name in MIRRORED:
            _mirror(conn, t, MIRRORED[name])
        _backfill(conn, t)
    return tables


def _mirror(conn: sqlite3.Connection, t: _Table, mirror: str) -> None:
    """``mirror`` with ``t``'s columns (added to as ``t`` gains columns)."""
    have = _describe(conn, mirror)
    if have is None:
        cols = ", ".join(_quote(c) for c in t.columns)
        keys = ", ".join(_quote(c) for c in t.key)
        conn.execute(f"CREATE TABLE {_quote(mirror)} ({cols}, PRIMARY KEY ({keys}))")
        if "host" in t.columns:
            conn.execute(f"CREATE INDEX {_quote(mirror + '_host')} ON {_quote(mirror)}(host)")
        return
    for column in t.columns:
        if column not in have.columns:
            conn.execute(f"ALTER TABLE {_quote(mirror)} ADD COLUMN {_quote(column)}")


def _backfill(conn: sqlite3.Connection, t: _Table) -> None:
    """Records for rows that predate the triggers (a node upgraded in place)."""
    keys = ", ".join(f"t.{_quote(c)}" for c in t.key)
    row = "json_object(" + ", ".join(f"'{c}', t.{_quote(c)}" for c in t.columns) + ")"
    missing = conn.execute(
        f"SELECT json_array({keys}), {row} FROM {_quote(t.name)} AS t"
        f" WHERE NOT EXISTS (SELECT 1 FROM repl_rows r WHERE r.tbl = ? AND r.pk = json_array({keys}))",
        (t.name,)).fetchall()
    for pk, value in missing:
        conn.execute(f"UPDATE repl_clock SET hlc = MAX(hlc + 1, {_NOW_HLC}), seq = seq + 1")
        conn.execute("INSERT INTO repl_rows(tbl, pk, row, hlc, origin, seq)"
                     " SELECT ?, ?, ?, hlc, origin, seq FROM repl_clock", (t.name, pk, value))
    if missing:
        conn.execute("UPDATE repl_have SET seq = (SELECT seq FROM repl_clock)"
                     " WHERE origin = (SELECT origin FROM repl_clock)")


class Replicator:
    """This node's side of replication: installs the capture, answers peers'
    ``have`` vectors with pages of records, and applies received records.

    Every method is a coroutine on the event loop; the SQL runs on the
    database's worker threads.  ``apply`` is idempotent: a record seen twice,
    or older than what is held, changes nothing.
    """

    def __init__(self, db: Database, origin: str, host: str) -> None:
        self.db = db
        self.origin = origin
        self.host = host
        self._tables: dict[str, _Table] = {}
        self.on_lost: Callable[[], None] | None = None
        """Called (not awaited) after an apply that found instances in :attr:`lost`."""
        self.lost: set[str] = set()
        """Instances held here whose record moved on to a higher generation
        elsewhere (filled by :meth:`apply`; emptied by whoever fences them)."""

    async def install(self) -> None:
        """Create the triggers (after every schema migration) and record the
        rows written before them."""
        tables = await self.db.write(lambda conn: _install(conn, self.origin))
        self._tables = {t.name: t for t in tables}

    async def have(self) -> dict[str, int]:
        """Per origin, the highest write number whose effect this node has."""
        rows = await self.db.fetch("SELECT origin, seq FROM repl_have")
        return {str(o): int(s) for o, s in rows}

    async def changes_since(self, have: Mapping[str, int], limit: int = 2000,
                            only: str | None = None
                            ) -> tuple[list[Record], dict[str, int], bool]:
        """Records a peer holding ``have`` lacks (of ``only``'s writes alone,
        when given): at most ``limit`` of them, each origin's in write order.
        Returns the records, the ``have`` the peer may record once it applied
        them, and whether that is all."""
        def read(conn: sqlite3.Connection) -> tuple[list[Record], dict[str, int], bool]:
            mine = {str(o): int(s) for o, s in conn.execute("SELECT origin, seq FROM repl_have")
                    if only is None or o == only}
            out: list[Record] = []
            reached = dict(have)
            for origin, top in sorted(mine.items()):
                since = int(have.get(origin, 0))
                if top <= since:
                    continue
                rows = conn.execute(
                    "SELECT tbl, pk, row, hlc, origin, seq FROM repl_rows"
                    " WHERE origin = ? AND seq > ? ORDER BY seq LIMIT ?",
                    (origin, since, limit - len(out) + 1)).fetchall()
                for r in rows:
                    if len(out) >= limit:
                        return out, reached, False
                    out.append(Record(str(r[0]), str(r[1]), None if r[2] is None
                                      else json.loads(r[2]), int(r[3]), str(r[4]), int(r[5])))
                    reached[origin] = int(r[5])
                reached[origin] = top
            return out, reached, True
        return await self.db.read(read)

    async def apply(self, records: Sequence[Record], reached: Mapping[str, int] | None = None
                    ) -> int:
        """Apply records (last writer wins) and, when given, raise this node's
        ``have`` to ``reached``.  Returns how many records changed something."""
        if not records and not reached:
            return 0
        changed = await self.db.write(lambda conn: self._apply(conn, records, reached or {}))
        if changed:
            log.debug("records applied", count=changed)
        if self.lost and self.on_lost is not None:
            self.on_lost()
        return changed

    def _apply(self, conn: sqlite3.Connection, records: Sequence[Record],
               reached: Mapping[str, int]) -> int:
        conn.execute("INSERT OR IGNORE INTO repl_mute(id) VALUES (1)")
        try:
            pending = [Record(str(r[0]), str(r[1]), None if r[2] is None else json.loads(r[2]),
                              int(r[3]), str(r[4]), int(r[5]))
                       for r in conn.execute("SELECT tbl, pk, row, hlc, origin, seq"
                                             " FROM repl_pending")]
            changed = 0
            for rec in sorted([*pending, *records], key=lambda r: (r.hlc, r.origin)):
                changed += self._apply_one(conn, rec)
            top = max((r.hlc for r in records), default=0)
            conn.execute("UPDATE repl_clock SET hlc = MAX(hlc, ?)", (top,))
            for origin, seq in reached.items():
                if origin == self.origin:
                    continue
                conn.execute("INSERT INTO repl_have(origin, seq) VALUES (?, ?) ON CONFLICT(origin)"
                             " DO UPDATE SET seq = MAX(seq, excluded.seq)", (origin, int(seq)))
            return changed
        finally:
            conn.execute("DELETE FROM repl_mute")

    def _apply_one(self, conn: sqlite3.Connection, rec: Record) -> int:
        if rec.origin == self.origin:
            return 0  # our own writes: nobody holds a newer version of them than we do
        held = conn.execute(
            "SELECT hlc, origin, COALESCE(json_extract(row, '$.generation'), 0) FROM repl_rows"
            " WHERE tbl = ? AND pk = ?", (rec.tbl, rec.pk)).fetchone()
        if held is not None and _precedence(int(held[2]), int(held[0]), str(held[1])) \
                >= _precedence(_generation(rec), rec.hlc, rec.origin):
            conn.execute("DELETE FROM repl_pending WHERE tbl = ? AND pk = ? AND hlc <= ?",
                         (rec.tbl, rec.pk, int(held[0])))
            return 0
        table = self._tables.get(rec.tbl)
        conn.execute("SAVEPOINT repl_one")
        try:
            if table is not None:
                self._write_live(conn, table, rec)
            conn.execute(
                "INSERT INTO repl_rows(tbl, pk, row, hlc, origin, seq) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(tbl, pk) DO UPDATE SET row = excluded.row, hlc = excluded.hlc,"
                " origin = excluded.origin, seq = excluded.seq",
                (rec.tbl, rec.pk, None if rec.row is None else json.dumps(rec.row), rec.hlc,
                 rec.origin, rec.seq))
            conn.execute("DELETE FROM repl_pending WHERE tbl = ? AND pk = ?", (rec.tbl, rec.pk))
        except sqlite3.IntegrityError as exc:
            conn.execute("ROLLBACK TO repl_one")
            conn.execute(
                "INSERT INTO repl_pending(tbl, pk, row, hlc, origin, seq, why)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(tbl, pk) DO UPDATE SET"
                " row = excluded.row, hlc = excluded.hlc, origin = excluded.origin,"
                " seq = excluded.seq, why = excluded.why WHERE excluded.hlc >= repl_pending.hlc",
                (rec.tbl, rec.pk, None if rec.row is None else json.dumps(rec.row), rec.hlc,
                 rec.origin, rec.seq, str(exc)))
            log.info("record waits for another", table=rec.tbl, key=rec.pk, why=str(exc))
            return 0
        finally:
            conn.execute("RELEASE repl_one")
        return 1

    def _write_live(self, conn: sqlite3.Connection, t: _Table, rec: Record) -> None:
        name = MIRRORED.get(t.name, t.name)
        key = json.loads(rec.pk)
        if len(key) != len(t.key):
            raise sqlite3.IntegrityError(f"{t.name}: key {rec.pk} does not fit {t.key}")
        where = " AND ".join(f"{_quote(c)} IS ?" for c in t.key)
        if rec.row is None:
            conn.execute(f"DELETE FROM {_quote(name)} WHERE {where}", key)
            return
        if name != t.name:
            local = conn.execute(f"SELECT generation FROM {_quote(t.name)} WHERE {where}",
                                 key).fetchone()
            if local is not None and int(local[0]) >= _generation(rec):
                return  # an instance of ours that another node wrote about: ours wins
            if local is None and rec.row.get("host") == self.host:
                return  # a record naming this node for a copy it does not hold
            if local is not None:
                self.lost.add(str(key[0]))  # moved on elsewhere: our copy is stale
        cols = [c for c in t.columns if c in rec.row]
        values = [rec.row[c] for c in cols]
        placeholders = ", ".join("?" for _ in cols)
        updates = ", ".join(f"{_quote(c)} = excluded.{_quote(c)}" for c in cols if c not in t.key)
        keys = ", ".join(_quote(c) for c in t.key)
        conflict = f"DO UPDATE SET {updates}" if updates else "DO NOTHING"
        conn.execute(f"INSERT INTO {_quote(name)} ({', '.join(_quote(c) for c in cols)})"
                     f" VALUES ({placeholders}) ON CONFLICT({keys}) {conflict}", values)


class Handover:
    """An instance's row changing node: the source exports it, the
    destination adopts it (a local write, so it replicates with a higher
    generation and wins everywhere), and the source releases its copy
    without a tombstone (a muted delete: the destination's record is the
    instance's record from now on)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def export(self, uuid: str) -> dict[str, Any] | None:
        """The instance's row (every column) and its actions with their
        events, or None when this node does not hold it."""
        def read(conn: sqlite3.Connection) -> dict[str, Any] | None:
            conn.row_factory = sqlite3.Row
            try:
                row = conn.execute("SELECT * FROM instances WHERE uuid = ?", (uuid,)).fetchone()
                if row is None:
                    return None
                actions = []
                for action in conn.execute(
                        "SELECT * FROM instance_actions WHERE instance_uuid = ? ORDER BY id",
                        (uuid,)).fetchall():
                    events = [{k: e[k] for k in e.keys() if k not in ("id", "action_id")}
                              for e in conn.execute("SELECT * FROM instance_actions_events"
                                                    " WHERE action_id = ? ORDER BY id",
                                                    (action["id"],))]
                    actions.append({**{k: action[k] for k in action.keys() if k != "id"},
                                    "events": events})
                migrations = [dict(m) for m in conn.execute(
                    "SELECT * FROM migrations WHERE instance_uuid = ?", (uuid,))]
                return {"row": dict(row), "actions": actions, "migrations": migrations}
            finally:
                conn.row_factory = None
        return await self.db.read(read)

    async def export_replica(self, uuid: str) -> dict[str, Any] | None:
        """Another node's instance as the cluster directory holds it, in
        :meth:`export`'s shape (no actions: they stayed on that node)."""
        def read(conn: sqlite3.Connection) -> dict[str, Any] | None:
            conn.row_factory = sqlite3.Row
            try:
                row = conn.execute("SELECT * FROM cluster_instances WHERE uuid = ?",
                                   (uuid,)).fetchone()
                return None if row is None else {"row": dict(row), "actions": []}
            finally:
                conn.row_factory = None
        return await self.db.read(read)

    async def adopt(self, exported: dict[str, Any], changes: dict[str, Any],
                    migration_id: int | None = None, source: str = "") -> bool:
        """Make the exported instance this node's, with ``changes`` (host,
        generation, states) applied; its actions come along.  With
        ``migration_id``, only if that move is not aborted here, and
        settled as adopted in the same transaction (False: it was aborted)."""
        def run(conn: sqlite3.Connection) -> bool:
            if migration_id is not None:
                state = conn.execute("SELECT state FROM move_preps WHERE migration_id = ?",
                                     (migration_id,)).fetchone()
                if state is not None and state[0] == "aborted":
                    return False
                conn.execute(
                    "INSERT INTO move_preps(migration_id, instance_uuid, source, flavor, state,"
                    " created_at) VALUES (?, ?, ?, '{}', 'adopted', strftime('%Y-%m-%dT%H:%M:%f', 'now'))"
                    " ON CONFLICT(migration_id) DO UPDATE SET state = 'adopted'",
                    (migration_id, exported["row"]["uuid"], source))
            table = _describe(conn, "instances")
            assert table is not None
            row = {**exported["row"], **changes}
            cols = [c for c in table.columns if c in row]
            conn.execute(f"INSERT OR REPLACE INTO instances ({', '.join(map(_quote, cols))})"
                         f" VALUES ({', '.join('?' for _ in cols)})", [row[c] for c in cols])
            conn.execute("DELETE FROM cluster_instances WHERE uuid = ?", (row["uuid"],))
            for migration in exported.get("migrations", []):  # ahead of their replication
                keys = list(migration)
                conn.execute(
                    f"INSERT OR REPLACE INTO migrations ({', '.join(map(_quote, keys))})"
                    f" VALUES ({', '.join('?' for _ in keys)})", list(migration.values()))
            for action in exported.get("actions", []):
                fields = {k: v for k, v in action.items() if k != "events"}
                cur = conn.execute(
                    f"INSERT OR IGNORE INTO instance_actions ({', '.join(map(_quote, fields))})"
                    f" VALUES ({', '.join('?' for _ in fields)})", list(fields.values()))
                if not cur.rowcount:
                    continue
                for event in action["events"]:
                    event = {**event, "action_id": cur.lastrowid}
                    conn.execute(
                        f"INSERT INTO instance_actions_events ({', '.join(map(_quote, event))})"
                        f" VALUES ({', '.join('?' for _ in event)})", list(event.values()))
            return True
        return bool(await self.db.write(run))

    async def release(self, uuid: str, successor: dict[str, Any] | None = None) -> None:
        """Drop this node's copy of the row (no tombstone); ``successor``,
        the new owner's row when known, goes into the cluster directory."""
        def run(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT OR IGNORE INTO repl_mute(id) VALUES (1)")
            try:
                conn.execute("DELETE FROM instances WHERE uuid = ?", (uuid,))
                if successor is not None:
                    cols = list(successor)
                    conn.execute(
                        f"INSERT OR REPLACE INTO cluster_instances ({', '.join(map(_quote, cols))})"
                        f" VALUES ({', '.join('?' for _ in cols)})", list(successor.values()))
            finally:
                conn.execute("DELETE FROM repl_mute")
        await self.db.write(run)


def _generation(rec: Record) -> int:
    """An instance record's generation (0 for a tombstone or another table)."""
    if rec.tbl != "instances" or rec.row is None:
        return 0
    value = rec.row.get("generation", 1)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _precedence(generation: int, hlc: int, origin: str) -> tuple[int, int, str]:
    """Which of two versions of a record wins: an instance's higher
    generation first (a stale node's later writes about an instance that
    moved on never win), then the last writer."""
    return generation, hlc, origin


def parse_records(items: Iterable[Any]) -> list[Record]:
    """Records from their wire form; ValueError for the first bad one."""
    return [Record.from_json(item) for item in items]
