"""Draining a node with ``openstack compute service set --disable``.

An admin disables this node's nova-compute with a reason: the service list,
the hypervisor and the availability zone say so, a new server ends in ERROR
with Nova's NoValidHost fault, and the servers already here keep obeying.
Enabling it again lets boots through.  The tests run in file order.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from e2e_helpers import OPENSTACK, Daemon, states, wait_settled

pytestmark = [
    pytest.mark.cli,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.skipif(not OPENSTACK.exists(), reason="python-openstackclient not installed"),
]

NO_HOST = "No valid host was found. There are not enough hosts available."


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def running(novad: Daemon) -> AsyncIterator[str]:
    """An image, and a server booted while the node is enabled (its id)."""
    await novad.upload_image("img")
    created = await novad.cli_json("server", "create", "--flavor", "m1.nano", "--image", "img",
                                   "--wait", "before")
    yield str(created["id"])


def compute_service(listed: list[dict[str, str]]) -> dict[str, str]:
    (row,) = [r for r in listed if r["Binary"] == "nova-compute"]
    return row


async def test_disable_with_a_reason_shows_everywhere(novad: Daemon, running: str) -> None:
    host = novad.node.host
    assert compute_service(await novad.cli_json("compute", "service", "list"))["Status"] == \
        "enabled"
    await novad.cli("compute", "service", "set", "--disable", "--disable-reason", "new disks",
                    host, "nova-compute")
    row = compute_service(await novad.cli_json("compute", "service", "list", "--long"))
    assert (row["Host"], row["Status"], row["State"], row["Disabled Reason"]) == (
        host, "disabled", "up", "new disks")
    (hypervisor,) = await novad.cli_json("hypervisor", "list", "--long")
    assert hypervisor["State"] == "up"
    zones = await novad.cli_json("availability", "zone", "list", "--compute")
    assert [z["Zone Status"] for z in zones] == ["not available"]


async def test_a_new_server_finds_no_host(novad: Daemon, running: str) -> None:
    created = await novad.cli_json("server", "create", "--flavor", "m1.nano", "--image", "img",
                                   "refused")
    shown = await wait_settled(novad, created["id"])
    assert shown["status"] == "ERROR"
    assert shown["fault"]["message"] == NO_HOST
    await novad.cli("server", "delete", "--wait", created["id"])


async def test_servers_already_here_keep_working(novad: Daemon, running: str) -> None:
    await novad.cli("server", "stop", running)
    assert states(await wait_settled(novad, running))[0] == "SHUTOFF"
    await novad.cli("server", "start", running)
    assert states(await wait_settled(novad, running)) == ("ACTIVE", None, 1)


async def test_enable_lets_boots_through_again(novad: Daemon, running: str) -> None:
    await novad.cli("compute", "service", "set", "--enable", novad.node.host, "nova-compute")
    row = compute_service(await novad.cli_json("compute", "service", "list", "--long"))
    assert (row["Status"], row["Disabled Reason"]) == ("enabled", None)
    created = await novad.cli_json("server", "create", "--flavor", "m1.nano", "--image", "img",
                                   "--wait", "after")
    assert created["status"] == "ACTIVE"
    zones = await novad.cli_json("availability", "zone", "list", "--compute")
    assert [z["Zone Status"] for z in zones] == ["available"]


async def test_only_an_admin_may_disable(novad: Daemon, running: str) -> None:
    await novad.cli("project", "create", "ps")
    member = await novad.add_user("us", "ps")
    result = await novad.cli("compute", "service", "set", "--disable", novad.node.host,
                             "nova-compute", clouds_yaml=member, check=False)
    assert result.returncode != 0
    # from 2.53 the CLI first looks the service up by host and binary, and that
    # list is already the admin's only
    assert "Failed to set service status to disabled" in result.stderr or \
        "os_compute_api:os-services:list" in result.stderr
    row = compute_service(await novad.cli_json("compute", "service", "list"))
    assert row["Status"] == "enabled"
