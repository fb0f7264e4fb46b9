"""Live migration of a real QEMU guest between novad nodes (issue 15, item 4).

Three ``novad serve`` processes clustered on loopback, each on its OWN
private libvirtd (``scripts/libvirtd-node``), set up as in
``test_moves_qemu.py`` (whose helpers this module reuses).  A demo guest is
booted through the API on the first node and live-migrated through the API
(``os-migrateLive`` with ``host`` null, block migration: storage is not
shared), then again through the real ``openstack`` CLI.  After each move:

- every node shows the server ACTIVE, no task, on the target;
- the domain runs under the target's libvirtd only, from the target's
  instance directory; the source's directory is gone;
- the guest was not rebooted: its serial console (``console.log``, a file in
  the instance directory) goes on on the target with no boot banner and
  uptime ticks that keep increasing from where the source's stopped.  The
  source's log does not come along (its directory is removed, as in Nova
  with non-shared storage): the target's log starts with the first line the
  guest printed there.  So the source's log is read while the move runs;
- the migration record (every node's ``GET /os-migrations``) is
  ``completed`` with the right source and dest.

Then the failures, each of which must leave the server ACTIVE with no task
on its source, the guest still running (ticking) there and nowhere else,
not rebooted: an admin's ``host`` that is no node; a node whose libvirtd is
down (novad up: its prepare fails, the migration is ``error``); a node whose
``live_migration_uri`` leads nowhere (it claims and lays out the disks,
libvirt's migration fails, the migration is ``failed`` and the target drops
what it laid out); a node whose novad is down (SIGKILLed, dead in gossip).
The ``openstack`` CLI's live migration skips, naming the client-side bug,
while python-openstackclient cannot call openstacksdk's live migration
below microversion 2.25.

No wall-clock assertion: every wait is bounded polling.  Needs root, the
libvirtd-node tools and QEMU; otherwise the module skips saying which.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from integration_helpers import DEMO_DIR, MARKER, ROOT, SMALL, boots, ensure_demo_guest, \
    uptimes, wait_for
from test_moves_qemu import HOST, NODE_SCRIPT, RUNNING, SERVERS, Client, Cluster, LibvirtNode, \
    _answers, _ready, _token, _upload, _why_not

from cluster_helpers import launch, shutdown  # on sys.path via test_moves_qemu

NAMES = ["lm1", "lm2", "lm3"]
ADDRS = {"lm1": "127.0.0.41", "lm2": "127.0.0.42", "lm3": "127.0.0.43"}
OPENSTACK = ROOT / ".venv" / "bin" / "openstack"
LIVE = {"host": None, "block_migration": True, "disk_over_commit": False}
TASK = "OS-EXT-STS:task_state"
CLI_BUG = "live_migrate_server() got an unexpected keyword argument 'disk_overcommit'"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Three novad nodes, each on its own libvirtd, with the demo images and
    the small flavor; everything removed afterwards."""
    why = _why_not()
    if why is not None:
        pytest.skip(why)
    ensure_demo_guest()
    base = Path(tempfile.mkdtemp(prefix="llc", dir="/tmp"))  # short: unix socket paths
    nodes = {n: LibvirtNode(n, base) for n in NAMES}
    procs = []
    try:
        for name, node in nodes.items():
            node.uri = node.run("start", "--addr", ADDRS[name])
        only = {n: {"libvirt": {"connection_uri": nodes[n].uri, "virt_type": "qemu"}}
                for n in NAMES}
        extra = {"DEFAULT": {"shutdown_timeout": 10},
                 "compute": {"shutdown_retry_interval": 2},
                 "quota": {"instances": -1, "cores": -1, "ram": -1}}
        procs = launch(tmp_path_factory.mktemp("live-cluster"), NAMES, extra, only)
        for proc in procs:
            wait_for(f"{proc.name} ready", functools.partial(_ready, proc), 120)

        def all_alive() -> bool:
            return all({n for n, st in p.states().items() if st == "alive"} == set(NAMES)
                       for p in procs)
        wait_for("every node sees every other alive", all_alive, 60)
        tok = _token(procs[0])
        apis = {p.name: Client(p, tok) for p in procs}
        first = apis[NAMES[0]]
        first.call("POST", "/compute/v2.1/flavors", {"flavor": SMALL}, ok=(200,))
        kernel = _upload(first, "lm-kernel", "aki", DEMO_DIR / "vmlinuz")
        ramdisk = _upload(first, "lm-ramdisk", "ari", DEMO_DIR / "initrd.img")
        image = _upload(first, "lm-demo", "qcow2", DEMO_DIR / "demo.qcow2",
                        kernel_id=kernel, ramdisk_id=ramdisk)

        def everywhere() -> bool:
            for api in apis.values():
                for img in (kernel, ramdisk, image):
                    shown = api.http.get(f"{api.proc.url}/image/v2/images/{img}", timeout=30)
                    if shown.status_code != 200 or shown.json()["status"] != "active":
                        return False
                if api.http.get(f"{api.proc.url}/compute/v2.1/flavors/{SMALL['id']}",
                                timeout=30).status_code != 200:
                    return False
            return True
        wait_for("images and flavors replicated", everywhere, 60)
        yield Cluster({p.name: p for p in procs}, nodes, apis, image)
    finally:
        shutdown(procs)
        for node in nodes.values():
            subprocess.run([str(NODE_SCRIPT), "clean", node.name, "--base", str(base)],
                           capture_output=True, timeout=120)
        shutil.rmtree(base, ignore_errors=True)


# -- helpers -------------------------------------------------------------------------


STATE: dict[str, Any] = {}
"""What the ordered tests hand on: the server's id."""
DOWN: set[str] = set()
"""Nodes a test took down (their API is not asked any more)."""


def up_apis(c: Cluster) -> dict[str, Client]:
    return {n: a for n, a in c.apis.items() if n not in DOWN}


def live_copies(c: Cluster, uuid: str) -> list[str]:
    """The libvirt nodes (that answer) on which the instance's domain runs."""
    return [n for n, node in c.nodes.items() if _answers(node) and node.state(uuid) == RUNNING]


def ticking_on(c: Cluster, host: str, uuid: str, more: int = 1) -> list[float]:
    """The guest's uptimes on ``host`` once ``more`` new ticks came: it runs there."""
    seen = len(uptimes(c.console(host, uuid)))
    return wait_for(f"{uuid} ticking on {host}",
                    lambda: (u if len(u := uptimes(c.console(host, uuid))) >= seen + more
                             else None), 90)


def settled_everywhere(c: Cluster, uuid: str, host: str) -> None:
    """Every live node shows the server ACTIVE with no task on ``host``."""
    for name, api in up_apis(c).items():
        seen: dict[str, Any] = {}

        def check(api: Client = api) -> bool:
            seen.clear()
            seen.update(api.server(uuid))
            assert seen["status"] != "ERROR", f"{uuid} went ERROR: {seen.get('fault')}"
            return bool(seen["status"] == "ACTIVE" and seen[TASK] is None
                        and seen[HOST] == host)
        try:
            wait_for(f"{name} to show {uuid} ACTIVE on {host}", check, 240)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; last seen {seen.get('status')} task={seen.get(TASK)} "
                                 f"host={seen.get(HOST)}\n{c.logs()}") from None


def migrations(api: Client, uuid: str) -> list[dict[str, Any]]:
    listed = api.call("GET", f"/compute/v2.1/os-migrations?instance_uuid={uuid}", ok=(200,))
    return list(listed["migrations"])


class ConsoleWatch:
    """Reads a console log over and over while a move runs: the last text
    seen (the file goes with the source's instance directory)."""

    def __init__(self, c: Cluster, host: str, uuid: str) -> None:
        self.c, self.host, self.uuid = c, host, uuid
        self.last = c.console(host, uuid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            text = self.c.console(self.host, self.uuid)
            if len(text) >= len(self.last):
                self.last = text
            self._stop.wait(0.1)

    def __enter__(self) -> ConsoleWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def boot_on(c: Cluster, name: str, host: str) -> str:
    """An ACTIVE demo server forced onto ``host``, its guest booted and ticking."""
    api = c.apis[NAMES[0]]
    body = {"name": name, "flavorRef": SMALL["id"], "imageRef": c.image,
            "availability_zone": f"nova:{host}"}
    sid = str(api.call("POST", SERVERS, {"server": body}, ok=(202,))["server"]["id"])
    shown = api.settled(sid, "ACTIVE")
    assert shown[HOST] == host, shown
    wait_for(f"{sid} to boot on {host}", lambda: boots(c.console(host, sid)) >= 1, 120)
    ticking_on(c, host, sid, 2)
    return sid


def assert_moved_live(c: Cluster, sid: str, source: str, source_log: str) -> str:
    """Everything a completed live migration off ``source`` must show; the target."""
    target = wait_for(f"{sid} off {source}",
                      lambda: (h if (h := c.apis[source].server(sid)[HOST]) != source
                               else None), 240)
    assert target in NAMES and target != source
    settled_everywhere(c, sid, target)

    # The domain runs under the target's libvirtd only, from the target's files.
    assert live_copies(c, sid) == [target], (live_copies(c, sid), c.logs())
    assert str(c.instance_dir(target, sid) / "disk") in c.nodes[target].xml(sid)
    assert sid not in c.nodes[source].domains()
    wait_for(f"{source}'s instance directory to go",
             lambda: not c.instance_dir(source, sid).exists(), 60)

    # Not rebooted: the console goes on on the target, with no boot banner,
    # the uptime going on increasing from the source's last tick.
    before = uptimes(source_log)
    # (after an earlier live migration the source's log starts with ticks:
    # a live migration's target starts its console log afresh)
    assert before, source_log
    after = ticking_on(c, target, sid, 3)
    target_log = c.console(target, sid)
    came_along = target_log.startswith(source_log.rsplit(MARKER, 1)[0] + MARKER)
    tail = target_log[len(source_log):] if came_along else target_log
    assert MARKER not in tail, f"the guest booted again on {target}:\n{target_log}"
    moved_ticks = uptimes(tail)
    assert moved_ticks, target_log
    both = before + moved_ticks
    assert all(x < y for x, y in zip(both, both[1:])), both
    assert len(after) >= 3
    # The console through the API (any node: it is forwarded to the owner) is the target's.
    shown = c.apis[source].call("POST", f"{SERVERS}/{sid}/action",
                                {"os-getConsoleOutput": {"length": 5}}, ok=(200,))["output"]
    assert uptimes(shown) and MARKER not in shown, shown

    # The migration record, as every live node sees it.
    for name, api in up_apis(c).items():
        def done(api: Client = api) -> dict[str, Any] | None:
            # (no ``migration_type`` filter: that field is microversion 2.23)
            mine = [m for m in migrations(api, sid) if m["source_compute"] == source]
            return mine[-1] if mine and mine[-1]["status"] == "completed" else None
        try:
            record = wait_for(f"{name} to show the live migration completed", done, 60)
        except AssertionError as exc:
            raise AssertionError(f"{exc}: {migrations(api, sid)}") from None
        assert (record["source_compute"], record["dest_compute"]) == (source, target), record
    return str(target)


def assert_still_on(c: Cluster, sid: str, host: str, log_before: str) -> None:
    """The server is ACTIVE with no task on ``host`` everywhere, its guest
    running there only, not rebooted: its console (``log_before`` when the
    attempt was made) went on with no boot banner and increasing uptimes."""
    settled_everywhere(c, sid, host)
    ticking_on(c, host, sid, 2)
    assert live_copies(c, sid) == [host], live_copies(c, sid)
    now = c.console(host, sid)
    assert now.startswith(log_before), "the console log was replaced"
    assert MARKER not in now[len(log_before):], f"the guest was rebooted:\n{now}"
    ticks = uptimes(now)
    assert all(x < y for x, y in zip(ticks, ticks[1:])), ticks


def failed_records(c: Cluster, sid: str, dest: str) -> list[dict[str, Any]]:
    """The live migrations to ``dest`` (if any were recorded), each failed or
    error (only live migrations happen in this module)."""
    api = c.apis[NAMES[0]]
    mine = [m for m in migrations(api, sid)
            if m["dest_compute"] in (dest, None) and m["status"] != "completed"]
    for record in mine:
        assert record["status"] in ("failed", "error"), mine
    return mine


# -- the tests, in order ---------------------------------------------------------------


def test_live_migrate_through_the_api(cluster: Cluster) -> None:
    c = cluster
    source = NAMES[0]
    sid = boot_on(c, "lm-guest", source)
    STATE["server"] = sid
    assert live_copies(c, sid) == [source]
    with ConsoleWatch(c, source, sid) as watch:
        c.apis[NAMES[1]].action(sid, {"os-migrateLive": LIVE})
        target = wait_for(f"{sid} off {source}",
                          lambda: (h if (h := c.apis[source].server(sid)[HOST]) != source
                                   else None), 240)
    assert target != source
    assert_moved_live(c, sid, source, watch.last)


def test_live_migrate_with_the_openstack_cli(cluster: Cluster) -> None:
    c = cluster
    sid = STATE["server"]
    source = c.apis[NAMES[0]].server(sid)[HOST]
    first = c.procs[NAMES[0]]
    home = first.root / "cli-home"
    home.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env.update(OS_CLIENT_CONFIG_FILE=str(first.state_dir / "clouds.yaml"), HOME=str(home),
               NO_PROXY="*", no_proxy="*")
    assert "novad" in yaml.safe_load((first.state_dir / "clouds.yaml").read_text())["clouds"]
    with ConsoleWatch(c, source, sid) as watch:
        done = subprocess.run([str(OPENSTACK), "--os-cloud", "novad", "server", "migrate",
                               "--live-migration", "--block-migration", sid],
                              env=env, cwd=home, capture_output=True, text=True, timeout=300)
        if done.returncode != 0 and CLI_BUG in done.stderr:
            pytest.skip(f"the installed openstack CLI cannot live-migrate below compute "
                        f"2.25 (novad does not serve 2.25): python-openstackclient "
                        f"{version('python-openstackclient')} passes disk_overcommit= to "
                        f"openstacksdk {version('openstacksdk')}'s live_migrate_server(), "
                        f"which takes disk_over_commit= ({done.stderr.strip()})")
        assert done.returncode == 0, done.stderr + done.stdout
        wait_for(f"{sid} off {source}",
                 lambda: c.apis[source].server(sid)[HOST] != source, 240)
    assert_moved_live(c, sid, source, watch.last)


def test_live_migrate_to_an_unknown_host_leaves_the_guest_running(cluster: Cluster) -> None:
    c = cluster
    sid = STATE["server"]
    source = c.apis[NAMES[0]].server(sid)[HOST]
    log_before = c.console(source, sid)
    resp = c.apis[NAMES[0]].http.post(
        f"{c.apis[NAMES[0]].proc.url}{SERVERS}/{sid}/action",
        json={"os-migrateLive": {**LIVE, "host": "lm-nowhere"}}, timeout=120)
    # Nova answers 400 (host not found) at the API; an accepted request must fail later.
    assert resp.status_code in (202, 400), resp.text
    assert_still_on(c, sid, source, log_before)
    failed_records(c, sid, "lm-nowhere")
    assert not any(c.instance_dir(n, sid).exists() for n in NAMES if n != source)


def test_live_migrate_to_a_node_whose_libvirtd_is_down(cluster: Cluster) -> None:
    c = cluster
    sid = STATE["server"]
    source = c.apis[NAMES[0]].server(sid)[HOST]
    dest = next(n for n in NAMES if n != source)
    c.nodes[dest].run("kill")
    log_before = c.console(source, sid)
    try:
        c.apis[NAMES[0]].action(sid, {"os-migrateLive": {**LIVE, "host": dest}},
                                ok=(202, 400))
        assert_still_on(c, sid, source, log_before)
        records = failed_records(c, sid, dest)
        assert records, f"no live migration to {dest} recorded: {migrations(c.apis[source], sid)}"
        assert all(r["source_compute"] == source for r in records), records
        wait_for(f"{dest} to drop what it laid out",
                 lambda: not c.instance_dir(dest, sid).exists(), 60)
    finally:
        c.nodes[dest].run("start", "--addr", ADDRS[dest])
    assert sid not in c.nodes[dest].domains()
    assert live_copies(c, sid) == [source]


def restart(c: Cluster, name: str) -> None:
    """Restart one novad (with its config rewritten from ``extra``) and wait
    until it is ready and every node sees every other alive."""
    proc = c.procs[name]
    proc.terminate()
    proc.start()
    wait_for(f"{name} ready", lambda: _ready(proc), 120)
    try:
        wait_for("every node sees every other alive",
                 lambda: all({n for n, st in p.states().items() if st == "alive"} == set(NAMES)
                             for p in c.procs.values()), 60)
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {[(p.name, p.states()) for p in c.procs.values()]}"
                             f"\n{c.logs()}") from None


def test_live_migrate_fails_in_libvirt_after_the_target_laid_out_the_disks(
        cluster: Cluster) -> None:
    """The target prepares (claim, disks laid out) but its libvirtd cannot be
    reached at its ``live_migration_uri``: the migration is ``failed``, the
    target drops what it laid out, the guest goes on running on the source."""
    c = cluster
    sid = STATE["server"]
    source = c.apis[NAMES[0]].server(sid)[HOST]
    # Not the first node: it has no seeds, so restarted it would not rejoin.
    dest = next(n for n in NAMES if n not in (source, NAMES[0]))
    bogus = f"qemu+unix:///system?socket={c.nodes[dest].base}/nowhere/libvirt-sock"
    c.procs[dest].extra.setdefault("libvirt", {})["live_migration_uri"] = bogus
    restart(c, dest)
    try:
        log_before = c.console(source, sid)
        c.apis[NAMES[0]].action(sid, {"os-migrateLive": {**LIVE, "host": dest}})
        assert_still_on(c, sid, source, log_before)
        records = [r for r in failed_records(c, sid, dest) if r["dest_compute"] == dest]
        assert [(r["status"], r["source_compute"], r["dest_compute"]) for r in records] == \
            [("failed", source, dest)], records
        wait_for(f"{dest} to drop what it laid out",
                 lambda: not c.instance_dir(dest, sid).exists(), 60)
        assert sid not in c.nodes[dest].domains()
        assert "live migration starting" in c.procs[source].log()
    finally:
        del c.procs[dest].extra["libvirt"]["live_migration_uri"]
        restart(c, dest)


def test_live_migrate_to_a_node_whose_novad_is_down(cluster: Cluster) -> None:
    c = cluster
    sid = STATE["server"]
    source = c.apis[NAMES[0]].server(sid)[HOST]
    dest = next(n for n in reversed(NAMES) if n not in (source, NAMES[0]))
    c.procs[dest].kill()
    DOWN.add(dest)
    others = [c.procs[n] for n in NAMES if n != dest]
    wait_for(f"{dest} dead everywhere",
             lambda: all(p.states().get(dest) == "dead" for p in others), 60)
    api = c.apis[source]
    log_before = c.console(source, sid)
    resp = api.http.post(f"{api.proc.url}{SERVERS}/{sid}/action",
                         json={"os-migrateLive": {**LIVE, "host": dest}}, timeout=120)
    assert resp.status_code in (202, 400), resp.text
    assert_still_on(c, sid, source, log_before)
    failed_records(c, sid, dest)
    assert not c.instance_dir(dest, sid).exists()
    assert requests.get(f"{c.procs[source].url}/healthz", timeout=5).status_code == 200
