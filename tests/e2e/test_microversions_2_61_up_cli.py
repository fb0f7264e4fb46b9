"""From 2.61 on, through a real daemon and the unmodified ``openstack`` CLI
(which negotiates our maximum): a lock with a reason (2.73) and the
2.72/2.73 difference of the same request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from e2e_helpers import OPENSTACK, Daemon

pytestmark = [
    pytest.mark.cli,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.skipif(not OPENSTACK.exists(), reason="python-openstackclient not installed"),
]

V = "/compute/v2.1"


def at(version: str) -> dict[str, str]:
    return {"OpenStack-API-Version": f"compute {version}"}


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def server(novad: Daemon) -> AsyncIterator[str]:
    """An active server of the admin project (its id)."""
    await novad.upload_image("img")
    created = await novad.cli_json("server", "create", "--flavor", "m1.nano", "--image", "img",
                                   "--wait", "vm1")
    yield str(created["id"])


async def call(d: Daemon, method: str, path: str, version: str, body: Any = None
               ) -> tuple[int, Any]:
    return await d.call(method, V + path, await d.token(), json_body=body, headers=at(version))


async def test_2_73_lock_reason_through_the_cli(novad: Daemon, server: str) -> None:
    await novad.cli("server", "lock", "--reason", "disk swap", "vm1")
    shown = await novad.cli_json("server", "show", "vm1")
    assert shown["locked"] is True or str(shown["locked"]) == "True"
    assert shown["locked_reason"] == "disk swap"
    listed = await novad.cli_json("server", "list", "--locked")
    assert [row["ID"] for row in listed] == [server]
    assert await novad.cli_json("server", "list", "--unlocked") == []
    await novad.cli("server", "unlock", "vm1")
    shown = await novad.cli_json("server", "show", "vm1")
    assert (str(shown["locked"]), shown["locked_reason"]) == ("False", None)


async def test_2_73_same_request_both_sides(novad: Daemon, server: str) -> None:
    status, _ = await call(novad, "POST", f"/servers/{server}/action", "2.72",
                           {"lock": {"locked_reason": "maintenance"}})
    assert status == 400
    status, _ = await call(novad, "POST", f"/servers/{server}/action", "2.73",
                           {"lock": {"locked_reason": "maintenance"}})
    assert status == 202
    _, before = await call(novad, "GET", f"/servers/{server}", "2.72")
    _, after = await call(novad, "GET", f"/servers/{server}", "2.73")
    assert set(after["server"]) - set(before["server"]) == {"locked_reason"}
    assert after["server"]["locked_reason"] == "maintenance"
    status, _ = await call(novad, "POST", f"/servers/{server}/action", "2.73", {"unlock": None})
    assert status == 202


async def test_2_64_group_rules_through_the_cli(novad: Daemon) -> None:
    created = await novad.cli_json("server", "group", "create", "--policy", "anti-affinity",
                                   "--rule", "max_server_per_host=2", "g64")
    shown = await novad.cli_json("server", "group", "show", created["id"])
    assert (shown["policy"], shown["rules"]) == ("anti-affinity", {"max_server_per_host": 2})
    status, old = await call(novad, "GET", f"/os-server-groups/{created['id']}", "2.63")
    assert (status, old["server_group"]["policies"]) == (200, ["anti-affinity"])
    result = await novad.cli("server", "group", "create", "--policy", "affinity", "--rule",
                             "max_server_per_host=2", "g64b", check=False)
    assert result.returncode != 0 and "Only anti-affinity policy supports rules" in (
        result.stderr + result.stdout)
    await novad.cli("server", "group", "delete", "g64")
