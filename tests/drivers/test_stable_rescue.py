"""Nova's stable device rescue: the domain XML for each rescue device and
bus, the parsing of the two image properties, and a rescue/unrescue on
libvirt's test driver that returns to the saved XML byte for byte."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest
from driver_cases import CASES, DriverCase, SpecMaker
from test_xml import INST_DIR, build, disks, make_spec

from novad.drivers.base import (
    DiskBus,
    Driver,
    ImageSpec,
    InstanceSpec,
    RescueDevice,
    rescue_options,
)
from novad.errors import Invalid, UnsupportedRescueBus, UnsupportedRescueDevice

RESCUE = f"{INST_DIR}/disk.rescue"
ROOT = f"{INST_DIR}/disk"


def rescue_image(device: RescueDevice | None = None, bus: DiskBus | None = None,
                 **extra: object) -> ImageSpec:
    return replace(ImageSpec(image_id="rescue-1"), rescue_device=device, rescue_bus=bus,
                   **extra)  # type: ignore[arg-type]


def boot_orders(root: ET.Element) -> dict[str, str | None]:
    """Target dev to the disk's boot order (None: no <boot> element)."""
    found: dict[str, str | None] = {}
    for disk in root.iterfind("./devices/disk"):
        target, boot = disk.find("target"), disk.find("boot")
        assert target is not None
        found[target.get("dev", "")] = boot.get("order") if boot is not None else None
    return found


def rescued(spec: InstanceSpec, image: ImageSpec) -> ET.Element:
    return build(spec, rescue=image, rescue_format="raw")


def assert_boots_rescue_only(root: ET.Element, rescue_target: str) -> None:
    orders = boot_orders(root)
    assert orders.pop(rescue_target) == "1"
    assert set(orders.values()) == {None}
    assert root.find("./os/boot") is None  # libvirt refuses it beside per-device orders


# -- the layout per device and bus ------------------------------------------------------

def test_virtio_disk_is_the_next_vd_target_after_the_guests_disks() -> None:
    spec = replace(make_spec(ephemeral_gb=1, swap_mb=64), config_drive=True)
    root = rescued(spec, rescue_image(RescueDevice.DISK, DiskBus.VIRTIO))
    assert disks(root) == [
        ("disk", "vda", "virtio", "qcow2", ROOT),
        ("disk", "vdb", "virtio", "raw", f"{INST_DIR}/disk.local"),
        ("disk", "vdc", "virtio", "raw", f"{INST_DIR}/disk.swap"),
        ("cdrom", "hda", "ide", "raw", f"{INST_DIR}/disk.config"),
        ("disk", "vdd", "virtio", "raw", RESCUE),
    ]
    assert_boots_rescue_only(root, "vdd")
    assert root.find("./devices/controller[@type='scsi']") is None


def test_scsi_disk_gets_a_virtio_scsi_controller() -> None:
    root = rescued(make_spec(), rescue_image(RescueDevice.DISK, DiskBus.SCSI))
    assert disks(root) == [("disk", "vda", "virtio", "qcow2", ROOT),
                           ("disk", "sda", "scsi", "raw", RESCUE)]
    assert_boots_rescue_only(root, "sda")
    [controller] = root.findall("./devices/controller")
    assert (controller.get("type"), controller.get("model")) == ("scsi", "virtio-scsi")


def test_usb_disk() -> None:
    root = rescued(make_spec(), rescue_image(RescueDevice.DISK, DiskBus.USB))
    assert disks(root) == [("disk", "vda", "virtio", "qcow2", ROOT),
                           ("disk", "sda", "usb", "raw", RESCUE)]
    assert_boots_rescue_only(root, "sda")


def test_ide_cdrom_is_read_only_and_follows_the_config_drive() -> None:
    spec = replace(make_spec(), config_drive=True)
    root = rescued(spec, rescue_image(RescueDevice.CDROM, DiskBus.IDE))
    assert disks(root) == [("disk", "vda", "virtio", "qcow2", ROOT),
                           ("cdrom", "hda", "ide", "raw", f"{INST_DIR}/disk.config"),
                           ("cdrom", "hdb", "ide", "raw", RESCUE)]
    assert_boots_rescue_only(root, "hdb")
    rescue_el = root.find(f"./devices/disk/source[@file='{RESCUE}']/..")
    assert rescue_el is not None and rescue_el.find("readonly") is not None
    root_el = root.find(f"./devices/disk/source[@file='{ROOT}']/..")
    assert root_el is not None and root_el.find("readonly") is None


def test_sata_disk_shares_the_sd_letters() -> None:
    root = rescued(make_spec(), rescue_image(bus=DiskBus.SATA))
    assert disks(root)[-1] == ("disk", "sda", "sata", "raw", RESCUE)


@pytest.mark.parametrize(("device", "bus", "expected"), [
    (None, DiskBus.SCSI, ("disk", "sda", "scsi")),          # only the bus: a disk
    (RescueDevice.DISK, None, ("disk", "vdb", "virtio")),   # only the device: its usual bus
    (RescueDevice.CDROM, None, ("cdrom", "hda", "ide")),
    (RescueDevice.FLOPPY, None, ("floppy", "fda", "fdc")),
])
def test_a_missing_property_takes_novads_default(
        device: RescueDevice | None, bus: DiskBus | None,
        expected: tuple[str, str, str]) -> None:
    root = rescued(make_spec(), rescue_image(device, bus))
    assert disks(root)[0][:3] == ("disk", "vda", "virtio")
    assert disks(root)[-1][:3] == expected


def test_the_original_disks_keep_exactly_their_normal_devices() -> None:
    spec = replace(make_spec(ephemeral_gb=1), config_drive=True)
    normal = build(spec).findall("./devices/disk")
    stable = rescued(spec, rescue_image(RescueDevice.DISK, DiskBus.USB)).findall("./devices/disk")
    assert [ET.tostring(d) for d in stable[:-1]] == [ET.tostring(d) for d in normal]


def test_rescue_kernel_boots_with_the_rescue_disk_as_root() -> None:
    image = rescue_image(RescueDevice.DISK, DiskBus.VIRTIO,
                         kernel_path=Path("/img/rescue-kernel"),
                         ramdisk_path=Path("/img/rescue-ramdisk"))
    root = rescued(make_spec(), image)
    assert root.findtext("./os/kernel") == "/img/rescue-kernel"
    assert root.findtext("./os/initrd") == "/img/rescue-ramdisk"
    assert root.findtext("./os/cmdline") == "console=ttyS0 root=/dev/vdb"
    assert_boots_rescue_only(root, "vdb")


def test_without_either_property_the_rescue_is_legacy() -> None:
    root = rescued(make_spec(), rescue_image())
    assert disks(root) == [("disk", "vda", "virtio", "raw", RESCUE),
                           ("disk", "vdb", "virtio", "qcow2", ROOT)]
    assert set(boot_orders(root).values()) == {None}
    assert root.find("./os/boot[@dev='hd']") is not None


# -- the image properties ---------------------------------------------------------------

def test_rescue_options_reads_both_properties() -> None:
    assert rescue_options({}) == (None, None)
    assert rescue_options({"hw_rescue_device": "cdrom", "hw_rescue_bus": "ide"}) == (
        RescueDevice.CDROM, DiskBus.IDE)
    assert rescue_options({"hw_rescue_bus": "usb"}) == (None, DiskBus.USB)


@pytest.mark.parametrize(("props", "error"), [
    ({"hw_rescue_device": "tape"}, UnsupportedRescueDevice),
    ({"hw_rescue_bus": "pcie"}, UnsupportedRescueBus),
    ({"hw_rescue_bus": "VIRTIO"}, UnsupportedRescueBus),  # Nova's enums are lower case
    ({"hw_rescue_device": "floppy", "hw_rescue_bus": "virtio"}, UnsupportedRescueBus),
    ({"hw_rescue_bus": "fdc"}, UnsupportedRescueBus),     # a disk on the floppy bus
])
def test_values_nova_refuses_are_400(props: dict[str, str], error: type[Invalid]) -> None:
    with pytest.raises(error) as caught:
        rescue_options(props)
    assert caught.value.status == 400
    assert "rescue" in caught.value.message


# -- on libvirt's test driver: there and back -------------------------------------------

@pytest.fixture
def case() -> DriverCase:
    """The libvirt driver only: the XML is what is being checked."""
    return CASES["libvirt-test"]


async def test_stable_rescue_and_unrescue_restore_the_saved_xml(
        driver: Driver, make_spec: SpecMaker, raw_image: ImageSpec) -> None:
    spec = make_spec()
    await driver.spawn(spec)
    before = (spec.instance_dir / "libvirt.xml").read_text()
    image = replace(raw_image, rescue_device=RescueDevice.DISK, rescue_bus=DiskBus.SCSI)
    await driver.rescue(spec, image)
    saved = (spec.instance_dir / "unrescue.xml").read_text()
    live = ET.fromstring((spec.instance_dir / "libvirt.xml").read_text())
    assert [d[1:3] for d in disks(live)] == [("vda", "virtio"), ("sda", "scsi")]
    assert_boots_rescue_only(live, "sda")
    await driver.unrescue(spec)
    assert (spec.instance_dir / "libvirt.xml").read_text() == saved
    assert not (spec.instance_dir / "disk.rescue").exists()
    after = ET.fromstring((spec.instance_dir / "libvirt.xml").read_text())
    assert [d[1:3] for d in disks(after)] == [
        d[1:3] for d in disks(ET.fromstring(before))] == [("vda", "virtio")]
