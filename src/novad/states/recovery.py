"""Crash recovery, declared: what start-up does with every task_state.

Nova's ``_init_instance`` (facts §4) leaves many task states stuck after a
restart.  novad decides for *every* task_state; the decision is one of:

* ``ERROR``   vm_state ERROR, task cleared, fault "interrupted" (Nova rules 3-4:
  a half-built or half-rebuilt guest cannot be trusted);
* ``CLEAR``   task cleared, partial images killed, migration marked ``error``;
  power sync then reconciles vm_state with the guest;
* ``RERUN``   the owning action's operation runs again from its first step
  (every operation is idempotent against the guest's state);
* ``ROLLBACK_RESIZE``  a resize interrupted after the guest was touched goes
  back to the old flavor, XML and disk (Nova rule 14, extended to every
  resize step).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from novad.states.enums import (
    BUILD_TASKS,
    REBUILD_TASKS,
    SNAPSHOT_TASKS,
    Task,
    TaskState as T,
    VmState as V,
)


class Recovery(enum.Enum):
    """What recovery does (see module docstring)."""

    NOTHING = "nothing"
    ERROR = "error"
    CLEAR = "clear"
    RERUN = "rerun"
    ROLLBACK_RESIZE = "rollback_resize"


@dataclass(frozen=True)
class Plan:
    """A recovery decision: what to do and, for RERUN, which action."""

    kind: Recovery
    action: str | None = None


RERUN_BY_TASK: dict[T, str] = {
    T.DELETING: "delete",
    T.SOFT_DELETING: "soft_delete",
    T.RESTORING: "restore",
    T.POWERING_OFF: "stop",
    T.POWERING_ON: "start",
    T.REBOOTING: "reboot_soft",
    T.REBOOT_PENDING: "reboot_soft",
    T.REBOOT_STARTED: "reboot_soft",
    T.REBOOTING_HARD: "reboot_hard",
    T.REBOOT_PENDING_HARD: "reboot_hard",
    T.REBOOT_STARTED_HARD: "reboot_hard",
    T.PAUSING: "pause",
    T.UNPAUSING: "unpause",
    T.SUSPENDING: "suspend",
    T.RESUMING: "resume",
    T.RESCUING: "rescue",
    T.UNRESCUING: "unrescue",
    T.SHELVING: "shelve",
    T.SHELVING_IMAGE_PENDING_UPLOAD: "shelve",
    T.SHELVING_IMAGE_UPLOADING: "shelve",
    T.SHELVING_OFFLOADING: "shelve_offload",
    T.UNSHELVING: "unshelve",
    T.RESIZE_REVERTING: "revert_resize",
}

CLEARED: frozenset[T] = frozenset(
    SNAPSHOT_TASKS | {T.IMAGE_BACKUP, T.RESIZE_PREP, T.MIGRATING, T.UPDATING_PASSWORD,
                      T.RESIZE_CONFIRMING}
)
ROLLED_BACK: frozenset[T] = frozenset({T.RESIZE_MIGRATING, T.RESIZE_MIGRATED, T.RESIZE_FINISH})
ERRORED: frozenset[T] = frozenset(BUILD_TASKS | REBUILD_TASKS)


def plan_for(vm: V, task: Task, confirming: bool = False) -> Plan:
    """The recovery decision for an instance found in (vm, task) at start-up.

    ``confirming`` is true when its resize migration was left ``confirming``
    (confirmResize keeps task_state None, so only the migration tells).
    """
    if task is None:
        if vm is V.BUILDING:
            return Plan(Recovery.ERROR)
        return Plan(Recovery.RERUN, "confirm_resize") if confirming else Plan(Recovery.NOTHING)
    if vm is V.SHELVED_OFFLOADED and task is T.SPAWNING:
        return Plan(Recovery.RERUN, "unshelve")  # unshelve's spawn step
    if vm is V.SHELVED and task is T.POWERING_ON:
        return Plan(Recovery.RERUN, "unshelve")  # unshelve's start step
    if task in ERRORED or vm is V.BUILDING:
        return Plan(Recovery.ERROR)
    if task in ROLLED_BACK:
        return Plan(Recovery.ROLLBACK_RESIZE)
    if task in CLEARED:
        return Plan(Recovery.CLEAR)
    return Plan(Recovery.RERUN, RERUN_BY_TASK[task])
