"""Where a move may go (``Placement.for_move``): a forced host skips the
filters, a requested one (2.29/2.30 without ``force``) must pass them, and
the source is never a candidate."""

from __future__ import annotations

from novad.cluster.members import Member, MemberState
from novad.compute.placement import Placement
from novad.config import load
from novad.store.models import Flavor

FLAVOR = Flavor(id="f1", name="f1", vcpus=1, memory_mb=128, root_gb=1)


def member(name: str, enabled: bool = True) -> Member:
    meta = {"enabled": enabled, "az": "nova", "hypervisor_type": "QEMU",
            "resources": {"vcpus": 4, "memory_mb": 4096, "local_gb": 40}}
    return Member(name, f"{name}:1", MemberState.ALIVE, 1, meta, 0.0, 0.0)


def placement() -> Placement:
    # for_move reads neither the store nor the images: only gossip's view
    return Placement(load(None), None, None)  # type: ignore[arg-type]


async def test_the_source_is_never_a_candidate() -> None:
    members = [member("n1"), member("n2"), member("n3")]
    decision = await placement().for_move(FLAVOR, {}, members, frozenset({"n1"}), None)
    assert sorted(decision.hosts) == ["n2", "n3"]


async def test_a_forced_host_skips_the_filters_a_requested_one_does_not() -> None:
    members = [member("n1"), member("n2", enabled=False), member("n3")]
    forced = await placement().for_move(FLAVOR, {}, members, frozenset({"n1"}), "n2")
    assert forced.hosts == ["n2"]  # disabled, but forced (below 2.29, or force: true)
    requested = await placement().for_move(FLAVOR, {}, members, frozenset({"n1"}), None,
                                           requested="n2")
    assert requested.hosts == []  # ComputeFilter refuses a disabled host
    fine = await placement().for_move(FLAVOR, {}, members, frozenset({"n1"}), None,
                                      requested="n3")
    assert fine.hosts == ["n3"]
