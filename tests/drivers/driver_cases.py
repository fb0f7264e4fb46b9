"""Driver cases for the contract suite.

A :class:`DriverCase` says how to build one kind of driver and how a test
can look at a guest from outside the driver (its vcpus, memory and disks),
so the contract tests never reach into a driver's internals.  Every driver
novad has appears in :data:`CASES`.

All ``test:///default`` connections in one process share one state, so
every test uses fresh uuids and destroys its guests at teardown.
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import libvirt

from novad.drivers.base import Driver, FlavorSpec, ImageSpec, InstanceSpec
from novad.drivers.libvirt import LibvirtDriver

TEST_URI = "test:///default"


@dataclass(frozen=True)
class GuestView:
    """A guest as seen from outside the driver."""

    vcpus: int
    memory_mb: int
    disks: list[str]
    """File names of the guest's disks, in target order (vda, vdb, ..., hda)."""


@dataclass(frozen=True)
class DriverCase:
    """How to make one kind of driver and look at its guests."""

    name: str
    make: Callable[[Path], Driver]
    inspect: Callable[[str], GuestView | None]
    unreachable: Callable[[Path], Driver] | None = None


_inspector_conn: Any = None


def _inspect_test_domain(instance_id: str) -> GuestView | None:
    """Read a guest's persistent XML through a connection of our own."""
    global _inspector_conn
    if _inspector_conn is None:
        _inspector_conn = libvirt.open(TEST_URI)
    try:
        dom = _inspector_conn.lookupByUUIDString(instance_id)
    except libvirt.libvirtError:
        return None
    root = ET.fromstring(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    disks: list[tuple[str, str]] = []
    for disk in root.iterfind("./devices/disk"):
        target, source = disk.find("target"), disk.find("source")
        assert target is not None and source is not None
        disks.append((target.get("dev", ""), Path(source.get("file", "")).name))
    disks.sort(key=lambda d: (d[0].startswith("hd"), d[0]))  # virtio disks first
    return GuestView(
        vcpus=int(root.findtext("vcpu", "0")),
        memory_mb=int(root.findtext("memory", "0")) // 1024,
        disks=[name for _dev, name in disks],
    )


CASES: dict[str, DriverCase] = {
    "libvirt-test": DriverCase(
        name="libvirt-test",
        make=lambda state: LibvirtDriver(TEST_URI, "qemu", "127.0.0.1", "node-test",
                                         instances_path=state / "instances"),
        inspect=_inspect_test_domain,
        unreachable=lambda state: LibvirtDriver("qemu+tcp://127.0.0.1:1/system", "qemu",
                                                "127.0.0.1", "node-test",
                                                instances_path=state / "instances"),
    ),
}


FLAVOR = FlavorSpec(flavor_id="1", name="m1.tiny", vcpus=1, memory_mb=128, root_gb=1)
BIGGER = FlavorSpec(flavor_id="2", name="m1.small", vcpus=2, memory_mb=256, root_gb=2)


@dataclass
class SpecMaker:
    """Makes specs with fresh uuids and remembers them for teardown."""

    state_dir: Path
    made: list[InstanceSpec]

    def __call__(self, flavor: FlavorSpec = FLAVOR, image: ImageSpec | None = None,
                 **changes: Any) -> InstanceSpec:
        instance_id = str(uuid.uuid4())
        spec = InstanceSpec(
            instance_id=instance_id, name=f"vm-{instance_id[:8]}", project_id="p1",
            user_id="u1", flavor=flavor, image=image or ImageSpec(image_id="img-empty"),
            instance_dir=self.state_dir / "instances" / instance_id)
        spec = replace(spec, **changes)
        self.made.append(spec)
        return spec
