"""The one SQLite database of a novad node: connection, pragmas, schema
migrations per component, and the two ways to write.

All writes share ONE aiosqlite connection (one worker thread).  Two ways
to write, both serialised by one :class:`asyncio.Lock` so transactions never
interleave on the shared connection:

* :meth:`Database.transaction` -- ``BEGIN IMMEDIATE`` ... ``COMMIT`` around
  any number of awaited statements.  For modules whose writes are rare
  (identity, images).
* :meth:`Database.write` -- a synchronous function run on the worker thread
  inside a write transaction, with *group commit*: writes submitted while
  another batch is committing are run together in the next transaction, each
  in its own savepoint.  One fsync then makes many writes durable, which is
  what lets the compute store sustain thousands of durable state changes per
  second.  A job that raises rolls back only its own savepoint.

Reads come in two kinds.  The compute store's reads (:meth:`Database.fetch`,
:meth:`Database.read`) go to a second, read-only connection with its own
worker thread: in WAL mode it sees every committed write and never waits
behind a batch's fsync on the writer's thread, so an API GET or an action's
guard check does not queue behind other instances' commits.  Reads that
belong to a :meth:`transaction` (identity, images: read-modify-write) use
``conn`` (:meth:`Database.call` or the aiosqlite ``execute_fetchall``) and
can see that transaction's uncommitted rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
import urllib.parse
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple, TypeVar, cast

import aiosqlite

__all__ = ["Component", "Database", "SchemaMigration", "utcnow"]

T = TypeVar("T")

_SYNCHRONOUS = frozenset({"FULL", "NORMAL"})
_COMPONENT_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


def utcnow() -> str:
    """Now, as novad stores every timestamp: ISO-8601 UTC with microseconds
    and no offset (``2026-11-21T10:00:00.123456``).  Such strings sort in
    time order, so SQL compares them as text."""
    return datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="microseconds")


class SchemaMigration(NamedTuple):
    """One step of a component's schema: ``version`` and the SQL script that
    brings the previous version to it.  A plain ``(version, sql)`` tuple is
    accepted wherever this is.  The script must not contain BEGIN/COMMIT:
    :meth:`Database.migrate` wraps it in the transaction that also records
    the new version."""

    version: int
    sql: str


@dataclass(frozen=True)
class Component:
    """A module that owns tables, and the ordered migrations that build them.

    ``migrations`` are ``(version, sql)`` pairs with strictly increasing
    versions starting above 0.
    """

    name: str
    migrations: Sequence[tuple[int, str]] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        # The name is embedded in SQL text (executescript takes no
        # parameters), so only identifier-like names are allowed.
        if not _COMPONENT_NAME.match(self.name):
            raise ValueError(f"bad component name {self.name!r}")
        versions = [v for v, _ in self.migrations]
        if any(v <= 0 for v in versions) or versions != sorted(set(versions)):
            raise ValueError(f"{self.name}: versions must be positive and increasing")

    @property
    def latest(self) -> int:
        """The version the component's code expects (0 if no migrations)."""
        return self.migrations[-1][0] if self.migrations else 0


_LEAD = object()
"""Resolves a follower's waiter to make it the next leader."""


@dataclass
class _Job:
    """One :meth:`Database.write` call waiting for, or in, a batch."""

    fn: Callable[[sqlite3.Connection], Any]
    future: asyncio.Future[Any]


def _settle(batch: Sequence[_Job], outcomes: Sequence[tuple[bool, Any]]) -> None:
    """Deliver a batch's outcomes (on the event loop thread)."""
    for job, (ok, value) in zip(batch, outcomes, strict=True):
        if job.future.done():  # the caller was cancelled
            continue
        if ok:
            job.future.set_result(value)
        else:
            job.future.set_exception(value)


def _run_batch(
    conn: sqlite3.Connection, loop: asyncio.AbstractEventLoop, batch: Sequence[_Job]
) -> None:
    """Run ``batch`` in one transaction on the worker thread, then hand the
    outcomes to the loop.  Savepoints isolate the jobs from each other; a
    batch of one skips them (a failing lone job rolls back the whole
    transaction instead, which is the same thing and two statements
    cheaper)."""
    outcomes: list[tuple[bool, Any]] = []
    alone = len(batch) == 1
    try:
        conn.execute("BEGIN IMMEDIATE")
        for job in batch:
            if not alone:
                conn.execute("SAVEPOINT job")
            try:
                outcomes.append((True, job.fn(conn)))
            except Exception as exc:  # noqa: BLE001 - delivered to the caller
                outcomes.append((False, exc))
                conn.execute("ROLLBACK" if alone else "ROLLBACK TO job")
            if not alone:
                conn.execute("RELEASE job")
        if conn.in_transaction:
            conn.execute("COMMIT")
    except Exception as exc:  # BEGIN/COMMIT failed: nothing of the batch stands
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        outcomes = [(False, exc)] * len(batch)
    loop.call_soon_threadsafe(_settle, batch, outcomes)


async def _open_reader(path: Path) -> aiosqlite.Connection:
    """A second, read-only connection with its own worker thread.  In WAL
    mode it reads the last committed state while the writer commits, so
    reads (every API GET, every action's guard check) do not queue behind
    a batch's fsync on the writer's thread."""
    uri = f"file:{urllib.parse.quote(str(path.absolute()))}?mode=ro"  # '?', '#', '%' escaped
    reader = await aiosqlite.connect(uri, uri=True,
                                     isolation_level=None, cached_statements=512)
    try:
        await reader.execute("PRAGMA busy_timeout=5000")
        await reader.create_function("regexp", 2, _regexp, deterministic=True)
    except BaseException:
        await reader.close()
        raise
    return reader


def _regexp(pattern: str, value: object) -> bool:
    """SQLite's ``value REGEXP pattern``: Python's ``re.search`` (``re``
    caches compiled patterns)."""
    return value is not None and re.search(pattern, str(value)) is not None


class Database:
    """The node's SQLite database (WAL) on one aiosqlite connection.

    Open with :meth:`open`, bring schemas up to date with :meth:`migrate`,
    close with :meth:`close`.  ``conn`` is the aiosqlite connection, in
    autocommit mode: write only inside :meth:`transaction` or :meth:`write`.
    Never call :meth:`write` or :meth:`transaction` while holding
    :meth:`transaction` (the lock is not re-entrant).
    """

    def __init__(self, conn: aiosqlite.Connection, path: Path,
                 reader: aiosqlite.Connection | None = None) -> None:
        self.conn = conn
        self.path = path
        self.reader = reader or conn
        self._lock = asyncio.Lock()
        self._queue: list[_Job] = []
        self._leading = False  # a caller is committing batches (or about to)

    @classmethod
    async def open(cls, path: Path, synchronous: str = "FULL") -> Database:
        """Open (creating if needed) the database at ``path``.

        ``synchronous`` is FULL (every commit fsynced; the default) or NORMAL
        (WAL commits survive a process crash, not a power loss).  OFF is
        refused: novad's crash recovery relies on committed state.
        """
        mode = synchronous.upper()
        if mode not in _SYNCHRONOUS:
            raise ValueError(f"synchronous must be FULL or NORMAL, not {synchronous!r}")
        # isolation_level=None: the sqlite3 module must not open transactions
        # behind our back; every transaction here is explicit.
        conn = await aiosqlite.connect(path, isolation_level=None, cached_statements=512)
        try:
            journal = list(await conn.execute_fetchall("PRAGMA journal_mode=WAL"))
            if str(journal[0][0]).lower() != "wal":  # e.g. a filesystem without shm
                raise RuntimeError(f"{path}: SQLite refused WAL mode ({journal[0][0]})")
            for pragma in (
                f"synchronous={mode}",
                "foreign_keys=ON",
                "busy_timeout=5000",
            ):
                await conn.execute(f"PRAGMA {pragma}")
            await conn.create_function("regexp", 2, _regexp, deterministic=True)
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_versions("
                " component TEXT PRIMARY KEY NOT NULL, version INTEGER NOT NULL)"
            )
            reader = await _open_reader(path)
        except BaseException:
            await conn.close()
            raise
        return cls(conn, path, reader)

    async def close(self) -> None:
        """Close the connections after queued work completes.  Idempotent."""
        if self.reader is not self.conn:
            await self.reader.close()
        await self.conn.close()

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """The rows of one read-only statement, on the reader connection:
        it sees every committed write and never waits behind a commit."""
        return list(await self.reader.execute_fetchall(sql, params))

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` (which must not write) on the reader's worker thread,
        inside one read transaction, so its statements see one state."""
        def in_snapshot(conn: sqlite3.Connection) -> T:
            conn.execute("BEGIN")
            try:
                return fn(conn)
            finally:
                conn.execute("COMMIT")

        reader = self.reader
        return cast(T, await reader._execute(in_snapshot, reader._conn))  # type: ignore[no-untyped-call]

    async def pragma(self, name: str) -> Any:
        """The current value of ``PRAGMA name`` (for checks and tests)."""
        rows = list(await self.conn.execute_fetchall(f"PRAGMA {name}"))
        return rows[0][0] if rows else None

    async def versions(self) -> dict[str, int]:
        """The applied schema version of every component."""
        rows = await self.conn.execute_fetchall("SELECT component, version FROM schema_versions")
        return {str(name): int(version) for name, version in rows}

    async def migrate(self, components: Iterable[Component]) -> None:
        """Apply every missing migration of ``components``, in order.

        Each version runs in its own transaction together with its version
        bump, so a failure (or a crash) mid-migration leaves the component at
        the previous version with none of the failed step's effects.
        Idempotent.  Raises RuntimeError when the database is newer than the
        code, and re-raises the SQL error of a failing step.
        """
        current = await self.versions()
        for comp in components:
            have = current.get(comp.name, 0)
            if have > comp.latest:
                raise RuntimeError(
                    f"database has {comp.name} schema v{have}, code knows v{comp.latest}"
                )
            for version, sql in comp.migrations:
                if version > have:
                    await self._apply(comp.name, version, sql)

    async def _apply(self, name: str, version: int, sql: str) -> None:
        # executescript takes no parameters; name is validated by Component
        # and version is an int, so the literal is safe.
        script = (
            f"BEGIN IMMEDIATE;\n{sql}\n;\n"
            f"INSERT INTO schema_versions(component, version) VALUES ('{name}', {int(version)})"
            " ON CONFLICT(component) DO UPDATE SET version = excluded.version;\n"
            "COMMIT;"
        )
        async with self._lock:
            # Re-read under the lock: a concurrent migrate() may have won.
            rows = list(
                await self.conn.execute_fetchall(
                    "SELECT version FROM schema_versions WHERE component = ?", (name,)
                )
            )
            if rows and int(rows[0][0]) >= version:
                return
            try:
                await self.conn.executescript(script)
            except BaseException:
                if self.conn.in_transaction:
                    await self.conn.execute("ROLLBACK")
                raise

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on any exception,
        cancellation included), holding the write lock throughout.  Yields
        the aiosqlite connection."""
        async with self._lock:
            await self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
                await self.conn.execute("COMMIT")
            except BaseException:
                if self.conn.in_transaction:
                    await self.conn.execute("ROLLBACK")
                raise

    async def call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` on the connection's worker thread, outside any write
        transaction of our own (for multi-statement reads that should see
        one state of the database).  ``fn`` must not write."""
        # aiosqlite has no public "run this callable on the worker thread";
        # _execute is that primitive (present since aiosqlite's first
        # releases).  One thread hop instead of one per statement.
        conn = self.conn
        return cast(T, await conn._execute(fn, conn._conn))  # type: ignore[no-untyped-call]

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in a durable write transaction and return its result.

        ``fn`` runs on the worker thread and must be synchronous and quick.
        Concurrent calls are group-committed (see the module docstring); an
        exception raised by ``fn`` undoes exactly ``fn``'s statements and is
        re-raised here.  A caller cancelled before its job entered a batch
        writes nothing; one cancelled later still commits.
        """
        job = _Job(fn, asyncio.get_running_loop().create_future())
        self._queue.append(job)
        if self._leading:
            waiter = job.future
            try:
                result = await waiter
            except asyncio.CancelledError:
                self._abandon(job, promoted=_was_promoted(waiter))
                raise
            if result is not _LEAD:
                return cast(T, result)
        self._leading = True
        await self._lead(job)
        return cast(T, await job.future)

    async def _lead(self, job: _Job) -> None:
        """Commit queued jobs, one batch per transaction, until ``job`` is
        done; then pass the lead on so no caller serves others forever."""
        loop = asyncio.get_running_loop()
        try:
            async with self._lock:
                while not job.future.done() and self._queue:
                    # A done future here is a caller cancelled while queued:
                    # its job must not run.
                    batch = [j for j in self._queue if not j.future.done()]
                    self._queue = []
                    if batch:
                        await self._commit(loop, batch)
        finally:
            if not job.future.done():
                # Cancelled before our job was batched: it must not run, and
                # must not be handed the lead we are giving up.
                with contextlib.suppress(ValueError):
                    self._queue.remove(job)
            self._hand_off()

    def _hand_off(self) -> None:
        """Make the oldest queued job's caller the next leader, or end the
        lead when nothing is queued.  Jobs that arrived while a batch was
        committing form the next batch: that is the group commit."""
        while self._queue:
            nxt = self._queue[0]
            if nxt.future.done():  # its caller was cancelled while queued
                self._queue.pop(0)
                continue
            waiter, nxt.future = nxt.future, asyncio.get_running_loop().create_future()
            waiter.set_result(_LEAD)
            return
        self._leading = False

    def _abandon(self, job: _Job, *, promoted: bool) -> None:
        """A waiting caller was cancelled: drop its job if not yet batched,
        and pass on the lead if it had just been handed it."""
        with contextlib.suppress(ValueError):
            self._queue.remove(job)
        if promoted:
            self._hand_off()

    async def _commit(self, loop: asyncio.AbstractEventLoop, batch: list[_Job]) -> None:
        conn = self.conn
        try:
            await conn._execute(  # type: ignore[no-untyped-call]
                partial(_run_batch, conn._conn, loop, batch)
            )
        except Exception as exc:  # e.g. connection closed: the batch never ran
            for job in batch:
                if not job.future.done():
                    job.future.set_exception(exc)


def _was_promoted(waiter: asyncio.Future[Any]) -> bool:
    """Whether a cancelled follower's waiter had already made it leader."""
    return waiter.done() and not waiter.cancelled() and waiter.exception() is None and (
        waiter.result() is _LEAD
    )
