"""novad keeps working when libvirtd restarts under it (a package upgrade,
a crash): guests keep running, the daemon reconnects by itself, actions and
lifecycle events work again, and nothing needs restarting."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import libvirt
from integration_helpers import (
    QEMU_URI,
    ROOT,
    SMALL,
    Daemon,
    Libvirt,
    booted,
    start_daemon,
    teardown_daemon,
    wait_for,
)


def libvirtd_pids() -> list[int]:
    found = subprocess.run(["pgrep", "-x", "libvirtd"], capture_output=True, text=True)
    return [int(pid) for pid in found.stdout.split()]


def stop_libvirtd() -> None:
    """Stop libvirtd; its guests keep running."""
    pids = libvirtd_pids()
    assert pids, "no libvirtd process to stop"
    for pid in pids:
        os.kill(pid, signal.SIGTERM)
    wait_for("libvirtd to exit", lambda: not libvirtd_pids() or None, 60)


def start_libvirtd() -> None:
    """Start libvirtd the way ``scripts/test`` does."""
    subprocess.run([str(ROOT / "scripts" / "libvirtd-up")], check=True)


def restart_libvirtd() -> None:
    """Stop libvirtd (its guests keep running) and start it again."""
    stop_libvirtd()
    start_libvirtd()


def compute_service(d: Daemon) -> dict[str, Any]:
    """This node's nova-compute, as ``GET /os-services`` shows it."""
    (row,) = d.call("GET", "/compute/v2.1/os-services", ok=(200,)).json()["services"]
    return dict(row)


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


def test_the_node_takes_no_new_servers_while_libvirtd_is_away(qemu: Libvirt,
                                                                tmp_path: Path) -> None:
    """As Nova's libvirt driver does: the connection lost, the compute service
    disables itself with an ``AUTO:`` reason, so a boot ends in NoValidHost
    rather than failing half-way in libvirt; back, it enables itself -- but an
    admin's own disable outlives a libvirtd restart."""
    d = start_daemon(tmp_path)
    try:
        assert compute_service(d)["status"] == "enabled"
        image = d.image_id("demo")
        stop_libvirtd()
        try:
            row = wait_for("the service to disable itself",
                           lambda: (r := compute_service(d))["status"] == "disabled" and r
                           or None, 60)
            assert row["disabled_reason"].startswith("AUTO: Connection to libvirt lost: ")
            refused = d.create_server("during", SMALL["id"], image="", imageRef=image)
            shown = d.wait_status(refused, "ERROR")
            assert shown["fault"]["message"] == (
                "No valid host was found. There are not enough hosts available.")
        finally:
            start_libvirtd()
        qemu.conn = libvirt.open(QEMU_URI)
        row = wait_for("the service to enable itself",
                       lambda: (r := compute_service(d))["status"] == "enabled" and r or None,
                       90)
        assert row["disabled_reason"] is None
        uuid = d.create_server("after", SMALL["id"])
        d.wait_status(uuid, "ACTIVE")
        assert qemu.state(uuid) == libvirt.VIR_DOMAIN_RUNNING

        d.call("PUT", "/compute/v2.1/os-services/disable-log-reason",
               {"host": row["host"], "binary": "nova-compute",
                "disabled_reason": "maintenance"}, ok=(200,))
        reconnects = d.log_path.read_text().count("libvirt connection re-established")
        restart_libvirtd()
        qemu.conn = libvirt.open(QEMU_URI)
        wait_for("novad to reconnect",
                 lambda: d.log_path.read_text().count("libvirt connection re-established")
                 > reconnects or None, 90)
        row = compute_service(d)
        assert (row["status"], row["disabled_reason"]) == ("disabled", "maintenance")
    finally:
        teardown_daemon(d, qemu)
