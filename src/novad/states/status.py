"""The API ``status`` derived from (vm_state, task_state): Nova's status map."""

from __future__ import annotations

from novad.states.enums import (
    REBUILD_TASKS,
    RESIZING_TASKS,
    Task,
    TaskState as T,
    VmState as V,
)

_REBOOT = {T.REBOOTING: "REBOOT", T.REBOOT_PENDING: "REBOOT", T.REBOOT_STARTED: "REBOOT",
           T.REBOOTING_HARD: "HARD_REBOOT", T.REBOOT_PENDING_HARD: "HARD_REBOOT",
           T.REBOOT_STARTED_HARD: "HARD_REBOOT"}
_REBUILD = {t: "REBUILD" for t in REBUILD_TASKS}
_RESIZE = {t: "RESIZE" for t in RESIZING_TASKS}

STATUS_MAP: dict[V, tuple[str, dict[T, str]]] = {
    V.ACTIVE: ("ACTIVE", {**_REBOOT, **_REBUILD, **_RESIZE, T.UPDATING_PASSWORD: "PASSWORD",
                          T.MIGRATING: "MIGRATING"}),
    V.BUILDING: ("BUILD", {}),
    V.STOPPED: ("SHUTOFF", {**_RESIZE, **_REBUILD}),
    V.RESIZED: ("VERIFY_RESIZE", {T.RESIZE_REVERTING: "REVERT_RESIZE"}),
    V.PAUSED: ("PAUSED", {T.MIGRATING: "MIGRATING"}),
    V.SUSPENDED: ("SUSPENDED", {}),
    V.RESCUED: ("RESCUE", {}),
    V.ERROR: ("ERROR", dict(_REBUILD)),
    V.DELETED: ("DELETED", {}),
    V.SOFT_DELETED: ("SOFT_DELETED", {}),
    V.SHELVED: ("SHELVED", {}),
    V.SHELVED_OFFLOADED: ("SHELVED_OFFLOADED", {}),
}
"""vm_state → (default status, task_state overrides)."""

PROGRESS_STATUSES = frozenset({"ACTIVE", "BUILD", "REBUILD", "RESIZE", "VERIFY_RESIZE",
                               "MIGRATING"})


def status_of(vm: V, task: Task, deleted: bool = False) -> str:
    """The API status; ``DELETED`` for any deleted row, ``UNKNOWN`` off the map."""
    if deleted:
        return "DELETED"
    row = STATUS_MAP.get(vm)
    if row is None:
        return "UNKNOWN"
    default, overrides = row
    return overrides.get(task, default) if task is not None else default


def states_for_status(status: str) -> list[tuple[V, Task | str]]:
    """The (vm_state, task_state) pairs that produce ``status`` (case-insensitive).

    A task of ``"*"`` means "any task_state not overridden in that row".
    """
    wanted = status.upper()
    pairs: list[tuple[V, Task | str]] = []
    for vm, (default, overrides) in STATUS_MAP.items():
        pairs.extend((vm, task) for task, name in overrides.items() if name == wanted)
        if default == wanted:
            pairs.append((vm, "*"))
    return pairs
