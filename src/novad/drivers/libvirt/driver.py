"""The libvirt driver: novad's real hypervisor driver.

Threads: every libvirt call runs in a small ``ThreadPoolExecutor`` owned by
the driver, ``test:///`` included.  Measured on ``test:///default`` (2
loaded cores, 50 coroutines): 8,000-18,000 pause+unpause pairs a second
through the executor, 55,000-88,000 with the same code calling libvirt on
the loop thread.  The hop (30-60 us a call) is small next to an API
request, so one code path for every URI wins.  File work (copies,
``rmtree``) runs in asyncio's default executor so that a long copy never
holds a libvirt worker; ``qemu-img`` runs as an asyncio subprocess.

Hot paths (pause, unpause, get_power_state) make one libvirt call each on a
``virDomain`` cached by instance id, and parse no XML.

Guests novad manages are named ``novad-<uuid>`` with the instance uuid as
the domain uuid; other domains on the host are never listed or touched.
With a ``node_id`` (the daemon passes its state directory's identity), each
guest's metadata carries it as ``<novad:node>`` and only guests with this
node's id are listed: several daemons can share one libvirtd without one
reaping the other's guests as orphans.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import re
import shutil
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, Final, TypeVar

import structlog

from novad.drivers.base import (
    ConsoleInfo,
    FlavorSpec,
    GuestDiagnostics,
    GuestEvent,
    GuestNotFound,
    HostResources,
    ImageSpec,
    InstanceSpec,
    LifecycleEvent,
    LiveMigrateData,
    MigrationProgress,
    ProgressCallback,
    RebootKind,
    TaskCallback,
)
from novad.drivers.libvirt import configdrive, diagnostics, disks, virt
from novad.drivers.libvirt.link import Link
from novad.drivers.libvirt.virt import LibvirtError, VirConnect, VirDomain, error_code
from novad.drivers.libvirt.xml import NOVAD_NS, domain_xml, node_of, root_disk_path, vnc_endpoint
from novad.errors import (
    DriverError,
    GuestAgentNotEnabled,
    InstanceFaultRollback,
    NotImplementedByDriver,
)
from novad.states.enums import PowerState

log = structlog.get_logger("novad.driver")

_T = TypeVar("_T")

_EVENT_OF_POWER: Final = {
    PowerState.RUNNING: LifecycleEvent.STARTED,
    PowerState.PAUSED: LifecycleEvent.PAUSED,
    PowerState.SUSPENDED: LifecycleEvent.SUSPENDED,
}
"""The event that reports a guest found in a power state after reconnecting
(anything else is reported STOPPED)."""

POLL_INTERVAL: Final = 0.5
"""Most seconds between state checks while waiting for a guest to stop.  The
guest's lifecycle event wakes the wait at once; this poll only backs up an
event that never came (libvirtd restarting meanwhile)."""

_ACTIVE_STATES: Final = frozenset({virt.DOMAIN_RUNNING, virt.DOMAIN_BLOCKED})
_ACPI_STATES: Final = _ACTIVE_STATES | {virt.DOMAIN_SHUTDOWN}
"""States in which an ACPI shutdown can work (SHUTDOWN: already going down)."""


def _state_of(dom: VirDomain) -> PowerState:
    """The power state of one domain (blocks: one or two libvirt calls)."""
    state = dom.state()[0]
    saved = state == virt.DOMAIN_SHUTOFF and bool(dom.hasManagedSaveImage(0))
    return virt.power_state(state, saved)


def _stop(dom: VirDomain) -> None:
    """Destroy the domain if it runs and drop any managed save (blocks)."""
    try:
        if dom.isActive():
            dom.destroy()
    except LibvirtError as exc:
        if error_code(exc) != virt.ERR_OPERATION_INVALID:  # it stopped meanwhile
            raise
    if dom.hasManagedSaveImage(0):
        dom.managedSaveRemove(0)


def _write_text(path: Path, text: str) -> None:
    """Write a file whole or not at all (blocks)."""
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_text(text)
    os.replace(tmp, path)


def _existing_ancestor(path: Path) -> Path:
    """``path`` or its nearest parent that exists."""
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


_CLOSE_REASONS: Final = {0: "error", 1: "eof", 2: "keepalive", 3: "client"}
"""libvirt's VIR_CONNECT_CLOSE_REASON_* codes, named in the disable reason."""


class LibvirtDriver:
    """Drives guests through libvirt; see :class:`novad.drivers.base.Driver`.

    ``uri`` is libvirt's connection URI; ``virt_type`` the domain type
    (``qemu`` or ``kvm``; ``test`` is used for ``test:`` URIs whatever it
    says); ``vnc_listen`` where guests' VNC servers listen; ``host`` this
    node's name.  ``instances_path`` is the folder that holds instance
    directories, measured for ``local_gb``.  ``node_id``, when given, is
    written into every guest's metadata, and only guests carrying it are
    listed (see the module docstring); None lists every ``novad-`` guest.
    ``vnc_password``, when given, is set on every new guest's VNC server.
    """

    def __init__(self, uri: str, virt_type: str, vnc_listen: str, host: str, *,
                 instances_path: Path | None = None, workers: int = 4,
                 node_id: str | None = None, vnc_password: str | None = None,
                 ephemeral_format: str = "") -> None:
        self._ephemeral_format = ephemeral_format
        self._vnc_password = vnc_password
        self._node_id = node_id
        self._domain_type = "test" if uri.startswith("test:") else virt_type
        self._vnc_listen = vnc_listen
        self._host = host
        self._instances_path = instances_path or Path.cwd()
        self._domains: dict[str, VirDomain] = {}
        self._undefine_nvram = True
        self._cache_users = 0
        self._cache_sweep: asyncio.Future[None] | None = None
        self._link = Link(uri, workers, on_lost=self._lost, on_reconnected=self._reconnected)
        self._watchers: list[tuple[Callable[[str], Awaitable[None]],
                                   Callable[[], Awaitable[None]]]] = []
        self._notices: set[asyncio.Task[None]] = set()
        self._last_notice: asyncio.Task[None] | None = None

    # -- connection -------------------------------------------------------

    async def start(self) -> None:
        """Connect and subscribe to lifecycle events.  Raises DriverError
        (one line, naming the URI) when libvirt is unreachable.  Idempotent."""
        await self._link.start()

    async def close(self) -> None:
        """Stop events and disconnect; guests keep running.  Idempotent."""
        await self._link.close()
        self._domains.clear()

    async def events(self) -> AsyncIterator[GuestEvent]:
        """Lifecycle events of managed guests until :meth:`close`.  Each
        iteration sees every event from its start; events from while nobody
        listened (since :meth:`start`) go to the next iteration first."""
        async for event in self._link.events():
            yield event

    def watch_connection(self, on_lost: Callable[[str], Awaitable[None]],
                         on_back: Callable[[], Awaitable[None]]) -> None:
        """See :meth:`novad.drivers.base.Driver.watch_connection`."""
        self._watchers.append((on_lost, on_back))

    def _lost(self, reason: int) -> None:
        """The link lost libvirtd: forget its domain handles, tell the watchers."""
        self._domains.clear()
        why = f"Connection to libvirt lost: {_CLOSE_REASONS.get(reason, reason)}"
        for on_lost, _on_back in self._watchers:
            self._notify(on_lost(why))

    async def _reconnected(self) -> None:
        await self._announce_states()
        for _on_lost, on_back in self._watchers:
            self._notify(on_back())

    def _notify(self, call: Awaitable[None]) -> None:
        """Run a watcher's call as a task, after the one before it: a quick
        reconnect's "back" must not overtake its "lost"."""
        before = self._last_notice

        async def run() -> None:
            if before is not None:
                await asyncio.wait([before])
            try:
                await call
            except Exception:
                log.exception("libvirt connection watcher failed")

        task = asyncio.get_running_loop().create_task(run())
        self._notices.add(task)
        task.add_done_callback(self._notices.discard)
        self._last_notice = task

    async def _announce_states(self) -> None:
        """After reconnecting: one lifecycle event per managed guest, from
        its current state, so power sync looks at what changed while events
        could not arrive."""
        self._domains.clear()
        try:
            states = await self._run(self._list)
        except LibvirtError as exc:
            log.warning("cannot list guests after reconnecting", error=virt.error_message(exc))
            return
        for instance_id, power in states.items():
            self._link.bridge.announce(instance_id,
                                       _EVENT_OF_POWER.get(power, LifecycleEvent.STOPPED))

    # -- plumbing ---------------------------------------------------------

    @property
    def _connection(self) -> VirConnect:
        return self._link.conn

    async def _run(self, fn: Callable[..., _T], *args: Any) -> _T:
        """Run one blocking libvirt call in the driver's threads."""
        return await self._link.run(fn, *args)

    def _failure(self, instance_id: str, exc: BaseException) -> DriverError:
        """novad's error for a libvirt failure on one guest."""
        if error_code(exc) == virt.ERR_NO_DOMAIN:
            self._domains.pop(instance_id, None)
            return GuestNotFound(instance_id)
        return virt.driver_error(exc)

    async def _call(self, instance_id: str, fn: Callable[..., _T], *args: Any) -> _T:
        """:meth:`_run` with libvirt errors turned into novad's."""
        try:
            return await self._run(fn, *args)
        except LibvirtError as exc:
            raise self._failure(instance_id, exc) from exc

    def _lookup(self, instance_id: str) -> VirDomain | None:
        """The managed domain of an instance, or None (blocks)."""
        try:
            dom = self._connection.lookupByUUIDString(instance_id)
        except LibvirtError as exc:
            if error_code(exc) in (virt.ERR_NO_DOMAIN, virt.ERR_INVALID_ARG):
                return None
            raise
        if dom.name().lower() != f"{virt.DOMAIN_PREFIX}{instance_id}".lower():
            return None  # a domain novad did not create; never touch it
        return dom

    async def _find(self, instance_id: str) -> VirDomain | None:
        """The cached or looked-up domain of an instance, or None."""
        dom = self._domains.get(instance_id)
        if dom is None:
            dom = await self._call(instance_id, self._lookup, instance_id)
            if dom is not None:
                self._domains[instance_id] = dom
        return dom

    async def _domain(self, instance_id: str) -> VirDomain:
        """As :meth:`_find`, raising GuestNotFound for a missing guest."""
        dom = self._domains.get(instance_id) or await self._find(instance_id)
        if dom is None:
            raise GuestNotFound(instance_id)
        return dom

    async def _settle(self, instance_id: str, exc: BaseException, done: PowerState) -> None:
        """After a failed call: return if the guest is already in ``done``
        (the call was a repeat), else raise novad's error for ``exc``.

        Any error code qualifies: drivers disagree on it (the test driver
        says INTERNAL_ERROR for "not running", QEMU says OPERATION_INVALID).
        """
        if error_code(exc) != virt.ERR_NO_DOMAIN:
            if await self.get_power_state(instance_id) == done:
                return
        raise self._failure(instance_id, exc) from exc

    def _xml(self, spec: InstanceSpec, root_format: str, rescue: ImageSpec | None = None,
             rescue_format: str = "qcow2") -> str:
        """Domain XML for ``spec`` on this host.  Kernel and ramdisk are the
        copies in the instance directory (see :meth:`_copy_boot_files`)."""
        inst_dir = spec.instance_dir.absolute()
        spec = dataclasses.replace(spec, instance_dir=inst_dir,
                                   image=_local_boot_files(spec.image, inst_dir, ""))
        if rescue is not None:
            rescue = _local_boot_files(rescue, inst_dir, disks.RESCUE_SUFFIX)
        return domain_xml(spec, domain_type=self._domain_type, vnc_listen=self._vnc_listen,
                          root_format=root_format, rescue=rescue, rescue_format=rescue_format,
                          node_id=self._node_id, vnc_password=self._vnc_password)

    @staticmethod
    async def _copy_boot_files(image: ImageSpec, inst_dir: Path, suffix: str) -> None:
        """Copy the image's kernel and ramdisk into the instance directory,
        as Nova does, so deleting those images never stops the guest booting."""
        local = _local_boot_files(image, inst_dir, suffix)
        for source, target in ((image.kernel_path, local.kernel_path),
                               (image.ramdisk_path, local.ramdisk_path)):
            if source is not None and target is not None:
                await asyncio.to_thread(disks.copy_in, source, target)

    async def _define(self, spec: InstanceSpec, xml: str) -> VirDomain:
        """Write ``libvirt.xml`` and define the domain from it."""
        dom = await self._call(spec.instance_id, self._write_and_define,
                               spec.instance_dir / disks.LIBVIRT_XML, xml)
        self._domains[spec.instance_id] = dom
        return dom

    def _write_and_define(self, path: Path, xml: str) -> VirDomain:
        """Write the XML file, then define the domain (blocks)."""
        _write_text(path, xml)
        return self._connection.defineXML(xml)

    async def _boot(self, instance_id: str, dom: VirDomain) -> None:
        """Start a defined domain; a running one is left alone."""
        try:
            await self._run(dom.create)
        except LibvirtError as exc:
            await self._settle(instance_id, exc, PowerState.RUNNING)

    async def _halt(self, instance_id: str) -> None:
        """Destroy the guest if it runs and drop its managed save; none is fine."""
        dom = await self._find(instance_id)
        if dom is None:
            return
        try:
            await self._run(_stop, dom)
        except LibvirtError as exc:
            if error_code(exc) != virt.ERR_NO_DOMAIN:
                raise virt.driver_error(exc) from exc
            self._domains.pop(instance_id, None)

    async def _prepare_disks(self, spec: InstanceSpec) -> str:
        """Create the instance directory and any missing disk, config drive
        and kernel copy; returns the root disk's format.  Existing files are
        kept (a retry or a power-on must never wipe a guest's data)."""
        inst_dir = spec.instance_dir
        flavor = spec.flavor
        if flavor.root_gb and spec.image.min_disk_gb > flavor.root_gb:
            raise DriverError(f"Flavor's disk is too small for requested image: the image "
                              f"needs {spec.image.min_disk_gb} GB, the flavor has "
                              f"{flavor.root_gb} GB.")
        await asyncio.to_thread(inst_dir.mkdir, parents=True, exist_ok=True)
        root = inst_dir / disks.ROOT
        made: str | None = None
        if not root.exists():
            base_dir = inst_dir.absolute().parent / disks.BASE_DIR
            async with self._using_cache():
                made = await disks.create_image_disk(root, spec.image, base_dir, flavor.root_gb)
        await asyncio.to_thread(_lay_out_other_files, spec, self._ephemeral_format)
        if made is None:
            made = await asyncio.to_thread(disks.detect_format, root)
        return made

    @contextlib.asynccontextmanager
    async def _using_cache(self) -> AsyncIterator[None]:
        """Around making a disk from ``_base``: waits out a running sweep of
        the cache, and keeps the next one from starting until done."""
        while self._cache_sweep is not None:
            await asyncio.shield(self._cache_sweep)
        self._cache_users += 1
        try:
            yield
        finally:
            self._cache_users -= 1

    async def age_image_cache(self, min_age: float) -> list[str]:
        """Remove cached images and templates no guest has used for
        ``min_age`` seconds (see :func:`disks.age_cache`); returns their
        names.  Skipped (empty) while a disk is being made from the cache:
        the next run catches up."""
        if self._cache_users or self._cache_sweep is not None:
            return []
        self._cache_sweep = asyncio.get_running_loop().create_future()
        try:
            removed = await asyncio.to_thread(disks.age_cache, self._instances_path, min_age)
        finally:
            sweep, self._cache_sweep = self._cache_sweep, None
            sweep.set_result(None)
        for path in removed:
            log.info("image cache file removed", path=str(path))
        return [path.name for path in removed]

    # -- build and tear down ---------------------------------------------

    async def spawn(self, spec: InstanceSpec) -> None:
        """Create the directory and disks, write ``libvirt.xml``, define and
        start.  Safe to repeat: existing disks are kept, a running guest is
        left running.  A spawn that fails (a bad image, a flavor too small
        for it, QEMU refusing the guest) leaves nothing behind, as Nova
        cleans up a failed build: no domain, no instance directory."""
        try:
            root_format = await self._prepare_disks(spec)
            dom = await self._define(spec, self._xml(spec, root_format))
            await self._boot(spec.instance_id, dom)
        except Exception:
            await self.destroy(spec.instance_id, spec.instance_dir)
            raise

    async def destroy(self, instance_id: str, instance_dir: Path | None) -> None:
        """Destroy, undefine (managed save, snapshot metadata and NVRAM too)
        and remove ``instance_dir``.  Idempotent; a missing guest is fine."""
        dom = await self._find(instance_id)
        if dom is not None:
            try:
                await self._run(self._undefine, dom)
            except LibvirtError as exc:
                if error_code(exc) != virt.ERR_NO_DOMAIN:
                    raise virt.driver_error(exc) from exc
        self._domains.pop(instance_id, None)
        if instance_dir is not None:
            await asyncio.to_thread(shutil.rmtree, instance_dir, ignore_errors=True)

    def _undefine(self, dom: VirDomain) -> None:
        """Stop and undefine a domain (blocks).  NVRAM is asked for where the
        hypervisor knows the flag; the test driver refuses it."""
        try:
            if dom.isActive():
                dom.destroy()
        except LibvirtError as exc:
            if error_code(exc) != virt.ERR_OPERATION_INVALID:
                raise
        if self._undefine_nvram:
            try:
                dom.undefineFlags(virt.UNDEFINE_FLAGS | virt.UNDEFINE_NVRAM)
                return
            except LibvirtError as exc:
                if error_code(exc) not in (virt.ERR_INVALID_ARG, virt.ERR_NO_SUPPORT):
                    raise
                self._undefine_nvram = False
        dom.undefineFlags(virt.UNDEFINE_FLAGS)

    # -- power ------------------------------------------------------------

    async def power_off(self, instance_id: str, clean: bool, timeout: float,
                        retry_interval: float) -> None:
        """Clean: ACPI shutdown, re-sent every ``retry_interval``, waiting up
        to ``timeout``; then destroy.  Not clean, a zero ``timeout`` (as in
        Nova) or a guest that cannot take ACPI (paused, crashed): destroy at
        once.  A stopped or missing guest is left alone; a managed save is
        kept."""
        dom = await self._find(instance_id)
        if dom is None:
            return
        try:
            state = (await self._run(dom.state))[0]
            if state == virt.DOMAIN_SHUTOFF:
                return
            if clean and timeout > 0 and state in _ACPI_STATES:
                if await self._clean_shutdown(instance_id, dom, timeout, retry_interval):
                    return
            await self._run(_stop_keeping_save, dom)
        except LibvirtError as exc:
            if error_code(exc) == virt.ERR_NO_DOMAIN:
                self._domains.pop(instance_id, None)
                return
            raise virt.driver_error(exc) from exc

    async def _clean_shutdown(self, instance_id: str, dom: VirDomain, timeout: float,
                              retry_interval: float) -> bool:
        """ACPI shutdown until the domain is off; False when ``timeout`` passes."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        retry_every = max(retry_interval, 0.05)
        next_retry = loop.time() + retry_every
        with self._link.bridge.watch(instance_id) as changed:
            await self._run(_shutdown, dom)
            while True:
                changed.clear()
                if (await self._run(dom.state))[0] in (virt.DOMAIN_SHUTOFF,
                                                       virt.DOMAIN_CRASHED):
                    return True
                now = loop.time()
                if now >= deadline:
                    return False
                if now >= next_retry:
                    await self._run(_shutdown, dom)  # an early ACPI press can be lost
                    next_retry = now + retry_every
                await _changed_within(changed, min(POLL_INTERVAL, deadline - now,
                                                   next_retry - now))

    async def power_on(self, spec: InstanceSpec) -> None:
        """Cold boot, the hard-reboot way: destroy if running, drop any
        managed save, recreate missing disks, regenerate and define the XML,
        start."""
        await self._halt(spec.instance_id)
        root_format = await self._prepare_disks(spec)
        dom = await self._define(spec, self._xml(spec, root_format))
        await self._boot(spec.instance_id, dom)

    async def reboot(self, spec: InstanceSpec, kind: RebootKind, soft_timeout: float) -> None:
        """Soft: ACPI shutdown and start again, falling back to hard inside
        this call when the guest is not running or does not stop within
        ``soft_timeout``.  Hard: as :meth:`power_on`."""
        if kind is RebootKind.SOFT and await self._soft_reboot(spec.instance_id, soft_timeout):
            return
        await self.power_on(spec)

    async def _soft_reboot(self, instance_id: str, soft_timeout: float) -> bool:
        """Nova's soft reboot: shutdown, then wait for shut-off (start it
        again) or a new domain id (it rebooted itself).  False: go hard."""
        dom = await self._find(instance_id)
        if dom is None:
            return False
        loop = asyncio.get_running_loop()
        try:
            state, old_id = await self._run(_state_and_id, dom)
            if state not in _ACTIVE_STATES:
                return False
            deadline = loop.time() + soft_timeout
            with self._link.bridge.watch(instance_id) as changed:
                await self._run(_shutdown, dom)
                while True:
                    changed.clear()
                    state, dom_id = await self._run(_state_and_id, dom)
                    if state == virt.DOMAIN_SHUTOFF:
                        await self._run(dom.create)
                        return True
                    if state in _ACTIVE_STATES and dom_id not in (old_id, -1):
                        return True
                    if loop.time() >= deadline:
                        return False
                    await _changed_within(changed, min(POLL_INTERVAL, deadline - loop.time()))
        except LibvirtError:
            return False  # whatever went wrong, the hard reboot sorts it out

    async def pause(self, instance_id: str) -> None:
        """Freeze the guest (domain suspend).  Repeating it is fine."""
        dom = self._domains.get(instance_id) or await self._domain(instance_id)
        try:
            await self._run(dom.suspend)
        except LibvirtError as exc:
            await self._settle(instance_id, exc, PowerState.PAUSED)

    async def unpause(self, instance_id: str) -> None:
        """Thaw a paused guest (domain resume).  Repeating it is fine."""
        dom = self._domains.get(instance_id) or await self._domain(instance_id)
        try:
            await self._run(dom.resume)
        except LibvirtError as exc:
            await self._settle(instance_id, exc, PowerState.RUNNING)

    async def suspend(self, instance_id: str) -> None:
        """Managed save: memory to disk, domain shut off.  Repeating it is fine."""
        dom = await self._domain(instance_id)
        try:
            await self._run(dom.managedSave, 0)
        except LibvirtError as exc:
            await self._settle(instance_id, exc, PowerState.SUSPENDED)

    async def resume(self, spec: InstanceSpec) -> None:
        """Start the guest, which restores its managed save.  A running guest
        is left alone."""
        await self._boot(spec.instance_id, await self._domain(spec.instance_id))

    async def trigger_crash_dump(self, instance_id: str) -> None:
        """Inject an NMI.  NotImplementedByDriver where the hypervisor cannot."""
        dom = await self._domain(instance_id)
        try:
            await self._run(dom.injectNMI, 0)
        except LibvirtError as exc:
            if error_code(exc) in (virt.ERR_NO_SUPPORT, virt.ERR_OPERATION_UNSUPPORTED):
                raise NotImplementedByDriver(virt.error_message(exc)) from exc
            raise self._failure(instance_id, exc) from exc

    async def set_admin_password(self, spec: InstanceSpec, password: str) -> None:
        """Through the QEMU guest agent (``virDomainSetUserPassword``), as
        Nova's libvirt driver: a qemu/kvm guest's image must enable the agent;
        an agent that does not answer (none in the guest) is "not
        implemented" (501).  libvirt's test driver has no agent to check."""
        if self._domain_type != "test" and not spec.image.guest_agent:
            raise GuestAgentNotEnabled()
        dom = await self._domain(spec.instance_id)
        try:
            await self._run(dom.setUserPassword, spec.image.admin_user, password, 0)
        except LibvirtError as exc:
            if error_code(exc) in (virt.ERR_AGENT_UNRESPONSIVE, virt.ERR_NO_SUPPORT,
                                   virt.ERR_OPERATION_UNSUPPORTED):
                raise NotImplementedByDriver(
                    "set_admin_password is not implemented by this driver or guest "
                    "instance.") from exc
            raise self._failure(spec.instance_id, exc) from exc

    # -- images -----------------------------------------------------------

    async def snapshot(self, instance_id: str, target: Path, update_task: TaskCallback) -> str:
        """Write the root disk as a standalone image at ``target``.

        The guest is paused for the copy when it runs (so the disk is
        consistent) and thawed after, also on failure.  Calls ``update_task``
        with ``image_pending_upload`` then ``image_uploading``.
        """
        dom = await self._domain(instance_id)
        source = root_disk_path(await self._call(instance_id, dom.XMLDesc, 0))
        if source is None:
            raise DriverError(f"Instance {instance_id} has no root disk to snapshot.")
        await update_task("image_pending_upload")
        running = (await self._call(instance_id, dom.state))[0] in _ACTIVE_STATES
        if running:
            await self._call(instance_id, dom.suspend)
        try:
            await update_task("image_uploading")
            return await disks.export(source, target)
        finally:
            if running:
                await self._call(instance_id, dom.resume)

    async def rescue(self, spec: InstanceSpec, rescue_image: ImageSpec) -> None:
        """Keep the XML as ``unrescue.xml``, boot ``disk.rescue`` (made from
        ``rescue_image``): legacy, as vda with the original disk as vdb; a
        stable device rescue, as one more device after the guest's own disks,
        which keep their targets (see :func:`novad.drivers.libvirt.xml.stable_rescue_disks`)."""
        inst_dir = spec.instance_dir
        dom = await self._domain(spec.instance_id)
        unrescue = inst_dir / disks.UNRESCUE_XML
        if not unrescue.exists():  # a repeat must not save the rescue XML
            xml = await self._call(spec.instance_id, dom.XMLDesc, virt.XML_INACTIVE)
            await asyncio.to_thread(_write_text, unrescue, xml)
        await self._halt(spec.instance_id)
        rescue_disk = inst_dir / disks.RESCUE
        if not rescue_disk.exists():
            base_dir = inst_dir.absolute().parent / disks.BASE_DIR
            async with self._using_cache():
                await disks.create_image_disk(rescue_disk, rescue_image, base_dir, 0)
        await self._copy_boot_files(rescue_image, inst_dir, disks.RESCUE_SUFFIX)
        rescue_format = await asyncio.to_thread(disks.detect_format, rescue_disk)
        root_format = await asyncio.to_thread(disks.detect_format, inst_dir / disks.ROOT)
        xml = self._xml(spec, root_format, rescue=rescue_image, rescue_format=rescue_format)
        await self._boot(spec.instance_id, await self._define(spec, xml))

    async def unrescue(self, spec: InstanceSpec) -> None:
        """Stop the rescue guest, define ``unrescue.xml`` again (regenerated
        from ``spec`` if it is gone), drop the rescue files, start."""
        inst_dir = spec.instance_dir
        await self._halt(spec.instance_id)
        unrescue = inst_dir / disks.UNRESCUE_XML
        if unrescue.exists():
            xml = await asyncio.to_thread(unrescue.read_text)
        else:
            xml = self._xml(spec, await asyncio.to_thread(disks.detect_format, inst_dir / disks.ROOT))
        dom = await self._define(spec, xml)
        await asyncio.to_thread(disks.remove_files, unrescue, inst_dir / disks.RESCUE,
                                inst_dir / (disks.KERNEL + disks.RESCUE_SUFFIX),
                                inst_dir / (disks.RAMDISK + disks.RESCUE_SUFFIX))
        await self._boot(spec.instance_id, dom)

    # -- resize -----------------------------------------------------------

    async def migrate_disk_and_power_off(self, spec: InstanceSpec, new_flavor: FlavorSpec,
                                         timeout: float, retry_interval: float) -> None:
        """Stop the guest and keep ``libvirt.xml.resize`` and ``disk.resize``
        for a revert.  Shrinking a disk is refused before the guest is
        touched (InstanceFaultRollback, as Nova)."""
        old = spec.flavor
        if new_flavor.root_gb < old.root_gb or new_flavor.ephemeral_gb < old.ephemeral_gb:
            raise InstanceFaultRollback("Unable to resize disk down.")
        await self.power_off(spec.instance_id, timeout > 0, timeout, retry_interval)
        inst_dir = spec.instance_dir
        kept_xml = inst_dir / (disks.LIBVIRT_XML + disks.RESIZE_SUFFIX)
        if not kept_xml.exists():
            dom = await self._domain(spec.instance_id)
            xml = await self._call(spec.instance_id, dom.XMLDesc, virt.XML_INACTIVE)
            await asyncio.to_thread(_write_text, kept_xml, xml)
        kept_disk = inst_dir / (disks.ROOT + disks.RESIZE_SUFFIX)
        if not kept_disk.exists():
            part = kept_disk.with_name(f".{kept_disk.name}.part")
            await asyncio.to_thread(disks.sparse_copy, inst_dir / disks.ROOT, part)
            await asyncio.to_thread(os.replace, part, kept_disk)

    async def finish_migration(self, spec: InstanceSpec, power_on: bool) -> None:
        """Grow the disks to the new flavor in ``spec``, define the new XML,
        start when ``power_on``."""
        await self._halt(spec.instance_id)
        inst_dir = spec.instance_dir
        await disks.grow(inst_dir / disks.ROOT, spec.flavor.root_gb)
        if spec.flavor.ephemeral_gb and (inst_dir / disks.EPHEMERAL).exists():
            await disks.grow(inst_dir / disks.EPHEMERAL, spec.flavor.ephemeral_gb)
        root_format = await self._prepare_disks(spec)
        dom = await self._define(spec, self._xml(spec, root_format))
        if power_on:
            await self._boot(spec.instance_id, dom)

    async def accept_migrated_disks(self, spec: InstanceSpec) -> None:
        """Make disks that arrived from another node usable here: the root
        disk's backing file is this node's cached copy of its image.
        Idempotent."""
        root = spec.instance_dir / disks.ROOT
        if root.exists():
            base_dir = spec.instance_dir.absolute().parent / disks.BASE_DIR
            async with self._using_cache():
                await disks.rebase_on_cache(root.absolute(), spec.image, base_dir)

    async def confirm_migration(self, instance_id: str, instance_dir: Path) -> None:
        """Drop the files kept for a revert.  Idempotent."""
        await asyncio.to_thread(
            disks.remove_files, instance_dir / (disks.LIBVIRT_XML + disks.RESIZE_SUFFIX),
            instance_dir / (disks.ROOT + disks.RESIZE_SUFFIX))

    async def finish_revert_migration(self, spec: InstanceSpec, power_on: bool) -> None:
        """Put back the kept disk and XML exactly (or regenerate the XML from
        ``spec``, which carries the old flavor), start when ``power_on``."""
        await self._halt(spec.instance_id)
        inst_dir = spec.instance_dir
        kept_disk = inst_dir / (disks.ROOT + disks.RESIZE_SUFFIX)
        if kept_disk.exists():
            await asyncio.to_thread(os.replace, kept_disk, inst_dir / disks.ROOT)
        kept_xml = inst_dir / (disks.LIBVIRT_XML + disks.RESIZE_SUFFIX)
        if kept_xml.exists():
            xml = await asyncio.to_thread(kept_xml.read_text)
        else:
            xml = self._xml(spec, await self._prepare_disks(spec))
        dom = await self._define(spec, xml)
        await asyncio.to_thread(disks.remove_files, kept_xml)
        if power_on:
            await self._boot(spec.instance_id, dom)

    # -- queries ----------------------------------------------------------

    async def diagnostics(self, instance_id: str) -> GuestDiagnostics:
        """The guest's readings now (see :mod:`~novad.drivers.libvirt.diagnostics`)."""
        dom = await self._domain(instance_id)
        return await self._call(instance_id, diagnostics.read, dom)

    async def get_power_state(self, instance_id: str) -> PowerState:
        """The guest's power state now; NOSTATE when there is no guest.
        A shut-off guest with a managed save is SUSPENDED."""
        dom = self._domains.get(instance_id) or await self._find(instance_id)
        if dom is None:
            return PowerState.NOSTATE
        try:
            return await self._run(_state_of, dom)
        except LibvirtError as exc:
            if error_code(exc) == virt.ERR_NO_DOMAIN:
                self._domains.pop(instance_id, None)
                return PowerState.NOSTATE
            raise virt.driver_error(exc) from exc

    async def list_instances(self) -> dict[str, PowerState]:
        """Power state of every ``novad-`` domain, by instance id."""
        try:
            return await self._run(self._list)
        except LibvirtError as exc:
            raise virt.driver_error(exc) from exc

    def _list(self) -> dict[str, PowerState]:
        """Body of :meth:`list_instances` (blocks)."""
        found: dict[str, PowerState] = {}
        for dom in self._connection.listAllDomains(0):
            instance_id = virt.instance_id_of(dom.name())
            if instance_id is None:
                continue
            try:
                if self._is_ours(dom):
                    found[instance_id] = _state_of(dom)
            except LibvirtError as exc:
                if error_code(exc) != virt.ERR_NO_DOMAIN:  # undefined meanwhile
                    raise
        return found

    def _is_ours(self, dom: VirDomain) -> bool:
        """Whether a ``novad-`` domain belongs to this node (blocks).  Every
        one does without a node id; with one, its ``<novad:node>`` must match."""
        if self._node_id is None:
            return True
        try:
            metadata = dom.metadata(virt.METADATA_ELEMENT, NOVAD_NS, 0)
        except LibvirtError as exc:
            if error_code(exc) == virt.ERR_NO_DOMAIN_METADATA:
                return False  # made by a novad without node ids, or by hand
            raise
        return node_of(metadata) == self._node_id

    async def get_console(self, instance_id: str) -> ConsoleInfo:
        """The VNC endpoint from the live XML.  NotImplementedByDriver when no
        port is assigned (never on ``test:///``)."""
        dom = await self._domain(instance_id)
        listen, port = vnc_endpoint(await self._call(instance_id, dom.XMLDesc, 0))
        if port is None:
            raise NotImplementedByDriver("no VNC port")
        if listen in (None, "", "0.0.0.0", "::"):
            listen = self._host
        return ConsoleInfo(host=listen, port=port)

    async def console_log_path(self, instance_id: str, instance_dir: Path) -> Path:
        """``<instance_dir>/console.log``; the serial console appends to it."""
        return instance_dir / disks.CONSOLE_LOG

    async def host_resources(self) -> HostResources:
        """CPUs and memory from libvirt, use summed over running managed
        guests, disk from the file system holding ``instances_path``."""
        try:
            info, hv_type, used = await self._run(self._host_usage)
        except LibvirtError as exc:
            raise virt.driver_error(exc) from exc
        usage = await asyncio.to_thread(shutil.disk_usage, _existing_ancestor(self._instances_path))
        return HostResources(
            hypervisor_type=hv_type, hypervisor_hostname=self._host,
            vcpus=int(info[2]), vcpus_used=used[0],
            memory_mb=int(info[1]), memory_mb_used=used[1],
            local_gb=usage.total // disks.GIB, local_gb_used=(usage.total - usage.free) // disks.GIB,
            running_vms=used[2])

    def _host_usage(self) -> tuple[list[Any], str, tuple[int, int, int]]:
        """``getInfo()``, the hypervisor type and (vcpus, MiB, count) of
        running managed guests (blocks)."""
        conn = self._connection
        vcpus = memory_kib = running = 0
        for dom in conn.listAllDomains(virt.LIST_ACTIVE):
            if virt.instance_id_of(dom.name()) is None:
                continue
            try:
                if not self._is_ours(dom):
                    continue
                info = dom.info()
            except LibvirtError as exc:
                if error_code(exc) == virt.ERR_NO_DOMAIN:
                    continue
                raise
            vcpus, memory_kib, running = vcpus + info[3], memory_kib + info[1], running + 1
        return conn.getInfo(), conn.getType(), (vcpus, memory_kib // 1024, running)

    # -- live migration ---------------------------------------------------

    async def pre_live_migration(self, spec: InstanceSpec) -> LiveMigrateData:
        """On the destination: the instance directory, disks (a root overlay
        on this node's cached base, so an incremental block migration copies
        only what the guest wrote), boot files and config drive, as spawn
        lays them out; no domain is defined (the migration defines it)."""
        await self._prepare_disks(spec)
        return LiveMigrateData(instance_dir=spec.instance_dir.absolute(), node_id=self._node_id)

    async def live_migrate(self, spec: InstanceSpec, dest_uri: str, *, block_migration: bool,
                           migrate_uri: str | None, dest: LiveMigrateData | None = None,
                           bandwidth_mib: int = 0, post_copy: bool = False,
                           tunnelled: bool = False,
                           on_progress: ProgressCallback | None = None) -> None:
        """``virDomainMigrateToURI3`` with Nova's flags: live, peer to peer
        (the source libvirtd opens ``dest_uri`` itself, so it must be a URI
        that libvirtd can reach, e.g. ``qemu+tcp://`` or ``qemu+unix://``),
        persistent there, undefined here.  With ``dest`` the guest's XML
        (live and persistent) is rewritten for the destination: instance
        file paths moved to ``dest.instance_dir``, ``<novad:node>`` set to
        ``dest.node_id``.  ``block_migration`` adds NON_SHARED_INC over the
        writable disks (QEMU's NBD); read-only ones (the config drive) are
        the destination's own copies.  libvirt 9.0 cannot combine
        ``tunnelled`` with a block migration (it fails with "argument key
        'host' must not have null value").  The call holds one driver
        thread while it runs; progress, abort and force-complete use others.
        Every ``PROGRESS_INTERVAL`` seconds ``on_progress`` gets a reading."""
        instance_id = spec.instance_id
        dom = await self._domain(instance_id)
        live_xml, persist_xml = await self._call(instance_id, _migratable_xmls, dom)
        flags = virt.MIGRATE_FLAGS
        params: dict[str, Any] = {}
        if dest is not None:
            source_dir = spec.instance_dir.absolute()
            params[virt.MIGRATE_PARAM_DEST_XML] = _retarget(live_xml, source_dir, dest)
            params[virt.MIGRATE_PARAM_PERSIST_XML] = _retarget(persist_xml, source_dir, dest)
        if block_migration:
            flags |= virt.MIGRATE_NON_SHARED_INC
            params[virt.MIGRATE_PARAM_MIGRATE_DISKS] = _writable_disks(live_xml)
        if migrate_uri:
            params[virt.MIGRATE_PARAM_URI] = migrate_uri
        if bandwidth_mib:
            params[virt.MIGRATE_PARAM_BANDWIDTH] = bandwidth_mib
        flags |= (virt.MIGRATE_POSTCOPY if post_copy else 0) | (
            virt.MIGRATE_TUNNELLED if tunnelled else 0)
        was_running = (await self._call(instance_id, dom.state))[0] in _ACTIVE_STATES
        log.info("live migration starting", instance_id=instance_id, dest=dest_uri,
                 block_migration=block_migration, flags=flags)
        try:
            await self._migrate_watching(instance_id, dom, (dest_uri, params, flags), on_progress)
        except LibvirtError as exc:
            if was_running:
                await self._resume_after_failed_migration(instance_id, dom)
            raise self._migration_failure(instance_id, exc, dest_uri) from exc
        self._domains.pop(instance_id, None)
        log.info("live migration done", instance_id=instance_id, dest=dest_uri)

    async def _migrate_watching(self, instance_id: str, dom: VirDomain,
                                call: tuple[str, dict[str, Any], int],
                                on_progress: ProgressCallback | None) -> None:
        """Run the migration call in a driver thread; meanwhile report its
        progress.  Cancelled, it aborts the migration and waits for the call
        to return, so no thread outlives this coroutine."""
        job = asyncio.ensure_future(self._run(dom.migrateToURI3, *call))
        try:
            while not job.done():
                await asyncio.wait([job], timeout=PROGRESS_INTERVAL)
                if on_progress is not None and not job.done():
                    with contextlib.suppress(DriverError):  # it ended meanwhile
                        if (progress := await self.live_migration_progress(instance_id)):
                            await on_progress(progress)
        except asyncio.CancelledError:
            with contextlib.suppress(LibvirtError):
                await asyncio.shield(self._run(dom.abortJob))
            with contextlib.suppress(LibvirtError):
                await asyncio.shield(job)
            raise
        await job

    async def _resume_after_failed_migration(self, instance_id: str, dom: VirDomain) -> None:
        """A guest force-complete paused runs again after the migration failed."""
        try:
            if (await self._run(dom.state))[0] == virt.DOMAIN_PAUSED:
                await self._run(dom.resume)
        except LibvirtError as exc:
            log.warning("cannot resume after a failed live migration", instance_id=instance_id,
                        error=virt.error_message(exc))

    def _migration_failure(self, instance_id: str, exc: BaseException,
                           dest_uri: str | None = None) -> DriverError | NotImplementedByDriver:
        """novad's error for a failed migration call."""
        if error_code(exc) in _CANNOT_MIGRATE:
            return NotImplementedByDriver(
                f"Live migration is not implemented by this hypervisor: {virt.error_message(exc)}")
        failure = self._failure(instance_id, exc)
        if dest_uri is None or isinstance(failure, GuestNotFound):
            return failure
        return DriverError(f"Live migration of {instance_id} to {dest_uri} failed: "
                           f"{virt.error_message(exc)}")

    async def live_migration_progress(self, instance_id: str) -> MigrationProgress | None:
        """``virDomainGetJobStats`` of the guest's outgoing migration; None
        when no job runs or the job is not a migration out."""
        dom = await self._domain(instance_id)
        try:
            stats = await self._run(dom.jobStats, 0)
        except LibvirtError as exc:
            raise self._migration_failure(instance_id, exc) from exc
        return _progress_of(stats)

    async def live_migration_abort(self, instance_id: str) -> None:
        """``virDomainAbortJob``.  DriverError when no job runs."""
        dom = await self._domain(instance_id)
        try:
            await self._run(dom.abortJob)
        except LibvirtError as exc:
            if error_code(exc) == virt.ERR_OPERATION_INVALID:
                raise DriverError(f"Instance {instance_id} has no live migration to abort: "
                                  f"{virt.error_message(exc)}") from exc
            raise self._migration_failure(instance_id, exc) from exc

    async def live_migration_force_complete(self, instance_id: str) -> None:
        """Post-copy (``virDomainMigrateStartPostCopy``) when the migration
        allows it and already copies memory, else pause the guest
        (``virDomainSuspend``), as Nova's libvirt driver.  While a block
        migration still copies disks QEMU cannot switch yet ("Enable postcopy
        ... before the start of migration"), and a paused guest stops
        writing, so its disks converge too.  libvirt resumes a paused guest
        on the destination when the migration completes; ``live_migrate``
        resumes it here when the migration fails."""
        progress = await self.live_migration_progress(instance_id)
        if progress is None:
            raise DriverError(f"Instance {instance_id} has no live migration to force complete.")
        dom = await self._domain(instance_id)
        if progress.memory_processed > 0:
            try:
                await self._run(dom.migrateStartPostCopy, 0)
                log.info("live migration switched to post-copy", instance_id=instance_id)
                return
            except LibvirtError as exc:
                if error_code(exc) not in (virt.ERR_OPERATION_INVALID, *_CANNOT_MIGRATE):
                    raise self._migration_failure(instance_id, exc) from exc
        await self.pause(instance_id)
        log.info("live migration forced by pausing the guest", instance_id=instance_id)


def _lay_out_other_files(spec: InstanceSpec, ephemeral_format: str) -> None:
    """The kernel and ramdisk copies, the ephemeral disk (formatted, see
    :func:`disks.ephemeral_fs`), the swap disk and the config drive that are
    missing (blocks).  Existing files are kept."""
    inst_dir, flavor = spec.instance_dir, spec.flavor
    local = _local_boot_files(spec.image, inst_dir, "")
    for source, target in ((spec.image.kernel_path, local.kernel_path),
                           (spec.image.ramdisk_path, local.ramdisk_path)):
        if source is not None and target is not None:
            disks.copy_in(source, target)
    ephemeral, swap = inst_dir / disks.EPHEMERAL, inst_dir / disks.SWAP
    if flavor.ephemeral_gb and not ephemeral.exists():
        fs = disks.ephemeral_fs(spec.image.properties.get("os_type"), ephemeral_format)
        disks.create_ephemeral(ephemeral, flavor.ephemeral_gb * disks.GIB, fs)
    if flavor.swap_mb and not swap.exists():
        disks.create_swap(swap, flavor.swap_mb * disks.MIB)
    if spec.config_drive and not (inst_dir / disks.CONFIG).exists():
        configdrive.write(spec, inst_dir / disks.CONFIG)


def _local_boot_files(image: ImageSpec, inst_dir: Path, suffix: str) -> ImageSpec:
    """``image`` with its kernel and ramdisk at their instance-directory copies."""
    return dataclasses.replace(
        image,
        kernel_path=inst_dir / (disks.KERNEL + suffix) if image.kernel_path else None,
        ramdisk_path=inst_dir / (disks.RAMDISK + suffix) if image.ramdisk_path else None)


async def _changed_within(changed: asyncio.Event, timeout: float) -> None:
    """Until ``changed`` is set or ``timeout`` seconds pass, whichever is first."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(max(timeout, 0.0)):
            await changed.wait()


def _shutdown(dom: VirDomain) -> None:
    """Send an ACPI shutdown; a domain that just stopped is not an error (blocks)."""
    try:
        dom.shutdown()
    except LibvirtError as exc:
        if error_code(exc) != virt.ERR_OPERATION_INVALID:
            raise


def _stop_keeping_save(dom: VirDomain) -> None:
    """Destroy a running domain (blocks); one that just stopped is fine."""
    try:
        dom.destroy()
    except LibvirtError as exc:
        if error_code(exc) != virt.ERR_OPERATION_INVALID:
            raise


def _state_and_id(dom: VirDomain) -> tuple[int, int]:
    """The raw libvirt state and the domain id (-1 when off) (blocks)."""
    return dom.state()[0], dom.ID()


PROGRESS_INTERVAL: Final = 0.5
"""Seconds between progress readings while a live migration runs."""

_CANNOT_MIGRATE: Final = frozenset({virt.ERR_NO_SUPPORT, virt.ERR_ARGUMENT_UNSUPPORTED,
                                    virt.ERR_OPERATION_UNSUPPORTED})
"""libvirt's answers of a hypervisor that cannot migrate (the test driver)."""

_NODE_ELEMENT: Final = re.compile(r"(<(?:[\w.-]+:)?node>)[^<]*(</(?:[\w.-]+:)?node>)")


def _migratable_xmls(dom: VirDomain) -> tuple[str, str]:
    """The live and the persistent XML, as a migration sends them, with the
    VNC password (blocks)."""
    flags = virt.XML_MIGRATABLE | virt.XML_SECURE
    return dom.XMLDesc(flags), dom.XMLDesc(flags | virt.XML_INACTIVE)


def _retarget(xml: str, source_dir: Path, dest: LiveMigrateData) -> str:
    """A guest's XML for the destination: paths in the instance directory
    moved to the destination's, the ``<novad:node>`` in the metadata set to
    the destination's node (a guest without one keeps none)."""
    text = xml.replace(f"{escape(str(source_dir))}/", f"{escape(str(dest.instance_dir))}/")
    if dest.node_id is None:
        return text
    head, sep, rest = text.partition("<metadata")
    node = escape(dest.node_id)
    return head + sep + _NODE_ELEMENT.sub(lambda m: f"{m.group(1)}{node}{m.group(2)}", rest, 1)


def _writable_disks(xml: str) -> list[str]:
    """Target names of a guest's writable file disks (what a block
    migration copies)."""
    root = ET.fromstring(xml)
    return [target.get("dev", "")
            for disk in root.iterfind("./devices/disk[@device='disk']")
            if disk.find("readonly") is None and disk.find("source") is not None
            and (target := disk.find("target")) is not None and target.get("dev")]


def _progress_of(stats: dict[str, Any]) -> MigrationProgress | None:
    """A reading from ``virDomainGetJobStats``; None without an outgoing migration."""
    if int(stats.get("type", virt.JOB_NONE)) == virt.JOB_NONE:
        return None
    operation = int(stats.get("operation", virt.JOB_OPERATION_MIGRATION_OUT))
    if operation != virt.JOB_OPERATION_MIGRATION_OUT:
        return None

    def get(key: str) -> int:
        return int(stats.get(key, 0))
    return MigrationProgress(
        elapsed_ms=get("time_elapsed"), data_total=get("data_total"),
        data_processed=get("data_processed"), data_remaining=get("data_remaining"),
        memory_total=get("memory_total"), memory_processed=get("memory_processed"),
        memory_remaining=get("memory_remaining"), disk_total=get("disk_total"),
        disk_processed=get("disk_processed"), disk_remaining=get("disk_remaining"),
        dirty_rate=get("memory_dirty_rate"), iteration=get("memory_iteration"))
