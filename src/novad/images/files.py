"""Image data on disk: ``<images_dir>/<id>``, written crash-safely.

Data arrives in ``<id>.part``; only after it is fsynced is it renamed
(``os.replace``) to ``<id>`` and the directory fsynced, so a crash leaves at
worst a ``.part`` file, which :meth:`ImageFiles.sweep` removes at start-up.
md5 and sha512 are computed while the data streams past; no image is ever
held in memory whole (at most one :data:`CHUNK` buffer per upload).

Blocking file work runs in worker threads (``asyncio.to_thread``).
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import struct
import threading
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from novad.errors import BodyTooLarge

CHUNK = 1 << 20
"""Bytes gathered before one write (and one thread hop)."""

_QCOW2_MAGIC = b"QFI\xfb"
PART_SUFFIX = ".part"


@dataclass(frozen=True)
class Digest:
    """What is known about image data once it is written."""

    size: int
    md5: str
    sha512: str
    virtual_size: int | None


def virtual_size(path: Path, disk_format: str | None, size: int) -> int | None:
    """The guest-visible disk size: the qcow2 header's size field, the file
    size for raw and iso, None when unknown.  Blocks (reads 32 bytes)."""
    if disk_format in ("raw", "iso"):
        return size
    if disk_format != "qcow2":
        return None
    with path.open("rb") as f:
        header = f.read(32)
    if len(header) < 32 or header[:4] != _QCOW2_MAGIC:
        return None
    return int(struct.unpack(">Q", header[24:32])[0])


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _PartWriter:
    """One ``.part`` file being written by worker threads, hashing as it goes.

    A lock makes :meth:`abort` wait for a write still running in a thread
    (the awaiting task may have been cancelled while the thread went on).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = 0
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._sha = hashlib.sha512()
        self._lock = threading.Lock()
        self._file: BinaryIO | None = path.open("wb")

    def write(self, data: bytes | bytearray) -> None:
        """Append and hash ``data``.  Blocks."""
        with self._lock:
            if self._file is None:
                raise OSError(errno.EBADF, "image upload aborted")
            self._file.write(data)
            self._md5.update(data)
            self._sha.update(data)
            self.size += len(data)

    def finish(self, disk_format: str | None) -> Digest:
        """Flush, fsync and close; the digest of everything written.  Blocks."""
        with self._lock:
            assert self._file is not None
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None
        return Digest(self.size, self._md5.hexdigest(), self._sha.hexdigest(),
                      virtual_size(self.path, disk_format, self.size))

    def abort(self) -> None:
        """Close (waiting for a running write) and delete the file.  Idempotent."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
        self.path.unlink(missing_ok=True)


class ImageFiles:
    """The directory of image files.  Every method that touches the disk
    either blocks (``sweep``, ``remove``: quick metadata calls) or runs in a
    thread (``receive``, ``place``, ``ingest``)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, image_id: str) -> Path:
        """Where ``image_id``'s data lives (whether or not it exists)."""
        return self.root / image_id

    def part(self, image_id: str) -> Path:
        """Where ``image_id``'s data is written before it is complete."""
        return self.root / f"{image_id}{PART_SUFFIX}"

    async def receive(self, image_id: str, chunks: AsyncIterator[bytes], size_limit: int,
                      disk_format: str | None) -> Digest:
        """Stream ``chunks`` into ``<id>.part``, fsynced and closed on return.

        Raises :class:`BodyTooLarge` past ``size_limit`` bytes.  On any
        failure (cancellation included) the ``.part`` file is gone.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        writer = await asyncio.to_thread(_PartWriter, self.part(image_id))
        try:
            buf = bytearray()
            async for chunk in chunks:
                if writer.size + len(buf) + len(chunk) > size_limit:
                    raise BodyTooLarge(f"Image exceeds the storage limit of {size_limit} bytes.")
                buf += chunk
                if len(buf) >= CHUNK:
                    data, buf = buf, bytearray()
                    await asyncio.to_thread(writer.write, data)
            if buf:
                await asyncio.to_thread(writer.write, buf)
            return await asyncio.to_thread(writer.finish, disk_format)
        except BaseException:
            writer.abort()
            raise

    async def place(self, image_id: str) -> None:
        """Rename the finished ``<id>.part`` to ``<id>`` and make it durable."""
        def run() -> None:
            os.replace(self.part(image_id), self.path(image_id))
            _fsync_dir(self.root)
        await asyncio.to_thread(run)

    async def ingest(self, image_id: str, src: Path, disk_format: str | None,
                     move: bool) -> Digest:
        """Bring the file ``src`` in as ``image_id``'s data, hashing it.

        ``move`` renames ``src`` (copying when it is on another file
        system); otherwise ``src`` is copied and left alone.
        """
        return await asyncio.to_thread(self._ingest, image_id, src, disk_format, move)

    def _ingest(self, image_id: str, src: Path, disk_format: str | None,
                move: bool) -> Digest:
        self.root.mkdir(parents=True, exist_ok=True)
        final = self.path(image_id)
        if move:
            digest = _hash_file(src, disk_format)
            with src.open("rb") as f:
                os.fsync(f.fileno())
            try:
                os.replace(src, final)
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                self._copy(src, image_id, disk_format)
                src.unlink()
        else:
            digest = self._copy(src, image_id, disk_format)
        _fsync_dir(self.root)
        return digest

    def _copy(self, src: Path, image_id: str, disk_format: str | None) -> Digest:
        writer = _PartWriter(self.part(image_id))
        try:
            with src.open("rb") as f:
                while data := f.read(CHUNK):
                    writer.write(data)
            digest = writer.finish(disk_format)
            os.replace(writer.path, self.path(image_id))
        except BaseException:
            writer.abort()
            raise
        return digest

    def remove(self, image_id: str) -> None:
        """Delete ``image_id``'s data (and any ``.part``).  Idempotent."""
        self.path(image_id).unlink(missing_ok=True)

    def sweep(self, keep: Iterable[str]) -> list[str]:
        """Delete every ``.part`` file and every data file whose id is not
        in ``keep``; the names removed.  For start-up, when no upload runs."""
        if not self.root.is_dir():
            return []
        wanted = set(keep)
        removed: list[str] = []
        for entry in sorted(self.root.iterdir()):
            if entry.is_file() and (entry.name.endswith(PART_SUFFIX)
                                    or entry.name not in wanted):
                entry.unlink(missing_ok=True)
                removed.append(entry.name)
        return removed


def _hash_file(path: Path, disk_format: str | None) -> Digest:
    """md5 and sha512 of a file, read in :data:`CHUNK` pieces.  Blocks."""
    md5, sha, size = hashlib.md5(usedforsecurity=False), hashlib.sha512(), 0
    with path.open("rb") as f:
        while data := f.read(CHUNK):
            md5.update(data)
            sha.update(data)
            size += len(data)
    return Digest(size, md5.hexdigest(), sha.hexdigest(), virtual_size(path, disk_format, size))

