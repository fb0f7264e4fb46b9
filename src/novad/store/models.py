"""Rows of the store, as typed records shared by every layer above it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from novad.states.enums import PowerState, Task, TaskState, VmState


@dataclass(frozen=True)
class Flavor:
    """A flavor row (Nova's flavor, ``flavorid`` as ``id``)."""

    id: str
    name: str
    vcpus: int
    memory_mb: int
    root_gb: int
    ephemeral_gb: int = 0
    swap: int = 0
    rxtx_factor: float = 1.0
    is_public: bool = True
    disabled: bool = False
    description: str | None = None
    extra_specs: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict, as embedded in an instance row."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Flavor:
        """Inverse of :meth:`to_dict`."""
        return cls(**data)


@dataclass(frozen=True)
class Instance:
    """One instance row.  ``flavor`` is a copy taken at boot (as Nova keeps
    ``instance.flavor``), so deleting a flavor never changes a server."""

    uuid: str
    name: str
    project_id: str
    user_id: str
    host: str
    flavor: Flavor
    image_ref: str
    vm_state: VmState
    task_state: Task
    power_state: PowerState = PowerState.NOSTATE
    locked: bool = False
    locked_by: str | None = None  # "owner" | "admin"
    locked_reason: str | None = None
    launched_at: str | None = None  # ISO-8601 UTC
    terminated_at: str | None = None
    created_at: str = ""
    updated_at: str | None = None
    deleted_at: str | None = None
    deleted: bool = False
    progress: int = 0
    key_name: str | None = None
    key_data: str | None = None
    user_data: str | None = None  # base64 as received
    config_drive: bool = False
    availability_zone: str = "nova"
    metadata: dict[str, str] = field(default_factory=dict)
    system_metadata: dict[str, str] = field(default_factory=dict)
    reservation_id: str = ""
    networks: Any = None  # the request's ``networks`` value, kept for the view
    generation: int = 1
    """Raised each time the instance changes node (migrate, resize, evacuate):
    a node holding a copy of a lower generation holds a stale copy."""
    description: str | None = None
    """The server's free-text description (microversion 2.19); None: never set."""
    tags: list[str] = field(default_factory=list)
    """The server's tags (microversion 2.26), in the order they were added."""
    access_ip_v4: str | None = None
    """``accessIPv4``: an address the user says the server is reached at (set on
    create, update and rebuild; novad only keeps it), canonical; None: unset."""
    access_ip_v6: str | None = None
    """``accessIPv6``, as ``access_ip_v4``."""

    def replace(self, **changes: Any) -> Instance:
        """A copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class Expect:
    """The compare-and-swap precondition of a state write.

    ``vm_states``/``task_states`` of None mean "not checked".  A write whose
    row does not match raises :class:`novad.errors.UnexpectedTaskState`.
    """

    vm_states: frozenset[VmState] | None = None
    task_states: frozenset[Task] | None = None

    @classmethod
    def task(cls, *tasks: Task) -> Expect:
        """Expect one of ``tasks`` (``None`` included if given)."""
        return cls(task_states=frozenset(tasks))

    def matches(self, vm: VmState, task: Task) -> bool:
        """Whether a row in (vm, task) satisfies this precondition."""
        return (self.vm_states is None or vm in self.vm_states) and (
            self.task_states is None or task in self.task_states
        )


ANY = Expect()
NO_TASK = Expect.task(None)


@dataclass(frozen=True)
class ActionStart:
    """An instance action to record (Nova's ``instance_actions`` row)."""

    action: str  # e.g. "pause", "reboot", "createImage"
    request_id: str
    user_id: str
    project_id: str


@dataclass(frozen=True)
class EventStart:
    """An action event to open, e.g. ``compute_pause_instance``."""

    request_id: str
    event: str
    host: str


@dataclass(frozen=True)
class EventFinish:
    """Close an open event: result ``Success`` or ``Error``."""

    request_id: str
    event: str
    result: str
    traceback: str | None = None
    details: str | None = None


@dataclass(frozen=True)
class Fault:
    """An instance fault (shown as ``fault`` when the server is in ERROR)."""

    code: int
    message: str
    details: str = ""
    host: str = ""


@dataclass(frozen=True)
class ActionRecord:
    """An instance action as read back, with its events."""

    action: str
    instance_uuid: str
    request_id: str
    user_id: str
    project_id: str
    start_time: str
    finish_time: str | None
    message: str | None
    updated_at: str | None
    events: tuple[EventRecord, ...] = ()


@dataclass(frozen=True)
class EventRecord:
    """An action event as read back."""

    event: str
    start_time: str
    finish_time: str | None
    result: str | None
    traceback: str | None
    host: str
    details: str | None


@dataclass(frozen=True)
class Migration:
    """A resize, cold/live migration or evacuation record."""

    id: int
    instance_uuid: str
    migration_type: str  # "resize" | "migration" | "live-migration" | "evacuation"
    status: str
    source_compute: str
    dest_compute: str | None
    old_flavor_id: str | None
    new_flavor_id: str | None
    created_at: str
    updated_at: str | None
    uuid: str = ""
    user_id: str | None = None
    """Who asked for the move (2.80); None for records older than that."""
    project_id: str | None = None


@dataclass(frozen=True)
class FaultRecord:
    """A fault as read back."""

    code: int
    message: str
    details: str
    host: str
    created_at: str


TASK_VALUES: dict[str, TaskState] = {t.value: t for t in TaskState}


def task_from_db(value: str | None) -> Task:
    """Decode a stored task_state."""
    return None if value is None else TASK_VALUES[value]


@dataclass(frozen=True)
class Keypair:
    """An SSH (or x509) key pair registered by a user (Nova's ``key_pairs``)."""

    name: str
    user_id: str
    type: str  # "ssh" | "x509"
    public_key: str
    fingerprint: str
    created_at: str


@dataclass(frozen=True)
class ServerGroup:
    """A server group (Nova's ``instance_groups``) with its members' uuids,
    sorted; members may live on any node."""

    id: str
    name: str
    project_id: str
    user_id: str
    policy: str  # "affinity" | "anti-affinity" | "soft-affinity" | "soft-anti-affinity"
    rules: dict[str, int]
    created_at: str
    members: tuple[str, ...] = ()


@dataclass(frozen=True)
class ServiceRow:
    """A service record: whether ``binary`` on ``host`` takes new work, and
    whether an admin forced it down (it then counts as down, as in Nova)."""

    host: str
    binary: str
    disabled: bool
    disabled_reason: str | None
    updated_at: str
    forced_down: bool = False
