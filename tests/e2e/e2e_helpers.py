"""Shared helpers of the end-to-end tests: a whole novad on a real port, and
the unmodified ``openstack`` CLI pointed at it.

The daemon runs in the test process (its libvirt is ``test:///default``,
whose domains exist only inside this process); the CLI runs as an asyncio
subprocess so the event loop keeps serving the API while it works.  The
module name is its own because several test folders have a ``conftest``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from novad.app import Node, running
from novad.config import load

OPENSTACK = Path(sys.executable).parent / "openstack"
"""The python-openstackclient entry point of this venv."""

CLI_TIMEOUT = 120.0
"""Seconds one CLI call may take before the test fails (start-up is ~1 s)."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago.

    Port 0 cannot be passed to the daemon: the clouds.yaml written at the
    first start would carry port 0.
    """
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class CliResult:
    """One finished CLI call."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        """stdout parsed as JSON (``-f json`` output)."""
        return json.loads(self.stdout)


@dataclass
class Daemon:
    """A running novad, its admin credentials, and a way to drive it."""

    node: Node
    url: str
    state_dir: Path
    home: Path
    clouds_yaml: Path
    admin_password: str
    session: aiohttp.ClientSession

    async def cli(self, *args: str, cloud: str = "novad", clouds_yaml: Path | None = None,
                  check: bool = True) -> CliResult:
        """``openstack --os-cloud CLOUD ARGS``; fails the test on a non-zero exit
        unless ``check`` is False."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        env.update(OS_CLIENT_CONFIG_FILE=str(clouds_yaml or self.clouds_yaml),
                   HOME=str(self.home), NO_PROXY="*", no_proxy="*")
        proc = await asyncio.create_subprocess_exec(
            str(OPENSTACK), "--os-cloud", cloud, *args, env=env, cwd=self.home,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), timeout=CLI_TIMEOUT)
        result = CliResult(args, proc.returncode or 0, out.decode(), err.decode())
        if check:
            assert result.returncode == 0, \
                f"openstack {' '.join(args)} failed:\n{result.stderr}{result.stdout}"
        return result

    async def cli_json(self, *args: str, **kwargs: Any) -> Any:
        """``cli(ARGS -f json)`` parsed."""
        return (await self.cli(*args, "-f", "json", **kwargs)).json()

    async def token(self, user: str = "admin", password: str | None = None,
                    project: str = "admin") -> str:
        """A project-scoped token from ``POST /identity/v3/auth/tokens``."""
        auth = {"identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"name": "Default"},
            "password": self.admin_password if password is None else password}}},
            "scope": {"project": {"name": project, "domain": {"name": "Default"}}}}
        async with self.session.post(f"{self.url}/identity/v3/auth/tokens",
                                     json={"auth": auth}) as resp:
            assert resp.status == 201, await resp.text()
            return resp.headers["X-Subject-Token"]

    async def call(self, method: str, path: str, token: str | None, *, json_body: Any = None,
                   data: Any = None, headers: dict[str, str] | None = None
                   ) -> tuple[int, Any]:
        """One raw request; (status, JSON body, or text, or None when empty)."""
        hdrs = dict(headers or {})
        if token is not None:
            hdrs["X-Auth-Token"] = token
        async with self.session.request(method, self.url + path, json=json_body, data=data,
                                        headers=hdrs, allow_redirects=False) as resp:
            raw = await resp.read()
            if not raw:
                return resp.status, None
            try:
                return resp.status, json.loads(raw)
            except ValueError:
                return resp.status, raw.decode(errors="replace")

    async def add_user(self, name: str, project: str, role: str = "member") -> Path:
        """User ``name`` (password ``pw-<name>``) with ``role`` on ``project``,
        made by the admin through the CLI; the path of its clouds.yaml."""
        password = f"pw-{name}"
        await self.cli("user", "create", "--project", project, "--password", password, name)
        await self.cli("role", "add", "--user", name, "--project", project, role)
        return self.write_clouds_yaml(name, name, password, project)

    async def upload_image(self, name: str, *, public: bool = False) -> None:
        """Image ``name`` from :func:`make_disk`, uploaded through the CLI."""
        path, disk_format = make_disk(self.home)
        await self.cli("image", "create", *(("--public",) if public else ()), "--file",
                       path.name, "--disk-format", disk_format, "--container-format", "bare",
                       name)

    def write_clouds_yaml(self, name: str, user: str, password: str, project: str) -> Path:
        """A clouds.yaml with one cloud ``novad`` for another user; its path."""
        data = yaml.safe_load(self.clouds_yaml.read_text())
        entry = data["clouds"]["novad"]
        entry["auth"].update(username=user, password=password, project_name=project)
        path = self.state_dir.parent / f"clouds-{name}.yaml"
        path.write_text(yaml.safe_dump(data))
        return path


@contextlib.asynccontextmanager
async def daemon(tmp: Path) -> AsyncIterator[Daemon]:
    """A fresh novad on a free port with short timers, for one test module."""
    state = tmp / "state"
    home = tmp / "home"
    home.mkdir(parents=True, exist_ok=True)
    config = load(None, {
        "DEFAULT": {"state_dir": str(state), "listen": f"127.0.0.1:{free_port()}",
                    "shutdown_timeout": 2, "shelved_offload_time": -1},
        "compute": {"shutdown_retry_interval": 1},
        "libvirt": {"wait_soft_reboot_seconds": 2},
    })
    async with running(config) as (node, url):
        clouds_yaml = state / "clouds.yaml"
        password = yaml.safe_load(clouds_yaml.read_text())["clouds"]["novad"]["auth"]["password"]
        async with aiohttp.ClientSession() as session:
            yield Daemon(node, url, state, home, clouds_yaml, password, session)


async def wait_settled(d: Daemon, server: str, timeout: float = 60.0,
                       **cli: Any) -> dict[str, Any]:
    """``server show`` polled until ``OS-EXT-STS:task_state`` is null; its JSON.

    The timeout only bounds a hang; no test asserts how long a step took.
    """
    deadline = time.monotonic() + timeout
    while True:
        shown: dict[str, Any] = await d.cli_json("server", "show", server, **cli)
        if shown.get("OS-EXT-STS:task_state") is None:
            return shown
        if time.monotonic() > deadline:
            raise AssertionError(f"{server} still busy after {timeout} s: "
                                 f"{shown.get('status')} {shown.get('OS-EXT-STS:task_state')}")
        await asyncio.sleep(0.5)


def states(shown: dict[str, Any]) -> tuple[str, str | None, int | None]:
    """(status, task_state, power_state) of a ``server show -f json``."""
    return (shown["status"], shown.get("OS-EXT-STS:task_state"),
            shown.get("OS-EXT-STS:power_state"))


def make_disk(directory: Path, name: str = "x.img") -> tuple[Path, str]:
    """A small disk image to upload, and its disk_format.

    A real (empty) 16 MiB qcow2 when ``qemu-img`` is there, so the driver
    sees a real image; otherwise a 1 MiB raw file, which it takes as well.
    """
    path = directory / name
    if shutil.which("qemu-img"):
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "16M"],
                       check=True)
        return path, "qcow2"
    path.write_bytes(bytes(1 << 20))
    return path, "raw"
