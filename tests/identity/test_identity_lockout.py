"""Keystone's account lockout: ``[security_compliance]`` failed attempts and
duration, the same 401 for a locked user, and an admin's unlock."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml
from identity_helpers import FakeClock, Server

from novad.config import Config, SecurityComplianceSection
from novad.errors import NotAuthenticated
from novad.identity.service import IdentityService
from novad.identity.tokens import load_or_create_cluster_key
from novad.store.db import Database

UNAUTHORIZED = {"error": {"code": 401, "title": "Unauthorized",
                          "message": "The request you have made requires authentication."}}


async def make_user(server: Server, name: str, password: str) -> str:
    admin = await server.admin_token()
    _, created = await server.call("POST", "/users", admin,
                                   {"user": {"name": name, "password": password}})
    user_id = str(created["user"]["id"])
    _, projects = await server.call("GET", "/projects?name=admin", admin)
    project = projects["projects"][0]["id"]
    _, roles = await server.call("GET", "/roles?name=member", admin)
    role = roles["roles"][0]["id"]
    status, _ = await server.call("PUT", f"/projects/{project}/users/{user_id}/roles/{role}",
                                  admin)
    assert status == 204
    return user_id


async def fail(server: Server, name: str, times: int) -> None:
    for _ in range(times):
        status, _, body = await server.login(name, "wrong-guess", "admin")
        assert (status, body) == (401, UNAUTHORIZED)


async def test_six_wrong_passwords_lock_the_user_out(server: Server, clock: FakeClock) -> None:
    await make_user(server, "alice", "alice-pw")
    await fail(server, "alice", 5)
    status, token, _ = await server.login("alice", "alice-pw", "admin")
    assert status == 201 and token  # five are not enough, and success resets the count
    await fail(server, "alice", 6)
    status, token, body = await server.login("alice", "alice-pw", "admin")
    assert (status, token, body) == (401, None, UNAUTHORIZED)  # same answer as a wrong one
    clock.advance(Config().security_compliance.lockout_duration + 1)
    status, token, _ = await server.login("alice", "alice-pw", "admin")
    assert status == 201 and token


async def test_an_old_run_of_failures_starts_again(server: Server, clock: FakeClock) -> None:
    await make_user(server, "bob", "bob-pw")
    await fail(server, "bob", 5)
    clock.advance(Config().security_compliance.lockout_duration + 1)
    await fail(server, "bob", 5)  # 1..5 again, not 6..10
    status, token, _ = await server.login("bob", "bob-pw", "admin")
    assert status == 201 and token


async def test_an_admin_unlocks_by_enabling_or_setting_a_password(server: Server) -> None:
    user_id = await make_user(server, "carol", "carol-pw")
    await fail(server, "carol", 6)
    admin = await server.admin_token()
    status, _ = await server.call("PATCH", f"/users/{user_id}", admin, {"user": {"enabled": True}})
    assert status == 200
    status, token, _ = await server.login("carol", "carol-pw", "admin")
    assert status == 201 and token
    await fail(server, "carol", 6)
    status, _ = await server.call("PATCH", f"/users/{user_id}", admin,
                                  {"user": {"password": "carol-new"}})
    assert status == 200
    status, token, _ = await server.login("carol", "carol-new", "admin")
    assert status == 201 and token


async def test_zero_attempts_never_locks(db: Database, state_dir: Path, clock: FakeClock) -> None:
    config = dataclasses.replace(Config(), security_compliance=SecurityComplianceSection(
        lockout_failure_attempts=0))
    service = IdentityService(db, config, load_or_create_cluster_key(state_dir), clock=clock)
    await service.bootstrap(state_dir, "http://127.0.0.1:1")
    row = await db.fetch("SELECT id FROM users WHERE name = 'admin'")
    user_id = row[0][0]
    for _ in range(10):
        with pytest.raises(NotAuthenticated):
            await service.authenticate("admin", "wrong-guess", project_name="admin")
    count = await db.fetch("SELECT failed_auth_count FROM users WHERE id = ?", (user_id,))
    assert count[0][0] == 0
    auth = yaml.safe_load((state_dir / "clouds.yaml").read_text())["clouds"]["novad"]["auth"]
    password = auth["password"]
    token, _ = await service.authenticate("admin", password, project_name="admin")
    assert token


async def test_wrong_passwords_keep_cached_token_validations(server: Server) -> None:
    token = await server.admin_token()
    await server.service.validate_token(token)  # now cached
    cached = dict(server.service._cache)
    await fail(server, "admin", 3)
    assert server.service._cache == cached  # the counter is not a token matter
    assert (await server.service.validate_token(token)).user_id
