"""The one contract suite every driver must pass (see ``conftest.CASES``).

Each test drives a real driver (today libvirt's in-process test driver) and
checks what the contract in ``novad.drivers.base`` promises: power states,
idempotence, errors, lifecycle events, and the guest's shape as seen from
outside the driver.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import pytest
from driver_cases import BIGGER, FLAVOR, DriverCase, SpecMaker

from novad.drivers.base import (
    ConsoleInfo,
    Driver,
    GuestEvent,
    GuestNotFound,
    ImageSpec,
    LifecycleEvent,
    RebootKind,
)
from novad.errors import DriverError, InstanceFaultRollback, NotImplementedByDriver
from novad.states.enums import PowerState


async def test_driver_satisfies_protocol(driver: Driver) -> None:
    assert isinstance(driver, Driver)


async def test_spawn_runs_guest_with_flavor(driver: Driver, case: DriverCase,
                                           make_spec: SpecMaker) -> None:
    spec = make_spec()
    await driver.spawn(spec)
    assert await driver.get_power_state(spec.instance_id) == PowerState.RUNNING
    assert spec.instance_dir.is_dir()
    view = case.inspect(spec.instance_id)
    assert view is not None
    assert (view.vcpus, view.memory_mb, view.disks[0]) == (1, 128, "disk")
    assert (await driver.list_instances())[spec.instance_id] == PowerState.RUNNING


async def test_diagnostics_of_a_running_guest(driver: Driver, make_spec: SpecMaker) -> None:
    spec = make_spec()
    with pytest.raises(GuestNotFound):
        await driver.diagnostics(spec.instance_id)
    await driver.spawn(spec)
    readings = await driver.diagnostics(spec.instance_id)
    assert readings.power_state == PowerState.RUNNING
    assert [c.id for c in readings.cpus] == [0]
    assert readings.memory_max_kib == 128 * 1024 >= readings.memory_used_kib > 0
    assert readings.disks and readings.disks[0].device
    again = await driver.diagnostics(spec.instance_id)  # idempotent: the same devices
    assert [d.device for d in again.disks] == [d.device for d in readings.disks]


async def test_spawn_again_keeps_guest_running(driver: Driver, make_spec: SpecMaker) -> None:
    spec = make_spec()
    await driver.spawn(spec)
    await driver.spawn(spec)
    assert await driver.get_power_state(spec.instance_id) == PowerState.RUNNING


async def test_pause_and_unpause(driver: Driver, make_spec: SpecMaker) -> None:
    spec = make_spec()
    await driver.spawn(spec)
    await driver.pause(spec.instance_id)
    assert await driver.get_power_state(spec.instance_id) == PowerState.PAUSED
    await driver.pause(spec.instance_id)  # a repeat is not an error
    await driver.unpause(spec.instance_id)
    assert await driver.get_power_state(spec.instance_id) == PowerState.RUNNING
    await driver.unpause(spec.instance_id)


async def test_suspend_and_resume(driver: Driver, make_spec: SpecMaker) -> None:
    spec = make_spec()
    await driver.spawn(spec)
    await driver.suspend(spec.instance_id)
    assert await driver.get_power_state(spec.instance_id) == PowerState.SUSPENDED
    assert (await driver.list_instances())[spec.instance_id] == PowerState.SUSPENDED
    await driver.suspend(spec.instance_id)
    await driver.resume(spec)
    assert await driver.get_power_state(spec.instance_id) == PowerState.RUNNING


@pytest.mark.parametrize("clean", [True, False])
async def test_power_off_and_on(driver: Driver, make_spec: SpecMaker, clean: bool) -> None:
    spec = make_spec()
    await driver.spawn(spec)
    await driver.power_off(spec.instance_id, clean, timeout=5, retry_interval=1)
    assert await driver.get_power_state(spec.instance_id) == PowerState.SHUTDOWN
    await driver.power_off(spec.instance_id, clean, timeout=5, retry_interval=1)  # stopped: fine
    await driver.power_on(spec)
    assert await driver.get_power_state(spec.instance_id) == PowerState.RUNNING


async def test_power_off_paused_guest(driver: Driver, make_spec: SpecMaker) -> None:
    spec = make_spec()
    await driver.spawn(spec)
    await driver.pause(spec.instance_id)
    started = time.monotonic()
    await driver.power_off(spec.instance_id, True, timeout=30, retry_interval=10)
    assert time.monotonic() - started < 5  # paused: hard power-off, no ACPI wait
    assert await driver.get_power_state(spec.instance_id) == PowerState.SHUTDOWN


async def test_power_on_of_suspended_guest_is_a_cold_boot(driver: Driver,
                                                          make_spec: SpecMaker) -> None:
    spec = make_spec()
    await driver.spawn(spec)
    await driver.suspend(spec.instance_id)
    await driver.power_on(spec)
    assert await driver.get_power_state(spec.instance_id) == PowerState.RUNNING
    await driver.power_off(spec.instance_id, False, 0, 1)
    # the managed save is gone: a stopped guest, not a suspended one
    assert await driver.get_power_state(spec.instance_id) == PowerState.SHUTDOWN


async def test_power_on_recreates_a_missing_guest(driver: Driver, make_spec: SpecMaker) -> None:
    spec = make_spec()
    await driver.power_on(spec)
    assert await driver.get_power_state(spec.instance_id) == PowerState.RUNNING


@pytest.mark.parametrize("kind", list(RebootKind))
async def test_reboot(driver: Driver, make_spec: SpecMaker, kind: RebootKind) -> None:
    spec = make_spec()
    await driver.spawn(spec)
    await driver.reboot(spec, kind, soft_timeout=5)
    assert await driver.get_power_state(spec.instance_id) == PowerState.RUNNING


@pytest.mark.parametrize("kind", list(RebootKind))
async def test_reboot_of_stopped_guest_starts_it(driver: Driver, make_spec: SpecMaker,
                                                 kind: RebootKind) -> None:
    spec = make_spec()
    await driver.spawn(spec)
    await driver.power_off(spec.instance_id, False, 0, 1)
    await driver.reboot(spec, kind, soft_timeout=1)  # soft falls back to hard
    assert await driver.get_power_state(spec.instance_id) == PowerState.RUNNING


async def test_snapshot_writes_target_and_reports_progress(
        driver: Driver, make_spec: SpecMaker, tmp_path: Path) -> None:
    spec = make_spec()
    await driver.spawn(spec)
    calls: list[str] = []

    async def update_task(state: str) -> None:
        calls.append(state)

    target = tmp_path / "snapshots" / "snap-1"
    fmt = await driver.snapshot(spec.instance_id, target, update_task)
    assert calls == ["image_pending_upload", "image_uploading"]
    assert fmt in ("qcow2", "raw")
    assert target.is_file()
    assert await driver.get_power_state(spec.instance_id) == PowerState.RUNNING


async def test_rescue_and_unrescue(driver: Driver, case: DriverCase, make_spec: SpecMaker,
                                   raw_image: ImageSpec) -> None:
    spec = make_spec()
    await driver.spawn(spec)
    await driver.rescue(spec, raw_image)
    assert await driver.get_power_state(spec.instance_id) == PowerState.RUNNING
    view = case.inspect(spec.instance_id)
    assert view is not None and view.disks == ["disk.rescue", "disk"]
    await driver.unrescue(spec)
    assert await driver.get_power_state(spec.instance_id) == PowerState.RUNNING
    view = case.inspect(spec.instance_id)
    assert view is not None and view.disks == ["disk"]


async def test_resize_then_revert(driver: Driver, case: DriverCase, make_spec: SpecMaker) -> None:
    old = make_spec()
    new = replace(old, flavor=BIGGER)
    await driver.spawn(old)
    await driver.migrate_disk_and_power_off(old, BIGGER, timeout=5, retry_interval=1)
    assert await driver.get_power_state(old.instance_id) == PowerState.SHUTDOWN
    await driver.finish_migration(new, power_on=True)
    assert await driver.get_power_state(old.instance_id) == PowerState.RUNNING
    view = case.inspect(old.instance_id)
    assert view is not None and (view.vcpus, view.memory_mb) == (2, 256)
    await driver.finish_revert_migration(old, power_on=True)
    assert await driver.get_power_state(old.instance_id) == PowerState.RUNNING
    view = case.inspect(old.instance_id)
    assert view is not None and (view.vcpus, view.memory_mb) == (1, 128)


async def test_resize_then_confirm(driver: Driver, case: DriverCase, make_spec: SpecMaker) -> None:
    old = make_spec()
    new = replace(old, flavor=BIGGER)
    await driver.spawn(old)
    await driver.migrate_disk_and_power_off(old, BIGGER, timeout=5, retry_interval=1)
    await driver.finish_migration(new, power_on=False)
    assert await driver.get_power_state(old.instance_id) == PowerState.SHUTDOWN
    await driver.confirm_migration(old.instance_id, old.instance_dir)
    await driver.confirm_migration(old.instance_id, old.instance_dir)  # idempotent
    await driver.power_on(new)
    view = case.inspect(old.instance_id)
    assert view is not None and (view.vcpus, view.memory_mb) == (2, 256)


async def test_resize_down_is_refused_before_touching_guest(driver: Driver,
                                                            make_spec: SpecMaker) -> None:
    spec = make_spec(flavor=BIGGER)
    await driver.spawn(spec)
    with pytest.raises(InstanceFaultRollback):
        await driver.migrate_disk_and_power_off(spec, FLAVOR, timeout=5, retry_interval=1)
    assert await driver.get_power_state(spec.instance_id) == PowerState.RUNNING


async def test_destroy_removes_guest_and_directory(driver: Driver, case: DriverCase,
                                                   make_spec: SpecMaker) -> None:
    spec = make_spec()
    await driver.spawn(spec)
    await driver.suspend(spec.instance_id)  # a managed save must not block undefine
    await driver.destroy(spec.instance_id, spec.instance_dir)
    assert await driver.get_power_state(spec.instance_id) == PowerState.NOSTATE
    assert not spec.instance_dir.exists()
    assert case.inspect(spec.instance_id) is None
    assert spec.instance_id not in await driver.list_instances()
    await driver.destroy(spec.instance_id, spec.instance_dir)  # idempotent


async def test_list_instances_shows_only_managed_guests(driver: Driver,
                                                        make_spec: SpecMaker) -> None:
    spec = make_spec()
    await driver.spawn(spec)
    listed = await driver.list_instances()
    assert spec.instance_id in listed
    # test:///default's own "test" domain (uuid 6695eb01-...) is not novad's
    assert all(not key.startswith("6695eb01") for key in listed)
    assert "test" not in listed


async def test_foreign_domain_is_invisible(driver: Driver) -> None:
    # the uuid of test:///default's own "test" domain
    foreign = "6695eb01-f6a4-8304-79aa-97f2502e193f"
    assert await driver.get_power_state(foreign) == PowerState.NOSTATE
    with pytest.raises(GuestNotFound):
        await driver.pause(foreign)


async def _collect(events: AsyncIterator[GuestEvent], instance_id: str,
                   want: list[LifecycleEvent], seen: list[LifecycleEvent]) -> None:
    """Read events until ``want`` appears, in order, among this guest's events."""
    async for event in events:
        if event.instance_id == instance_id:
            seen.append(event.event)
            it = iter(seen)
            if all(w in it for w in want):
                return


async def test_lifecycle_events(driver: Driver, make_spec: SpecMaker) -> None:
    spec = make_spec()
    want = [LifecycleEvent.STARTED, LifecycleEvent.PAUSED, LifecycleEvent.RESUMED,
            LifecycleEvent.SUSPENDED, LifecycleEvent.STARTED, LifecycleEvent.STOPPED]
    seen: list[LifecycleEvent] = []
    reader = asyncio.create_task(_collect(driver.events(), spec.instance_id, want, seen))
    await asyncio.sleep(0)
    await driver.spawn(spec)
    await driver.pause(spec.instance_id)
    await driver.unpause(spec.instance_id)
    await driver.suspend(spec.instance_id)
    await driver.resume(spec)
    await driver.power_off(spec.instance_id, False, 0, 1)
    try:
        await asyncio.wait_for(reader, timeout=5)
    finally:
        reader.cancel()
    assert seen[0] == LifecycleEvent.STARTED


MissingCall = Callable[[Driver, str], Awaitable[object]]


async def _noop_task(_state: str) -> None:
    return None


@pytest.mark.parametrize("call", [
    pytest.param(lambda d, i: d.pause(i), id="pause"),
    pytest.param(lambda d, i: d.unpause(i), id="unpause"),
    pytest.param(lambda d, i: d.suspend(i), id="suspend"),
    pytest.param(lambda d, i: d.trigger_crash_dump(i), id="trigger_crash_dump"),
    pytest.param(lambda d, i: d.get_console(i), id="get_console"),
    pytest.param(lambda d, i: d.snapshot(i, Path("/nonexistent/x"), _noop_task), id="snapshot"),
])
async def test_missing_guest_raises_guest_not_found(driver: Driver, call: MissingCall) -> None:
    with pytest.raises(GuestNotFound):
        await call(driver, "0badc0de-0000-4000-8000-000000000000")


async def test_missing_guest_is_fine_where_idempotent(driver: Driver, tmp_path: Path) -> None:
    missing = "0badc0de-0000-4000-8000-000000000001"
    assert await driver.get_power_state(missing) == PowerState.NOSTATE
    await driver.power_off(missing, True, 1, 1)
    await driver.destroy(missing, tmp_path / "never-made")
    await driver.confirm_migration(missing, tmp_path / "never-made")


async def test_resume_of_missing_guest_raises(driver: Driver, make_spec: SpecMaker) -> None:
    with pytest.raises(GuestNotFound):
        await driver.resume(make_spec())


async def test_pause_of_stopped_guest_is_a_driver_error(driver: Driver,
                                                        make_spec: SpecMaker) -> None:
    spec = make_spec()
    await driver.spawn(spec)
    await driver.power_off(spec.instance_id, False, 0, 1)
    with pytest.raises(DriverError) as raised:
        await driver.pause(spec.instance_id)
    assert not isinstance(raised.value, GuestNotFound)


async def test_console(driver: Driver, make_spec: SpecMaker) -> None:
    spec = make_spec()
    await driver.spawn(spec)
    try:
        info = await driver.get_console(spec.instance_id)
    except NotImplementedByDriver:
        return  # e.g. libvirt's test driver never assigns a VNC port
    assert isinstance(info, ConsoleInfo) and info.port > 0


async def test_console_log_path(driver: Driver, make_spec: SpecMaker) -> None:
    spec = make_spec()
    path = await driver.console_log_path(spec.instance_id, spec.instance_dir)
    assert path == spec.instance_dir / "console.log"


async def test_trigger_crash_dump(driver: Driver, make_spec: SpecMaker) -> None:
    spec = make_spec()
    await driver.spawn(spec)
    try:
        await driver.trigger_crash_dump(spec.instance_id)
    except NotImplementedByDriver:
        pass


async def test_host_resources_count_running_guests(driver: Driver, make_spec: SpecMaker) -> None:
    spec = make_spec(flavor=BIGGER)
    before = await driver.host_resources()
    await driver.spawn(spec)
    after = await driver.host_resources()
    assert after.running_vms == before.running_vms + 1
    assert after.vcpus_used == before.vcpus_used + 2
    assert after.memory_mb_used == before.memory_mb_used + 256
    assert after.vcpus > 0 and after.memory_mb > 0 and after.local_gb > 0
    assert after.hypervisor_hostname == "node-test"


async def test_unreachable_hypervisor_fails_fast(case: DriverCase, tmp_path: Path) -> None:
    if case.unreachable is None:
        pytest.skip(f"{case.name} has no unreachable form")
    drv = case.unreachable(tmp_path)
    started = time.monotonic()
    with pytest.raises(DriverError) as raised:
        await drv.start()
    assert time.monotonic() - started < 5
    assert "\n" not in raised.value.message
    assert "127.0.0.1:1" in raised.value.message


async def test_live_migration_where_the_hypervisor_cannot(driver: Driver, case: DriverCase,
                                                          make_spec: SpecMaker) -> None:
    """libvirt's test driver cannot migrate: every live-migration call says
    NotImplementedByDriver and the guest stays.  (Real migrations between two
    libvirtds: tests/integration/test_live_migration.py.)"""
    spec = make_spec()
    await driver.spawn(spec)
    dest = await driver.pre_live_migration(replace(spec, instance_dir=spec.instance_dir / "dest"))
    assert dest.instance_dir.is_dir()
    if case.name != "libvirt-test":
        pytest.skip(f"{case.name} may migrate; see the integration tier")
    with pytest.raises(NotImplementedByDriver):
        await driver.live_migrate(spec, "test:///default", block_migration=True,
                                  migrate_uri=None, dest=dest)
    for call in (driver.live_migration_progress, driver.live_migration_abort,
                 driver.live_migration_force_complete):
        with pytest.raises(NotImplementedByDriver):
            await call(spec.instance_id)
    assert await driver.get_power_state(spec.instance_id) == PowerState.RUNNING


async def test_live_migration_of_missing_guest(driver: Driver) -> None:
    missing = "0badc0de-0000-4000-8000-000000000002"
    for call in (driver.live_migration_progress, driver.live_migration_abort,
                 driver.live_migration_force_complete):
        with pytest.raises(GuestNotFound):
            await call(missing)
