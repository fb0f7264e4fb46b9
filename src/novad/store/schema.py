"""The compute component's tables (instances, flavors, actions, events,
faults, migrations, key pairs, project quotas, services, server groups), as
versioned migrations.

Conventions: timestamps are ISO-8601 UTC text from :func:`novad.store.db.utcnow`;
booleans are 0/1 integers; dicts and flavors are JSON text; vm_state and
task_state hold Nova's string values, task_state NULL for "no task".
Column names of ``instances`` are exactly the fields of
:class:`novad.store.models.Instance` (a test checks this).
"""

from __future__ import annotations

from novad.store.db import Component
from novad.store.moves import MOVES_SQL

_V1 = """
CREATE TABLE instances (
    uuid              TEXT PRIMARY KEY NOT NULL,
    name              TEXT NOT NULL,
    project_id        TEXT NOT NULL,
    user_id           TEXT NOT NULL,
    host              TEXT NOT NULL,
    flavor            TEXT NOT NULL,             -- JSON of models.Flavor, copied at boot
    image_ref         TEXT NOT NULL,
    vm_state          TEXT NOT NULL,
    task_state        TEXT,                      -- NULL: no task
    power_state       INTEGER NOT NULL DEFAULT 0,
    locked            INTEGER NOT NULL DEFAULT 0,
    locked_by         TEXT,
    locked_reason     TEXT,
    launched_at       TEXT,
    terminated_at     TEXT,
    created_at        TEXT NOT NULL,
    updated_at        TEXT,
    deleted_at        TEXT,
    deleted           INTEGER NOT NULL DEFAULT 0,
    progress          INTEGER NOT NULL DEFAULT 0,
    key_name          TEXT,
    key_data          TEXT,
    user_data         TEXT,
    config_drive      INTEGER NOT NULL DEFAULT 0,
    availability_zone TEXT NOT NULL,
    metadata          TEXT NOT NULL DEFAULT '{}',
    system_metadata   TEXT NOT NULL DEFAULT '{}',
    reservation_id    TEXT NOT NULL DEFAULT '',
    networks          TEXT                       -- JSON, NULL when absent
);
CREATE INDEX instances_project_deleted ON instances(project_id, deleted);
CREATE INDEX instances_host ON instances(host);
CREATE INDEX instances_updated_at ON instances(updated_at);
-- Nova's default listing order is created_at DESC, uuid DESC.
CREATE INDEX instances_created_uuid ON instances(created_at, uuid);

CREATE TABLE flavors (
    id           TEXT PRIMARY KEY NOT NULL,      -- Nova's flavorid
    name         TEXT NOT NULL UNIQUE,
    vcpus        INTEGER NOT NULL,
    memory_mb    INTEGER NOT NULL,
    root_gb      INTEGER NOT NULL,
    ephemeral_gb INTEGER NOT NULL DEFAULT 0,
    swap         INTEGER NOT NULL DEFAULT 0,
    rxtx_factor  REAL NOT NULL DEFAULT 1.0,
    is_public    INTEGER NOT NULL DEFAULT 1,
    disabled     INTEGER NOT NULL DEFAULT 0,
    description  TEXT,
    extra_specs  TEXT NOT NULL DEFAULT '{}'
);

CREATE TABLE flavor_projects (
    flavor_id  TEXT NOT NULL REFERENCES flavors(id) ON DELETE CASCADE,
    project_id TEXT NOT NULL,
    PRIMARY KEY (flavor_id, project_id)
);
CREATE INDEX flavor_projects_project ON flavor_projects(project_id);

CREATE TABLE migrations (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    instance_uuid  TEXT NOT NULL REFERENCES instances(uuid) ON DELETE CASCADE,
    migration_type TEXT NOT NULL,
    status         TEXT NOT NULL,
    source_compute TEXT NOT NULL,
    dest_compute   TEXT,
    old_flavor_id  TEXT,
    new_flavor_id  TEXT,
    created_at     TEXT NOT NULL,
    updated_at     TEXT
);
CREATE INDEX migrations_instance ON migrations(instance_uuid, id);
CREATE INDEX migrations_status ON migrations(status, updated_at);

CREATE TABLE instance_actions (
    id            INTEGER PRIMARY KEY,
    instance_uuid TEXT NOT NULL REFERENCES instances(uuid) ON DELETE CASCADE,
    action        TEXT NOT NULL,
    request_id    TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    project_id    TEXT NOT NULL,
    start_time    TEXT NOT NULL,
    finish_time   TEXT,
    message       TEXT,
    updated_at    TEXT,
    UNIQUE (instance_uuid, request_id)
);
-- An instance's latest action (events written at restart land on it).
CREATE INDEX instance_actions_instance ON instance_actions(instance_uuid, id);

CREATE TABLE instance_actions_events (
    id          INTEGER PRIMARY KEY,
    action_id   INTEGER NOT NULL REFERENCES instance_actions(id) ON DELETE CASCADE,
    event       TEXT NOT NULL,
    start_time  TEXT NOT NULL,
    finish_time TEXT,
    result      TEXT,
    traceback   TEXT,
    host        TEXT NOT NULL DEFAULT '',
    details     TEXT
);
CREATE INDEX instance_actions_events_action ON instance_actions_events(action_id, event);

CREATE TABLE instance_faults (
    id            INTEGER PRIMARY KEY,
    instance_uuid TEXT NOT NULL REFERENCES instances(uuid) ON DELETE CASCADE,
    code          INTEGER NOT NULL,
    message       TEXT NOT NULL,
    details       TEXT NOT NULL DEFAULT '',
    host          TEXT NOT NULL DEFAULT '',
    created_at    TEXT NOT NULL
);
CREATE INDEX instance_faults_instance ON instance_faults(instance_uuid, id);

CREATE TABLE keypairs (
    user_id     TEXT NOT NULL,
    name        TEXT NOT NULL,
    type        TEXT NOT NULL DEFAULT 'ssh',
    public_key  TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (user_id, name)
);
"""

_V2 = """
CREATE TABLE project_quotas (
    project_id  TEXT NOT NULL,
    resource    TEXT NOT NULL,
    hard_limit  INTEGER NOT NULL,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (project_id, resource)
);
"""
"""v2: per-project quota limits set through os-quota-sets; a project
without a row for a resource has the ``[quota]`` default."""

_V3 = """
CREATE TABLE services (
    host            TEXT NOT NULL,
    binary          TEXT NOT NULL,
    disabled        INTEGER NOT NULL DEFAULT 0,
    disabled_reason TEXT,
    updated_at      TEXT NOT NULL,
    PRIMARY KEY (host, binary)
);
"""
"""v3: whether a node's nova-compute takes new instances (os-services
enable/disable, and the automatic disable while libvirt is unreachable);
a node without a row is enabled."""

_V4 = """
CREATE TABLE server_groups (
    id          TEXT PRIMARY KEY NOT NULL,       -- the group's uuid
    name        TEXT NOT NULL,
    project_id  TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    policy      TEXT NOT NULL,                   -- affinity | anti-affinity | soft-*
    rules       TEXT NOT NULL DEFAULT '{}',      -- JSON, e.g. {"max_server_per_host": 2}
    created_at  TEXT NOT NULL
);
CREATE INDEX server_groups_project ON server_groups(project_id);

CREATE TABLE server_group_members (
    group_id      TEXT NOT NULL,
    instance_uuid TEXT NOT NULL,
    PRIMARY KEY (group_id, instance_uuid)
);
CREATE INDEX server_group_members_instance ON server_group_members(instance_uuid);
"""
"""v4: server groups (os-server-groups) and their members.  Replicated
between nodes, so the keys are text and members carry no foreign key:
a member may be an instance of another node."""

_V5 = """
ALTER TABLE services ADD COLUMN forced_down INTEGER NOT NULL DEFAULT 0;
"""
"""v5: an admin's ``openstack compute service set --down`` (os-services
force-down, microversion 2.11): the service counts as down whatever its
node's heartbeat says, so its instances may be evacuated.  Replicated with
the rest of the row."""

_V7 = """
ALTER TABLE instances ADD COLUMN description TEXT;
"""
"""v7: a server's description (microversion 2.19), NULL when never set."""

_V8 = """
ALTER TABLE instances ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';
"""
"""v8: a server's tags (microversion 2.26), a JSON list in the row itself so
they replicate with it and move with it when the instance changes node."""

_V9 = """
ALTER TABLE instances ADD COLUMN access_ip_v4 TEXT;
ALTER TABLE instances ADD COLUMN access_ip_v6 TEXT;
"""
"""v9: a server's ``accessIPv4``/``accessIPv6`` (Nova 2.1), NULL when unset;
in the row, so they replicate and move with it."""

_V10 = """
ALTER TABLE migrations ADD COLUMN user_id TEXT;
ALTER TABLE migrations ADD COLUMN project_id TEXT;
"""
"""v10: who asked for a migration (microversion 2.80 shows them and filters
by them); NULL for the records made before, which Nova shows as null too."""

COMPUTE = Component("compute", [(1, _V1), (2, _V2), (3, _V3), (4, _V4), (5, _V5),
                                (6, MOVES_SQL), (7, _V7), (8, _V8), (9, _V9),
                                (10, _V10)])
"""The compute store's schema; pass it to :meth:`Database.migrate`."""
