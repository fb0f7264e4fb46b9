"""Real novad daemons in subprocesses, clustered on loopback.

Each daemon has its own state directory, API port and configuration file;
all share one cluster key; libvirt is the test driver (``test:///default``,
private to each process).  Traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml

NOVAD = [sys.executable, "-m", "novad"]
START_TIMEOUT = 60.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 30.0,
                     what: str = "condition") -> float:
    """Poll ``check`` until it holds; seconds it took.  Fails after ``timeout``
    (a bound on a hang, not a performance figure)."""
    start = time.monotonic()
    while True:
        if await check():
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(f"{what}: not reached within {timeout:.0f} s")
        await asyncio.sleep(0.1)


@dataclass
class Proc:
    """One novad daemon process."""

    name: str
    root: Path
    port: int
    key_file: Path
    seeds: list[str]
    extra: dict[str, dict[str, Any]] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    @property
    def state_dir(self) -> Path:
        return self.root / "state"

    @property
    def config_file(self) -> Path:
        return self.root / "novad.toml"

    def write_config(self) -> None:
        sections: dict[str, dict[str, Any]] = {
            "DEFAULT": {"host": self.name, "state_dir": str(self.state_dir),
                        "listen": self.address, "log_format": "json"},
            "cluster": {"seeds": self.seeds, "key_file": str(self.key_file),
                        "push_pull_interval": 5.0},
            "vnc": {"enabled": False},
        }
        for section, values in self.extra.items():
            sections.setdefault(section, {}).update(values)
        lines = []
        for section, values in sections.items():
            lines.append(f"[{section}]")
            lines += [f"{k} = {json.dumps(v)}" for k, v in values.items()]
        self.config_file.write_text("\n".join(lines) + "\n")

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.write_config()
        log = open(self.root / "novad.log", "ab")  # noqa: SIM115 - the child owns it
        self.process = subprocess.Popen([*NOVAD, "serve", "--config", str(self.config_file)],
                                        stdout=log, stderr=subprocess.STDOUT,
                                        env={**os.environ, "PYTHONUNBUFFERED": "1"})
        log.close()

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def terminate(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def log(self) -> str:
        try:
            return (self.root / "novad.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    async def ready(self, session: aiohttp.ClientSession) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"{self.name} exited {self.process.returncode}:\n{self.log()[-3000:]}")
        try:
            async with session.get(f"{self.url}/healthz") as resp:
                return resp.status == 200
        except aiohttp.ClientError:
            return False

    def members(self) -> list[dict[str, Any]]:
        out = subprocess.run([*NOVAD, "cluster", "members", "--json", "--config",
                              str(self.config_file)], capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        return list(json.loads(out.stdout))

    def states(self) -> dict[str, str]:
        return {m["name"]: m["state"] for m in self.members()}

    def admin_password(self) -> str:
        clouds = yaml.safe_load((self.state_dir / "clouds.yaml").read_text())
        return str(clouds["clouds"]["novad"]["auth"]["password"])


class Api:
    """A thin client of one node's OpenStack API with a token."""

    def __init__(self, session: aiohttp.ClientSession, proc: Proc, token: str) -> None:
        self.session = session
        self.proc = proc
        self.token = token

    async def call(self, method: str, path: str, body: Any = None,
                   data: bytes | None = None, ctype: str = "application/json"
                   ) -> tuple[int, Any]:
        headers = {"X-Auth-Token": self.token}
        kwargs: dict[str, Any] = {}
        if data is not None:
            headers["Content-Type"] = ctype
            kwargs["data"] = data
        elif body is not None:
            kwargs["json"] = body
        async with self.session.request(method, f"{self.proc.url}{path}", headers=headers,
                                        **kwargs) as resp:
            raw = await resp.read()
            try:
                return resp.status, json.loads(raw) if raw else None
            except ValueError:
                return resp.status, raw


async def token(session: aiohttp.ClientSession, proc: Proc, user: str, password: str,
                project: str = "admin") -> str:
    """A project-scoped token issued by ``proc``."""
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": user, "domain": {"id": "default"}, "password": password}}},
        "scope": {"project": {"name": project, "domain": {"id": "default"}}}}}
    async with session.post(f"{proc.url}/identity/v3/auth/tokens", json=body) as resp:
        assert resp.status == 201, await resp.text()
        return resp.headers["X-Subject-Token"]


def launch(root: Path, names: list[str], extra: dict[str, dict[str, Any]] | None = None,
           only: dict[str, dict[str, dict[str, Any]]] | None = None) -> list[Proc]:
    """Start one daemon per name under ``root``, sharing a new cluster key;
    the first starts alone and the others join it.  ``extra`` is config for
    all, ``only`` config for some, by name.  Call :func:`shutdown` after."""
    from novad.cluster.auth import init_key
    key = root / "cluster.key"
    init_key(key)

    def config(name: str) -> dict[str, dict[str, Any]]:
        sections = {k: dict(v) for k, v in (extra or {}).items()}
        for section, values in (only or {}).get(name, {}).items():
            sections.setdefault(section, {}).update(values)
        return sections
    first = Proc(names[0], root / names[0], free_port(), key, [], extra=config(names[0]))
    nodes = [first] + [Proc(n, root / n, free_port(), key, [first.address], extra=config(n))
                       for n in names[1:]]
    for proc in nodes:
        proc.start()
    return nodes


def shutdown(nodes: list[Proc]) -> None:
    """Stop every daemon of :func:`launch`."""
    for proc in nodes:
        proc.terminate()


@contextlib.contextmanager
def running_cluster(root: Path, names: list[str], extra: dict[str, dict[str, Any]] | None = None,
                    only: dict[str, dict[str, dict[str, Any]]] | None = None
                    ) -> Iterator[list[Proc]]:
    """:func:`launch`, then :func:`shutdown` and the files removed (a module fixture's body)."""
    nodes = launch(root, names, extra, only)
    try:
        yield nodes
    finally:
        shutdown(nodes)
        shutil.rmtree(root, ignore_errors=True)


async def converged(procs: list[Proc], session: aiohttp.ClientSession) -> None:
    """Wait until every daemon is ready and sees every other alive."""
    for proc in procs:
        await eventually(lambda p=proc: p.ready(session), 90, f"{proc.name} ready")
    names = {p.name for p in procs}

    async def all_alive() -> bool:
        return all({n for n, st in p.states().items() if st == "alive"} == names for p in procs)
    await eventually(all_alive, 30, "every node sees every other alive")
