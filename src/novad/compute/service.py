"""The compute service: the one path to any instance state change.

Every request takes the same shape (STYLE.md §5): find the instance the
caller may see, check policy, take the per-instance accept lock, ask the
state machine, record the action with a compare-and-swap write, then hand
the work to the supervisor.  The accept lock is held only for that write, so
a slow stop never blocks a delete; the work itself serialises on the
runner's per-instance work lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import json
import secrets
import uuid as uuidlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import structlog

from novad.compute import operations
from novad.compute.console_log import tail_console_log
from novad.compute.claims import Claims
from novad.compute.interface import ActionResult, CreateRequest, ListFilters
from novad.compute.operations import TRUSTED_CERTS_KEY
from novad.compute.quotas import Quotas
from novad.compute.runner import Op, Runner
from novad.compute.specs import SpecBuilder, files_metadata
from novad.config import Config
from novad.context import RequestContext
from novad.errors import (
    Conflict,
    DriverError,
    FlavorNotFound,
    Forbidden,
    ImageNotFound,
    InstanceInvalidState,
    InstanceIsLocked,
    InstanceNotFound,
    Invalid,
    NoSuchAction,
    NotFound,
    NotImplementedByDriver,
    NovadError,
    NoValidHost,
    OverQuota,
    PasswordSetFailed,
    UnexpectedTaskState,
)
from novad.locks import KeyedLocks
from novad.states.enums import PowerState, TaskState as T, VmState as V
from novad.states.machine import Lifecycle, Subject
from novad.states.status import status_of
from novad.states.table import BY_NAME, ActionSpec
from novad.store import Store
from novad.store.models import (
    ActionRecord,
    ActionStart,
    EventFinish,
    EventStart,
    Expect,
    FaultRecord,
    Flavor,
    Instance,
    Migration,
)
from novad.drivers.base import GuestDiagnostics, GuestNotFound, MigrationProgress, rescue_options
from novad.supervisor import Supervisor

log = structlog.get_logger("novad.compute")

SYNC_ACTIONS = frozenset({"lock", "unlock", "reset_state"})
CALL_ACTIONS = frozenset({"change_password"})
"""Actions Nova's API makes as a synchronous RPC call: the request waits for
the work, and its failure is the response (409 or 501)."""
SECRET_PARAMS = frozenset({"admin_pass"})
"""Parameters never written to the store with a task's other parameters."""
METADATA_VM_STATES = frozenset({V.ACTIVE, V.PAUSED, V.SUSPENDED, V.STOPPED})
"""Where Nova lets server metadata change (``check_instance_state``)."""
ConsoleUrlFactory = Callable[[RequestContext, Instance, str], Awaitable[str]]
"""Makes a console URL with a fresh token: (caller, instance, console type)."""
PARAMS_KEY = "novad_task_params"


class ComputeService:
    """Implements :class:`novad.compute.interface.ComputeAPI`."""

    def __init__(self, config: Config, store: Store, runner: Runner, specs: SpecBuilder,
                 supervisor: Supervisor, host_is_up: Callable[[str], bool],
                 console_url_factory: ConsoleUrlFactory | None = None,
                 quotas: Quotas | None = None, claims: Claims | None = None) -> None:
        self.config = config
        self.claims = claims
        self.quotas = quotas or Quotas(store, config.quota)
        self.store = store
        self.runner = runner
        self.specs = specs
        self.supervisor = supervisor
        self.host = runner.host
        self.host_is_up = host_is_up
        self.lifecycle = runner.lifecycle
        self.console_url_factory = console_url_factory
        self._accepting = KeyedLocks()  # one accept at a time per instance
        self.mover: Any = None
        """The node's :class:`~novad.compute.moves.Mover` in a cluster (evacuate)."""
        self.operations: Any = None
        """The operation table's owner (:class:`~novad.compute.operations.Operations`)."""

    # -- reading -----------------------------------------------------------------
    async def get(self, ctx: RequestContext, instance_id: str, *, replica: bool = False
                  ) -> Instance:
        """One visible instance; another project's is 404, never 403.  With
        ``replica``, another node's instance as last replicated here."""
        try:
            inst = await (self.store.get_replica(instance_id) if replica
                          else self.store.get_instance(instance_id))
        except InstanceNotFound:
            raise InstanceNotFound(instance_id) from None
        if not ctx.is_admin and inst.project_id != ctx.project_id:
            raise InstanceNotFound(instance_id)
        return inst

    async def list_servers(self, ctx: RequestContext, filters: ListFilters) -> list[Instance]:
        """Visible instances of every node, newest first, filtered as Nova filters
        (the other nodes' as last replicated here)."""
        project = None if ctx.is_admin and (filters.all_tenants or filters.project_id) \
            else ctx.project_id
        if ctx.is_admin and filters.project_id:
            project = filters.project_id
        deleted = bool(filters.changes_since or filters.changes_before) \
            or (ctx.is_admin and filters.deleted)
        late_page = filters.status is not None or filters.by_tags or filters.by_boot \
            or bool(filters.attributes) or any(f is not None for f in (
                filters.changes_before, filters.locked, filters.sort_locked))
        rows = await self.store.list_instances(
            project_id=project, host=filters.host if ctx.is_admin else None,
            include_deleted=deleted, name_regex=filters.name,
            changes_since=filters.changes_since,
            limit=None if late_page else filters.limit,
            marker=None if late_page else filters.marker, everywhere=True)
        if filters.deleted and ctx.is_admin:
            rows = [r for r in rows if r.deleted]
        if filters.status is not None:
            wanted = filters.status.upper()
            rows = [r for r in rows if status_of(r.vm_state, r.task_state, r.deleted) == wanted]
        if filters.by_tags:
            rows = [r for r in rows if filters.matches_tags(r.tags or [])]
        if filters.changes_before is not None:
            before = filters.changes_before
            rows = [r for r in rows if (r.updated_at or r.created_at) <= before]
        if filters.locked is not None:
            rows = [r for r in rows if r.locked is filters.locked]
        if filters.sort_locked is not None:  # stable: newest first within each
            rows.sort(key=lambda r: r.locked, reverse=filters.sort_locked == "desc")
        if filters.by_boot:
            rows = [r for r in rows if filters.matches_boot(r)]
        if filters.attributes:
            rows = [r for r in rows if filters.matches_attributes(r)]
        if late_page:
            rows = _page(rows, filters.limit, filters.marker)
        return rows

    async def server_groups_of(self, ctx: RequestContext, instance: Instance) -> list[str]:
        """The ids of the server groups ``instance`` belongs to (2.71)."""
        return await self.store.server_groups_of(instance.uuid)

    async def fault(self, instance: Instance) -> FaultRecord | None:
        """The latest fault of an instance."""
        return await self.store.latest_fault(instance.uuid)

    async def flavors(self, ctx: RequestContext) -> Sequence[Flavor]:
        """Flavors visible to the caller."""
        return await self.store.list_flavors(is_public=None if ctx.is_admin else True,
                                             project_id=ctx.project_id, limit=None,
                                             marker=None, min_ram=None, min_disk=None)

    async def instance_actions(self, ctx: RequestContext, instance_id: str, *,
                               deleted: bool = False) -> list[ActionRecord]:
        """The instance's actions, newest first; a deleted instance's only
        with ``deleted`` (Nova reads deleted instances from 2.21)."""
        await self._visible(ctx, instance_id, deleted)
        return await self.store.list_actions(instance_id)

    async def instance_action(self, ctx: RequestContext, instance_id: str,
                              request_id: str, *, deleted: bool = False) -> ActionRecord:
        """One action with its events."""
        await self._visible(ctx, instance_id, deleted)
        return await self.store.get_action(instance_id, request_id)

    async def _visible(self, ctx: RequestContext, instance_id: str,
                       deleted: bool = True) -> Instance:
        inst = await self.store.get_instance(instance_id, include_deleted=deleted)
        if not ctx.is_admin and inst.project_id != ctx.project_id:
            raise InstanceNotFound(instance_id)
        return inst

    # -- live migrations of one server (2.22-2.24) --------------------------------
    async def live_migrations(self, ctx: RequestContext, instance_id: str) -> list[Migration]:
        """The server's in-progress live migrations, oldest first."""
        inst = await self.get(ctx, instance_id)
        found = await self.store.search_migrations(instance_uuid=inst.uuid,
                                                   migration_type="live-migration")
        return [m for m in found if m.status in LIVE_IN_PROGRESS]

    async def live_migration(self, ctx: RequestContext, instance_id: str,
                             migration_id: str) -> Migration:
        """One in-progress live migration of the server; NotFound otherwise."""
        inst = await self.get(ctx, instance_id)
        migration = await self._migration_of(inst, migration_id)
        if migration.migration_type != "live-migration":
            raise NotFound(f"Migration {migration.id} for server {inst.uuid} is not "
                           "live-migration.")
        if migration.status not in LIVE_IN_PROGRESS:
            raise NotFound(f"Live migration {migration.id} for server {inst.uuid} is not "
                           "in progress.")
        return migration

    async def live_migration_progress(self, instance_id: str) -> MigrationProgress | None:
        """The driver's reading of the live migration running here, if any."""
        return await self.runner.driver.live_migration_progress(instance_id)

    async def diagnostics(self, ctx: RequestContext, instance_id: str
                          ) -> tuple[Instance, GuestDiagnostics]:
        """The guest's readings, as Nova's ``get_diagnostics``: only while it
        runs (409 otherwise, naming the power state)."""
        inst = await self.get(ctx, instance_id)
        try:
            readings = await self.runner.driver.diagnostics(inst.uuid)
        except GuestNotFound:
            readings = None
        state = PowerState.NOSTATE if readings is None else readings.power_state
        if readings is None or state is not PowerState.RUNNING:
            raise InstanceInvalidState("get_diagnostics", inst.uuid, "power_state",
                                       POWER_STATE_NAMES[state])
        return inst, readings

    async def force_complete(self, ctx: RequestContext, instance_id: str,
                             migration_id: str) -> None:
        """Nova's ``live_migrate_force_complete``: the server ACTIVE and
        MIGRATING (else 409), the migration its own (else 404) and
        ``running`` (else 400); then the driver finishes it."""
        inst = await self.get(ctx, instance_id)
        self._migrating(inst, "live_migrate_force_complete", check_vm=True)
        migration = await self._running(inst, migration_id, "force complete")
        await self._live_entry("force_complete_live", migration)

    async def abort_live_migration(self, ctx: RequestContext, instance_id: str,
                                   migration_id: str, *, queued_too: bool = False) -> None:
        """Nova's ``live_migrate_abort`` at 2.24: the server MIGRATING (else
        409), the migration its own (404) and ``running`` (400); the driver
        cancels it and it ends ``cancelled``.  With ``queued_too`` (2.65) a
        ``queued`` or ``preparing`` one may be aborted as well: it ends
        ``cancelled`` before the guest starts moving."""
        inst = await self.get(ctx, instance_id)
        self._migrating(inst, "live_migrate_abort", check_vm=False)
        allowed = ("queued", "preparing", "running") if queued_too else ("running",)
        migration = await self._running(inst, migration_id, "abort live migration", allowed)
        await self._live_entry("abort_live", migration)

    @staticmethod
    def _migrating(inst: Instance, method: str, *, check_vm: bool) -> None:
        if check_vm and inst.vm_state is not V.ACTIVE:
            raise InstanceInvalidState(method, inst.uuid, "vm_state", inst.vm_state)
        if inst.task_state is not T.MIGRATING:
            raise InstanceInvalidState(method, inst.uuid, "task_state", inst.task_state)

    async def _migration_of(self, inst: Instance, migration_id: str) -> Migration:
        found = None
        if migration_id.isdigit():
            found = await self.store.get_migration(int(migration_id))
        if found is None or found.instance_uuid != inst.uuid:
            raise NotFound(f"Migration {migration_id} not found for instance {inst.uuid}")
        return found

    async def _running(self, inst: Instance, migration_id: str, method: str,
                       allowed: tuple[str, ...] = ("running",)) -> Migration:
        migration = await self._migration_of(inst, migration_id)
        if migration.status not in allowed:
            raise Invalid(f"Migration {migration.id} state of instance {inst.uuid} is "
                          f"{migration.status}. Cannot {method} while the migration is in "
                          "this state.")
        return migration

    async def _live_entry(self, name: str, migration: Migration) -> None:
        """The mover's entry point ``name``; a driver that finds nothing
        running (the migration ended meanwhile) is a 400, as Nova's race."""
        if self.mover is None:  # no cluster: no live migration can run here
            raise Invalid(f"Migration {migration.id} is not running on this node.")
        try:
            await getattr(self.mover, name)(migration)
        except DriverError as exc:
            raise Invalid(f"Migration {migration.id} could not be changed: {exc}") from None

    # -- console -----------------------------------------------------------------
    async def console_output(self, ctx: RequestContext, instance_id: str,
                             length: int | None) -> str:
        """The tail of the serial console log, cleaned as Nova cleans it."""
        inst = await self.get(ctx, instance_id)
        if not inst.host:
            raise InstanceInvalidState("os-getConsoleOutput", instance_id, "host", None)
        path = await self.runner.driver.console_log_path(inst.uuid,
                                                         self.specs.instance_dir(inst.uuid))
        return await asyncio.to_thread(tail_console_log, path, length)

    async def console_url(self, ctx: RequestContext, instance_id: str, protocol: str,
                          console_type: str) -> str:
        """A noVNC URL with a fresh token (the proxy validates it)."""
        inst = await self.get(ctx, instance_id)
        self._writer(ctx)  # Nova: os-remote-consoles is member-or-admin
        if protocol != "vnc" or console_type != "novnc":
            raise Invalid(f"Unavailable console type {console_type}.")
        if not self.config.vnc.enabled:
            raise Invalid("Unavailable console type novnc.")
        if inst.task_state in (T.DELETING, T.MIGRATING):
            raise InstanceInvalidState("get_vnc_console", instance_id, "task_state",
                                       inst.task_state)
        if self.console_url_factory is None:
            raise NotImplementedByDriver("Consoles are not served by this node.")
        return await self.console_url_factory(ctx, inst, console_type)

    # -- writing -----------------------------------------------------------------
    async def update(self, ctx: RequestContext, instance_id: str, name: str | None,
                     description: str | None = None, *, set_description: bool = False,
                     access_ips: Mapping[str, str] | None = None,
                     hostname: str | None = None) -> Instance:
        """Rename, (2.19) describe, set access IPs and (2.90) set the
        hostname; not a state change (Nova checks no state for it)."""
        inst = await self.get(ctx, instance_id)
        self._writer(ctx)
        changes: dict[str, Any] = {} if name is None else {"name": name}
        if set_description:
            changes["description"] = description
        changes.update(access_ips or {})
        if hostname is not None:
            changes["system_metadata"] = {**inst.system_metadata, HOSTNAME_KEY: hostname}
        if not changes:
            return inst
        return await self.store.update_fields(inst.uuid, changes)

    async def edit_metadata(self, ctx: RequestContext, instance_id: str, verb: str,
                            edit: Callable[[dict[str, str]], dict[str, str]]) -> dict[str, str]:
        """Nova's ``update_instance_metadata``/``delete_instance_metadata``:
        ``edit`` turns the current metadata into the new one.  Refused (409)
        while the instance is locked (unless admin), outside ACTIVE, PAUSED,
        SUSPENDED and STOPPED, or with a task running; ``verb`` ("update" or
        "delete") names the refusal as Nova's does.  The read, the edit and
        the write happen under the instance's accept lock and the write is
        a compare-and-swap on the states checked, so no edit is lost to a
        concurrent one and none lands in a state Nova refuses."""
        action = f"{verb} metadata"
        async with self._accepting.hold(instance_id):
            inst = await self.get(ctx, instance_id)
            self._writer(ctx)
            self._metadata_guard(action, inst, ctx)
            metadata = edit(dict(inst.metadata))
            try:
                inst = await self.store.write(
                    inst.uuid, Expect(vm_states=METADATA_VM_STATES, task_states=frozenset({None})),
                    {"metadata": metadata})
            except UnexpectedTaskState:  # reset-state or power sync moved it meanwhile
                self._metadata_guard(action, await self.get(ctx, instance_id), ctx)
                raise
        return dict(inst.metadata)

    async def edit_tags(self, ctx: RequestContext, instance_id: str, action: str,
                        edit: Callable[[list[str]], list[str]]) -> list[str]:
        """Nova's server-tags writes: no lock or task check, only the vm_state
        (ACTIVE, PAUSED, SUSPENDED, STOPPED; else 409 naming ``action``).
        Read, edit and write under the accept lock, the write a
        compare-and-swap on those states, so no concurrent edit is lost."""
        async with self._accepting.hold(instance_id):
            inst = await self.get(ctx, instance_id)
            self._writer(ctx)
            if inst.vm_state not in METADATA_VM_STATES:
                raise InstanceInvalidState(action, inst.uuid, "vm_state", inst.vm_state)
            tags = edit(list(inst.tags or []))
            inst = await self.store.write(inst.uuid, Expect(vm_states=METADATA_VM_STATES),
                                          {"tags": tags})
        return list(inst.tags)

    @staticmethod
    def _metadata_guard(action: str, inst: Instance, ctx: RequestContext) -> None:
        if inst.locked and not ctx.is_admin:
            raise InstanceIsLocked(action, inst.uuid)
        if inst.vm_state not in METADATA_VM_STATES:
            raise InstanceInvalidState(action, inst.uuid, "vm_state", inst.vm_state)
        if inst.task_state is not None:
            raise InstanceInvalidState(action, inst.uuid, "task_state", inst.task_state)

    @staticmethod
    def _writer(ctx: RequestContext) -> None:
        if not ctx.can_write:
            raise Forbidden()

    async def delete(self, ctx: RequestContext, instance_id: str) -> None:
        """Delete, or soft delete when reclaim_instance_interval > 0."""
        inst = await self.get(ctx, instance_id)
        if inst.task_state in (T.DELETING, T.SOFT_DELETING):
            return  # Nova ignores a repeated delete
        if self.config.DEFAULT.reclaim_instance_interval > 0 and inst.vm_state is not V.SOFT_DELETED:
            try:
                await self.act(ctx, instance_id, "soft_delete", {})
                return
            except InstanceInvalidState as exc:
                if exc.attr != "launched_at":
                    raise
        await self.act(ctx, instance_id, "delete", {})

    async def act(self, ctx: RequestContext, instance_id: str, action: str,
                  params: Mapping[str, Any]) -> ActionResult:
        """Accept one action of the table and start its work."""
        spec = BY_NAME.get(action)
        if spec is None or spec.internal or action == "boot":
            raise NoSuchAction(action)
        args = dict(params)
        if action == "evacuate" and self.mover is not None \
                and not await self.store.has_instance(instance_id):
            return await self._evacuate_remote(ctx, spec, instance_id, args)
        async with self._accepting.hold(instance_id):
            inst = await self.get(ctx, instance_id)  # visibility and state in one read
            self._writer(ctx)  # after visibility: another project's server stays 404
            self.lifecycle.check_request(spec, self._subject(inst, ctx))
            result = await self._precheck(spec, inst, ctx, args)
            if spec.name in SYNC_ACTIONS:
                inst = await self._sync_action(spec, inst, ctx, args)
                return ActionResult(instance=inst)
            op = await self._accept(spec, inst, ctx, args)
        if spec.name in CALL_ACTIONS:
            failure = await self.runner.run(op)
            if failure is not None:
                raise _call_error(op.uuid, failure)
            return ActionResult(instance=op.instance)
        done = self.supervisor.spawn(f"{spec.name}:{instance_id}",
                                     functools.partial(self.runner.run, op))
        return ActionResult(admin_pass=result.admin_pass, image_id=args.get("image_id"),
                            instance=op.instance, done=done)

    async def _evacuate_remote(self, ctx: RequestContext, spec: ActionSpec, instance_id: str,
                               args: dict[str, Any]) -> ActionResult:
        """Evacuate another node's instance: the guards on its replicated
        record, then the mover picks a node that rebuilds it."""
        inst = await self.store.get_replica(instance_id)
        self._writer(ctx)
        subject = dataclasses.replace(self._subject(inst, ctx), host_up=False)
        self.lifecycle.check_request(spec, subject)
        result = await self._precheck(spec, inst, ctx, args)
        if result.admin_pass:
            args["admin_pass"] = result.admin_pass
        await self.mover.evacuate(ctx, inst, args)
        return ActionResult(admin_pass=result.admin_pass)

    def _subject(self, inst: Instance, ctx: RequestContext) -> Subject:
        return Subject(instance_id=inst.uuid, vm_state=inst.vm_state, task_state=inst.task_state,
                       launched=inst.launched_at is not None, locked=inst.locked,
                       host=inst.host, is_admin=ctx.is_admin,
                       host_up=self.host_is_up(inst.host))

    async def _precheck(self, spec: ActionSpec, inst: Instance, ctx: RequestContext,
                        args: dict[str, Any]) -> ActionResult:
        """Checks beyond the state guards (flavor, quota, migration, images)."""
        if spec.name == "resize":
            await self._check_resize(inst, ctx, args)
        elif spec.name in ("confirm_resize", "revert_resize"):
            migration = await self.store.get_migration_for_instance(inst.uuid, ("finished",))
            if migration is None:
                raise Invalid(f"Instance has not been resized. (instance {inst.uuid})")
            source = migration.source_compute
            if source != self.host and self.mover is not None \
                    and not self.mover.is_alive(source):  # Nova: the source must be up
                raise Conflict(f"Compute service of {source} is unavailable at this time.")
        elif spec.name == "live_migrate":
            self._check_known_host(args.get("host"))
            if args.pop("check_destination", False):
                await self._check_live_destination(inst, args)
        elif spec.name == "restore":
            await self._check_quota(ctx, inst.project_id, inst.flavor, 1)
        elif spec.name == "unshelve" and ("availability_zone" in args or args.get("host")) \
                and inst.vm_state is not V.SHELVED_OFFLOADED:
            status = status_of(inst.vm_state, inst.task_state, inst.deleted)
            raise Conflict("Specifying an availability zone or a host when unshelving server "
                           f"{inst.uuid} with status {status} is not supported. The server "
                           "status must be SHELVED_OFFLOADED.")
        elif spec.name == "unlock":
            self._check_unlock(inst, ctx)
        elif spec.name in ("snapshot", "backup"):
            args["image_id"] = await self.specs.reserve_image(
                inst, args["name"], spec.name,
                {"backup_type": args["backup_type"]} if spec.name == "backup" else None)
        elif spec.name == "rebuild" and args.get("image_id"):
            await self._image_exists(ctx, args["image_id"])
        elif spec.name == "rescue":
            await self._check_rescue_image(ctx, inst, args.get("rescue_image_ref"))
        elif spec.name == "migrate" and args.get("host"):
            self._check_migrate_host(inst, args["host"])
        if spec.name == "rebuild":  # personality, below 2.57
            await self.quotas.check_injected_files(inst.project_id, args.get("files", ()))
        if spec.name == "rebuild" and "key_name" in args:  # 2.54; None removes the key
            args["key_data"] = await self._key_data(ctx, args["key_name"])
        if spec.name in ("rescue", "rebuild", "evacuate") \
                and self.config.api.enable_instance_password:
            return ActionResult(admin_pass=args.get("admin_pass") or _password())
        return ActionResult()

    def _check_known_host(self, host: str | None) -> None:
        """A named destination must be a node of the cluster (Nova's API checks
        that at every microversion, before and after 2.34)."""
        if not host or host == self.host:
            return
        if self.mover is None or self.mover.cluster.member(host) is None:
            raise Invalid(f"Compute host {host} could not be found.")

    async def _check_live_destination(self, inst: Instance, args: dict[str, Any]) -> None:
        """Nova's live-migration pre-checks before the API answers (below 2.34):
        no node to go to is 400 (novad then records neither the action nor a
        migration; from 2.34 the migration ends ``error`` after the 202)."""
        if self.mover is None or self.mover.alone():
            raise Invalid(NoValidHost.default_message)
        if not await self.mover.live_destinations(inst, args):
            raise Invalid(NoValidHost.default_message)

    def _check_migrate_host(self, inst: Instance, host: str) -> None:
        """A migrate's named host (2.56), as Nova checks it before the
        scheduler does: not the server's own, and a compute host known here."""
        if host == inst.host:
            raise Invalid("Cannot migrate to the host where the server exists.")
        if self.mover is None or self.mover.cluster.member(host) is None:
            raise Invalid(f"Compute host {host} could not be found.")

    async def _image_exists(self, ctx: RequestContext, image_id: str) -> Any:
        try:
            return await self.specs.images.get(ctx, image_id)
        except ImageNotFound:
            raise Invalid(f"Image {image_id} could not be found.") from None

    async def _check_rescue_image(self, ctx: RequestContext, inst: Instance,
                                  rescue_image_ref: str | None) -> None:
        """The rescue image exists, and its ``hw_rescue_device`` /
        ``hw_rescue_bus`` are values the driver can attach: a bad one is a
        400 now, before the guest is powered off, not an ERROR instance later.
        Without ``rescue_image_ref`` the instance's own image is the rescue
        image (one that has gone since the boot is the operation's problem)."""
        if rescue_image_ref:
            image = await self._image_exists(ctx, rescue_image_ref)
        elif inst.image_ref:
            try:
                image = await self.specs.images.get(RequestContext.admin(), inst.image_ref)
            except ImageNotFound:
                return
        else:
            return
        rescue_options(image.properties)

    async def _check_resize(self, inst: Instance, ctx: RequestContext,
                            args: dict[str, Any]) -> None:
        try:
            flavor = await self.store.get_flavor(str(args["flavor_id"]))
        except FlavorNotFound as exc:
            raise Invalid(exc.message) from None
        if flavor.id == inst.flavor.id:
            raise Invalid("When resizing, instances must change flavor!")
        if flavor.root_gb == 0 and inst.flavor.root_gb > 0:  # Nova's CannotResizeDisk
            raise Invalid("Resize to zero disk flavor is not allowed.")
        extra = Flavor(id="delta", name="delta", vcpus=max(flavor.vcpus - inst.flavor.vcpus, 0),
                       memory_mb=max(flavor.memory_mb - inst.flavor.memory_mb, 0), root_gb=0)
        await self._check_quota(ctx, inst.project_id, extra, 0)
        args["flavor_id"] = flavor.id

    def _check_unlock(self, inst: Instance, ctx: RequestContext) -> None:
        if inst.locked_by == "admin" and not ctx.is_admin:
            raise Forbidden("Policy doesn't allow os_compute_api:os-lock-server:unlock:"
                            "unlock_override to be performed.")

    async def _check_quota(self, ctx: RequestContext, project_id: str, flavor: Flavor,
                           count: int) -> None:
        await self.quotas.check(project_id, count, flavor.vcpus * max(count, 1),
                                flavor.memory_mb * max(count, 1))

    async def _sync_action(self, spec: ActionSpec, inst: Instance, ctx: RequestContext,
                           args: dict[str, Any]) -> Instance:
        """lock, unlock, reset-state: one write with the action and its event."""
        if spec.name == "lock":
            if inst.locked and (ctx.project_id == inst.project_id):
                return inst
            owner = "owner" if ctx.project_id == inst.project_id else "admin"
            changes: dict[str, Any] = {"locked": True, "locked_by": owner,
                                       "locked_reason": args.get("reason")}
        elif spec.name == "unlock":
            changes = {"locked": False, "locked_by": None, "locked_reason": None}
        else:
            target = V(args["state"])
            if not self.lifecycle.check_end(spec, inst.vm_state, target):
                raise Invalid(f"Invalid state {args['state']}")
            changes = {"vm_state": target, "task_state": None}
        event = spec.event or f"api_{spec.api_name}"
        return await self.store.write(
            inst.uuid, Expect(frozenset({inst.vm_state}), frozenset({inst.task_state})), changes,
            action=self._action_start(spec, ctx, inst),
            event_start=EventStart(ctx.request_id, event, self.host),
            event_finish=EventFinish(ctx.request_id, event, "Success"), finish_action=True)

    def _action_start(self, spec: ActionSpec, ctx: RequestContext, inst: Instance) -> ActionStart:
        return ActionStart(action=spec.instance_action or spec.name, request_id=ctx.request_id,
                           user_id=ctx.user_id, project_id=inst.project_id)

    async def _accept(self, spec: ActionSpec, inst: Instance, ctx: RequestContext,
                      args: dict[str, Any]) -> Op:
        """The accepting compare-and-swap: task_state set, action recorded."""
        changes: dict[str, Any] = {}
        if not spec.keeps_task:
            changes["task_state"] = spec.sets_task
        meta = dict(inst.system_metadata)
        if spec.name == "rebuild":  # the rebuild's files replace the server's (none: none)
            meta = files_metadata(meta, args.pop("files", ()))
        changes["system_metadata"] = {**meta,
                                      PARAMS_KEY: json.dumps(_storable(args), default=str),
                                      "task_host": self.host}
        if spec.name in ("stop", "rebuild", "delete", "force_delete"):
            changes["progress"] = 0
        if spec.name == "rebuild":  # shown in the response, so written at once
            changes.update(rebuild_accepted(args))
        if spec.name == "rebuild" and "trusted_certs" in args:  # 2.63; null clears them
            certs = args.pop("trusted_certs")
            meta = {k: v for k, v in changes["system_metadata"].items()
                    if k != TRUSTED_CERTS_KEY}
            if certs:
                meta[TRUSTED_CERTS_KEY] = json.dumps(list(certs))
            changes["system_metadata"] = meta
        if spec.name == "rebuild" and args.get("hostname"):  # 2.90: shown in the response
            changes["system_metadata"][HOSTNAME_KEY] = args["hostname"]
        if spec.name in ("rebuild", "resize") and args.get("disk_config"):  # shown at once
            changes["system_metadata"][DISK_CONFIG_KEY] = args["disk_config"]
        expect = Expect(frozenset({inst.vm_state}), frozenset({inst.task_state}))
        event = EventStart(ctx.request_id, spec.event, self.host) if spec.event else None
        new = await self.store.write(inst.uuid, expect, changes,
                                     action=self._action_start(spec, ctx, inst),
                                     event_start=event)
        return Op(spec=spec, instance=new, ctx=ctx, params=args, origin_vm=inst.vm_state,
                  task=new.task_state, request_id=ctx.request_id)

    async def force_stop(self, inst: Instance) -> None:
        """Power sync's force_stop: no vm_state guard, POWERING_OFF, then stop."""
        ctx = RequestContext.admin()
        spec = BY_NAME["force_stop"]
        async with self._accepting.hold(inst.uuid):
            current = await self.store.get_instance(inst.uuid)
            self.lifecycle.check_request(spec, self._subject(current, ctx))
            op = await self._accept(spec, current, ctx, {})
        self.supervisor.spawn(f"force_stop:{inst.uuid}", lambda: self.runner.run(op))

    # -- create -------------------------------------------------------------------
    async def create(self, ctx: RequestContext, req: CreateRequest) -> list[Instance]:
        """Accept a boot: rows in BUILDING/SCHEDULING, then spawn in the background."""
        self._writer(ctx)
        flavor = await self._create_flavor(req.flavor_id)
        if req.group is not None:
            await self._check_group(ctx, req.group)
        key_data = await self._key_data(ctx, req.key_name)
        await self._check_image(ctx, req.image_id, flavor)
        await self.quotas.check_injected_files(ctx.project_id, req.files)
        count = req.max_count
        try:
            await self._check_quota(ctx, ctx.project_id, flavor, count)
        except OverQuota:
            count = req.min_count
            await self._check_quota(ctx, ctx.project_id, flavor, count)
        reservation = f"r-{secrets.token_hex(4)}"
        claim = (self.claims.claim(flavor, count) if req.claim and self.claims is not None
                 else contextlib.nullcontext())
        async with claim:
            return await self._create_rows(ctx, req, flavor, key_data, reservation, count)

    async def _create_rows(self, ctx: RequestContext, req: CreateRequest, flavor: Flavor,
                           key_data: str | None, reservation: str, count: int
                           ) -> list[Instance]:
        spec = BY_NAME["boot"]
        params = {"no_valid_host": req.no_valid_host} if req.no_valid_host else {}
        created = []
        for index in range(1, count + 1):
            name = req.name if count == 1 else f"{req.name}-{index}"
            inst = self._new_instance(ctx, req, flavor, name, key_data, reservation,
                                      launch_index=index - 1)
            inst = await self.store.create_instance(
                inst, action=self._action_start(spec, ctx, inst),
                event=EventStart(ctx.request_id, spec.event or "", self.host))
            op = Op(spec=spec, instance=inst, ctx=ctx, params=dict(params), origin_vm=V.BUILDING,
                    task=T.SCHEDULING, request_id=ctx.request_id)
            if req.group is not None:
                await self.store.add_server_group_member(req.group, inst.uuid)
            self.supervisor.spawn(f"boot:{inst.uuid}", functools.partial(self.runner.run, op))
            created.append(inst)
        return created

    async def _check_group(self, ctx: RequestContext, group_id: str) -> None:
        """Nova's 400 for a ``group`` hint naming no group of the project."""
        try:
            group = await self.store.get_server_group(group_id)
        except NotFound:
            raise Invalid(f"Invalid server group {group_id}") from None
        if group.project_id != ctx.project_id and not ctx.is_admin:
            raise Invalid(f"Invalid server group {group_id}")

    async def _create_flavor(self, flavor_id: str) -> Flavor:
        try:
            return await self.store.get_flavor(flavor_id)
        except FlavorNotFound as exc:
            raise Invalid(exc.message) from None

    async def _key_data(self, ctx: RequestContext, key_name: str | None) -> str | None:
        if not key_name:
            return None
        try:
            return str((await self.store.get_keypair(ctx.user_id, key_name)).public_key)
        except Exception as exc:
            if isinstance(exc, Conflict | Forbidden):
                raise
            raise Invalid("Invalid key_name provided.") from None

    async def _check_image(self, ctx: RequestContext, image_id: str, flavor: Flavor) -> None:
        if not image_id:
            return
        try:
            image = await self.specs.images.get(ctx, image_id)
        except ImageNotFound:
            raise Invalid(f"Image {image_id} could not be found.") from None
        if getattr(image, "status", "active") != "active":
            raise Invalid(f"Image {image_id} is not active.")
        if flavor.root_gb and (image.min_disk or 0) > flavor.root_gb:
            raise Invalid("Flavor's disk is too small for requested image. Flavor disk is "
                          f"{flavor.root_gb * 1024 ** 3} bytes, image is "
                          f"{image.min_disk * 1024 ** 3} bytes.")
        if (image.min_ram or 0) > flavor.memory_mb:
            raise Invalid("Flavor's memory is too small for requested image.")

    def _new_instance(self, ctx: RequestContext, req: CreateRequest, flavor: Flavor, name: str,
                      key_data: str | None, reservation: str, launch_index: int = 0
                      ) -> Instance:
        return Instance(uuid=str(uuidlib.uuid4()), name=name, project_id=ctx.project_id,
                        user_id=ctx.user_id, host=self.host, flavor=flavor,
                        image_ref=req.image_id, vm_state=V.BUILDING, task_state=T.SCHEDULING,
                        key_name=req.key_name, key_data=key_data, user_data=req.user_data,
                        config_drive=req.config_drive,
                        availability_zone=req.availability_zone or "nova",
                        metadata=dict(req.metadata), reservation_id=reservation,
                        networks=req.networks, description=req.description,
                        access_ip_v4=req.access_ip_v4, access_ip_v6=req.access_ip_v6,
                        tags=list(dict.fromkeys(req.tags)),
                        # its place in a multiple create (OS-EXT-SRV-ATTR:launch_index)
                        system_metadata=_boot_metadata(req, launch_index))


REBUILD_FIELDS = ("description", "key_name", "key_data", "user_data", "access_ip_v4",
                  "access_ip_v6")
"""Instance fields a rebuild's arguments set as they are (description from
2.19, the key pair from 2.54, user data from 2.57; access IPs at every
version), written when it is accepted."""


def rebuild_accepted(args: Mapping[str, Any]) -> dict[str, Any]:
    """What Nova's API writes as it accepts a rebuild, before it answers:
    the new image, name and metadata and the fields above, so the answer
    (and every show while it runs) has them.  The operation writes the
    image, name and metadata again when it starts (a rerun after a crash
    gets the same)."""
    changes: dict[str, Any] = {key: args[key] for key in REBUILD_FIELDS if key in args}
    if args.get("image_id"):
        changes["image_ref"] = args["image_id"]
    if args.get("name"):
        changes["name"] = args["name"]
    if args.get("metadata") is not None:
        changes["metadata"] = args["metadata"]
    return changes


DISK_CONFIG_KEY = "disk_config"
"""The system metadata key of the server's ``OS-DCF:diskConfig`` (AUTO or
MANUAL, as last asked at create, rebuild or resize)."""

HOSTNAME_KEY = "hostname"
"""The system metadata key of a hostname the user set (2.90); without it
the hostname is derived from the server's name."""

PINNED_AZ_KEY = operations.PINNED_AZ_KEY
"""The system metadata key of the zone the user asked for (at create, or at
an unshelve from 2.77); absent: the server is pinned to no zone."""


def pinned_zone(requested: str | None) -> dict[str, str]:
    """The system metadata that pins a server to the zone of a requested
    ``zone[:host[:node]]`` (none for no zone, as Nova's request spec)."""
    zone = (requested or "").partition(":")[0]
    return {PINNED_AZ_KEY: zone} if zone else {}



POWER_STATE_NAMES = {PowerState.NOSTATE: "pending", PowerState.RUNNING: "running",
                     PowerState.PAUSED: "paused", PowerState.SHUTDOWN: "shutdown",
                     PowerState.CRASHED: "crashed", PowerState.SUSPENDED: "suspended"}
"""Nova's names of the power states (diagnostics' ``state``)."""

LIVE_IN_PROGRESS = frozenset({"queued", "preparing", "running", "post-migrating"})
"""The statuses of a live migration still in progress (Nova's)."""


def _boot_metadata(req: CreateRequest, launch_index: int) -> dict[str, str]:
    meta = {"launch_index": str(launch_index), **pinned_zone(req.availability_zone),
            DISK_CONFIG_KEY: req.disk_config}
    if req.hostname:
        meta[HOSTNAME_KEY] = req.hostname
    if req.trusted_certs:
        meta[TRUSTED_CERTS_KEY] = json.dumps(list(req.trusted_certs))
    return files_metadata(meta, req.files)


def _password() -> str:
    return secrets.token_urlsafe(9)


def _page(rows: list[Instance], limit: int | None, marker: str | None) -> list[Instance]:
    if marker is not None:
        ids = [r.uuid for r in rows]
        if marker not in ids:
            raise Invalid(f"marker [{marker}] not found")
        rows = rows[ids.index(marker) + 1:]
    return rows if limit is None else rows[:limit]


def _storable(args: Mapping[str, Any]) -> dict[str, Any]:
    """A task's parameters as the store keeps them for recovery: without
    passwords (no operation needs one again after a restart)."""
    return {k: v for k, v in args.items() if k not in SECRET_PARAMS}


def _call_error(instance_id: str, failure: BaseException) -> NovadError:
    """What a failed synchronous action answers: its own 409 or 501, else
    Nova's generic "error setting admin password" (nothing from the driver)."""
    if isinstance(failure, NovadError) and failure.status in (409, 501):
        if isinstance(failure, NotImplementedByDriver):
            return NotImplementedByDriver("Unable to set password on instance")
        return failure
    return PasswordSetFailed(instance_id, "error setting admin password")
