"""Fixtures of the console tests (the harness itself is in :mod:`console_harness`)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from console_harness import Harness, HarnessFactory, open_harness
from console_helpers import QEMU, VncServer, start_vnc_server


@pytest.fixture
def make_harness(tmp_path: Path) -> HarnessFactory:
    """``async with make_harness(consoleauth={...}) as h``: a harness with extra config."""
    counter = iter(range(1000))

    def factory(**sections: dict[str, Any]) -> contextlib.AbstractAsyncContextManager[Harness]:
        return open_harness(tmp_path / f"state{next(counter)}", **sections)
    return factory


@pytest.fixture
async def harness(make_harness: HarnessFactory) -> AsyncIterator[Harness]:
    """A harness on the default configuration."""
    async with make_harness() as h:
        yield h


def _need_qemu() -> None:
    if QEMU is None:
        pytest.skip("qemu-system-x86_64 is not installed (scripts/setup installs it)")


@pytest.fixture(scope="module")
def vnc() -> Iterator[VncServer]:
    """A real RFB 3.8 server (QEMU, security type None), shared by a module."""
    _need_qemu()
    server = start_vnc_server()
    yield server
    server.stop()


@pytest.fixture
def vnc_factory() -> Iterator[Callable[..., VncServer]]:
    """Start more VNC servers (``password=``, ``vga=``); all stopped at the end."""
    _need_qemu()
    started: list[VncServer] = []

    def start(**kwargs: Any) -> VncServer:
        server = start_vnc_server(**kwargs)
        started.append(server)
        return server
    yield start
    for server in started:
        server.stop()
