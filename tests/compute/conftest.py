"""A real compute stack for service-level tests.

Real SQLite file, real image service on disk, real libvirt (``test:///default``:
all connections of one process share its state, so every instance gets a
fresh uuid and cleans up through the real delete path).
"""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from novad import config as config_mod
from novad.compute.build import DEFAULT_FLAVORS, build_compute
from novad.compute.power_sync import PowerSync
from novad.compute.service import ComputeService
from novad.compute.service_record import ServiceRecord
from novad.context import RequestContext
from novad.drivers.libvirt import LibvirtDriver
from novad.images.schema import IMAGES
from novad.images.service import ImageService
from novad.states.enums import PowerState, Task, TaskState, VmState
from novad.store import COMPUTE, Database, Store
from novad.store.models import Expect, Instance
from novad.supervisor import Supervisor

def admin() -> RequestContext:
    """An admin context with a fresh request id."""
    return RequestContext.admin()


def owner() -> RequestContext:
    """The owning project's member, with a fresh request id."""
    return RequestContext(user_id="u1", project_id="p1", roles=frozenset({"member"}))


@dataclass
class Stack:
    """Everything a compute test needs, all real."""

    config: config_mod.Config
    db: Database
    store: Store
    driver: LibvirtDriver
    images: ImageService
    supervisor: Supervisor
    compute: ComputeService
    power_sync: PowerSync
    service: ServiceRecord

    async def settle(self) -> None:
        """Wait for every background operation to finish."""
        await self.supervisor.drain()

    async def boot(self, name: str = "vm", ctx: RequestContext | None = None) -> Instance:
        """Boot an instance through the service and wait until it is ACTIVE."""
        from novad.compute.interface import CreateRequest
        [inst] = await self.compute.create(ctx or owner(), CreateRequest(name=name, flavor_id="42",
                                                              image_id=""))
        await self.settle()
        return await self.store.get_instance(inst.uuid)

    async def act(self, uuid: str, action: str, ctx: RequestContext | None = None,
                  **params: Any) -> Instance:
        """Run an action to its end."""
        await self.compute.act(ctx or owner(), uuid, action, params)
        await self.settle()
        return await self.store.get_instance(uuid, include_deleted=True)

    async def force_task(self, inst: Instance, task: Task, vm: VmState | None = None
                         ) -> Instance:
        """Put a row into (vm, task) as if a task were under way."""
        changes: dict[str, Any] = {"task_state": task}
        if vm is not None:
            changes["vm_state"] = vm
        return await self.store.write(inst.uuid, Expect(), changes)


def make_config(state: Path, **defaults: Any) -> config_mod.Config:
    """A test configuration: test:///default, fast timeouts, no offload by default."""
    base: dict[str, Any] = {"state_dir": str(state), "listen": "127.0.0.1:0",
                            "shutdown_timeout": 2, "shelved_offload_time": -1}
    base.update(defaults)
    return config_mod.load(None, {"DEFAULT": base,
                                  "quota": {"instances": -1, "cores": -1, "ram": -1},
                                  "compute": {"shutdown_retry_interval": 1},
                                  "libvirt": {"wait_soft_reboot_seconds": 2}})


async def build_stack(state: Path, seed: bool = True, **defaults: Any) -> Stack:
    """Open a real stack on ``state`` (``seed``: create the default flavors)."""
    config = make_config(state, **defaults)
    state.mkdir(parents=True, exist_ok=True)
    db = await Database.open(state / "novad.sqlite")
    await db.migrate([COMPUTE, IMAGES])
    store = Store(db)
    for flavor in DEFAULT_FLAVORS if seed else ():
        await store.create_flavor(flavor)
    images = ImageService(db, state / "images")
    await images.start()
    driver = LibvirtDriver("test:///default", "qemu", "127.0.0.1", config.host)
    await driver.start()
    supervisor = Supervisor()
    await supervisor.start()
    service = ServiceRecord(store, config.host)
    await service.load()
    compute, power_sync = build_compute(config, store, driver, images, supervisor, 0.0,
                                        record=service)
    return Stack(config, db, store, driver, images, supervisor, compute, power_sync, service)


async def close_stack(stack: Stack) -> None:
    """Destroy every guest the stack made, then close."""
    await stack.settle()
    for uuid in await stack.driver.list_instances():
        if await _owned(stack, uuid):
            await stack.driver.destroy(uuid, None)
    await stack.supervisor.stop()
    await stack.driver.close()
    await stack.db.close()


async def _owned(stack: Stack, uuid: str) -> bool:
    try:
        await stack.store.get_instance(uuid, include_deleted=True)
        return True
    except Exception:
        return False


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    """A fresh real stack per test."""
    s = await build_stack(tmp_path / "state")
    try:
        yield s
    finally:
        await close_stack(s)


def new_uuid() -> str:
    """A fresh instance id."""
    return str(uuidlib.uuid4())


POWER_OF = {VmState.ACTIVE: PowerState.RUNNING, VmState.PAUSED: PowerState.PAUSED,
            VmState.STOPPED: PowerState.SHUTDOWN, VmState.SUSPENDED: PowerState.SUSPENDED}

__all__ = ["admin", "owner", "POWER_OF", "Stack", "TaskState", "build_stack", "close_stack",
           "make_config", "new_uuid"]
