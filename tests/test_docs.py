"""The README's diagram and tables are generated from the code and current."""

from __future__ import annotations

from pathlib import Path

from novad.docs import BLOCKS, render

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_generated_blocks_are_current() -> None:
    text = README.read_text()
    for name in BLOCKS:
        assert f"<!-- BEGIN GENERATED: {name} -->" in text, name
    assert render(text) == text, "run: .venv/bin/python -m novad.docs README.md"


def test_diagram_shows_every_vm_state_and_action_ending() -> None:
    diagram = BLOCKS["state-diagram"]()
    for state in ("active", "paused", "suspended", "shelved_offloaded", "resized", "rescued"):
        assert f'state "{state}"' in diagram
    assert "active --> paused: pause" in diagram
    assert "resized --> active: confirm_resize" in diagram


def test_every_config_option_is_documented_in_the_readme() -> None:
    from novad.config import describe
    text = README.read_text()
    for section, name, _default, _doc in describe():
        assert f"`{name}`" in text, f"[{section}] {name} missing from README"
