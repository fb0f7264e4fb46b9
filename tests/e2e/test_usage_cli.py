"""Usage per project (os-simple-tenant-usage) through the real CLI and raw HTTP.

``openstack usage list`` (admin) and ``usage show`` report each project's
servers and their hours; a member sees only its own project's usage.  The
tests run in file order and share the fixtures.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from e2e_helpers import OPENSTACK, Daemon

pytestmark = [
    pytest.mark.cli,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.skipif(not OPENSTACK.exists(), reason="python-openstackclient not installed"),
]


@dataclass
class Member:
    """Project ``pu``'s id and its member's clouds.yaml."""

    project_id: str
    clouds_yaml: Path


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def member(novad: Daemon) -> AsyncIterator[Member]:
    """Two admin servers (one deleted again), and project ``pu`` with one
    server of its member's."""
    await novad.upload_image("img", public=True)
    for name in ("u1", "u2"):
        await novad.cli("server", "create", "--flavor", "m1.nano", "--image", "img", "--wait",
                        name)
    await novad.cli("server", "delete", "--wait", "u2")
    project = await novad.cli_json("project", "create", "pu")
    yaml_path = await novad.add_user("uu", "pu")
    await novad.cli("server", "create", "--flavor", "m1.nano", "--image", "img", "--wait",
                    "u3", clouds_yaml=yaml_path)
    yield Member(project["id"], yaml_path)


def servers(row: dict[str, Any]) -> list[str]:
    """The server names of a ``usage`` row (``-f json`` prints the column raw)."""
    return sorted(s["name"] for s in row["Servers"])


async def test_usage_list_reports_every_project(novad: Daemon, member: Member) -> None:
    admin_project = (await novad.cli_json("project", "show", "admin"))["id"]
    rows = {row["Project"]: row for row in await novad.cli_json("usage", "list")}
    assert set(rows) == {admin_project, member.project_id}
    assert servers(rows[admin_project]) == ["u1", "u2"]
    assert servers(rows[member.project_id]) == ["u3"]
    for row in rows.values():
        assert row["CPU Hours"] >= 0 and row["RAM MB-Hours"] >= 0
    table = (await novad.cli("usage", "list")).stdout
    assert "| admin " in table and "| pu " in table  # names, from the identity API


async def test_usage_show_lists_the_servers_and_their_hours(novad: Daemon,
                                                           member: Member) -> None:
    shown = await novad.cli_json("usage", "show", "--project", "admin")
    assert servers(shown) == ["u1", "u2"]
    token = await novad.token()
    status, body = await novad.call(
        "GET", f"/compute/v2.1/os-simple-tenant-usage/{member.project_id}"
        "?start=2026-01-01T00:00:00&end=2999-01-01T00:00:00", token)
    assert status == 200, body
    (server,) = body["tenant_usage"]["server_usages"]
    assert (server["name"], server["state"], server["flavor"], server["vcpus"],
            server["memory_mb"], server["ended_at"]) == ("u3", "active", "m1.nano", 1, 64, None)
    assert server["hours"] > 0
    assert body["tenant_usage"]["total_hours"] == server["hours"]
    assert body["tenant_usage"]["total_memory_mb_usage"] == 64 * server["hours"]


async def test_a_member_sees_only_its_own_project(novad: Daemon, member: Member) -> None:
    shown = await novad.cli_json("usage", "show", clouds_yaml=member.clouds_yaml)
    assert servers(shown) == ["u3"]
    refused = await novad.cli("usage", "list", clouds_yaml=member.clouds_yaml, check=False)
    assert refused.returncode != 0
    token = await novad.token("uu", "pw-uu", "pu")
    admin_project = (await novad.cli_json("project", "show", "admin"))["id"]
    status, body = await novad.call(
        "GET", f"/compute/v2.1/os-simple-tenant-usage/{admin_project}", token)
    assert status == 403, body
    assert "os-simple-tenant-usage:show" in body["forbidden"]["message"]


@pytest.mark.parametrize(("query", "message"), [
    ("start=yesterday&end=2030-01-01T00:00:00",
     "Invalid datetime string: Datetime is in invalid format"),
    ("start=2030-01-02T00:00:00&end=2030-01-01T00:00:00",
     "Invalid start time. The start time cannot occur after the end time."),
])
async def test_bad_periods_are_400(novad: Daemon, member: Member, query: str,
                                   message: str) -> None:
    status, body = await novad.call("GET", f"/compute/v2.1/os-simple-tenant-usage?{query}",
                                    await novad.token())
    assert status == 400, body
    assert body["badRequest"]["message"] == message
