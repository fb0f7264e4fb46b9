"""Live migration of a real QEMU guest between two libvirt daemons on one machine.

Two private libvirtd nodes (``scripts/libvirtd-node``: own mount namespace,
own sockets, own host UUID), one ``LibvirtDriver`` on each, a demo guest
booted on A and block-migrated to B peer to peer (the source libvirtd opens
B's ``qemu+unix://`` socket itself; QEMU's memory and NBD streams go to B's
loopback address).  The guest prints ``novad-demo: uptime <s>`` every second
to its serial console (``console.log`` in its instance directory): after the
move the log on B goes on from where A's stopped, with no second boot.

No wall-clock assertion: every wait is bounded polling.  An abort or a
force-complete must meet a migration that is still running, so those tests
cap its bandwidth (1 MiB/s: minutes for 128 MiB of guest RAM) instead of
racing an idle guest's one-second migration.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import uuid
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

import libvirt
import pytest
from integration_helpers import MARKER, ROOT, boots, ensure_demo_guest, uptimes

from novad.drivers.base import FlavorSpec, ImageSpec, InstanceSpec, MigrationProgress
from novad.drivers.libvirt import LibvirtDriver
from novad.errors import DriverError
from novad.states.enums import PowerState

NODE_SCRIPT = ROOT / "scripts" / "libvirtd-node"
ADDRS = {"a": "127.0.0.21", "b": "127.0.0.22"}
FLAVOR = FlavorSpec(flavor_id="lm", name="lm.small", vcpus=1, memory_mb=128, root_gb=1)
T = TypeVar("T")


def _why_not() -> str | None:
    """None when two private libvirtds can run here, else why not."""
    if os.geteuid() != 0:
        return "scripts/libvirtd-node needs root (mount namespaces, libvirtd as root)"
    for tool in ("unshare", "tini", "libvirtd", "virtlogd", "virsh", "qemu-system-x86_64"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (scripts/setup installs it)"
    return None


@dataclass
class Node:
    """One private libvirtd started by scripts/libvirtd-node."""

    name: str
    base: Path
    uri: str = ""

    @property
    def addr(self) -> str:
        return ADDRS[self.name]

    def run(self, *args: str) -> str:
        done = subprocess.run([str(NODE_SCRIPT), *args, self.name, "--base", str(self.base)],
                              capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise AssertionError(f"libvirtd-node {args} {self.name}: {done.stderr}")
        return done.stdout.strip()

    @property
    def instances(self) -> Path:
        return self.base / f"{self.name}-instances"


@pytest.fixture(scope="module")
def nodes() -> Iterator[dict[str, Node]]:
    """Libvirt nodes ``a`` and ``b`` for this module, removed afterwards."""
    why = _why_not()
    if why is not None:
        pytest.skip(why)
    ensure_demo_guest()
    base = Path(tempfile.mkdtemp(prefix="lvn", dir="/tmp"))  # short: unix socket paths
    made = {name: Node(name, base) for name in ADDRS}
    try:
        for node in made.values():
            node.uri = node.run("start", "--addr", node.addr)
        yield made
    finally:
        for node in made.values():
            subprocess.run([str(NODE_SCRIPT), "clean", node.name, "--base", str(base)],
                           capture_output=True, timeout=120)
        shutil.rmtree(base, ignore_errors=True)


@dataclass
class Pair:
    """A started driver on each node."""

    a: LibvirtDriver
    b: LibvirtDriver
    nodes: dict[str, Node]

    def spec(self) -> InstanceSpec:
        """A demo guest's spec on node a (the uec layout: kernel, ramdisk, disk)."""
        demo = ROOT / ".cache" / "demo-guest"
        image = ImageSpec(image_id="demo", path=demo / "demo.qcow2", disk_format="qcow2",
                          kernel_path=demo / "vmlinuz", ramdisk_path=demo / "initrd.img")
        instance_id = str(uuid.uuid4())
        return InstanceSpec(instance_id=instance_id, name=f"lm-{instance_id[:8]}",
                            project_id="p", user_id="u", flavor=FLAVOR, image=image,
                            instance_dir=self.nodes["a"].instances / instance_id)

    def on_b(self, spec: InstanceSpec) -> InstanceSpec:
        return replace(spec, instance_dir=self.nodes["b"].instances / spec.instance_id)


@pytest.fixture
async def pair(nodes: dict[str, Node]) -> AsyncIterator[Pair]:
    drivers = {name: LibvirtDriver(node.uri, "qemu", "127.0.0.1", f"host-{name}",
                                   instances_path=node.instances, node_id=f"node-{name}")
               for name, node in nodes.items()}
    for drv in drivers.values():
        await drv.start()
    made = Pair(drivers["a"], drivers["b"], nodes)
    try:
        yield made
    finally:
        for name, drv in drivers.items():
            for instance_id in await drv.list_instances():
                await drv.destroy(instance_id, nodes[name].instances / instance_id)
            await drv.close()


async def poll(what: str, check: Callable[[], Awaitable[T | None]], timeout: float = 90.0) -> T:
    """Await ``check`` until it gives something truthy; the timeout only bounds a hang."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not (value := await check()):
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)
    return value


def console(spec: InstanceSpec) -> str:
    try:
        return (spec.instance_dir / "console.log").read_text(errors="replace")
    except FileNotFoundError:
        return ""


async def ticks(spec: InstanceSpec, more_than: int) -> list[float]:
    """The uptimes in the guest's console log once there are more than ``more_than``."""
    async def check() -> list[float] | None:
        values = uptimes(console(spec))
        return values if len(values) > more_than else None
    return await poll(f"{spec.instance_id} to tick past {more_than}", check)


async def booted_on_a(pair: Pair) -> InstanceSpec:
    spec = pair.spec()
    await pair.a.spawn(spec)
    await ticks(spec, 2)
    return spec


def domain_on(node: Node, instance_id: str) -> ET.Element | None:
    """The domain's live XML on a node, read through a connection of our own."""
    conn = libvirt.open(node.uri)
    try:
        return ET.fromstring(conn.lookupByUUIDString(instance_id).XMLDesc(0))
    except libvirt.libvirtError:
        return None
    finally:
        conn.close()


async def test_live_block_migration_keeps_the_guest_running(pair: Pair) -> None:
    spec = await booted_on_a(pair)
    dest_spec = pair.on_b(spec)
    dest = await pair.b.pre_live_migration(dest_spec)
    readings: list[MigrationProgress] = []

    async def on_progress(progress: MigrationProgress) -> None:
        readings.append(progress)

    await pair.a.live_migrate(spec, pair.nodes["b"].uri, block_migration=True,
                              migrate_uri=f"tcp://{pair.nodes['b'].addr}", dest=dest,
                              on_progress=on_progress)

    assert await pair.a.get_power_state(spec.instance_id) == PowerState.NOSTATE
    assert spec.instance_id not in await pair.a.list_instances()
    assert (await pair.b.list_instances())[spec.instance_id] == PowerState.RUNNING
    xml = domain_on(pair.nodes["b"], spec.instance_id)
    assert xml is not None
    sources = [s.get("file", "") for s in xml.iterfind("./devices/disk/source")]
    assert sources and all(s.startswith(str(dest_spec.instance_dir)) for s in sources)

    before = uptimes(console(spec))
    after = await ticks(dest_spec, 3)
    assert MARKER not in console(dest_spec), "the guest booted again on B"
    assert boots(console(spec)) == 1
    assert after[0] > before[-1]
    both = before + after
    assert all(x < y for x, y in zip(both, both[1:])), both
    await pair.a.destroy(spec.instance_id, spec.instance_dir)


async def _migration_running(pair: Pair, spec: InstanceSpec,
                             memory: bool = False) -> MigrationProgress:
    """The first progress reading (with ``memory``: once RAM is being
    copied, after the disks are in step)."""
    async def check() -> MigrationProgress | None:
        progress = await pair.a.live_migration_progress(spec.instance_id)
        if progress is None or (memory and not progress.memory_processed):
            return None
        return progress
    return await poll("the migration to start", check)


async def test_abort_leaves_the_guest_running_on_the_source(pair: Pair) -> None:
    spec = await booted_on_a(pair)
    dest = await pair.b.pre_live_migration(pair.on_b(spec))
    migration = asyncio.ensure_future(pair.a.live_migrate(
        spec, pair.nodes["b"].uri, block_migration=True,
        migrate_uri=f"tcp://{pair.nodes['b'].addr}", dest=dest, bandwidth_mib=1))
    try:
        await _migration_running(pair, spec)
        await pair.a.live_migration_abort(spec.instance_id)
        with pytest.raises(DriverError, match="cancel"):
            await migration
    finally:
        if not migration.done():
            migration.cancel()
            await asyncio.gather(migration, return_exceptions=True)

    assert await pair.a.get_power_state(spec.instance_id) == PowerState.RUNNING
    assert spec.instance_id not in await pair.b.list_instances()
    assert domain_on(pair.nodes["b"], spec.instance_id) is None
    seen = len(uptimes(console(spec)))
    await ticks(spec, seen)  # still ticking on A
    assert await pair.a.live_migration_progress(spec.instance_id) is None
    with pytest.raises(DriverError):
        await pair.a.live_migration_abort(spec.instance_id)


@pytest.mark.parametrize("post_copy", [True, False], ids=["post-copy", "pause"])
async def test_force_complete_finishes_the_migration(pair: Pair, post_copy: bool) -> None:
    spec = await booted_on_a(pair)
    dest_spec = pair.on_b(spec)
    dest = await pair.b.pre_live_migration(dest_spec)
    # Post-copy pulls the rest at full speed; a paused guest's last pages
    # still go at the cap, so that cap is higher.
    migration = asyncio.ensure_future(pair.a.live_migrate(
        spec, pair.nodes["b"].uri, block_migration=True,
        migrate_uri=f"tcp://{pair.nodes['b'].addr}", dest=dest,
        bandwidth_mib=1 if post_copy else 4, post_copy=post_copy))
    try:
        # Post-copy can start only once RAM is being copied; pausing works
        # from the start, while the disks are still copied.
        await _migration_running(pair, spec, memory=post_copy)
        await pair.a.live_migration_force_complete(spec.instance_id)
        await migration
    finally:
        if not migration.done():
            migration.cancel()
            await asyncio.gather(migration, return_exceptions=True)

    assert spec.instance_id not in await pair.a.list_instances()
    assert (await pair.b.list_instances())[spec.instance_id] == PowerState.RUNNING
    seen = len(uptimes(console(dest_spec)))
    await ticks(dest_spec, seen)  # running, not left paused, on B
    assert MARKER not in console(dest_spec)
    await pair.a.destroy(spec.instance_id, spec.instance_dir)
