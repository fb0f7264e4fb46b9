"""changePassword: Nova's synchronous call, its guards and failures, and
the password kept out of the store."""

from __future__ import annotations

import json

import libvirt
import pytest

from novad.compute.service import PARAMS_KEY
from novad.errors import InstanceInvalidState, InstanceIsLocked, PasswordSetFailed
from novad.states.enums import PowerState, VmState

from .conftest import Stack, admin, owner

SECRET = "correct-horse-battery"


async def test_sets_the_password_and_records_the_action(stack: Stack) -> None:
    inst = await stack.boot()
    await stack.compute.act(owner(), inst.uuid, "change_password", {"admin_pass": SECRET})
    after = await stack.store.get_instance(inst.uuid)  # no settle: the call waited
    assert (after.vm_state, after.task_state) == (VmState.ACTIVE, None)
    [latest, *_] = await stack.store.list_actions(inst.uuid)
    assert latest.action == "changePassword"
    events = (await stack.store.get_action(inst.uuid, latest.request_id)).events
    assert [(e.event, e.result) for e in events] == [("compute_set_admin_password", "Success")]
    assert SECRET not in json.dumps(after.system_metadata)


async def test_a_guest_that_is_not_running_fails_with_409(stack: Stack) -> None:
    inst = await stack.boot()
    conn = libvirt.open("test:///default")  # every test:/// connection shares its guests
    try:
        conn.lookupByUUIDString(inst.uuid).destroy()  # behind novad's back
    finally:
        conn.close()
    with pytest.raises(PasswordSetFailed) as failed:
        await stack.compute.act(owner(), inst.uuid, "change_password", {"admin_pass": SECRET})
    assert failed.value.status == 409
    assert failed.value.message == (f"Failed to set admin password on {inst.uuid} because "
                                    f"instance {inst.uuid} is not running")
    after = await stack.store.get_instance(inst.uuid)
    assert (after.vm_state, after.task_state) == (VmState.ACTIVE, None)
    fault = await stack.store.latest_fault(inst.uuid)
    assert fault is not None and fault.code == 409
    assert after.power_state is PowerState.SHUTDOWN


async def test_guards_refuse_other_states_and_a_locked_server(stack: Stack) -> None:
    inst = await stack.boot()
    await stack.act(inst.uuid, "pause")
    with pytest.raises(InstanceInvalidState, match="'changePassword'.*vm_state paused"):
        await stack.compute.act(owner(), inst.uuid, "change_password", {"admin_pass": SECRET})
    await stack.act(inst.uuid, "unpause")
    await stack.act(inst.uuid, "lock", admin())
    with pytest.raises(InstanceIsLocked):
        await stack.compute.act(owner(), inst.uuid, "change_password", {"admin_pass": SECRET})
    await stack.compute.act(admin(), inst.uuid, "change_password", {"admin_pass": SECRET})


async def test_no_password_is_kept_with_a_tasks_parameters(stack: Stack) -> None:
    inst = await stack.boot()
    await stack.compute.act(owner(), inst.uuid, "rescue", {"admin_pass": SECRET})
    row = await stack.store.get_instance(inst.uuid)  # read before the work ends
    assert json.loads(row.system_metadata[PARAMS_KEY]) == {}
    await stack.settle()
