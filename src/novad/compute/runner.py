"""Runs the work of an accepted action: one shape for every action.

An accepted action is an :class:`Op`.  Its operation function (in
:mod:`novad.compute.operations`) walks the row's task_state steps with
compare-and-swap writes (:meth:`Runner.step`), calls the driver, and returns
an :class:`Outcome`.  The runner then checks the final vm_state against the
state machine and writes it with the event's end in one transaction — or,
when the work failed, applies the row's failure policy (§2.2 "Failure").
"""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from novad.context import RequestContext
from novad.drivers.base import Driver
from novad.errors import (
    InstanceFaultRollback,
    NotImplementedByDriver,
    NovadError,
    NoValidHost,
    UnexpectedTaskState,
)
from novad.locks import KeyedLocks
from novad.states.enums import PowerState, Task, VmState
from novad.states.machine import Lifecycle
from novad.states.table import ActionSpec, Final, OnFailure
from novad.store.db import utcnow
from novad.store.models import EventFinish, Expect, Fault, Instance
from novad.store import Store

log = structlog.get_logger("novad.compute")


@dataclass
class Op:
    """One accepted action while its work runs."""

    spec: ActionSpec
    instance: Instance
    ctx: RequestContext
    params: dict[str, Any]
    origin_vm: VmState
    task: Task
    request_id: str
    touched_guest: bool = False

    @property
    def uuid(self) -> str:
        """The instance id."""
        return self.instance.uuid


@dataclass
class Outcome:
    """What an operation ends with: the final vm_state and other field changes.

    ``vm_state=None`` means the row's ``final`` rule decides.
    """

    vm_state: VmState | None = None
    changes: dict[str, Any] = field(default_factory=dict)
    refresh_power: bool = True
    released: bool = False
    """The instance was handed to another node, which finishes the action
    (its row, action and event went along): nothing more is written here."""


OperationFn = Callable[["Runner", Op], Awaitable[Outcome]]
FinishHook = Callable[[str, str], Awaitable[None]]
"""Called with (action, instance id) after an action's successful final write."""


class Runner:
    """Executes operations with the table's steps, finals and failure policies."""

    def __init__(self, store: Store, driver: Driver, lifecycle: Lifecycle, host: str,
                 operations: dict[str, OperationFn], on_finish: FinishHook | None = None
                 ) -> None:
        self.store = store
        self.on_finish = on_finish
        self.driver = driver
        self.lifecycle = lifecycle
        self.host = host
        self.operations = operations
        self.working = KeyedLocks()
        """Held while an operation touches an instance's guest."""

    async def step(self, op: Op, task: Task, **changes: Any) -> None:
        """Move to the next task_state, expecting the current one (CAS)."""
        op.instance = await self.store.write(op.uuid, Expect.task(op.task),
                                             {"task_state": task, **changes})
        op.task = task

    async def save(self, op: Op, **changes: Any) -> None:
        """Write non-task changes, still guarded by the current task_state."""
        op.instance = await self.store.write(op.uuid, Expect.task(op.task), changes)

    async def run(self, op: Op) -> BaseException | None:
        """Run ``op`` to its end under the instance's work lock.  Returns the
        failure its policy was applied to (None: it succeeded), for the
        actions whose caller waits for the outcome (Nova's RPC calls)."""
        bound = log.bind(instance_id=op.uuid, action=op.spec.name, request_id=op.request_id)
        async with self.working.hold(op.uuid):
            try:
                outcome = await self.operations[op.spec.name](self, op)
                if outcome.released:
                    bound.info("action handed to another node")
                    return None
                await self._finish(op, outcome)
                bound.info("action finished", vm_state=str(op.instance.vm_state))
                return None
            except UnexpectedTaskState as exc:
                # Preempted (e.g. by delete): leave the task_state to the winner.
                bound.info("action preempted", actual=str(exc.actual))
                await self._close_event(op, "Error", f"Preempted: {exc.message}")
                return exc
            except NoValidHost as exc:
                # Nova: a build nowhere to go is ERROR; a move keeps its vm_state.
                bound.info("no valid host")
                await self._fail(op, exc, OnFailure.ERROR if op.spec.name == "boot"
                                 else OnFailure.REVERT_TASK)
                return exc
            except asyncio.CancelledError:
                bound.warning("action interrupted by shutdown; recovery finishes it")
                raise
            except Exception as exc:  # the failure policy decides; nothing escapes
                bound.exception("action failed")
                await self._fail(op, exc, op.spec.on_failure)
                return exc

    def final_vm(self, op: Op, outcome: Outcome, power: PowerState) -> VmState:
        """Resolve the row's final rule for this instance."""
        if outcome.vm_state is not None:
            return outcome.vm_state
        final = op.spec.final
        if isinstance(final, VmState):
            return final
        if final is Final.UNCHANGED:
            return op.origin_vm
        if final is Final.OLD_VM_STATE:
            old = op.instance.system_metadata.get("old_vm_state", VmState.ACTIVE.value)
            return VmState(old)
        if final is Final.BY_POWER:
            return VmState.STOPPED if power is PowerState.SHUTDOWN else VmState.ACTIVE
        if final is Final.STOPPED_STAYS_STOPPED:
            return VmState.STOPPED if op.origin_vm is VmState.STOPPED else VmState.ACTIVE
        if final is Final.SHELVED_OR_OFFLOADED:
            return VmState.SHELVED  # the operation says SHELVED_OFFLOADED when it offloaded
        return VmState(op.params["state"])

    async def _finish(self, op: Op, outcome: Outcome) -> None:
        changes = dict(outcome.changes)
        power = op.instance.power_state
        if outcome.refresh_power and "power_state" not in changes:
            power = await self.driver.get_power_state(op.uuid)
            changes["power_state"] = power
        vm = self.final_vm(op, outcome, PowerState(changes.get("power_state", power)))
        if not self.lifecycle.check_end(op.spec, op.origin_vm, vm):
            raise RuntimeError(f"table forbids {op.spec.name}: {op.origin_vm} -> {vm}")
        changes.setdefault("vm_state", vm)
        changes.setdefault("task_state", None)
        op.instance = await self.store.write(
            op.uuid, Expect.task(op.task), changes,
            event_finish=self._event_end(op, "Success"), finish_action=True)
        await self._notify_finished(op)

    async def _notify_finished(self, op: Op) -> None:
        """The ``on_finish`` hook (console tokens); its failure never fails the action."""
        if self.on_finish is None:
            return
        try:
            await self.on_finish(op.spec.name, op.uuid)
        except Exception:
            log.exception("after-action hook failed", instance_id=op.uuid, action=op.spec.name)

    def _event_end(self, op: Op, result: str, details: str | None = None,
                   tb: str | None = None) -> EventFinish | None:
        if op.spec.event is None:
            return None
        return EventFinish(request_id=op.request_id, event=op.spec.event, result=result,
                           traceback=tb, details=details)

    async def _close_event(self, op: Op, result: str, details: str) -> None:
        event = self._event_end(op, result, details)
        if event is not None:
            await self.store.record_event(op.uuid, event)

    async def _fail(self, op: Op, exc: BaseException, policy: OnFailure) -> None:
        message = exc.message if isinstance(exc, NovadError) else f"{type(exc).__name__}: {exc}"
        code = exc.status if isinstance(exc, NovadError) else 500
        tb = "".join(traceback.format_exception(exc))
        fault = Fault(code=code, message=message[:255], details=tb[-4000:], host=self.host)
        vm = self._failure_vm(op, exc, policy)
        changes: dict[str, Any] = {"task_state": None}
        if vm is not None:
            changes["vm_state"] = vm
        if policy is OnFailure.NONE:
            changes = {}
        try:
            changes["power_state"] = await self.driver.get_power_state(op.uuid)
        except Exception:  # the hypervisor may be what failed; keep the stored value
            pass
        try:
            op.instance = await self.store.write(
                op.uuid, Expect.task(op.task), changes, fault=fault, finish_action=True,
                event_finish=self._event_end(op, "Error", message, tb))
        except UnexpectedTaskState:
            await self._close_event(op, "Error", message)

    def _failure_vm(self, op: Op, exc: BaseException, policy: OnFailure) -> VmState | None:
        if policy in (OnFailure.REVERT_TASK, OnFailure.NONE):
            return None
        if policy is OnFailure.ERROR:
            return VmState.ERROR
        if policy is OnFailure.ROLLBACK_OR_ERROR:
            rollback = isinstance(exc, (NotImplementedByDriver, InstanceFaultRollback))
            return None if rollback or not op.touched_guest else VmState.ERROR
        return VmState.ERROR  # REBOOT: the running-guest case is handled by the operation


def now() -> str:
    """The store's timestamp format."""
    return utcnow()
