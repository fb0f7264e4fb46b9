#!/usr/bin/env python3
"""The Compute API under load, against the service layer measured in the same run.

A real daemon (test:///default) on a real port; 50 concurrent HTTP clients
cycle pause/unpause over 200 servers (each client waits for its server's
action to finish before the next: polls ``GET /servers/{id}``), then
``GET /servers/detail`` is timed with 1,000 servers.  The baseline is the
same pause/unpause cycles through ``ComputeService.act`` with no HTTP.

Prints accept latency p50/p99 (time to the 202), completed actions/s and
list latency.  Run: ``.venv/bin/python scripts/bench/api.py``
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# scripts/bench/transitions.py would shadow the ``transitions`` library.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import aiohttp  # noqa: E402
import structlog  # noqa: E402

from novad import config as config_mod
from novad.app import running
from novad.compute.interface import CreateRequest
from novad.context import RequestContext


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pct(values: list[float], q: float) -> float:
    """The q-quantile in milliseconds."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def token(session: aiohttp.ClientSession, base: str, password: str) -> str:
    """An admin token."""
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"name": "Default"}, "password": password}}},
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}
    async with session.post(f"{base}/identity/v3/auth/tokens", json=body) as resp:
        assert resp.status == 201, await resp.text()
        return resp.headers["X-Subject-Token"]


async def http_cycles(session: aiohttp.ClientSession, base: str, uuids: list[str],
                      clients: int, cycles: int) -> tuple[float, list[float]]:
    """pause/unpause over HTTP; returns completed actions/s and accept latencies."""
    accept: list[float] = []

    async def client(mine: list[str]) -> None:
        for _ in range(cycles):
            for uuid in mine:
                for action in ("pause", "unpause"):
                    t0 = time.perf_counter()
                    async with session.post(f"{base}/compute/v2.1/servers/{uuid}/action",
                                            json={action: None}) as resp:
                        assert resp.status == 202, await resp.text()
                    accept.append(time.perf_counter() - t0)
                    await wait_idle(session, base, uuid)

    start = time.perf_counter()
    await asyncio.gather(*(client(uuids[i::clients]) for i in range(clients)))
    return len(accept) / (time.perf_counter() - start), accept


async def wait_idle(session: aiohttp.ClientSession, base: str, uuid: str) -> None:
    """Poll until the server has no task."""
    while True:
        async with session.get(f"{base}/compute/v2.1/servers/{uuid}") as resp:
            server = (await resp.json())["server"]
        if server["OS-EXT-STS:task_state"] is None:
            return
        await asyncio.sleep(0.05)


async def service_cycles(node: Any, uuids: list[str], clients: int,
                         cycles: int) -> float:
    """The same cycles through the service layer; completed actions/s."""
    done = 0

    async def client(mine: list[str]) -> None:
        nonlocal done
        for _ in range(cycles):
            for uuid in mine:
                for action in ("pause", "unpause"):
                    result = await node.compute.act(RequestContext.admin(), uuid, action, {})
                    await result.done
                    done += 1

    start = time.perf_counter()
    await asyncio.gather(*(client(uuids[i::clients]) for i in range(clients)))
    return done / (time.perf_counter() - start)


async def boot(node: Any, count: int) -> list[str]:
    """Boot ``count`` servers through the service and wait for them."""
    ctx = RequestContext(user_id="bench", project_id="bench", roles=frozenset({"admin"}))
    made = await node.compute.create(ctx, CreateRequest(name="b", flavor_id="42", image_id="",
                                                        min_count=count, max_count=count))
    await node.supervisor.drain()
    return [inst.uuid for inst in made]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=200)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--listed", type=int, default=1000)
    parser.add_argument("--cycles", type=int, default=2)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    with tempfile.TemporaryDirectory() as tmp:
        cfg = config_mod.load(None, {"DEFAULT": {"state_dir": tmp,
                                                 "listen": f"127.0.0.1:{free_port()}"},
                                     "quota": {"instances": -1, "cores": -1, "ram": -1}})
        async with running(cfg) as (node, base):
            password = _password(Path(tmp) / "clouds.yaml")
            uuids = await boot(node, args.servers)
            conn = aiohttp.TCPConnector(limit=args.clients)
            async with aiohttp.ClientSession(connector=conn) as session:
                session.headers["X-Auth-Token"] = await token(session, base, password)
                service_rate = await service_cycles(node, uuids, args.clients, args.cycles)
                rate, accept = await http_cycles(session, base, uuids, args.clients, args.cycles)
                await boot(node, args.listed - args.servers)
                listing = []
                for _ in range(20):
                    t0 = time.perf_counter()
                    async with session.get(f"{base}/compute/v2.1/servers/detail?all_tenants=1") as resp:
                        servers = (await resp.json())["servers"]
                    listing.append(time.perf_counter() - t0)
    print(f"servers={args.servers} clients={args.clients} actions={len(accept)}")
    print(f"service layer: completed actions/s={service_rate:.0f}")
    print(f"http: completed actions/s={rate:.0f} (ratio to service {rate / service_rate:.2f}) "
          f"accept p50={pct(accept, .5):.2f}ms p99={pct(accept, .99):.2f}ms")
    print(f"GET /servers/detail with {len(servers)} servers: p50={pct(listing, .5):.1f}ms "
          f"p99={pct(listing, .99):.1f}ms")


def _password(clouds: Path) -> str:
    import yaml
    data = yaml.safe_load(clouds.read_text())
    return str(data["clouds"]["novad"]["auth"]["password"])


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
