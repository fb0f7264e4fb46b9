"""Migration records (os-migrations) through ``openstack server migration list``.

A resize that was confirmed and a cold migration that found no other host
are listed for an admin, with their filters; a member is refused.  The
tests run in file order and share the fixture.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from e2e_helpers import OPENSTACK, Daemon, wait_settled

pytestmark = [
    pytest.mark.cli,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.skipif(not OPENSTACK.exists(), reason="python-openstackclient not installed"),
]


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def server(novad: Daemon) -> AsyncIterator[str]:
    """A server resized from m1.nano to m1.tiny and confirmed, then asked to
    migrate (no other host: the migration ends in error)."""
    await novad.upload_image("img")
    created = await novad.cli_json("server", "create", "--flavor", "m1.nano", "--image", "img",
                                   "--wait", "mig")
    await novad.cli("server", "resize", "--flavor", "m1.tiny", "--wait", "mig")
    await novad.cli("server", "resize", "confirm", "mig")
    await wait_settled(novad, created["id"])
    await novad.cli("server", "migrate", "mig")
    await wait_settled(novad, created["id"])
    yield str(created["id"])


async def test_an_admin_lists_every_migration(novad: Daemon, server: str) -> None:
    rows = await novad.cli_json("server", "migration", "list")
    # oldest first, and newest first from 2.59 (as Nova): compared without order
    assert sorted((r["Server UUID"], r["Status"]) for r in rows) == [
        (server, "confirmed"), (server, "error")]
    (resize,) = [r for r in rows if r["Status"] == "confirmed"]
    host = novad.node.host
    assert (resize["Old Flavor"], resize["New Flavor"], resize["Source Compute"],
            resize["Dest Compute"], resize["Source Node"]) == ("42", "1", host, host, host)
    assert resize["Created At"] and resize["Updated At"]


async def test_filters(novad: Daemon, server: str) -> None:
    def statuses(rows: list[dict[str, str]]) -> list[str]:
        return sorted(r["Status"] for r in rows)  # newest first from 2.59

    assert statuses(await novad.cli_json("server", "migration", "list", "--status",
                                         "error")) == ["error"]
    assert statuses(await novad.cli_json("server", "migration", "list", "--server",
                                         "mig")) == ["confirmed", "error"]
    assert statuses(await novad.cli_json("server", "migration", "list", "--host",
                                         novad.node.host)) == ["confirmed", "error"]
    assert await novad.cli_json("server", "migration", "list", "--host", "elsewhere") == []
    token = await novad.token()
    status, body = await novad.call(
        "GET", "/compute/v2.1/os-migrations?migration_type=migration", token)
    assert status == 200, body
    (record,) = body["migrations"]
    assert (record["status"], record["instance_uuid"], record["dest_compute"]) == (
        "error", server, None)
    assert "migration_type" not in record  # added at 2.23


async def test_a_member_is_refused(novad: Daemon, server: str) -> None:
    await novad.cli("project", "create", "pm")
    member = await novad.add_user("um", "pm")
    result = await novad.cli("server", "migration", "list", clouds_yaml=member, check=False)
    assert result.returncode != 0
    assert "os-migrations:index" in result.stderr
