"""``/servers/{id}/migrations``: one server's in-progress live migrations
(admin), as Nova serves them from the microversion that added each route:

- 2.22 ``POST .../migrations/{migration_id}/action`` ``{"force_complete": null}``;
- 2.23 ``GET .../migrations`` and ``GET .../migrations/{migration_id}``;
- 2.24 ``DELETE .../migrations/{migration_id}`` (abort).

Below its version a route is 404, as Nova.  The forwarding middleware
sends these paths to the server's owner, which runs the migration (the
source keeps the row until the guest has moved), so the driver called is
the one migrating the guest.  The byte counts come from the driver's
reading of the running migration, null when it has none.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from novad.api import microversion
from novad.api.common import Route, context, json_response
from novad.api.compute.migrations import owner_fields
from novad.api.compute.misc import require_admin
from novad.api.compute.parsing import read_body
from novad.api.compute.schemas import Schema, envelope
from novad.compute.interface import ComputeAPI
from novad.config import Config
from novad.drivers.base import MigrationProgress
from novad.errors import NotFound
from novad.store.models import Migration

FORCE_COMPLETE: Schema = envelope("force_complete", {"type": "null"})
"""Nova's force-complete body: ``{"force_complete": null}``."""


def server_migration_view(m: Migration, progress: MigrationProgress | None) -> dict[str, Any]:
    """One in-progress live migration at 2.23."""
    def count(value: int) -> int | None:
        return None if progress is None else value

    p = progress or MigrationProgress()
    return {"id": m.id, "server_uuid": m.instance_uuid, "status": m.status,
            "source_compute": m.source_compute, "source_node": m.source_compute,
            "dest_compute": m.dest_compute, "dest_node": m.dest_compute, "dest_host": None,
            "memory_total_bytes": count(p.memory_total),
            "memory_processed_bytes": count(p.memory_processed),
            "memory_remaining_bytes": count(p.memory_remaining),
            "disk_total_bytes": count(p.disk_total),
            "disk_processed_bytes": count(p.disk_processed),
            "disk_remaining_bytes": count(p.disk_remaining),
            "created_at": m.created_at, "updated_at": m.updated_at}


def _since(request: web.Request, version: microversion.Microversion) -> None:
    if not microversion.at_least(request, version):
        raise NotFound("The resource could not be found.")


class ServerMigrationHandlers:
    """Handlers of ``/servers/{server_id}/migrations``."""

    def __init__(self, compute: ComputeAPI, config: Config) -> None:
        self.compute = compute
        self.max_body = config.DEFAULT.max_request_body_size

    async def _view(self, request: web.Request, m: Migration) -> dict[str, Any]:
        progress = None
        if m.status == "running":
            progress = await self.compute.live_migration_progress(m.instance_uuid)
        view = server_migration_view(m, progress)
        if microversion.at_least(request, microversion.MIGRATION_PAGES):
            view["uuid"] = m.uuid  # 2.59
        if microversion.at_least(request, microversion.MIGRATION_OWNER):
            view.update(owner_fields(m))
        return view

    async def index(self, request: web.Request) -> web.StreamResponse:
        """List the server's in-progress live migrations (2.23, admin)."""
        _since(request, microversion.SERVER_MIGRATIONS)
        ctx = context(request)
        require_admin(ctx, "servers:migrations:index")
        found = await self.compute.live_migrations(ctx, request.match_info["server_id"])
        return json_response({"migrations": [await self._view(request, m) for m in found]})

    async def show(self, request: web.Request) -> web.StreamResponse:
        """Show one in-progress live migration of the server (2.23, admin)."""
        _since(request, microversion.SERVER_MIGRATIONS)
        ctx = context(request)
        require_admin(ctx, "servers:migrations:show")
        found = await self.compute.live_migration(ctx, request.match_info["server_id"],
                                                  request.match_info["migration_id"])
        return json_response({"migration": await self._view(request, found)})

    async def action(self, request: web.Request) -> web.StreamResponse:
        """``force_complete`` a running live migration (2.22, admin): 202."""
        _since(request, microversion.FORCE_COMPLETE)
        ctx = context(request)
        require_admin(ctx, "servers:migrations:force_complete")
        await read_body(request, self.max_body, FORCE_COMPLETE)
        await self.compute.force_complete(ctx, request.match_info["server_id"],
                                          request.match_info["migration_id"])
        return web.Response(status=202)

    async def abort(self, request: web.Request) -> web.StreamResponse:
        """Abort a running live migration (2.24, admin): 202; it ends ``cancelled``."""
        _since(request, microversion.ABORT_LIVE_MIGRATION)
        ctx = context(request)
        require_admin(ctx, "servers:migrations:delete")
        await self.compute.abort_live_migration(
            ctx, request.match_info["server_id"], request.match_info["migration_id"],
            queued_too=microversion.at_least(request, microversion.ABORT_QUEUED_LIVE))
        return web.Response(status=202)

    def routes(self) -> list[Route]:
        """The server-migration routes, relative to a versioned mount."""
        base = "/servers/{server_id}/migrations"
        one = base + "/{migration_id}"
        return [
            Route("GET", base, self.index, tag="server migrations",
                  summary="List the server's in-progress live migrations (2.23, admin)"),
            Route("GET", one, self.show, tag="server migrations",
                  summary="Show an in-progress live migration (2.23, admin)"),
            Route("POST", one + "/action", self.action, schema=FORCE_COMPLETE,
                  tag="server migrations", responses={202: "Forcing it to complete"},
                  summary="Force a running live migration to complete (2.22, admin)"),
            Route("DELETE", one, self.abort, tag="server migrations",
                  responses={202: "Aborting"},
                  summary="Abort a running live migration (2.24, admin)"),
        ]
