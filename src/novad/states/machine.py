"""The lifecycle state machine, built with ``transitions`` from the action table.

The machine's states are the vm_states.  Each row of
:data:`novad.states.table.ACTIONS` becomes three triggers:

* ``request_<action>``: an internal transition (vm_state unchanged) from the
  row's source vm_states whose conditions are the row's guards (task_state,
  launched_at, host).  A failed guard raises a typed
  :class:`novad.errors.InstanceInvalidState`; a vm_state that is not a
  source is refused by the machine itself.
* ``finish_<action>``: from the sources to each vm_state the row may end in.
* ``fail_<action>``: from the sources to each vm_state a failure may leave.

The compute service asks the machine before every write, so no state change
the table does not declare can reach the store.  Triggers are evaluated
synchronously on one cursor model; asyncio never interleaves them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from transitions import EventData, Machine, MachineError

from novad.errors import (
    ComputeServiceInUse,
    Forbidden,
    InstanceInvalidState,
    InstanceIsLocked,
    InstanceNotReady,
    ServiceUnavailableForInstance,
)
from novad.states.enums import Task, VmState
from novad.states.table import (
    ACTIONS,
    BY_NAME,
    ActionSpec,
    HostCheck,
    failure_targets,
    finish_targets,
)


@dataclass
class Subject:
    """What a guard looks at: the instance's states and flags, and the caller."""

    instance_id: str
    vm_state: VmState
    task_state: Task
    launched: bool
    locked: bool
    host: str
    is_admin: bool
    host_up: bool = True


class _Cursor:
    """The single model the machine moves; set to an instance before a trigger."""

    state: str
    trigger: Any


def _sources(spec: ActionSpec) -> Any:
    """The row's source vm_states as the machine names them (``*`` = any)."""
    if spec.vm_states is None:
        return "*"
    return sorted(v.value for v in spec.vm_states)


def _to(target: VmState) -> Any:
    def condition(event: EventData) -> bool:
        return bool(event.kwargs["target"] is target)

    return condition


def _same(event: EventData) -> bool:
    """Condition of reflexive endings: the target is where the action started."""
    return bool(event.kwargs["target"].value == event.state.name)


def _guard(event: EventData) -> bool:
    """Conditions of ``request_*``: task_state, launched_at, host, in Nova's order."""
    spec: ActionSpec = event.kwargs["spec"]
    subject: Subject = event.kwargs["subject"]
    if spec.task_states is not None and subject.task_state not in spec.task_states:
        raise InstanceInvalidState(spec.api_name, subject.instance_id, "task_state",
                                   subject.task_state)
    if spec.must_have_launched and not subject.launched:
        raise InstanceInvalidState(spec.api_name, subject.instance_id, "launched_at", None)
    _check_host(spec, subject)
    return True


def _check_host(spec: ActionSpec, subject: Subject) -> None:
    if spec.host_check is HostCheck.NONE:
        return
    if not subject.host:
        raise InstanceNotReady(subject.instance_id)
    if spec.host_check is HostCheck.UP and not subject.host_up:
        raise ServiceUnavailableForInstance(f"Compute service of {subject.host} is unavailable at this time.")
    if spec.host_check is HostCheck.DOWN and subject.host_up:
        raise ComputeServiceInUse(subject.host)


def build_machine(machine_cls: type[Machine] = Machine, *, diagram: bool = False,
                  **kwargs: Any) -> tuple[Machine, Any]:
    """The machine and its cursor model; ``machine_cls`` may be a GraphMachine.

    With ``diagram`` only the successful endings that change vm_state are
    added, which is what the generated picture shows.
    """
    cursor = _Cursor()
    machine = machine_cls(model=cursor, states=[v.value for v in VmState],
                          initial=VmState.ACTIVE.value, auto_transitions=False,
                          send_event=True, **kwargs)
    for spec in ACTIONS:
        src = _sources(spec)
        ends = {"finish": finish_targets(spec)}
        if not diagram:
            machine.add_transition(f"request_{spec.name}", src, None, conditions=[_guard])
            ends["fail"] = failure_targets(spec)
        for kind, (targets, reflexive) in ends.items():
            for target in sorted(targets):
                machine.add_transition(f"{kind}_{spec.name}", src, target.value,
                                       conditions=[_to(target)])
            if reflexive and not diagram:
                machine.add_transition(f"{kind}_{spec.name}", src, "=", conditions=[_same])
    return machine, cursor


class Lifecycle:
    """Asks the machine whether an action may start, finish or fail."""

    def __init__(self) -> None:
        self._machine, self._cursor = build_machine()
        # The machine is fixed once built, so its verdicts are memoised:
        # running ``transitions``' trigger machinery on every request and
        # every finish was a fifth of the daemon's time under load.  Only
        # admitted requests are remembered (a refusal's error names the
        # instance); ends are remembered either way.
        self._admitted: set[tuple[object, ...]] = set()
        self._ends: dict[tuple[str, VmState, VmState, bool], bool] = {}

    def check_request(self, spec: ActionSpec, subject: Subject) -> None:
        """Raise the typed error of the first guard that refuses ``spec``.

        Order as Nova's decorators: admin-only, lock, vm_state, task_state,
        launched_at, host.
        """
        if spec.admin_only and not subject.is_admin:
            raise Forbidden(f"Policy doesn't allow os_compute_api:{spec.api_name} to be performed.")
        if spec.check_lock and subject.locked and not subject.is_admin:
            raise InstanceIsLocked(spec.api_name, subject.instance_id)
        key = (spec.name, subject.vm_state, subject.task_state, subject.launched,
               bool(subject.host), subject.host_up)
        if key in self._admitted:
            return
        self._machine.set_state(subject.vm_state.value, model=self._cursor)
        try:
            self._cursor.trigger(f"request_{spec.name}", spec=spec, subject=subject)
        except MachineError:
            raise InstanceInvalidState(spec.api_name, subject.instance_id, "vm_state",
                                       subject.vm_state) from None
        self._admitted.add(key)

    def check_end(self, spec: ActionSpec, source: VmState, target: VmState,
                  failed: bool = False) -> bool:
        """Whether the table lets ``spec`` end in ``target`` from ``source``."""
        key = (spec.name, source, target, failed)
        verdict = self._ends.get(key)
        if verdict is None:
            self._machine.set_state(source.value, model=self._cursor)
            kind = "fail" if failed else "finish"
            try:
                verdict = bool(self._cursor.trigger(f"{kind}_{spec.name}", target=target))
            except MachineError:
                verdict = False
            self._ends[key] = verdict
        return verdict


def spec(name: str) -> ActionSpec:
    """A row by table name (KeyError for unknown names)."""
    return BY_NAME[name]
