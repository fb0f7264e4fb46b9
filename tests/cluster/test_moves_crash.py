"""Moves survive SIGKILLs of their source or target (issue 15, acceptance 3).

Three real novad daemons on libvirt's test driver, four servers booted
from a raw image whose bytes the test made (one of them stopped), then at
least 30 moves chosen by a seeded ``random.Random`` (the seed is printed;
``NOVAD_CRASH_SEED`` replays one): a cold migration then confirm, or a
resize then confirm or revert.  At least 6 of them are cut by a SIGKILL of
the move's source or target, at a random point after the action's 202
(while it is moved, or while it is confirmed or reverted); the node is
restarted at once and waited for.  After every move, and so after every
kill and restart, and at the end:

* **no instance lost**: every node shows every server;
* **one owner**: exactly one node holds each instance's row in its own
  ``instances`` table, and every node's ``OS-EXT-SRV-ATTR:host`` names it;
* **none running twice**: each daemon's guests live in its own process, so
  each is judged from its own view: the running guests its driver counts
  (``running_vms`` of its own hypervisor, asked of it: its driver's live
  count) equal the rows it holds whose power state (synced from its driver
  every few seconds) is RUNNING, and a stopped server runs nowhere; a node
  without the row keeps no ``instances/<uuid>`` directory unless it is the
  source of a resize awaiting confirm or revert, and no node keeps a move
  prepared;
* **no task stuck**: every server reaches task_state None within a bound,
  no migration stays open; ERROR is allowed only with a fault, and then a
  reset-state to active and a hard reboot (the start of an ACTIVE record;
  ``os-start`` wants STOPPED) must bring it back;
* **disks intact**: the owner's root disk is a qcow2 overlay (qemu-img is
  installed, so the driver makes one on its cached copy of the image)
  whose backing file is the owner's own cache, and ``qemu-img compare``
  against the raw image file the test uploaded says its guest-visible
  contents are that image followed by zeros (the test driver never writes
  to disks; a resize only grows it).  The 512 MB swap disk is there too,
  whole: it is what makes the streaming window wide enough to be hit.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from cluster_helpers import Api, Proc, converged, eventually, launch, shutdown, token

pytestmark = pytest.mark.asyncio(loop_scope="module")

SERVERS = "/compute/v2.1/servers"
HOST = "OS-EXT-SRV-ATTR:host"
TASK = "OS-EXT-STS:task_state"
MOVES = 32
KILLS = 8
SWAP_MB = 512
FLAVORS = {"cr1": {"ram": 128, "vcpus": 1, "disk": 1}, "cr2": {"ram": 192, "vcpus": 1, "disk": 2}}
OPEN_SOURCE = ("pre-migrating", "migrating", "post-migrating", "finished", "confirming",
               "reverting")
IN_FLIGHT = ("pre-migrating", "migrating", "post-migrating", "confirming", "reverting")
SETTLE = 180.0
RUNNING = 1
MISSES: list[str] = []
"""Non-200 answers about a server seen while waiting (for the summary)."""


@dataclass
class World:
    """The cluster, its API clients and what the test booted."""

    procs: list[Proc]
    apis: list[Api]
    image: Path
    image_id: str
    servers: list[str] = field(default_factory=list)
    flavor: dict[str, str] = field(default_factory=dict)

    def api(self, host: str) -> Api:
        return next(a for a in self.apis if a.proc.name == host)

    def proc(self, host: str) -> Proc:
        return next(p for p in self.procs if p.name == host)


@pytest.fixture(scope="module")
def procs(tmp_path_factory: pytest.TempPathFactory,
          request: pytest.FixtureRequest) -> Iterator[list[Proc]]:
    """The cluster; its directory (with each node's ``novad.log``) is kept
    when the test fails."""
    root = tmp_path_factory.mktemp("crash")
    nodes = launch(root, ["node1", "node2", "node3"],
                   extra={"cluster": {"rejoin_wait": 20.0},
                          "DEFAULT": {"sync_power_state_interval": 2}})
    try:
        yield nodes
    finally:
        shutdown(nodes)
        if request.session.testsfailed:
            print(f"\nnode logs kept under {root}/<node>/novad.log")
        else:
            shutil.rmtree(root, ignore_errors=True)


def seed() -> int:
    value = int(os.environ.get("NOVAD_CRASH_SEED") or random.SystemRandom().randrange(2**32))
    print(f"\ncrash test seed: {value} (replay with NOVAD_CRASH_SEED={value})")
    return value


# -- reading each node's own store ------------------------------------------------

def query(proc: Proc, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Rows of ``proc``'s own store, read-only (the daemon may be writing)."""
    path = proc.state_dir / "novad.sqlite"
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        return list(conn.execute(sql, args))
    finally:
        conn.close()


def held(proc: Proc) -> dict[str, tuple[str, str | None, int]]:
    """uuid → (vm_state, task_state, power_state) of the rows ``proc`` owns."""
    return {r[0]: (r[1], r[2], int(r[3])) for r in query(
        proc, "SELECT uuid, vm_state, task_state, power_state FROM instances WHERE deleted = 0")}


def latest_migration(proc: Proc, uuid: str) -> tuple[int, str, str, str | None] | None:
    rows = query(proc, "SELECT id, status, source_compute, dest_compute FROM migrations"
                 " WHERE instance_uuid = ? ORDER BY id DESC LIMIT 1", (uuid,))
    return (int(rows[0][0]), rows[0][1], rows[0][2], rows[0][3]) if rows else None


def prep_state(proc: Proc, migration_id: int) -> str | None:
    rows = query(proc, "SELECT state FROM move_preps WHERE migration_id = ?", (migration_id,))
    return str(rows[0][0]) if rows else None


# -- the API ----------------------------------------------------------------------

async def server(api: Api, sid: str) -> dict[str, Any]:
    status, body = await api.call("GET", f"{SERVERS}/{sid}")
    assert status == 200, (api.proc.name, sid, body)
    return dict(body["server"])


async def act(api: Api, sid: str, body: dict[str, Any]) -> tuple[int, Any]:
    return await api.call("POST", f"{SERVERS}/{sid}/action", body)


async def running_vms(api: Api) -> int:
    """The node's own driver's count of running guests."""
    status, body = await api.call("GET", "/compute/v2.1/os-hypervisors/detail")
    assert status == 200, body
    [mine] = [h for h in body["hypervisors"] if h["service"]["host"] == api.proc.name]
    return int(mine["running_vms"])


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def world(procs: list[Proc], session: aiohttp.ClientSession) -> World:
    await converged(procs, session)
    tok = await token(session, procs[0], "admin", procs[0].admin_password())
    apis = [Api(session, p, tok) for p in procs]
    for fid, spec in FLAVORS.items():
        status, body = await apis[0].call("POST", "/compute/v2.1/flavors", {"flavor": {
            "name": fid, "id": fid, "swap": SWAP_MB, **spec}})
        assert status == 200, body
    data = random.Random(15).randbytes(4 * 1024 * 1024)
    image = procs[0].root.parent / "image.raw"
    image.write_bytes(data)
    status, body = await apis[0].call("POST", "/image/v2/images", {
        "name": "crash-image", "disk_format": "raw", "container_format": "bare"})
    assert status == 201, body
    image_id = body["id"]
    status, answer = await apis[0].call("PUT", f"/image/v2/images/{image_id}/file", data=data,
                                        ctype="application/octet-stream")
    assert status == 204, answer

    async def everywhere() -> bool:
        for a in apis:
            flavor, _ = await a.call("GET", "/compute/v2.1/flavors/cr2")
            img_status, img = await a.call("GET", f"/image/v2/images/{image_id}")
            if flavor != 200 or img_status != 200 or img["status"] != "active":
                return False
        return True
    await eventually(everywhere, 30, "flavors and image replicated")
    return World(procs, apis, image, image_id)


# -- waiting and checking -------------------------------------------------------------

async def stable(w: World, sid: str) -> dict[str, Any]:
    """Until every node shows ``sid`` alike with no task; its view."""
    seen: dict[str, Any] = {}

    async def reached() -> bool:
        views = []
        for a in w.apis:
            status, body = await a.call("GET", f"{SERVERS}/{sid}")
            if status != 200:  # mid-move; lost only if it lasts (the wait fails then)
                seen.clear()
                seen.update({"status": f"{a.proc.name} answers {status}: {body}"})
                MISSES.append(f"{a.proc.name}: {sid} {status}")
                return False
            views.append(dict(body["server"]))
        seen.clear()
        seen.update(views[0])
        return all(v[TASK] is None and v["status"] not in ("BUILD", "MIGRATING", "RESIZE",
                                                            "REVERT_RESIZE", "REBOOT",
                                                            "HARD_REBOOT")
                   for v in views) \
            and len({(v[HOST], v["status"]) for v in views}) == 1
    try:
        await eventually(reached, SETTLE, f"server {sid} stable on every node")
    except AssertionError:
        raise AssertionError(f"server {sid} stuck: {seen.get('status')} {seen.get(TASK)} on "
                             f"{seen.get(HOST)}; owners' rows: "
                             f"{ {p.name: held(p).get(sid) for p in w.procs} }") from None
    return seen


async def recover_errors(w: World, errors: list[str]) -> None:
    """Servers in ERROR must carry a fault; reset-state and a hard reboot
    bring them back."""
    for sid in w.servers:
        view = await stable(w, sid)
        if view["status"] != "ERROR":
            continue
        fault = view.get("fault") or {}
        assert fault.get("message"), f"{sid} in ERROR without a fault: {view}"
        errors.append(f"{sid}: {fault['message']}")
        print(f"  {sid} in ERROR on {view[HOST]}: {fault['message']}")
        owner = w.api(view[HOST])
        status, body = await act(owner, sid, {"os-resetState": {"state": "active"}})
        assert status == 202, body
        status, body = await act(owner, sid, {"reboot": {"type": "HARD"}})
        assert status == 202, body
        back = await stable(w, sid)
        assert back["status"] == "ACTIVE", back
        if sid == w.servers[-1]:  # the stopped one stays stopped
            status, body = await act(owner, sid, {"os-stop": None})
            assert status == 202, body
            assert (await stable(w, sid))["status"] == "SHUTOFF"


def owner_of(w: World, sid: str) -> str:
    holders = [p.name for p in w.procs if sid in held(p)]
    assert len(holders) == 1, f"{sid} held by {holders or 'no node'}"
    return holders[0]


def disk_intact(w: World, owner: Proc, sid: str) -> None:
    inst_dir = owner.state_dir / "instances" / sid
    disk = inst_dir / "disk"
    assert disk.is_file(), f"{sid}: no root disk on its owner {owner.name}"
    info = json.loads(subprocess.run(
        ["qemu-img", "info", "-U", "--output=json", str(disk)], capture_output=True,
        text=True, check=True, timeout=60).stdout)
    backing = info.get("full-backing-filename") or info.get("backing-filename")
    if backing:
        assert Path(backing).resolve().is_relative_to(owner.state_dir.resolve()), \
            f"{sid}: the root disk on {owner.name} is backed by another node's {backing}"
    same = subprocess.run(["qemu-img", "compare", "-U", "-F", "raw", str(disk), str(w.image)],
                          capture_output=True, text=True, timeout=120)
    assert same.returncode == 0, f"{sid} root disk on {owner.name} changed: {same.stdout}" \
                                 f"{same.stderr}"
    swap = inst_dir / "disk.swap"
    assert swap.is_file() and swap.stat().st_size == SWAP_MB * 1024 * 1024, \
        f"{sid}: swap disk on {owner.name} missing or cut"


async def check(w: World) -> None:
    """Every invariant of the module docstring, once the servers are stable."""
    owners: dict[str, str] = {}
    for sid in w.servers:
        view = await stable(w, sid)
        owners[sid] = owner_of(w, sid)
        for api in w.apis:  # not lost, and the owner agrees with every node's view
            seen = await server(api, sid)
            assert seen[HOST] == owners[sid], \
                f"{sid}: {api.proc.name} says {seen[HOST]}, {owners[sid]} holds it"
        disk_intact(w, w.proc(owners[sid]), sid)
        if view["status"] == "SHUTOFF":
            assert held(w.proc(owners[sid]))[sid][2] != RUNNING, f"{sid} stopped but running"

    async def one_copy_each() -> bool:
        for proc, api in zip(w.procs, w.apis, strict=True):
            rows = held(proc)
            if await running_vms(api) != sum(1 for r in rows.values() if r[2] == RUNNING):
                return False
        return True
    try:
        await eventually(one_copy_each, 30, "running guests match the rows each node holds")
    except AssertionError:
        views = [f"{p.name} runs {await running_vms(a)}, holds {held(p)}"
                 for p, a in zip(w.procs, w.apis, strict=True)]
        raise AssertionError("a node runs a guest it holds no row for: "
                             + "; ".join(views)) from None

    def open_moves() -> list[str]:
        found = []
        for proc in w.procs:
            for sid in w.servers:
                m = latest_migration(proc, sid)
                if m is None:
                    continue
                verifying = held(w.proc(owners[sid])).get(sid, ("",))[0] == "resized"
                if m[1] in IN_FLIGHT or (m[1] == "finished" and not verifying):
                    found.append(f"{proc.name} sees {sid}'s migration {m} (owner "
                                 f"{owners[sid]} holds {held(w.proc(owners[sid])).get(sid)})")
        return found

    async def no_move_open() -> bool:
        return not open_moves()
    try:
        await eventually(no_move_open, 60, "no migration left open")
    except AssertionError:
        raise AssertionError("migrations left open: " + "; ".join(open_moves())) from None

    async def no_prep_left() -> bool:
        # A target dropped before its source could abort drops the move itself
        # once the record says it ended (Mover.drop_dead_preps).
        return not any(query(proc, "SELECT migration_id FROM move_preps WHERE state = 'prepared'")
                       for proc in w.procs)
    await eventually(no_prep_left, 30, "no move left prepared on any node")

    def leftovers() -> list[str]:
        found = []
        for proc in w.procs:
            for sid in w.servers:
                if owners[sid] == proc.name:
                    continue
                kept = latest_migration(proc, sid)
                keeps = kept is not None and kept[2] == proc.name and kept[1] in OPEN_SOURCE
                leftover = proc.state_dir / "instances" / sid
                if not keeps and leftover.exists():
                    found.append(f"{proc.name} keeps {sorted(os.listdir(leftover))} of {sid}, "
                                 f"owned by {owners[sid]}")
        return found

    async def no_leftover() -> bool:
        # what an aborted move left is swept by its node (Mover.drop_dead_preps)
        return not leftovers()
    try:
        await eventually(no_leftover, 30, "no directory left where the instance is not")
    except AssertionError:
        raise AssertionError("; ".join(leftovers())) from None


# -- the moves ----------------------------------------------------------------------

@dataclass
class Tally:
    """What happened, for the summary."""

    moves: int = 0
    completed: int = 0
    rolled_back: int = 0
    kills: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    durations: list[float] = field(default_factory=list)

    def window(self) -> float:
        return max(statistics.median(self.durations) if self.durations else 3.0, 1.0)


def landing(w: World, sid: str, source: str, target: str | None) -> str:
    """Where a kill lands: each side's own row and the move's records."""
    parts = []
    for host in (source, target):
        if host is None:
            continue
        row = held(w.proc(host)).get(sid)
        parts.append(f"{host}: {row[0]}/{row[1]}" if row else f"{host}: no row")
    m = latest_migration(w.proc(source), sid)
    if m is not None:
        parts.append(f"migration {m[1]}")
        if target is not None:
            parts.append(f"prep {prep_state(w.proc(target), m[0])}")
    return ", ".join(parts)


async def dest_of(w: World, sid: str, source: str, after: int, deadline: float) -> str | None:
    """The target of the move of ``sid`` newer than migration ``after``."""
    while True:
        m = latest_migration(w.proc(source), sid)
        if m is not None and m[0] > after and m[3] is not None:
            return m[3]
        if time.monotonic() > deadline:
            return None
        await asyncio.sleep(0.02)


async def kill_and_restart(w: World, session: aiohttp.ClientSession, victim: str,
                           where: str, tally: Tally) -> None:
    proc = w.proc(victim)
    proc.kill()
    tally.kills.append(f"{victim} {where}")
    print(f"  SIGKILL {victim}: {where}")
    proc.start()
    await eventually(lambda: proc.ready(session), 120, f"{victim} ready after restart")
    await converged(w.procs, session)


async def move(w: World, session: aiohttp.ClientSession, rng: random.Random, n: int,
               kill_at: str | None, tally: Tally) -> None:
    """One move of a random server; ``kill_at`` "move" or "finish" cuts it."""
    sid = rng.choice(w.servers)
    before = await stable(w, sid)
    source = before[HOST]
    kind = rng.choice(["migrate", "resize", "resize"])
    finish = "confirm" if kind == "migrate" else rng.choice(["confirm", "revert"])
    flavor = "cr2" if w.flavor[sid] == "cr1" else "cr1"
    m = latest_migration(w.proc(source), sid)
    after = m[0] if m else 0
    body: dict[str, Any] = {"migrate": None} if kind == "migrate" \
        else {"resize": {"flavorRef": flavor}}
    started = time.monotonic()
    status, answer = await act(rng.choice(w.apis), sid, body)
    assert status == 202, (kind, answer)
    tally.moves += 1
    print(f"move {n}: {kind} {sid} from {source}, then {finish}"
          + (f", kill during {kill_at}" if kill_at else ""))
    if kill_at == "move":
        await strike(w, session, rng, sid, source, after, started + rng.uniform(0, tally.window()),
                     f"{kind} of {sid}", tally)
    view = await stable(w, sid)
    if kill_at is None:
        tally.durations.append(time.monotonic() - started)
    if view["status"] != "VERIFY_RESIZE":
        tally.rolled_back += 1
        print(f"  not moved: {view['status']} on {view[HOST]}")
        await recover_errors(w, tally.errors)
        await check(w)
        w.flavor[sid] = str((await stable(w, sid))["flavor"]["id"])
        return
    assert view[HOST] != source, view
    target = view[HOST]
    owner = w.api(target)
    if finish == "confirm":
        status, answer = await act(owner, sid, {"confirmResize": None})
        assert status == 204, answer
    else:
        status, answer = await act(owner, sid, {"revertResize": None})
        assert status == 202, answer
    if kill_at == "finish":
        await asyncio.sleep(rng.uniform(0, 1.0))
        victim = rng.choice([source, target])
        await kill_and_restart(w, session, victim, f"{finish} of {sid} ({source}->{target}), "
                               + landing(w, sid, source, target), tally)
    done = await stable(w, sid)
    if done["status"] in ("ACTIVE", "SHUTOFF"):
        tally.completed += 1
    await recover_errors(w, tally.errors)
    await check(w)
    w.flavor[sid] = str((await stable(w, sid))["flavor"]["id"])


async def strike(w: World, session: aiohttp.ClientSession, rng: random.Random, sid: str,
                 source: str, after: int, at: float, what: str, tally: Tally) -> None:
    """SIGKILL the source or the target of the move at about ``at``."""
    side = rng.choice(["source", "target"])
    target = await dest_of(w, sid, source, after, at if side == "source" else at + 30)
    victim = source if side == "source" else target
    assert victim is not None, f"{what}: no target chosen within 30 s"
    await asyncio.sleep(max(0.0, at - time.monotonic()))
    await kill_and_restart(w, session, victim, f"{side} of {what} ({source}->{target}), "
                           + landing(w, sid, source, target), tally)


async def test_moves_survive_sigkills_of_source_or_target(
        world: World, session: aiohttp.ClientSession) -> None:
    w, rng, tally = world, random.Random(seed()), Tally()
    hosts = [p.name for p in w.procs]
    for i, host in enumerate(hosts + hosts[:1]):
        status, body = await w.apis[i % 3].call("POST", SERVERS, {"server": {
            "name": f"crash-{i}", "flavorRef": "cr1", "imageRef": w.image_id,
            "availability_zone": f"nova:{host}"}})
        assert status == 202, body
        w.servers.append(body["server"]["id"])
        w.flavor[body["server"]["id"]] = "cr1"
    for sid in w.servers:
        assert (await stable(w, sid))["status"] == "ACTIVE"
    status, body = await act(w.apis[0], w.servers[-1], {"os-stop": None})
    assert status == 202, body
    assert (await stable(w, w.servers[-1]))["status"] == "SHUTOFF"
    await check(w)

    struck = set(rng.sample(range(3, MOVES), KILLS))  # the first moves measure the window
    for n in range(MOVES):
        kill_at = (rng.choices(["move", "finish"], [3, 1])[0]) if n in struck else None
        await move(w, session, rng, n, kill_at, tally)
    await check(w)

    print(f"\nsummary: {tally.moves} moves, {tally.completed} completed, "
          f"{tally.rolled_back} rolled back, {len(tally.kills)} kills, "
          f"{len(tally.errors)} servers recovered from ERROR; window {tally.window():.1f} s")
    for k in tally.kills:
        print(f"  kill: {k}")
    for e in tally.errors:
        print(f"  error: {e}")
    print(f"  {len(MISSES)} non-200 answers about a server while waiting: {sorted(set(MISSES))}")
    assert tally.moves >= 30 and len(tally.kills) >= 6
