"""The work of each action, as the seeds and Nova's compute manager describe it.

Every function here is idempotent against the guest's current state, so
crash recovery can run it again from its first step: it checks the power
state before acting and treats "already done" as done.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog

from novad.compute.runner import Op, OperationFn, Outcome, Runner, now
from novad.compute.specs import SpecBuilder
from novad.drivers.base import RebootKind
from novad.errors import (
    Conflict,
    DriverError,
    NotImplementedByDriver,
    NovadError,
    NoValidHost,
    PasswordSetFailed,
)
from novad.states.enums import PowerState as P, TaskState as T, VmState as V

log = structlog.get_logger("novad.compute")

SHELVED_KEYS = ("shelved_at", "shelved_image_id", "shelved_host")


PINNED_AZ_KEY = "pinned_availability_zone"
"""The system metadata key of a server's pinned zone (see the compute service)."""


def repin(meta: dict[str, str], params: dict[str, Any]) -> dict[str, str]:
    """System metadata after an unshelve: pinned to a zone it names (2.77),
    unpinned by a null one (2.91), else as it was."""
    if "availability_zone" not in params:
        return meta
    zone = params["availability_zone"]
    rest = {k: v for k, v in meta.items() if k != PINNED_AZ_KEY}
    return rest if zone is None else {**rest, PINNED_AZ_KEY: str(zone)}


class Operations:
    """The operation table: action name → coroutine doing its work."""

    def __init__(self, specs: SpecBuilder, shutdown_timeout: float, retry_interval: float,
                 soft_reboot_timeout: float, shelved_offload_time: int,
                 other_hosts: Any, schedulable: Callable[[], bool] = lambda: True,
                 host: str = "", zone: str = "nova") -> None:
        self.specs = specs
        self.host = host
        """This node's name (an unshelve to a named host must name it)."""
        self.zone = zone
        """This node's availability zone (an unshelve to a zone must name it)."""
        self.shutdown_timeout = shutdown_timeout
        self.retry_interval = retry_interval
        self.soft_reboot_timeout = soft_reboot_timeout
        self.shelved_offload_time = shelved_offload_time
        self.other_hosts = other_hosts
        self.schedulable = schedulable
        self.mover: Any = None
        """The node's :class:`~novad.compute.moves.Mover` once it is in a
        cluster; None on a single node."""

    def _clustered(self) -> bool:
        return self.mover is not None and not self.mover.alone()

    def _place(self, op: Op, scheduling: T) -> None:
        """Nova's ComputeFilter for work that needs a host: NoValidHost when
        this node's compute service is disabled.  Only while ``op`` is still
        at ``scheduling``: work that got past it (a recovered boot) goes on."""
        if op.task is scheduling and not self.schedulable():
            raise NoValidHost()

    def table(self) -> dict[str, OperationFn]:
        """Every action of the table that has work to run."""
        return {
            "boot": self.boot, "delete": self.delete, "force_delete": self.delete,
            "soft_delete": self.soft_delete, "restore": self.restore, "start": self.start,
            "stop": self.stop, "force_stop": self.stop, "reboot_soft": self.reboot, "reboot_hard": self.reboot,
            "pause": self.pause, "unpause": self.unpause, "suspend": self.suspend,
            "resume": self.resume, "resize": self.resize, "confirm_resize": self.confirm,
            "revert_resize": self.revert, "migrate": self.migrate,
            "live_migrate": self.live_migrate, "evacuate": self.evacuate,
            "shelve": self.shelve, "shelve_offload": self.shelve_offload,
            "unshelve": self.unshelve, "rescue": self.rescue, "unrescue": self.unrescue,
            "rebuild": self.rebuild, "snapshot": self.snapshot, "backup": self.snapshot,
            "trigger_crash_dump": self.crash_dump, "change_password": self.change_password,
        }

    async def _power_off(self, r: Runner, op: Op, clean: bool = True) -> None:
        op.touched_guest = True
        await r.driver.power_off(op.uuid, clean, self.shutdown_timeout if clean else 0,
                                 self.retry_interval)

    # -- create and delete -------------------------------------------------
    async def boot(self, r: Runner, op: Op) -> Outcome:
        """Build: NETWORKING → BLOCK_DEVICE_MAPPING → SPAWNING → spawn."""
        if op.params.get("no_valid_host"):  # the cluster's scheduler found no host
            raise NoValidHost(detail=str(op.params["no_valid_host"]))
        self._place(op, T.SCHEDULING)
        for task in op.spec.steps:
            await r.step(op, task)
        spec = await self.specs.build(op.instance)
        op.touched_guest = True
        _verify_image(op)
        await r.driver.spawn(spec)
        return Outcome(changes={"launched_at": now()})

    async def delete(self, r: Runner, op: Op) -> Outcome:
        """Terminate: destroy the guest and its files; the row is soft-deleted."""
        await r.driver.destroy(op.uuid, self.specs.instance_dir(op.uuid))
        await self.specs.forget_shelved_image(op.instance)
        for group in await self.specs.store.server_groups_of(op.uuid):
            await self.specs.store.remove_server_group_member(group, op.uuid)  # as Nova does
        stamp = now()
        return Outcome(changes={"deleted": True, "deleted_at": stamp, "terminated_at": stamp,
                                "power_state": P.NOSTATE, "progress": 0})

    async def soft_delete(self, r: Runner, op: Op) -> Outcome:
        """Soft delete: a hard power-off (the driver has no soft_delete)."""
        await self._power_off(r, op, clean=False)
        return Outcome(changes={"deleted_at": now()})

    async def restore(self, r: Runner, op: Op) -> Outcome:
        """Restore: power the guest on again."""
        await r.driver.power_on(await self.specs.build(op.instance))
        return Outcome(changes={"deleted_at": None})

    # -- power ---------------------------------------------------------------
    async def start(self, r: Runner, op: Op) -> Outcome:
        """Power on, the hard-reboot way; forget any shelve leftovers."""
        if await r.driver.get_power_state(op.uuid) is not P.RUNNING:
            await r.driver.power_on(await self.specs.build(op.instance))
        meta = {k: v for k, v in op.instance.system_metadata.items() if k not in SHELVED_KEYS}
        return Outcome(changes={"system_metadata": meta})

    async def stop(self, r: Runner, op: Op) -> Outcome:
        """Clean shutdown with ACPI retries within shutdown_timeout, then destroy."""
        await self._power_off(r, op)
        return Outcome()

    async def reboot(self, r: Runner, op: Op) -> Outcome:
        """PENDING → STARTED → driver reboot; a failure with the guest running is
        only a fault (Nova's rule)."""
        for task in op.spec.steps:
            power = await r.driver.get_power_state(op.uuid)
            await r.step(op, task, power_state=power)
        kind = RebootKind.SOFT if op.spec.name == "reboot_soft" else RebootKind.HARD
        try:
            await r.driver.reboot(await self.specs.build(op.instance), kind,
                                  self.soft_reboot_timeout)
        except DriverError:
            if await r.driver.get_power_state(op.uuid) is not P.RUNNING:
                raise
        vm = V.RESCUED if op.origin_vm is V.RESCUED else V.ACTIVE
        return Outcome(vm_state=vm)

    async def change_password(self, r: Runner, op: Op) -> Outcome:
        """Nova's set_admin_password: only a running guest; what went wrong
        in the driver is logged, the caller hears only that it failed (Nova
        keeps driver details, which could echo the password, from the API)."""
        if await r.driver.get_power_state(op.uuid) is not P.RUNNING:
            raise PasswordSetFailed(op.uuid, f"instance {op.uuid} is not running")
        spec = await self.specs.build(op.instance)
        try:
            await r.driver.set_admin_password(spec, op.params["admin_pass"])
        except (Conflict, NotImplementedByDriver):
            raise
        except DriverError as exc:
            log.warning("set_admin_password failed", instance_id=op.uuid, error=exc.message)
            raise PasswordSetFailed(op.uuid, "error setting admin password") from None
        return Outcome(refresh_power=False)

    async def pause(self, r: Runner, op: Op) -> Outcome:
        """Freeze the guest in memory."""
        if await r.driver.get_power_state(op.uuid) is not P.PAUSED:
            await r.driver.pause(op.uuid)
        return Outcome()

    async def unpause(self, r: Runner, op: Op) -> Outcome:
        """Thaw the guest."""
        if await r.driver.get_power_state(op.uuid) is P.PAUSED:
            await r.driver.unpause(op.uuid)
        return Outcome()

    async def suspend(self, r: Runner, op: Op) -> Outcome:
        """Managed save; remembers the vm_state to resume to."""
        meta = {**op.instance.system_metadata, "old_vm_state": op.origin_vm.value}
        await r.save(op, system_metadata=meta)
        if await r.driver.get_power_state(op.uuid) is not P.SUSPENDED:
            op.touched_guest = True
            await r.driver.suspend(op.uuid)
        return Outcome()

    async def resume(self, r: Runner, op: Op) -> Outcome:
        """Start from the managed save; back to old_vm_state."""
        if await r.driver.get_power_state(op.uuid) is not P.RUNNING:
            op.touched_guest = True
            await r.driver.resume(await self.specs.build(op.instance))
        meta = dict(op.instance.system_metadata)
        old = V(meta.pop("old_vm_state", V.ACTIVE.value))
        return Outcome(vm_state=old, changes={"system_metadata": meta})

    async def crash_dump(self, r: Runner, op: Op) -> Outcome:
        """Inject an NMI; no state changes."""
        await r.driver.trigger_crash_dump(op.uuid)
        return Outcome(refresh_power=False)

    # -- resize --------------------------------------------------------------
    async def migrate(self, r: Runner, op: Op) -> Outcome:
        """Cold migration: another node, never this one (seed 003)."""
        if op.params.get("arrived"):
            return await self.mover.arrive_resize(r, op)  # type: ignore[no-any-return]
        if not self._clustered():
            return await self.schedule_elsewhere(r, op)
        return await self.mover.move_out(r, op, "migration",  # type: ignore[no-any-return]
                                         op.instance.flavor)

    async def resize(self, r: Runner, op: Op) -> Outcome:
        """RESIZE_MIGRATING → RESIZE_MIGRATED → RESIZE_FINISH: on another
        node when the cluster has one (Nova's allow_resize_to_same_host is
        False by default), else on this host."""
        if op.params.get("arrived"):
            return await self.mover.arrive_resize(r, op)  # type: ignore[no-any-return]
        if self._clustered():
            new_flavor = await self.specs.flavor(op.params["flavor_id"])
            return await self.mover.move_out(r, op, "resize",  # type: ignore[no-any-return]
                                             new_flavor)
        self._place(op, T.RESIZE_PREP)
        new_flavor = await self.specs.flavor(op.params["flavor_id"])
        old_vm = op.origin_vm
        meta = {**op.instance.system_metadata, "old_vm_state": old_vm.value}
        migration = await self.specs.start_migration(op, "resize", new_flavor.id)
        await r.step(op, T.RESIZE_MIGRATING, system_metadata=meta)
        await self.specs.migration_status(migration, "migrating")
        spec = await self.specs.build(op.instance)
        op.touched_guest = True
        await r.driver.migrate_disk_and_power_off(spec, self.specs.flavor_spec(new_flavor),
                                                  self.shutdown_timeout, self.retry_interval)
        await self.specs.migration_status(migration, "post-migrating")
        await r.step(op, T.RESIZE_MIGRATED)
        await r.step(op, T.RESIZE_FINISH, flavor=new_flavor,
                     system_metadata={**meta, "old_flavor": op.instance.flavor.id})
        new_spec = await self.specs.build(op.instance)
        await r.driver.finish_migration(new_spec, power_on=old_vm is not V.STOPPED)
        await self.specs.migration_status(migration, "finished")
        return Outcome(changes={"launched_at": now()})

    async def confirm(self, r: Runner, op: Op) -> Outcome:
        """Drop what was kept for a revert; ACTIVE or STOPPED by power state."""
        migration = await self.specs.claim_migration(op, "finished", "confirming")
        if migration.source_compute != r.host and self.mover is not None:
            await self.mover.confirm_remote(migration)
        await r.driver.confirm_migration(op.uuid, self.specs.instance_dir(op.uuid))
        await self.specs.migration_status(migration, "confirmed")
        meta = {k: v for k, v in op.instance.system_metadata.items()
                if k not in ("old_flavor", "old_vm_state")}
        return Outcome(changes={"system_metadata": meta})

    async def revert(self, r: Runner, op: Op) -> Outcome:
        """Restore the old flavor, XML and disk exactly; back to old_vm_state.
        Resized from another node: the instance goes back there."""
        if op.params.get("arrived"):
            return await self.mover.arrive_revert(r, op)  # type: ignore[no-any-return]
        migration = await self.specs.claim_migration(op, "finished", "reverting")
        if migration.source_compute != r.host and self.mover is not None:
            return await self.mover.revert_out(r, op, migration)  # type: ignore[no-any-return]
        meta = dict(op.instance.system_metadata)
        old_flavor = await self.specs.old_flavor(op.instance)
        old_vm = V(meta.pop("old_vm_state", V.ACTIVE.value))
        meta.pop("old_flavor", None)
        await r.save(op, flavor=old_flavor)
        op.touched_guest = True
        await r.driver.finish_revert_migration(await self.specs.build(op.instance),
                                               power_on=old_vm is not V.STOPPED)
        await self.specs.migration_status(migration, "reverted")
        return Outcome(vm_state=old_vm, changes={"system_metadata": meta})

    async def live_migrate(self, r: Runner, op: Op) -> Outcome:
        """Live migration to another node of the cluster."""
        if op.params.get("arrived"):
            return await self.mover.arrive_live(r, op)  # type: ignore[no-any-return]
        if not self._clustered():
            return await self.schedule_elsewhere(r, op)
        return await self.mover.live_out(r, op)  # type: ignore[no-any-return]

    async def evacuate(self, r: Runner, op: Op) -> Outcome:
        """Rebuild here an instance adopted from a dead node."""
        if op.params.get("arrived") and self.mover is not None:
            return await self.mover.arrive_evacuate(r, op)  # type: ignore[no-any-return]
        return await self.schedule_elsewhere(r, op)

    async def schedule_elsewhere(self, r: Runner, op: Op) -> Outcome:
        """Migrate, live-migrate, evacuate with no other node to go to."""
        kind = {"migrate": "migration", "live_migrate": "live-migration",
                "evacuate": "evacuation"}[op.spec.name]
        migration = await self.specs.start_migration(op, kind, None)
        hosts = [h for h in await self.other_hosts() if h != op.instance.host]
        await self.specs.migration_status(migration, "error")
        if not hosts:
            raise NoValidHost()
        raise NoValidHost(f"No valid host was found. Moving to {hosts[0]} needs the cluster.")

    # -- shelve ----------------------------------------------------------------
    async def shelve(self, r: Runner, op: Op) -> Outcome:
        """Power off, snapshot to ``<name>-shelved``, offload at once when
        shelved_offload_time == 0."""
        paused = await r.driver.get_power_state(op.uuid) is P.PAUSED
        await self._power_off(r, op, clean=not paused)
        image_id = await self.specs.snapshot_to_image(
            r, op, f"{op.instance.name}-shelved", "snapshot",
            (T.SHELVING_IMAGE_PENDING_UPLOAD, T.SHELVING_IMAGE_UPLOADING))
        meta = {**op.instance.system_metadata, "shelved_at": now(),
                "shelved_image_id": image_id, "shelved_host": r.host}
        if self.shelved_offload_time != 0:
            return Outcome(changes={"system_metadata": meta})
        # Offload at once, as Nova: SHELVED with SHELVING_OFFLOADING first, so
        # a crash from here on is recovered by re-running shelve_offload
        # (whose source is SHELVED), never left ACTIVE without a guest.
        await r.step(op, T.SHELVING_OFFLOADING, vm_state=V.SHELVED, system_metadata=meta)
        await r.driver.destroy(op.uuid, self.specs.instance_dir(op.uuid))
        return Outcome(vm_state=V.SHELVED_OFFLOADED, changes={"power_state": P.NOSTATE})

    async def shelve_offload(self, r: Runner, op: Op) -> Outcome:
        """Remove the guest and its directory; only the image and the row remain."""
        await self._power_off(r, op, clean=False)
        await r.driver.destroy(op.uuid, self.specs.instance_dir(op.uuid))
        return Outcome(changes={"power_state": P.NOSTATE})

    async def unshelve(self, r: Runner, op: Op) -> Outcome:
        """SHELVED: POWERING_ON and start.  OFFLOADED: SPAWNING from the shelved
        image.  Then the shelved image is deleted."""
        meta = dict(op.instance.system_metadata)
        if op.origin_vm is V.SHELVED:
            await r.step(op, T.POWERING_ON)
            await r.driver.power_on(await self.specs.build(op.instance))
        else:
            self._place(op, T.UNSHELVING)
            self._fits_unshelve(op)
            meta = repin(meta, op.params)
            await r.step(op, T.SPAWNING)
            spec = await self.specs.build(op.instance, image_id=meta.get("shelved_image_id"))
            await r.driver.destroy(op.uuid, spec.instance_dir)
            await r.driver.spawn(spec)
        await self.specs.forget_shelved_image(op.instance)
        meta = {k: v for k, v in meta.items() if k not in SHELVED_KEYS}
        return Outcome(changes={"system_metadata": meta, "launched_at": now()})

    def _fits_unshelve(self, op: Op) -> None:
        """An offloaded server is unshelved where its record lives, this node:
        a requested zone or host (2.77, 2.91) elsewhere finds no valid host,
        and the server stays SHELVED_OFFLOADED, as Nova's scheduler leaves it."""
        zone, host = op.params.get("availability_zone"), op.params.get("host")
        if zone is not None and zone != self.zone:
            raise NoValidHost(detail=f"this server is unshelved on {self.host or 'its node'}, "
                                     f"in zone {self.zone}, not in {zone}")
        if host is not None and self.host and host != self.host:
            raise NoValidHost(detail=f"this server is unshelved on {self.host}, not on {host}")

    # -- rescue and rebuild ----------------------------------------------------
    async def rescue(self, r: Runner, op: Op) -> Outcome:
        """Clean power-off, then boot the rescue image: with the disk second,
        or, when the image asks for a stable device rescue, as one more device."""
        await self._power_off(r, op)
        spec = await self.specs.build(op.instance)
        rescue_ref = op.params.get("rescue_image_ref") or op.instance.image_ref
        await r.driver.rescue(spec, await self.specs.rescue_image_spec(rescue_ref))
        meta = {**op.instance.system_metadata, "old_vm_state": op.origin_vm.value}
        return Outcome(changes={"launched_at": now(), "system_metadata": meta})

    async def unrescue(self, r: Runner, op: Op) -> Outcome:
        """Back to the original guest; always ACTIVE (Nova's rule)."""
        await r.driver.unrescue(await self.specs.build(op.instance))
        meta = {k: v for k, v in op.instance.system_metadata.items() if k != "old_vm_state"}
        return Outcome(changes={"system_metadata": meta})

    async def rebuild(self, r: Runner, op: Op) -> Outcome:
        """Destroy, new disk from the new image, spawn; a STOPPED server is
        stopped again."""
        image_id = op.params.get("image_id") or op.instance.image_ref
        changes: dict[str, Any] = {"image_ref": image_id}
        if op.params.get("name"):
            changes["name"] = op.params["name"]
        if op.params.get("metadata") is not None:
            changes["metadata"] = op.params["metadata"]
        await r.save(op, **changes)
        op.touched_guest = True
        await r.driver.destroy(op.uuid, self.specs.instance_dir(op.uuid))
        await r.step(op, T.REBUILD_BLOCK_DEVICE_MAPPING)
        await r.step(op, T.REBUILD_SPAWNING)
        _verify_image(op)
        await r.driver.spawn(await self.specs.build(op.instance))
        if op.origin_vm is V.STOPPED:
            await r.step(op, T.POWERING_OFF)
            await self._power_off(r, op)
        return Outcome(changes={"launched_at": now()})

    async def snapshot(self, r: Runner, op: Op) -> Outcome:
        """createImage / createBackup: the image id was reserved at accept."""
        if op.spec.name == "snapshot":
            await r.step(op, T.IMAGE_SNAPSHOT)
        await self.specs.snapshot_to_image(r, op, op.params["name"], op.spec.name,
                                           (T.IMAGE_PENDING_UPLOAD, T.IMAGE_UPLOADING))
        if op.spec.name == "backup":
            try:
                await self.specs.rotate_backups(op)
            except Exception:  # the backup itself succeeded; rotation retries next time
                log.exception("backup rotation failed", instance_id=op.uuid)
        return Outcome()


TRUSTED_CERTS_KEY = "trusted_image_certificates"
"""The system_metadata key of a server's 2.63 certificate ids."""


def _verify_image(op: Op) -> None:
    """Nova verifies the image's signature against the server's trusted
    certificates whenever it has some (2.63), whatever ``[glance]
    verify_glance_signatures`` says; the certificates live in a key manager,
    which novad has none of, so such a build fails as Nova's does when
    verification cannot succeed (the server goes to ERROR with the fault)."""
    if op.instance.system_metadata.get(TRUSTED_CERTS_KEY):
        raise NovadError("Signature verification for the image failed: no key manager "
                         "holds the trusted image certificates.")
