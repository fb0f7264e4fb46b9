"""os-simple-tenant-usage at microversion 2.1: what each project used over a
period (``openstack usage list`` and ``usage show``; Horizon's overview).

The period is ``start`` and ``end`` (ISO 8601; no offset means UTC; either
missing means now), clipped to now; ``detailed=1`` adds each project's
``server_usages`` to the list.  Listing every project needs admin; one
project's usage needs admin or a token scoped to it.  From 2.40 both take
``limit`` and ``marker`` (an instance uuid) and page over the instances, as
Nova does, linking the next page.  The arithmetic is in
:mod:`novad.compute.usage`.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from aiohttp import web

from novad.api import microversion
from novad.api.common import Route, context, json_response
from novad.api.compute.misc import require_admin
from novad.api.compute.parsing import limit_param
from novad.api.compute.views import Links
from novad.compute.usage import UsageSource, report, report_page
from novad.config import Config
from novad.errors import Forbidden, Invalid
from novad.strutils import parse_bool


class UsageHandlers:
    """``/os-simple-tenant-usage`` and ``/os-simple-tenant-usage/{tenant_id}``."""

    def __init__(self, source: UsageSource, config: Config) -> None:
        self.source = source
        self.config = config

    async def _usages(self, request: web.Request, project: str | None, detailed: bool,
                      key: str, collection: str) -> dict[str, Any]:
        """The usages over the request's period, keyed ``key``; from 2.40 one
        page of instances, with ``<key>_links`` when it is full."""
        start, stop, now = _period(request)
        if not microversion.at_least(request, microversion.USAGE_PAGES):
            usages = await report(self.source, start, stop, now, project, detailed)
            return {key: usages}
        usages, last = await report_page(self.source, start, stop, now, project, detailed,
                                         limit_param(request.query),
                                         request.query.get("marker"))
        body: dict[str, Any] = {key: usages}
        if last is not None:
            body[f"{key}_links"] = Links.of(request, self.config).next_page(
                collection, request.query.items(), last)
        return body

    async def index(self, request: web.Request) -> web.StreamResponse:
        """Every project's usage over the period (admin)."""
        require_admin(context(request), "os-simple-tenant-usage:list")
        detailed = parse_bool(request.query.get("detailed", "0")) is True
        return json_response(await self._usages(request, None, detailed, "tenant_usages",
                                                "os-simple-tenant-usage"))

    async def show(self, request: web.Request) -> web.StreamResponse:
        """One project's usage over the period, with its servers."""
        ctx = context(request)
        project = request.match_info["tenant_id"]
        if not ctx.is_admin and ctx.project_id != project:
            raise Forbidden("Policy doesn't allow os_compute_api:os-simple-tenant-usage:show "
                            "to be performed.")
        body = await self._usages(request, project, True, "tenant_usage",
                                  f"os-simple-tenant-usage/{project}")
        usages = body["tenant_usage"]
        body["tenant_usage"] = usages[0] if usages else {}
        return json_response(body)

    def routes(self) -> list[Route]:
        """The usage routes, relative to a versioned mount."""
        tag = "usage"
        return [
            Route("GET", "/os-simple-tenant-usage", self.index, tag=tag,
                  summary="Every project's usage over a period (admin)"),
            Route("GET", "/os-simple-tenant-usage/{tenant_id}", self.show, tag=tag,
                  summary="One project's usage over a period"),
        ]


def _period(request: web.Request) -> tuple[datetime, datetime, datetime]:
    """(start, stop clipped to now, now), all UTC; 400 as Nova words it."""
    now = datetime.now(timezone.utc)
    query = request.query
    start = _moment(query.get("start"), now)
    stop = _moment(query.get("end"), now)
    # Nova reads "now" twice when a bound is missing, so only two given,
    # equal bounds are refused as equal.
    if start > stop or (start == stop and query.get("start") and query.get("end")):
        raise Invalid("Invalid start time. The start time cannot occur after the end time.")
    return start, min(stop, now), now


def _moment(raw: str | None, now: datetime) -> datetime:
    if not raw:
        return now
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise Invalid("Invalid datetime string: Datetime is in invalid format") from None
    if value.utcoffset() is None:
        value = value.replace(tzinfo=timezone.utc)
    return value
