"""The 2.12-2.24 boundaries that need a real server, each the same request
at N-1 and N, and ``openstack server migration list / show / abort /
force complete`` through the unmodified CLI.  A live migration needs two
libvirt daemons (the integration tier), so here abort and force complete
are shown refusing a server that is not migrating, as Nova refuses it.
"""

from __future__ import annotations

import asyncio
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
    """An active server of the admin project (its id), described at create."""
    await novad.upload_image("img")
    created = await novad.cli_json("server", "create", "--flavor", "m1.nano", "--image", "img",
                                   "--description", "first words", "--wait", "mv")
    yield str(created["id"])


async def call(d: Daemon, method: str, path: str, version: str, body: Any = None
               ) -> tuple[int, Any]:
    return await d.call(method, V + path, await d.token(), json_body=body, headers=at(version))


async def show(d: Daemon, server: str, version: str) -> dict[str, Any]:
    status, body = await call(d, "GET", f"/servers/{server}", version)
    assert status == 200, body
    shown: dict[str, Any] = body["server"]
    return shown


async def test_2_14_evacuate_loses_on_shared_storage(novad: Daemon, server: str) -> None:
    body = {"evacuate": {"onSharedStorage": False}}
    status, before = await call(novad, "POST", f"/servers/{server}/action", "2.13", body)
    assert status == 400 and "is still in use" in before["badRequest"]["message"], before
    status, after = await call(novad, "POST", f"/servers/{server}/action", "2.14", body)
    assert status == 400 and "onSharedStorage" in after["badRequest"]["message"], after


async def test_2_16_host_status_for_admins(novad: Daemon, server: str) -> None:
    before, after = await show(novad, server, "2.15"), await show(novad, server, "2.16")
    assert set(after) - set(before) == {"host_status"} and after["host_status"] == "UP"
    status, listed = await call(novad, "GET", "/servers/detail", "2.16")
    assert status == 200 and {s["host_status"] for s in listed["servers"]} == {"UP"}


async def test_2_17_trigger_crash_dump_appears(novad: Daemon, server: str) -> None:
    body = {"trigger_crash_dump": None}
    status, _ = await call(novad, "POST", f"/servers/{server}/action", "2.16", body)
    assert status == 404
    status, answer = await call(novad, "POST", f"/servers/{server}/action", "2.17", body)
    assert status != 404, answer


async def test_2_19_description(novad: Daemon, server: str) -> None:
    before, after = await show(novad, server, "2.18"), await show(novad, server, "2.19")
    assert set(after) - set(before) == {"description"}
    assert after["description"] == "first words"
    body = {"server": {"description": "second"}}
    status, refused = await call(novad, "PUT", f"/servers/{server}", "2.18", body)
    assert status == 400, refused
    status, updated = await call(novad, "PUT", f"/servers/{server}", "2.19", body)
    assert status == 200 and updated["server"]["description"] == "second"
    await novad.cli("server", "set", "--description", "third", server)
    assert (await novad.cli_json("server", "show", server))["description"] == "third"


async def test_2_21_actions_of_a_deleted_server(novad: Daemon) -> None:
    created = await novad.cli_json("server", "create", "--flavor", "m1.nano", "--image", "img",
                                   "--wait", "gone")
    await novad.cli("server", "delete", "--wait", created["id"])
    path = f"/servers/{created['id']}/os-instance-actions"
    for _ in range(50):
        status, _ = await call(novad, "GET", path, "2.20")
        if status == 404:
            break
        await asyncio.sleep(0.2)
    assert status == 404
    status, body = await call(novad, "GET", path, "2.21")
    assert status == 200 and {a["action"] for a in body["instanceActions"]} >= {
        "create", "delete"}


async def test_2_23_server_migrations_with_the_cli(novad: Daemon, server: str) -> None:
    status, body = await call(novad, "GET", f"/servers/{server}/migrations", "2.23")
    assert (status, body) == (200, {"migrations": []})
    status, _ = await call(novad, "GET", f"/servers/{server}/migrations", "2.22")
    assert status == 404
    rows = await novad.cli_json("server", "migration", "list", "--server", server)
    assert rows == []
    result = await novad.cli("server", "migration", "show", server, "1", check=False)
    assert result.returncode != 0
    assert "found" in (result.stderr + result.stdout).lower()  # 404 either way


@pytest.mark.parametrize("command", [("abort",), ("force", "complete")])
async def test_abort_and_force_complete_refuse_a_server_not_migrating(
        novad: Daemon, server: str, command: tuple[str, ...]) -> None:
    result = await novad.cli("server", "migration", *command, server, "1", check=False)
    assert result.returncode != 0
    assert "while it is in task_state None" in result.stderr + result.stdout
