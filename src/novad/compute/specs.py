"""Turns store rows into driver specs, and keeps images and migrations in step.

The operations call this for everything that is not a state write or a
driver call: building an :class:`InstanceSpec`, reserving and finishing
snapshot images, and moving migration records through their statuses.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import structlog

from novad.context import RequestContext
from novad.drivers.base import FlavorSpec, ImageSpec, InstanceSpec, rescue_options
from novad.errors import Conflict, ImageNotFound, MigrationNotFinished
from novad.hostname import sanitize as sanitize_hostname
from novad.store import Store
from novad.store.models import Flavor, Instance, Migration

log = structlog.get_logger("novad.compute")

IMAGE_IN_PROGRESS = "novad_image_in_progress"
"""system_metadata key naming the image a snapshot is filling."""

INJECTED_FILES_KEY = "novad_injected_files"
"""system_metadata key of the server's personality files (below 2.57), as
JSON ``[[path, base64 contents], ...]``: kept from the 202 of a create or
rebuild through any restart to the config drive the build writes; no view
shows it."""


def files_metadata(meta: Mapping[str, str], files: Sequence[tuple[str, bytes]]
                   ) -> dict[str, str]:
    """``meta`` holding exactly ``files`` (none: without the key)."""
    rest = {k: v for k, v in meta.items() if k != INJECTED_FILES_KEY}
    if not files:
        return rest
    encoded = [[path, base64.b64encode(data).decode()] for path, data in files]
    return {**rest, INJECTED_FILES_KEY: json.dumps(encoded)}


def injected_files(inst: Instance) -> tuple[tuple[str, bytes], ...]:
    """The personality files kept with ``inst`` (see :data:`INJECTED_FILES_KEY`)."""
    raw = inst.system_metadata.get(INJECTED_FILES_KEY)
    if not raw:
        return ()
    return tuple((str(path), base64.b64decode(data)) for path, data in json.loads(raw))


class ImageRecord(Protocol):
    """What compute reads of an image."""

    id: str
    name: str
    disk_format: str
    min_disk: int
    min_ram: int
    properties: dict[str, Any]
    created_at: str


class ImageStore(Protocol):
    """The image service as compute uses it (no HTTP)."""

    async def get(self, ctx: RequestContext, image_id: str) -> Any:
        """An image visible to ``ctx`` (ImageNotFound otherwise)."""

    async def path_of(self, image_id: str) -> Path | None:
        """The image's data file, or None when it has none."""

    async def reserve(self, owner: str, name: str, properties: dict[str, str]) -> Any:
        """A queued image record, for a snapshot in progress."""

    async def finish_from_file(self, image_id: str, path: Path, disk_format: str, *,
                               move: bool = False) -> Any:
        """Bring ``path`` in as the image's data (renamed when ``move``); active."""

    async def kill(self, image_id: str) -> None:
        """A failed snapshot: status killed, data removed."""

    async def delete_internal(self, image_id: str) -> None:
        """Delete an image compute created (shelve image after unshelve)."""

    async def list_backups(self, instance_uuid: str, backup_type: str) -> list[Any]:
        """Backups of an instance, oldest first."""


class SpecBuilder:
    """Builds driver specs and handles images and migrations for operations."""

    def __init__(self, store: Store, images: ImageStore, state_dir: Path, host: str) -> None:
        self.store = store
        self.images = images
        self.state_dir = state_dir
        self.host = host
        self.work_dir = state_dir / "instances" / "_snapshots"

    def instance_dir(self, uuid: str) -> Path:
        """``<state>/instances/<uuid>``, as Nova lays it out."""
        return self.state_dir / "instances" / uuid

    @staticmethod
    def flavor_spec(flavor: Flavor) -> FlavorSpec:
        """The driver's view of a flavor."""
        return FlavorSpec(flavor_id=flavor.id, name=flavor.name, vcpus=flavor.vcpus,
                          memory_mb=flavor.memory_mb, root_gb=flavor.root_gb,
                          ephemeral_gb=flavor.ephemeral_gb, swap_mb=flavor.swap,
                          extra_specs=dict(flavor.extra_specs))

    async def flavor(self, flavor_id: str) -> Flavor:
        """A flavor by id (FlavorNotFound)."""
        return await self.store.get_flavor(flavor_id)

    async def old_flavor(self, inst: Instance) -> Flavor:
        """The flavor a resize started from."""
        old_id = inst.system_metadata.get("old_flavor")
        if old_id is None:
            raise MigrationNotFinished(inst.uuid)
        return await self.store.get_flavor(old_id)

    async def image_spec(self, image_id: str) -> ImageSpec:
        """The driver's view of an image; kernel/ramdisk resolved to files."""
        if not image_id:
            return ImageSpec(image_id="")
        image = await self.images.get(RequestContext.admin(), image_id)
        props: dict[str, Any] = dict(image.properties)
        kernel = await self._data(props.get("kernel_id"), "kernel", image.id)
        ramdisk = await self._data(props.get("ramdisk_id"), "ramdisk", image.id)
        return ImageSpec(image_id=image.id, path=await self.images.path_of(image.id),
                         disk_format=image.disk_format or "raw", kernel_path=kernel,
                         ramdisk_path=ramdisk, min_disk_gb=image.min_disk or 0,
                         min_ram_mb=image.min_ram or 0,
                         properties={k: str(v) for k, v in props.items()})

    async def rescue_image_spec(self, image_id: str) -> ImageSpec:
        """:meth:`image_spec` of a rescue image, with its ``hw_rescue_device``
        and ``hw_rescue_bus`` read.  Only a rescue reads them: an image the
        instance boots from never fails over a rescue property.  Raises
        UnsupportedRescueDevice / UnsupportedRescueBus (the API checked
        first, so only an image changed since then gets here)."""
        image = await self.image_spec(image_id)
        device, bus = rescue_options(image.properties)
        return dataclasses.replace(image, rescue_device=device, rescue_bus=bus)

    async def _data(self, image_id: Any, role: str, of_image: str) -> Path | None:
        """The data file of a kernel or ramdisk image; a missing one is an
        ImageNotFound that says whose it was (the instance's fault shows it)."""
        if not image_id:
            return None
        try:
            path = await self.images.path_of(str(image_id))
        except ImageNotFound:
            path = None
        if path is None:
            raise ImageNotFound(str(image_id), f"The {role} image {image_id} of image "
                                f"{of_image} could not be found.")
        return path

    async def build(self, inst: Instance, image_id: str | None = None) -> InstanceSpec:
        """The full spec of ``inst`` (optionally booting another image)."""
        user_data = None
        if inst.user_data:
            with contextlib.suppress(ValueError):
                user_data = base64.b64decode(inst.user_data)
        files = injected_files(inst)
        return InstanceSpec(
            instance_id=inst.uuid, name=inst.name, project_id=inst.project_id,
            user_id=inst.user_id, flavor=self.flavor_spec(inst.flavor),
            image=await self.image_spec(image_id or inst.image_ref),
            instance_dir=self.instance_dir(inst.uuid), user_data=user_data,
            key_data=inst.key_data, metadata=dict(inst.metadata),
            config_drive=inst.config_drive or bool(inst.key_data or inst.user_data or files),
            files=files,
            key_name=inst.key_name, availability_zone=inst.availability_zone,
            nic=inst.networks != "none",
            hostname=inst.system_metadata.get("hostname")
            or sanitize_hostname(inst.name, inst.uuid))

    # -- images made from instances --------------------------------------------
    async def reserve_image(self, inst: Instance, name: str, kind: str,
                            extra: dict[str, str] | None = None) -> str:
        """A queued image for a snapshot, backup or shelve of ``inst``."""
        props = {"instance_uuid": inst.uuid, "image_type": kind, "user_id": inst.user_id,
                 "base_image_ref": inst.image_ref, **await self._boot_properties(inst),
                 **(extra or {})}
        image = await self.images.reserve(inst.project_id, name, props)
        return str(image.id)

    async def _boot_properties(self, inst: Instance) -> dict[str, str]:
        """``kernel_id``/``ramdisk_id`` of the instance's image, which Nova
        copies onto its snapshots: without them a snapshot of a uec guest
        (a shelved demo guest, say) has a disk but nothing to boot it."""
        if not inst.image_ref:
            return {}
        try:
            image = await self.images.get(RequestContext.admin(), inst.image_ref)
        except ImageNotFound:
            return {}
        return {key: str(image.properties[key]) for key in ("kernel_id", "ramdisk_id")
                if image.properties.get(key)}

    async def snapshot_to_image(self, r: Any, op: Any, name: str, kind: str,
                                tasks: tuple[Any, Any]) -> str:
        """Snapshot the root disk into an image, walking ``tasks`` as the
        driver reports progress.  The image is killed if anything fails."""
        image_id = op.params.get("image_id") or await self.reserve_image(op.instance, name, kind)
        op.params["image_id"] = image_id
        self.work_dir.mkdir(parents=True, exist_ok=True)
        target = self.work_dir / f"{image_id}.img"
        steps = dict(zip(("image_pending_upload", "image_uploading"), tasks, strict=True))

        async def progress(stage: str) -> None:
            await r.step(op, steps[stage])

        # Recovery kills the image named here if the daemon dies mid-snapshot.
        await r.save(op, system_metadata={**op.instance.system_metadata,
                                          IMAGE_IN_PROGRESS: image_id})
        try:
            fmt = await r.driver.snapshot(op.uuid, target, progress)
            await self.images.finish_from_file(image_id, target, fmt, move=True)
        except BaseException:
            await self.images.kill(image_id)
            target.unlink(missing_ok=True)
            raise
        meta = {k: v for k, v in op.instance.system_metadata.items() if k != IMAGE_IN_PROGRESS}
        await r.save(op, system_metadata=meta)
        return str(image_id)

    async def rotate_backups(self, op: Any) -> None:
        """Keep the newest ``rotation`` backups of this type."""
        backups = await self.images.list_backups(op.uuid, op.params["backup_type"])
        excess = len(backups) - int(op.params["rotation"])
        for image in backups[:max(excess, 0)]:
            log.info("rotating out backup", image_id=image.id, instance_id=op.uuid)
            await self.images.delete_internal(image.id)

    async def forget_shelved_image(self, inst: Instance) -> None:
        """Delete the shelve snapshot, if any (after unshelve or delete)."""
        image_id = inst.system_metadata.get("shelved_image_id")
        if image_id:
            with contextlib.suppress(ImageNotFound):
                await self.images.delete_internal(image_id)

    # -- migrations ----------------------------------------------------------------
    async def start_migration(self, op: Any, kind: str, new_flavor_id: str | None) -> Migration:
        """A migration record in ``pre-migrating``."""
        return await self.store.create_migration(
            instance_uuid=op.uuid, migration_type=kind, status="pre-migrating",
            source_compute=op.instance.host,
            dest_compute=op.instance.host if kind == "resize" else None,
            old_flavor_id=op.instance.flavor.id, new_flavor_id=new_flavor_id,
            user_id=op.ctx.user_id, project_id=op.ctx.project_id)

    async def migration_status(self, migration: Migration, status: str) -> None:
        """Move a migration to ``status``."""
        await self.store.update_migration_status(migration.id, status)

    async def claim_migration(self, op: Any, expect: str, status: str) -> Migration:
        """Compare-and-swap a resize's migration from ``expect`` to ``status``;
        a migration already in ``status`` (a re-run after a crash) is kept."""
        migration = await self.store.get_migration_for_instance(op.uuid, (expect, status))
        if migration is None:
            raise MigrationNotFinished(op.uuid)
        if migration.status == expect:
            try:
                await self.store.update_migration_status(migration.id, status, expect_status=expect)
            except Conflict:
                raise MigrationNotFinished(op.uuid) from None
        return migration
