"""os-migrations (admin): the resize, migration and evacuation records
(``openstack server migration list``); from 2.23 each shows its
``migration_type``, and an in-progress live migration links to its
``/servers/{id}/migrations/{migration_id}``.

Filters as in Nova below 2.23: ``status``, ``instance_uuid``,
``source_compute``, ``migration_type`` and ``host`` (source or destination);
other query parameters are ignored, as Nova's 2.1 schema allows them.  Nova
reports its flavors' internal integer ids as ``old_instance_type_id`` and
``new_instance_type_id``; novad has no such ids and reports the flavor ids
the API uses.  The nodes are the computes (one hypervisor per node), and
``dest_host`` (a destination's IP in Nova) is null.
"""

from __future__ import annotations

from typing import Any, Protocol

from aiohttp import web

from novad.api import microversion
from novad.api.common import Route, context, json_response
from novad.api.compute.misc import require_admin
from novad.api.compute.paging import PAGE_PARAMS, Page, check_query
from novad.api.compute.servers import changes_window
from novad.api.compute.views import Links
from novad.compute.service import LIVE_IN_PROGRESS
from novad.config import Config
from novad.store.models import Migration

FILTERS = ("status", "instance_uuid", "host", "source_compute", "migration_type")

OWNER_FILTERS = ("user_id", "project_id")
"""Who asked for the move: filters from 2.80 (ignored below, as Nova)."""


class MigrationSource(Protocol):
    """Where migration records come from (:class:`novad.store.Store` fits)."""

    async def search_migrations(self, *, status: str | None = None,
                                instance_uuid: str | None = None, host: str | None = None,
                                source_compute: str | None = None,
                                migration_type: str | None = None,
                                user_id: str | None = None,
                                project_id: str | None = None) -> list[Migration]:
        """Every migration matching the filters, oldest first."""


def migration_view(m: Migration) -> dict[str, Any]:
    """One migration in the 2.1 shape."""
    return {"id": m.id, "instance_uuid": m.instance_uuid, "status": m.status,
            "source_compute": m.source_compute, "source_node": m.source_compute,
            "dest_compute": m.dest_compute, "dest_node": m.dest_compute, "dest_host": None,
            "old_instance_type_id": m.old_flavor_id, "new_instance_type_id": m.new_flavor_id,
            "created_at": m.created_at, "updated_at": m.updated_at}


def migration_view_v2_23(m: Migration, links: Links) -> dict[str, Any]:
    """One migration from 2.23: ``migration_type``, and links for an
    in-progress live migration."""
    body = {**migration_view(m), "migration_type": m.migration_type}
    if m.migration_type == "live-migration" and m.status in LIVE_IN_PROGRESS:
        body["links"] = links.pair(f"servers/{m.instance_uuid}/migrations", str(m.id))
    return body


def owner_fields(m: Migration) -> dict[str, str | None]:
    """2.80's ``user_id`` and ``project_id``: who asked for the move."""
    return {"user_id": m.user_id, "project_id": m.project_id}


class MigrationHandlers:
    """``GET /os-migrations``."""

    def __init__(self, source: MigrationSource, config: Config) -> None:
        self.source = source
        self.config = config

    async def index(self, request: web.Request) -> web.StreamResponse:
        """List migrations (admin); from 2.59 a page of them, newest first."""
        require_admin(context(request), "os-migrations:index")
        owners = microversion.at_least(request, microversion.MIGRATION_OWNER)
        names = FILTERS + OWNER_FILTERS if owners else FILTERS
        paged = microversion.at_least(request, microversion.MIGRATION_PAGES)
        if paged:
            before_too = ("changes-before",) if microversion.at_least(
                request, microversion.CHANGES_BEFORE) else ()
            check_query(request.query, (*names, "hidden", *PAGE_PARAMS, *before_too))
        page = Page.of(request.query) if paged else None
        filters = {key: request.query[key] for key in names if request.query.get(key)}
        before = None
        if microversion.at_least(request, microversion.CHANGES_BEFORE):
            _, before = changes_window(request.query, microversion.of(request))
        found = await self.source.search_migrations(**filters)
        if before is not None:  # 2.66
            found = [m for m in found if (m.updated_at or m.created_at) <= before]
        if not microversion.at_least(request, microversion.SERVER_MIGRATIONS):
            return json_response({"migrations": [migration_view(m) for m in found]})
        links = Links.of(request, self.config)
        if page is None:
            return json_response({"migrations": [migration_view_v2_23(m, links)
                                                 for m in found]})
        newest = sorted(found, key=lambda m: (m.created_at, m.id), reverse=True)
        shown = page.cut(newest, lambda m: m.uuid, lambda m: m.updated_at or m.created_at)
        views = [{**migration_view_v2_23(m, links), "uuid": m.uuid} for m in shown]
        if owners:
            views = [{**v, **owner_fields(m)} for v, m in zip(views, shown, strict=True)]
        body: dict[str, Any] = {"migrations": views}
        if page.full(shown):
            body["migrations_links"] = links.next_page("os-migrations", request.query.items(),
                                                       shown[-1].uuid)
        return json_response(body)

    def routes(self) -> list[Route]:
        """The migration routes, relative to a versioned mount."""
        return [Route("GET", "/os-migrations", self.index, tag="migrations",
                      summary="List resize, migration and evacuation records (admin)")]
