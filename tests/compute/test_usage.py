"""Usage per project over a period (os-simple-tenant-usage's arithmetic),
read from a real store: hours clipped to the period and to each instance's
life, deleted instances counted for the time they ran, never-launched ones
for nothing, and projects kept apart."""

from __future__ import annotations

from datetime import datetime, timezone

from novad.compute.usage import report
from novad.store.models import Expect

from .conftest import Stack, admin


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, 2, hour, minute, tzinfo=timezone.utc)


def stamp(moment: datetime) -> str:
    return moment.replace(tzinfo=None).isoformat(timespec="microseconds")


async def test_hours_are_clipped_to_the_period_and_to_each_life(stack: Stack) -> None:
    running = await stack.boot("running")
    ended = await stack.boot("ended")
    never = await stack.boot("never")
    later = await stack.boot("later")
    other = await stack.boot("other", ctx=admin())
    for inst, launched, terminated in ((running, at(10), None), (ended, at(9), at(11)),
                                       (never, None, None), (later, at(13), None),
                                       (other, at(12), None)):
        changes = {"launched_at": None if launched is None else stamp(launched),
                   "terminated_at": None if terminated is None else stamp(terminated)}
        if terminated is not None:
            changes["deleted"] = True
        await stack.store.write(inst.uuid, Expect(), changes)

    start, stop, now = at(10, 30), at(12, 30), at(13, 30)
    (mine,) = await report(stack.store, start, stop, now, running.project_id, True)
    by_name = {u["name"]: u for u in mine["server_usages"]}
    assert set(by_name) == {"running", "ended", "never"}
    assert (by_name["running"]["hours"], by_name["running"]["state"],
            by_name["running"]["uptime"], by_name["running"]["ended_at"]) == (
        2.0, "active", 3 * 3600 + 1800, None)
    assert (by_name["ended"]["hours"], by_name["ended"]["state"],
            by_name["ended"]["uptime"], by_name["ended"]["ended_at"]) == (
        0.5, "terminated", 2 * 3600, stamp(at(11)))
    assert (by_name["never"]["hours"], by_name["never"]["started_at"],
            by_name["never"]["uptime"]) == (0.0, None, 0)
    flavor = running.flavor
    assert by_name["running"]["flavor"] == flavor.name
    assert mine["total_hours"] == 2.5
    assert mine["total_vcpus_usage"] == 2.5 * flavor.vcpus
    assert mine["total_memory_mb_usage"] == 2.5 * flavor.memory_mb
    assert mine["total_local_gb_usage"] == 2.5 * (flavor.root_gb + flavor.ephemeral_gb)
    assert (mine["tenant_id"], mine["start"], mine["stop"]) == (
        running.project_id, stamp(start), stamp(stop))

    everyone = await report(stack.store, start, stop, now, None, False)
    totals = {u["tenant_id"]: u["total_hours"] for u in everyone}
    assert totals == {running.project_id: 2.5, other.project_id: 0.5}
    assert all("server_usages" not in u for u in everyone)
    # Before any launch only the never-launched instance is listed, as in
    # Nova (its window query keeps rows without launched_at), for nothing.
    (early,) = await report(stack.store, at(1), at(2), now, None, True)
    assert [u["name"] for u in early["server_usages"]] == ["never"]
    assert early["total_hours"] == 0.0
