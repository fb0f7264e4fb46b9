"""The compute node's periodic jobs, each a plain coroutine run by the supervisor.

* resize auto-confirm (``resize_confirm_window`` > 0),
* shelved offload (``shelved_offload_time`` > 0, every ``shelved_poll_interval``),
* soft-delete reclaim (``reclaim_instance_interval`` > 0).
Power sync lives in :mod:`novad.compute.power_sync`.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import structlog

from novad.compute.service import ComputeService
from novad.context import RequestContext
from novad.errors import NovadError
from novad.states.enums import VmState as V

log = structlog.get_logger("novad.periodic")


def _older_than(stamp: str | None, seconds: int) -> bool:
    if not stamp:
        return False
    when = datetime.fromisoformat(stamp)
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return datetime.now(timezone.utc) - when > timedelta(seconds=seconds)


class PeriodicJobs:
    """Named jobs over the instances of this host."""

    def __init__(self, compute: ComputeService) -> None:
        self.compute = compute
        self.store = compute.store
        self.defaults = compute.config.DEFAULT

    async def _act(self, uuid: str, action: str) -> bool:
        try:
            await self.compute.act(RequestContext.admin(), uuid, action, {})
            return True
        except NovadError as exc:
            log.info("periodic action refused", instance_id=uuid, action=action,
                     error=exc.message)
            return False

    async def confirm_resizes(self) -> int:
        """Confirm resizes finished more than resize_confirm_window seconds ago."""
        window = self.defaults.resize_confirm_window
        done = 0
        for migration in await self.store.list_migrations(("finished",), None):
            if migration.dest_compute != self.compute.host \
                    or not _older_than(migration.updated_at or migration.created_at, window):
                continue
            try:
                inst = await self.store.get_instance(migration.instance_uuid)
            except NovadError:
                await self.store.update_migration_status(migration.id, "error")
                continue
            if inst.vm_state is not V.RESIZED or inst.task_state is not None:
                if inst.vm_state is V.ERROR:
                    await self.store.update_migration_status(migration.id, "error")
                continue
            done += await self._act(inst.uuid, "confirm_resize")
        return done

    async def offload_shelved(self) -> int:
        """Offload SHELVED instances shelved longer than shelved_offload_time."""
        done = 0
        for inst in await self.store.list_instances(host=self.compute.host):
            if inst.vm_state is V.SHELVED and inst.task_state is None and _older_than(
                    inst.system_metadata.get("shelved_at"), self.defaults.shelved_offload_time):
                done += await self._act(inst.uuid, "shelve_offload")
        return done

    async def reclaim(self) -> int:
        """Hard-delete SOFT_DELETED instances older than reclaim_instance_interval."""
        done = 0
        for inst in await self.store.list_instances(host=self.compute.host):
            if inst.vm_state is V.SOFT_DELETED and inst.task_state is None and _older_than(
                    inst.deleted_at, self.defaults.reclaim_instance_interval):
                done += await self._act(inst.uuid, "delete")
        return done
