"""The unmodified ``openstack`` CLI against the image API on a real port.

Authentication is keystoneauth's ``admin_token`` plugin (a static token and
endpoint), so no identity service is needed; the test server turns the
token ``p1:member`` into the caller.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from images_helpers import Api

OPENSTACK = Path(sys.executable).parent / "openstack"

pytestmark = [pytest.mark.cli,
              pytest.mark.skipif(not OPENSTACK.exists(),
                                 reason="python-openstackclient not installed")]


async def _openstack(api: Api, home: Path, *args: str, expect_ok: bool = True) -> str:
    """Run ``openstack ARGS`` as an asyncio subprocess (the loop keeps serving)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env.update(OS_AUTH_TYPE="admin_token", OS_TOKEN="p1:member",
               OS_ENDPOINT=f"{api.url}/image", OS_IMAGE_ENDPOINT_OVERRIDE=f"{api.url}/image",
               HOME=str(home), NO_PROXY="*", no_proxy="*")
    proc = await asyncio.create_subprocess_exec(
        str(OPENSTACK), *args, env=env, cwd=home,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    if expect_ok:
        assert proc.returncode == 0, f"openstack {' '.join(args)}: {err.decode()}"
    else:
        assert proc.returncode != 0, f"openstack {' '.join(args)} succeeded: {out.decode()}"
    return out.decode()


async def _json(api: Api, home: Path, *args: str) -> Any:
    return json.loads(await _openstack(api, home, *args, "-f", "json"))


async def test_openstack_cli_image_workflow(api: Api, tmp_path: Path) -> None:
    data = os.urandom(2 * 1024 * 1024 + 3)
    (tmp_path / "disk.qcow2").write_bytes(data)
    created = await _json(api, tmp_path, "image", "create", "--file", "disk.qcow2",
                          "--disk-format", "qcow2", "--container-format", "bare", "cirros")
    assert created["status"] == "active" and created["size"] == len(data)

    listed = await _json(api, tmp_path, "image", "list")
    assert [(i["Name"], i["Status"]) for i in listed] == [("cirros", "active")]

    await _openstack(api, tmp_path, "image", "set", "--property", "os_distro=cirros",
                     "--property", "hw_foo=bar", "--min-ram", "32", "cirros")
    shown = await _json(api, tmp_path, "image", "show", "cirros")
    assert shown["min_ram"] == 32
    assert shown["properties"]["os_distro"] == "cirros"
    assert shown["properties"]["hw_foo"] == "bar"

    await _openstack(api, tmp_path, "image", "save", "--file", "out.img", "cirros")
    assert (tmp_path / "out.img").read_bytes() == data

    await _openstack(api, tmp_path, "image", "set", "--protected", "cirros")
    await _openstack(api, tmp_path, "image", "delete", "cirros", expect_ok=False)
    await _openstack(api, tmp_path, "image", "set", "--unprotected", "cirros")
    await _openstack(api, tmp_path, "image", "delete", "cirros")
    assert await _json(api, tmp_path, "image", "list") == []
