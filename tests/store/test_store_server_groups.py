"""The v4 migration (server groups) on an existing database, and the shape
the replicated tables must keep: text keys, no cascades to instances."""

from __future__ import annotations

from pathlib import Path

from novad.store import COMPUTE, Component, Database, Store
from novad.store.models import ServerGroup


async def test_a_v3_compute_database_gains_server_groups(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "v3.db")
    await db.migrate([Component("compute", COMPUTE.migrations[:3])])
    await db.write(lambda conn: conn.execute(  # as a v3 node wrote it
        "INSERT INTO services(host, binary, disabled, disabled_reason, updated_at)"
        " VALUES ('n', 'nova-compute', 1, 'kept', '2025-01-01T00:00:00.000000')"))
    await db.migrate([COMPUTE])
    store = Store(db)
    assert (await db.versions())["compute"] >= 4
    row = await store.get_service("n", "nova-compute")
    assert row is not None and row.disabled_reason == "kept"
    group = ServerGroup(id="g-1", name="g", project_id="p", user_id="u", policy="affinity",
                        rules={"max_server_per_host": 2}, created_at="2025-01-01T00:00:00.000000",
                        members=("m-2", "m-1"))
    await store.create_server_group(group)
    fetched = await store.get_server_group("g-1")
    assert fetched.members == ("m-1", "m-2") and fetched.rules == {"max_server_per_host": 2}
    await db.close()


async def test_replicated_tables_have_text_keys_and_no_foreign_keys(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "sg.db")
    await db.migrate([COMPUTE])
    for table in ("server_groups", "server_group_members"):
        assert await db.fetch(f"PRAGMA foreign_key_list({table})") == []
        keys = [(r[1], r[2]) for r in await db.fetch(f"PRAGMA table_info({table})") if r[5]]
        assert keys and all(kind == "TEXT" for _name, kind in keys), keys
    sql = await db.fetch("SELECT sql FROM sqlite_master WHERE name LIKE 'server_group%'")
    assert not any("AUTOINCREMENT" in str(r[0]).upper() for r in sql)
    await db.close()
