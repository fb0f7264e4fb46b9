"""The Compute API (Nova v2.1 and the microversions of
:mod:`novad.api.microversion`) as a route list.

Every resource is mounted under ``/compute/v2.1`` (the catalog URL) and
``/v2.1`` (Nova's own root), and again under each followed by
``/{project_id}`` (Nova's project-scoped URLs, optional since 2.18 and
served at every version, as Nova's router does; a project id that is not
the token's is 400), plus the ``/compute`` versions document.
A route that exists only from a microversion on (``remote-consoles``, 2.6)
is registered always and answers 404 below it, as Nova does.
"""

from __future__ import annotations

import dataclasses

from aiohttp import web

from novad.api.common import Handler, Route, context
from novad.api.compute import proxies, removed, security_groups
from novad.api.compute.actions import ActionHandlers
from novad.api.compute.consoles import (
    ConsoleTokenHandlers,
    ConsoleTokenLookup,
    RemoteConsoleHandlers,
)
from novad.api.compute.diagnostics import DiagnosticsHandlers
from novad.api.compute.flavors import FlavorHandlers
from novad.api.compute.hosts import HostHandlers
from novad.api.compute.keypairs import KeypairHandlers
from novad.api.compute.migrations import MigrationHandlers, MigrationSource
from novad.api.compute.images import ImageHandlers
from novad.api.compute.misc import InstanceActionHandlers, NodeHandlers
from novad.api.compute.protocols import ImageLookup, NodeInfo
from novad.api.compute.quotas import QuotaHandlers
from novad.api.compute.server_groups import ServerGroupHandlers
from novad.api.compute.server_migrations import ServerMigrationHandlers
from novad.api.compute.server_tags import ServerTagHandlers
from novad.api.compute.server_topology import ServerTopologyHandlers
from novad.api.compute.servers import ServerHandlers
from novad.api.compute.usage import UsageHandlers
from novad.api.compute.versions import VersionHandlers
from novad.compute.flavors import FlavorAPI
from novad.compute.interface import ComputeAPI
from novad.compute.keypairs import KeypairAPI
from novad.compute.quotas import QuotaAPI
from novad.compute.server_groups import ServerGroupAPI
from novad.compute.usage import UsageSource
from novad.config import Config
from novad.errors import Invalid

MOUNTS = ("/compute/v2.1", "/v2.1")
"""The versioned roots every compute resource is served under."""

PROJECT_ID = r"{project_id:[0-9a-f\-]+}"
"""The project segment of a project-scoped URL (Nova's default project_id_regex)."""

PROJECT_MOUNTS = tuple(f"{mount}/{PROJECT_ID}" for mount in MOUNTS)
"""The same roots with the project id in the URL."""


def project_checked(handler: Handler) -> Handler:
    """``handler`` behind Nova's check that the URL's project is the token's."""
    async def checked(request: web.Request) -> web.StreamResponse:
        named, ctx = request.match_info["project_id"], context(request)
        if named != ctx.project_id:
            raise Invalid(f"Malformed request URL: URL's project_id '{named}' doesn't match "
                          f"Context's project_id '{ctx.project_id}'")
        return await handler(request)

    checked.__doc__ = handler.__doc__
    return checked

__all__ = ["MOUNTS", "ImageLookup", "NodeInfo", "routes"]


def routes(compute: ComputeAPI, config: Config, images: ImageLookup | None, node: NodeInfo,
           *, flavors: FlavorAPI, keypairs: KeypairAPI,
           consoles: ConsoleTokenLookup | None = None,
           quotas: QuotaAPI | None = None,
           usage: UsageSource | None = None,
           migrations: MigrationSource | None = None,
           server_groups: ServerGroupAPI | None = None) -> list[Route]:
    """Every Compute API route, ready for :func:`novad.api.app.build_api`.

    ``images`` adds Nova's image proxy (``/images``, below 2.36) and image
    metadata (``/images/{id}/metadata``, below 2.39); None leaves them out.  ``consoles`` adds the admin ``/os-console-auth-tokens`` look-up.
    ``quotas`` adds ``/os-quota-sets`` and gives ``/limits`` each project's own
    limits; None leaves ``/limits`` at the ``[quota]`` defaults.  ``usage``
    adds ``/os-simple-tenant-usage`` and ``migrations`` ``/os-migrations``;
    ``server_groups`` adds ``/os-server-groups``.
    """
    versions = VersionHandlers(config)
    relative = [
        *versions.routes(),
        *ServerHandlers(compute, config, node).routes(),
        *ActionHandlers(compute, config, node).routes(),
        *RemoteConsoleHandlers(compute, config).routes(),
        *InstanceActionHandlers(compute, config).routes(),
        *DiagnosticsHandlers(compute, config).routes(),
        *ServerMigrationHandlers(compute, config).routes(),
        *ServerTagHandlers(compute, config).routes(),
        *ServerTopologyHandlers(compute).routes(),
        *FlavorHandlers(flavors, config).routes(),
        *KeypairHandlers(keypairs, config).routes(),
        *NodeHandlers(node, config, quotas, compute).routes(),
        *HostHandlers(compute, node, config).routes(),
        *removed.routes(),
        *security_groups.routes(),
        *proxies.routes(),
    ]
    if quotas is not None:
        relative.extend(QuotaHandlers(quotas, config).routes())
    if usage is not None:
        relative.extend(UsageHandlers(usage, config).routes())
    if migrations is not None:
        relative.extend(MigrationHandlers(migrations, config).routes())
    if server_groups is not None:
        relative.extend(ServerGroupHandlers(server_groups, config).routes())
    if images is not None:
        relative.extend(ImageHandlers(images, config).routes())
    if consoles is not None:
        relative.extend(ConsoleTokenHandlers(consoles).routes())
    mounted = [dataclasses.replace(r, path=mount + r.path)
               for mount in MOUNTS for r in relative]
    scoped = [dataclasses.replace(r, path=mount + r.path, handler=project_checked(r.handler))
              for mount in PROJECT_MOUNTS for r in relative if not r.public]
    return [*versions.root_routes(), *mounted, *scoped]
