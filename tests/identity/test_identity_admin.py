"""Identity administration over HTTP: policy, assignments, users, projects."""

from __future__ import annotations

from typing import Any

import pytest
from identity_helpers import Server

from novad.errors import NotAuthenticated


async def _setup(server: Server, admin: str) -> dict[str, str]:
    """Project p1 and users m (member), r (reader); their ids by name."""
    ids: dict[str, str] = {}
    status, body = await server.call("POST", "/projects", admin,
                                     {"project": {"name": "p1", "description": "one"}})
    assert status == 201, body
    ids["p1"] = body["project"]["id"]
    roles = (await server.call("GET", "/roles", admin))[1]["roles"]
    ids.update({r["name"]: r["id"] for r in roles})
    for name, role in (("m", "member"), ("r", "reader")):
        status, body = await server.call("POST", "/users", admin, {"user": {
            "name": name, "password": f"{name}-pw", "default_project_id": ids["p1"],
            "email": f"{name}@example.org"}})
        assert status == 201, body
        assert body["user"]["email"] == f"{name}@example.org"
        assert "password" not in body["user"]
        ids[name] = body["user"]["id"]
        status, _ = await server.call(
            "PUT", f"/projects/{ids['p1']}/users/{ids[name]}/roles/{ids[role]}", admin)
        assert status == 204
    return ids


async def _token(server: Server, user: str, password: str) -> str:
    status, token, body = await server.login(user, password)
    assert status == 201 and token, body
    return token


async def test_member_and_reader_cannot_administer(server: Server) -> None:
    admin = await server.admin_token()
    ids = await _setup(server, admin)
    for name in ("m", "r"):
        token = await _token(server, name, f"{name}-pw")
        status, body = await server.call("POST", "/users", token,
                                         {"user": {"name": f"evil-{name}", "password": "x"}})
        assert status == 403
        assert body["error"]["code"] == 403 and body["error"]["title"] == "Forbidden"
        for path in ("/users", "/projects", "/roles", "/role_assignments"):
            assert (await server.call("GET", path, token))[0] == 403, path
        status, body = await server.call("GET", f"/users/{ids[name]}", token)
        assert status == 200 and body["user"]["name"] == name
        assert (await server.call("GET", f"/users/{ids['m' if name == 'r' else 'r']}",
                                  token))[0] == 403
        status, body = await server.call("GET", "/auth/projects", token)
        assert [p["name"] for p in body["projects"]] == ["p1"]
        status, body = await server.call("GET", f"/role_assignments?user.id={ids[name]}",
                                         token)
        assert status == 200 and len(body["role_assignments"]) == 1


async def test_role_add_and_remove_change_validation(server: Server) -> None:
    admin = await server.admin_token()
    ids = await _setup(server, admin)
    token = await _token(server, "m", "m-pw")
    ctx = await server.service.validate_token(token)
    assert ctx.roles == {"member"} and ctx.can_write and not ctx.is_admin

    grant = f"/projects/{ids['p1']}/users/{ids['m']}/roles"
    assert (await server.call("PUT", f"{grant}/{ids['admin']}", admin))[0] == 204
    assert (await server.service.validate_token(token)).roles == {"member", "admin"}
    assert (await server.call("HEAD", f"{grant}/{ids['admin']}", admin))[0] == 204

    assert (await server.call("DELETE", f"{grant}/{ids['member']}", admin))[0] == 204
    assert (await server.call("DELETE", f"{grant}/{ids['member']}", admin))[0] == 404
    assert (await server.call("HEAD", f"{grant}/{ids['member']}", admin))[0] == 404
    assert (await server.service.validate_token(token)).roles == {"admin"}

    assert (await server.call("DELETE", f"{grant}/{ids['admin']}", admin))[0] == 204
    with pytest.raises(NotAuthenticated):
        await server.service.validate_token(token)
    assert (await server.login("m", "m-pw"))[0] == 401  # no role anywhere


async def test_role_assignment_names(server: Server) -> None:
    admin = await server.admin_token()
    ids = await _setup(server, admin)
    status, body = await server.call(
        "GET", f"/role_assignments?user.id={ids['r']}&scope.project.id={ids['p1']}"
               "&include_names=True&effective=False", admin)
    assert status == 200
    (a,) = body["role_assignments"]
    assert a["role"] == {"id": ids["reader"], "name": "reader"}
    assert a["user"] == {"id": ids["r"], "name": "r",
                         "domain": {"id": "default", "name": "Default"}}
    assert a["scope"]["project"]["name"] == "p1"
    status, body = await server.call("GET", "/role_assignments?group.id=x", admin)
    assert body["role_assignments"] == []


async def test_password_changes_void_earlier_tokens(server: Server) -> None:
    admin = await server.admin_token()
    ids = await _setup(server, admin)
    old = await _token(server, "m", "m-pw")
    path = f"/users/{ids['m']}/password"
    status, _ = await server.call("POST", path, None, {"user": {
        "original_password": "wrong", "password": "new-pw"}})
    assert status == 401
    status, _ = await server.call("POST", path, None, {"user": {
        "original_password": "m-pw", "password": "new-pw"}})
    assert status == 204
    with pytest.raises(NotAuthenticated):
        await server.service.validate_token(old)
    assert (await server.login("m", "m-pw"))[0] == 401
    newer = await _token(server, "m", "new-pw")

    status, _ = await server.call("PATCH", f"/users/{ids['m']}", admin,
                                  {"user": {"enabled": False}})
    assert status == 200
    with pytest.raises(NotAuthenticated):
        await server.service.validate_token(newer)
    assert (await server.login("m", "new-pw"))[0] == 401


async def test_project_lifecycle(server: Server) -> None:
    admin = await server.admin_token()
    ids = await _setup(server, admin)
    status, body = await server.call("POST", "/projects", admin, {"project": {"name": "p1"}})
    assert status == 409 and body["error"]["title"] == "Conflict"
    status, body = await server.call("GET", "/projects?name=p1", admin)
    assert [p["id"] for p in body["projects"]] == [ids["p1"]]
    assert body["projects"][0]["links"]["self"].endswith(f"/identity/v3/projects/{ids['p1']}")
    assert (await server.call("GET", "/projects/p1", admin))[0] == 404

    token = await _token(server, "r", "r-pw")
    status, body = await server.call("PATCH", f"/projects/{ids['p1']}", admin,
                                     {"project": {"description": "renamed", "enabled": False}})
    assert status == 200 and body["project"]["enabled"] is False
    assert (await server.call("GET", "/auth/projects", token))[0] == 401  # disabled project

    assert (await server.call("DELETE", f"/projects/{ids['p1']}", admin))[0] == 204
    assert (await server.call("GET", f"/projects/{ids['p1']}", admin))[0] == 404
    status, body = await server.call("GET", f"/role_assignments?user.id={ids['r']}", admin)
    assert body["role_assignments"] == []


async def test_domains_and_versions(server: Server) -> None:
    admin = await server.admin_token()
    status, body = await server.call("GET", "/domains?name=Default", admin)
    assert [d["id"] for d in body["domains"]] == ["default"]
    assert (await server.call("GET", "/domains?name=Other", admin))[1]["domains"] == []
    assert (await server.call("GET", "/domains/default", admin))[0] == 200
    assert (await server.call("GET", "/domains/Default", admin))[0] == 404
    async with server.session.get(f"{server.url}/identity") as resp:
        versions: dict[str, Any] = await resp.json()
        assert resp.status == 300
    (version,) = versions["versions"]["values"]
    assert version["id"] == "v3.14"
    assert version["links"][0]["href"] == f"{server.url}/identity/v3/"
    for path in ("/identity/v3", "/identity/v3/"):
        async with server.session.get(f"{server.url}{path}") as resp:
            assert resp.status == 200
            assert (await resp.json())["version"]["status"] == "stable"
    assert (await server.call("GET", "/projects", None))[0] == 401
