"""Flavors as the Compute API serves them: visibility, policy, access, extra specs.

:class:`FlavorAPI` is what the HTTP layer calls; :class:`FlavorService`
implements it over the store.  Policy follows Nova's defaults: anyone reads
the public flavors and the private ones their project was given; only
admins create, delete, grant access or change extra specs.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from novad.context import RequestContext
from novad.errors import Conflict, FlavorNotFound, Forbidden, Invalid, NotFound
from novad.store import Store
from novad.store.models import Flavor

_ID = re.compile(r"^(?! )[a-zA-Z0-9. _-]+(?<! )$")

MAX_INT = 0x7FFFFFFF
"""Nova's bound for integer flavor fields (a signed 32-bit column)."""


@dataclass(frozen=True)
class FlavorQuery:
    """``GET /flavors[/detail]`` filters.

    ``is_public``: True = public plus the caller project's private flavors,
    False = private only, None = all; only admins choose (others always get
    True, without disabled flavors).
    """

    is_public: bool | None = True
    min_ram: int | None = None
    min_disk: int | None = None
    limit: int | None = None
    marker: str | None = None


@dataclass(frozen=True)
class FlavorCreate:
    """A validated ``POST /flavors`` body; ``id`` None means a new UUID."""

    name: str
    ram: int
    vcpus: int
    disk: int
    id: str | None = None
    ephemeral: int = 0
    swap: int = 0
    rxtx_factor: float = 1.0
    is_public: bool = True
    description: str | None = None
    """Microversion 2.55; None: none."""


class FlavorAPI(Protocol):
    """The flavor service as the API layer sees it.  Every method raises
    :mod:`novad.errors` exceptions: FlavorNotFound (404), Forbidden (403),
    Conflict (409), Invalid (400)."""

    async def list_flavors(self, ctx: RequestContext, query: FlavorQuery) -> list[Flavor]:
        """Flavors visible to the caller, ordered by id."""

    async def get_flavor(self, ctx: RequestContext, flavor_id: str) -> Flavor:
        """One flavor the caller may see."""

    async def create_flavor(self, ctx: RequestContext, req: FlavorCreate) -> Flavor:
        """Admin: create a flavor."""

    async def delete_flavor(self, ctx: RequestContext, flavor_id: str) -> None:
        """Admin: delete a flavor (servers keep their copy)."""

    async def update_flavor(self, ctx: RequestContext, flavor_id: str,
                            description: str | None) -> Flavor:
        """Admin: set or clear a flavor's description (2.55); nothing else
        of a flavor ever changes."""

    async def flavor_access(self, ctx: RequestContext, flavor_id: str) -> list[str]:
        """Admin: projects given a private flavor."""

    async def add_flavor_access(self, ctx: RequestContext, flavor_id: str,
                                project_id: str, *, public_conflict: bool = True) -> list[str]:
        """Admin: give a project a private flavor; returns the access list.
        A public flavor is Conflict when ``public_conflict`` (Nova from
        microversion 2.7), else the grant is recorded as before 2.7."""

    async def remove_flavor_access(self, ctx: RequestContext, flavor_id: str,
                                   project_id: str) -> list[str]:
        """Admin: withdraw a project's access; returns the access list."""

    async def extra_specs(self, ctx: RequestContext, flavor_id: str) -> dict[str, str]:
        """A visible flavor's extra specs."""

    async def set_extra_specs(self, ctx: RequestContext, flavor_id: str,
                              specs: Mapping[str, str]) -> dict[str, str]:
        """Admin: add or overwrite extra specs; returns all of them."""

    async def delete_extra_spec(self, ctx: RequestContext, flavor_id: str, key: str) -> None:
        """Admin: remove one extra spec."""


def _admin(ctx: RequestContext, rule: str) -> None:
    if not ctx.is_admin:
        raise Forbidden(f"Policy doesn't allow os_compute_api:{rule} to be performed.")


class FlavorService:
    """Implements :class:`FlavorAPI` over :class:`novad.store.Store`."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def list_flavors(self, ctx: RequestContext, query: FlavorQuery) -> list[Flavor]:
        """Nova's listing: non-admins see enabled public flavors and their grants."""
        is_public = query.is_public if ctx.is_admin else True
        flavors = await self.store.list_flavors(
            is_public=is_public, project_id=ctx.project_id if is_public else None,
            limit=query.limit, marker=query.marker, min_ram=query.min_ram,
            min_disk=query.min_disk)
        if not ctx.is_admin:
            flavors = [f for f in flavors if not f.disabled]
        return flavors

    async def get_flavor(self, ctx: RequestContext, flavor_id: str) -> Flavor:
        """A private flavor is 404 to a project that was not given it."""
        flavor = await self.store.get_flavor(flavor_id)
        if flavor.is_public or ctx.is_admin:
            return flavor
        if ctx.project_id in await self.store.list_flavor_access(flavor_id):
            return flavor
        raise FlavorNotFound(flavor_id)

    async def create_flavor(self, ctx: RequestContext, req: FlavorCreate) -> Flavor:
        """Checks ranges and the id's characters; Conflict on a duplicate."""
        _admin(ctx, "os-flavor-manage:create")
        flavor_id = str(uuid.uuid4()) if req.id is None else req.id
        if not _ID.match(flavor_id) or len(flavor_id) > 255:
            raise Invalid("Invalid input received: id must contain only letters, digits, "
                          "'.', '_', '-' and inner spaces.")
        for name, value, low in (("ram", req.ram, 1), ("vcpus", req.vcpus, 1),
                                 ("disk", req.disk, 0), ("ephemeral", req.ephemeral, 0),
                                 ("swap", req.swap, 0)):
            if not low <= value <= MAX_INT:
                raise Invalid(f"Invalid input received: {name} must be an integer between "
                              f"{low} and {MAX_INT}.")
        if not 0 < req.rxtx_factor <= 3.40282e38:
            raise Invalid("Invalid input received: rxtx_factor must be a positive number.")
        flavor = Flavor(id=flavor_id, name=req.name, vcpus=req.vcpus, memory_mb=req.ram,
                        root_gb=req.disk, ephemeral_gb=req.ephemeral, swap=req.swap,
                        rxtx_factor=req.rxtx_factor, is_public=req.is_public,
                        description=req.description)
        return await self.store.create_flavor(flavor)

    async def update_flavor(self, ctx: RequestContext, flavor_id: str,
                            description: str | None) -> Flavor:
        """Admin only; FlavorNotFound when absent.  Servers keep the copy
        they were built with."""
        _admin(ctx, "os-flavor-manage:update")
        return await self.store.set_flavor_description(flavor_id, description)

    async def delete_flavor(self, ctx: RequestContext, flavor_id: str) -> None:
        """Admin only; FlavorNotFound when absent."""
        _admin(ctx, "os-flavor-manage:delete")
        await self.store.delete_flavor(flavor_id)

    async def flavor_access(self, ctx: RequestContext, flavor_id: str) -> list[str]:
        """Public flavors have no access list (404, as Nova)."""
        _admin(ctx, "os-flavor-access")
        flavor = await self.store.get_flavor(flavor_id)
        if flavor.is_public:
            raise NotFound("Access list not available for public flavors.")
        return await self.store.list_flavor_access(flavor_id)

    async def add_flavor_access(self, ctx: RequestContext, flavor_id: str,
                                project_id: str, *, public_conflict: bool = True) -> list[str]:
        """Conflict for an existing grant, and for a public flavor when
        ``public_conflict``."""
        _admin(ctx, "os-flavor-access:add_tenant_access")
        flavor = await self.store.get_flavor(flavor_id)
        if flavor.is_public and public_conflict:
            raise Conflict("Can not add access to a public flavor.")
        await self.store.add_flavor_access(flavor_id, project_id)
        return await self.store.list_flavor_access(flavor_id)

    async def remove_flavor_access(self, ctx: RequestContext, flavor_id: str,
                                   project_id: str) -> list[str]:
        """NotFound when the project had no access."""
        _admin(ctx, "os-flavor-access:remove_tenant_access")
        await self.store.remove_flavor_access(flavor_id, project_id)
        return await self.store.list_flavor_access(flavor_id)

    async def extra_specs(self, ctx: RequestContext, flavor_id: str) -> dict[str, str]:
        """Readable by whoever may see the flavor."""
        return dict((await self.get_flavor(ctx, flavor_id)).extra_specs)

    async def set_extra_specs(self, ctx: RequestContext, flavor_id: str,
                              specs: Mapping[str, str]) -> dict[str, str]:
        """Admin only."""
        _admin(ctx, "os-flavor-extra-specs:create")
        return await self.store.set_extra_specs(flavor_id, specs)

    async def delete_extra_spec(self, ctx: RequestContext, flavor_id: str, key: str) -> None:
        """Admin only; NotFound for an unknown key."""
        _admin(ctx, "os-flavor-extra-specs:delete")
        await self.store.delete_extra_spec(flavor_id, key)
