"""Who may do what, proven through the real CLI and raw HTTP on a real port.

Authentication (wrong password, no token), project isolation (a member of
project B sees none of project A's servers), roles (a reader cannot
create), locks (a locked server refuses its member and obeys an admin),
and Nova's exact wording for an action in the wrong state and an unknown
action.  The tests run in file order and share the ``cloud`` fixture's
projects, users and server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from e2e_helpers import OPENSTACK, CliResult, Daemon, states, wait_settled

pytestmark = [
    pytest.mark.cli,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.skipif(not OPENSTACK.exists(), reason="python-openstackclient not installed"),
]

PROTECTED = ["/compute/v2.1/servers", "/compute/v2.1/servers/detail", "/compute/v2.1/flavors",
             "/compute/v2.1/os-keypairs", "/v2.1/servers", "/image/v2/images",
             "/identity/v3/projects", "/identity/v3/users", "/identity/v3/auth/tokens"]
"""Routes that need a token (a sample from each API)."""

VERSION_DOCUMENTS = ["/identity", "/identity/v3", "/compute", "/compute/v2.1",
                     "/compute/v2.1/", "/image"]
"""Version discovery: public, 200 or 300."""


@dataclass
class User:
    """A user of the test cloud and how to act as it."""

    name: str
    password: str
    project: str
    clouds_yaml: Path


@dataclass
class Cloud:
    """Projects A and B: A's member and reader, B's member, and A's server."""

    member_a: User
    reader_a: User
    member_b: User
    server_id: str


async def add_user(novad: Daemon, name: str, project: str, role: str) -> User:
    """A user with ``role`` on ``project``, created by the admin through the CLI."""
    clouds_yaml = await novad.add_user(name, project, role)
    return User(name, f"pw-{name}", project, clouds_yaml)


async def as_user(novad: Daemon, user: User, *args: str, check: bool = True) -> CliResult:
    """``openstack ARGS`` as ``user``."""
    return await novad.cli(*args, clouds_yaml=user.clouds_yaml, check=check)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def cloud(novad: Daemon) -> AsyncIterator[Cloud]:
    """Two projects and their users, a public image, and a server in project A."""
    for project in ("pa", "pb"):
        await novad.cli("project", "create", project)
    member_a = await add_user(novad, "ua", "pa", "member")
    reader_a = await add_user(novad, "ra", "pa", "reader")
    member_b = await add_user(novad, "ub", "pb", "member")
    await novad.upload_image("pub", public=True)
    created = (await as_user(novad, member_a, "server", "create", "--flavor", "m1.nano",
                             "--image", "pub", "vmA", "-f", "json")).json()
    shown = await wait_settled(novad, created["id"], clouds_yaml=member_a.clouds_yaml)
    assert states(shown) == ("ACTIVE", None, 1)
    yield Cloud(member_a, reader_a, member_b, created["id"])


async def test_wrong_password_is_401(novad: Daemon) -> None:
    result = await novad.cli("--os-password", "not-the-password", "token", "issue",
                             check=False)
    assert result.returncode != 0
    assert "401" in result.stderr or "authenticat" in result.stderr.lower(), result.stderr
    status, body = await novad.call("POST", "/identity/v3/auth/tokens", None, json_body={
        "auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"id": "default"}, "password": "nope"}}}}})
    assert status == 401 and body["error"]["code"] == 401, body


@pytest.mark.parametrize("path", PROTECTED)
async def test_no_token_is_401(novad: Daemon, path: str) -> None:
    status, body = await novad.call("GET", path, None)
    assert status == 401, (path, status, body)
    assert isinstance(body, dict), body
    status, _ = await novad.call("GET", path, None, headers={"X-Auth-Token": "garbage"})
    assert status == 401, (path, status)


@pytest.mark.parametrize("path", VERSION_DOCUMENTS)
async def test_version_documents_need_no_token(novad: Daemon, path: str) -> None:
    status, body = await novad.call("GET", path, None)
    assert status in (200, 300), (path, status, body)
    assert "version" in body or "versions" in body, body


async def test_other_project_cannot_see_or_act(novad: Daemon, cloud: Cloud) -> None:
    result = await as_user(novad, cloud.member_b, "server", "show", cloud.server_id,
                           check=False)
    assert result.returncode != 0 and "No Server found" in result.stderr, result.stderr
    result = await as_user(novad, cloud.member_b, "server", "stop", cloud.server_id,
                           check=False)
    assert result.returncode != 0 and "No Server found" in result.stderr, result.stderr
    assert (await as_user(novad, cloud.member_b, "server", "list", "-f", "json")).json() == []

    token = await novad.token("ub", cloud.member_b.password, "pb")
    server = f"/compute/v2.1/servers/{cloud.server_id}"
    for method, path, body in [("GET", server, None),
                               ("POST", server + "/action", {"os-stop": None}),
                               ("PUT", server, {"server": {"name": "mine"}}),
                               ("GET", server + "/os-instance-actions", None),
                               ("DELETE", server, None)]:
        status, answer = await novad.call(method, path, token, json_body=body)
        assert status == 404, (method, path, status, answer)
        assert answer["itemNotFound"]["code"] == 404, answer
    shown = await wait_settled(novad, cloud.server_id, clouds_yaml=cloud.member_a.clouds_yaml)
    assert (shown["name"], *states(shown)) == ("vmA", "ACTIVE", None, 1)


async def test_reader_cannot_create(novad: Daemon, cloud: Cloud) -> None:
    result = await as_user(novad, cloud.reader_a, "server", "create", "--flavor", "m1.nano",
                           "--image", "pub", "vmR", check=False)
    assert result.returncode != 0 and "403" in result.stderr, result.stderr
    token = await novad.token("ra", cloud.reader_a.password, "pa")
    status, body = await novad.call("POST", "/compute/v2.1/servers", token, json_body={
        "server": {"name": "vmR", "flavorRef": "42", "imageRef": (await _image_id(novad)),
                   "networks": []}})
    assert status == 403 and body["forbidden"]["code"] == 403, body
    status, body = await novad.call("POST", f"/compute/v2.1/servers/{cloud.server_id}/action",
                                    token, json_body={"os-stop": None})
    assert status == 403 and body["forbidden"]["code"] == 403, body
    names = [s["Name"] for s in (await as_user(novad, cloud.member_a, "server", "list",
                                               "-f", "json")).json()]
    assert names == ["vmA"]


async def _image_id(novad: Daemon) -> str:
    return str((await novad.cli_json("image", "show", "pub"))["id"])


async def test_locked_server_refuses_member_obeys_admin(novad: Daemon, cloud: Cloud) -> None:
    await as_user(novad, cloud.member_a, "server", "lock", cloud.server_id)
    result = await as_user(novad, cloud.member_a, "server", "stop", cloud.server_id,
                           check=False)
    assert result.returncode != 0
    assert "409" in result.stderr and "is locked" in result.stderr, result.stderr

    token = await novad.token("ua", cloud.member_a.password, "pa")
    status, body = await novad.call("POST", f"/compute/v2.1/servers/{cloud.server_id}/action",
                                    token, json_body={"os-stop": None})
    assert (status, body) == (409, {"conflictingRequest": {
        "code": 409, "message": f"Instance {cloud.server_id} is locked"}})

    await novad.cli("server", "stop", cloud.server_id)
    shown = await wait_settled(novad, cloud.server_id)
    assert states(shown) == ("SHUTOFF", None, 4)
    await novad.cli("server", "start", cloud.server_id)
    assert states(await wait_settled(novad, cloud.server_id)) == ("ACTIVE", None, 1)

    await as_user(novad, cloud.member_a, "server", "unlock", cloud.server_id)
    await as_user(novad, cloud.member_a, "server", "stop", cloud.server_id)
    shown = await wait_settled(novad, cloud.server_id, clouds_yaml=cloud.member_a.clouds_yaml)
    assert states(shown) == ("SHUTOFF", None, 4)
    await as_user(novad, cloud.member_a, "server", "start", cloud.server_id)
    shown = await wait_settled(novad, cloud.server_id, clouds_yaml=cloud.member_a.clouds_yaml)
    assert states(shown) == ("ACTIVE", None, 1)


async def test_pause_paused_is_409(novad: Daemon, cloud: Cloud) -> None:
    await novad.cli("server", "pause", cloud.server_id)
    assert states(await wait_settled(novad, cloud.server_id)) == ("PAUSED", None, 3)
    status, body = await novad.call("POST", f"/compute/v2.1/servers/{cloud.server_id}/action",
                                    await novad.token(), json_body={"pause": None})
    assert (status, body) == (409, {"conflictingRequest": {
        "code": 409, "message": f"Cannot 'pause' instance {cloud.server_id} while it is in "
                                "vm_state paused"}})
    await novad.cli("server", "unpause", cloud.server_id)
    assert states(await wait_settled(novad, cloud.server_id)) == ("ACTIVE", None, 1)


async def test_unknown_action_is_400(novad: Daemon, cloud: Cloud) -> None:
    token = (await novad.cli_json("token", "issue"))["id"]
    status, body = await novad.call("POST", f"/compute/v2.1/servers/{cloud.server_id}/action",
                                    token, json_body={"foo": None})
    assert (status, body) == (400, {"badRequest": {
        "code": 400, "message": "There is no such action: foo"}})
