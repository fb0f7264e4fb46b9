"""The files of an instance directory, and the disk operations on them.

Layout of ``<instances>/<uuid>/`` (Nova's names)::

    disk            root disk: qcow2 overlay on ../_base/<image_id>, or sparse raw
    disk.local      ephemeral disk (sparse raw, a filesystem labelled ephemeral0)
    disk.swap       swap disk (sparse raw, made with mkswap)
    disk.config     config drive (cdrom, ISO 9660 labelled config-2)
    disk.rescue     rescue root disk, while rescued
    kernel          the image's kernel and ramdisk (uec layout), copied in
    ramdisk         so a deleted kernel image never stops a guest from booting
    kernel.rescue   the rescue image's kernel and ramdisk, while rescued
    ramdisk.rescue
    console.log     serial console, appended to across starts
    libvirt.xml     the domain XML last defined
    unrescue.xml    the XML to return to after rescue
    *.resize        what a resize keeps for a revert

``_base/`` (the image cache) holds each image's checked copy and its overlay
templates; :func:`age_cache` removes what no guest has used for a while, as
Nova's image cache manager does.

``qemu-img`` runs as a subprocess through asyncio; plain file work runs in a
thread.  Without ``qemu-img`` every disk is sparse raw; with it, root and
rescue disks are qcow2 (so snapshots of an empty disk stay small).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import shutil
import struct
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from novad.drivers.base import ImageSpec
from novad.errors import DriverError

ROOT: Final = "disk"
EPHEMERAL: Final = "disk.local"
SWAP: Final = "disk.swap"
CONFIG: Final = "disk.config"
RESCUE: Final = "disk.rescue"
CONSOLE_LOG: Final = "console.log"
LIBVIRT_XML: Final = "libvirt.xml"
UNRESCUE_XML: Final = "unrescue.xml"
RESIZE_SUFFIX: Final = ".resize"
RESCUE_SUFFIX: Final = ".rescue"
KERNEL: Final = "kernel"
RAMDISK: Final = "ramdisk"
BASE_DIR: Final = "_base"

GIB: Final = 1024**3
MIB: Final = 1024**2
_QCOW2_MAGIC: Final = b"QFI\xfb"
_CHUNK: Final = 4 * MIB


def qemu_img() -> str | None:
    """The path of ``qemu-img``, or None when it is not installed."""
    return shutil.which("qemu-img")


async def run_qemu_img(*args: str) -> str:
    """Run ``qemu-img`` and return its stdout; DriverError naming the failure."""
    binary = qemu_img()
    if binary is None:
        raise DriverError("qemu-img is not installed")
    proc = await asyncio.create_subprocess_exec(
        binary, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    if proc.returncode != 0:
        lines = err.decode(errors="replace").strip().splitlines() or ["(no message)"]
        raise DriverError(f"qemu-img {args[0]} failed: {lines[-1]}")
    return out.decode()


def detect_format(path: Path) -> str:
    """``qcow2`` when the file starts with qcow2's magic, else ``raw``."""
    try:
        with path.open("rb") as f:
            return "qcow2" if f.read(4) == _QCOW2_MAGIC else "raw"
    except FileNotFoundError:
        return "raw"


async def image_info(path: Path, fmt: str) -> dict[str, Any]:
    """``qemu-img info`` of a file, parsed."""
    info: dict[str, Any] = json.loads(
        await run_qemu_img("info", "-U", "--output=json", "-f", fmt, str(path)))
    return info


async def virtual_size(path: Path, fmt: str) -> int:
    """The guest-visible size of a disk in bytes."""
    if fmt == "raw" or qemu_img() is None:
        return (await asyncio.to_thread(path.stat)).st_size
    return int((await image_info(path, fmt))["virtual-size"])


@dataclass(frozen=True)
class BaseImage:
    """A cached image under ``_base``: its path, format and guest-visible size."""

    path: Path
    fmt: str
    size: int


async def cached_base(image: ImageSpec, base_dir: Path) -> BaseImage:
    """A checked copy of the image under ``_base/<image_id>``.

    The copy (a hard link where possible: image data never changes once
    active) is checked under a temporary name and only then renamed into
    place, so a base that exists has passed the full check (``qemu-img
    info``) and later spawns read only its header, with no subprocess: two
    spawns of one image at once both end with a whole, checked file, and a
    bad image is never cached.  An image that refers to other files (a qcow2
    backing or data file) is refused, as Nova refuses it: it could make QEMU
    read any file on the host.
    """
    assert image.path is not None
    base = base_dir / image.image_id
    if not base.exists():
        await asyncio.to_thread(base_dir.mkdir, parents=True, exist_ok=True)
        tmp = base.with_name(f".{base.name}.{uuid.uuid4().hex}.part")
        try:
            await asyncio.to_thread(link_or_copy, image.path, tmp)
            await _check_base(image, tmp, full=True)
            await asyncio.to_thread(os.replace, tmp, base)
        finally:
            await asyncio.to_thread(remove_files, tmp)
    fmt, size = await _check_base(image, base, full=False)
    return BaseImage(base, fmt, size)


async def _check_base(image: ImageSpec, path: Path, full: bool) -> tuple[str, int]:
    """The format and virtual size of image data, after checking it is the
    disk it claims to be.

    The format comes from the data, never from the image record; a
    mismatch is refused (Nova's format inspector does the same: a "raw"
    image holding a qcow2 header would let QEMU read a backing file).
    ``full`` also asks ``qemu-img info``, which catches a damaged qcow2.
    """
    fmt = await asyncio.to_thread(detect_format, path)
    declared = image.disk_format
    if declared in ("qcow2", "raw") and declared != fmt:
        raise DriverError(f"Image {image.image_id} is not a valid {declared} disk image "
                          f"(its data is {fmt}).")
    if fmt == "raw":
        return fmt, (await asyncio.to_thread(path.stat)).st_size
    header = await asyncio.to_thread(read_qcow2_header, path)
    if header is None:
        raise DriverError(f"Image {image.image_id} is not a valid disk image: "
                          "its qcow2 header is cut short.")
    if header.backing_file or header.external_data:
        raise DriverError(f"Image {image.image_id} refers to another file; refused")
    if full:
        try:
            info = await image_info(path, fmt)
        except DriverError as exc:
            raise DriverError(f"Image {image.image_id} is not a valid disk image: "
                              f"{exc.message}") from exc
        data_file = info.get("format-specific", {}).get("data", {}).get("data-file")
        if info.get("backing-filename") or data_file:
            raise DriverError(f"Image {image.image_id} refers to another file; refused")
    return fmt, header.size


@dataclass(frozen=True)
class Qcow2Header:
    """The fields of a qcow2 header novad checks (QEMU's docs/interop/qcow2.txt)."""

    size: int
    backing_file: bool
    external_data: bool


def read_qcow2_header(path: Path) -> Qcow2Header | None:
    """The header of a qcow2 file, or None when it is too short (blocks).

    Offsets: backing_file_offset at 8, size at 24, version at 4; version 3
    adds incompatible_features at 72, whose bit 2 means an external data file.
    """
    with path.open("rb") as f:
        data = f.read(80)
    if len(data) < 32 or data[:4] != _QCOW2_MAGIC:
        return None
    version, backing_offset, size = struct.unpack(">I", data[4:8])[0], \
        struct.unpack(">Q", data[8:16])[0], struct.unpack(">Q", data[24:32])[0]
    external = False
    if version >= 3:
        if len(data) < 80:
            return None
        external = bool(struct.unpack(">Q", data[72:80])[0] & 0x4)
    return Qcow2Header(size=size, backing_file=backing_offset != 0, external_data=external)


async def create_image_disk(path: Path, image: ImageSpec | None, base_dir: Path,
                            size_gb: int) -> str:
    """Create a disk from ``image`` at ``path``; returns its format.

    With an image file and ``qemu-img``: a qcow2 overlay on the cached base,
    ``size_gb`` big but never smaller than the image.  With ``qemu-img`` but
    no image: an empty qcow2 of ``size_gb``.  Without ``qemu-img``: an empty
    sparse raw file of ``size_gb``.  ``size_gb`` 0 means the image's size
    (1 GiB when there is no image).
    """
    part = path.with_name(f".{path.name}.part")  # a crash leaves no half-made disk
    if image is not None and image.path is not None and qemu_img() is not None:
        base = await cached_base(image, base_dir)
        if size_gb and base.size > size_gb * GIB:  # Nova's FlavorDiskSmallerThanImage
            raise DriverError("Flavor's disk is too small for requested image. Flavor disk "
                              f"is {size_gb * GIB} bytes, image is {base.size} bytes.")
        size = max(size_gb * GIB, base.size)
        template = await overlay_template(base, size)
        await asyncio.to_thread(_copy_from_cache, template, base.path, part, path)
        return "qcow2"
    if qemu_img() is not None:  # compact: snapshots of it stay small
        await run_qemu_img("create", "-q", "-f", "qcow2", str(part), str(max(size_gb, 1) * GIB))
        made = "qcow2"
    else:
        await asyncio.to_thread(create_sparse, part, max(size_gb, 1) * GIB)
        made = "raw"
    await asyncio.to_thread(os.replace, part, path)
    return made


async def rebase_on_cache(root: Path, image: ImageSpec, base_dir: Path) -> None:
    """A root disk that came from another node names that node's cached
    base; point it at this node's copy of the same image (cached first).
    An unsafe rebase is exact here: the image's bytes are the same on every
    node (its checksums are checked when its data is fetched)."""
    named = await asyncio.to_thread(backing_file, root)
    if named is None or image.path is None:
        return
    base = await cached_base(image, base_dir)
    if Path(named) == base.path:
        return
    await run_qemu_img("rebase", "-u", "-F", base.fmt, "-b", str(base.path), str(root))


async def overlay_template(base: BaseImage, size: int) -> Path:
    """An empty qcow2 overlay of ``size`` bytes on ``base``, made once per
    base and size (``_base/<image_id>.overlay-<size>``) and copied for each
    new root disk.

    ``qemu-img create`` writes the same bytes every time for the same base
    path, format and size (the header names only the backing file; nothing
    in it is per instance), so a copy of the template is the disk it would
    have made, without a subprocess on every boot (about 10 ms of a 350 ms
    boot here).  The template appears whole or not at all.
    """
    template = base.path.with_name(f"{base.path.name}.overlay-{size}")
    if not template.exists():
        part = template.with_name(f".{template.name}.{uuid.uuid4().hex}.part")
        try:
            await run_qemu_img("create", "-q", "-f", "qcow2", "-F", base.fmt, "-b",
                               str(base.path), str(part), str(size))
            await asyncio.to_thread(os.replace, part, template)
        finally:
            await asyncio.to_thread(remove_files, part)
    return template


def _copy_from_cache(template: Path, base: Path, part: Path, target: Path) -> None:
    """Copy ``template`` to ``part``, then rename it to ``target``; the
    template and its base are marked used now (see :func:`age_cache`) (blocks)."""
    for used in (template, base):
        with contextlib.suppress(FileNotFoundError):  # the copy says what is missing
            os.utime(used)
    shutil.copyfile(template, part)
    os.replace(part, target)


def backing_file(path: Path) -> str | None:
    """The backing file a qcow2 file names, or None: raw, no backing file,
    unreadable (blocks).  backing_file_offset is at 8, its size at 16."""
    try:
        with path.open("rb") as f:
            head = f.read(20)
            if len(head) < 20 or head[:4] != _QCOW2_MAGIC:
                return None
            offset, size = struct.unpack(">QI", head[8:20])
            if not offset or not 0 < size <= 1023:
                return None
            f.seek(offset)
            return os.fsdecode(f.read(size))
    except OSError:
        return None


def _backing_files_in(folder: Path) -> list[str]:
    """The backing files the disks in ``folder`` name; none when it is not a
    folder or goes away meanwhile (an instance being deleted) (blocks)."""
    try:
        return [name for disk in folder.iterdir()
                if disk.is_file() and (name := backing_file(disk))]
    except (FileNotFoundError, NotADirectoryError):
        return []


TEMPLATE_MARK: Final = ".overlay-"
"""In ``<image_id>.overlay-<size>``: an overlay template of that base."""


def age_cache(instances: Path, min_age: float, now: float | None = None) -> list[Path]:
    """Remove from ``<instances>/_base`` what no guest needs; returns what
    was removed (blocks).  As Nova's image cache manager:

    * a base image that no disk in any instance directory is backed by, and
      that no boot has used for ``min_age`` seconds (its mtime: every boot
      from it touches it), with its overlay templates;
    * an overlay template no boot has used for ``min_age`` seconds;
    * a ``.part`` file older than ``min_age`` (a copy cut short by a crash).

    The caller makes sure no disk is being made from the cache meanwhile.
    """
    base_dir = instances / BASE_DIR
    now = time.time() if now is None else now
    try:
        entries = list(base_dir.iterdir())
    except FileNotFoundError:
        return []
    in_use = {os.path.basename(name)
              for inst_dir in instances.iterdir() if inst_dir.name != BASE_DIR
              for name in _backing_files_in(inst_dir)}

    def stale(path: Path) -> bool:
        try:
            return now - path.stat().st_mtime > min_age
        except FileNotFoundError:
            return False

    removed: list[Path] = []
    dropped: set[str] = set()
    for path in entries:
        name = path.name
        if name.startswith("."):
            doomed = name.endswith(".part") and stale(path)
        elif TEMPLATE_MARK in name:
            continue  # after the bases: a template goes with its base
        else:
            doomed = name not in in_use and stale(path)
            if doomed:
                dropped.add(name)
        if doomed:
            remove_files(path)
            removed.append(path)
    for path in entries:
        base, mark, _ = path.name.partition(TEMPLATE_MARK)
        if mark and not path.name.startswith(".") and (base in dropped or stale(path)):
            remove_files(path)
            removed.append(path)
    return removed


def copy_in(source: Path, target: Path) -> None:
    """Put ``source`` at ``target`` unless it is there already; the file
    appears whole or not at all (blocks).

    A hard link where the file system allows it: image data never changes
    once active (a new upload is a new image), and a link costs nothing
    where a copy of a 14 MB kernel takes a noticeable part of a boot.
    """
    if target.exists():
        return
    part = target.with_name(f".{target.name}.part")
    part.unlink(missing_ok=True)
    link_or_copy(source, part)
    os.replace(part, target)


def link_or_copy(source: Path, target: Path) -> None:
    """Hard-link ``source`` at ``target``, or copy it sparsely where a link
    cannot be made (another file system) (blocks)."""
    try:
        os.link(source, target)
    except OSError:
        sparse_copy(source, target)


EPHEMERAL_LABEL: Final = "ephemeral0"
_FS_BY_OS_TYPE: Final = {"linux": "ext4", "windows": "ntfs"}
_DEFAULT_FS: Final = "vfat"
_MKFS: Final = {
    "ext2": ["mkfs", "-t", "ext2", "-F", "-q", "-L", EPHEMERAL_LABEL],
    "ext3": ["mkfs", "-t", "ext3", "-F", "-q", "-L", EPHEMERAL_LABEL],
    "ext4": ["mkfs", "-t", "ext4", "-F", "-q", "-L", EPHEMERAL_LABEL],
    "xfs": ["mkfs", "-t", "xfs", "-f", "-q", "-L", EPHEMERAL_LABEL],
    "vfat": ["mkfs", "-t", "vfat", "-n", EPHEMERAL_LABEL],
    "ntfs": ["mkfs", "-t", "ntfs", "-F", "-Q", "-q", "-L", EPHEMERAL_LABEL],
}


def ephemeral_fs(os_type: str | None, configured: str) -> str:
    """The filesystem of a new ephemeral disk, chosen as Nova chooses it:
    ``configured`` (``default_ephemeral_format``), else by the image's
    ``os_type``, else vfat."""
    return configured or _FS_BY_OS_TYPE.get(os_type or "", _DEFAULT_FS)


def create_ephemeral(path: Path, size: int, fs: str) -> None:
    """A sparse disk of ``size`` bytes with an empty ``fs`` filesystem
    labelled ``ephemeral0``, as Nova formats ephemeral disks; whole or not
    at all (blocks)."""
    _create_formatted(path, size, [*_MKFS[fs]], f"{fs} filesystem")


def create_swap(path: Path, size: int) -> None:
    """A sparse swap disk of ``size`` bytes, ready for ``swapon`` (Nova runs
    mkswap too); whole or not at all (blocks)."""
    _create_formatted(path, size, ["mkswap"], "swap area")


def _create_formatted(path: Path, size: int, command: list[str], what: str) -> None:
    part = path.with_name(f".{path.name}.part")
    create_sparse(part, size)
    try:
        done = subprocess.run([*command, str(part)], capture_output=True, text=True)
    except FileNotFoundError:
        remove_files(part)
        raise DriverError(f"Cannot make a {what} on {path.name}: {command[0]} is not "
                          "installed") from None
    if done.returncode != 0:
        remove_files(part)
        lines = (done.stderr or done.stdout).strip().splitlines() or ["(no message)"]
        raise DriverError(f"Cannot make a {what} on {path.name}: {lines[-1]}")
    os.replace(part, path)


def create_sparse(path: Path, size: int) -> None:
    """An empty sparse file of ``size`` bytes (blocks; run it in a thread)."""
    with path.open("wb") as f:
        f.truncate(size)


async def grow(path: Path, size_gb: int) -> None:
    """Grow a disk to ``size_gb``; never shrinks."""
    fmt = await asyncio.to_thread(detect_format, path)
    size = size_gb * GIB
    if await virtual_size(path, fmt) >= size:
        return
    if fmt == "raw":
        await asyncio.to_thread(os.truncate, path, size)
    else:
        await run_qemu_img("resize", "-q", "-f", fmt, str(path), str(size))


async def export(source: Path, target: Path) -> str:
    """Write ``source`` as a standalone image at ``target``; returns its format.

    A qcow2 overlay is flattened with ``qemu-img convert`` (the result needs
    no base); anything else is copied sparsely.  The target appears whole or
    not at all.
    """
    fmt = await asyncio.to_thread(detect_format, source)
    await asyncio.to_thread(target.parent.mkdir, parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.part")
    if fmt == "qcow2" and qemu_img() is not None:
        await run_qemu_img("convert", "-U", "-f", "qcow2", "-O", "qcow2", str(source), str(tmp))
    else:
        await asyncio.to_thread(sparse_copy, source, tmp)
    await asyncio.to_thread(os.replace, tmp, target)
    return fmt


def sparse_copy(source: Path, target: Path) -> None:
    """Copy a file, leaving holes where the source has holes or zeros (blocks)."""
    with source.open("rb") as src, target.open("wb") as dst:
        size = os.fstat(src.fileno()).st_size
        for start, end in _data_extents(src.fileno(), size):
            offset = start
            while offset < end:
                chunk = os.pread(src.fileno(), min(_CHUNK, end - offset), offset)
                if not chunk:
                    break
                if chunk.count(0) != len(chunk):
                    os.pwrite(dst.fileno(), chunk, offset)
                offset += len(chunk)
        dst.truncate(size)


def _data_extents(fd: int, size: int) -> list[tuple[int, int]]:
    """The ``(start, end)`` ranges of a file that hold data, skipping holes.

    Falls back to the whole file where the file system cannot say.
    """
    extents: list[tuple[int, int]] = []
    offset = 0
    try:
        while offset < size:
            try:
                start = os.lseek(fd, offset, os.SEEK_DATA)
            except OSError as exc:
                if exc.errno == errno.ENXIO:  # nothing but a hole up to the end
                    break
                raise
            end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
            extents.append((start, end))
            offset = end
    except OSError:
        return [(0, size)]
    return extents


def remove_files(*paths: Path) -> None:
    """Remove files that may not exist (blocks)."""
    for path in paths:
        path.unlink(missing_ok=True)
