"""Domain XML generation: a pure function, checked by parsing what it returns."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest

from novad.drivers.base import FlavorSpec, ImageSpec, InstanceSpec
from novad.drivers.libvirt.xml import (
    NOVAD_NS,
    domain_xml,
    root_disk_path,
    vnc_endpoint,
)

UUID = "5b1c4a34-9a7e-4d4b-9a43-0d1f4f0e8a11"
INST_DIR = Path("/srv/novad/instances") / UUID
NS = {"novad": NOVAD_NS}


def make_spec(ephemeral_gb: int = 0, swap_mb: int = 0) -> InstanceSpec:
    flavor = FlavorSpec(flavor_id="42", name="m1.small", vcpus=2, memory_mb=256, root_gb=3,
                        ephemeral_gb=ephemeral_gb, swap_mb=swap_mb)
    return InstanceSpec(
        instance_id=UUID, name="web-1", project_id="proj-1", user_id="user-1",
        flavor=flavor,
        image=ImageSpec(image_id="img-1"), instance_dir=INST_DIR)


def build(spec: InstanceSpec | None = None, **kwargs: object) -> ET.Element:
    args: dict[str, object] = {"domain_type": "qemu", "vnc_listen": "127.0.0.1",
                               "root_format": "qcow2"} | kwargs
    return ET.fromstring(domain_xml(spec or make_spec(), **args))  # type: ignore[arg-type]


def disks(root: ET.Element) -> list[tuple[str, str, str, str, str]]:
    """(device, target dev, bus, driver type, source file) of every disk."""
    found = []
    for disk in root.iterfind("./devices/disk"):
        target, driver, source = disk.find("target"), disk.find("driver"), disk.find("source")
        assert target is not None and driver is not None and source is not None
        found.append((disk.get("device", ""), target.get("dev", ""), target.get("bus", ""),
                      driver.get("type", ""), source.get("file", "")))
    return found


def test_identity_and_sizes() -> None:
    root = build()
    assert root.get("type") == "qemu"
    assert root.findtext("name") == f"novad-{UUID}"
    assert root.findtext("uuid") == UUID
    memory = root.find("memory")
    assert memory is not None and memory.get("unit") == "KiB" and memory.text == str(256 * 1024)
    assert root.findtext("vcpu") == "2"


def test_domain_type_follows_argument() -> None:
    assert build(domain_type="test").get("type") == "test"


def test_lifecycle_actions_and_features() -> None:
    root = build()
    assert root.findtext("on_poweroff") == "destroy"
    assert root.findtext("on_reboot") == "restart"
    assert root.findtext("on_crash") == "destroy"
    assert root.find("./features/acpi") is not None
    assert root.findtext("./os/type") == "hvm"


def test_metadata_names_instance_flavor_and_owner() -> None:
    instance = build().find("./metadata/novad:instance", NS)
    assert instance is not None
    assert instance.findtext("novad:uuid", namespaces=NS) == UUID
    assert instance.findtext("novad:name", namespaces=NS) == "web-1"
    flavor = instance.find("novad:flavor", NS)
    assert flavor is not None and flavor.get("name") == "m1.small"
    assert flavor.findtext("novad:vcpus", namespaces=NS) == "2"
    assert flavor.findtext("novad:memory", namespaces=NS) == "256"
    assert flavor.findtext("novad:disk", namespaces=NS) == "3"
    user = instance.find("novad:owner/novad:user", NS)
    project = instance.find("novad:owner/novad:project", NS)
    assert user is not None and user.get("uuid") == "user-1"
    assert project is not None and project.get("uuid") == "proj-1"


def test_root_disk_only_by_default() -> None:
    root = build()
    assert disks(root) == [("disk", "vda", "virtio", "qcow2", f"{INST_DIR}/disk")]
    assert root.find("./os/boot[@dev='hd']") is not None
    assert root.find("./os/kernel") is None


def test_raw_root_disk() -> None:
    assert disks(build(root_format="raw"))[0][3] == "raw"


def test_ephemeral_swap_and_config_drive() -> None:
    spec = make_spec(ephemeral_gb=5, swap_mb=512)
    spec = replace(spec, config_drive=True)
    assert disks(build(spec)) == [
        ("disk", "vda", "virtio", "qcow2", f"{INST_DIR}/disk"),
        ("disk", "vdb", "virtio", "raw", f"{INST_DIR}/disk.local"),
        ("disk", "vdc", "virtio", "raw", f"{INST_DIR}/disk.swap"),
        ("cdrom", "hda", "ide", "raw", f"{INST_DIR}/disk.config"),
    ]
    cdrom = build(spec).find("./devices/disk[@device='cdrom']")
    assert cdrom is not None and cdrom.find("readonly") is not None


def test_swap_without_ephemeral_is_vdb() -> None:
    assert [d[1] for d in disks(build(make_spec(swap_mb=256)))] == ["vda", "vdb"]


def test_direct_kernel_boot() -> None:
    spec = make_spec()
    image = ImageSpec(image_id="img-1", kernel_path=Path("/img/vmlinuz"),
                      ramdisk_path=Path("/img/initrd"))
    spec = replace(spec, image=image)
    os_el = build(spec).find("os")
    assert os_el is not None
    assert os_el.findtext("kernel") == "/img/vmlinuz"
    assert os_el.findtext("initrd") == "/img/initrd"
    assert os_el.findtext("cmdline") == "console=ttyS0 root=/dev/vda"
    assert os_el.find("boot") is None


def test_no_nic_for_networks_none() -> None:
    devices = build(replace(make_spec(), nic=False)).find("devices")
    assert devices is not None
    assert devices.find("interface") is None
    assert devices.find("serial") is not None and devices.find("graphics") is not None


def test_nic_serial_console_and_vnc() -> None:
    devices = build(vnc_listen="0.0.0.0").find("devices")
    assert devices is not None
    nic = devices.find("interface")
    assert nic is not None and nic.get("type") == "user"
    model = nic.find("model")
    assert model is not None and model.get("type") == "virtio"
    for kind in ("serial", "console"):
        el = devices.find(kind)
        assert el is not None and el.get("type") == "file"
        source = el.find("source")
        assert source is not None
        assert source.get("path") == f"{INST_DIR}/console.log"
        assert source.get("append") == "on"
    graphics = devices.find("graphics")
    assert graphics is not None
    assert graphics.attrib == {"type": "vnc", "autoport": "yes", "listen": "0.0.0.0"}


@pytest.mark.parametrize(("value", "channel"), [
    ("yes", True), ("True", True), ("1", True), ("no", False), (None, False)])
def test_guest_agent_channel_follows_the_image_property(value: str | None,
                                                        channel: bool) -> None:
    props = {} if value is None else {"hw_qemu_guest_agent": value}
    spec = make_spec()
    spec = replace(spec, image=replace(spec.image, properties=props))
    found = build(spec).findall("./devices/channel")
    if not channel:
        assert found == []
        return
    [el] = found
    target = el.find("target")
    assert el.get("type") == "unix" and target is not None
    assert target.attrib == {"type": "virtio", "name": "org.qemu.guest_agent.0"}


@pytest.mark.parametrize(("props", "user"), [
    ({}, "root"), ({"os_type": "windows"}, "Administrator"),
    ({"os_type": "windows", "os_admin_user": "admin"}, "admin"),
    ({"os_admin_user": "debian"}, "debian")])
def test_admin_user_is_chosen_as_nova_chooses(props: dict[str, str], user: str) -> None:
    assert ImageSpec(image_id="i", properties=props).admin_user == user


def test_rescue_boots_rescue_disk_with_original_second() -> None:
    rescue = ImageSpec(image_id="rescue-1", kernel_path=Path("/img/rescue-kernel"))
    spec = make_spec(ephemeral_gb=1)
    root = build(spec, rescue=rescue, rescue_format="raw")
    assert disks(root) == [
        ("disk", "vda", "virtio", "raw", f"{INST_DIR}/disk.rescue"),
        ("disk", "vdb", "virtio", "qcow2", f"{INST_DIR}/disk"),
    ]
    assert root.findtext("./os/kernel") == "/img/rescue-kernel"
    assert root_disk_path(ET.tostring(root, encoding="unicode")) == INST_DIR / "disk"


def test_rescue_without_kernel_boots_from_disk() -> None:
    root = build(rescue=ImageSpec(image_id="rescue-1"))
    assert root.find("./os/kernel") is None
    assert root.find("./os/boot[@dev='hd']") is not None


def test_output_is_deterministic() -> None:
    spec = make_spec()
    args = {"domain_type": "qemu", "vnc_listen": "127.0.0.1", "root_format": "qcow2"}
    assert domain_xml(spec, **args) == domain_xml(spec, **args)  # type: ignore[arg-type]


@pytest.mark.parametrize(("graphics", "expected"), [
    ("<graphics type='vnc' port='5901' autoport='yes' listen='127.0.0.1'/>", ("127.0.0.1", 5901)),
    ("<graphics type='vnc' port='-1' autoport='yes' listen='127.0.0.1'/>", ("127.0.0.1", None)),
    ("<graphics type='vnc' port='5902'><listen type='address' address='10.0.0.5'/></graphics>",
     ("10.0.0.5", 5902)),
    ("<graphics type='spice' port='5903'/>", (None, None)),
    ("", (None, None)),
])
def test_vnc_endpoint(graphics: str, expected: tuple[str | None, int | None]) -> None:
    xml = f"<domain><devices>{graphics}</devices></domain>"
    assert vnc_endpoint(xml) == expected
