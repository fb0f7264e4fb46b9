"""Concurrency, crash recovery for every task_state, and power sync — all real."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from novad.compute.recovery import StartupRecovery
from novad.errors import InstanceInvalidState
from novad.states.enums import ALL_TASKS, PowerState, TaskState, VmState
from novad.states.recovery import Recovery, plan_for
from novad.states.table import BY_NAME
from novad.store.models import Expect, Instance

from .conftest import Stack, build_stack, close_stack, owner

STABLE = {VmState.ACTIVE, VmState.STOPPED, VmState.PAUSED, VmState.SUSPENDED,
          VmState.RESCUED, VmState.RESIZED, VmState.SHELVED, VmState.SHELVED_OFFLOADED,
          VmState.SOFT_DELETED, VmState.ERROR, VmState.DELETED}


async def test_fifty_conflicting_actions_one_wins(stack: Stack) -> None:
    inst = await stack.boot()
    # each is allowed only from ACTIVE with no task, and none ends in ACTIVE: once
    # one is accepted every other must be refused, whether it is running or done
    actions = ["pause", "suspend"] * 25
    results = await asyncio.gather(*(stack.compute.act(owner(), inst.uuid, a, {})
                                     for a in actions), return_exceptions=True)
    accepted = [a for a, r in zip(actions, results, strict=True)
                if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(accepted) == 1 and len(refused) == 49
    assert all(isinstance(r, InstanceInvalidState) for r in refused)
    await stack.settle()
    after = await stack.store.get_instance(inst.uuid)
    assert after.task_state is None
    assert after.vm_state is {"pause": VmState.PAUSED,
                              "suspend": VmState.SUSPENDED}[accepted[0]]
    actions_recorded = await stack.store.list_actions(inst.uuid)
    assert [a.action for a in actions_recorded] == [accepted[0], "create"]


async def test_concurrent_accepts_on_many_instances_lose_no_update(stack: Stack) -> None:
    insts = [await stack.boot(f"vm{i}") for i in range(10)]
    await asyncio.gather(*(stack.compute.act(owner(), i.uuid, "pause", {}) for i in insts))
    await stack.settle()
    await asyncio.gather(*(stack.compute.act(owner(), i.uuid, "unpause", {}) for i in insts))
    await stack.settle()
    for inst in insts:
        row = await stack.store.get_instance(inst.uuid)
        assert (row.vm_state, row.task_state, row.power_state) == \
            (VmState.ACTIVE, None, PowerState.RUNNING)
        assert [a.action for a in await stack.store.list_actions(inst.uuid)] == \
            ["unpause", "pause", "create"]


PREPARED_VM = {  # a realistic vm_state for an instance left in each task_state
    TaskState.UNPAUSING: VmState.PAUSED, TaskState.RESUMING: VmState.SUSPENDED,
    TaskState.POWERING_ON: VmState.STOPPED, TaskState.UNRESCUING: VmState.RESCUED,
    TaskState.RESIZE_REVERTING: VmState.RESIZED, TaskState.RESTORING: VmState.SOFT_DELETED,
    TaskState.SHELVING_OFFLOADING: VmState.SHELVED, TaskState.UNSHELVING: VmState.SHELVED,
    TaskState.SCHEDULING: VmState.BUILDING, TaskState.NETWORKING: VmState.BUILDING,
    TaskState.BLOCK_DEVICE_MAPPING: VmState.BUILDING, TaskState.SPAWNING: VmState.BUILDING,
}
PREPARE_ACTIONS = {VmState.PAUSED: ["pause"], VmState.SUSPENDED: ["suspend"],
                   VmState.STOPPED: ["stop"], VmState.RESCUED: ["rescue"],
                   VmState.RESIZED: ["resize"], VmState.SOFT_DELETED: ["soft_delete"],
                   VmState.SHELVED: ["shelve"]}


async def _left_in(stack: Stack, task: TaskState) -> Instance:
    """An instance with a real guest, left in ``task`` as a crash would leave it."""
    vm = PREPARED_VM.get(task, VmState.ACTIVE)
    inst = await stack.boot()
    for action in PREPARE_ACTIONS.get(vm, []):
        params = {"flavor_id": "1"} if action == "resize" else {}
        inst = await stack.act(inst.uuid, action, **params)
    if task in (TaskState.RESIZE_MIGRATING, TaskState.RESIZE_MIGRATED, TaskState.RESIZE_FINISH):
        inst = await stack.store.write(inst.uuid, Expect(), {
            "system_metadata": {**inst.system_metadata, "old_vm_state": "active",
                                "old_flavor": inst.flavor.id}})
    if vm is VmState.BUILDING:
        inst = await stack.store.write(inst.uuid, Expect(), {"vm_state": vm})
    return await stack.store.write(inst.uuid, Expect(), {"task_state": task})


@pytest.mark.parametrize("task", list(TaskState), ids=lambda t: t.value)
async def test_recovery_leaves_no_task_state_stuck(tmp_path: Path, task: TaskState) -> None:
    first = await build_stack(tmp_path / "state")
    inst = await _left_in(first, task)
    await first.supervisor.stop()  # the "crash": no work goes on, the store is closed
    await first.db.close()
    restarted = await build_stack(tmp_path / "state", seed=False)
    await first.driver.close()  # the guests live on in libvirt, as after kill -9
    try:
        plan = plan_for(inst.vm_state, inst.task_state)
        await StartupRecovery(restarted.store, restarted.compute.runner,
                              restarted.compute.specs, restarted.compute.host).run()
        await restarted.settle()
        after = await restarted.store.get_instance(inst.uuid, include_deleted=True)
        fault = await restarted.store.latest_fault(inst.uuid)
        assert after.task_state is None, (plan, fault)
        assert after.vm_state in STABLE
        if plan.kind is Recovery.ERROR:
            assert after.vm_state is VmState.ERROR
        elif plan.kind is Recovery.RERUN:
            assert after.vm_state is not VmState.ERROR, (plan, fault)
        if not after.deleted:
            power = await restarted.driver.get_power_state(inst.uuid)
            assert after.power_state is power
    finally:
        await close_stack(restarted)


def test_every_task_state_has_a_recovery_plan() -> None:
    for vm in VmState:
        for task in ALL_TASKS:
            plan = plan_for(vm, task)
            if task is not None:
                assert plan.kind is not Recovery.NOTHING, (vm, task)
            if plan.kind is Recovery.RERUN:
                assert plan.action in BY_NAME


async def test_power_sync_stops_instance_shut_down_behind_our_back(stack: Stack) -> None:
    inst = await stack.boot()
    dom = stack.driver._connection.lookupByUUIDString(inst.uuid)  # noqa: SLF001 - real libvirt call
    dom.destroy()
    assert await stack.power_sync.sync(inst.uuid)
    await stack.settle()
    after = await stack.store.get_instance(inst.uuid)
    assert (after.vm_state, after.task_state, after.power_state) == \
        (VmState.STOPPED, None, PowerState.SHUTDOWN)
    assert (await stack.store.list_actions(inst.uuid))[0].action == "stop"


async def test_power_sync_paused_behind_our_back_only_updates_power(stack: Stack) -> None:
    inst = await stack.boot()
    stack.driver._connection.lookupByUUIDString(inst.uuid).suspend()  # noqa: SLF001
    assert await stack.power_sync.sync(inst.uuid)
    after = await stack.store.get_instance(inst.uuid)
    assert (after.vm_state, after.power_state) == (VmState.ACTIVE, PowerState.PAUSED)


async def test_power_sync_forces_off_a_stopped_instance_found_running(stack: Stack) -> None:
    inst = await stack.act((await stack.boot()).uuid, "stop")
    stack.driver._connection.lookupByUUIDString(inst.uuid).create()  # noqa: SLF001
    assert await stack.power_sync.sync(inst.uuid)
    await stack.settle()
    after = await stack.store.get_instance(inst.uuid)
    assert (after.vm_state, after.task_state, after.power_state) == \
        (VmState.STOPPED, None, PowerState.SHUTDOWN)


async def test_power_sync_paused_instance_found_shut_down_is_stopped(stack: Stack) -> None:
    inst = await stack.act((await stack.boot()).uuid, "pause")
    stack.driver._connection.lookupByUUIDString(inst.uuid).destroy()  # noqa: SLF001
    await stack.power_sync.sweep()
    await stack.settle()
    after = await stack.store.get_instance(inst.uuid)
    assert (after.vm_state, after.power_state) == (VmState.STOPPED, PowerState.SHUTDOWN)


async def test_power_sync_skips_instances_with_a_task(stack: Stack) -> None:
    inst = await stack.boot()
    inst = await stack.force_task(inst, TaskState.PAUSING)
    stack.driver._connection.lookupByUUIDString(inst.uuid).destroy()  # noqa: SLF001
    assert not await stack.power_sync.sync(inst.uuid)
    assert (await stack.store.get_instance(inst.uuid)).power_state is PowerState.RUNNING


async def test_lifecycle_event_drives_power_sync(stack: Stack) -> None:
    inst = await stack.boot()
    stack.supervisor.run_forever("events", lambda: stack.power_sync.consume(stack.driver.events))
    stack.driver._connection.lookupByUUIDString(inst.uuid).suspend()  # noqa: SLF001
    for _ in range(100):
        if (await stack.store.get_instance(inst.uuid)).power_state is PowerState.PAUSED:
            break
        await asyncio.sleep(0.05)
    assert (await stack.store.get_instance(inst.uuid)).power_state is PowerState.PAUSED
