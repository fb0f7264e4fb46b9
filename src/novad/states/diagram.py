"""The state diagram, generated from the action table through transitions' graph extension."""

from __future__ import annotations

from transitions.extensions.diagrams import GraphMachine

from novad.states.machine import build_machine


def mermaid() -> str:
    """A Mermaid stateDiagram of vm_states with each action's successful endings.

    Guards and failure edges are in the table (README); drawing them all
    would make the picture unreadable, so only ``finish_*`` edges are drawn.
    """
    _, cursor = build_machine(GraphMachine, diagram=True, graph_engine="mermaid",
                              show_conditions=False, show_state_attributes=False,
                              title="novad instance lifecycle (vm_state)")
    graph = cursor.get_graph().draw(None)
    lines = [ln.replace("finish_", "") for ln in str(graph).splitlines()
             if "Class " not in ln and "classDef" not in ln and "[*]" not in ln]
    return "\n".join(lines)
