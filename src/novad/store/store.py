"""The compute store: one object over the compute tables."""

from __future__ import annotations

from novad.store.actions import ActionsMixin
from novad.store.db import Database
from novad.store.flavors import FlavorsMixin
from novad.store.instances import InstancesMixin
from novad.store.keypairs import KeypairsMixin
from novad.store.migrations import MigrationsMixin
from novad.store.moves import MovesMixin
from novad.store.quotas import QuotasMixin
from novad.store.server_groups import ServerGroupsMixin
from novad.store.services import ServicesMixin


class Store(InstancesMixin, ActionsMixin, FlavorsMixin, KeypairsMixin, MigrationsMixin,
            QuotasMixin, ServicesMixin, ServerGroupsMixin, MovesMixin):
    """The compute data access object over a migrated :class:`Database`
    (``await db.migrate([COMPUTE])`` first).

    Every method is a coroutine.  Writes are durable when they return (one
    group-committed transaction each, see :mod:`novad.store.db`); each
    method's docstring lists what it raises.  One module per concern:
    instances (and the compare-and-swap write), actions/events/faults,
    flavors, key pairs, migration records, project quotas, service records,
    server groups.
    """

    def __init__(self, db: Database) -> None:
        self._db = db

    @property
    def db(self) -> Database:
        """The underlying database."""
        return self._db
