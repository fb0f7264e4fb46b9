"""States, the action table and the lifecycle machine built from it."""

from novad.states.enums import PowerState, Task, TaskState, VmState
from novad.states.machine import Lifecycle, Subject
from novad.states.status import status_of
from novad.states.table import ACTIONS, BY_NAME, ActionSpec, Final, HostCheck, OnFailure

__all__ = ["ACTIONS", "BY_NAME", "ActionSpec", "Final", "HostCheck", "Lifecycle", "OnFailure",
           "PowerState", "Subject", "Task", "TaskState", "VmState", "status_of"]
