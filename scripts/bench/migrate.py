#!/usr/bin/env python3
"""Cold migration per GiB of disk, against a plain HTTP copy of the same disk.

Two real daemons (``python -m novad serve``, each on its own loopback port
with libvirt's test driver), clustered with one key.  One server is booted
on the first and stopped; its root disk (``<state>/instances/<uuid>/disk``,
a qcow2 overlay on the image) is then filled with ``--gib`` GiB of random,
incompressible data (``qemu-img convert -n`` from a file of
``os.urandom`` bytes, so the overlay keeps its backing file), and the bench
checks that the file really takes that much space.  The test driver's guest
never opens the file, so what a migration spends its time on is the move
itself: the state steps, the disk streamed over the signed node-to-node
channel (checksummed on both sides, fsynced), the rebase onto the
destination's image cache, the new definition.

Then, ``--runs`` times, alternating, on the same file where it lies now:

* **copy** (the baseline): the file streamed by an aiohttp client
  (4 MiB reads in a thread) in one HTTP PUT over the same loopback to a
  minimal aiohttp server in its own process, which writes it to a file
  beside the nodes' state directories (same disk), fsyncs it and answers;
  timed from the request to the answer;
* **migrate**: ``{"migrate": null}`` sent to the node holding the server,
  timed from the request (its 202 comes back within milliseconds) until
  the other node shows VERIFY_RESIZE with no task; then, untimed,
  ``confirmResize`` and a wait for the source's copy to go, so the next
  run migrates it back.

Prints each run (with the CPU seconds each side's process spent on it:
both daemons for a migration, the bench's client and the copy server for a
copy), the medians per GiB of disk and, last,
``migrate ratio=<median migrate / median copy>`` (target: at most 1.3).
Run: ``.venv/bin/python scripts/bench/migrate.py [--gib 1] [--runs 5]``
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

# scripts/bench/transitions.py would shadow the ``transitions`` library.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "cluster"))

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402

from cluster_helpers import Api, Proc, converged, eventually, free_port, launch, shutdown, \
    token  # noqa: E402

GIB = 1 << 30
CHUNK = 4 << 20
SERVERS = "/compute/v2.1/servers"
POLL = 0.02
"""Seconds between status polls while a migration is timed."""


# -- the baseline's server, in its own process ---------------------------------
def copy_server(port: int, directory: Path) -> None:
    """A bare aiohttp server: each ``PUT /<name>`` body is written to
    ``directory/<name>`` and fsynced before the answer."""
    async def put(request: web.Request) -> web.Response:
        target = directory / request.match_info["name"]
        size, cpu = 0, time.process_time()
        with target.open("wb") as f:
            async for block in request.content.iter_chunked(1 << 20):
                f.write(block)
                size += len(block)
            t0 = time.perf_counter()
            os.fsync(f.fileno())
            fsync = time.perf_counter() - t0
        return web.json_response({"size": size, "fsync": fsync,
                                  "cpu": time.process_time() - cpu})

    app = web.Application(client_max_size=1 << 62)
    app.router.add_put("/{name}", put)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


async def start_copy_server(directory: Path) -> tuple[asyncio.subprocess.Process, str]:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--copy-server", str(port), str(directory),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as session:
        for _ in range(200):
            try:
                async with session.put(f"{base}/ready", data=b"") as resp:
                    if resp.status == 200:
                        return proc, base
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    proc.kill()
    raise SystemExit("migrate: the copy server did not start")


async def copy_once(session: aiohttp.ClientSession, base: str, path: Path
                    ) -> tuple[float, float, float]:
    """Seconds to PUT ``path`` to the copy server, its fsync's share, and
    the CPU seconds of both ends."""
    async def chunks() -> AsyncIterator[bytes]:
        with path.open("rb") as f:
            while block := await asyncio.to_thread(f.read, CHUNK):
                yield block

    t0, cpu = time.perf_counter(), time.process_time()
    async with session.put(f"{base}/disk.copy", data=chunks(),
                           headers={"Content-Type": "application/octet-stream"}) as resp:
        answer = await resp.json()
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu
    if resp.status != 200 or answer["size"] != path.stat().st_size:
        raise SystemExit(f"migrate: the copy came back {resp.status} {answer}")
    return elapsed, float(answer["fsync"]), cpu + float(answer["cpu"])


# -- the cluster side ------------------------------------------------------------
async def server(api: Api, sid: str) -> dict[str, Any]:
    status, body = await api.call("GET", f"{SERVERS}/{sid}")
    if status != 200:
        raise SystemExit(f"migrate: GET server {sid} on {api.proc.name}: {status} {body}")
    return dict(body["server"])


async def settled(api: Api, sid: str, status: str, timeout: float = 600.0,
                  poll: float = 0.1) -> dict[str, Any]:
    """The server once ``api``'s node shows it in ``status`` with no task."""
    deadline = time.monotonic() + timeout
    while True:
        seen = await server(api, sid)
        if seen["status"] == "ERROR":
            raise SystemExit(f"migrate: server {sid} went to ERROR: {seen.get('fault')}")
        if seen["status"] == status and seen["OS-EXT-STS:task_state"] is None:
            return seen
        if time.monotonic() > deadline:
            raise SystemExit(f"migrate: server {sid} not {status} within {timeout:.0f} s "
                             f"(now {seen['status']}/{seen['OS-EXT-STS:task_state']})")
        await asyncio.sleep(poll)


async def act(api: Api, sid: str, body: dict[str, Any], expect: int) -> None:
    status, answer = await api.call("POST", f"{SERVERS}/{sid}/action", body)
    if status != expect:
        raise SystemExit(f"migrate: {body} on {api.proc.name} answered {status} {answer}")


async def setup(apis: list[Api], disk_gb: int) -> str:
    """A flavor, a raw image everywhere, a server booted on the first node
    and stopped; its id."""
    first = apis[0]
    status, body = await first.call("POST", "/compute/v2.1/flavors", {"flavor": {
        "name": "bench.migrate", "ram": 128, "vcpus": 1, "disk": disk_gb, "id": "bmig"}})
    assert status == 200, body
    status, image = await first.call("POST", "/image/v2/images", {
        "name": "bench-migrate", "disk_format": "raw", "container_format": "bare"})
    assert status == 201, image
    status, body = await first.call("PUT", f"/image/v2/images/{image['id']}/file",
                                    data=b"\0" * 65536, ctype="application/octet-stream")
    assert status == 204, body

    async def everywhere() -> bool:
        for a in apis:
            f_status, _ = await a.call("GET", "/compute/v2.1/flavors/bmig")
            i_status, img = await a.call("GET", f"/image/v2/images/{image['id']}")
            if f_status != 200 or i_status != 200 or img["status"] != "active":
                return False
        return True
    await eventually(everywhere, 30, "flavor and image replicated")
    status, body = await first.call("POST", SERVERS, {"server": {
        "name": "bench-migrate", "flavorRef": "bmig", "imageRef": image["id"],
        "availability_zone": f"nova:{first.proc.name}"}})
    assert status == 202, body
    sid = str(body["server"]["id"])
    await settled(first, sid, "ACTIVE", 60)
    await act(first, sid, {"os-stop": None}, 202)
    await settled(first, sid, "SHUTOFF", 60)
    return sid


def fill_disk(disk: Path, size: int, scratch: Path) -> None:
    """Write ``size`` random bytes at the start of the qcow2 ``disk``, in
    place (its backing file stays), and check they take room on disk."""
    raw = scratch / "random.raw"
    with raw.open("wb") as f:
        left = size
        while left:
            block = os.urandom(min(CHUNK, left))
            f.write(block)
            left -= len(block)
    subprocess.run(["qemu-img", "convert", "-n", "-f", "raw", "-O", "qcow2", str(raw),
                    str(disk)], check=True)
    raw.unlink()
    info = subprocess.run(["qemu-img", "info", str(disk)], capture_output=True, text=True,
                          check=True).stdout
    used = disk.stat().st_blocks * 512
    if "backing file:" not in info or used < size:
        raise SystemExit(f"migrate: the disk holds {used} bytes, not {size}:\n{info}")


def cpu_seconds(proc: Proc) -> float:
    """CPU seconds a daemon (and the children it reaped: qemu-img) has used."""
    assert proc.process is not None
    fields = Path(f"/proc/{proc.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def instance_dir(proc: Proc, sid: str) -> Path:
    """Where ``proc`` keeps the files of instance ``sid``."""
    return proc.state_dir / "instances" / sid


async def migrate_once(apis: list[Api], sid: str, at: int) -> tuple[float, float]:
    """Seconds from ``migrate`` sent to ``apis[at]`` until the other node
    shows VERIFY_RESIZE, and both daemons' CPU seconds meanwhile; then
    confirm, untimed, until the source's copy is gone."""
    source, dest = apis[at], apis[1 - at]
    cpu = sum(cpu_seconds(a.proc) for a in apis)
    t0 = time.perf_counter()
    await act(source, sid, {"migrate": None}, 202)
    moved = await settled(dest, sid, "VERIFY_RESIZE", poll=POLL)
    elapsed = time.perf_counter() - t0
    cpu = sum(cpu_seconds(a.proc) for a in apis) - cpu
    if moved["OS-EXT-SRV-ATTR:host"] != dest.proc.name:
        raise SystemExit(f"migrate: went to {moved['OS-EXT-SRV-ATTR:host']}, "
                         f"not {dest.proc.name}")
    await act(dest, sid, {"confirmResize": None}, 204)
    await settled(dest, sid, "SHUTOFF", 60)

    async def source_gone() -> bool:
        return not (instance_dir(source.proc, sid) / "disk").exists()
    await eventually(source_gone, 60, "the source's copy removed after confirm")
    return elapsed, cpu


async def measure(args: argparse.Namespace, root: Path) -> None:
    size = max(1 << 20, round(args.gib * GIB) // (1 << 20) * (1 << 20))
    procs = launch(root, ["mig-a", "mig-b"],
                   extra={"quota": {"instances": -1, "cores": -1, "ram": -1}})
    copy_proc = None
    try:
        async with aiohttp.ClientSession() as session:
            await converged(procs, session)
            tok = await token(session, procs[0], "admin", procs[0].admin_password())
            apis = [Api(session, p, tok) for p in procs]
            sid = await setup(apis, max(1, math.ceil(size / GIB)))
            disk = instance_dir(procs[0], sid) / "disk"
            fill_disk(disk, size, root)
            names = sorted(p.name for p in instance_dir(procs[0], sid).iterdir())
            print(f"disk: {disk.stat().st_size} bytes ({disk.stat().st_blocks * 512} on disk, "
                  f"qcow2 overlay, random data); instance directory: {', '.join(names)}")
            gib = disk.stat().st_size / GIB
            copy_proc, copy_url = await start_copy_server(root)
            copies: list[float] = []
            moves: list[float] = []
            copy_cpu: list[float] = []
            move_cpu: list[float] = []
            at = 0
            for run in range(1, args.runs + 1):
                here = instance_dir(procs[at], sid) / "disk"
                seconds, fsync, cpu = await copy_once(session, copy_url, here)
                (root / "disk.copy").unlink()
                copies.append(seconds)
                copy_cpu.append(cpu)
                print(f"run {run}: copy    {procs[at].name} -> server : {seconds:6.3f} s "
                      f"({seconds / gib:.3f} s/GiB; fsync {fsync:.3f} s; CPU {cpu:.2f} s)",
                      flush=True)
                seconds, cpu = await migrate_once(apis, sid, at)
                moves.append(seconds)
                move_cpu.append(cpu)
                print(f"run {run}: migrate {procs[at].name} -> {procs[1 - at].name}: "
                      f"{seconds:6.3f} s ({seconds / gib:.3f} s/GiB; CPU {cpu:.2f} s)",
                      flush=True)
                at = 1 - at
    finally:
        if copy_proc is not None:
            copy_proc.terminate()
            await copy_proc.wait()
        shutdown(procs)
    copy_med, move_med = statistics.median(copies), statistics.median(moves)
    print(f"plain copy (aiohttp PUT over loopback, fsynced): median={copy_med / gib:.3f} s/GiB "
          f"({gib * GIB / copy_med / 1e6:.0f} MB/s) over {len(copies)} runs; "
          f"CPU {statistics.median(copy_cpu) / gib:.2f} s/GiB (client + server)")
    print(f"cold migration (202 to VERIFY_RESIZE): median={move_med / gib:.3f} s/GiB "
          f"({gib * GIB / move_med / 1e6:.0f} MB/s) over {len(moves)} runs; "
          f"CPU {statistics.median(move_cpu) / gib:.2f} s/GiB (both daemons)")
    print(f"migrate ratio={move_med / copy_med:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=1.0,
                        help="GiB of random data in the root disk (fractions for smoke tests)")
    parser.add_argument("--runs", type=int, default=5,
                        help="migrations timed (back and forth), and as many copies")
    parser.add_argument("--copy-server", nargs=2, metavar=("PORT", "DIR"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.copy_server:
        copy_server(int(args.copy_server[0]), Path(args.copy_server[1]))
        return
    if args.gib <= 0 or args.runs < 1:
        parser.error("--gib must be positive and --runs at least 1")
    with tempfile.TemporaryDirectory(prefix="novad-bench-migrate-") as tmp:
        asyncio.run(measure(args, Path(tmp)))


if __name__ == "__main__":
    main()
