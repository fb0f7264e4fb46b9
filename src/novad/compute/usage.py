"""Usage per project over a period (Nova's os-simple-tenant-usage).

What ``openstack usage list/show`` and Horizon's overview report: for each
instance that may have run in the period, the hours it was launched within
it (from ``launched_at`` to ``terminated_at``, or to the period's end while
it lives), and per project the sums of those hours weighted by the flavor's
vCPUs, RAM and disk.  As in Nova, deleted instances count for the time they
ran, instances never launched count nothing, and a stopped or shelved one is
charged while it exists.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any, Protocol

from novad.errors import Invalid
from novad.store.models import Instance

STORE_FORMAT = "%Y-%m-%dT%H:%M:%S.%f"
"""How the store writes timestamps (UTC, no offset); see ``utcnow``."""


class UsageSource(Protocol):
    """Where instances come from (:class:`novad.store.Store` fits as it is)."""

    async def instances_in_window(self, begin: str, end: str,
                                  project_id: str | None = None) -> list[Instance]:
        """Instances that may have run between ``begin`` and ``end``."""


def to_store(moment: datetime) -> str:
    """A UTC datetime in the store's format."""
    return moment.astimezone(timezone.utc).replace(tzinfo=None).strftime(STORE_FORMAT)


def _parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp).replace(tzinfo=timezone.utc)


def hours_within(inst: Instance, start: datetime, stop: datetime) -> float:
    """Hours ``inst`` was launched between ``start`` and ``stop``."""
    if inst.launched_at is None:
        return 0.0
    launched = _parse(inst.launched_at)
    ended = _parse(inst.terminated_at) if inst.terminated_at else None
    if (ended is not None and ended < start) or launched > stop:
        return 0.0
    begin = max(launched, start)
    end = min(stop, ended) if ended is not None else stop
    return max((end - begin).total_seconds(), 0.0) / 3600.0


def server_usage(inst: Instance, start: datetime, stop: datetime,
                 now: datetime) -> dict[str, Any]:
    """One ``server_usages`` entry."""
    ended = inst.terminated_at
    state = "terminated" if ended else inst.vm_state.value
    uptime = 0
    if inst.launched_at is not None:
        until = _parse(ended) if ended else now
        uptime = max(int((until - _parse(inst.launched_at)).total_seconds()), 0)
    flavor = inst.flavor
    return {"instance_id": inst.uuid, "name": inst.name, "tenant_id": inst.project_id,
            "hours": hours_within(inst, start, stop), "flavor": flavor.name,
            "vcpus": flavor.vcpus, "memory_mb": flavor.memory_mb,
            "local_gb": flavor.root_gb + flavor.ephemeral_gb,
            "started_at": inst.launched_at, "ended_at": ended, "state": state,
            "uptime": uptime}


def tenant_usages(instances: Sequence[Instance], start: datetime, stop: datetime,
                  now: datetime, detailed: bool) -> list[dict[str, Any]]:
    """One summary per project, in the order projects first appear;
    ``detailed`` adds each project's ``server_usages``."""
    summaries: dict[str, dict[str, Any]] = {}
    for inst in instances:
        usage = server_usage(inst, start, stop, now)
        summary = summaries.get(inst.project_id)
        if summary is None:
            summary = {"tenant_id": inst.project_id, "total_local_gb_usage": 0.0,
                       "total_vcpus_usage": 0.0, "total_memory_mb_usage": 0.0,
                       "total_hours": 0.0, "start": to_store(start), "stop": to_store(stop)}
            if detailed:
                summary["server_usages"] = []
            summaries[inst.project_id] = summary
        hours = usage["hours"]
        summary["total_local_gb_usage"] += usage["local_gb"] * hours
        summary["total_vcpus_usage"] += usage["vcpus"] * hours
        summary["total_memory_mb_usage"] += usage["memory_mb"] * hours
        summary["total_hours"] += hours
        if detailed:
            summary["server_usages"].append(usage)
    return list(summaries.values())


async def report(source: UsageSource, start: datetime, stop: datetime, now: datetime,
                 project_id: str | None, detailed: bool) -> list[dict[str, Any]]:
    """The usage of every project (or of ``project_id``) over [start, stop]."""
    instances = await source.instances_in_window(to_store(start), to_store(stop), project_id)
    return tenant_usages(instances, start, stop, now, detailed)


async def report_page(source: UsageSource, start: datetime, stop: datetime, now: datetime,
                      project_id: str | None, detailed: bool, limit: int,
                      marker: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """:func:`report` over one page of the instances (microversion 2.40), oldest
    first: at most ``limit`` after the one whose uuid is ``marker`` (Invalid
    when none in the window has it).  Also the uuid the next page starts
    after, when this page is full."""
    instances = sorted(await source.instances_in_window(to_store(start), to_store(stop),
                                                        project_id),
                       key=lambda inst: (inst.created_at, inst.uuid))
    if marker is not None:
        at = next((i for i, inst in enumerate(instances) if inst.uuid == marker), None)
        if at is None:
            raise Invalid(f"Marker {marker} could not be found.")
        instances = instances[at + 1:]
    page = instances[:limit]
    last = page[-1].uuid if page and len(page) == limit else None
    return tenant_usages(page, start, stop, now, detailed), last
