"""Server groups (os-server-groups) as the Compute API serves them, and the
membership calls the lead makes when it places an instance.

A group belongs to a project.  Members and readers of the project see its
groups; members create and delete them; another project's group is a 404
(as Nova's database query filtered it), except for admins, who see and
delete any group and list every project's with ``all_projects``.

Nova's default quotas apply: 10 groups per project and 10 members per
group, as ``/os-quota-sets`` and ``/limits`` show them.

The hosts of a group's members are known to the lead only (members may be
instances of any node), so :func:`scheduler_info` takes them as an argument.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Protocol, cast

from novad.cluster.scheduler import POLICIES, Policy, ServerGroupInfo
from novad.context import RequestContext
from novad.errors import Forbidden, Invalid, OverQuota
from novad.store import Store, utcnow
from novad.store.models import ServerGroup
from novad.store.server_groups import group_not_found

MAX_SERVER_GROUPS = 10
"""Nova's default ``[quota] server_groups`` per project."""

MAX_SERVER_GROUP_MEMBERS = 10
"""Nova's default ``[quota] server_group_members`` per group."""


class ServerGroupAPI(Protocol):
    """The server-group service as the API layer sees it.  Raises NotFound
    (404), Forbidden (403: readers writing), OverQuota (403), Invalid (400)."""

    async def list_groups(self, ctx: RequestContext, all_projects: bool) -> list[ServerGroup]:
        """The caller's project's groups; every project's for an admin who
        asks for ``all_projects`` (others get their own, as in Nova)."""

    async def get_group(self, ctx: RequestContext, group_id: str) -> ServerGroup:
        """One group the caller may see."""

    async def create_group(self, ctx: RequestContext, name: str, policy: str,
                           rules: Mapping[str, int] | None = None) -> ServerGroup:
        """A new, empty group in the caller's project; ``rules`` (2.64) as
        ``max_server_per_host`` for anti-affinity."""

    async def delete_group(self, ctx: RequestContext, group_id: str) -> None:
        """Delete a group the caller may see (its members stay as they are)."""


def _policy_refused(rule: str) -> Forbidden:
    return Forbidden(f"Policy doesn't allow os_compute_api:os-server-groups:{rule} "
                     "to be performed.")


def scheduler_info(group: ServerGroup, hosts: Iterable[str]) -> ServerGroupInfo:
    """The group as the scheduler reads it, with the hosts of its members."""
    if group.policy not in POLICIES:
        raise Invalid(f"Invalid server group policy {group.policy}")
    return ServerGroupInfo(uuid=group.id, policy=cast(Policy, group.policy),
                           hosts=frozenset(hosts), members=frozenset(group.members),
                           rules=dict(group.rules))


class ServerGroupService:
    """Implements :class:`ServerGroupAPI` over :class:`novad.store.Store`,
    plus the lead's membership calls (:meth:`get`, :meth:`add_member`,
    :meth:`remove_member`), which check no policy."""

    def __init__(self, store: Store, max_groups: int = MAX_SERVER_GROUPS,
                 max_members: int = MAX_SERVER_GROUP_MEMBERS) -> None:
        self.store = store
        self.max_groups = max_groups
        self.max_members = max_members

    async def list_groups(self, ctx: RequestContext, all_projects: bool) -> list[ServerGroup]:
        """Own project's groups, or all of them for an admin asking for it."""
        project = None if all_projects and ctx.is_admin else ctx.project_id
        return await self.store.list_server_groups(project)

    async def get_group(self, ctx: RequestContext, group_id: str) -> ServerGroup:
        """NotFound for no such group and for another project's."""
        group = await self.store.get_server_group(group_id)
        if not ctx.is_admin and group.project_id != ctx.project_id:
            raise group_not_found(group_id)
        return group

    async def create_group(self, ctx: RequestContext, name: str, policy: str,
                           rules: Mapping[str, int] | None = None) -> ServerGroup:
        """Forbidden for readers, OverQuota past :data:`MAX_SERVER_GROUPS`;
        Invalid for rules on any policy but anti-affinity, as Nova."""
        if not ctx.can_write:
            raise _policy_refused("create")
        if policy not in POLICIES:
            raise Invalid(f"Invalid server group policy {policy}")
        if rules and policy != "anti-affinity":
            raise Invalid("Only anti-affinity policy supports rules.")
        if await self.store.count_server_groups(ctx.project_id) >= self.max_groups:
            raise OverQuota("Quota exceeded, too many server groups.")
        group = ServerGroup(id=str(uuid.uuid4()), name=name, project_id=ctx.project_id,
                            user_id=ctx.user_id, policy=policy, rules=dict(rules or {}),
                            created_at=utcnow())
        return await self.store.create_server_group(group)

    async def delete_group(self, ctx: RequestContext, group_id: str) -> None:
        """NotFound as :meth:`get_group`; Forbidden for readers."""
        await self.get_group(ctx, group_id)
        if not ctx.can_write:
            raise _policy_refused("delete")
        await self.store.delete_server_group(group_id)

    async def get(self, group_id: str) -> ServerGroup:
        """Any group, for the lead (a ``group`` scheduler hint).  NotFound."""
        return await self.store.get_server_group(group_id)

    async def add_member(self, group_id: str, instance_uuid: str) -> ServerGroup:
        """Make an instance a member; idempotent.  NotFound, and OverQuota
        ("Quota exceeded, too many servers in group") past
        :data:`MAX_SERVER_GROUP_MEMBERS`."""
        return await self.store.add_server_group_member(group_id, instance_uuid,
                                                        self.max_members)

    async def remove_member(self, group_id: str, instance_uuid: str) -> None:
        """Drop an instance from a group (deleted instance); idempotent."""
        await self.store.remove_server_group_member(group_id, instance_uuid)
