"""The unmodified ``openstack`` CLI against the identity API on a real port."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from identity_helpers import Server

OPENSTACK = Path(sys.executable).parent / "openstack"

pytestmark = pytest.mark.cli


async def _openstack(server: Server, *args: str, expect_ok: bool = True) -> str:
    """Run ``openstack --os-cloud novad ARGS`` with the bootstrap clouds.yaml.

    Run as an asyncio subprocess so this event loop keeps serving the API.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env.update(OS_CLIENT_CONFIG_FILE=str(server.clouds_yaml),
               HOME=str(server.state_dir), NO_PROXY="*", no_proxy="*")
    proc = await asyncio.create_subprocess_exec(
        str(OPENSTACK), "--os-cloud", "novad", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    if expect_ok:
        assert proc.returncode == 0, f"openstack {' '.join(args)}: {err.decode()}"
    else:
        assert proc.returncode != 0, f"openstack {' '.join(args)} succeeded: {out.decode()}"
    return out.decode()


async def _json(server: Server, *args: str) -> Any:
    return json.loads(await _openstack(server, *args, "-f", "json"))


@pytest.mark.skipif(not OPENSTACK.exists(), reason="python-openstackclient not installed")
async def test_openstack_cli_identity_workflow(server: Server) -> None:
    token = await _json(server, "token", "issue")
    assert token["project_id"] and token["user_id"] and token["id"]

    project = await _json(server, "project", "create", "p2", "--description", "second")
    assert project["name"] == "p2" and project["enabled"] is True

    user = await _json(server, "user", "create", "--project", "p2", "--password", "pw", "u2")
    assert user["name"] == "u2" and user["default_project_id"] == project["id"]

    await _openstack(server, "role", "add", "--user", "u2", "--project", "p2", "member")
    assignments = await _json(server, "role", "assignment", "list", "--user", "u2",
                              "--project", "p2", "--names")
    assert [(a["Role"], a["User"], a["Project"]) for a in assignments] == [
        ("member", "u2@Default", "p2@Default")]

    projects = await _json(server, "project", "list")
    assert sorted(p["Name"] for p in projects) == ["admin", "p2"]

    await _openstack(server, "user", "set", "--password", "pw2", "u2")

    as_u2 = ("--os-username", "u2", "--os-project-name", "p2")
    token = await _json(server, *as_u2, "--os-password", "pw2", "token", "issue")
    assert token["user_id"] == user["id"] and token["project_id"] == project["id"]
    await _openstack(server, *as_u2, "--os-password", "pw", "token", "issue",
                     expect_ok=False)
    assert (await server.login("u2", "pw", "p2"))[0] == 401
    assert (await server.login("u2", "pw2", "p2"))[0] == 201
