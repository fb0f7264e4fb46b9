"""A node's service record when another node writes its row: the ``services``
table is replicated, so an admin may disable or enable any node from any
node.  The writes here go straight to the table, as replication applies them."""

from __future__ import annotations

from novad.compute.service_record import BINARY, ServiceRecord
from novad.store import Database, Store


async def test_load_picks_up_a_row_written_elsewhere(db: Database) -> None:
    store = Store(db)
    record = ServiceRecord(store, "node-2")
    await record.load()
    assert record.schedulable()
    await store.set_service("node-2", BINARY, True, "disabled on node-1")
    assert record.schedulable(), "cached until re-read"
    await record.load()
    assert not record.schedulable()
    assert record.row.disabled_reason == "disabled on node-1"
    await store.set_service("node-2", BINARY, False, None)
    await record.load()
    assert record.schedulable()


async def test_libvirt_coming_back_keeps_an_admins_disable_from_elsewhere(
        db: Database) -> None:
    store = Store(db)
    record = ServiceRecord(store, "node-2")
    await record.load()
    await record.auto_disable("libvirt is gone")
    # meanwhile an admin on another node disables it for maintenance
    await store.set_service("node-2", BINARY, True, "maintenance")
    await record.auto_enable()
    stored = await store.get_service("node-2", BINARY)
    assert stored is not None and (stored.disabled, stored.disabled_reason) == (
        True, "maintenance")
    assert not record.schedulable()


async def test_libvirt_going_away_keeps_an_admins_disable_from_elsewhere(
        db: Database) -> None:
    store = Store(db)
    record = ServiceRecord(store, "node-2")
    await record.load()
    await store.set_service("node-2", BINARY, True, "maintenance")
    await record.auto_disable("libvirt is gone")
    stored = await store.get_service("node-2", BINARY)
    assert stored is not None and stored.disabled_reason == "maintenance"
