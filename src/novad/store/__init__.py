"""Persistence: one SQLite database (WAL), schema migrations per component,
and the compute store with its compare-and-swap state writes.

    db = await Database.open(path)
    await db.migrate([COMPUTE, identity.SCHEMA, images.SCHEMA])
    store = Store(db)
"""

from novad.store.db import Component, Database, SchemaMigration, utcnow
from novad.store.schema import COMPUTE
from novad.store.store import Store

__all__ = ["COMPUTE", "Component", "Database", "SchemaMigration", "Store", "utcnow"]
