"""Crash recovery at start-up: carries out :mod:`novad.states.recovery`.

Runs before the API reports ready.  Every instance this node owns (its
``host``) or whose task this node started (``task_host``) is brought to a
stable state; no task_state survives a restart.  Guests novad manages that
have no live row (a crash between spawn and the row's delete) are destroyed.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from typing import Any

import structlog

from novad.compute.runner import Op, Runner
from novad.compute.specs import IMAGE_IN_PROGRESS, SpecBuilder
from novad.context import RequestContext, new_request_id
from novad.states.enums import VmState as V
from novad.states.recovery import Plan, Recovery, plan_for
from novad.states.table import BY_NAME
from novad.store import Store
from novad.store.models import ActionStart, EventFinish, EventStart, Expect, Fault, Instance

log = structlog.get_logger("novad.recovery")

PARAMS_KEY = "novad_task_params"
IMAGE_KEY = IMAGE_IN_PROGRESS


class StartupRecovery:
    """Applies the recovery plan of every instance at start-up."""

    def __init__(self, store: Store, runner: Runner, specs: SpecBuilder, host: str,
                 mover: Any = None) -> None:
        self.mover = mover
        """The node's :class:`~novad.compute.moves.Mover`: recovers moves
        between nodes and names the directories it keeps without a row."""
        if mover is not None:
            mover.rollback = self._rollback_resize
            mover.rerun = self._rerun
        self.store = store
        self.runner = runner
        self.specs = specs
        self.host = host

    async def run(self) -> dict[str, str]:
        """Recover every instance; returns instance id → what was done."""
        rows = await self.store.list_instances(host=None, include_deleted=False)
        mine = [r for r in rows if r.host == self.host
                or r.system_metadata.get("task_host") == self.host]
        confirming = {m.instance_uuid for m in
                      await self.store.list_migrations(("confirming",), None)}
        done: dict[str, str] = {}
        results = await asyncio.gather(
            *(self._recover(inst, plan_for(inst.vm_state, inst.task_state,
                                           inst.uuid in confirming)) for inst in mine),
            return_exceptions=True)
        for inst, result in zip(mine, results, strict=True):
            done[inst.uuid] = repr(result) if isinstance(result, BaseException) else str(result)
            if isinstance(result, BaseException):
                log.error("recovery failed", instance_id=inst.uuid, error=repr(result))
        kept = await self.mover.kept_dirs() if self.mover is not None else set()
        await self._reap_orphans({r.uuid for r in rows} | kept)
        return done

    async def _recover(self, inst: Instance, plan: Plan) -> str:
        if self.mover is not None:
            moved: str | None = await self.mover.recover(inst)
            if moved is not None:
                log.info("recovering a move", instance_id=inst.uuid, done=moved)
                return moved
        if plan.kind is Recovery.NOTHING:
            return "nothing"
        log.info("recovering", instance_id=inst.uuid, vm_state=str(inst.vm_state),
                 task_state=str(inst.task_state), plan=plan.kind.value, action=plan.action)
        await self._kill_partial_image(inst)
        if plan.kind is Recovery.ERROR:
            await self._finish(inst, {"vm_state": V.ERROR, "task_state": None},
                               "Instance operation interrupted by a service restart")
        elif plan.kind is Recovery.CLEAR:
            await self._fail_migrations(inst)
            await self._finish(inst, {"task_state": None}, None)
        elif plan.kind is Recovery.ROLLBACK_RESIZE:
            await self._rollback_resize(inst)
        else:
            assert plan.action is not None
            await self._rerun(inst, plan.action)
        return f"{plan.kind.value}:{plan.action or ''}"

    async def _finish(self, inst: Instance, changes: dict[str, Any], fault: str | None) -> None:
        rid = new_request_id()
        meta = {k: v for k, v in inst.system_metadata.items()
                if k not in (PARAMS_KEY, IMAGE_KEY, "task_host")}
        power = await self.runner.driver.get_power_state(inst.uuid)
        await self.store.write(
            inst.uuid, Expect(frozenset({inst.vm_state}), frozenset({inst.task_state})),
            {**changes, "power_state": power, "system_metadata": meta},
            fault=Fault(500, fault, "", self.host) if fault else None)
        latest = await self.store.latest_action(inst.uuid)
        if latest is not None:  # Nova attaches the restart's event to the last action
            await self.store.record_event(inst.uuid, EventStart(latest.request_id,
                                                                "compute_init_host", self.host))
            await self.store.record_event(inst.uuid, EventFinish(
                latest.request_id, "compute_init_host", "Error" if fault else "Success",
                details=fault or f"recovered {rid}"))

    async def _kill_partial_image(self, inst: Instance) -> None:
        image_id = inst.system_metadata.get(IMAGE_KEY)
        if image_id:
            try:
                await self.specs.images.kill(image_id)
            except Exception as exc:  # the image may already be gone
                log.info("partial image not killed", image_id=image_id, error=repr(exc))

    async def _fail_migrations(self, inst: Instance) -> None:
        open_states = ("pre-migrating", "migrating", "post-migrating", "accepted", "queued",
                       "preparing", "running")
        migration = await self.store.get_migration_for_instance(inst.uuid, open_states)
        if migration is not None:
            await self.store.update_migration_status(migration.id, "error")

    async def _rerun(self, inst: Instance, action: str) -> None:
        spec = BY_NAME[action]
        params = json.loads(inst.system_metadata.get(PARAMS_KEY) or "{}")
        params.pop("image_id", None)
        latest = await self.store.latest_action(inst.uuid)
        rid = latest.request_id if latest is not None else new_request_id()
        changes: dict[str, Any] = {} if spec.keeps_task else {"task_state": spec.sets_task}
        expect = Expect(frozenset({inst.vm_state}), frozenset({inst.task_state}))
        event = EventStart(rid, spec.event, self.host) if spec.event else None
        new = await self.store.write(inst.uuid, expect, changes, event_start=event,
                                     action=None if latest else ActionStart(
                                         spec.instance_action or spec.name, rid,
                                         inst.user_id, inst.project_id))
        op = Op(spec=spec, instance=new, ctx=RequestContext.admin(rid), params=params,
                origin_vm=_origin(inst), task=new.task_state, request_id=rid)
        await self.runner.run(op)

    async def _rollback_resize(self, inst: Instance) -> None:
        """Back to the source flavor, XML and disk; vm_state as before the resize."""
        await self._fail_migrations(inst)
        meta = dict(inst.system_metadata)
        old_vm = V(meta.pop("old_vm_state", inst.vm_state.value))
        flavor = inst.flavor
        if "old_flavor" in meta:
            flavor = await self.store.get_flavor(meta.pop("old_flavor"))
        spec = await self.specs.build(inst.replace(flavor=flavor))
        await self.runner.driver.finish_revert_migration(spec, power_on=old_vm is not V.STOPPED)
        await self._finish(inst.replace(system_metadata=meta),
                           {"vm_state": old_vm, "task_state": None, "flavor": flavor}, None)

    async def _reap_orphans(self, live: set[str]) -> None:
        """Destroy guests novad created whose instance row is gone or deleted."""
        for uuid in await self.runner.driver.list_instances():
            if uuid not in live:
                log.warning("destroying orphan guest", instance_id=uuid)
                await self.runner.driver.destroy(uuid, self.specs.instance_dir(uuid))
        root = self.specs.state_dir / "instances"
        entries = await asyncio.to_thread(lambda: list(root.iterdir()) if root.is_dir() else [])
        for path in entries:
            if path.is_dir() and not path.name.startswith("_") and path.name not in live:
                log.warning("removing orphan instance directory", path=str(path))
                await asyncio.to_thread(shutil.rmtree, path, True)


def _origin(inst: Instance) -> V:
    """The vm_state an interrupted action started from."""
    return inst.vm_state
