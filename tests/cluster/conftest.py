"""Fixtures of the cluster tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest_asyncio


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """One HTTP client per module, for the multi-process tests' requests."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200)) as s:
        yield s
