"""vm_state, task_state and power_state with Nova's stored values."""

from __future__ import annotations

import enum


class VmState(enum.StrEnum):
    """The stable, user-facing state of an instance."""

    ACTIVE = "active"
    BUILDING = "building"
    PAUSED = "paused"
    SUSPENDED = "suspended"
    STOPPED = "stopped"
    RESCUED = "rescued"
    RESIZED = "resized"
    SOFT_DELETED = "soft-delete"
    DELETED = "deleted"
    ERROR = "error"
    SHELVED = "shelved"
    SHELVED_OFFLOADED = "shelved_offloaded"


class TaskState(enum.StrEnum):
    """What is in progress; ``None`` (not a member) means no task."""

    SCHEDULING = "scheduling"
    BLOCK_DEVICE_MAPPING = "block_device_mapping"
    NETWORKING = "networking"
    SPAWNING = "spawning"
    IMAGE_SNAPSHOT = "image_snapshot"
    IMAGE_SNAPSHOT_PENDING = "image_snapshot_pending"
    IMAGE_PENDING_UPLOAD = "image_pending_upload"
    IMAGE_UPLOADING = "image_uploading"
    IMAGE_BACKUP = "image_backup"
    UPDATING_PASSWORD = "updating_password"
    RESIZE_PREP = "resize_prep"
    RESIZE_MIGRATING = "resize_migrating"
    RESIZE_MIGRATED = "resize_migrated"
    RESIZE_FINISH = "resize_finish"
    RESIZE_REVERTING = "resize_reverting"
    RESIZE_CONFIRMING = "resize_confirming"
    REBOOTING = "rebooting"
    REBOOT_PENDING = "reboot_pending"
    REBOOT_STARTED = "reboot_started"
    REBOOTING_HARD = "rebooting_hard"
    REBOOT_PENDING_HARD = "reboot_pending_hard"
    REBOOT_STARTED_HARD = "reboot_started_hard"
    PAUSING = "pausing"
    UNPAUSING = "unpausing"
    SUSPENDING = "suspending"
    RESUMING = "resuming"
    POWERING_OFF = "powering-off"
    POWERING_ON = "powering-on"
    RESCUING = "rescuing"
    UNRESCUING = "unrescuing"
    REBUILDING = "rebuilding"
    REBUILD_BLOCK_DEVICE_MAPPING = "rebuild_block_device_mapping"
    REBUILD_SPAWNING = "rebuild_spawning"
    MIGRATING = "migrating"
    DELETING = "deleting"
    SOFT_DELETING = "soft-deleting"
    RESTORING = "restoring"
    SHELVING = "shelving"
    SHELVING_IMAGE_PENDING_UPLOAD = "shelving_image_pending_upload"
    SHELVING_IMAGE_UPLOADING = "shelving_image_uploading"
    SHELVING_OFFLOADING = "shelving_offloading"
    UNSHELVING = "unshelving"


class PowerState(enum.IntEnum):
    """What the hypervisor reports; stored and served as Nova's integers."""

    NOSTATE = 0
    RUNNING = 1
    PAUSED = 3
    SHUTDOWN = 4
    CRASHED = 6
    SUSPENDED = 7


Task = TaskState | None
"""A task_state value as stored: a member or ``None``."""

ALL_TASKS: tuple[Task, ...] = (None, *TaskState)

ALLOW_SOFT_REBOOT = frozenset({VmState.ACTIVE})
ALLOW_HARD_REBOOT = frozenset(
    {VmState.ACTIVE, VmState.STOPPED, VmState.PAUSED, VmState.SUSPENDED, VmState.ERROR}
)
ALLOW_TRIGGER_CRASH_DUMP = frozenset(
    {VmState.ACTIVE, VmState.PAUSED, VmState.RESCUED, VmState.RESIZED, VmState.ERROR}
)
ALLOW_REBOOT_TASKS: frozenset[Task] = frozenset(
    {
        None,
        TaskState.REBOOTING,
        TaskState.REBOOT_PENDING,
        TaskState.REBOOT_STARTED,
        TaskState.RESUMING,
        TaskState.REBOOTING_HARD,
        TaskState.UNPAUSING,
        TaskState.PAUSING,
        TaskState.SUSPENDING,
    }
)
SOFT_REBOOT_TASKS = frozenset(
    {TaskState.REBOOTING, TaskState.REBOOT_PENDING, TaskState.REBOOT_STARTED}
)
HARD_REBOOT_TASKS = frozenset(
    {TaskState.REBOOTING_HARD, TaskState.REBOOT_PENDING_HARD, TaskState.REBOOT_STARTED_HARD}
)
RESIZING_TASKS = frozenset(
    {
        TaskState.RESIZE_PREP,
        TaskState.RESIZE_MIGRATING,
        TaskState.RESIZE_MIGRATED,
        TaskState.RESIZE_FINISH,
    }
)
REBUILD_TASKS = frozenset(
    {TaskState.REBUILDING, TaskState.REBUILD_BLOCK_DEVICE_MAPPING, TaskState.REBUILD_SPAWNING}
)
BUILD_TASKS = frozenset(
    {
        TaskState.SCHEDULING,
        TaskState.BLOCK_DEVICE_MAPPING,
        TaskState.NETWORKING,
        TaskState.SPAWNING,
    }
)
SNAPSHOT_TASKS = frozenset(
    {
        TaskState.IMAGE_SNAPSHOT,
        TaskState.IMAGE_SNAPSHOT_PENDING,
        TaskState.IMAGE_PENDING_UPLOAD,
        TaskState.IMAGE_UPLOADING,
    }
)
