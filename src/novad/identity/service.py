"""The identity service: bootstrap, password authentication, Fernet tokens,
and the project/user/role/assignment administration behind ``/identity/v3``.

Every write runs in :meth:`Database.transaction` and ends by dropping the
token cache, so a revoked token, a removed role, or a disabled user or
project stops working at once on this node (other nodes drop their cached
entries within :data:`CACHE_SECONDS`).  Identity administration needs the
``admin`` role in the caller's scoped project; ``member`` and ``reader``
only read themselves.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sqlite3
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import structlog

from novad.config import Config
from novad.context import RequestContext
from novad.errors import Conflict, Forbidden, NotAuthenticated, NotFound
from novad.identity import clouds
from novad.identity.models import (
    ASSIGNMENT_COLUMNS,
    DEFAULT_DOMAIN_ID,
    DEFAULT_DOMAIN_NAME,
    PROJECT_COLUMNS,
    ROLE_COLUMNS,
    USER_COLUMNS,
    Assignment,
    Project,
    Role,
    TokenInfo,
    User,
)
from novad.identity.passwords import hash_password, verify_password
from novad.identity.tokens import BadToken, TokenPayload, fernet_for, new_audit_id, seal, unseal
from novad.store.db import Database, utcnow

CACHE_SECONDS = 30.0
"""How long a validated token is trusted without reading the database."""

CACHE_MAX = 4096
"""Cached tokens kept at most; the cache is emptied when full."""

BOOTSTRAP_ROLES = ("admin", "member", "reader")
REGION = "RegionOne"

log = structlog.get_logger(__name__)

_DUMMY_HASH: list[str] = []


def new_id() -> str:
    """A Keystone-style id: a hex UUID."""
    return uuid.uuid4().hex


def iso(ts: float) -> str:
    """Keystone's timestamp form: ``2026-11-21T11:00:00.000000Z``."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def missing(kind: str, ident: str) -> NotFound:
    """Keystone's not-found wording."""
    return NotFound(f"Could not find {kind}: {ident}.")


def _duplicate(kind: str, name: str) -> Conflict:
    return Conflict(f"Conflict occurred attempting to store {kind} - Duplicate entry "
                    f"found with name {name} at domain ID {DEFAULT_DOMAIN_ID}.")


def is_default_domain(value: str | None) -> bool:
    """True for the one domain, by id (``default``) or name (``Default``)."""
    return value is None or value.lower() == DEFAULT_DOMAIN_ID


def _require_admin(ctx: RequestContext) -> None:
    if not ctx.is_admin:
        raise Forbidden()


def _read_token_state(conn: sqlite3.Connection, p: TokenPayload) -> TokenInfo | None:
    """Everything validation needs, in one worker-thread call; None = refuse."""
    if conn.execute("SELECT 1 FROM revoked_tokens WHERE audit_id = ?",
                    (p.audit_id,)).fetchone():
        return None
    user = conn.execute("SELECT name, enabled, revoke_before FROM users WHERE id = ?",
                        (p.user_id,)).fetchone()
    if user is None or not user[1] or p.issued_at < float(user[2]):
        return None
    project = conn.execute("SELECT name, enabled FROM projects WHERE id = ?",
                           (p.project_id,)).fetchone()
    if project is None or not project[1]:
        return None
    roles = conn.execute(
        "SELECT r.id, r.name FROM assignments a JOIN roles r ON r.id = a.role_id"
        " WHERE a.user_id = ? AND a.project_id = ? ORDER BY r.name",
        (p.user_id, p.project_id)).fetchall()
    if not roles:
        return None
    return TokenInfo(p.user_id, str(user[0]), p.project_id, str(project[0]),
                     tuple((str(i), str(n)) for i, n in roles),
                     p.issued_at, p.expires_at, p.audit_id)


def _resolve_scope(conn: sqlite3.Connection, user_id: str, default_project: str | None,
                   project_id: str | None, project_name: str | None
                   ) -> tuple[str, str, list[tuple[str, str]]] | None:
    """The project a login is scoped to and the user's roles there; None = refuse.

    With no project asked for: the user's default project if they hold a
    role there, else the first (by name) project they hold a role on.
    """
    if project_id is not None or project_name is not None:
        col, value = ("id", project_id) if project_id is not None else ("name", project_name)
        row = conn.execute(f"SELECT id, name, enabled FROM projects WHERE {col} = ?",
                           (value,)).fetchone()
    else:
        row = conn.execute(
            "SELECT p.id, p.name, p.enabled FROM projects p WHERE p.enabled = 1 AND EXISTS"
            " (SELECT 1 FROM assignments a WHERE a.user_id = ? AND a.project_id = p.id)"
            " ORDER BY (p.id = ?) DESC, p.name LIMIT 1",
            (user_id, default_project or "")).fetchone()
    if row is None or not row[2]:
        return None
    roles = conn.execute(
        "SELECT r.id, r.name FROM assignments a JOIN roles r ON r.id = a.role_id"
        " WHERE a.user_id = ? AND a.project_id = ? ORDER BY r.name",
        (user_id, row[0])).fetchall()
    if not roles:
        return None
    return str(row[0]), str(row[1]), [(str(i), str(n)) for i, n in roles]


def _where(filters: Sequence[tuple[str, Any]]) -> tuple[str, tuple[Any, ...]]:
    """``WHERE a = ? AND b = ?`` for the filters whose value is not None."""
    used = [(col, value) for col, value in filters if value is not None]
    if not used:
        return "", ()
    return " WHERE " + " AND ".join(f"{col} = ?" for col, _ in used), \
        tuple(value for _, value in used)


class IdentityService:
    """Keystone v3 for novad: users, projects, roles, assignments and tokens.

    ``clock`` returns epoch seconds; tests pass a fake one to expire tokens
    without sleeping.
    """

    def __init__(self, db: Database, config: Config, cluster_key: bytes,
                 *, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.config = config
        self._fernet = fernet_for(cluster_key)
        self._clock = clock
        self._cache: dict[str, tuple[TokenInfo, float]] = {}
        self._generation = 0

    # -- plumbing ----------------------------------------------------------

    def _invalidate(self) -> None:
        """Forget every cached validation (after any identity write)."""
        self._generation += 1
        self._cache.clear()

    async def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return list(await self.db.conn.execute_fetchall(sql, tuple(params)))

    async def _write(self, *statements: tuple[str, Sequence[Any]],
                     invalidate: bool = True) -> list[int]:
        """Run ``statements`` in one transaction; their row counts.
        ``invalidate=False`` for writes no token's validity depends on."""
        counts: list[int] = []
        async with self.db.transaction() as conn:
            for sql, params in statements:
                cursor = await conn.execute(sql, tuple(params))
                counts.append(cursor.rowcount)
        if invalidate:
            self._invalidate()
        return counts

    # -- bootstrap ---------------------------------------------------------

    async def bootstrap(self, state_dir: Path, public_url: str) -> str | None:
        """Create the admin user, project and roles on the first start.

        Writes ``<state_dir>/clouds.yaml`` (0600, cloud ``novad``) with the
        random admin password and returns its path.  Later starts return
        None and change nothing, except that ``auth_url`` in an existing
        clouds.yaml is rewritten when ``public_url`` changed.  Idempotent.
        """
        path = Path(state_dir) / clouds.CLOUDS_FILE
        auth_url = clouds.auth_url_for(public_url)
        if not await self._rows("SELECT 1 FROM users LIMIT 1") \
                and await self._create_admin(path, auth_url):
            log.info("identity_bootstrapped", clouds_yaml=str(path))
            return str(path)
        await asyncio.to_thread(clouds.retarget_clouds_yaml, path, auth_url)
        return None

    async def _create_admin(self, path: Path, auth_url: str) -> bool:
        """Insert the bootstrap rows and write clouds.yaml; False if users exist."""
        password = secrets.token_urlsafe(18)
        password_hash = await asyncio.to_thread(hash_password, password)
        async with self.db.transaction() as conn:
            if await conn.execute_fetchall("SELECT 1 FROM users LIMIT 1"):
                return False  # another bootstrap won the race
            await self._insert_bootstrap_rows(conn, password_hash)
            # Written before COMMIT: if the commit fails the next start
            # bootstraps again and overwrites it, so the file and the
            # database never disagree about the password.
            await asyncio.to_thread(clouds.write_clouds_yaml, path, auth_url, password)
        self._invalidate()
        return True

    async def _insert_bootstrap_rows(self, conn: Any, password_hash: str) -> None:
        now = utcnow()
        for name in BOOTSTRAP_ROLES:
            await conn.execute("INSERT OR IGNORE INTO roles(id, name) VALUES (?, ?)",
                               (new_id(), name))
        await conn.execute(
            "INSERT OR IGNORE INTO projects(id, name, description, created_at)"
            " VALUES (?, 'admin', 'Bootstrap project for initializing the cloud.', ?)",
            (new_id(), now))
        project_id = (await conn.execute_fetchall(
            "SELECT id FROM projects WHERE name = 'admin'"))[0][0]
        user_id = new_id()
        await conn.execute(
            "INSERT INTO users(id, name, password_hash, default_project_id, created_at)"
            " VALUES (?, 'admin', ?, ?, ?)", (user_id, password_hash, project_id, now))
        await conn.execute(
            "INSERT INTO assignments(user_id, project_id, role_id)"
            " SELECT ?, ?, id FROM roles WHERE name = 'admin'", (user_id, project_id))

    # -- tokens ------------------------------------------------------------

    async def authenticate(self, username: str | None, password: str, *,
                           user_id: str | None = None, user_domain: str | None = None,
                           project_name: str | None = None, project_id: str | None = None,
                           project_domain: str | None = None,
                           public_url: str | None = None) -> tuple[str, dict[str, Any]]:
        """Check a password and issue a project-scoped token.

        The user is named by ``username`` (in ``user_domain``) or
        ``user_id``; the scope by ``project_id`` or ``project_name``, else the
        user's default (or first) project.  Returns the token and Keystone's
        token body (with a catalog when ``public_url`` is given).  Raises
        NotAuthenticated for an unknown or disabled user, a wrong password,
        or a project the user holds no role on.
        """
        if not is_default_domain(user_domain) or not is_default_domain(project_domain):
            raise NotAuthenticated()
        user = await self._check_password(username, user_id, password)
        scope = await self.db.call(partial(
            _resolve_scope, user_id=user.id, default_project=user.default_project_id,
            project_id=project_id, project_name=project_name))
        if scope is None:
            raise NotAuthenticated()
        expires_at = self._clock() + self.config.identity.token_expiration
        return self._issue(user.id, user.name, scope, expires_at, public_url)

    async def rescope(self, token: str, *, project_id: str | None = None,
                      project_name: str | None = None, public_url: str | None = None
                      ) -> tuple[str, dict[str, Any]]:
        """Exchange a valid token for one on another project (the token method).

        The new token expires when the old one does; with no project named
        it keeps the old scope.  NotAuthenticated like :meth:`authenticate`.
        """
        info = await self.token_info(token)
        if project_id is None and project_name is None:
            project_id = info.project_id
        scope = await self.db.call(partial(
            _resolve_scope, user_id=info.user_id, default_project=None,
            project_id=project_id, project_name=project_name))
        if scope is None:
            raise NotAuthenticated()
        return self._issue(info.user_id, info.user_name, scope, info.expires_at, public_url)

    def _issue(self, user_id: str, user_name: str,
               scope: tuple[str, str, list[tuple[str, str]]], expires_at: float,
               public_url: str | None) -> tuple[str, dict[str, Any]]:
        """Seal a new token for a checked user and scope; (token, body)."""
        payload = TokenPayload(user_id, scope[0], self._clock(), expires_at, new_audit_id())
        info = TokenInfo(user_id, user_name, scope[0], scope[1], tuple(scope[2]),
                         payload.issued_at, payload.expires_at, payload.audit_id)
        token = seal(self._fernet, payload)
        self._remember(token, info, self._generation)
        log.info("token_issued", user_id=user_id, project_id=scope[0], audit_id=info.audit_id)
        return token, self.token_body(info, public_url)

    async def _check_password(self, username: str | None, user_id: str | None,
                              password: str) -> User:
        """The enabled user with this password; NotAuthenticated otherwise.

        Keystone's account lockout (``[security_compliance]``): after
        ``lockout_failure_attempts`` wrong passwords in a row, the user is
        refused, right password or not, until ``lockout_duration`` has
        passed since the last one.  A locked user hears the same 401 as a
        wrong password (the log says which), so names cannot be probed.
        """
        col, value = ("id", user_id) if user_id is not None else ("name", username)
        rows = await self._rows(
            f"SELECT {USER_COLUMNS}, u.password_hash, u.failed_auth_count, u.failed_auth_at"
            f" FROM users u WHERE u.{col} = ?", (value,))
        if not _DUMMY_HASH:
            _DUMMY_HASH.append(await asyncio.to_thread(hash_password, secrets.token_hex(8)))
        now = self._clock()
        if rows and self._locked_out(rows[0][7], rows[0][8], now):
            log.warning("authentication_locked_out", user_id=rows[0][0])
            raise NotAuthenticated()
        # Verify even for an unknown user, so timing does not reveal names.
        stored = rows[0][6] if rows else _DUMMY_HASH[0]
        ok = await asyncio.to_thread(verify_password, password, stored)
        if not rows or not ok or not rows[0][3]:
            log.info("authentication_failed", user=value)
            if rows and not ok:
                await self._count_failure(rows[0][0], rows[0][8], now)
            raise NotAuthenticated()
        if rows[0][7]:
            await self._write(("UPDATE users SET failed_auth_count = 0, failed_auth_at = NULL"
                               " WHERE id = ?", (rows[0][0],)), invalidate=False)
        return User.from_row(rows[0])

    def _locked_out(self, failures: int, last: float | None, now: float) -> bool:
        policy = self.config.security_compliance
        return (policy.lockout_failure_attempts > 0 and last is not None
                and failures >= policy.lockout_failure_attempts
                and now < last + policy.lockout_duration)

    async def _count_failure(self, user_id: str, last: float | None, now: float) -> None:
        """One more wrong password; a run older than lockout_duration starts again."""
        if self.config.security_compliance.lockout_failure_attempts == 0:
            return
        fresh = last is None or now >= last + self.config.security_compliance.lockout_duration
        # Not a token matter: a stream of wrong passwords must not empty the
        # validation cache every other request relies on.
        await self._write((
            "UPDATE users SET failed_auth_count = CASE WHEN ? THEN 1"
            " ELSE failed_auth_count + 1 END, failed_auth_at = ? WHERE id = ?",
            (fresh, now, user_id)), invalidate=False)

    def _remember(self, token: str, info: TokenInfo, generation: int) -> None:
        if generation != self._generation:
            return  # an identity write happened while we read: do not cache
        if len(self._cache) >= CACHE_MAX:
            self._cache.clear()
        until = min(self._clock() + CACHE_SECONDS, info.expires_at)
        self._cache[token] = (info, until)

    async def token_info(self, token: str) -> TokenInfo:
        """Validate ``token``: who, where, which roles, until when.

        NotAuthenticated when it is forged, another cluster's, expired,
        revoked, or its user or project is gone or disabled, or the user
        holds no role on the project any more.  Cached for up to
        :data:`CACHE_SECONDS`; any identity write drops the cache.
        """
        now = self._clock()
        hit = self._cache.get(token)
        if hit is not None:
            if now < hit[1]:
                return hit[0]
            self._cache.pop(token, None)
        try:
            payload = unseal(self._fernet, token)
        except BadToken:
            raise NotAuthenticated() from None
        if payload.expires_at <= now:
            raise NotAuthenticated()
        generation = self._generation
        info = await self.db.call(partial(_read_token_state, p=payload))
        if info is None:
            raise NotAuthenticated()
        self._remember(token, info, generation)
        return info

    async def validate_token(self, token: str, request_id: str | None = None
                             ) -> RequestContext:
        """The request context of ``token`` (see :meth:`token_info`)."""
        return (await self.token_info(token)).context(request_id)

    async def subject_token(self, ctx: RequestContext, token: str) -> TokenInfo:
        """Another token, as seen by ``ctx`` (``GET /auth/tokens``).

        NotFound when it is not valid; Forbidden unless ``ctx`` is an admin
        or the token's own user.
        """
        try:
            info = await self.token_info(token)
        except NotAuthenticated:
            raise NotFound("Could not find token.") from None
        if not ctx.is_admin and info.user_id != ctx.user_id:
            raise Forbidden()
        return info

    async def revoke(self, token: str, ctx: RequestContext | None = None) -> None:
        """Revoke ``token`` until it would have expired.

        With ``ctx``, only an admin or the token's own user may.  NotFound
        when the token is not valid.  Expired revocations are purged here.
        """
        if ctx is not None:
            info = await self.subject_token(ctx, token)
        else:
            try:
                info = await self.token_info(token)
            except NotAuthenticated:
                raise NotFound("Could not find token.") from None
        await self._write(
            ("INSERT OR REPLACE INTO revoked_tokens(audit_id, expires_at) VALUES (?, ?)",
             (info.audit_id, info.expires_at)),
            ("DELETE FROM revoked_tokens WHERE expires_at < ?", (self._clock(),)))
        log.info("token_revoked", audit_id=info.audit_id, user_id=info.user_id)

    async def purge_revoked(self) -> None:
        """Forget revocations of tokens that have expired anyway.

        The ``revoked-token-purge`` periodic job; idempotent.
        """
        async with self.db.transaction() as conn:
            cursor = await conn.execute("DELETE FROM revoked_tokens WHERE expires_at < ?",
                                        (self._clock(),))
        if cursor.rowcount:
            log.info("revocations_purged", count=cursor.rowcount)

    def token_body(self, info: TokenInfo, public_url: str | None) -> dict[str, Any]:
        """Keystone's ``{"token": ...}`` body; no catalog without ``public_url``."""
        domain = {"id": DEFAULT_DOMAIN_ID, "name": DEFAULT_DOMAIN_NAME}
        body: dict[str, Any] = {
            "methods": ["password"],
            "user": {"id": info.user_id, "name": info.user_name, "domain": domain,
                     "password_expires_at": None},
            "project": {"id": info.project_id, "name": info.project_name, "domain": domain},
            "roles": [{"id": rid, "name": name} for rid, name in info.roles],
            "expires_at": iso(info.expires_at),
            "issued_at": iso(info.issued_at),
            "audit_ids": [info.audit_id],
            "is_domain": False,
        }
        if public_url is not None:
            body["catalog"] = self.catalog(public_url)
        return {"token": body}

    @staticmethod
    def catalog(public_url: str) -> list[dict[str, Any]]:
        """The service catalog: identity, compute and image, all on this URL."""
        base = public_url.rstrip("/")
        entries = []
        for kind, name, url in (("identity", "keystone", f"{base}/identity/v3"),
                                ("compute", "nova", f"{base}/compute/v2.1"),
                                ("image", "glance", f"{base}/image")):
            endpoints = [{"id": uuid.uuid5(uuid.NAMESPACE_URL, f"{url}#{iface}").hex,
                          "interface": iface, "region": REGION, "region_id": REGION,
                          "url": url}
                         for iface in ("public", "internal", "admin")]
            entries.append({"id": uuid.uuid5(uuid.NAMESPACE_URL, f"{base}#{kind}").hex,
                            "type": kind, "name": name, "endpoints": endpoints})
        return entries

    # -- projects ----------------------------------------------------------

    async def list_projects(self, ctx: RequestContext, *, name: str | None = None,
                            enabled: bool | None = None, domain_id: str | None = None
                            ) -> list[Project]:
        """Every project matching the filters.  Admin only."""
        _require_admin(ctx)
        if not is_default_domain(domain_id):
            return []
        where, params = _where([("p.name", name), ("p.enabled", enabled)])
        rows = await self._rows(f"SELECT {PROJECT_COLUMNS} FROM projects p{where}"
                                " ORDER BY p.name", params)
        return [Project.from_row(r) for r in rows]

    async def _project(self, project_id: str) -> Project:
        rows = await self._rows(f"SELECT {PROJECT_COLUMNS} FROM projects p WHERE p.id = ?",
                                (project_id,))
        if not rows:
            raise missing("project", project_id)
        return Project.from_row(rows[0])

    async def has_users(self) -> bool:
        """Whether any user exists (false only before bootstrap or the
        first sync from the cluster)."""
        return bool(await self._rows("SELECT 1 FROM users LIMIT 1"))

    async def project_exists(self, project_id: str) -> bool:
        """Whether ``project_id`` names a project (no policy check: for the
        compute service's own look-ups, such as os-quota-sets)."""
        rows = await self._rows("SELECT 1 FROM projects WHERE id = ?", (project_id,))
        return bool(rows)

    async def get_project(self, ctx: RequestContext, project_id: str) -> Project:
        """One project.  Admin, or the caller's own scoped project."""
        if not ctx.is_admin and ctx.project_id != project_id:
            raise Forbidden()
        return await self._project(project_id)

    async def user_projects(self, ctx: RequestContext, user_id: str,
                            enabled_only: bool = False) -> list[Project]:
        """Projects ``user_id`` holds a role on.  Admin, or the user themself."""
        if not ctx.is_admin and ctx.user_id != user_id:
            raise Forbidden()
        rows = await self._rows(
            f"SELECT {PROJECT_COLUMNS} FROM projects p WHERE EXISTS (SELECT 1 FROM"
            " assignments a WHERE a.user_id = ? AND a.project_id = p.id)"
            + (" AND p.enabled = 1" if enabled_only else "") + " ORDER BY p.name", (user_id,))
        return [Project.from_row(r) for r in rows]

    async def create_project(self, ctx: RequestContext, name: str, *, description: str = "",
                             enabled: bool = True, domain_id: str | None = None) -> Project:
        """A new project.  Admin only; Conflict when the name is taken."""
        _require_admin(ctx)
        if not is_default_domain(domain_id):
            raise missing("domain", str(domain_id))
        project = Project(new_id(), name, DEFAULT_DOMAIN_ID, description, enabled)
        try:
            await self._write((
                "INSERT INTO projects(id, name, domain_id, description, enabled, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (project.id, name, project.domain_id, description, enabled, utcnow())))
        except sqlite3.IntegrityError:
            raise _duplicate("project", name) from None
        return project

    async def update_project(self, ctx: RequestContext, project_id: str, *,
                             name: str | None = None, description: str | None = None,
                             enabled: bool | None = None) -> Project:
        """Rename, describe, enable or disable a project.  Admin only."""
        _require_admin(ctx)
        await self._project(project_id)
        changes = [(c, v) for c, v in (("name", name), ("description", description),
                                       ("enabled", enabled)) if v is not None]
        if changes:
            sets = ", ".join(f"{col} = ?" for col, _ in changes)
            try:
                await self._write((f"UPDATE projects SET {sets} WHERE id = ?",
                                   (*(v for _, v in changes), project_id)))
            except sqlite3.IntegrityError:
                raise _duplicate("project", str(name)) from None
        return await self._project(project_id)

    async def delete_project(self, ctx: RequestContext, project_id: str) -> None:
        """Delete a project and every role assignment on it.  Admin only."""
        _require_admin(ctx)
        (count,) = await self._write(("DELETE FROM projects WHERE id = ?", (project_id,)))
        if not count:
            raise missing("project", project_id)

    # -- users -------------------------------------------------------------

    async def list_users(self, ctx: RequestContext, *, name: str | None = None,
                         enabled: bool | None = None, domain_id: str | None = None
                         ) -> list[User]:
        """Every user matching the filters.  Admin only."""
        _require_admin(ctx)
        if not is_default_domain(domain_id):
            return []
        where, params = _where([("u.name", name), ("u.enabled", enabled)])
        rows = await self._rows(f"SELECT {USER_COLUMNS} FROM users u{where} ORDER BY u.name",
                                params)
        return [User.from_row(r) for r in rows]

    async def _user(self, user_id: str) -> User:
        rows = await self._rows(f"SELECT {USER_COLUMNS} FROM users u WHERE u.id = ?",
                                (user_id,))
        if not rows:
            raise missing("user", user_id)
        return User.from_row(rows[0])

    async def get_user(self, ctx: RequestContext, user_id: str) -> User:
        """One user.  Admin, or the user themself."""
        if not ctx.is_admin and ctx.user_id != user_id:
            raise Forbidden()
        return await self._user(user_id)

    async def create_user(self, ctx: RequestContext, name: str, *, password: str | None = None,
                          default_project_id: str | None = None, enabled: bool = True,
                          domain_id: str | None = None, extra: dict[str, Any] | None = None
                          ) -> User:
        """A new user (no password: cannot log in).  Admin only.

        NotFound for an unknown default project; Conflict for a taken name.
        """
        _require_admin(ctx)
        if not is_default_domain(domain_id):
            raise missing("domain", str(domain_id))
        if default_project_id is not None:
            await self._project(default_project_id)
        pw_hash = None if password is None else await asyncio.to_thread(hash_password, password)
        user = User(new_id(), name, DEFAULT_DOMAIN_ID, enabled, default_project_id,
                    dict(extra or {}))
        try:
            await self._write((
                "INSERT INTO users(id, name, domain_id, password_hash, enabled,"
                " default_project_id, extra, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (user.id, name, user.domain_id, pw_hash, enabled, default_project_id,
                 json.dumps(user.extra), utcnow())))
        except sqlite3.IntegrityError:
            raise _duplicate("user", name) from None
        return user

    async def update_user(self, ctx: RequestContext, user_id: str, *, name: str | None = None,
                          password: str | None = None, enabled: bool | None = None,
                          default_project_id: str | None = None,
                          extra: dict[str, Any] | None = None) -> User:
        """Change a user.  Admin only.

        A new password voids the user's earlier tokens (as Keystone does);
        ``extra`` keys are merged into the free-form attributes.  A new
        password or ``enabled: true`` lifts a lockout (Keystone's way for an
        admin to unlock a user).
        """
        _require_admin(ctx)
        user = await self._user(user_id)
        if default_project_id is not None:
            await self._project(default_project_id)
        changes: list[tuple[str, Any]] = [
            (c, v) for c, v in (("name", name), ("enabled", enabled),
                                ("default_project_id", default_project_id)) if v is not None]
        if extra:
            changes.append(("extra", json.dumps({**user.extra, **extra})))
        if password is not None:
            changes.append(("password_hash", await asyncio.to_thread(hash_password, password)))
            changes.append(("revoke_before", self._clock()))
        if password is not None or enabled:
            changes += [("failed_auth_count", 0), ("failed_auth_at", None)]
        if changes:
            sets = ", ".join(f"{col} = ?" for col, _ in changes)
            try:
                await self._write((f"UPDATE users SET {sets} WHERE id = ?",
                                   (*(v for _, v in changes), user_id)))
            except sqlite3.IntegrityError:
                raise _duplicate("user", str(name)) from None
        return await self._user(user_id)

    async def change_password(self, user_id: str, original: str, new: str) -> None:
        """Self-service password change; NotAuthenticated for a wrong original.

        Voids the user's earlier tokens.
        """
        await self._check_password(None, user_id, original)
        pw_hash = await asyncio.to_thread(hash_password, new)
        await self._write(("UPDATE users SET password_hash = ?, revoke_before = ? WHERE id = ?",
                           (pw_hash, self._clock(), user_id)))
        log.info("password_changed", user_id=user_id)

    async def delete_user(self, ctx: RequestContext, user_id: str) -> None:
        """Delete a user and their role assignments.  Admin only."""
        _require_admin(ctx)
        (count,) = await self._write(("DELETE FROM users WHERE id = ?", (user_id,)))
        if not count:
            raise missing("user", user_id)

    # -- roles and assignments ---------------------------------------------

    async def list_roles(self, ctx: RequestContext, *, name: str | None = None) -> list[Role]:
        """Every role (or the one named ``name``).  Admin only."""
        _require_admin(ctx)
        where, params = _where([("r.name", name)])
        rows = await self._rows(f"SELECT {ROLE_COLUMNS} FROM roles r{where} ORDER BY r.name",
                                params)
        return [Role.from_row(r) for r in rows]

    async def _role(self, role_id: str) -> Role:
        rows = await self._rows(f"SELECT {ROLE_COLUMNS} FROM roles r WHERE r.id = ?",
                                (role_id,))
        if not rows:
            raise missing("role", role_id)
        return Role.from_row(rows[0])

    async def get_role(self, ctx: RequestContext, role_id: str) -> Role:
        """One role.  Admin only."""
        _require_admin(ctx)
        return await self._role(role_id)

    async def create_role(self, ctx: RequestContext, name: str, description: str = "") -> Role:
        """A new role.  Admin only; Conflict when the name is taken."""
        _require_admin(ctx)
        role = Role(new_id(), name, description)
        try:
            await self._write(("INSERT INTO roles(id, name, description) VALUES (?, ?, ?)",
                               (role.id, name, description)))
        except sqlite3.IntegrityError:
            raise Conflict(f"Conflict occurred attempting to store role - Duplicate entry "
                           f"found with name {name}.") from None
        return role

    async def delete_role(self, ctx: RequestContext, role_id: str) -> None:
        """Delete a role and every assignment of it.  Admin only."""
        _require_admin(ctx)
        (count,) = await self._write(("DELETE FROM roles WHERE id = ?", (role_id,)))
        if not count:
            raise missing("role", role_id)

    async def grant(self, ctx: RequestContext, project_id: str, user_id: str,
                    role_id: str) -> None:
        """Give ``user_id`` the role on the project.  Admin only; idempotent."""
        _require_admin(ctx)
        await self._role(role_id)
        await self._user(user_id)
        await self._project(project_id)
        await self._write(("INSERT OR IGNORE INTO assignments(user_id, project_id, role_id)"
                           " VALUES (?, ?, ?)", (user_id, project_id, role_id)))
        log.info("role_granted", user_id=user_id, project_id=project_id, role_id=role_id)

    async def ungrant(self, ctx: RequestContext, project_id: str, user_id: str,
                      role_id: str) -> None:
        """Take the role away; NotFound when it was not held.  Admin only."""
        _require_admin(ctx)
        (count,) = await self._write((
            "DELETE FROM assignments WHERE user_id = ? AND project_id = ? AND role_id = ?",
            (user_id, project_id, role_id)))
        if not count:
            raise NotFound(f"Could not find role assignment with role: {role_id}, user or "
                           f"group: {user_id}, project, domain, or system: {project_id}.")
        log.info("role_revoked", user_id=user_id, project_id=project_id, role_id=role_id)

    async def check_grant(self, ctx: RequestContext, project_id: str, user_id: str,
                          role_id: str) -> None:
        """Return when the role is held, NotFound when not.  Admin or the user."""
        if not any(a.role_id == role_id
                   for a in await self.list_assignments(ctx, user_id=user_id,
                                                        project_id=project_id)):
            raise NotFound(f"Could not find role assignment with role: {role_id}, user or "
                           f"group: {user_id}, project, domain, or system: {project_id}.")

    async def list_assignments(self, ctx: RequestContext, *, user_id: str | None = None,
                               project_id: str | None = None, role_id: str | None = None
                               ) -> list[Assignment]:
        """Role assignments matching the filters.

        Admin, or anyone listing their own (``user_id`` = themselves).
        """
        if not ctx.is_admin and user_id != ctx.user_id:
            raise Forbidden()
        where, params = _where([("a.user_id", user_id), ("a.project_id", project_id),
                                ("a.role_id", role_id)])
        rows = await self._rows(
            f"SELECT {ASSIGNMENT_COLUMNS} FROM assignments a JOIN users u ON u.id = a.user_id"
            " JOIN projects p ON p.id = a.project_id JOIN roles r ON r.id = a.role_id"
            f"{where} ORDER BY u.name, p.name, r.name", params)
        return [Assignment(*(str(v) for v in row)) for row in rows]
