"""What only the libvirt driver promises: its files, its disks, its mappings.

The behaviour every driver shares is in ``test_driver_contract.py``; this
module checks the instance directory (Nova's layout), the qemu-img paths,
the event and power-state mappings, and, in the integration tier, a real
guest on ``qemu:///system``.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
import uuid
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from driver_cases import BIGGER, CASES, FLAVOR, DriverCase, SpecMaker

from novad.drivers.base import Driver, FlavorSpec, ImageSpec, InstanceSpec, LifecycleEvent
from novad.drivers.libvirt import LibvirtDriver, disks, events, virt
from novad.errors import DriverError, NotImplementedByDriver
from novad.states.enums import PowerState

GIB = 1024**3
needs_qemu_img = pytest.mark.skipif(shutil.which("qemu-img") is None, reason="qemu-img missing")


@pytest.fixture
def case() -> DriverCase:
    """Only the libvirt driver here, whatever other cases the contract has."""
    return CASES["libvirt-test"]


def head(path: Path, size: int) -> bytes:
    """The first bytes of a (big, sparse) file."""
    with path.open("rb") as f:
        return f.read(size)


def qemu_img_info(path: Path) -> dict[str, Any]:
    out = subprocess.run(["qemu-img", "info", "-U", "--output=json", str(path)],
                         check=True, capture_output=True, text=True).stdout
    info: dict[str, Any] = json.loads(out)
    return info


def virtual_size(path: Path) -> int:
    """A disk's guest-visible size, whatever its format."""
    if disks.detect_format(path) == "raw":
        return path.stat().st_size
    return int(qemu_img_info(path)["virtual-size"])


@pytest.fixture
def no_qemu_img(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Hide qemu-img (an empty PATH), so every disk is sparse raw."""
    (tmp_path / "empty-bin").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))


async def test_spawn_writes_nova_layout(driver: Driver, make_spec: SpecMaker) -> None:
    spec = make_spec()
    await driver.spawn(spec)
    root = spec.instance_dir / "disk"
    assert virtual_size(root) == 1 * GIB
    assert root.stat().st_blocks * 512 < 1024 * 1024  # sparse or compact
    defined = ET.fromstring((spec.instance_dir / "libvirt.xml").read_text())
    assert defined.findtext("name") == f"novad-{spec.instance_id}"
    assert defined.get("type") == "test"


async def test_flavor_disks_and_config_drive(driver: Driver, make_spec: SpecMaker) -> None:
    flavor = FlavorSpec("3", "m1.extra", 1, 128, 1, ephemeral_gb=1, swap_mb=64)
    spec = make_spec(flavor=flavor, config_drive=True)
    await driver.spawn(spec)
    assert (spec.instance_dir / "disk.local").stat().st_size == 1 * GIB
    assert (spec.instance_dir / "disk.swap").stat().st_size == 64 * 1024 * 1024
    assert (spec.instance_dir / "disk.config").exists()
    # Formatted as Nova formats them: an image without os_type gets vfat.
    assert probe(spec.instance_dir / "disk.local") == {"TYPE": "vfat", "LABEL": "ephemeral0"}
    assert probe(spec.instance_dir / "disk.swap")["TYPE"] == "swap"
    assert not list(spec.instance_dir.glob(".*.part"))


def probe(path: Path) -> dict[str, str]:
    """What blkid finds on a disk file."""
    out = subprocess.run(["blkid", "-p", "-s", "TYPE", "-s", "LABEL", "-o", "export", str(path)],
                         capture_output=True, text=True).stdout
    found = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    return {key: found[key] for key in ("TYPE", "LABEL") if key in found}


@pytest.mark.parametrize(("os_type", "configured", "fs"), [
    ("linux", "", "ext4"), ("windows", "", "ntfs"), (None, "", "vfat"), ("linux", "xfs", "xfs"),
    (None, "ext3", "ext3")])
def test_ephemeral_filesystem_is_chosen_as_nova_chooses(os_type: str | None, configured: str,
                                                        fs: str) -> None:
    assert disks.ephemeral_fs(os_type, configured) == fs


async def test_linux_image_gets_ext4_ephemeral(make_spec: SpecMaker, tmp_path: Path) -> None:
    drv = LibvirtDriver("test:///default", "qemu", "127.0.0.1", "n", instances_path=tmp_path)
    await drv.start()
    try:
        flavor = FlavorSpec("3", "m1.extra", 1, 128, 1, ephemeral_gb=1)
        spec = make_spec(flavor=flavor, image=ImageSpec("i", properties={"os_type": "linux"}))
        await drv.spawn(spec)
        assert probe(spec.instance_dir / "disk.local") == {"TYPE": "ext4",
                                                           "LABEL": "ephemeral0"}
    finally:
        await drv.destroy(spec.instance_id, spec.instance_dir)
        await drv.close()


async def test_a_filesystem_that_cannot_be_made_fails_the_spawn_cleanly(
        make_spec: SpecMaker, tmp_path: Path) -> None:
    """ntfs needs mkfs.ntfs (ntfs-3g), which the set-up does not install: the
    spawn fails saying so and leaves no instance directory."""
    drv = LibvirtDriver("test:///default", "qemu", "127.0.0.1", "n", instances_path=tmp_path,
                        ephemeral_format="ntfs")
    await drv.start()
    try:
        flavor = FlavorSpec("3", "m1.extra", 1, 128, 1, ephemeral_gb=1)
        spec = make_spec(flavor=flavor)
        if shutil.which("mkfs.ntfs"):
            await drv.spawn(spec)
            assert probe(spec.instance_dir / "disk.local")["TYPE"] == "ntfs"
        else:
            with pytest.raises(DriverError, match="Cannot make a ntfs filesystem on disk.local"):
                await drv.spawn(spec)
            assert not spec.instance_dir.exists()
    finally:
        await drv.destroy(spec.instance_id, spec.instance_dir)
        await drv.close()


@needs_qemu_img
async def test_spawn_from_image_makes_qcow2_overlay(driver: Driver, make_spec: SpecMaker,
                                                    raw_image: ImageSpec,
                                                    tmp_path: Path) -> None:
    spec = make_spec(image=raw_image)
    await driver.spawn(spec)
    info = qemu_img_info(spec.instance_dir / "disk")
    base = spec.instance_dir.parent / "_base" / raw_image.image_id
    assert info["format"] == "qcow2"
    assert info["backing-filename"] == str(base.absolute())
    assert info["virtual-size"] == 1 * GIB
    target = tmp_path / "snap.qcow2"
    assert await driver.snapshot(spec.instance_id, target, _noop) == "qcow2"
    snap = qemu_img_info(target)
    assert snap["format"] == "qcow2" and "backing-filename" not in snap
    raw = tmp_path / "snap.raw"
    subprocess.run(["qemu-img", "convert", "-O", "raw", str(target), str(raw)], check=True)
    assert head(raw, 17) == b"novad-boot-sector"


def _age(folder: Path, seconds: float) -> None:
    """Make every file in ``folder`` look unused for ``seconds``."""
    then = time.time() - seconds
    for path in folder.iterdir():
        os.utime(path, (then, then))


@needs_qemu_img
async def test_image_cache_removes_only_what_no_guest_uses(
        driver: LibvirtDriver, make_spec: SpecMaker, raw_image: ImageSpec) -> None:
    other = replace(raw_image, image_id=f"img-{uuid.uuid4()}")
    kept, dropped = make_spec(image=raw_image), make_spec(image=other)
    await driver.spawn(kept)
    await driver.spawn(dropped)
    await driver.destroy(dropped.instance_id, dropped.instance_dir)
    base_dir = kept.instance_dir.parent / "_base"
    (base_dir / ".left-by-a-crash.part").write_bytes(b"x")
    assert await driver.age_image_cache(3600) == []  # everything was just used
    _age(base_dir, 7200)
    removed = set(await driver.age_image_cache(3600))
    size = 1 * GIB
    assert removed == {other.image_id, f"{other.image_id}.overlay-{size}",
                       f"{raw_image.image_id}.overlay-{size}", ".left-by-a-crash.part"}
    assert [p.name for p in base_dir.iterdir()] == [raw_image.image_id]  # kept's disk needs it
    again = make_spec(image=other)  # the cache fills again on the next boot
    await driver.spawn(again)
    assert qemu_img_info(again.instance_dir / "disk")["backing-filename"] == \
        str((base_dir / other.image_id).absolute())


@needs_qemu_img
async def test_a_boot_marks_its_base_and_template_used(
        driver: LibvirtDriver, make_spec: SpecMaker, raw_image: ImageSpec) -> None:
    first = make_spec(image=raw_image)
    await driver.spawn(first)
    await driver.destroy(first.instance_id, first.instance_dir)
    base_dir = first.instance_dir.parent / "_base"
    _age(base_dir, 7200)
    await driver.spawn(make_spec(image=raw_image))  # copies the old template
    assert await driver.age_image_cache(3600) == []


@needs_qemu_img
async def test_root_disks_are_copies_of_one_overlay_template(
        driver: Driver, make_spec: SpecMaker, raw_image: ImageSpec, tmp_path: Path) -> None:
    """Each root disk is a copy of ``_base/<image>.overlay-<size>``, byte for
    byte what ``qemu-img create`` makes, and each is the instance's own file."""
    first, second = make_spec(image=raw_image), make_spec(image=raw_image)
    await driver.spawn(first)
    await driver.spawn(second)
    base = first.instance_dir.parent / "_base" / raw_image.image_id
    template = base.with_name(f"{base.name}.overlay-{GIB}")
    made = tmp_path / "made.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b",
                    str(base.absolute()), str(made), str(GIB)], check=True)
    for spec in (first, second):
        disk = spec.instance_dir / "disk"
        assert disk.read_bytes() == template.read_bytes() == made.read_bytes()
    assert (first.instance_dir / "disk").stat().st_ino != (second.instance_dir / "disk").stat().st_ino
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 0 64k",
                    str(first.instance_dir / "disk")], check=True, capture_output=True)
    assert (second.instance_dir / "disk").read_bytes() == made.read_bytes()
    assert template.read_bytes() == made.read_bytes()


@needs_qemu_img
async def test_flavor_smaller_than_image_is_refused(driver: Driver, make_spec: SpecMaker,
                                                    tmp_path: Path) -> None:
    """Nova's FlavorDiskSmallerThanImage: refused, and the failed spawn
    leaves no guest and no instance directory behind."""
    path = tmp_path / "big.raw"
    with path.open("wb") as f:
        f.truncate(2 * GIB)
    spec = make_spec(image=ImageSpec(image_id=f"img-{uuid.uuid4()}", path=path, disk_format="raw"))
    with pytest.raises(DriverError, match="Flavor's disk is too small"):
        await driver.spawn(spec)
    assert await driver.get_power_state(spec.instance_id) == PowerState.NOSTATE
    assert not spec.instance_dir.exists()


@needs_qemu_img
async def test_zero_root_flavor_takes_the_image_size(driver: Driver, make_spec: SpecMaker,
                                                     tmp_path: Path) -> None:
    path = tmp_path / "big.raw"
    with path.open("wb") as f:
        f.truncate(2 * GIB)
    spec = make_spec(flavor=replace(FLAVOR, root_gb=0),
                     image=ImageSpec(image_id=f"img-{uuid.uuid4()}", path=path, disk_format="raw"))
    await driver.spawn(spec)
    assert qemu_img_info(spec.instance_dir / "disk")["virtual-size"] == 2 * GIB


async def test_image_that_is_not_the_disk_it_claims_is_refused(
        driver: Driver, make_spec: SpecMaker, tmp_path: Path) -> None:
    path = tmp_path / "junk.qcow2"
    path.write_bytes(b"not a qcow2 image\n" * 64)
    image = ImageSpec(image_id=f"img-{uuid.uuid4()}", path=path, disk_format="qcow2")
    spec = make_spec(image=image)
    with pytest.raises(DriverError, match="not a valid qcow2 disk image"):
        await driver.spawn(spec)
    assert not spec.instance_dir.exists()
    assert not (spec.instance_dir.parent / "_base" / image.image_id).exists()


@needs_qemu_img
async def test_image_with_backing_file_is_refused(driver: Driver, make_spec: SpecMaker,
                                                  tmp_path: Path) -> None:
    evil = tmp_path / "evil.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", "/etc/hostname",
                    str(evil), "1M"], check=True)
    spec = make_spec(image=ImageSpec(image_id=f"img-{uuid.uuid4()}", path=evil))
    with pytest.raises(DriverError, match="refers to another file"):
        await driver.spawn(spec)


@pytest.mark.usefixtures("no_qemu_img")
async def test_without_qemu_img_disks_are_sparse_raw(driver: Driver, make_spec: SpecMaker,
                                                     raw_image: ImageSpec, tmp_path: Path) -> None:
    spec = make_spec(image=raw_image)
    await driver.spawn(spec)
    assert disks.detect_format(spec.instance_dir / "disk") == "raw"
    target = tmp_path / "snap"
    assert await driver.snapshot(spec.instance_id, target, _noop) == "raw"
    assert target.stat().st_size == 1 * GIB


async def test_rescue_keeps_and_then_drops_files(driver: Driver, make_spec: SpecMaker,
                                                 raw_image: ImageSpec) -> None:
    spec = make_spec()
    await driver.spawn(spec)
    await driver.rescue(spec, raw_image)
    await driver.rescue(spec, raw_image)  # a repeat keeps the original XML
    kept = ET.fromstring((spec.instance_dir / "unrescue.xml").read_text())
    assert len(kept.findall("./devices/disk")) == 1
    assert (spec.instance_dir / "disk.rescue").exists()
    await driver.unrescue(spec)
    assert not (spec.instance_dir / "unrescue.xml").exists()
    assert not (spec.instance_dir / "disk.rescue").exists()
    current = ET.fromstring((spec.instance_dir / "libvirt.xml").read_text())
    assert len(current.findall("./devices/disk")) == 1


@pytest.mark.usefixtures("no_qemu_img")  # raw, so the test can write to the disk
async def test_resize_keeps_files_and_revert_restores_disk(driver: Driver,
                                                           make_spec: SpecMaker) -> None:
    old = make_spec()
    await driver.spawn(old)
    root = old.instance_dir / "disk"
    with root.open("r+b") as f:
        f.write(b"before-resize")
    await driver.migrate_disk_and_power_off(old, BIGGER, timeout=5, retry_interval=1)
    assert head(old.instance_dir / "disk.resize", 13) == b"before-resize"
    assert (old.instance_dir / "libvirt.xml.resize").exists()
    await driver.finish_migration(replace(old, flavor=BIGGER), power_on=True)
    assert root.stat().st_size == 2 * GIB
    with root.open("r+b") as f:
        f.write(b"after--resize")
    await driver.finish_revert_migration(old, power_on=False)
    assert root.stat().st_size == 1 * GIB
    assert head(root, 13) == b"before-resize"
    assert not (old.instance_dir / "disk.resize").exists()
    assert not (old.instance_dir / "libvirt.xml.resize").exists()
    assert await driver.get_power_state(old.instance_id) == PowerState.SHUTDOWN


async def test_resize_grows_disk_and_revert_shrinks_it_back(driver: Driver,
                                                             make_spec: SpecMaker) -> None:
    old = make_spec()
    root = old.instance_dir / "disk"
    await driver.spawn(old)
    await driver.migrate_disk_and_power_off(old, BIGGER, timeout=5, retry_interval=1)
    await driver.finish_migration(replace(old, flavor=BIGGER), power_on=True)
    assert virtual_size(root) == 2 * GIB
    assert virtual_size(old.instance_dir / "disk.resize") == 1 * GIB
    await driver.finish_revert_migration(old, power_on=True)
    assert virtual_size(root) == 1 * GIB


async def test_confirm_drops_kept_files(driver: Driver, make_spec: SpecMaker) -> None:
    old = make_spec()
    await driver.spawn(old)
    await driver.migrate_disk_and_power_off(old, BIGGER, timeout=5, retry_interval=1)
    await driver.finish_migration(replace(old, flavor=BIGGER), power_on=True)
    await driver.confirm_migration(old.instance_id, old.instance_dir)
    assert sorted(p.name for p in old.instance_dir.glob("*.resize")) == []
    assert virtual_size(old.instance_dir / "disk") == 2 * GIB


async def test_console_without_vnc_port(driver: Driver, make_spec: SpecMaker) -> None:
    spec = make_spec()
    await driver.spawn(spec)
    with pytest.raises(NotImplementedByDriver, match="no VNC port"):
        await driver.get_console(spec.instance_id)


def test_events_reach_a_second_event_loop(tmp_path: Path) -> None:
    """Each asyncio.run gets its own loop; events must follow the driver's loop."""

    async def one_round() -> list[LifecycleEvent]:
        drv = LibvirtDriver("test:///default", "qemu", "127.0.0.1", "n", instances_path=tmp_path)
        await drv.start()
        spec = InstanceSpec(str(uuid.uuid4()), "vm", "p", "u", FLAVOR, ImageSpec("i"),
                            tmp_path / str(uuid.uuid4()))
        seen: list[LifecycleEvent] = []

        async def read() -> None:
            async for event in drv.events():
                if event.instance_id == spec.instance_id:
                    seen.append(event.event)
                    if len(seen) == 2:
                        return

        reader = asyncio.create_task(read())
        await drv.spawn(spec)
        await drv.pause(spec.instance_id)
        await asyncio.wait_for(reader, 5)
        await drv.destroy(spec.instance_id, spec.instance_dir)
        await drv.close()
        return seen

    for _ in range(2):
        assert asyncio.run(one_round()) == [LifecycleEvent.STARTED, LifecycleEvent.PAUSED]


async def test_events_before_first_consumer_are_kept(driver: Driver,
                                                    make_spec: SpecMaker) -> None:
    spec = make_spec()
    await driver.spawn(spec)
    await driver.pause(spec.instance_id)
    await asyncio.sleep(0.1)  # the events reach the loop before anyone listens
    seen: list[LifecycleEvent] = []

    async def read() -> None:
        async for event in driver.events():
            if event.instance_id == spec.instance_id:
                seen.append(event.event)
                if len(seen) == 2:
                    return

    await asyncio.wait_for(read(), 5)
    assert seen == [LifecycleEvent.STARTED, LifecycleEvent.PAUSED]


async def test_every_consumer_sees_every_event(driver: Driver, make_spec: SpecMaker) -> None:
    spec = make_spec()

    async def first_pause() -> LifecycleEvent:
        async for event in driver.events():
            if event.instance_id == spec.instance_id and event.event == LifecycleEvent.PAUSED:
                return event.event
        raise AssertionError("events ended")

    readers = [asyncio.create_task(first_pause()) for _ in range(2)]
    await asyncio.sleep(0)
    await driver.spawn(spec)
    await driver.pause(spec.instance_id)
    assert await asyncio.wait_for(asyncio.gather(*readers), 5) == [LifecycleEvent.PAUSED] * 2


async def test_a_watch_wakes_for_its_own_guest_only() -> None:
    bridge = events.EventBridge(asyncio.get_running_loop())
    with bridge.watch("guest-a") as changed:
        bridge.announce("guest-b", LifecycleEvent.STOPPED)
        assert not changed.is_set()
        bridge.announce("guest-a", LifecycleEvent.STOPPED)
        assert changed.is_set()
    changed.clear()
    bridge.announce("guest-a", LifecycleEvent.STARTED)
    assert not changed.is_set()  # the block ended: nobody watches any more


async def test_libvirt_events_wake_a_watch(driver: LibvirtDriver, make_spec: SpecMaker) -> None:
    spec = make_spec()
    await driver.spawn(spec)
    with driver._link.bridge.watch(spec.instance_id) as changed:
        await driver.pause(spec.instance_id)
        await asyncio.wait_for(changed.wait(), 5)  # from libvirt's event thread


@pytest.mark.parametrize(("event", "detail", "expected"), [
    (events.EVENT_STARTED, 0, LifecycleEvent.STARTED),
    (events.EVENT_STARTED, 2, LifecycleEvent.STARTED),  # restored from managed save
    (events.EVENT_SUSPENDED, 0, LifecycleEvent.PAUSED),
    (events.EVENT_RESUMED, 0, LifecycleEvent.RESUMED),
    (events.EVENT_STOPPED, 0, LifecycleEvent.STOPPED),
    (events.EVENT_STOPPED, 1, LifecycleEvent.STOPPED),
    (events.EVENT_STOPPED, events.STOPPED_SAVED, LifecycleEvent.SUSPENDED),
    (events.EVENT_PMSUSPENDED, 0, LifecycleEvent.SUSPENDED),
    (0, 0, None),  # DEFINED
    (1, 0, None),  # UNDEFINED
])
def test_lifecycle_mapping(event: int, detail: int, expected: LifecycleEvent | None) -> None:
    assert events.map_lifecycle(event, detail) == expected


@pytest.mark.parametrize(("state", "saved", "expected"), [
    (virt.DOMAIN_NOSTATE, False, PowerState.NOSTATE),
    (virt.DOMAIN_RUNNING, False, PowerState.RUNNING),
    (virt.DOMAIN_BLOCKED, False, PowerState.RUNNING),
    (virt.DOMAIN_PAUSED, False, PowerState.PAUSED),
    (virt.DOMAIN_SHUTDOWN, False, PowerState.SHUTDOWN),
    (virt.DOMAIN_SHUTOFF, False, PowerState.SHUTDOWN),
    (virt.DOMAIN_SHUTOFF, True, PowerState.SUSPENDED),
    (virt.DOMAIN_CRASHED, False, PowerState.CRASHED),
    (virt.DOMAIN_PMSUSPENDED, False, PowerState.SUSPENDED),
])
def test_power_state_mapping(state: int, saved: bool, expected: PowerState) -> None:
    assert virt.power_state(state, saved) == expected


def test_sparse_copy_keeps_data_and_holes(tmp_path: Path) -> None:
    source, target = tmp_path / "src", tmp_path / "dst"
    with source.open("wb") as f:
        f.truncate(64 * 1024 * 1024)
        f.seek(10 * 1024 * 1024)
        f.write(b"middle")
    disks.sparse_copy(source, target)
    assert target.stat().st_size == source.stat().st_size
    assert target.stat().st_blocks * 512 < 8 * 1024 * 1024
    with target.open("rb") as f:
        f.seek(10 * 1024 * 1024)
        assert f.read(6) == b"middle"


async def test_grow_never_shrinks(tmp_path: Path) -> None:
    path = tmp_path / "disk"
    disks.create_sparse(path, 2 * GIB)
    await disks.grow(path, 1)
    assert path.stat().st_size == 2 * GIB
    await disks.grow(path, 3)
    assert path.stat().st_size == 3 * GIB


async def _noop(_state: str) -> None:
    return None


# -- integration tier: a real libvirtd with QEMU (TCG) ----------------------

QEMU_URI = "qemu:///system"


@pytest.mark.integration
async def test_qemu_guest_smoke(tmp_path: Path) -> None:
    """Define, start, pause, power off and destroy a diskless-boot guest on
    real QEMU: the XML must be acceptable to libvirt and QEMU as written."""
    drv = LibvirtDriver(QEMU_URI, "qemu", "127.0.0.1", "node-it", instances_path=tmp_path)
    try:
        await drv.start()
    except DriverError as exc:
        pytest.skip(f"{QEMU_URI} is unreachable: {exc.message}")
    instance_id = str(uuid.uuid4())
    spec = InstanceSpec(instance_id, "smoke", "p", "u", FLAVOR, ImageSpec("none"),
                        tmp_path / instance_id, config_drive=True)
    try:
        await drv.spawn(spec)
        assert await drv.get_power_state(instance_id) == PowerState.RUNNING
        console = await drv.get_console(instance_id)
        assert console.host == "127.0.0.1" and console.port >= 5900
        await drv.pause(instance_id)
        assert await drv.get_power_state(instance_id) == PowerState.PAUSED
        await drv.unpause(instance_id)
        await drv.power_off(instance_id, False, 0, 1)
        assert await drv.get_power_state(instance_id) == PowerState.SHUTDOWN
        assert os.path.exists(spec.instance_dir / "console.log")
    finally:
        await drv.destroy(instance_id, spec.instance_dir)
        await drv.close()
    assert domain_gone(instance_id)


def domain_gone(instance_id: str) -> bool:
    """True when libvirt no longer knows the domain (checked with virsh)."""
    out = subprocess.run(["virsh", "-c", QEMU_URI, "list", "--all", "--uuid"],
                         capture_output=True, text=True).stdout
    return instance_id not in out
