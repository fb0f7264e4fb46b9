"""Server groups (os-server-groups) through the unmodified ``openstack`` CLI:
create with a policy, list, show by name, delete; another project's member
neither sees nor deletes the group.  The tests run in file order and share
the fixture."""

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


def policy(shown: dict[str, Any]) -> str:
    """The group's policy as the CLI shows it: ``policy`` from 2.64 (which
    it negotiates when we serve it), the one-item ``policies`` before."""
    if "policy" in shown or "Policy" in shown:
        return str(shown.get("policy", shown.get("Policy")))
    return str(next(iter(shown.get("policies", shown.get("Policies")))))


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def group(novad: Daemon) -> AsyncIterator[str]:
    """``g1``, an anti-affinity group of the admin project; its id."""
    created = await novad.cli_json("server", "group", "create", "--policy", "anti-affinity",
                                   "g1")
    yield str(created["id"])


async def test_create_shows_the_policy(novad: Daemon, group: str) -> None:
    shown = await novad.cli_json("server", "group", "show", group)
    assert (shown["id"], shown["name"], policy(shown), shown["members"]) == (
        group, "g1", "anti-affinity", [])


async def test_list_and_show_by_name(novad: Daemon, group: str) -> None:
    await novad.cli("server", "group", "create", "--policy", "affinity", "g2")
    rows = await novad.cli_json("server", "group", "list")
    by_name = {r["Name"]: r for r in rows}
    assert set(by_name) == {"g1", "g2"} and by_name["g1"]["ID"] == group
    assert (policy(by_name["g1"]), policy(by_name["g2"])) == ("anti-affinity", "affinity")
    shown = await novad.cli_json("server", "group", "show", "g2")
    assert (shown["id"], policy(shown)) == (by_name["g2"]["ID"], "affinity")


async def test_soft_policies_from_2_15(novad: Daemon, group: str) -> None:
    # The CLI refuses soft policies below 2.15; it negotiates our maximum, past it.
    created = await novad.cli_json("server", "group", "create", "--policy", "soft-affinity",
                                   "g3")
    assert policy(created) == "soft-affinity"


async def test_another_project_sees_nothing(novad: Daemon, group: str) -> None:
    await novad.cli("project", "create", "psg")
    member = await novad.add_user("usg", "psg")
    assert await novad.cli_json("server", "group", "list", clouds_yaml=member) == []
    result = await novad.cli("server", "group", "delete", group, clouds_yaml=member,
                             check=False)
    assert result.returncode != 0
    everyone = await novad.cli_json("server", "group", "list", "--all-projects")
    assert group in {r["ID"] for r in everyone}


async def test_delete(novad: Daemon, group: str) -> None:
    await novad.cli("server", "group", "delete", "g1", "g2", "g3")
    assert await novad.cli_json("server", "group", "list") == []
    result = await novad.cli("server", "group", "show", group, check=False)
    assert result.returncode != 0 and "No ServerGroup found" in result.stderr
