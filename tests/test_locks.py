"""novad.locks.KeyedLocks: one lock per key, gone once nobody uses it."""

from __future__ import annotations

import asyncio

import pytest

from novad.locks import KeyedLocks


async def test_one_holder_per_key_and_keys_are_independent() -> None:
    locks = KeyedLocks()
    inside: dict[str, int] = {"a": 0, "b": 0}
    most: dict[str, int] = {"a": 0, "b": 0}

    async def work(key: str) -> None:
        async with locks.hold(key):
            inside[key] += 1
            most[key] = max(most[key], inside[key])
            await asyncio.sleep(0)
            inside[key] -= 1

    a_held = asyncio.Event()
    b_entered = asyncio.Event()

    async def hold_a() -> None:
        async with locks.hold("a"):
            a_held.set()
            await b_entered.wait()  # "b" is free while "a" is held

    async def enter_b() -> None:
        await a_held.wait()
        async with locks.hold("b"):
            b_entered.set()

    await asyncio.gather(hold_a(), enter_b(), *(work(k) for k in "abab" * 10))
    assert most == {"a": 1, "b": 1}
    assert len(locks) == 0


async def test_entries_go_after_errors_and_cancelled_waiters() -> None:
    locks = KeyedLocks()
    with pytest.raises(RuntimeError):
        async with locks.hold("x"):
            raise RuntimeError("boom")
    assert not locks.held("x")

    release = asyncio.Event()

    async def holder() -> None:
        async with locks.hold("y"):
            await release.wait()

    first = asyncio.create_task(holder())
    await asyncio.sleep(0)
    waiter = asyncio.create_task(holder())
    await asyncio.sleep(0)
    assert locks.held("y")
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert locks.held("y")  # the first holder still has it
    release.set()
    await first
    assert len(locks) == 0
