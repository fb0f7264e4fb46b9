"""A disabled compute service takes no new instances (Nova's ComputeFilter).

An admin disables the node to drain it: boots, unshelving an offloaded
server and resizes end with NoValidHost, while everything already here keeps
working.  The node's own disable for a lost libvirt connection never undoes,
or is mistaken for, an admin's.
"""

from __future__ import annotations

from pathlib import Path

from novad.compute.service_record import ServiceRecord
from novad.states.enums import PowerState, VmState

from .conftest import Stack, admin, build_stack, close_stack

NO_HOST = "No valid host was found. There are not enough hosts available."


async def test_a_boot_on_a_disabled_node_ends_in_error_and_leaves_no_guest(
        stack: Stack) -> None:
    await stack.service.set(True, "maintenance")
    inst = await stack.boot("refused")
    assert (inst.vm_state, inst.task_state) == (VmState.ERROR, None)
    fault = await stack.store.latest_fault(inst.uuid)
    assert fault is not None and fault.message == NO_HOST
    assert inst.uuid not in await stack.driver.list_instances()
    action = await stack.store.latest_action(inst.uuid)
    assert action is not None
    (event,) = (await stack.store.get_action(inst.uuid, action.request_id)).events
    assert event.result == "Error"

    await stack.service.set(False)
    inst = await stack.boot("accepted")
    assert (inst.vm_state, inst.power_state) == (VmState.ACTIVE, PowerState.RUNNING)


async def test_what_runs_on_a_disabled_node_keeps_working_but_cannot_move_in(
        stack: Stack) -> None:
    running = await stack.boot("running")
    offloaded = await stack.boot("offloaded")
    await stack.act(offloaded.uuid, "shelve")
    await stack.act(offloaded.uuid, "shelve_offload")
    await stack.service.set(True, None)

    for action, vm in (("pause", VmState.PAUSED), ("unpause", VmState.ACTIVE),
                       ("stop", VmState.STOPPED), ("start", VmState.ACTIVE)):
        assert (await stack.act(running.uuid, action, admin())).vm_state is vm

    resized = await stack.act(running.uuid, "resize", admin(), flavor_id="1")
    assert (resized.vm_state, resized.task_state, resized.flavor.id) == (
        VmState.ACTIVE, None, running.flavor.id)
    fault = await stack.store.latest_fault(running.uuid)
    assert fault is not None and fault.message == NO_HOST
    assert await stack.store.get_migration_for_instance(running.uuid, ("finished",)) is None

    kept = await stack.act(offloaded.uuid, "unshelve", admin())
    assert (kept.vm_state, kept.task_state) == (VmState.SHELVED_OFFLOADED, None)
    assert offloaded.uuid not in await stack.driver.list_instances()

    await stack.service.set(False)
    back = await stack.act(offloaded.uuid, "unshelve", admin())
    assert (back.vm_state, back.power_state) == (VmState.ACTIVE, PowerState.RUNNING)


async def test_a_shelved_server_not_offloaded_unshelves_on_a_disabled_node(
        stack: Stack) -> None:
    inst = await stack.boot()
    await stack.act(inst.uuid, "shelve")
    await stack.service.set(True, "maintenance")
    back = await stack.act(inst.uuid, "unshelve", admin())
    assert (back.vm_state, back.power_state) == (VmState.ACTIVE, PowerState.RUNNING)


async def test_the_record_survives_a_restart(tmp_path: Path) -> None:
    stack = await build_stack(tmp_path / "state")
    try:
        await stack.service.set(True, "new disks")
    finally:
        await close_stack(stack)
    stack = await build_stack(tmp_path / "state", seed=False)
    try:
        assert (stack.service.row.disabled, stack.service.row.disabled_reason) == (
            True, "new disks")
        assert (await stack.boot()).vm_state is VmState.ERROR
    finally:
        await close_stack(stack)


async def test_the_automatic_disable_never_touches_an_admins(stack: Stack) -> None:
    record: ServiceRecord = stack.service
    await record.auto_disable("Connection to libvirt lost: eof")
    assert (record.row.disabled, record.row.disabled_reason) == (
        True, "AUTO: Connection to libvirt lost: eof")
    assert (await stack.boot()).vm_state is VmState.ERROR
    await record.auto_enable()
    assert (record.row.disabled, record.row.disabled_reason) == (False, None)

    await record.set(True, "maintenance")
    await record.auto_disable("Connection to libvirt lost: eof")
    await record.auto_enable()
    assert (record.row.disabled, record.row.disabled_reason) == (True, "maintenance")
    stored = await stack.store.get_service(stack.config.host, "nova-compute")
    assert stored is not None and stored.disabled_reason == "maintenance"
