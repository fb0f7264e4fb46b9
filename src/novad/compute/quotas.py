"""Project quotas: the ``[quota]`` defaults, overridden per project through
os-quota-sets, and the check a boot or resize passes.

The enforced resources are Nova's instance quotas: ``instances``, ``cores``
(vCPUs) and ``ram`` (MiB), and the personality limits of one server
(``injected_files``, ``injected_file_content_bytes``,
``injected_file_path_bytes``; below microversion 2.57), which count nothing
in use.  -1 is unlimited.  Usage counts every instance
not deleted, soft-deleted ones included, as Nova counts them.  A project
without its own limit for a resource has the default; deleting a project's
quotas returns it to the defaults.

As in Nova, reading a project's quotas needs the admin role or a role on
that project; setting and deleting them need the admin role.  Lowering a
limit below what is in use is refused unless forced.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Final, Protocol

from novad.config import QuotaSection
from novad.context import RequestContext
from novad.errors import (
    Forbidden,
    Invalid,
    OnsetFileContentLimitExceeded,
    OnsetFileLimitExceeded,
    OnsetFilePathLimitExceeded,
    OverQuota,
)
from novad.store import Store

COUNTED: Final = ("instances", "cores", "ram")
"""The quotas on what a project uses, in Nova's names."""

INJECTED: Final = ("injected_files", "injected_file_content_bytes",
                   "injected_file_path_bytes")
"""The personality quotas: limits on one server's files, nothing in use."""

RESOURCES: Final = COUNTED + INJECTED
"""The quotas novad enforces (and a project can have its own of)."""

MAX_LIMIT: Final = 0x7FFFFFFF
"""Nova's largest quota value (a 32-bit signed integer)."""


class QuotaAPI(Protocol):
    """Project quotas as the API layer sees them."""

    def defaults(self) -> dict[str, int]:
        """The limits of a project that has none of its own."""

    async def show(self, ctx: RequestContext, project_id: str) -> dict[str, int]:
        """A project's limits.  Forbidden (403), Invalid (400: no such project)."""

    async def usage(self, project_id: str) -> dict[str, int]:
        """What a project uses of each resource."""

    async def update(self, ctx: RequestContext, project_id: str, limits: Mapping[str, int],
                     force: bool) -> dict[str, int]:
        """Set some of a project's limits (admin); returns them all."""

    async def reset(self, ctx: RequestContext, project_id: str) -> None:
        """Return a project to the defaults (admin)."""


class Quotas:
    """:class:`QuotaAPI` over the store; ``project_exists`` checks a project
    id with the identity service (None accepts any id)."""

    def __init__(self, store: Store, defaults: QuotaSection,
                 project_exists: Callable[[str], Awaitable[bool]] | None = None) -> None:
        self.store = store
        self._defaults = {name: int(getattr(defaults, name)) for name in RESOURCES}
        self._project_exists = project_exists

    def defaults(self) -> dict[str, int]:
        return dict(self._defaults)

    async def limits(self, project_id: str) -> dict[str, int]:
        """A project's limits, its own over the defaults (no policy check)."""
        own = await self.store.project_quotas(project_id)
        return {name: own.get(name, default) for name, default in self._defaults.items()}

    async def usage(self, project_id: str) -> dict[str, int]:
        instances, cores, ram = await self.store.count_usage(project_id)
        return {"instances": instances, "cores": cores, "ram": ram}

    async def show(self, ctx: RequestContext, project_id: str) -> dict[str, int]:
        if not ctx.is_admin and ctx.project_id != project_id:
            raise Forbidden("Policy doesn't allow os_compute_api:os-quota-sets:show "
                            "to be performed.")
        await self._verify(project_id)
        return await self.limits(project_id)

    async def update(self, ctx: RequestContext, project_id: str, limits: Mapping[str, int],
                     force: bool) -> dict[str, int]:
        _require_admin(ctx, "update")
        await self._verify(project_id)
        if not force:
            used = await self.usage(project_id)
            for name, limit in limits.items():
                if name in used and limit != -1 and limit < used[name]:
                    raise Invalid(f"Quota limit {limit} for {name} must be greater than or "
                                  f"equal to already used and reserved {used[name]}.")
        if limits:
            await self.store.set_project_quotas(project_id, limits)
        return await self.limits(project_id)

    async def reset(self, ctx: RequestContext, project_id: str) -> None:
        _require_admin(ctx, "delete")
        await self._verify(project_id)
        await self.store.delete_project_quotas(project_id)

    async def check(self, project_id: str, instances: int, cores: int, ram: int) -> None:
        """Raise OverQuota (403) unless the project can take this much more."""
        limits = await self.limits(project_id)
        used = await self.usage(project_id)
        for name, want in (("instances", instances), ("cores", cores), ("ram", ram)):
            limit = limits[name]
            if limit >= 0 and want and used[name] + want > limit:
                raise OverQuota(f"Quota exceeded for {name}: Requested {want}, but already "
                                f"used {used[name]} of {limit} {name}")

    async def check_injected_files(self, project_id: str,
                                   files: Sequence[tuple[str, bytes]]) -> None:
        """Nova's personality quotas (403): the number of files first, then
        the longest path (reported before contents), then the longest
        decoded contents."""
        if not files:
            return
        limits = await self.limits(project_id)
        allowed = limits["injected_files"]
        if 0 <= allowed < len(files):
            raise OnsetFileLimitExceeded()
        allowed = limits["injected_file_path_bytes"]
        if 0 <= allowed < max(len(path) for path, _ in files):
            raise OnsetFilePathLimitExceeded(allowed)
        allowed = limits["injected_file_content_bytes"]
        if 0 <= allowed < max(len(data) for _, data in files):
            raise OnsetFileContentLimitExceeded(allowed)

    async def _verify(self, project_id: str) -> None:
        """400 for an id the identity service does not know, as Nova answers."""
        if self._project_exists is not None and not await self._project_exists(project_id):
            raise Invalid(f"Project ID {project_id} is not a valid project.")


def _require_admin(ctx: RequestContext, rule: str) -> None:
    if not ctx.is_admin:
        raise Forbidden(f"Policy doesn't allow os_compute_api:os-quota-sets:{rule} "
                        "to be performed.")
