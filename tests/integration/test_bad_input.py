"""Bad input on a real hypervisor: the server goes to ERROR with a fault that
says why, and nothing is left behind, in libvirt or on disk."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest
from integration_helpers import SMALL, Daemon, Libvirt


def upload(novad: Daemon, name: str, data: bytes, disk_format: str, **extra: object) -> str:
    """An image with ``data`` through the image API; its id."""
    body = {"name": name, "disk_format": disk_format, "container_format": "bare", **extra}
    image = novad.call("POST", "/image/v2/images", body, ok=(201,)).json()
    resp = novad.session.put(f"{novad.url}/image/v2/images/{image['id']}/file", data=data,
                             headers={"Content-Type": "application/octet-stream"}, timeout=60)
    assert resp.status_code == 204, resp.text
    return str(image["id"])


def boot_fails(novad: Daemon, qemu: Libvirt, name: str, image_id: str) -> str:
    """Boot ``image_id``; assert ERROR and a clean host; the fault message."""
    body = {"name": name, "flavorRef": SMALL["id"], "imageRef": image_id}
    server = novad.call("POST", "/compute/v2.1/servers", {"server": body}, ok=(202,)).json()
    uuid_ = str(server["server"]["id"])
    shown = novad.wait_status(uuid_, "ERROR")
    assert qemu.domain(uuid_) is None, "a failed build left a domain"
    assert not novad.instance_dir(uuid_).exists(), "a failed build left its directory"
    message = str(shown["fault"]["message"])
    novad.call("DELETE", f"/compute/v2.1/servers/{uuid_}", ok=(204,))
    return message


def test_an_image_that_is_not_a_disk(novad: Daemon, qemu: Libvirt) -> None:
    image_id = upload(novad, "junk", b"this is not a qcow2 image\n" * 100, "qcow2")
    message = boot_fails(novad, qemu, "junk-vm", image_id)
    assert "not a valid qcow2 disk image" in message
    assert not (novad.state / "instances" / "_base" / image_id).exists()


def test_a_flavor_too_small_for_the_image(novad: Daemon, qemu: Libvirt, tmp_path: Path) -> None:
    disk = tmp_path / "big.qcow2"  # 2 GiB virtual, a few hundred KiB of data
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "2G"], check=True)
    image_id = upload(novad, "big", disk.read_bytes(), "qcow2")
    message = boot_fails(novad, qemu, "big-vm", image_id)
    assert "Flavor's disk is too small for requested image" in message


def test_min_disk_above_the_flavor_is_refused_at_once(novad: Daemon) -> None:
    image_id = upload(novad, "needs-5g", b"\0" * 512, "raw", min_disk=5)
    body = {"name": "min-disk-vm", "flavorRef": SMALL["id"], "imageRef": image_id}
    resp = novad.call("POST", "/compute/v2.1/servers", {"server": body})
    assert resp.status_code == 400  # Nova's API checks min_disk before any build
    assert "too small" in resp.text


@pytest.mark.parametrize("what", ["kernel_id", "ramdisk_id"])
def test_a_missing_kernel_or_ramdisk(novad: Daemon, qemu: Libvirt, tmp_path: Path,
                                     what: str) -> None:
    disk = tmp_path / "root.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "64M"], check=True)
    missing = str(uuid.uuid4())
    props = {"kernel_id": novad.image_id("demo-kernel"),
             "ramdisk_id": novad.image_id("demo-ramdisk"), what: missing}
    image_id = upload(novad, f"no-{what}", disk.read_bytes(), "qcow2", **props)
    message = boot_fails(novad, qemu, f"no-{what}-vm", image_id)
    assert missing in message and "could not be found" in message
