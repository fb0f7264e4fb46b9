"""Passwords, tokens, revocation, the cluster key and bootstrap."""

from __future__ import annotations

import base64
import re
import stat
from pathlib import Path

import pytest
import yaml
from identity_helpers import FakeClock, Server

from novad.config import Config, IdentitySection
from novad.errors import NotAuthenticated
from novad.identity import passwords
from novad.identity.service import IdentityService
from novad.identity.tokens import load_or_create_cluster_key
from novad.store.db import Database

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def test_password_hash_hides_the_password_and_verifies() -> None:
    secret = "correct horse battery staple"
    stored = passwords.hash_password(secret)
    assert stored.startswith(f"scrypt${2**14}$8$1$")
    assert secret not in stored
    assert base64.b64encode(secret.encode()).decode() not in stored
    assert passwords.verify_password(secret, stored)
    assert not passwords.verify_password(secret + "x", stored)
    assert not passwords.verify_password(secret, None)
    assert not passwords.verify_password(secret, "garbage")
    assert passwords.hash_password(secret) != stored  # fresh salt each time


def test_cluster_key_is_created_private_and_reused(tmp_path: Path) -> None:
    key = load_or_create_cluster_key(tmp_path)
    path = tmp_path / "cluster.key"
    assert len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_cluster_key(tmp_path) == key


async def test_wrong_password_is_401_in_keystone_shape(server: Server) -> None:
    status, token, body = await server.login("admin", "not-the-password", "admin")
    assert status == 401 and token is None
    assert body == {"error": {"code": 401, "title": "Unauthorized", "message":
                              "The request you have made requires authentication."}}
    status, _, _ = await server.login("nobody", "x")
    assert status == 401


async def test_token_round_trip(server: Server) -> None:
    status, token, body = await server.login("admin", server.admin_password, "admin")
    assert status == 201 and token
    t = body["token"]
    assert t["user"]["name"] == "admin"
    assert t["user"]["domain"] == {"id": "default", "name": "Default"}
    assert t["project"]["name"] == "admin"
    assert [r["name"] for r in t["roles"]] == ["admin"]
    assert ISO_Z.match(t["expires_at"]) and ISO_Z.match(t["issued_at"])
    assert {e["type"] for e in t["catalog"]} == {"identity", "compute", "image"}
    identity = next(e for e in t["catalog"] if e["type"] == "identity")
    public = next(ep for ep in identity["endpoints"] if ep["interface"] == "public")
    assert public["url"] == f"{server.url}/identity/v3"
    assert public["region_id"] == "RegionOne"

    status, checked = await server.call("GET", "/auth/tokens", token,
                                        headers={"X-Subject-Token": token})
    assert status == 200
    assert checked["token"]["audit_ids"] == t["audit_ids"]
    assert checked["token"]["expires_at"] == t["expires_at"]
    status, _ = await server.call("HEAD", "/auth/tokens", token,
                                  headers={"X-Subject-Token": token})
    assert status == 200
    ctx = await server.service.validate_token(token)
    assert ctx.user_name == "admin" and ctx.is_admin


async def test_unscoped_login_uses_the_default_project(server: Server) -> None:
    status, _, body = await server.login("admin", server.admin_password)
    assert status == 201
    assert body["token"]["project"]["name"] == "admin"


async def test_expired_token_is_refused(db: Database, state_dir: Path,
                                        clock: FakeClock, server: Server) -> None:
    short = IdentityService(db, Config(identity=IdentitySection(token_expiration=1)),
                            load_or_create_cluster_key(state_dir), clock=clock)
    token, _ = await short.authenticate("admin", server.admin_password, project_name="admin")
    await short.validate_token(token)
    clock.advance(1.5)
    with pytest.raises(NotAuthenticated):
        await short.validate_token(token)
    # The HTTP path refuses it as well, through the server's own service.
    status, _ = await server.call("GET", "/projects", token)
    assert status == 401


async def test_revoked_token_is_refused(server: Server) -> None:
    admin = await server.admin_token()
    victim = await server.admin_token()
    assert (await server.call("GET", "/projects", victim))[0] == 200  # now cached
    status, _ = await server.call("DELETE", "/auth/tokens", victim,
                                  headers={"X-Subject-Token": victim})
    assert status == 204
    assert (await server.call("GET", "/projects", victim))[0] == 401
    status, body = await server.call("GET", "/auth/tokens", admin,
                                     headers={"X-Subject-Token": victim})
    assert status == 404 and body["error"]["title"] == "Not Found"
    assert (await server.call("GET", "/projects", admin))[0] == 200


async def test_purge_forgets_only_expired_revocations(server: Server, clock: FakeClock,
                                                      db: Database) -> None:
    token = await server.admin_token()
    await server.service.revoke(token)
    count = "SELECT COUNT(*) FROM revoked_tokens"
    await server.service.purge_revoked()
    assert list(await db.conn.execute_fetchall(count)) == [(1,)]
    clock.advance(3601)
    await server.service.purge_revoked()
    assert list(await db.conn.execute_fetchall(count)) == [(0,)]


async def test_other_node_with_same_cluster_key_accepts_the_token(
        db: Database, state_dir: Path, tmp_path: Path, server: Server) -> None:
    token = await server.admin_token()
    same = IdentityService(db, Config(), load_or_create_cluster_key(state_dir))
    ctx = await same.validate_token(token)
    assert ctx.user_name == "admin"
    other_dir = tmp_path / "other"
    other = IdentityService(db, Config(), load_or_create_cluster_key(other_dir))
    with pytest.raises(NotAuthenticated):
        await other.validate_token(token)
    with pytest.raises(NotAuthenticated):
        await same.validate_token(token[:-4] + "AAAA")


async def test_rescope_with_the_token_method(server: Server) -> None:
    token = await server.admin_token()
    async with server.session.post(f"{server.url}/identity/v3/auth/tokens", json={"auth": {
            "identity": {"methods": ["token"], "token": {"id": token}},
            "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}) as resp:
        assert resp.status == 201
        new = resp.headers["X-Subject-Token"]
    assert new != token
    assert (await server.service.validate_token(new)).project_name == "admin"


async def test_bootstrap_happens_once(server: Server, service: IdentityService) -> None:
    path = server.clouds_yaml
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    cloud = yaml.safe_load(path.read_text())["clouds"]["novad"]
    assert cloud["auth"]["auth_url"] == f"{server.url}/identity/v3"
    assert cloud["auth"]["username"] == "admin" and len(cloud["auth"]["password"]) == 24
    assert cloud["region_name"] == "RegionOne" and cloud["identity_api_version"] == 3
    before = path.read_text()

    assert await service.bootstrap(server.state_dir, server.url) is None
    assert path.read_text() == before

    # A new public URL rewrites auth_url and keeps the password.
    assert await service.bootstrap(server.state_dir, "http://10.0.0.9:8774/") is None
    moved = yaml.safe_load(path.read_text())["clouds"]["novad"]["auth"]
    assert moved["auth_url"] == "http://10.0.0.9:8774/identity/v3"
    assert moved["password"] == server.admin_password
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    users = await service.list_users(await service.validate_token(await server.admin_token()))
    assert [u.name for u in users] == ["admin"]
