"""Walks every row of the action table against a real stack.

Each allowed (vm_state, task_state) start must succeed and end in the row's
documented final state; each disallowed start must be refused with the
typed error and leave the store untouched.  The expectations are computed
from the same ``ACTIONS`` declaration the service runs.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from novad.errors import (
    ComputeServiceInUse,
    Forbidden,
    InstanceInvalidState,
    InstanceIsLocked,
    Invalid,
)
from novad.states.enums import ALL_TASKS, PowerState, TaskState, VmState
from novad.states.machine import Subject
from novad.states.table import ACTIONS, BY_NAME, NO_VALID_HOST_FINAL, ActionSpec, Final
from novad.store.models import Expect, Instance

from .conftest import Stack, admin, owner

PREPARE: dict[VmState, list[tuple[str, dict[str, Any]]]] = {
    VmState.ACTIVE: [],
    VmState.PAUSED: [("pause", {})],
    VmState.SUSPENDED: [("suspend", {})],
    VmState.STOPPED: [("stop", {})],
    VmState.RESCUED: [("rescue", {})],
    VmState.RESIZED: [("resize", {"flavor_id": "1"})],
    VmState.SHELVED: [("shelve", {})],
    VmState.SHELVED_OFFLOADED: [("shelve", {}), ("shelve_offload", {})],
    VmState.SOFT_DELETED: [("soft_delete", {})],
    VmState.ERROR: [("reset_state", {"state": "error"})],
}

PARAMS: dict[str, dict[str, Any]] = {
    "resize": {"flavor_id": "1"}, "migrate": {"host": None},
    "snapshot": {"name": "snap", "metadata": {}},
    "backup": {"name": "bk", "backup_type": "daily", "rotation": 1, "metadata": {}},
    "reset_state": {"state": "error"}, "rebuild": {"image_id": ""},
    "change_password": {"admin_pass": "s3cret"},
}

API_ACTIONS = [s for s in ACTIONS if s.name != "boot" and not s.internal]


def allowed(spec: ActionSpec, vm: VmState, task: TaskState | None) -> bool:
    """The row's state guards, read from the declaration."""
    return spec.allows(vm, task)


async def prepare(stack: Stack, vm: VmState, task: TaskState | None) -> Instance:
    """A real instance in (vm, task): real actions for vm, a forced row for task."""
    if vm in (VmState.BUILDING, VmState.DELETED):
        inst = await stack.boot()
        inst = await stack.force_task(inst, None, vm)
    else:
        inst = await stack.boot()
        for action, params in PREPARE[vm]:
            ctx = admin() if action == "reset_state" else owner()
            inst = await stack.act(inst.uuid, action, ctx, **params)
        assert inst.vm_state is vm, (vm, inst.vm_state, await stack.store.latest_fault(inst.uuid))
    if task is not None:
        inst = await stack.force_task(inst, task)
    return inst


def expected_final(spec: ActionSpec, before: Instance, after: Instance) -> VmState:
    """The row's final rule, resolved for this instance."""
    if spec.name in NO_VALID_HOST_FINAL:
        return before.vm_state
    final = spec.final
    if isinstance(final, VmState):
        return final
    if final is Final.UNCHANGED:
        return before.vm_state
    if final is Final.OLD_VM_STATE:
        return VmState(before.system_metadata.get("old_vm_state", "active"))
    if final is Final.BY_POWER:
        return VmState.STOPPED if after.power_state is PowerState.SHUTDOWN else VmState.ACTIVE
    if final is Final.STOPPED_STAYS_STOPPED:
        return VmState.STOPPED if before.vm_state is VmState.STOPPED else VmState.ACTIVE
    if final is Final.SHELVED_OR_OFFLOADED:  # the stack never offloads at once
        return VmState.SHELVED
    return VmState(PARAMS["reset_state"]["state"])


def allowed_cases() -> list[tuple[str, VmState, TaskState | None]]:
    """Every allowed start of every API row (a sample of task_states for
    task-unchecked rows, which accept all 43 alike)."""
    cases = []
    sample = (None, TaskState.PAUSING, TaskState.DELETING, TaskState.IMAGE_UPLOADING)
    for spec in API_ACTIONS:
        tasks = sample if spec.task_states is None else ALL_TASKS
        for vm in VmState:
            cases.extend((spec.name, vm, t) for t in tasks if allowed(spec, vm, t))
    return cases


@pytest.mark.parametrize(("action", "vm", "task"), allowed_cases(),
                         ids=lambda v: getattr(v, "value", v) if v is not None else "none")
async def test_allowed_start_reaches_documented_final(stack: Stack, action: str, vm: VmState,
                                                      task: TaskState | None) -> None:
    spec = BY_NAME[action]
    before = await prepare(stack, vm, task)
    if spec.host_check.value == "host down":
        before = await stack.store.update_fields(before.uuid, {"host": "lost-node"})
    ctx = admin() if spec.admin_only else owner()
    await stack.compute.act(ctx, before.uuid, action, dict(PARAMS.get(action, {})))
    await stack.settle()
    after = await stack.store.get_instance(before.uuid, include_deleted=True)
    fault = await stack.store.latest_fault(after.uuid)
    assert after.vm_state is expected_final(spec, before, after), fault
    if spec.keeps_task:
        assert after.task_state == before.task_state
    else:
        assert after.task_state is None, fault
    if action in ("delete", "force_delete"):
        assert after.deleted and after.uuid not in await stack.driver.list_instances()
    actions = await stack.store.list_actions(after.uuid)
    assert actions[0].action == spec.instance_action


async def test_disallowed_starts_are_refused_and_change_nothing(stack: Stack) -> None:
    base = await stack.boot()
    rows: dict[tuple[VmState, TaskState | None], Instance] = {}
    for vm in VmState:
        for task in ALL_TASKS:
            clone = dataclasses.replace(base, uuid=f"{vm.value}-{task or 'none'}"[:36],
                                        vm_state=vm, task_state=task)
            rows[(vm, task)] = await stack.store.create_instance(clone)
    refused = 0
    for spec in API_ACTIONS:
        for (vm, task), inst in rows.items():
            if allowed(spec, vm, task):
                continue
            ctx = admin() if spec.admin_only else owner()
            with pytest.raises(InstanceInvalidState) as info:
                await stack.compute.act(ctx, inst.uuid, spec.name,
                                        dict(PARAMS.get(spec.name, {})))
            assert info.value.attr in ("vm_state", "task_state")
            assert f"Cannot '{spec.api_name}' instance {inst.uuid}" in info.value.message
            refused += 1
    for inst in rows.values():
        assert await stack.store.get_instance(inst.uuid) == inst
        assert await stack.store.list_actions(inst.uuid) == []
    assert refused > 10_000


async def test_boot_row_guards_only_building_scheduling(stack: Stack) -> None:
    spec = BY_NAME["boot"]
    lifecycle = stack.compute.lifecycle
    for vm in VmState:
        for task in ALL_TASKS:
            subject = Subject("x", vm, task, False, False, "h", False)
            if allowed(spec, vm, task):
                lifecycle.check_request(spec, subject)
            else:
                with pytest.raises(InstanceInvalidState):
                    lifecycle.check_request(spec, subject)
    inst = await stack.boot()
    assert (inst.vm_state, inst.task_state, inst.power_state) == \
        (VmState.ACTIVE, None, PowerState.RUNNING)
    assert inst.launched_at is not None


async def test_launched_lock_and_host_guards(stack: Stack) -> None:
    inst = await stack.boot()
    never = await stack.store.write(inst.uuid, Expect(), {"launched_at": None})
    with pytest.raises(InstanceInvalidState, match="launched_at"):
        await stack.compute.act(owner(), never.uuid, "pause", {})
    await stack.store.write(inst.uuid, Expect(), {"launched_at": "2026-01-01T00:00:00.000000"})
    await stack.act(inst.uuid, "lock")
    with pytest.raises(InstanceIsLocked, match=f"Instance {inst.uuid} is locked"):
        await stack.compute.act(owner(), inst.uuid, "pause", {})
    with pytest.raises(ComputeServiceInUse):  # its host (this node) is up
        await stack.compute.act(admin(), inst.uuid, "evacuate", {})
    paused = await stack.act(inst.uuid, "pause", admin())
    assert paused.vm_state is VmState.PAUSED
    reader = dataclasses.replace(owner(), roles=frozenset({"reader"}))
    with pytest.raises(Forbidden):
        await stack.compute.act(reader, inst.uuid, "unpause", {})


async def test_resize_to_a_zero_disk_flavor_is_refused(stack: Stack) -> None:
    inst = await stack.boot()
    inst = await stack.act(inst.uuid, "resize", flavor_id="1")  # 0 GB -> 1 GB root
    inst = await stack.act(inst.uuid, "confirm_resize")
    with pytest.raises(Invalid, match="Resize to zero disk flavor is not allowed"):
        await stack.compute.act(owner(), inst.uuid, "resize", {"flavor_id": "42"})
    assert (await stack.store.get_instance(inst.uuid)).task_state is None
