"""The identity component's tables, as versioned migrations.

Conventions as in :mod:`novad.store.schema`: ids are hex UUIDs, timestamps
ISO-8601 UTC text from :func:`novad.store.db.utcnow`, booleans 0/1.  There
is one domain, ``default``; ``domain_id`` columns exist so the Keystone
shapes stay honest.  Tokens are never stored: only the audit ids of revoked
ones, until they expire.
"""

from __future__ import annotations

from novad.store.db import Component

_V1 = """
CREATE TABLE projects (
    id           TEXT PRIMARY KEY NOT NULL,
    name         TEXT NOT NULL UNIQUE,
    domain_id    TEXT NOT NULL DEFAULT 'default',
    description  TEXT NOT NULL DEFAULT '',
    enabled      INTEGER NOT NULL DEFAULT 1,
    created_at   TEXT NOT NULL
);
CREATE TABLE users (
    id                  TEXT PRIMARY KEY NOT NULL,
    name                TEXT NOT NULL UNIQUE,
    domain_id           TEXT NOT NULL DEFAULT 'default',
    password_hash       TEXT,                    -- NULL: cannot log in with a password
    enabled             INTEGER NOT NULL DEFAULT 1,
    default_project_id  TEXT,
    extra               TEXT NOT NULL DEFAULT '{}',  -- JSON: email, description ...
    revoke_before       REAL NOT NULL DEFAULT 0, -- tokens issued earlier are void (epoch s)
    created_at          TEXT NOT NULL
);
CREATE TABLE roles (
    id           TEXT PRIMARY KEY NOT NULL,
    name         TEXT NOT NULL UNIQUE,
    description  TEXT NOT NULL DEFAULT ''
);
CREATE TABLE assignments (
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    project_id  TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    role_id     TEXT NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, project_id, role_id)
);
CREATE INDEX assignments_project ON assignments(project_id);
CREATE TABLE revoked_tokens (
    audit_id    TEXT PRIMARY KEY NOT NULL,
    expires_at  REAL NOT NULL                   -- epoch seconds; purge after
);
"""

_V2 = """
ALTER TABLE users ADD COLUMN failed_auth_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN failed_auth_at REAL;  -- epoch s of the last failed password
"""

IDENTITY = Component("identity", [(1, _V1), (2, _V2)])
"""Projects, users, roles, role assignments and revoked token audit ids;
v2 counts failed passwords per user (account lockout)."""
