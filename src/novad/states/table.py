"""The action table: every lifecycle action, declared once.

One :class:`ActionSpec` row per action, transcribed from Nova's API guards
and compute-side progression (``nova-lifecycle-facts.md`` §2.1 and §2.2).
The state machine (:mod:`novad.states.machine`), the compute service, the
HTTP API, the generated docs and the tests all read these rows.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from novad.states.enums import (
    ALLOW_HARD_REBOOT,
    ALLOW_REBOOT_TASKS,
    ALLOW_TRIGGER_CRASH_DUMP,
    Task,
    TaskState as T,
    VmState as V,
)


class Final(enum.Enum):
    """Final vm_state rules that depend on the instance, not only the row."""

    UNCHANGED = "unchanged"  # the vm_state the action started from
    OLD_VM_STATE = "old_vm_state"  # system_metadata old_vm_state, else ACTIVE
    BY_POWER = "by_power"  # STOPPED if the guest is shut down, else ACTIVE
    STOPPED_STAYS_STOPPED = "stopped_stays_stopped"  # STOPPED if it started STOPPED, else ACTIVE
    REQUESTED = "requested"  # reset-state: the state the admin asked for
    # shelve: SHELVED, or SHELVED_OFFLOADED when shelved_offload_time is 0 and
    # the guest is offloaded at once (Nova's shelve_instance does both).
    SHELVED_OR_OFFLOADED = "shelved_or_offloaded"


class OnFailure(enum.Enum):
    """What a failed driver step does to the instance (§2.2 "Failure")."""

    REVERT_TASK = "task cleared, vm_state kept, fault recorded"
    ERROR = "vm_state ERROR, task cleared, fault recorded"
    ROLLBACK_OR_ERROR = "rollback to the original vm_state if the guest was not touched, else ERROR"
    REBOOT = "guest running: fault only, ends normally; otherwise ERROR"
    NONE = "no state change (synchronous or event-only action)"


class HostCheck(enum.Enum):
    """``check_instance_host`` variants."""

    NONE = "none"
    SET = "host set"
    UP = "host up"
    DOWN = "host down"  # evacuate: the source compute must be down


ANY_VM: frozenset[V] | None = None
"""``vm_states=None``: the vm_state is not checked."""

UNCHECKED: frozenset[Task] | None = None
"""``task_states=None``: the task_state is not checked."""

NO_TASK: frozenset[Task] = frozenset({None})


@dataclass(frozen=True)
class ActionSpec:
    """One row of the action table.

    ``sets_task`` is the task_state the accepted request writes (``KEEP``
    when the action leaves task_state alone); the accepting compare-and-swap
    requires the exact vm_state and task_state the guards saw.
    ``steps`` are the task_states the work passes through, in order.
    """

    name: str
    api_name: str
    instance_action: str | None
    event: str | None
    vm_states: frozenset[V] | None
    task_states: frozenset[Task] | None
    must_have_launched: bool
    check_lock: bool
    sets_task: Task | str
    steps: tuple[T, ...]
    final: V | Final
    on_failure: OnFailure
    host_check: HostCheck = HostCheck.NONE
    admin_only: bool = False
    success_code: int = 202
    internal: bool = False  # used by novad itself (power sync), not offered by the API

    @property
    def keeps_task(self) -> bool:
        """True when accepting the action does not write a task_state."""
        return self.sets_task == KEEP

    def allows(self, vm: V, task: Task) -> bool:
        """Whether (vm, task) passes this row's state guards (not lock/launched)."""
        return (self.vm_states is None or vm in self.vm_states) and (
            self.task_states is None or task in self.task_states
        )


KEEP = "keep"
"""``sets_task=KEEP``: the action does not touch task_state."""


def _vm(*states: V) -> frozenset[V]:
    return frozenset(states)


def _row(name: str, api: str, action: str | None, event: str | None, vm: frozenset[V] | None,
         task: frozenset[Task] | None, sets: Task | str, steps: Iterable[T], final: V | Final,
         fail: OnFailure, *, launched: bool = True, lock: bool = True,
         **kw: object) -> ActionSpec:
    return ActionSpec(name=name, api_name=api, instance_action=action, event=event,
                      vm_states=vm, task_states=task, must_have_launched=launched,
                      check_lock=lock, sets_task=sets, steps=tuple(steps),
                      final=final, on_failure=fail, **kw)  # type: ignore[arg-type]


_SHELVABLE = _vm(V.ACTIVE, V.STOPPED, V.PAUSED, V.SUSPENDED)
_ERR = OnFailure.ERROR
_REVERT = OnFailure.REVERT_TASK

ACTIONS: tuple[ActionSpec, ...] = (
    _row("boot", "create", "create", "compute__do_build_and_run_instance",
         _vm(V.BUILDING), frozenset({T.SCHEDULING}), KEEP,
         (T.NETWORKING, T.BLOCK_DEVICE_MAPPING, T.SPAWNING), V.ACTIVE, _ERR,
         launched=False, lock=False),
    _row("delete", "delete", "delete", "compute_terminate_instance", ANY_VM, UNCHECKED,
         T.DELETING, (), V.DELETED, _ERR, launched=False, success_code=204),
    _row("force_delete", "forceDelete", "delete", "compute_terminate_instance", ANY_VM,
         UNCHECKED, T.DELETING, (), V.DELETED, _ERR, launched=False),
    _row("soft_delete", "delete", "delete", "compute_soft_delete_instance", ANY_VM, UNCHECKED,
         T.SOFT_DELETING, (), V.SOFT_DELETED, _REVERT, success_code=204),
    _row("restore", "restore", "restore", "compute_restore_instance", _vm(V.SOFT_DELETED),
         NO_TASK, T.RESTORING, (), V.ACTIVE, _REVERT),
    _row("start", "os-start", "start", "compute_start_instance", _vm(V.STOPPED), NO_TASK,
         T.POWERING_ON, (), V.ACTIVE, _REVERT, host_check=HostCheck.SET),
    _row("stop", "os-stop", "stop", "compute_stop_instance", _vm(V.ACTIVE, V.ERROR), NO_TASK,
         T.POWERING_OFF, (), V.STOPPED, _REVERT, host_check=HostCheck.SET),
    _row("force_stop", "", "stop", "compute_stop_instance", ANY_VM, NO_TASK, T.POWERING_OFF,
         (), V.STOPPED, _REVERT, launched=False, lock=False, internal=True),
    _row("reboot_soft", "reboot", "reboot", "compute_reboot_instance", _vm(V.ACTIVE),
         NO_TASK, T.REBOOTING, (T.REBOOT_PENDING, T.REBOOT_STARTED), V.ACTIVE,
         OnFailure.REBOOT),
    _row("reboot_hard", "reboot", "reboot", "compute_reboot_instance", ALLOW_HARD_REBOOT,
         ALLOW_REBOOT_TASKS, T.REBOOTING_HARD, (T.REBOOT_PENDING_HARD, T.REBOOT_STARTED_HARD),
         V.ACTIVE, OnFailure.REBOOT),
    _row("pause", "pause", "pause", "compute_pause_instance", _vm(V.ACTIVE), NO_TASK,
         T.PAUSING, (), V.PAUSED, _REVERT),
    _row("unpause", "unpause", "unpause", "compute_unpause_instance", _vm(V.PAUSED), NO_TASK,
         T.UNPAUSING, (), V.ACTIVE, _REVERT),
    _row("suspend", "suspend", "suspend", "compute_suspend_instance", _vm(V.ACTIVE), NO_TASK,
         T.SUSPENDING, (), V.SUSPENDED, OnFailure.ROLLBACK_OR_ERROR),
    _row("resume", "resume", "resume", "compute_resume_instance", _vm(V.SUSPENDED), NO_TASK,
         T.RESUMING, (), Final.OLD_VM_STATE, OnFailure.ROLLBACK_OR_ERROR),
    _row("resize", "resize", "resize", "compute_resize_instance", _vm(V.ACTIVE, V.STOPPED),
         NO_TASK, T.RESIZE_PREP, (T.RESIZE_MIGRATING, T.RESIZE_MIGRATED, T.RESIZE_FINISH),
         V.RESIZED, OnFailure.ROLLBACK_OR_ERROR, host_check=HostCheck.UP),
    _row("confirm_resize", "confirmResize", "confirmResize", "compute_confirm_resize",
         _vm(V.RESIZED), NO_TASK, KEEP, (), Final.BY_POWER, _ERR, success_code=204),
    _row("revert_resize", "revertResize", "revertResize", "compute_revert_resize",
         _vm(V.RESIZED), NO_TASK, T.RESIZE_REVERTING, (), Final.OLD_VM_STATE, _ERR),
    _row("migrate", "migrate", "migrate", "conductor_migrate_server", _vm(V.ACTIVE, V.STOPPED),
         NO_TASK, T.RESIZE_PREP, (T.RESIZE_MIGRATING, T.RESIZE_MIGRATED, T.RESIZE_FINISH),
         V.RESIZED, OnFailure.ROLLBACK_OR_ERROR, host_check=HostCheck.UP),
    _row("live_migrate", "os-migrateLive", "live-migration", "conductor_live_migrate_instance",
         _vm(V.ACTIVE, V.PAUSED), NO_TASK, T.MIGRATING, (), Final.UNCHANGED,
         OnFailure.REVERT_TASK),
    _row("evacuate", "evacuate", "evacuate", "conductor_rebuild_server",
         _vm(V.ACTIVE, V.STOPPED, V.ERROR), UNCHECKED, T.REBUILDING,
         (T.REBUILD_BLOCK_DEVICE_MAPPING, T.REBUILD_SPAWNING), Final.STOPPED_STAYS_STOPPED,
         OnFailure.REVERT_TASK, lock=False, host_check=HostCheck.DOWN, success_code=200),
    _row("shelve", "shelve", "shelve", "compute_shelve_instance", _SHELVABLE, NO_TASK,
         T.SHELVING, (T.SHELVING_IMAGE_PENDING_UPLOAD, T.SHELVING_IMAGE_UPLOADING),
         Final.SHELVED_OR_OFFLOADED, _REVERT),
    _row("shelve_offload", "shelveOffload", "shelveOffload",
         "compute_shelve_offload_instance", _vm(V.SHELVED), NO_TASK, T.SHELVING_OFFLOADING, (),
         V.SHELVED_OFFLOADED, _REVERT),
    _row("unshelve", "unshelve", "unshelve", "compute_unshelve_instance",
         _vm(V.SHELVED, V.SHELVED_OFFLOADED), NO_TASK, T.UNSHELVING, (), V.ACTIVE, _REVERT),
    _row("lock", "lock", "lock", "api_lock", ANY_VM, UNCHECKED, KEEP, (), Final.UNCHANGED,
         OnFailure.NONE, launched=False, lock=False),
    _row("unlock", "unlock", "unlock", "api_unlock", ANY_VM, UNCHECKED, KEEP, (),
         Final.UNCHANGED, OnFailure.NONE, launched=False, lock=False),
    _row("rescue", "rescue", "rescue", "compute_rescue_instance",
         _vm(V.ACTIVE, V.STOPPED, V.ERROR), NO_TASK, T.RESCUING, (), V.RESCUED, _ERR,
         success_code=200),
    _row("unrescue", "unrescue", "unrescue", "compute_unrescue_instance", _vm(V.RESCUED),
         NO_TASK, T.UNRESCUING, (), V.ACTIVE, _ERR),
    _row("rebuild", "rebuild", "rebuild", "compute_rebuild_instance",
         _vm(V.ACTIVE, V.STOPPED, V.ERROR), NO_TASK, T.REBUILDING,
         (T.REBUILD_BLOCK_DEVICE_MAPPING, T.REBUILD_SPAWNING), Final.STOPPED_STAYS_STOPPED,
         _ERR),
    _row("snapshot", "createImage", "createImage", "compute_snapshot_instance", _SHELVABLE,
         NO_TASK, T.IMAGE_SNAPSHOT_PENDING,
         (T.IMAGE_SNAPSHOT, T.IMAGE_PENDING_UPLOAD, T.IMAGE_UPLOADING), Final.UNCHANGED,
         _REVERT, lock=False),
    _row("backup", "createBackup", "createBackup", "compute_backup_instance", _SHELVABLE,
         NO_TASK, T.IMAGE_BACKUP, (T.IMAGE_PENDING_UPLOAD, T.IMAGE_UPLOADING), Final.UNCHANGED,
         _REVERT, lock=False),
    _row("reset_state", "os-resetState", "resetState", None, ANY_VM, UNCHECKED, None, (),
         Final.REQUESTED, OnFailure.NONE, launched=False, lock=False,
         admin_only=True),
    _row("change_password", "changePassword", "changePassword", "compute_set_admin_password",
         _vm(V.ACTIVE), NO_TASK, T.UPDATING_PASSWORD, (), Final.UNCHANGED, _REVERT,
         host_check=HostCheck.SET),
    _row("trigger_crash_dump", "trigger_crash_dump", "trigger_crash_dump",
         "compute_trigger_crash_dump", ALLOW_TRIGGER_CRASH_DUMP, NO_TASK, KEEP, (),
         Final.UNCHANGED, OnFailure.NONE, host_check=HostCheck.SET),
)

BY_NAME: dict[str, ActionSpec] = {spec.name: spec for spec in ACTIONS}
"""Rows by table name."""

NO_VALID_HOST_FINAL: dict[str, Final] = {
    name: Final.UNCHANGED for name in ("migrate", "live_migrate", "evacuate")
}
"""Until other nodes exist these actions end with NoValidHost, vm_state kept."""


def finish_targets(spec: ActionSpec) -> tuple[frozenset[V], bool]:
    """Where the action may end on success: explicit vm_states, and whether
    it may also end where it started (``Final.UNCHANGED``)."""
    if isinstance(spec.final, V):
        return frozenset({spec.final}), False
    return {
        Final.UNCHANGED: (frozenset(), True),
        Final.OLD_VM_STATE: (frozenset({V.ACTIVE, V.STOPPED}), False),
        Final.BY_POWER: (frozenset({V.ACTIVE, V.STOPPED}), False),
        Final.STOPPED_STAYS_STOPPED: (frozenset({V.ACTIVE, V.STOPPED}), False),
        Final.REQUESTED: (frozenset({V.ACTIVE, V.ERROR}), False),
        Final.SHELVED_OR_OFFLOADED: (frozenset({V.SHELVED, V.SHELVED_OFFLOADED}), False),
    }[spec.final]


def failure_targets(spec: ActionSpec) -> tuple[frozenset[V], bool]:
    """Where the action may end when its work fails (same shape as above)."""
    return {
        OnFailure.NONE: (frozenset(), False),
        OnFailure.REVERT_TASK: (frozenset(), True),
        OnFailure.ERROR: (frozenset({V.ERROR}), False),
        OnFailure.REBOOT: (frozenset({V.ERROR}), False),
        OnFailure.ROLLBACK_OR_ERROR: (frozenset({V.ERROR}), True),
    }[spec.on_failure]
