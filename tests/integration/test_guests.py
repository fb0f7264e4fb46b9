"""Every action on a real QEMU guest, checked in the guest and in libvirt.

One server (``life``) goes through the actions in file order, each test
leaving it ACTIVE for the next; a second one checks the config drive.  Each
test asserts what the guest really did: its console log (boot marker,
uptime ticks, the disks and config drive it sees), the domain's state and
XML in libvirt, the disk's virtual size (``qemu-img info``), the files in
the instance directory.
"""

from __future__ import annotations

import time
from typing import Any

import libvirt
import pytest
from integration_helpers import (
    BIG,
    HUGE,
    MARKER,
    SMALL,
    Daemon,
    Libvirt,
    booted,
    boots,
    ticking,
    uptimes,
    virtual_size,
    wait_for,
)

GIB = 1024**3


@pytest.fixture(scope="module")
def life(novad: Daemon) -> dict[str, Any]:
    """The shared server: booted once, ACTIVE, its marker seen."""
    uuid = novad.create_server("life", SMALL["id"])
    novad.wait_status(uuid, "ACTIVE")
    booted(novad, uuid)
    return {"id": uuid}


def test_boot_shows_the_marker(novad: Daemon, qemu: Libvirt, life: dict[str, Any]) -> None:
    uuid = life["id"]
    assert qemu.state(uuid) == libvirt.VIR_DOMAIN_RUNNING
    assert qemu.sizes(uuid) == (1, 128)
    assert MARKER in novad.console_output(uuid)  # through the API, as `console log show`
    files = {p.name for p in novad.instance_dir(uuid).iterdir()}
    assert {"disk", "console.log", "libvirt.xml", "kernel", "ramdisk"} <= files
    assert "<novad:node>" in (novad.instance_dir(uuid) / "libvirt.xml").read_text()
    shown = novad.server(uuid)
    assert shown["OS-EXT-STS:power_state"] == 1 and shown["OS-EXT-STS:vm_state"] == "active"


def test_pause_stops_the_ticks_and_unpause_resumes_them(novad: Daemon, qemu: Libvirt,
                                                       life: dict[str, Any]) -> None:
    uuid = life["id"]
    ticking(novad, uuid)
    novad.action(uuid, {"pause": None})
    novad.wait_status(uuid, "PAUSED")
    assert qemu.state(uuid) == libvirt.VIR_DOMAIN_PAUSED
    before = novad.console_log(uuid)
    time.sleep(3)  # a running guest prints a tick every second
    assert novad.console_log(uuid) == before
    novad.action(uuid, {"unpause": None})
    novad.wait_status(uuid, "ACTIVE")
    assert qemu.state(uuid) == libvirt.VIR_DOMAIN_RUNNING
    assert ticking(novad, uuid) > uptimes(before)[-1]


def test_suspend_saves_and_resume_continues_the_same_boot(novad: Daemon, qemu: Libvirt,
                                                          life: dict[str, Any]) -> None:
    uuid = life["id"]
    last = ticking(novad, uuid)
    boots_before = boots(novad.console_log(uuid))
    novad.action(uuid, {"suspend": None})
    novad.wait_status(uuid, "SUSPENDED")
    dom = qemu.domain(uuid)
    assert dom is not None and dom.hasManagedSaveImage(0) == 1
    assert qemu.state(uuid) == libvirt.VIR_DOMAIN_SHUTOFF
    novad.action(uuid, {"resume": None})
    novad.wait_status(uuid, "ACTIVE")
    assert ticking(novad, uuid) > last  # the guest's clock went on, no reboot
    assert boots(novad.console_log(uuid)) == boots_before
    assert dom.hasManagedSaveImage(0) == 0


def test_stop_and_start(novad: Daemon, qemu: Libvirt, life: dict[str, Any]) -> None:
    uuid = life["id"]
    count = boots(booted(novad, uuid))
    ticking(novad, uuid)
    novad.action(uuid, {"os-stop": None})
    shown = novad.wait_status(uuid, "SHUTOFF")
    assert shown["OS-EXT-STS:power_state"] == 4
    assert qemu.state(uuid) == libvirt.VIR_DOMAIN_SHUTOFF
    novad.action(uuid, {"os-start": None})
    novad.wait_status(uuid, "ACTIVE")
    booted(novad, uuid, count + 1)
    assert qemu.state(uuid) == libvirt.VIR_DOMAIN_RUNNING


def test_soft_reboot_goes_through_the_guests_acpid(novad: Daemon, life: dict[str, Any]) -> None:
    uuid = life["id"]
    text = booted(novad, uuid)
    ticking(novad, uuid)  # acpid is up once the guest ticks
    count, presses = boots(text), text.count("novad-demo: power button")
    novad.action(uuid, {"reboot": {"type": "SOFT"}})
    novad.wait_status(uuid, "ACTIVE")
    text = booted(novad, uuid, count + 1)
    assert text.count("novad-demo: power button") > presses  # clean, not the hard fallback


def test_hard_reboot(novad: Daemon, qemu: Libvirt, life: dict[str, Any]) -> None:
    uuid = life["id"]
    count = boots(booted(novad, uuid))
    novad.action(uuid, {"reboot": {"type": "HARD"}})
    novad.wait_status(uuid, "ACTIVE")
    booted(novad, uuid, count + 1)
    assert qemu.state(uuid) == libvirt.VIR_DOMAIN_RUNNING


def _guest_agent(novad: Daemon, image: str, enabled: bool) -> None:
    """Set or remove the image's hw_qemu_guest_agent property."""
    op = ({"op": "add", "path": "/hw_qemu_guest_agent", "value": "yes"} if enabled
          else {"op": "remove", "path": "/hw_qemu_guest_agent"})
    resp = novad.session.patch(
        f"{novad.url}/image/v2/images/{image}", json=[op], timeout=60,
        headers={"Content-Type": "application/openstack-images-v2.1-json-patch"})
    assert resp.status_code == 200, resp.text


def _hard_reboot(novad: Daemon, uuid: str) -> None:
    novad.action(uuid, {"reboot": {"type": "HARD"}})
    novad.wait_status(uuid, "ACTIVE")


def test_change_password_goes_through_the_guest_agent(novad: Daemon, qemu: Libvirt,
                                                      life: dict[str, Any]) -> None:
    uuid = life["id"]
    body = {"changePassword": {"adminPass": "n0t-in-any-log"}}
    refused = novad.action(uuid, body, ok=(409,)).json()
    assert refused == {"conflictingRequest": {"code": 409,
                                              "message": "QEMU guest agent is not enabled"}}
    image = novad.image_id("demo")
    _guest_agent(novad, image, True)
    try:
        _hard_reboot(novad, uuid)  # the new XML has the agent's channel
        target = qemu.xml(uuid).find("./devices/channel/target[@name='org.qemu.guest_agent.0']")
        assert target is not None
        # The demo guest runs no agent, so libvirt reports it unresponsive: Nova's 501.
        missing = novad.action(uuid, body, ok=(501,)).json()
        assert missing == {"notImplemented": {"code": 501,
                                              "message": "Unable to set password on instance"}}
    finally:
        _guest_agent(novad, image, False)
        _hard_reboot(novad, uuid)
    shown = novad.server(uuid)
    assert (shown["status"], shown["OS-EXT-STS:task_state"]) == ("ACTIVE", None)
    assert "n0t-in-any-log" not in novad.log_path.read_text()
    for stored in novad.state.glob("novad.sqlite*"):  # the database, its WAL
        assert b"n0t-in-any-log" not in stored.read_bytes(), stored


def _resize(novad: Daemon, uuid: str, flavor: dict[str, Any]) -> None:
    novad.action(uuid, {"resize": {"flavorRef": flavor["id"]}})
    novad.wait_status(uuid, "VERIFY_RESIZE")


def test_resize_and_confirm(novad: Daemon, qemu: Libvirt, life: dict[str, Any]) -> None:
    uuid = life["id"]
    disk = novad.instance_dir(uuid) / "disk"
    assert qemu.sizes(uuid) == (SMALL["vcpus"], SMALL["ram"])
    assert virtual_size(disk) == SMALL["disk"] * GIB
    count = boots(booted(novad, uuid))
    _resize(novad, uuid, BIG)
    assert qemu.sizes(uuid) == (BIG["vcpus"], BIG["ram"])
    assert virtual_size(disk) == BIG["disk"] * GIB
    assert (novad.instance_dir(uuid) / "disk.resize").exists()
    booted(novad, uuid, count + 1)  # the resized guest boots
    novad.action(uuid, {"confirmResize": None}, ok=(204,))
    shown = novad.wait_status(uuid, "ACTIVE")
    assert shown["flavor"]["id"] == BIG["id"]
    assert qemu.sizes(uuid) == (BIG["vcpus"], BIG["ram"])
    assert not (novad.instance_dir(uuid) / "disk.resize").exists()
    assert not (novad.instance_dir(uuid) / "libvirt.xml.resize").exists()


def test_resize_and_revert(novad: Daemon, qemu: Libvirt, life: dict[str, Any]) -> None:
    uuid = life["id"]
    disk = novad.instance_dir(uuid) / "disk"
    old_sizes, old_disk = qemu.sizes(uuid), virtual_size(disk)
    assert old_sizes == (BIG["vcpus"], BIG["ram"])  # after the confirm above
    _resize(novad, uuid, HUGE)
    assert qemu.sizes(uuid) == (HUGE["vcpus"], HUGE["ram"])
    assert virtual_size(disk) == HUGE["disk"] * GIB
    count = boots(booted(novad, uuid))
    novad.action(uuid, {"revertResize": None})
    shown = novad.wait_status(uuid, "ACTIVE")
    assert shown["flavor"]["id"] == BIG["id"]
    assert qemu.sizes(uuid) == old_sizes
    assert virtual_size(disk) == old_disk
    booted(novad, uuid, count + 1)


def test_rescue_boots_with_two_disks(novad: Daemon, qemu: Libvirt, life: dict[str, Any]) -> None:
    uuid = life["id"]
    count = boots(booted(novad, uuid))
    novad.action(uuid, {"rescue": None}, ok=(200,))
    novad.wait_status(uuid, "RESCUE")
    assert qemu.disk_targets(uuid) == ["vda", "vdb"]
    assert (novad.instance_dir(uuid) / "unrescue.xml").exists()
    wait_for("the rescued guest to see two disks",
             lambda: "novad-demo: disks vda vdb" in novad.console_log(uuid))
    booted(novad, uuid, count + 1)
    novad.action(uuid, {"unrescue": None})
    novad.wait_status(uuid, "ACTIVE")
    assert qemu.disk_targets(uuid) == ["vda"]
    assert not (novad.instance_dir(uuid) / "unrescue.xml").exists()
    assert not (novad.instance_dir(uuid) / "disk.rescue").exists()
    booted(novad, uuid, count + 2)


def test_snapshot_makes_a_bootable_image(novad: Daemon, life: dict[str, Any]) -> None:
    uuid = life["id"]
    resp = novad.action(uuid, {"createImage": {"name": "life-snap"}})
    image_id = resp.headers["Location"].rstrip("/").rsplit("/", 1)[-1]
    novad.wait_status(uuid, "ACTIVE")
    image = wait_for("the snapshot to be active", lambda: (lambda i: i if i["status"] in (
        "active", "killed") else None)(novad.call("GET", f"/image/v2/images/{image_id}",
                                                   ok=(200,)).json()))
    assert image["status"] == "active" and image["disk_format"] == "qcow2"
    assert image.get("kernel_id") == novad.image_id("demo-kernel")  # a uec snapshot boots


def test_shelve_offloads_and_unshelve_boots_again(novad: Daemon, qemu: Libvirt,
                                                  life: dict[str, Any]) -> None:
    uuid = life["id"]
    booted(novad, uuid)
    ticking(novad, uuid)
    novad.action(uuid, {"shelve": None})
    novad.wait_status(uuid, "SHELVED_OFFLOADED")
    assert qemu.domain(uuid) is None
    assert not novad.instance_dir(uuid).exists()
    shelved = novad.call("GET", "/image/v2/images?name=life-shelved", ok=(200,)).json()["images"]
    assert len(shelved) == 1
    novad.action(uuid, {"unshelve": None})
    novad.wait_status(uuid, "ACTIVE")
    assert qemu.state(uuid) == libvirt.VIR_DOMAIN_RUNNING
    # The instance directory is new: its console.log starts with this boot.
    booted(novad, uuid, 1)
    assert novad.call("GET", "/image/v2/images?name=life-shelved",
                      ok=(200,)).json()["images"] == []


def test_rebuild_boots_a_fresh_disk(novad: Daemon, qemu: Libvirt, life: dict[str, Any]) -> None:
    uuid = life["id"]
    booted(novad, uuid)
    novad.action(uuid, {"rebuild": {"imageRef": novad.image_id("demo")}})
    novad.wait_status(uuid, "ACTIVE")
    booted(novad, uuid, 1)
    assert qemu.state(uuid) == libvirt.VIR_DOMAIN_RUNNING


def test_config_drive_is_seen_by_the_guest(novad: Daemon, qemu: Libvirt) -> None:
    novad.call("POST", "/compute/v2.1/os-keypairs", {"keypair": {"name": "it-key"}}, ok=(200,))
    uuid = novad.create_server("cfg", SMALL["id"], key_name="it-key",
                               user_data="#!/bin/sh\necho hello from user data\n")
    novad.wait_status(uuid, "ACTIVE")
    # The guest prints the config-2 line, then the user_data line a moment
    # later: wait for the last one so the check never races the guest.
    text = wait_for("the guest to read its config drive",
                    lambda: (lambda t: t if "novad-demo: user_data" in t else None)(
                        novad.console_log(uuid)))
    assert f"novad-demo: config-2 found uuid={uuid}" in text
    assert "novad-demo: user_data #!/bin/sh" in text
    root = qemu.xml(uuid)
    cdrom = root.find("./devices/disk[@device='cdrom']/source")
    assert cdrom is not None and cdrom.get("file", "").endswith("/disk.config")
    novad.call("DELETE", f"/compute/v2.1/servers/{uuid}", ok=(204,))
    wait_for("cfg to go", lambda: novad.call("GET", f"/compute/v2.1/servers/{uuid}"
                                             ).status_code == 404)


def test_delete_leaves_nothing(novad: Daemon, qemu: Libvirt, life: dict[str, Any]) -> None:
    uuid = life["id"]
    novad.call("DELETE", f"/compute/v2.1/servers/{uuid}", ok=(204,))
    wait_for("life to go", lambda: novad.call("GET", f"/compute/v2.1/servers/{uuid}"
                                              ).status_code == 404)
    assert qemu.domain(uuid) is None
    assert not novad.instance_dir(uuid).exists()
