"""Generates the README's tables and state diagram from the code.

``python -m novad.docs`` rewrites the generated blocks of README.md (between
``<!-- BEGIN GENERATED: name -->`` and ``<!-- END GENERATED: name -->``);
``tests/test_docs.py`` fails when the README is out of date.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from novad import config
from novad.api import microversion
from novad.states.diagram import mermaid
from novad.states.enums import ALL_TASKS, VmState
from novad.states.recovery import plan_for
from novad.states.table import ACTIONS, KEEP, ActionSpec, Final


def _states(values: object) -> str:
    if values is None:
        return "any"
    names = sorted("None" if v is None else str(getattr(v, "value", v)) for v in values)  # type: ignore[attr-defined]
    return ", ".join(names) if len(names) < 8 else f"{len(names)} states (see code)"


def _final(spec: ActionSpec) -> str:
    if isinstance(spec.final, VmState):
        return spec.final.value
    return {Final.UNCHANGED: "unchanged", Final.OLD_VM_STATE: "old_vm_state (default active)",
            Final.BY_POWER: "stopped if shut down, else active",
            Final.STOPPED_STAYS_STOPPED: "stopped if it was stopped, else active",
            Final.REQUESTED: "the requested state",
            Final.SHELVED_OR_OFFLOADED: "shelved; shelved_offloaded if offloaded at once",
            }[spec.final]


def action_table() -> str:
    """The action table as Markdown."""
    rows = ["| action | API | vm_state | task_state | launched | lock | host | sets task "
            "| steps | final | on failure |", "|" + "---|" * 11]
    for s in ACTIONS:
        sets = "unchanged" if s.sets_task == KEEP else (s.sets_task or "None")
        rows.append(
            f"| {s.name} | {s.api_name or '(internal)'} | {_states(s.vm_states)} | "
            f"{_states(s.task_states)} | {'yes' if s.must_have_launched else 'no'} | "
            f"{'yes' if s.check_lock else 'no'} | {s.host_check.value} | {sets} | "
            f"{' → '.join(t.value for t in s.steps) or '–'} | {_final(s)} | "
            f"{s.on_failure.value} |")
    return "\n".join(rows)


def recovery_table() -> str:
    """What start-up recovery does for each task_state (vm_state active unless noted)."""
    rows = ["| task_state | recovery | action re-run |", "|---|---|---|"]
    for task in ALL_TASKS[1:]:
        plan = plan_for(VmState.ACTIVE, task)
        rows.append(f"| {task} | {plan.kind.value} | {plan.action or '–'} |")
    rows.append("| None with vm_state building | error | – |")
    rows.append("| None with a resize migration left `confirming` | rerun | confirm_resize |")
    return "\n".join(rows)


def config_table() -> str:
    """Every configuration option with its default."""
    rows = ["| section | option | default | meaning |", "|---|---|---|---|"]
    for section, name, default, doc in config.describe():
        rows.append(f"| [{section}] | `{name}` | `{default!r}` | {doc} |")
    return "\n".join(rows)


BLOCKS = {
    "state-diagram": lambda: f"```mermaid\n{mermaid()}\n```",
    "action-table": action_table,
    "recovery-table": recovery_table,
    "microversion-table": microversion.table,
}


def render(text: str) -> str:
    """``text`` with every generated block brought up to date."""
    for name, make in BLOCKS.items():
        pattern = re.compile(rf"(<!-- BEGIN GENERATED: {name} -->\n).*?(<!-- END GENERATED: {name} -->)",
                             re.S)
        body = make()
        text = pattern.sub(lambda m: m.group(1) + body + "\n" + m.group(2), text)
    return text


def main() -> int:
    """Rewrite README.md in place; exit 0."""
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "README.md")
    path.write_text(render(path.read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
