"""From 2.25 on, through a real daemon and the unmodified ``openstack`` CLI
(which negotiates our maximum): server tags (2.26) set, listed, filtered
and unset, and the 2.25/2.26 difference of the same request."""

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
async def servers(novad: Daemon) -> AsyncIterator[tuple[str, str]]:
    """Two active servers of the admin project (their ids)."""
    await novad.upload_image("img")
    ids = []
    for name in ("vm1", "vm2"):
        created = await novad.cli_json("server", "create", "--flavor", "m1.nano", "--image",
                                       "img", "--wait", name)
        ids.append(str(created["id"]))
    yield ids[0], ids[1]


async def call(d: Daemon, method: str, path: str, version: str, body: Any = None
               ) -> tuple[int, Any]:
    return await d.call(method, V + path, await d.token(), json_body=body, headers=at(version))


async def test_2_26_tags_through_the_cli(novad: Daemon, servers: tuple[str, str]) -> None:
    vm1, vm2 = servers
    await novad.cli("server", "set", "--tag", "a", "--tag", "b", vm1)
    await novad.cli("server", "set", "--tag", "b", vm2)
    assert sorted((await novad.cli_json("server", "show", vm1))["tags"]) == ["a", "b"]
    listed = await novad.cli_json("server", "list", "--tags", "a")
    assert [row["ID"] for row in listed] == [vm1]
    listed = await novad.cli_json("server", "list", "--tags", "b")
    assert {row["ID"] for row in listed} == {vm1, vm2}
    listed = await novad.cli_json("server", "list", "--not-tags", "a")
    assert [row["ID"] for row in listed] == [vm2]
    await novad.cli("server", "unset", "--tag", "a", vm1)
    assert (await novad.cli_json("server", "show", vm1))["tags"] == ["b"]


async def test_2_26_same_request_both_sides(novad: Daemon, servers: tuple[str, str]) -> None:
    vm1, _ = servers
    status, _ = await call(novad, "GET", f"/servers/{vm1}/tags", "2.25")
    assert status == 404
    status, body = await call(novad, "PUT", f"/servers/{vm1}/tags", "2.26", {"tags": ["t"]})
    assert (status, body) == (200, {"tags": ["t"]})
    status, before = await call(novad, "GET", f"/servers/{vm1}", "2.25")
    status, after = await call(novad, "GET", f"/servers/{vm1}", "2.26")
    assert set(after["server"]) - set(before["server"]) == {"tags"}
    assert after["server"]["tags"] == ["t"]
