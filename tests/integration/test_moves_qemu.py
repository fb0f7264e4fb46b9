"""Instances moving between three novad nodes on real QEMU (issue 15, item 1).

Three ``novad serve`` processes clustered on loopback (``cluster_helpers``),
each on its OWN private libvirtd (``scripts/libvirtd-node``: own mount
namespace, own ``/etc/libvirt`` with its persistent domains, own sockets),
so a guest that moved really runs under another daemon.  The demo guest
(``scripts/build-demo-guest``: kernel, busybox initramfs, empty qcow2 root
disk) is uploaded through the Image API as the uec trio ``aki``/``ari``/
``qcow2`` with ``kernel_id``/``ramdisk_id``.  The tests run in order on one
cluster: a cold migration, a cross-node resize with confirm and one with
revert, an evacuation of a node that was SIGKILLed with its libvirtd (the
power-off that fences it), and that node's return, which must destroy its
stale copies and never start them.

**How "it keeps its disk" is checked.**  The demo guest runs from its
initramfs and never touches its root disk; its serial console is a file
(``console.log``), output only, with no shell to drive, and it does not run
``user_data``.  So nothing can be written *through the guest*.  Instead the
test writes a known pattern into the guest's disk *from the host* while the
server is SHUTOFF (``qemu-io -c "write -P 0x5a 1M 64k"`` on its qcow2 ``disk``),
starts it again, migrates it, and then checks on the destination that
``qemu-io -U -c "read -P 0x5a 1M 64k"`` finds the pattern, and that
``qemu-img compare -U`` sees the same guest-visible contents in the
source's copy (powered off, kept until confirm) and the destination's.

No wall-clock assertion: every wait is bounded polling.  Needs root, the
libvirtd-node tools, QEMU and qemu-img/qemu-io; otherwise the module skips
saying which.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import libvirt
import pytest
import requests
from integration_helpers import BIG, DEMO_DIR, MARKER, ROOT, SMALL, boots, ensure_demo_guest, \
    uptimes, wait_for

sys.path.insert(0, str(ROOT / "tests" / "cluster"))
from cluster_helpers import Proc, launch, shutdown  # noqa: E402

NODE_SCRIPT = ROOT / "scripts" / "libvirtd-node"
NAMES = ["mq1", "mq2", "mq3"]
ADDRS = {"mq1": "127.0.0.31", "mq2": "127.0.0.32", "mq3": "127.0.0.33"}
VICTIM = "mq2"  # not mq1, the others' seed, so it can come back by itself
SERVERS = "/compute/v2.1/servers"
HOST = "OS-EXT-SRV-ATTR:host"
PATTERN = ("0x5a", "1M", "64k")
RUNNING = libvirt.VIR_DOMAIN_RUNNING


def _why_not() -> str | None:
    """None when private libvirtds with QEMU guests can run here, else why not."""
    if os.geteuid() != 0:
        return "scripts/libvirtd-node needs root (mount namespaces, libvirtd as root)"
    for tool in ("unshare", "tini", "libvirtd", "virtlogd", "virsh", "qemu-system-x86_64",
                 "qemu-img", "qemu-io"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (scripts/setup installs it)"
    return None


# -- libvirt nodes -------------------------------------------------------------------


@dataclass
class LibvirtNode:
    """One private libvirtd (scripts/libvirtd-node) that one novad uses."""

    name: str
    base: Path
    uri: str = ""

    def run(self, *args: str) -> str:
        done = subprocess.run([str(NODE_SCRIPT), *args, self.name, "--base", str(self.base)],
                              capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise AssertionError(f"libvirtd-node {args} {self.name}: {done.stderr}")
        return done.stdout.strip()

    def start(self) -> None:
        self.uri = self.run("start", "--addr", ADDRS[self.name])

    def domains(self) -> dict[str, tuple[str, int]]:
        """Every domain this libvirtd has (defined or running): uuid -> (name, state)."""
        conn = libvirt.open(self.uri)
        try:
            found = {}
            for dom in conn.listAllDomains(0):
                try:
                    found[dom.UUIDString()] = (dom.name(), int(dom.state()[0]))
                except libvirt.libvirtError:
                    continue
            return found
        finally:
            conn.close()

    def state(self, uuid: str) -> int | None:
        """The domain's state here, None when this libvirtd has no such domain."""
        found = self.domains().get(uuid)
        return None if found is None else found[1]

    def xml(self, uuid: str) -> str:
        conn = libvirt.open(self.uri)
        try:
            return str(conn.lookupByUUIDString(uuid).XMLDesc(0))
        finally:
            conn.close()

    def qemu_starts(self, domain_name: str) -> int:
        """How many times this libvirtd started QEMU for the domain (its qemu log)."""
        path = self.base / self.name / "log" / "qemu" / f"{domain_name}.log"
        try:
            return path.read_text(errors="replace").count("starting up")
        except FileNotFoundError:
            return 0


# -- the novad cluster ---------------------------------------------------------------


class Client:
    """A synchronous client of one node's OpenStack API with a token."""

    def __init__(self, proc: Proc, tok: str) -> None:
        self.proc = proc
        self.http = requests.Session()
        self.http.headers["X-Auth-Token"] = tok

    def call(self, method: str, path: str, body: Any = None, ok: tuple[int, ...] = (),
             data: bytes | None = None, headers: dict[str, str] | None = None) -> Any:
        hdrs = dict(headers or {})
        if data is not None:
            hdrs["Content-Type"] = "application/octet-stream"
        resp = self.http.request(method, f"{self.proc.url}{path}", headers=hdrs,
                                 json=body if data is None else None, data=data, timeout=120)
        if ok and resp.status_code not in ok:
            raise AssertionError(f"{self.proc.name}: {method} {path} -> {resp.status_code}: "
                                 f"{resp.text}")
        return resp.json() if resp.content else None

    def server(self, uuid: str) -> dict[str, Any]:
        return dict(self.call("GET", f"{SERVERS}/{uuid}", ok=(200,))["server"])

    def action(self, uuid: str, body: dict[str, Any], ok: tuple[int, ...] = (202,)) -> Any:
        return self.call("POST", f"{SERVERS}/{uuid}/action", body, ok=ok)

    def settled(self, uuid: str, status: str, timeout: float = 240.0) -> dict[str, Any]:
        """The server once it is ``status`` with no task; ERROR fails at once."""
        seen: dict[str, Any] = {}

        def check() -> bool:
            seen.clear()
            seen.update(self.server(uuid))
            if seen["status"] == "ERROR" != status:
                raise AssertionError(f"{uuid} went ERROR: {seen.get('fault')}")
            return bool(seen["status"] == status and seen["OS-EXT-STS:task_state"] is None)
        try:
            wait_for(f"{uuid} to be {status}", check, timeout)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; last seen {seen.get('status')} "
                                 f"task={seen.get('OS-EXT-STS:task_state')} "
                                 f"host={seen.get(HOST)}") from None
        return dict(seen)


@dataclass
class Cluster:
    """The three novad processes, their libvirt nodes and API clients."""

    procs: dict[str, Proc]
    nodes: dict[str, LibvirtNode]
    apis: dict[str, Client]
    image: str

    def instance_dir(self, host: str, uuid: str) -> Path:
        return self.procs[host].state_dir / "instances" / uuid

    def console(self, host: str, uuid: str) -> str:
        try:
            return (self.instance_dir(host, uuid) / "console.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def running_copies(self, uuid: str) -> list[str]:
        """The libvirt nodes on which the instance's domain runs."""
        return [n for n, node in self.nodes.items()
                if _answers(node) and node.state(uuid) == RUNNING]

    def logs(self) -> str:
        return "\n".join(f"---- {n} novad.log (tail)\n{p.log()[-4000:]}"
                         for n, p in self.procs.items())


VICTIM_DOWN: list[str] = [""]  # the name of the node that is down, while it is


def _answers(node: LibvirtNode) -> bool:
    try:
        libvirt.open(node.uri).close()
        return True
    except libvirt.libvirtError:
        return False


def _ready(proc: Proc) -> bool:
    if proc.process is not None and proc.process.poll() is not None:
        raise AssertionError(f"{proc.name} exited {proc.process.returncode}:\n{proc.log()[-4000:]}")
    try:
        return requests.get(f"{proc.url}/healthz", timeout=5).status_code == 200
    except requests.RequestException:
        return False


def _token(proc: Proc) -> str:
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"id": "default"}, "password": proc.admin_password()}}},
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}
    resp = requests.post(f"{proc.url}/identity/v3/auth/tokens", json=body, timeout=30)
    assert resp.status_code == 201, resp.text
    return resp.headers["X-Subject-Token"]


def _upload(api: Client, name: str, disk_format: str, path: Path, **props: str) -> str:
    container = disk_format if disk_format in ("aki", "ari") else "bare"
    image = api.call("POST", "/image/v2/images", {
        "name": name, "disk_format": disk_format, "container_format": container,
        "visibility": "public", **props}, ok=(201,))
    api.call("PUT", f"/image/v2/images/{image['id']}/file", data=path.read_bytes(), ok=(204,))
    return str(image["id"])


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Three novad nodes, each on its own libvirtd, with the demo images and
    the integration flavors; everything removed afterwards."""
    why = _why_not()
    if why is not None:
        pytest.skip(why)
    ensure_demo_guest()
    base = Path(tempfile.mkdtemp(prefix="lvq", dir="/tmp"))  # short: unix socket paths
    nodes = {n: LibvirtNode(n, base) for n in NAMES}
    procs: list[Proc] = []
    try:
        for node in nodes.values():
            node.start()
        only = {n: {"libvirt": {"connection_uri": nodes[n].uri, "virt_type": "qemu"}}
                for n in NAMES}
        extra = {"DEFAULT": {"shutdown_timeout": 10},
                 "compute": {"shutdown_retry_interval": 2},
                 "cluster": {"rejoin_wait": 20.0},
                 "quota": {"instances": -1, "cores": -1, "ram": -1}}
        procs = launch(tmp_path_factory.mktemp("moves-qemu"), NAMES, extra, only)
        by_name = {p.name: p for p in procs}
        for proc in procs:
            wait_for(f"{proc.name} ready", lambda p=proc: _ready(p), 120)

        def all_alive() -> bool:
            return all({n for n, st in p.states().items() if st == "alive"} == set(NAMES)
                       for p in procs)
        wait_for("every node sees every other alive", all_alive, 60)
        tok = _token(procs[0])
        apis = {p.name: Client(p, tok) for p in procs}
        first = apis[NAMES[0]]
        for flavor in (SMALL, BIG):
            first.call("POST", "/compute/v2.1/flavors", {"flavor": flavor}, ok=(200,))
        kernel = _upload(first, "mq-kernel", "aki", DEMO_DIR / "vmlinuz")
        ramdisk = _upload(first, "mq-ramdisk", "ari", DEMO_DIR / "initrd.img")
        image = _upload(first, "mq-demo", "qcow2", DEMO_DIR / "demo.qcow2",
                        kernel_id=kernel, ramdisk_id=ramdisk)

        def everywhere() -> bool:
            for api in apis.values():
                for img in (kernel, ramdisk, image):
                    shown = api.http.get(f"{api.proc.url}/image/v2/images/{img}", timeout=30)
                    if shown.status_code != 200 or shown.json()["status"] != "active":
                        return False
                if api.http.get(f"{api.proc.url}/compute/v2.1/flavors/{BIG['id']}",
                                timeout=30).status_code != 200:
                    return False
            return True
        wait_for("images and flavors replicated", everywhere, 60)
        yield Cluster(by_name, nodes, apis, image)
    finally:
        shutdown(procs)
        for node in nodes.values():
            subprocess.run([str(NODE_SCRIPT), "clean", node.name, "--base", str(base)],
                           capture_output=True, timeout=120)
        shutil.rmtree(base, ignore_errors=True)


# -- helpers -------------------------------------------------------------------------


def boot(c: Cluster, name: str, host: str | None = None) -> dict[str, Any]:
    """An ACTIVE demo server (on ``host``, forced as an admin's ``nova:host``)
    whose guest has booted."""
    api = c.apis[NAMES[0]]
    body: dict[str, Any] = {"name": name, "flavorRef": SMALL["id"], "imageRef": c.image}
    if host:
        body["availability_zone"] = f"nova:{host}"
    sid = api.call("POST", SERVERS, {"server": body}, ok=(202,))["server"]["id"]
    shown = api.settled(sid, "ACTIVE")
    wait_for(f"{sid} to boot on {shown[HOST]}",
             lambda: boots(c.console(shown[HOST], sid)) >= 1, 120)
    return shown


def ticks_on(c: Cluster, host: str, uuid: str) -> None:
    """The guest's console on ``host`` gains an uptime tick: it runs there."""
    seen = len(uptimes(c.console(host, uuid)))
    wait_for(f"{uuid} ticking on {host}",
             lambda: len(uptimes(c.console(host, uuid))) > seen, 90)


def qemu_io(disk: Path, command: str, *flags: str) -> str:
    done = subprocess.run(["qemu-io", *flags, "-f", "qcow2", "-c", command, str(disk)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "fail" not in (done.stdout + done.stderr).lower(), done.stdout + done.stderr
    return done.stdout


def assert_only_on(c: Cluster, uuid: str, host: str) -> None:
    """The instance's domain runs on ``host``'s libvirtd and no other's."""
    assert c.running_copies(uuid) == [host], (uuid, host, c.running_copies(uuid))


def other_hosts(host: str) -> list[str]:
    return [n for n in NAMES if n != host]


STATE: dict[str, Any] = {}
"""What the ordered tests hand on: the server of the move tests."""


# -- the tests, in order ---------------------------------------------------------------


def test_cold_migrate_moves_the_running_guest_with_its_disk(cluster: Cluster) -> None:
    c = cluster
    inst = boot(c, "mq-cold")
    sid, source = inst["id"], inst[HOST]
    api = c.apis[source]
    # A known pattern in the guest's disk, written while it is off (see the docstring).
    api.action(sid, {"os-stop": None})
    api.settled(sid, "SHUTOFF")
    disk = c.instance_dir(source, sid) / "disk"
    qemu_io(disk, f"write -P {' '.join(PATTERN)}")
    api.action(sid, {"os-start": None})
    api.settled(sid, "ACTIVE")
    wait_for("the second boot on the source", lambda: boots(c.console(source, sid)) >= 2, 120)
    assert_only_on(c, sid, source)
    domain_name = c.nodes[source].domains()[sid][0]
    starts = {n: c.nodes[n].qemu_starts(domain_name) for n in NAMES}

    c.apis[other_hosts(source)[0]].action(sid, {"migrate": None})
    moved = c.apis[other_hosts(source)[1]].settled(sid, "VERIFY_RESIZE")
    dest = moved[HOST]
    assert dest != source
    for a in c.apis.values():
        assert a.server(sid)[HOST] == dest

    # Runs under the destination's libvirtd, from the destination's files; the
    # source's libvirtd has it no more running (its files are kept until confirm).
    assert_only_on(c, sid, dest)
    assert str(c.instance_dir(dest, sid) / "disk") in c.nodes[dest].xml(sid)
    assert c.nodes[dest].qemu_starts(domain_name) == starts[dest] + 1
    assert c.nodes[source].qemu_starts(domain_name) == starts[source]
    # A new boot on the destination: the console log came along and goes on.
    source_log = c.console(source, sid)
    wait_for(f"{sid} to boot on {dest}",
             lambda: boots(c.console(dest, sid)) == boots(source_log) + 1, 120)
    assert c.console(dest, sid).startswith(source_log.rsplit(MARKER, 1)[0])
    ticks_on(c, dest, sid)
    # The disk's guest-visible contents came along, pattern included.
    dest_disk = c.instance_dir(dest, sid) / "disk"
    qemu_io(dest_disk, f"read -P {' '.join(PATTERN)}", "-U", "-r")
    assert disk.is_file(), "the source dropped its files before confirm"
    done = subprocess.run(["qemu-img", "compare", "-U", str(disk), str(dest_disk)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr

    c.apis[source].action(sid, {"confirmResize": None}, ok=(204,))
    after = c.apis[dest].settled(sid, "ACTIVE")
    assert after[HOST] == dest
    wait_for("the source's files to go", lambda: not c.instance_dir(source, sid).exists(), 60)
    assert sid not in c.nodes[source].domains()
    assert_only_on(c, sid, dest)
    STATE["server"] = sid


def test_resize_to_another_node_and_confirm_drops_the_source(cluster: Cluster) -> None:
    c = cluster
    sid = STATE["server"]
    source = c.apis[NAMES[0]].server(sid)[HOST]
    c.apis[source].action(sid, {"resize": {"flavorRef": BIG["id"]}})
    resized = c.apis[source].settled(sid, "VERIFY_RESIZE")
    dest = resized[HOST]
    assert dest != source
    assert resized["flavor"]["id"] == BIG["id"]
    assert_only_on(c, sid, dest)
    xml = c.nodes[dest].xml(sid)
    assert re.search(rf"<vcpu[^>]*>{BIG['vcpus']}</vcpu>", xml), xml
    assert re.search(rf"<memory unit='KiB'>{int(str(BIG['ram'])) * 1024}</memory>", xml), xml
    ticks_on(c, dest, sid)

    c.apis[dest].action(sid, {"confirmResize": None}, ok=(204,))
    after = c.apis[source].settled(sid, "ACTIVE")
    assert (after[HOST], after["flavor"]["id"]) == (dest, BIG["id"])
    wait_for("the source's files to go", lambda: not c.instance_dir(source, sid).exists(), 60)
    assert sid not in c.nodes[source].domains()
    assert_only_on(c, sid, dest)


def test_resize_to_another_node_and_revert_runs_it_on_the_source_again(
        cluster: Cluster) -> None:
    c = cluster
    sid = STATE["server"]
    source = c.apis[NAMES[0]].server(sid)[HOST]
    boots_before = boots(c.console(source, sid))
    c.apis[source].action(sid, {"resize": {"flavorRef": SMALL["id"]}})
    resized = c.apis[source].settled(sid, "VERIFY_RESIZE")
    dest = resized[HOST]
    assert dest != source
    assert_only_on(c, sid, dest)

    c.apis[source].action(sid, {"revertResize": None})
    back = c.apis[dest].settled(sid, "ACTIVE")
    assert (back[HOST], back["flavor"]["id"]) == (source, BIG["id"])
    wait_for(f"{sid} to boot again on {source}",
             lambda: boots(c.console(source, sid)) > boots_before, 120)
    ticks_on(c, source, sid)
    assert_only_on(c, sid, source)
    assert re.search(rf"<vcpu[^>]*>{BIG['vcpus']}</vcpu>", c.nodes[source].xml(sid))
    wait_for("the destination's files to go", lambda: not c.instance_dir(dest, sid).exists(), 60)
    assert sid not in c.nodes[dest].domains()


def test_evacuate_a_killed_and_forced_down_node(cluster: Cluster) -> None:
    c = cluster
    for i in range(2):
        assert boot(c, f"mq-evac{i}", host=VICTIM)[HOST] == VICTIM
    everything = c.apis[NAMES[0]].call("GET", f"{SERVERS}/detail?all_tenants=1", ok=(200,))
    victims = sorted(s["id"] for s in everything["servers"] if s[HOST] == VICTIM)
    assert len(victims) >= 2
    STATE["victims"] = victims
    STATE["domain_names"] = {sid: c.nodes[VICTIM].domains()[sid][0] for sid in victims}
    for sid in victims:
        assert_only_on(c, sid, VICTIM)

    # Power-off: novad SIGKILLed, its libvirtd and every QEMU of it SIGKILLed.
    c.procs[VICTIM].kill()
    c.nodes[VICTIM].run("kill")
    VICTIM_DOWN[0] = VICTIM
    others = [c.procs[n] for n in other_hosts(VICTIM)]
    wait_for(f"{VICTIM} dead everywhere",
             lambda: all(p.states().get(VICTIM) == "dead" for p in others), 60)
    live = c.apis[others[0].name]
    live.call("PUT", "/compute/v2.1/os-services/force-down",
              {"host": VICTIM, "binary": "nova-compute", "forced_down": True},
              headers={"OpenStack-API-Version": "compute 2.11"}, ok=(200,))
    # The record replicates: every live node must show it forced down (each
    # checks its own copy before it evacuates anything).

    def forced_everywhere() -> bool:
        for name in other_hosts(VICTIM):
            listed = c.apis[name].call(
                "GET", f"/compute/v2.1/os-services?host={VICTIM}&binary=nova-compute",
                headers={"OpenStack-API-Version": "compute 2.11"}, ok=(200,))["services"]
            if not (listed and listed[0]["forced_down"] and listed[0]["state"] == "down"):
                return False
        return True
    wait_for(f"{VICTIM} forced down on every live node", forced_everywhere, 60)

    for sid in victims:
        c.apis[others[1].name].action(sid, {"evacuate": {}}, ok=(200,))
    for sid in victims:
        # The 200 comes once the target adopted the row; another node's
        # replica shows the new host a moment later.
        wait_for(f"{sid} off {VICTIM} as {live.proc.name} sees it",
                 lambda: live.server(sid)[HOST] != VICTIM, 60)
        shown = live.settled(sid, "ACTIVE")
        target = shown[HOST]
        assert target in other_hosts(VICTIM), shown
        wait_for(f"{sid} to boot on {target}", lambda: boots(c.console(target, sid)) >= 1, 120)
        ticks_on(c, target, sid)
        assert c.nodes[target].state(sid) == RUNNING
        assert c.running_copies(sid) == [target]


def test_the_dead_node_returns_and_destroys_its_stale_copies(cluster: Cluster) -> None:
    c = cluster
    victims: list[str] = STATE["victims"]
    names: dict[str, str] = STATE["domain_names"]
    node = c.nodes[VICTIM]
    node.start()
    # Its libvirtd kept the persistent definitions but must not start them.
    kept = node.domains()
    starts = {sid: node.qemu_starts(names[sid]) for sid in victims}
    assert all(kept.get(sid, ("", 0))[1] != RUNNING for sid in victims), kept
    assert set(victims) <= set(kept), f"the persistent definitions did not survive: {kept}"
    assert all(c.instance_dir(VICTIM, sid).is_dir() for sid in victims)

    c.procs[VICTIM].start()
    wait_for(f"{VICTIM} ready", lambda: _ready(c.procs[VICTIM]), 120)
    VICTIM_DOWN[0] = ""
    after = node.domains()
    assert all(after.get(sid, ("", 0))[1] != RUNNING for sid in victims), after
    wait_for(f"{VICTIM}'s stale definitions to go",
             lambda: not set(victims) & set(node.domains()), 60)
    assert {sid: node.qemu_starts(names[sid]) for sid in victims} == starts, \
        "the returning node started a stale copy"
    fenced = [json.loads(line).get("instance_id") for line in c.procs[VICTIM].log().splitlines()
              if "destroying a stale copy" in line and line.startswith("{")]
    assert set(victims) <= set(fenced), fenced
    for sid in victims:
        assert not c.instance_dir(VICTIM, sid).exists()
        shown = c.apis[VICTIM].settled(sid, "ACTIVE")
        assert shown[HOST] != VICTIM
        assert c.running_copies(sid) == [shown[HOST]]
        ticks_on(c, shown[HOST], sid)
    wait_for(f"{VICTIM} alive again everywhere",
             lambda: all(p.states().get(VICTIM) == "alive" for p in c.procs.values()), 60)
