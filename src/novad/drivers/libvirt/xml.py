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

from novad.drivers.base import ImageSpec, InstanceSpec
from novad.drivers.libvirt import disks
from novad.drivers.libvirt.virt import DOMAIN_PREFIX

NOVAD_NS: Final = "https://novad.dev/xmlns/instance/1.0"
ET.register_namespace("novad", NOVAD_NS)

KERNEL_CMDLINE: Final = "console=ttyS0 root=/dev/vda"


@dataclass(frozen=True)
class Disk:
    """One disk of a guest: the file in the instance directory and its role."""

    filename: str
    fmt: str
    device: str = "disk"


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


GUEST_AGENT_CHANNEL: Final = "org.qemu.guest_agent.0"


def domain_xml(spec: InstanceSpec, *, domain_type: str, vnc_listen: str, root_format: str,
               rescue: ImageSpec | None = None, rescue_format: str = "qcow2",
               node_id: str | None = None, vnc_password: str | None = None) -> str:
    """The complete domain XML for ``spec``.

    ``root_format`` is the format of ``<instance_dir>/disk`` (``qcow2`` or
    ``raw``).  With ``rescue``, the guest boots the rescue image's disk (and
    kernel, if it has one) with the original root disk attached second.
    ``node_id`` tags the guest with the novad that owns it (``<novad:node>``).
    ``vnc_password`` protects the guest's VNC server (the console proxy has it).
    """
    root = ET.Element("domain", type=domain_type)
    ET.SubElement(root, "name").text = domain_name(spec.instance_id)
    ET.SubElement(root, "uuid").text = spec.instance_id
    root.append(_metadata(spec, node_id))
    ET.SubElement(root, "memory", unit="KiB").text = str(spec.flavor.memory_mb * 1024)
    ET.SubElement(root, "vcpu").text = str(spec.flavor.vcpus)
    root.append(_os(rescue if rescue is not None else spec.image))
    features = ET.SubElement(root, "features")
    ET.SubElement(features, "acpi")
    ET.SubElement(root, "clock", offset="utc")
    ET.SubElement(root, "on_poweroff").text = "destroy"
    ET.SubElement(root, "on_reboot").text = "restart"
    ET.SubElement(root, "on_crash").text = "destroy"
    layout = guest_disks(spec, root_format, rescue_format if rescue is not None else None)
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


def _os(image: ImageSpec) -> ET.Element:
    """``<os>``: hvm, booting the image's kernel directly when it has one."""
    os_el = ET.Element("os")
    ET.SubElement(os_el, "type").text = "hvm"
    if image.kernel_path is not None:
        ET.SubElement(os_el, "kernel").text = str(image.kernel_path)
        if image.ramdisk_path is not None:
            ET.SubElement(os_el, "initrd").text = str(image.ramdisk_path)
        ET.SubElement(os_el, "cmdline").text = KERNEL_CMDLINE
    else:
        ET.SubElement(os_el, "boot", dev="hd")
    return os_el


def _devices(instance_dir: Path, layout: list[Disk], vnc_listen: str,
             vnc_password: str | None = None, guest_agent: bool = False,
             nic: bool = True) -> ET.Element:
    """``<devices>``: disks, a user-mode virtio NIC unless ``nic`` is False,
    serial console to a file, the guest agent's channel when the image
    enables it, VNC."""
    devices = ET.Element("devices")
    virtio = iter("abcdefghijklmnopqrstuvwxyz")
    ide = iter("abcd")
    for disk in layout:
        cdrom = disk.device == "cdrom"
        el = ET.SubElement(devices, "disk", type="file", device=disk.device)
        ET.SubElement(el, "driver", name="qemu", type=disk.fmt)
        ET.SubElement(el, "source", file=str(instance_dir / disk.filename))
        if cdrom:
            ET.SubElement(el, "target", dev=f"hd{next(ide)}", bus="ide")
            ET.SubElement(el, "readonly")
        else:
            ET.SubElement(el, "target", dev=f"vd{next(virtio)}", bus="virtio")
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
