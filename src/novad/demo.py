"""The demo guest's images: registered at start-up on a real hypervisor.

``scripts/build-demo-guest`` builds a Debian cloud kernel, a busybox
initramfs and an empty qcow2 root disk into a folder (``[DEFAULT]
demo_image_dir``, by default ``<state_dir>/demo``).  When novad runs on a
QEMU URI and that folder holds them, they become three public images in
the uec layout seed 002 describes, so that a newcomer can
``openstack server create --image demo --flavor m1.tiny vm1`` at once:

=============== ============ =========================================
name            disk_format  data
=============== ============ =========================================
``demo-kernel`` ``aki``      ``vmlinuz``
``demo-ramdisk`` ``ari``     ``initrd.img``
``demo``        ``qcow2``    ``demo.qcow2``, with ``kernel_id`` and ``ramdisk_id``
=============== ============ =========================================

Registration runs at every start and does nothing once an image named
``demo`` exists; a start interrupted half-way reuses the kernel and ramdisk
images it already made.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import structlog

from novad.context import RequestContext
from novad.images.model import Image
from novad.images.service import ImageService

log = structlog.get_logger("novad.demo")

KERNEL: Final = ("demo-kernel", "vmlinuz", "aki")
RAMDISK: Final = ("demo-ramdisk", "initrd.img", "ari")
DISK: Final = ("demo", "demo.qcow2", "qcow2")
MIN_RAM_MB: Final = 128
"""The demo kernel loops at "Probing EDD" with 64 MiB; 128 MiB is plenty."""


def wants_demo(connection_uri: str) -> bool:
    """Whether guests on this URI are real QEMU guests (not the test driver)."""
    return connection_uri.startswith("qemu")


async def register_demo_images(images: ImageService, owner: str, demo_dir: Path) -> str | None:
    """Register the demo images from ``demo_dir`` unless ``demo`` exists.

    Returns the id of the ``demo`` image, or None when the folder does not
    hold the built guest (a log line says how to build it).
    """
    ctx = RequestContext.admin()
    existing = await images.list(ctx, name=DISK[0], status="active")
    if existing:
        return existing[0].id
    paths = [demo_dir / name for _, name, _ in (KERNEL, RAMDISK, DISK)]
    if not all(p.is_file() for p in paths):
        log.info("demo guest not built; run scripts/build-demo-guest to get the demo image",
                 demo_image_dir=str(demo_dir))
        return None
    kernel = await _image(images, owner, demo_dir, KERNEL, {})
    ramdisk = await _image(images, owner, demo_dir, RAMDISK, {})
    disk = await _image(images, owner, demo_dir, DISK,
                        {"kernel_id": kernel.id, "ramdisk_id": ramdisk.id})
    log.info("demo images registered", demo=disk.id, kernel=kernel.id, ramdisk=ramdisk.id)
    return disk.id


async def _image(images: ImageService, owner: str, demo_dir: Path, what: tuple[str, str, str],
                 properties: dict[str, str]) -> Image:
    """The active public image ``what`` names, made from its file if missing."""
    name, filename, disk_format = what
    found = await images.list(RequestContext.admin(), name=name, status="active")
    if found:
        return found[0]
    return await images.create_from_file(
        owner, name, demo_dir / filename, disk_format, properties, visibility="public",
        min_ram=MIN_RAM_MB if disk_format == "qcow2" else 0)
