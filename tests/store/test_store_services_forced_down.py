"""The services record's ``forced_down`` (os-services force-down, 2.11)."""

from __future__ import annotations

from pathlib import Path

from novad.store import COMPUTE, Component, Database, Store


async def test_a_v4_database_gains_forced_down_kept_apart_from_disabled(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "v4.db")
    await db.migrate([Component("compute", COMPUTE.migrations[:4])])
    await db.write(lambda conn: conn.execute(  # as a v4 node wrote it
        "INSERT INTO services(host, binary, disabled, disabled_reason, updated_at)"
        " VALUES ('n', 'nova-compute', 1, 'kept', '2025-01-01T00:00:00.000000')"))
    await db.migrate([COMPUTE])
    store = Store(db)
    row = await store.get_service("n", "nova-compute")
    assert row is not None and (row.disabled, row.disabled_reason, row.forced_down) == (
        True, "kept", False)
    down = await store.set_forced_down("n", "nova-compute", True)
    assert (down.disabled, down.disabled_reason, down.forced_down) == (True, "kept", True)
    enabled = await store.set_service("n", "nova-compute", False, None)
    assert (enabled.disabled, enabled.forced_down) == (False, True)
    assert [r.forced_down for r in await store.list_services("nova-compute")] == [True]
    fresh = await store.set_forced_down("m", "nova-compute", True)
    assert (fresh.disabled, fresh.forced_down) == (False, True)
    assert await store.get_service("m", "nova-compute") == fresh
    await db.close()
