"""The end-to-end tier's one fixture: a whole novad per test module.

Module scope keeps the runtime bounded (the daemon starts once per module);
the event loop is module-scoped too, because the daemon's sockets and tasks
belong to the loop that started them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from e2e_helpers import Daemon, daemon


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def novad(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Daemon]:
    """A running novad on a real port with its admin clouds.yaml."""
    async with daemon(tmp_path_factory.mktemp("novad")) as running_daemon:
        yield running_daemon
