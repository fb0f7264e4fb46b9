#!/usr/bin/env python3
"""The Compute API under load, against baselines measured in the same run.

A real daemon (``python -m novad serve``, libvirt test:///default) in its
own process on a real port; 50 concurrent HTTP clients in this process
cycle pause, then unpause, over their share of 200 servers (4 each), each
sending its next request as soon as the last one is answered (a closed
loop: 50 requests always outstanding), then ``GET /servers/detail`` is
timed with 1,000 servers (time to the last byte).  Every server's action
has long ended by the time its client comes back to it; a 409 would be
counted as refused.

Two baselines:

* the same pause/unpause cycles through ``ComputeService.act`` in-process,
  with no HTTP (completed actions/s);
* the HTTP floor: a bare aiohttp server in its own process that reads each
  action request's JSON body and answers 202 with nothing else (no token,
  no database, no libvirt), driven by the same 50 clients.  No handler can
  answer faster than this on this machine, so its latency is the floor for
  novad's accept latency under this load.

The closed loop keeps the daemon saturated, so its accept latency is mostly
queueing: by Little's law the mean is 50 / throughput.  To show the accept
path itself, the same daemon is then driven by an open loop: requests sent at
a fixed rate whatever the answers (``--paced``: 25%, 50% and 75% of the
closed loop's rate), each latency timed from when its request was due.

Forwarding: two daemons form a cluster; the same closed loop runs on
``--forwarded`` servers of one of them, once sent to it directly and once
sent to the other node, which forwards each request to the owner.  The
ratio (forwarded / direct accept latency, and the throughputs) is what a
client pays for not knowing where an instance lives.

Microversions: the closed loop runs at 2.1 and at the newest microversion
served, in turn (three rounds each, on the same daemon and servers, so that
neither side gains from going first), and the list alternates the two
versions request by request (150 of each); the ratios are what the richer
views of today's clients cost.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# scripts/bench/transitions.py would shadow the ``transitions`` library.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import aiohttp  # noqa: E402
import orjson  # noqa: E402
import structlog  # noqa: E402

from novad import config as config_mod
from novad.api.microversion import MAX_MICROVERSION
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
                      clients: int, cycles: int, wait: bool = True,
                      version: str = "2.1") -> tuple[float, list[float]]:
    """Each client cycles pause, then unpause, over its own servers (4 each for
    200/50): by the time it comes back to a server its last action has long
    ended.  A 409 (still busy) would be counted as refused; returns accepted
    actions/s (each later seen finished, unless not ``wait``) and accept
    latencies.  Every request asks for compute microversion ``version``."""
    accept: list[float] = []
    asked = {"OpenStack-API-Version": f"compute {version}"}
    refused = 0

    async def client(mine: list[str]) -> None:
        nonlocal refused
        for _ in range(cycles):
            for action in ("pause", "unpause"):
                for uuid in mine:
                    t0 = time.perf_counter()
                    async with session.post(f"{base}/compute/v2.1/servers/{uuid}/action",
                                            json={action: None}, headers=asked) as resp:
                        await resp.read()
                        ok = resp.status == 202
                    if ok:
                        accept.append(time.perf_counter() - t0)
                    else:
                        refused += 1

    start = time.perf_counter()
    await asyncio.gather(*(client(uuids[i::clients]) for i in range(clients)))
    for uuid in uuids if wait else []:
        await wait_idle(session, base, uuid)
    elapsed = time.perf_counter() - start
    if refused:
        print(f"refused (409, server still busy): {refused}")
    return len(accept) / elapsed, accept


async def paced_cycles(session: aiohttp.ClientSession, base: str, uuids: list[str],
                       rate: float, actions: int) -> tuple[float, list[float]]:
    """An open loop: ``actions`` requests sent at a fixed ``rate`` per second,
    whatever the answers, pausing then unpausing the servers in turn (each is
    next asked ``len(uuids) / rate`` seconds later).  The session's connector
    caps requests in flight at the client count.  Each latency runs from the
    moment its request was due, so one slow answer that holds back the next
    requests is counted against them too.  Returns the achieved rate and
    accept latencies."""
    accept: list[float] = []
    refused = 0

    async def one(due: float, uuid: str, action: str) -> None:
        nonlocal refused
        async with session.post(f"{base}/compute/v2.1/servers/{uuid}/action",
                                json={action: None}) as resp:
            await resp.read()
            if resp.status == 202:
                accept.append(time.perf_counter() - due)
            else:
                refused += 1

    start = time.perf_counter()
    sent: list[asyncio.Task[None]] = []
    for n in range(actions):
        due = start + n / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        action = ("pause", "unpause")[n // len(uuids) % 2]
        sent.append(asyncio.create_task(one(due, uuids[n % len(uuids)], action)))
    await asyncio.gather(*sent)
    elapsed = time.perf_counter() - start
    for uuid in uuids:
        await wait_idle(session, base, uuid)
    if refused:
        print(f"refused (409, server still busy): {refused}")
    return len(accept) / elapsed, accept


async def wait_idle(session: aiohttp.ClientSession, base: str, uuid: str) -> None:
    """Poll until the server has no task."""
    while True:
        async with session.get(f"{base}/compute/v2.1/servers/{uuid}") as resp:
            server = (await resp.json())["server"]
        if server["OS-EXT-STS:task_state"] is None:
            return
        await asyncio.sleep(0.01)


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


async def boot_direct(node: Any, count: int) -> list[str]:
    """Boot ``count`` servers through the service (the in-process baseline)."""
    ctx = RequestContext(user_id="bench", project_id="bench", roles=frozenset({"admin"}))
    made = await node.compute.create(ctx, CreateRequest(name="b", flavor_id="42", image_id="",
                                                        min_count=count, max_count=count))
    await node.supervisor.drain()
    return [inst.uuid for inst in made]


async def boot_http(session: aiohttp.ClientSession, base: str, image: str,
                    count: int) -> list[str]:
    """Boot ``count`` servers through the API (batches of 100) and wait for them."""
    before = {s["id"] for s in await servers(session, base)}
    while count > 0:
        batch = min(count, 100)
        body = {"server": {"name": "b", "flavorRef": "42", "imageRef": image,
                           "min_count": batch, "max_count": batch}}
        async with session.post(f"{base}/compute/v2.1/servers", json=body) as resp:
            assert resp.status == 202, await resp.text()
        count -= batch
    while True:
        listed = await servers(session, base)
        if all(s["OS-EXT-STS:task_state"] is None for s in listed):
            return [s["id"] for s in listed if s["id"] not in before]
        await asyncio.sleep(0.2)


async def servers(session: aiohttp.ClientSession, base: str) -> list[dict[str, Any]]:
    """Every server (admin, all projects)."""
    async with session.get(f"{base}/compute/v2.1/servers/detail?all_tenants=1") as resp:
        return list((await resp.json())["servers"])


async def upload_image(session: aiohttp.ClientSession, base: str) -> str:
    """A tiny image to boot from."""
    async with session.post(f"{base}/image/v2/images", json={
            "name": "bench", "disk_format": "raw", "container_format": "bare"}) as resp:
        image = await resp.json()
    async with session.put(f"{base}/image/v2/images/{image['id']}/file", data=b"\0" * 4096,
                           headers={"Content-Type": "application/octet-stream"}) as resp:
        assert resp.status == 204, await resp.text()
    return str(image["id"])


def floor_server(port: int) -> None:
    """The HTTP floor: read the JSON body, answer 202 (runs in its own process)."""
    from aiohttp import web

    async def action(request: web.Request) -> web.Response:
        orjson.loads(await request.read())
        return web.Response(status=202)

    app = web.Application()
    app.router.add_post("/compute/v2.1/servers/{id}/action", action)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


async def measure_floor(args: argparse.Namespace) -> list[float]:
    """Accept latencies of the bare server under the same clients and cycles."""
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--floor-server", str(port),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        conn = aiohttp.TCPConnector(limit=args.clients)
        async with aiohttp.ClientSession(connector=conn) as session:
            for _ in range(300):
                try:
                    async with session.post(f"{base}/compute/v2.1/servers/x/action",
                                            json={"pause": None}) as resp:
                        if resp.status == 202:
                            break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.1)
            uuids = [f"server-{n}" for n in range(args.servers)]
            _rate, accept = await http_cycles(session, base, uuids, args.clients, args.cycles,
                                              wait=False)
    finally:
        proc.terminate()
        await proc.wait()
    return accept


async def start_daemon(tmp: Path, cluster: str = "", port: int = 0
                       ) -> tuple[asyncio.subprocess.Process, str]:
    """``novad serve`` in its own process; returns it and its base URL.
    ``cluster`` is extra TOML (a ``[cluster]`` section)."""
    port = port or free_port()
    tmp.mkdir(parents=True, exist_ok=True)
    conf = tmp / "novad.toml"
    conf.write_text(f'[DEFAULT]\nlog_format = "json"\nhost = "n{port}"\n[quota]\n'
                    'instances = -1\ncores = -1\nram = -1\n[vnc]\nenabled = false\n' + cluster)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "novad", "serve", "--config", str(conf), "--state-dir",
        str(tmp / "state"), "--listen", f"127.0.0.1:{port}",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            try:
                async with session.get(f"{base}/healthz") as resp:
                    if resp.status == 200:
                        return proc, base
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    proc.kill()
    raise RuntimeError("novad did not become ready")


async def measure_service(tmp: Path, count: int, clients: int, cycles: int) -> float:
    """The in-process service-layer baseline."""
    cfg = config_mod.load(None, {"DEFAULT": {"state_dir": str(tmp / "direct"),
                                             "listen": f"127.0.0.1:{free_port()}"},
                                 "quota": {"instances": -1, "cores": -1, "ram": -1}})
    async with running(cfg) as (node, _base):
        uuids = await boot_direct(node, count)
        return await service_cycles(node, uuids, clients, cycles)


Paced = list[tuple[float, float, list[float]]]


@dataclass
class Figures:
    """What :func:`measure_http` measured against one daemon."""

    rate: float
    accept: list[float]
    paced: Paced
    listing: list[float]
    """The list at 2.1 (taken in turn with :attr:`newest_listing`)."""
    listed: int
    older: tuple[float, list[float]]
    """The closed loop at 2.1 again, in turn with :attr:`newest`."""
    newest: tuple[float, list[float]]
    """The closed loop, every request at the newest microversion."""
    newest_listing: list[float]
    """The list at the newest microversion."""


async def measure_http(tmp: Path, args: argparse.Namespace) -> Figures:
    """Actions/s and accept latencies (closed loop, then paced at fractions of
    the closed loop's rate, then the closed loop at the newest microversion)
    and list latencies (at 2.1 and the newest) against a separate daemon."""
    proc, base = await start_daemon(tmp)
    try:
        password = _password(tmp / "state" / "clouds.yaml")
        conn = aiohttp.TCPConnector(limit=args.clients)
        async with aiohttp.ClientSession(connector=conn) as session:
            session.headers["X-Auth-Token"] = await token(session, base, password)
            image = await upload_image(session, base)
            uuids = await boot_http(session, base, image, args.servers)
            rate, accept = await http_cycles(session, base, uuids, args.clients, args.cycles)
            paced: Paced = []
            for share in args.paced:
                offered = share * rate
                achieved, latencies = await paced_cycles(session, base, uuids, offered,
                                                         args.paced_actions)
                paced.append((offered, achieved, latencies))
            older, newest = await in_turn(session, base, uuids, args)
            await boot_http(session, base, image, args.listed - args.servers)
            listing, newest_listing, listed = await list_pairs(session, base)
    finally:
        proc.terminate()
        await proc.wait()
    return Figures(rate, accept, paced, listing, listed, older, newest, newest_listing)


ROUNDS = 3
"""How many times the 2.1 and newest-microversion runs alternate."""


async def in_turn(session: aiohttp.ClientSession, base: str, uuids: list[str],
                  args: argparse.Namespace) -> tuple[tuple[float, list[float]],
                                                     tuple[float, list[float]]]:
    """The closed loop at 2.1 and at the newest microversion, in turn
    :data:`ROUNDS` times, so that neither gains from running first (on fewer
    instance-action rows, say): each side's mean rate and all its latencies."""
    sides: dict[str, tuple[list[float], list[float]]] = {
        "2.1": ([], []), MAX_MICROVERSION: ([], [])}
    for _ in range(ROUNDS):
        for version, (rates, latencies) in sides.items():
            rate, accept = await http_cycles(session, base, uuids, args.clients, args.cycles,
                                             version=version)
            rates.append(rate)
            latencies += accept
    (r1, a1), (rn, an) = sides["2.1"], sides[MAX_MICROVERSION]
    return (sum(r1) / len(r1), a1), (sum(rn) / len(rn), an)


LIST_PAIRS = 150
"""How many 2.1 and newest-microversion lists :func:`list_pairs` times."""


async def list_pairs(session: aiohttp.ClientSession, base: str
                     ) -> tuple[list[float], list[float], int]:
    """Timings of ``GET /servers/detail`` (all projects) at 2.1 and at the
    newest microversion, :data:`LIST_PAIRS` of each, sent alternately (and
    each pair in the other order than the last), so that both sides see the
    same machine: a list takes tens of milliseconds, and a neighbour's load
    that comes and goes over seconds would otherwise fall on one side's
    round.  Returns both sides' timings and how many servers were listed."""
    sides: dict[str, list[float]] = {"2.1": [], MAX_MICROVERSION: []}
    raw = b""
    for n in range(LIST_PAIRS):
        for version in sorted(sides, reverse=bool(n % 2)):
            asked = {"OpenStack-API-Version": f"compute {version}"}
            t0 = time.perf_counter()
            async with session.get(f"{base}/compute/v2.1/servers/detail?all_tenants=1",
                                   headers=asked) as resp:
                raw = await resp.read()
                assert resp.status == 200, raw
            sides[version].append(time.perf_counter() - t0)
    return sides["2.1"], sides[MAX_MICROVERSION], len(orjson.loads(raw)["servers"])


async def measure_forwarding(tmp: Path, args: argparse.Namespace
                             ) -> tuple[tuple[float, list[float]], tuple[float, list[float]]]:
    """(actions/s, accept latencies) sent to the owner directly, then sent
    to another member that forwards them, on the same servers."""
    from novad.cluster.auth import init_key
    key = tmp / "cluster.key"
    init_key(key)
    owner_port = free_port()
    owner, owner_url = await start_daemon(tmp / "owner", f'[cluster]\nkey_file = "{key}"\n',
                                          owner_port)
    other, other_url = await start_daemon(
        tmp / "other", f'[cluster]\nkey_file = "{key}"\nseeds = ["127.0.0.1:{owner_port}"]\n')
    try:
        password = _password(tmp / "owner" / "state" / "clouds.yaml")
        conn = aiohttp.TCPConnector(limit=args.clients)
        async with aiohttp.ClientSession(connector=conn) as session:
            session.headers["X-Auth-Token"] = await token(session, owner_url, password)
            image = await upload_image(session, owner_url)
            uuids = await boot_on(session, owner_url, image, args.forwarded, f"n{owner_port}")
            for uuid in uuids:  # the other node knows where each lives
                await wait_idle(session, other_url, uuid)
            direct = await http_cycles(session, owner_url, uuids, args.clients, args.cycles)
            forwarded = await http_cycles(session, other_url, uuids, args.clients, args.cycles)
    finally:
        for proc in (other, owner):
            proc.terminate()
            await proc.wait()
    return direct, forwarded


async def boot_on(session: aiohttp.ClientSession, base: str, image: str, count: int,
                  host: str) -> list[str]:
    """``count`` servers forced onto ``host`` (admin ``zone:host``), once ACTIVE."""
    uuids = []
    for i in range(count):
        body = {"server": {"name": f"fw{i}", "flavorRef": "42", "imageRef": image,
                           "availability_zone": f"nova:{host}"}}
        async with session.post(f"{base}/compute/v2.1/servers", json=body) as resp:
            assert resp.status == 202, await resp.text()
            uuids.append((await resp.json())["server"]["id"])
    for uuid in uuids:
        await wait_idle(session, base, uuid)
    return uuids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=200)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--listed", type=int, default=1000)
    parser.add_argument("--cycles", type=int, default=2)
    parser.add_argument("--paced", type=lambda v: [float(x) for x in v.split(",")],
                        default=[0.25, 0.5, 0.75],
                        help="offered rates for the open loop, as shares of the closed "
                             "loop's completed actions/s")
    parser.add_argument("--paced-actions", type=int, default=1600,
                        help="requests sent at each paced rate")
    parser.add_argument("--forwarded", type=int, default=100,
                        help="servers for the forwarded-vs-direct comparison; 0 skips it")
    parser.add_argument("--floor-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.floor_server:
        floor_server(args.floor_server)
    else:
        asyncio.run(measure(args))


async def measure(args: argparse.Namespace) -> None:
    """Every figure, then the report."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    with tempfile.TemporaryDirectory() as tmp:
        service_rate = await measure_service(Path(tmp), args.servers, args.clients, args.cycles)
        floor = await measure_floor(args)
        figures = await measure_http(Path(tmp), args)
        rate, accept, paced, listing, listed = (figures.rate, figures.accept, figures.paced,
                                                figures.listing, figures.listed)
        forwarding = await measure_forwarding(Path(tmp) / "fw", args) if args.forwarded \
            else None
    print(f"servers={args.servers} clients={args.clients} actions={len(accept)}")
    print(f"service layer (in-process, no HTTP): completed actions/s={service_rate:.0f}")
    print(f"http: completed actions/s={rate:.0f} (ratio to service {rate / service_rate:.2f}) "
          f"accept p50={pct(accept, .5):.2f}ms p99={pct(accept, .99):.2f}ms")
    print(f"http floor (bare aiohttp, 202 only): accept p50={pct(floor, .5):.2f}ms "
          f"p99={pct(floor, .99):.2f}ms; novad/floor p50 {pct(accept, .5) / pct(floor, .5):.1f}x "
          f"p99 {pct(accept, .99) / pct(floor, .99):.1f}x")
    for offered, achieved, latencies in paced:
        print(f"http paced at {offered:.0f}/s ({offered / rate:.0%} of the closed loop; "
              f"achieved {achieved:.0f}/s): accept p50={pct(latencies, .5):.2f}ms "
              f"p99={pct(latencies, .99):.2f}ms")
    print(f"GET /servers/detail with {listed} servers: p50={pct(listing, .5):.1f}ms "
          f"p99={pct(listing, .99):.1f}ms")
    (o_rate, o_acc), (n_rate, n_acc) = figures.older, figures.newest
    n_list = figures.newest_listing
    print(f"microversion {MAX_MICROVERSION} against 2.1 (same daemon, same servers; actions "
          f"{ROUNDS} rounds in turn, lists alternating): actions/s {n_rate:.0f} vs {o_rate:.0f} (ratio "
          f"{n_rate / o_rate:.2f}); accept p50 ratio {pct(n_acc, .5) / pct(o_acc, .5):.2f}, "
          f"p99 ratio {pct(n_acc, .99) / pct(o_acc, .99):.2f}; "
          f"list p50 ratio {pct(n_list, .5) / pct(listing, .5):.2f}, "
          f"p99 ratio {pct(n_list, .99) / pct(listing, .99):.2f}")
    if forwarding is not None:
        (d_rate, d_acc), (f_rate, f_acc) = forwarding
        print(f"forwarded to the owner ({args.forwarded} servers, 2-node cluster): direct "
              f"{d_rate:.0f}/s p50={pct(d_acc, .5):.2f}ms p99={pct(d_acc, .99):.2f}ms; "
              f"forwarded {f_rate:.0f}/s p50={pct(f_acc, .5):.2f}ms "
              f"p99={pct(f_acc, .99):.2f}ms; forwarded/direct latency ratio="
              f"{pct(f_acc, .5) / pct(d_acc, .5):.2f} (p99 {pct(f_acc, .99) / pct(d_acc, .99):.2f}),"
              f" throughput ratio={f_rate / d_rate:.2f}")


def _password(clouds: Path) -> str:
    import yaml
    data = yaml.safe_load(clouds.read_text())
    return str(data["clouds"]["novad"]["auth"]["password"])


if __name__ == "__main__":
    main()
