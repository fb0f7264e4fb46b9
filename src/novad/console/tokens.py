"""Console auth tokens, stored as Nova stores them: only a SHA-256 hash.

A token is a random UUID4 string handed out once, inside the console URL.
The table keeps its hash with what the token grants: one instance's console
at one host and port, until ``expires`` (unix seconds).  Validation looks
the hash up and requires ``expires > now``; an expired row behaves as if it
were absent.  Tokens are not single-use (Nova's rule): a page reload may
reconnect until the token expires.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
import uuid as uuidlib
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

from novad.store.db import Component, Database, utcnow

_V1 = """
CREATE TABLE console_auth_tokens (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash           TEXT NOT NULL UNIQUE,      -- sha256 hex of the token
    console_type         TEXT NOT NULL,             -- novnc
    host                 TEXT NOT NULL,             -- the VNC server's address
    port                 INTEGER NOT NULL,
    internal_access_path TEXT,
    instance_uuid        TEXT NOT NULL,
    access_url_base      TEXT NOT NULL,
    user_id              TEXT NOT NULL,             -- who asked for the URL
    project_id           TEXT NOT NULL,
    expires              REAL NOT NULL,             -- unix seconds
    created_at           TEXT NOT NULL
);
CREATE INDEX console_auth_tokens_instance ON console_auth_tokens(instance_uuid);
CREATE INDEX console_auth_tokens_expires ON console_auth_tokens(expires);
"""

CONSOLE = Component("console", [(1, _V1)])
"""The console component's schema, for :meth:`Database.migrate`."""

_COLUMNS = ("instance_uuid, host, port, console_type, access_url_base, internal_access_path,"
            " user_id, project_id, expires, created_at")


def token_hash(token: str) -> str:
    """The stored form of a token: its SHA-256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class ConsoleGrant:
    """What a valid token grants (the stored row, without the token)."""

    instance_uuid: str
    host: str
    port: int
    console_type: str
    access_url_base: str
    internal_access_path: str | None
    user_id: str
    project_id: str
    expires: float
    created_at: str


@dataclass(frozen=True)
class IssuedToken:
    """A freshly authorized token: the only place the clear token exists."""

    token: str
    grant: ConsoleGrant

    @property
    def access_url(self) -> str:
        """The URL handed to the user, built exactly as Nova builds it.

        noVNC >= 1.1 ignores the URL's own query for the websocket and reads
        the ``path`` parameter instead, so the token goes inside it:
        ``<base>?path=%3Ftoken%3D<token>``.  Other console types get
        ``<base>?token=<token>``.
        """
        base = self.grant.access_url_base
        if self.grant.console_type == "novnc":
            return f"{base}?{urlencode({'path': f'?token={self.token}'})}"
        return f"{base}?token={self.token}"


class TokenStore:
    """The ``console_auth_tokens`` table.  ``clock`` gives unix seconds
    (tests pass their own to move time without sleeping)."""

    def __init__(self, db: Database, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._clock = clock

    async def authorize(self, *, instance_uuid: str, host: str, port: int, console_type: str,
                        access_url_base: str, ttl: float, user_id: str,
                        project_id: str) -> IssuedToken:
        """Store a new token for ``ttl`` seconds and return it in clear.
        Does not block; a (practically impossible) hash collision retries."""
        while True:
            token = str(uuidlib.uuid4())
            grant = ConsoleGrant(instance_uuid, host, port, console_type, access_url_base, None,
                                 user_id, project_id, self._clock() + ttl, utcnow())
            try:
                await self._db.write(lambda conn: _insert(conn, token_hash(token), grant))
            except sqlite3.IntegrityError:
                continue
            return IssuedToken(token, grant)

    async def validate(self, token: str) -> ConsoleGrant | None:
        """The grant of a known, unexpired token; None otherwise."""
        if not token:
            return None
        rows = list(await self._db.conn.execute_fetchall(
            f"SELECT {_COLUMNS} FROM console_auth_tokens WHERE token_hash = ? AND expires > ?",
            (token_hash(token), self._clock())))
        return ConsoleGrant(*rows[0]) if rows else None

    async def delete_for_instance(self, instance_uuid: str) -> int:
        """Delete every token of an instance; returns how many there were."""
        def run(conn: sqlite3.Connection) -> int:
            cur = conn.execute("DELETE FROM console_auth_tokens WHERE instance_uuid = ?",
                               (instance_uuid,))
            return cur.rowcount
        return await self._db.write(run)

    async def purge_expired(self) -> int:
        """Delete expired tokens; returns how many."""
        now = self._clock()

        def run(conn: sqlite3.Connection) -> int:
            return conn.execute("DELETE FROM console_auth_tokens WHERE expires <= ?",
                                (now,)).rowcount
        return await self._db.write(run)


def _insert(conn: sqlite3.Connection, digest: str, grant: ConsoleGrant) -> None:
    conn.execute(
        f"INSERT INTO console_auth_tokens(token_hash, {_COLUMNS})"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (digest, grant.instance_uuid, grant.host, grant.port, grant.console_type,
         grant.access_url_base, grant.internal_access_path, grant.user_id, grant.project_id,
         grant.expires, grant.created_at))
