"""The images component's table, as versioned migrations.

Conventions as in :mod:`novad.store.schema`: timestamps are ISO-8601 UTC
text from :func:`novad.store.db.utcnow`, booleans 0/1, dicts and lists JSON
text.  Column names are exactly the fields of
:class:`novad.images.model.Image` (a test checks this).  Deleted images are
removed outright: Glance never shows a deleted image again, so keeping the
row would buy nothing.
"""

from __future__ import annotations

from novad.store.db import Component

_V1 = """
CREATE TABLE images (
    id                TEXT PRIMARY KEY NOT NULL,      -- dashed UUID
    name              TEXT,                           -- Glance allows a null name
    status            TEXT NOT NULL DEFAULT 'queued', -- see novad.images.model.ImageStatus
    visibility        TEXT NOT NULL DEFAULT 'shared', -- public|private|shared|community
    protected         INTEGER NOT NULL DEFAULT 0,
    os_hidden         INTEGER NOT NULL DEFAULT 0,
    owner             TEXT NOT NULL,                  -- project id
    disk_format       TEXT,
    container_format  TEXT,
    size              INTEGER,                        -- bytes; NULL until data is in
    virtual_size      INTEGER,
    checksum          TEXT,                           -- md5 hex
    os_hash_algo      TEXT,                           -- 'sha512' once data is in
    os_hash_value     TEXT,
    min_disk          INTEGER NOT NULL DEFAULT 0,
    min_ram           INTEGER NOT NULL DEFAULT 0,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    properties        TEXT NOT NULL DEFAULT '{}',     -- JSON object of string values
    tags              TEXT NOT NULL DEFAULT '[]'      -- JSON list of strings
);
CREATE INDEX images_owner ON images(owner);
CREATE INDEX images_created ON images(created_at, id);
CREATE INDEX images_name ON images(name);
"""

IMAGES = Component("images", [(1, _V1)])
"""The images component, for :meth:`novad.store.db.Database.migrate`."""
