"""The daemon's log: one JSON line per event, without library chatter."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from novad.logging import configure_logging
from novad.states.enums import VmState
from novad.states.machine import Lifecycle, spec


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Put the process's logging back as it was after the test configured it."""
    root, chatter = logging.getLogger(), logging.getLogger("transitions")
    handlers, level, chatter_level = list(root.handlers), root.level, chatter.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    chatter.setLevel(chatter_level)
    structlog.reset_defaults()


def daemon_lines(capfd: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """The JSON lines the daemon's configuration wrote to stderr."""
    return [json.loads(line) for line in capfd.readouterr().err.splitlines()]


@pytest.mark.usefixtures("restore_logging")
def test_lifecycle_verdicts_leave_no_transitions_lines(capfd: pytest.CaptureFixture[str]
                                                       ) -> None:
    configure_logging("json", logging.INFO)  # here: the test's stderr is captured now
    lifecycle = Lifecycle()
    assert lifecycle.check_end(spec("boot"), VmState.BUILDING, VmState.ACTIVE)
    assert not lifecycle.check_end(spec("boot"), VmState.BUILDING, VmState.SHELVED)
    structlog.get_logger("novad.compute").info("action finished", action="boot")
    lines = daemon_lines(capfd)
    assert [(line["logger"], line["event"]) for line in lines] == [
        ("novad.compute", "action finished")]


@pytest.mark.usefixtures("restore_logging")
def test_transitions_warnings_still_reach_the_log(capfd: pytest.CaptureFixture[str]) -> None:
    configure_logging("json", logging.INFO)
    logging.getLogger("transitions.core").warning("a callback misbehaved")
    lines = daemon_lines(capfd)
    assert [(line["logger"], line["level"], line["event"]) for line in lines] == [
        ("transitions.core", "warning", "a callback misbehaved")]
