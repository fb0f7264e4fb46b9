"""Per-project quotas (os-quota-sets) through the real CLI and raw HTTP.

An admin sets a project's limits with ``openstack quota set``; the
project's member then meets them on ``server create``, sees them in
``openstack limits show``, and may read but not change them.  Lowering a
limit below the use needs ``--force``; ``openstack quota delete`` returns
the project to the ``[quota]`` defaults.  The tests run in file order and
share the ``project`` fixture.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from e2e_helpers import OPENSTACK, Daemon, states, wait_settled

pytestmark = [
    pytest.mark.cli,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.skipif(not OPENSTACK.exists(), reason="python-openstackclient not installed"),
]


@dataclass
class Project:
    """Project ``pq`` (its id), its member's clouds.yaml and password."""

    id: str
    member_yaml: Path
    member_password: str


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def project(novad: Daemon) -> AsyncIterator[Project]:
    """Project ``pq`` with member ``uq``, and a public image to boot."""
    created = await novad.cli_json("project", "create", "pq")
    member_yaml = await novad.add_user("uq", "pq")
    await novad.upload_image("pub", public=True)
    yield Project(created["id"], member_yaml, "pw-uq")


def compute_quotas(shown: object) -> dict[str, int]:
    """``openstack quota show -f json`` as a dict, whichever shape it prints."""
    if isinstance(shown, list):  # rows of {"Resource": ..., "Limit": ...}
        return {row["Resource"]: row["Limit"] for row in shown}
    assert isinstance(shown, dict), shown
    return {key: value for key, value in shown.items() if isinstance(value, int)}


async def test_defaults_come_from_the_config(novad: Daemon, project: Project) -> None:
    quota = novad.node.config.quota
    shown = compute_quotas(await novad.cli_json("quota", "show", "--compute", "pq"))
    assert (shown["instances"], shown["cores"], shown["ram"]) == (
        quota.instances, quota.cores, quota.ram)
    token = await novad.token()
    status, body = await novad.call("GET", f"/compute/v2.1/os-quota-sets/{project.id}/defaults",
                                    token)
    assert status == 200, body
    assert body["quota_set"]["id"] == project.id
    assert body["quota_set"]["instances"] == quota.instances
    assert body["quota_set"]["key_pairs"] == 100


async def test_admin_sets_limits_and_the_member_meets_them(novad: Daemon,
                                                           project: Project) -> None:
    await novad.cli("quota", "set", "--instances", "1", "--cores", "3", "--ram", "1024", "pq")
    shown = compute_quotas(await novad.cli_json("quota", "show", "--compute", "pq"))
    assert (shown["instances"], shown["cores"], shown["ram"]) == (1, 3, 1024)

    created = await novad.cli_json("server", "create", "--flavor", "m1.nano", "--image", "pub",
                                   "vq1", clouds_yaml=project.member_yaml)
    settled = await wait_settled(novad, created["id"], clouds_yaml=project.member_yaml)
    assert states(settled) == ("ACTIVE", None, 1)
    refused = await novad.cli("server", "create", "--flavor", "m1.nano", "--image", "pub",
                              "vq2", clouds_yaml=project.member_yaml, check=False)
    assert refused.returncode != 0, refused.stdout
    assert "Quota exceeded for instances" in refused.stderr, refused.stderr

    limits = await novad.cli_json("limits", "show", "--absolute",
                                  clouds_yaml=project.member_yaml)
    values = {row["Name"]: row["Value"] for row in limits}  # openstacksdk's names
    assert values["max_total_instances"] == 1 and values["total_instances_used"] == 1
    assert values["max_total_cores"] == 3 and values["total_cores_used"] == 1
    assert values["max_total_ram_size"] == 1024 and values["total_ram_used"] == 64

    token = await novad.token()
    status, body = await novad.call("GET", f"/compute/v2.1/os-quota-sets/{project.id}/detail",
                                    token)
    assert status == 200, body
    assert body["quota_set"]["instances"] == {"in_use": 1, "limit": 1, "reserved": 0}
    assert body["quota_set"]["ram"] == {"in_use": 64, "limit": 1024, "reserved": 0}


async def test_another_project_keeps_the_defaults(novad: Daemon, project: Project) -> None:
    admin_project = (await novad.cli_json("project", "show", "admin"))["id"]
    token = await novad.token()
    status, body = await novad.call("GET", f"/compute/v2.1/os-quota-sets/{admin_project}",
                                    token)
    assert status == 200, body
    assert body["quota_set"]["instances"] == novad.node.config.quota.instances


async def test_member_reads_but_cannot_change(novad: Daemon, project: Project) -> None:
    token = await novad.token("uq", project.member_password, "pq")
    status, body = await novad.call("GET", f"/compute/v2.1/os-quota-sets/{project.id}", token)
    assert status == 200 and body["quota_set"]["instances"] == 1, body
    status, body = await novad.call("PUT", f"/compute/v2.1/os-quota-sets/{project.id}", token,
                                    json_body={"quota_set": {"instances": 50}})
    assert status == 403 and "os-quota-sets:update" in body["forbidden"]["message"], body
    status, body = await novad.call("DELETE", f"/compute/v2.1/os-quota-sets/{project.id}",
                                    token)
    assert status == 403, body
    admin_project = (await novad.cli_json("project", "show", "admin"))["id"]
    status, body = await novad.call("GET", f"/compute/v2.1/os-quota-sets/{admin_project}",
                                    token)
    assert status == 403 and "os-quota-sets:show" in body["forbidden"]["message"], body
    shown = compute_quotas(await novad.cli_json("quota", "show", "--compute", "pq"))
    assert shown["instances"] == 1


async def test_lowering_below_use_needs_force(novad: Daemon, project: Project) -> None:
    token = await novad.token()
    path = f"/compute/v2.1/os-quota-sets/{project.id}"
    status, body = await novad.call("PUT", path, token,
                                    json_body={"quota_set": {"instances": 0}})
    assert status == 400, body
    assert body["badRequest"]["message"] == (
        "Quota limit 0 for instances must be greater than or equal to already used and "
        "reserved 1.")
    status, body = await novad.call("PUT", path, token,
                                    json_body={"quota_set": {"instances": "0", "force": True}})
    assert status == 200, body
    assert body["quota_set"]["instances"] == 0 and "id" not in body["quota_set"]
    shown = compute_quotas(await novad.cli_json("quota", "show", "--compute", "pq"))
    assert shown["instances"] == 0


@pytest.mark.parametrize(("body", "words"), [
    ({"quota_set": {"key_pairs": 5}}, "Quota key_pairs cannot be changed in novad"),
    ({"quota_set": {"instances": -2}}, "Invalid input for field/attribute quota_set/instances"),
    ({"quota_set": {"instances": "-7"}}, "quota_set/instances. Value: -7. -7 is not between -1 and"),
    ({"quota_set": {"instances": "many"}}, "Invalid input for field/attribute quota_set/instances"),
    ({"quota_set": {"widgets": 1}}, "Additional properties are not allowed"),
    ({"quota": {"instances": 1}}, "Invalid input"),
])
async def test_bad_updates_are_400(novad: Daemon, project: Project, body: object,
                                   words: str) -> None:
    token = await novad.token()
    status, answer = await novad.call("PUT", f"/compute/v2.1/os-quota-sets/{project.id}",
                                      token, json_body=body)
    assert status == 400, answer
    assert words in answer["badRequest"]["message"], answer


async def test_unknown_project_and_per_user_quotas_are_400(novad: Daemon,
                                                          project: Project) -> None:
    token = await novad.token()
    status, body = await novad.call("GET", "/compute/v2.1/os-quota-sets/no-such-project", token)
    assert status == 400, body
    assert body["badRequest"]["message"] == "Project ID no-such-project is not a valid project."
    status, body = await novad.call(
        "GET", f"/compute/v2.1/os-quota-sets/{project.id}?user_id=someone", token)
    assert status == 400 and "Per-user quotas" in body["badRequest"]["message"], body


async def test_delete_returns_to_the_defaults(novad: Daemon, project: Project) -> None:
    await novad.cli("quota", "delete", "--compute", "pq")
    shown = compute_quotas(await novad.cli_json("quota", "show", "--compute", "pq"))
    assert shown["instances"] == novad.node.config.quota.instances
    created = await novad.cli_json("server", "create", "--flavor", "m1.nano", "--image", "pub",
                                   "vq2", clouds_yaml=project.member_yaml)
    settled = await wait_settled(novad, created["id"], clouds_yaml=project.member_yaml)
    assert states(settled) == ("ACTIVE", None, 1)
