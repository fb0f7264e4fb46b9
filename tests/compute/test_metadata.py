"""Server metadata edits: Nova's guards (lock, vm_state, task_state) and no
lost update between concurrent edits."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from novad.api.compute.servers import MAX_METADATA_ITEMS, checked
from novad.errors import Forbidden, InstanceInvalidState, InstanceIsLocked, NotFound
from novad.states.enums import TaskState, VmState

from .conftest import Stack, admin, owner


def put(key: str, value: str) -> Callable[[dict[str, str]], dict[str, str]]:
    """An edit that sets one item, with the API's quota check."""
    return lambda current: checked({**current, key: value})


async def test_edits_in_each_allowed_state(stack: Stack) -> None:
    inst = await stack.boot()
    for action, vm in (("pause", VmState.PAUSED), ("unpause", VmState.ACTIVE),
                       ("suspend", VmState.SUSPENDED), ("resume", VmState.ACTIVE),
                       ("stop", VmState.STOPPED)):
        assert (await stack.act(inst.uuid, action)).vm_state is vm
        got = await stack.compute.edit_metadata(owner(), inst.uuid, "update", put(action, vm))
        assert got[action] == vm
    assert set((await stack.store.get_instance(inst.uuid)).metadata) == {
        "pause", "unpause", "suspend", "resume", "stop"}


async def test_refused_while_a_task_runs_or_in_other_states(stack: Stack) -> None:
    inst = await stack.boot()
    busy = await stack.force_task(inst, TaskState.REBOOTING)
    with pytest.raises(InstanceInvalidState) as exc:
        await stack.compute.edit_metadata(owner(), inst.uuid, "update", put("k", "v"))
    assert exc.value.status == 409
    assert exc.value.message == (f"Cannot 'update metadata' instance {inst.uuid} while it is "
                                 "in task_state rebooting")
    await stack.force_task(busy, None, VmState.SHELVED)
    with pytest.raises(InstanceInvalidState, match="'delete metadata'.*vm_state shelved"):
        await stack.compute.edit_metadata(owner(), inst.uuid, "delete", dict)
    assert (await stack.store.get_instance(inst.uuid)).metadata == {}


async def test_locked_refuses_members_and_admits_admins(stack: Stack) -> None:
    inst = await stack.boot()
    await stack.act(inst.uuid, "lock")
    with pytest.raises(InstanceIsLocked, match=f"Instance {inst.uuid} is locked"):
        await stack.compute.edit_metadata(owner(), inst.uuid, "update", put("k", "v"))
    assert await stack.compute.edit_metadata(admin(), inst.uuid, "update",
                                             put("k", "v")) == {"k": "v"}


async def test_concurrent_edits_lose_nothing(stack: Stack) -> None:
    inst = await stack.boot()
    await asyncio.gather(*(stack.compute.edit_metadata(owner(), inst.uuid, "update",
                                                       put(f"k{i}", str(i)))
                           for i in range(40)))
    assert (await stack.store.get_instance(inst.uuid)).metadata == {
        f"k{i}": str(i) for i in range(40)}


async def test_quota_and_missing_item(stack: Stack) -> None:
    inst = await stack.boot()
    too_many = {f"k{i}": "v" for i in range(MAX_METADATA_ITEMS + 1)}
    with pytest.raises(Forbidden, match="Maximum number of metadata items"):
        await stack.compute.edit_metadata(owner(), inst.uuid, "update",
                                          lambda _current: checked(dict(too_many)))

    def without(current: dict[str, str]) -> dict[str, str]:
        if current.pop("nope", None) is None:
            raise NotFound("Metadata item was not found")
        return current

    with pytest.raises(NotFound):
        await stack.compute.edit_metadata(owner(), inst.uuid, "delete", without)
    assert (await stack.store.get_instance(inst.uuid)).metadata == {}
