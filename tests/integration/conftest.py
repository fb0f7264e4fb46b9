"""Fixtures of the integration tier (real libvirtd, real QEMU guests).

Every test here is marked ``integration``.  They skip, saying why, only
when ``qemu:///system`` is unreachable; ``scripts/test`` starts libvirtd
first (``scripts/libvirtd-up``), so in CI they run.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from integration_helpers import Daemon, Libvirt, qemu, start_daemon, teardown_daemon

__all__ = ["qemu"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark this folder's tests ``integration``."""
    for item in items:
        if "tests/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="module")
def novad(qemu: Libvirt, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """A real novad on qemu:///system for one test module."""
    d = start_daemon(tmp_path_factory.mktemp("novad"))
    try:
        yield d
    finally:
        teardown_daemon(d, qemu)
