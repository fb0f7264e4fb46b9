"""Domain XML for novad guests: pure functions of an :class:`InstanceSpec`.

The XML is built with ElementTree, never by string concatenation.  The
metadata follows Nova's ``nova:instance`` element in novad's own namespace,
so a guest found on a host (``virsh dumpxml``) says whose it is.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from novad.drivers.base import DiskBus, ImageSpec, InstanceSpec, RescueDevice
from novad.drivers.libvirt import disks
from novad.drivers.libvirt.virt import DOMAIN_PREFIX

NOVAD_NS: Final = "https://novad.dev/xmlns/instance/1.0"
ET.register_namespace("novad", NOVAD_NS)

KERNEL_CMDLINE: Final = "console=ttyS0 root=/dev/{root}"
"""Direct kernel boot's command line; ``root`` is the target of the disk
the kernel boots (vda, or the rescue disk's target in a stable rescue)."""

TARGET_PREFIX: Final[dict[DiskBus, str]] = {
    DiskBus.VIRTIO: "vd", DiskBus.SCSI: "sd", DiskBus.USB: "sd", DiskBus.SATA: "sd",
    DiskBus.IDE: "hd", DiskBus.FDC: "fd"}
"""Target names follow the bus, as libvirt and Nova name them: the scsi,
usb and sata buses share the ``sd`` letters."""

DEFAULT_BUS: Final[dict[RescueDevice, DiskBus]] = {
    RescueDevice.DISK: DiskBus.VIRTIO, RescueDevice.CDROM: DiskBus.IDE,
    RescueDevice.FLOPPY: DiskBus.FDC}
"""The bus novad gives each device type when nothing asks for another:
disks on virtio, cdroms (the config drive) on ide, floppies on fdc."""


@dataclass(frozen=True)
class Disk:
    """One disk of a guest: the file in the instance directory and its role."""

    filename: str
    fmt: str
    device: str = "disk"
    bus: DiskBus | None = None
    """None: the default bus of ``device`` (:data:`DEFAULT_BUS`)."""
    boot_order: int | None = None
    """``<boot order=.../>`` on the disk; any disk with one replaces
    ``<os><boot dev=.../>`` (libvirt refuses the two together)."""

    @property
    def on_bus(self) -> DiskBus:
        """The bus the disk sits on."""
        return self.bus or DEFAULT_BUS[RescueDevice(self.device)]


def domain_name(instance_id: str) -> str:
    """The libvirt domain name of an instance."""
    return f"{DOMAIN_PREFIX}{instance_id}"


def guest_disks(spec: InstanceSpec, root_format: str, rescue_format: str | None = None) -> list[Disk]:
    """The disks of a guest in boot order.

    Normal boot: root, then ephemeral and swap when the flavor has them.
    Rescue (``rescue_format`` set): the rescue disk first, the original root
    second.  The config drive, when asked for, is a cdrom in both cases.
    """
    if rescue_format is not None:
        found = [Disk(disks.RESCUE, rescue_format), Disk(disks.ROOT, root_format)]
    else:
        found = [Disk(disks.ROOT, root_format)]
        if spec.flavor.ephemeral_gb > 0:
            found.append(Disk(disks.EPHEMERAL, "raw"))
        if spec.flavor.swap_mb > 0:
            found.append(Disk(disks.SWAP, "raw"))
    if spec.config_drive:
        found.append(Disk(disks.CONFIG, "raw", device="cdrom"))
    return found


def stable_rescue_disks(spec: InstanceSpec, root_format: str, rescue: ImageSpec,
                        rescue_format: str) -> list[Disk]:
    """Nova's stable device rescue: the instance's disks exactly as in a
    normal boot, then the rescue disk as ``rescue.rescue_device`` (default
    disk) on ``rescue.rescue_bus`` (default: that device's bus), booted first."""
    device = rescue.rescue_device or RescueDevice.DISK
    bus = rescue.rescue_bus or DEFAULT_BUS[device]
    return [*guest_disks(spec, root_format),
            Disk(disks.RESCUE, rescue_format, device=device.value, bus=bus, boot_order=1)]


def disk_targets(layout: list[Disk]) -> list[str]:
    """The target device of each disk: the next free letter of its bus's prefix."""
    letters: dict[str, int] = {}
    found = []
    for disk in layout:
        prefix = TARGET_PREFIX[disk.on_bus]
        index = letters.get(prefix, 0)
        letters[prefix] = index + 1
        found.append(f"{prefix}{chr(ord('a') + index)}")
    return found


GUEST_AGENT_CHANNEL: Final = "org.qemu.guest_agent.0"


def domain_xml(spec: InstanceSpec, *, domain_type: str, vnc_listen: str, root_format: str,
               rescue: ImageSpec | None = None, rescue_format: str = "qcow2",
               node_id: str | None = None, vnc_password: str | None = None) -> str:
    """The complete domain XML for ``spec``.

    ``root_format`` is the format of ``<instance_dir>/disk`` (``qcow2`` or
    ``raw``).  With ``rescue``, the guest boots the rescue image's disk (and
    kernel, if it has one) with the original root disk attached second.
    A rescue image with ``hw_rescue_device``/``hw_rescue_bus``
    (``rescue.stable_rescue``) keeps every disk of the instance on its own
    target and adds the rescue disk with boot order 1.
    ``node_id`` tags the guest with the novad that owns it (``<novad:node>``).
    ``vnc_password`` protects the guest's VNC server (the console proxy has it).
    """
    root = ET.Element("domain", type=domain_type)
    ET.SubElement(root, "name").text = domain_name(spec.instance_id)
    ET.SubElement(root, "uuid").text = spec.instance_id
    root.append(_metadata(spec, node_id))
    ET.SubElement(root, "memory", unit="KiB").text = str(spec.flavor.memory_mb * 1024)
    ET.SubElement(root, "vcpu").text = str(spec.flavor.vcpus)
    if rescue is not None and rescue.stable_rescue:
        layout = stable_rescue_disks(spec, root_format, rescue, rescue_format)
    else:
        layout = guest_disks(spec, root_format, rescue_format if rescue is not None else None)
    targets = disk_targets(layout)
    booted = next((i for i, disk in enumerate(layout) if disk.boot_order == 1), 0)
    root.append(_os(rescue if rescue is not None else spec.image, targets[booted],
                    boot_dev=all(disk.boot_order is None for disk in layout)))
    features = ET.SubElement(root, "features")
    ET.SubElement(features, "acpi")
    ET.SubElement(root, "clock", offset="utc")
    ET.SubElement(root, "on_poweroff").text = "destroy"
    ET.SubElement(root, "on_reboot").text = "restart"
    ET.SubElement(root, "on_crash").text = "destroy"
    root.append(_devices(spec.instance_dir, layout, vnc_listen, vnc_password,
                         guest_agent=spec.image.guest_agent, nic=spec.nic))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode")


def _ns(tag: str) -> str:
    """A tag in novad's metadata namespace."""
    return f"{{{NOVAD_NS}}}{tag}"


def _metadata(spec: InstanceSpec, node_id: str | None) -> ET.Element:
    """``<metadata><novad:instance>``: who owns the guest and what it was built from.

    ``<novad:node>`` names the novad (its state directory) that made the
    guest: several daemons may share one libvirtd (tests do), and each must
    list and reap only its own guests.
    """
    metadata = ET.Element("metadata")
    instance = ET.SubElement(metadata, _ns("instance"))
    ET.SubElement(instance, _ns("uuid")).text = spec.instance_id
    if node_id is not None:
        ET.SubElement(instance, _ns("node")).text = node_id
    ET.SubElement(instance, _ns("name")).text = spec.name
    flavor = spec.flavor
    flavor_el = ET.SubElement(instance, _ns("flavor"), name=flavor.name, id=flavor.flavor_id)
    for tag, value in (("vcpus", flavor.vcpus), ("memory", flavor.memory_mb),
                       ("disk", flavor.root_gb), ("ephemeral", flavor.ephemeral_gb),
                       ("swap", flavor.swap_mb)):
        ET.SubElement(flavor_el, _ns(tag)).text = str(value)
    owner = ET.SubElement(instance, _ns("owner"))
    ET.SubElement(owner, _ns("user"), uuid=spec.user_id)
    ET.SubElement(owner, _ns("project"), uuid=spec.project_id)
    ET.SubElement(instance, _ns("root"), type="image", uuid=spec.image.image_id)
    return metadata


def _os(image: ImageSpec, root_dev: str, boot_dev: bool = True) -> ET.Element:
    """``<os>``: hvm, booting the image's kernel directly (with ``root_dev``
    as its root) when it has one, else the first disk; no ``<boot dev>``
    when ``boot_dev`` is False because the disks carry boot orders."""
    os_el = ET.Element("os")
    ET.SubElement(os_el, "type").text = "hvm"
    if image.kernel_path is not None:
        ET.SubElement(os_el, "kernel").text = str(image.kernel_path)
        if image.ramdisk_path is not None:
            ET.SubElement(os_el, "initrd").text = str(image.ramdisk_path)
        ET.SubElement(os_el, "cmdline").text = KERNEL_CMDLINE.format(root=root_dev)
    elif boot_dev:
        ET.SubElement(os_el, "boot", dev="hd")
    return os_el


def _devices(instance_dir: Path, layout: list[Disk], vnc_listen: str,
             vnc_password: str | None = None, guest_agent: bool = False,
             nic: bool = True) -> ET.Element:
    """``<devices>``: disks, a user-mode virtio NIC unless ``nic`` is False,
    serial console to a file, the guest agent's channel when the image
    enables it, VNC."""
    devices = ET.Element("devices")
    for disk, target in zip(layout, disk_targets(layout), strict=True):
        el = ET.SubElement(devices, "disk", type="file", device=disk.device)
        ET.SubElement(el, "driver", name="qemu", type=disk.fmt)
        ET.SubElement(el, "source", file=str(instance_dir / disk.filename))
        ET.SubElement(el, "target", dev=target, bus=disk.on_bus.value)
        if disk.boot_order is not None:
            ET.SubElement(el, "boot", order=str(disk.boot_order))
        if disk.device == RescueDevice.CDROM:
            ET.SubElement(el, "readonly")
    if any(disk.on_bus is DiskBus.SCSI for disk in layout):
        # libvirt's implicit scsi controller is lsilogic; guests have virtio drivers
        ET.SubElement(devices, "controller", type="scsi", index="0", model="virtio-scsi")
    if nic:
        interface = ET.SubElement(devices, "interface", type="user")
        ET.SubElement(interface, "model", type="virtio")
    log = str(instance_dir / disks.CONSOLE_LOG)
    serial = ET.SubElement(devices, "serial", type="file")
    ET.SubElement(serial, "source", path=log, append="on")
    ET.SubElement(serial, "target", port="0")
    console = ET.SubElement(devices, "console", type="file")
    ET.SubElement(console, "source", path=log, append="on")
    ET.SubElement(console, "target", type="serial", port="0")
    if guest_agent:  # libvirt picks the host socket's path
        channel = ET.SubElement(devices, "channel", type="unix")
        ET.SubElement(channel, "target", type="virtio", name=GUEST_AGENT_CHANNEL)
    graphics = ET.SubElement(devices, "graphics", type="vnc", autoport="yes", listen=vnc_listen)
    if vnc_password:
        graphics.set("passwd", vnc_password)
    return devices


def node_of(metadata_xml: str) -> str | None:
    """The ``<novad:node>`` of a ``<novad:instance>`` element, or None.

    libvirt's ``virDomainGetMetadata`` returns the element without its
    namespace, so both spellings are accepted.
    """
    try:
        element = ET.fromstring(metadata_xml)
    except ET.ParseError:
        return None
    return element.findtext("node") or element.findtext(_ns("node"))


def vnc_endpoint(xml: str) -> tuple[str | None, int | None]:
    """The VNC listen address and port of a live domain XML (port None if unassigned)."""
    graphics = ET.fromstring(xml).find("./devices/graphics[@type='vnc']")
    if graphics is None:
        return None, None
    port = graphics.get("port")
    listen = graphics.get("listen")
    if listen is None:
        listen_el = graphics.find("listen[@type='address']")
        listen = listen_el.get("address") if listen_el is not None else None
    if port is None or int(port) <= 0:
        return listen, None
    return listen, int(port)


def disk_sources(xml: str) -> dict[str, Path]:
    """Target device name to source file, for every file-backed disk."""
    found: dict[str, Path] = {}
    for disk in ET.fromstring(xml).iterfind("./devices/disk"):
        source = disk.find("source")
        target = disk.find("target")
        if source is not None and target is not None and source.get("file"):
            found[target.get("dev", "")] = Path(source.get("file", ""))
    return found


def root_disk_path(xml: str) -> Path | None:
    """The instance's own root disk (``.../disk``), also while it is rescued."""
    sources = disk_sources(xml)
    for path in sources.values():
        if path.name == disks.ROOT:
            return path
    return sources.get("vda")
