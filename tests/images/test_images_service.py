"""The image service without HTTP: crash recovery, the compute service's
internal methods, the schema/record agreement."""

from __future__ import annotations

import hashlib
import struct
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from novad.context import RequestContext
from novad.errors import Conflict, Forbidden, ImageNotFound
from novad.images.model import FIELDS, ImageStatus
from novad.images.service import ImageService
from novad.store.db import Database

OWNER = RequestContext(user_id="u1", project_id="p1", roles=frozenset({"member"}))


def _qcow2(virtual: int) -> bytes:
    """A qcow2 header (version 3) claiming ``virtual`` bytes, plus padding."""
    header = b"QFI\xfb" + struct.pack(">I", 3) + b"\0" * 16 + struct.pack(">Q", virtual)
    return header + b"\0" * 4064


async def test_columns_are_the_record_fields(db: Database) -> None:
    rows = await db.conn.execute_fetchall("PRAGMA table_info(images)")
    assert tuple(r[1] for r in rows) == FIELDS


async def test_start_repairs_a_crash(db: Database, images_dir: Path) -> None:
    first = ImageService(db, images_dir)
    await first.start()
    stuck = await first.create(OWNER, {"name": "stuck", "disk_format": "raw",
                                       "container_format": "bare"})
    done = await first.create_from_file("p1", "done", _file(images_dir.parent, b"ok"), "raw", {})
    # What a crash mid-upload leaves: a saving row, a .part, maybe a placed file.
    async with db.transaction() as conn:
        await conn.execute("UPDATE images SET status = 'saving' WHERE id = ?", (stuck.id,))
    (images_dir / f"{stuck.id}.part").write_bytes(b"half")
    (images_dir / stuck.id).write_bytes(b"placed but not recorded")
    (images_dir / "orphan").write_bytes(b"no row")

    restarted = ImageService(db, images_dir)
    await restarted.start()
    assert (await restarted.get(OWNER, stuck.id)).status == ImageStatus.QUEUED
    assert sorted(p.name for p in images_dir.iterdir()) == [done.id]
    assert await restarted.path_of(done.id) == images_dir / done.id

    async def data() -> AsyncIterator[bytes]:
        yield b"whole"
    image = await restarted.upload(OWNER, stuck.id, data(), 1 << 20)
    assert image.status == ImageStatus.ACTIVE and image.size == 5


async def test_failed_stream_puts_the_image_back_to_queued(service: ImageService,
                                                           images_dir: Path) -> None:
    image = await service.create(OWNER, {"disk_format": "raw", "container_format": "bare"})

    async def broken() -> AsyncIterator[bytes]:
        yield b"x" * 100
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        await service.upload(OWNER, image.id, broken(), 1 << 20)
    assert (await service.get(OWNER, image.id)).status == ImageStatus.QUEUED
    assert list(images_dir.iterdir()) == []


def _file(directory: Path, data: bytes, name: str = "disk") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_bytes(data)
    return path


async def test_create_from_file_copies_or_moves(service: ImageService, tmp_path: Path) -> None:
    data = _qcow2(1 << 30)
    src = _file(tmp_path / "work", data)
    copied = await service.create_from_file(
        "p1", "snap", src, "qcow2", {"image_type": "snapshot", "instance_uuid": "i-1"})
    assert src.exists()
    assert copied.status == ImageStatus.ACTIVE and copied.visibility == "private"
    assert copied.size == len(data) and copied.virtual_size == 1 << 30
    assert copied.checksum == hashlib.md5(data).hexdigest()
    assert copied.os_hash_value == hashlib.sha512(data).hexdigest()
    assert copied.properties == {"image_type": "snapshot", "instance_uuid": "i-1"}
    path = await service.path_of(copied.id)
    assert path is not None and path.read_bytes() == data

    moved = await service.create_from_file("p1", "moved", src, "raw", {}, move=True,
                                           visibility="public")
    assert not src.exists()
    assert moved.virtual_size == len(data) and moved.visibility == "public"
    assert (await service.get(OWNER, moved.id)).to_api()["os_hidden"] is False


async def test_reserve_finish_and_kill(service: ImageService, tmp_path: Path) -> None:
    props = {"image_type": "snapshot", "instance_uuid": "i-1", "user_id": "u1"}
    reserved = await service.reserve("p1", "snap", props, min_disk=1)
    assert reserved.status == ImageStatus.QUEUED and reserved.min_disk == 1
    assert await service.path_of(reserved.id) is None
    api_view = reserved.to_api()
    assert api_view["image_type"] == "snapshot" and api_view["size"] is None

    finished = await service.finish_from_file(reserved.id, _file(tmp_path / "w", b"disk"),
                                              "qcow2", move=True)
    assert finished.status == ImageStatus.ACTIVE and finished.disk_format == "qcow2"
    assert finished.size == 4 and finished.virtual_size is None  # not a real qcow2
    with pytest.raises(Conflict):
        await service.finish_from_file(reserved.id, _file(tmp_path / "w", b"again"), "raw")
    with pytest.raises(Conflict):
        await service.kill(reserved.id)

    doomed = await service.reserve("p1", "snap2", props)
    await service.kill(doomed.id)
    await service.kill(doomed.id)  # idempotent
    assert (await service.get(OWNER, doomed.id)).status == ImageStatus.KILLED
    with pytest.raises(Conflict):
        await service.finish_from_file(doomed.id, _file(tmp_path / "w", b"late"), "raw")
    with pytest.raises(ImageNotFound):
        await service.kill("00000000-0000-4000-8000-000000000000")
    with pytest.raises(ValueError):
        await service.reserve("p1", "bad", {"status": "active"})


async def test_finish_after_the_user_deleted_the_image(service: ImageService,
                                                       tmp_path: Path, images_dir: Path
                                                       ) -> None:
    reserved = await service.reserve("p1", "snap", {})
    await service.delete(OWNER, reserved.id)
    with pytest.raises(ImageNotFound):
        await service.finish_from_file(reserved.id, _file(tmp_path / "w", b"d"), "raw")
    assert not (images_dir / reserved.id).exists()


async def test_backups_oldest_first_and_delete_internal(service: ImageService,
                                                        tmp_path: Path) -> None:
    def props(kind: str, instance: str = "i-1") -> dict[str, str]:
        return {"image_type": "backup", "backup_type": kind, "instance_uuid": instance}

    made = []
    for n in range(3):
        image = await service.create_from_file(
            "p1", f"daily-{n}", _file(tmp_path / "w", b"b%d" % n), "raw", props("daily"))
        made.append(image.id)
    await service.create_from_file("p1", "weekly", _file(tmp_path / "w", b"w"), "raw",
                                   props("weekly"))
    await service.create_from_file("p1", "other", _file(tmp_path / "w", b"o"), "raw",
                                   props("daily", "i-2"))
    await service.create_from_file("p1", "snap", _file(tmp_path / "w", b"s"), "raw",
                                   {"image_type": "snapshot", "instance_uuid": "i-1",
                                    "backup_type": "daily"})
    killed = await service.reserve("p1", "daily-x", props("daily"))
    await service.kill(killed.id)

    backups = await service.list_backups("i-1", "daily")
    assert [b.id for b in backups] == made

    await service.delete_internal(made[0])
    await service.delete_internal(made[0])  # idempotent
    assert await service.path_of(made[0]) is None
    assert [b.id for b in await service.list_backups("i-1", "daily")] == made[1:]

    protected = await service.create(OWNER, {"protected": True})
    with pytest.raises(Forbidden):
        await service.delete_internal(protected.id)
