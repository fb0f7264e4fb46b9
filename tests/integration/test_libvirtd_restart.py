"""novad keeps working when libvirtd restarts under it (a package upgrade,
a crash): guests keep running, the daemon reconnects by itself, actions and
lifecycle events work again, and nothing needs restarting."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import libvirt
from integration_helpers import (
    QEMU_URI,
    ROOT,
    SMALL,
    Libvirt,
    booted,
    start_daemon,
    teardown_daemon,
    wait_for,
)


def libvirtd_pids() -> list[int]:
    found = subprocess.run(["pgrep", "-x", "libvirtd"], capture_output=True, text=True)
    return [int(pid) for pid in found.stdout.split()]


def restart_libvirtd() -> None:
    """Stop libvirtd (its guests keep running) and start it the way
    ``scripts/test`` does."""
    pids = libvirtd_pids()
    assert pids, "no libvirtd process to restart"
    for pid in pids:
        os.kill(pid, signal.SIGTERM)
    wait_for("libvirtd to exit", lambda: not libvirtd_pids() or None, 60)
    subprocess.run([str(ROOT / "scripts" / "libvirtd-up")], check=True)


def test_actions_and_events_work_after_libvirtd_restarts(qemu: Libvirt, tmp_path: Path) -> None:
    d = start_daemon(tmp_path, sync_power_state_interval=3600)  # only events can tell
    try:
        uuid = d.create_server("restart", SMALL["id"])
        d.wait_status(uuid, "ACTIVE")
        booted(d, uuid)

        restart_libvirtd()
        qemu.conn = libvirt.open(QEMU_URI)  # the test's own connection broke too
        assert qemu.state(uuid) == libvirt.VIR_DOMAIN_RUNNING  # the guest lived through it
        wait_for("novad to reconnect",
                 lambda: "libvirt connection re-established" in d.log_path.read_text() or None,
                 90)

        d.action(uuid, {"pause": None})
        d.wait_status(uuid, "PAUSED")
        assert qemu.state(uuid) == libvirt.VIR_DOMAIN_PAUSED
        d.action(uuid, {"unpause": None})
        d.wait_status(uuid, "ACTIVE")
        assert qemu.state(uuid) == libvirt.VIR_DOMAIN_RUNNING

        # Events arrive on the new connection: a guest destroyed behind
        # novad's back is seen stopped (power sync, facts section 5; the
        # periodic sweep is an hour away, so only the event can tell it).
        dom = qemu.domain(uuid)
        assert dom is not None
        dom.destroy()
        d.wait_status(uuid, "SHUTOFF", timeout=120)
    finally:
        teardown_daemon(d, qemu)
