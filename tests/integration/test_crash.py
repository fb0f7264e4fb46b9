"""Crash safety with a real hypervisor.

Three real guests take well over a hundred random actions through the API
while the daemon is killed with SIGKILL at random moments (at least ten
times) and restarted on the same state directory and port.  Requests may be
refused (409: another task runs, or the state does not allow it); that is
fine.  At the end, after one more kill and restart, every instance must be
stable and agree with libvirt: its vm_state and power_state match the
domain, no row is lost, and no guest or instance directory is left without
a live row.

The random choices come from a fixed seed, printed at the start (set
``NOVAD_CRASH_SEED`` to replay another run).
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

import libvirt
from integration_helpers import BIG, SMALL, Daemon, Libvirt, wait_for

SEED = int(os.environ.get("NOVAD_CRASH_SEED", "20261121"))
ACTIONS = 120
KILLS = 12

# What makes progress from each status; a few requests are drawn from
# everything instead, to exercise refusals.
BY_STATUS: dict[str, list[dict[str, Any]]] = {
    "ACTIVE": [{"pause": None}, {"suspend": None}, {"os-stop": None},
               {"reboot": {"type": "SOFT"}}, {"reboot": {"type": "HARD"}},
               {"resize": {"flavorRef": "flip"}}, {"shelve": None}, {"rescue": None}],
    "PAUSED": [{"unpause": None}, {"reboot": {"type": "HARD"}}],
    "SUSPENDED": [{"resume": None}],
    "SHUTOFF": [{"os-start": None}, {"resize": {"flavorRef": "flip"}}, {"rescue": None}],
    "VERIFY_RESIZE": [{"confirmResize": None}, {"revertResize": None}],
    "SHELVED": [{"unshelve": None}],
    "SHELVED_OFFLOADED": [{"unshelve": None}],
    "RESCUE": [{"unrescue": None}],
    "ERROR": [{"reboot": {"type": "HARD"}}],
}
EVERYTHING = [action for actions in BY_STATUS.values() for action in actions]

# libvirt's domain state → novad's power_state (NOSTATE 0, RUNNING 1,
# PAUSED 3, SHUTDOWN 4, SUSPENDED 7); a shut-off domain with a managed save
# is SUSPENDED.
LIBVIRT_POWER = {libvirt.VIR_DOMAIN_RUNNING: 1, libvirt.VIR_DOMAIN_BLOCKED: 1,
                 libvirt.VIR_DOMAIN_PAUSED: 3, libvirt.VIR_DOMAIN_SHUTOFF: 4,
                 libvirt.VIR_DOMAIN_SHUTDOWN: 4, libvirt.VIR_DOMAIN_CRASHED: 6}
# The power states each vm_state may have once no task runs.
VM_POWER = {"active": {1}, "paused": {3}, "suspended": {7}, "stopped": {4, 0},
            "rescued": {1}, "resized": {1, 4}, "shelved": {4, 0}, "shelved_offloaded": {0},
            "error": {0, 1, 3, 4, 6, 7}}


def power_in_libvirt(qemu: Libvirt, uuid: str) -> int:
    dom = qemu.domain(uuid)
    if dom is None:
        return 0
    state = int(dom.state()[0])
    if state == libvirt.VIR_DOMAIN_SHUTOFF and dom.hasManagedSaveImage(0):
        return 7
    return LIBVIRT_POWER.get(state, 0)


def choose(rng: random.Random, status: str, flavor: str) -> dict[str, Any]:
    pool = BY_STATUS.get(status) or EVERYTHING
    action = dict(rng.choice(EVERYTHING if rng.random() < 0.15 else pool))
    if "resize" in action:  # to the other flavor, so the request is a real resize
        action["resize"] = {"flavorRef": BIG["id"] if flavor == SMALL["id"] else SMALL["id"]}
    return action


def test_random_actions_with_kill_9(novad: Daemon, qemu: Libvirt) -> None:
    d = novad
    rng = random.Random(SEED)
    print(f"\ncrash test seed: {SEED} (NOVAD_CRASH_SEED replays another)")
    servers = [d.create_server(f"crash-{i}", SMALL["id"]) for i in range(3)]
    for uuid in servers:
        d.wait_status(uuid, "ACTIVE")
    kill_at = set(rng.sample(range(5, ACTIONS), KILLS))
    codes: Counter[int] = Counter()
    sent: Counter[str] = Counter()
    kills = 0
    for step in range(ACTIONS):
        uuid = rng.choice(servers)
        shown = d.server(uuid)
        action = choose(rng, shown["status"], shown["flavor"]["id"])
        resp = d.action(uuid, action, ok=())
        codes[resp.status_code] += 1
        sent[next(iter(action))] += 1
        assert resp.status_code < 500, f"{action} -> {resp.status_code}: {resp.text}"
        if step in kill_at:
            time.sleep(rng.uniform(0.0, 4.0))  # somewhere inside the work
            d.kill()
            kills += 1
            d.start()
        else:
            time.sleep(rng.uniform(0.2, 2.5))
    print(f"actions: {dict(sent)}\nresponses: {dict(codes)}\nkills: {kills}")
    assert kills >= 10 and sum(codes.values()) >= 100

    d.kill()  # one last crash, then the state recovery leaves behind is checked
    d.start()
    check_consistent(d, qemu, servers)


def check_consistent(d: Daemon, qemu: Libvirt, servers: list[str]) -> None:
    """Stable, agreeing with libvirt, nothing lost, nothing orphaned."""
    def all_settled() -> list[dict[str, Any]] | None:
        rows = d.call("GET", "/compute/v2.1/servers/detail", ok=(200,)).json()["servers"]
        busy = [r for r in rows if r.get("OS-EXT-STS:task_state") is not None]
        return rows if not busy else None
    rows = wait_for("every task to finish", all_settled, timeout=240, interval=1)
    assert sorted(r["id"] for r in rows) == sorted(servers), "an instance row was lost"
    for row in rows:
        uuid, vm, power = row["id"], row["OS-EXT-STS:vm_state"], row["OS-EXT-STS:power_state"]
        print(f"{uuid}: {vm} power={power} fault={row.get('fault')}")
        assert vm in VM_POWER, f"{uuid} is in {vm}"
        actual = power_in_libvirt(qemu, uuid)
        assert power == actual, f"{uuid}: novad says power {power}, libvirt {actual} ({vm})"
        assert actual in VM_POWER[vm], f"{uuid}: {vm} with power {actual} in libvirt"
        if vm == "shelved_offloaded":
            assert qemu.domain(uuid) is None and not d.instance_dir(uuid).exists()
    node = (d.state / "node_id").read_text().strip()
    ours = [u for u in qemu.novad_domains() if node_of(qemu, u) == node]
    assert set(ours) <= set(servers), f"orphan domains: {set(ours) - set(servers)}"
    dirs = {p.name for p in (d.state / "instances").iterdir()
            if p.is_dir() and not p.name.startswith("_")}
    assert dirs <= set(servers), f"orphan instance directories: {dirs - set(servers)}"
    leftovers = list(Path(d.state / "instances").glob("*/.*.part"))
    assert not leftovers, f"half-written files: {leftovers}"


def node_of(qemu: Libvirt, uuid: str) -> str | None:
    dom = qemu.domain(uuid)
    if dom is None:
        return None
    try:
        meta = dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT,
                            "https://novad.dev/xmlns/instance/1.0", 0)
    except libvirt.libvirtError:
        return None
    start, end = meta.find("<node>"), meta.find("</node>")
    return meta[start + 6:end] if start >= 0 else None
