"""The asyncio runner over the in-memory transport, on the real event loop
with the ``local()`` timers (a probe every 0.1 s)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable

import pytest

from novad.cluster.members import MemberState
from novad.cluster.membership import BadMessage, GossipConfig, Membership
from novad.cluster.runner import GossipRunner, JoinFailed, JoinRefused
from novad.cluster.transport import MemoryNetwork
from novad.supervisor import Supervisor

LOCAL = GossipConfig.local()
Cluster = tuple[MemoryNetwork, list[GossipRunner]]


def make(net: MemoryNetwork, name: str, address: str | None = None,
         meta: dict[str, object] | None = None) -> GossipRunner:
    address = address or f"{name}:7946"
    now = asyncio.get_running_loop().time()
    membership = Membership(name, address, dict(meta or {}), LOCAL, random.Random(address), now)
    return GossipRunner(membership, net.transport(address))


async def eventually(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        if loop.time() > end:
            return False
        await asyncio.sleep(0.02)
    return True


def view(runner: GossipRunner, name: str) -> MemberState | None:
    member = runner.membership.member(name)
    return None if member is None else member.state


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    net = MemoryNetwork(delay=lambda rng: rng.uniform(0.0005, 0.002), seed=1)
    runners = [make(net, f"r{i}") for i in range(4)]
    for runner in runners:
        await runner.start()
    for runner in runners[1:]:
        assert await runner.join([runners[0].transport.address], timeout=5.0) >= 2
    assert await eventually(lambda: all(r.membership.num_alive() == 4 for r in runners))
    yield net, runners
    for runner in runners:
        await runner.stop()


async def test_a_stopped_member_is_seen_dead_by_the_others(cluster: Cluster) -> None:
    net, runners = cluster
    victim, others = runners[3], runners[:3]
    await victim.stop()
    assert await eventually(lambda: all(view(r, "r3") is MemberState.DEAD for r in others))
    assert all(view(r, o.membership.name) is MemberState.ALIVE for r in others for o in others)
    assert net.sent["r0:7946"] > 0 and net.received["r0:7946"] > 0


async def test_a_graceful_leave_is_seen_as_left(cluster: Cluster) -> None:
    _, runners = cluster
    leaver, others = runners[2], [runners[0], runners[1], runners[3]]
    await leaver.leave(timeout=2.0)
    assert leaver.membership.leave_finished
    await leaver.stop()
    assert await eventually(lambda: all(view(r, "r2") is MemberState.LEFT for r in others))
    await asyncio.sleep(1.0)  # well past a suspicion timeout: still LEFT, never DEAD
    assert all(view(r, "r2") is MemberState.LEFT for r in others)


async def test_meta_updates_spread(cluster: Cluster) -> None:
    _, runners = cluster
    runners[1].update_meta({"resources": {"vcpus": 16}})
    assert await eventually(lambda: all(
        r.membership.member("r1").meta == {"resources": {"vcpus": 16}}  # type: ignore[union-attr]
        for r in runners))


async def test_a_taken_name_is_refused(cluster: Cluster) -> None:
    net, runners = cluster
    impostor = make(net, "r1", address="elsewhere:7946")
    with pytest.raises(JoinRefused) as caught:
        await impostor.join(["r0:7946"], timeout=2.0)
    assert caught.value.reason == "node name 'r1' is taken by r1:7946"
    await impostor.stop()


async def test_a_restart_at_the_same_address_rejoins(cluster: Cluster) -> None:
    net, runners = cluster
    await runners[3].stop()
    reborn = make(net, "r3", meta={"boot": 2})
    assert await reborn.join(["r0:7946"], timeout=2.0) >= 2  # before run(), as the daemon does
    await reborn.start()
    assert await eventually(lambda: all(
        view(r, "r3") is MemberState.ALIVE
        and r.membership.member("r3").meta == {"boot": 2}  # type: ignore[union-attr]
        for r in runners[:3]))
    runners[3] = reborn


async def test_no_seed_answering_fails_the_join() -> None:
    net = MemoryNetwork()
    lonely = make(net, "alone")
    with pytest.raises(JoinFailed):
        await lonely.join(["nobody:7946"], timeout=0.5)
    with pytest.raises(JoinFailed):
        await lonely.join(["alone:7946"], timeout=0.5)  # only ourselves
    await lonely.stop()


async def test_deliver_raises_bad_message_at_once_and_sends_nothing() -> None:
    net = MemoryNetwork()
    runner = make(net, "a")
    with pytest.raises(BadMessage):
        runner.deliver({"type": "ping", "from": "b", "addr": "b:1", "seq": "one"})
    await asyncio.sleep(0)
    assert net.sent["a:7946"] == 0
    await runner.stop()


async def test_runs_as_a_supervisor_job() -> None:
    net = MemoryNetwork()
    a, b = make(net, "a"), make(net, "b")
    supervisor = Supervisor()
    await supervisor.start()
    supervisor.run_forever("gossip-a", a.run)
    supervisor.run_forever("gossip-b", b.run)
    assert await b.join(["a:7946"], timeout=2.0) == 2
    assert await eventually(lambda: view(a, "b") is MemberState.ALIVE)
    await supervisor.stop(grace=0.1)
    await a.stop()
    await b.stop()


async def test_memory_network_loss_partitions_and_json() -> None:
    net = MemoryNetwork(seed=3)
    got: list[dict[str, object]] = []
    x, y = net.transport("x"), net.transport("y")
    y.set_handler(got.append)
    await x.send("y", {"type": "t", "n": 1})
    net.partition(["x"], ["y"])
    await x.send("y", {"type": "t", "n": 2})
    net.heal()
    net.loss = 1.0
    await x.send("y", {"type": "t", "n": 3})
    net.loss = 0.0
    await x.send("nowhere", {"type": "t", "n": 4})
    await asyncio.sleep(0.01)
    assert got == [{"type": "t", "n": 1}]
    assert net.sent["x"] == 4 and net.received["y"] == 1 and net.dropped == 3
    with pytest.raises(TypeError):
        await x.send("y", {"type": "t", "raw": b"bytes are not JSON"})
    with pytest.raises(ValueError):
        net.transport("y")
    await y.close()
    assert net.transport("y").address == "y"
