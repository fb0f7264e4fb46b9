"""Per-key asyncio locks that exist only while they are used."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class KeyedLocks:
    """One :class:`asyncio.Lock` per key (an instance id), kept only while
    a task holds it or waits for it.

    A dictionary that kept every lock it ever made would grow with every
    instance ever deleted and with every made-up id a client sends.
    """

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        """Hold the lock of ``key`` for the body of an ``async with``."""
        lock, users = self._locks.get(key) or (asyncio.Lock(), 0)
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def held(self, key: str) -> bool:
        """Whether a task holds or waits for the lock of ``key``."""
        return key in self._locks

    def __len__(self) -> int:
        """How many keys have a lock now."""
        return len(self._locks)
