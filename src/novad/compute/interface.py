"""What the compute service offers the API layer (and later the cluster).

The HTTP handlers call only this; they never touch the store, the state
machine or the driver.  Every method raises errors from :mod:`novad.errors`.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from novad.context import RequestContext
from novad.drivers.base import GuestDiagnostics, MigrationProgress
from novad.store.models import ActionRecord, FaultRecord, Flavor, Instance, Migration


@dataclass(frozen=True)
class CreateRequest:
    """A validated ``POST /servers`` body."""

    name: str
    flavor_id: str
    image_id: str
    min_count: int = 1
    max_count: int = 1
    key_name: str | None = None
    user_data: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    networks: Any = None
    config_drive: bool = False
    availability_zone: str | None = None
    admin_pass: str | None = None
    description: str | None = None
    """The server's description (microversion 2.19)."""
    access_ip_v4: str | None = None
    """``accessIPv4``, canonical (Nova 2.1 keeps and shows it)."""
    access_ip_v6: str | None = None
    """``accessIPv6``, canonical."""
    hostname: str | None = None
    """The guest's hostname (2.90); None: derived from the name."""
    disk_config: str = "MANUAL"
    """``OS-DCF:diskConfig``: AUTO or MANUAL (kept and shown; the disk is
    grown to the flavor's size either way)."""
    tags: tuple[str, ...] = ()
    """The server's tags (microversion 2.52), duplicates dropped."""
    group: str | None = None
    """The ``group`` scheduler hint: the servers join that server group."""
    trusted_certs: tuple[str, ...] | None = None
    """2.63 ``trusted_image_certificates``: kept with the server and shown."""
    files: tuple[tuple[str, bytes], ...] = ()
    """``personality`` (below 2.57): (path, decoded contents) of each file
    the guest gets on its config drive; kept with the server, never shown."""
    claim: bool = False
    """The cluster's scheduler chose this node: claim the resources first."""
    no_valid_host: str | None = None
    """The scheduler found no host (why): the servers go to ERROR, as in Nova."""


@dataclass(frozen=True)
class ListFilters:
    """``GET /servers[/detail]`` query filters."""

    name: str | None = None
    status: str | None = None
    changes_since: str | None = None
    limit: int | None = None
    marker: str | None = None
    all_tenants: bool = False
    project_id: str | None = None
    host: str | None = None
    deleted: bool = False
    tags: tuple[str, ...] | None = None
    """2.26 ``tags``: servers with every one of these tags."""
    tags_any: tuple[str, ...] | None = None
    """2.26 ``tags-any``: servers with at least one of these tags."""
    not_tags: tuple[str, ...] | None = None
    """2.26 ``not-tags``: servers without at least one of these tags."""
    not_tags_any: tuple[str, ...] | None = None
    """2.26 ``not-tags-any``: servers with none of these tags."""
    changes_before: str | None = None
    """2.66 ``changes-before``: servers changed at or before it (deleted ones too)."""
    locked: bool | None = None
    """2.73 ``locked``: only locked (True) or only unlocked (False) servers."""
    sort_locked: str | None = None
    """2.73 ``sort_key=locked``: "asc" or "desc" (unlocked first when ascending)."""
    image: str | None = None
    """``image``: servers booted from this image id (Nova 2.1)."""
    flavor: str | None = None
    """``flavor``: servers of this flavor id (Nova 2.1)."""
    attributes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Nova's attribute filters (admins', and from 2.83 everyone's), by
    Instance field: a server passes when its field matches one of the values
    (:data:`REGEX_ATTRIBUTES` as regular expressions searched in the text,
    the others exactly)."""

    def matches_attributes(self, inst: Instance) -> bool:
        """Whether ``inst`` passes every attribute filter."""
        return all(any(_attribute_matches(inst, name, value) for value in values)
                   for name, values in self.attributes.items())

    def matches_tags(self, tags: Sequence[str]) -> bool:
        """Whether a server with ``tags`` passes the four tag filters."""
        have = set(tags)
        return ((self.tags is None or have.issuperset(self.tags))
                and (self.tags_any is None or not have.isdisjoint(self.tags_any))
                and (self.not_tags is None or not have.issuperset(self.not_tags))
                and (self.not_tags_any is None or have.isdisjoint(self.not_tags_any)))

    def matches_boot(self, inst: Instance) -> bool:
        """Whether ``inst`` passes the ``image`` and ``flavor`` filters."""
        return ((self.image is None or inst.image_ref == self.image)
                and (self.flavor is None or inst.flavor.id == self.flavor))

    @property
    def by_boot(self) -> bool:
        """Whether the ``image`` or ``flavor`` filter is set."""
        return self.image is not None or self.flavor is not None

    @property
    def by_tags(self) -> bool:
        """Whether any tag filter is set."""
        return any(f is not None for f in (self.tags, self.tags_any, self.not_tags,
                                           self.not_tags_any))


REGEX_ATTRIBUTES = frozenset({"availability_zone", "key_name", "created_at", "launched_at",
                              "terminated_at"})
"""Attribute filters Nova matches as regular expressions (the rest exactly)."""


def _attribute_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, enum.Enum):
        return str(value.value)
    return str(value)


def _attribute_matches(inst: Instance, name: str, wanted: str) -> bool:
    text = _attribute_text(getattr(inst, name))
    if name not in REGEX_ATTRIBUTES:
        return text == wanted
    try:
        return re.search(wanted, text) is not None
    except re.error:
        return False


@dataclass(frozen=True)
class ActionResult:
    """What an accepted action returns to the caller besides its status."""

    admin_pass: str | None = None
    image_id: str | None = None
    instance: Instance | None = None
    done: Awaitable[None] | None = None  # completes when the work has ended


class ComputeAPI(Protocol):
    """The compute service, as the API layer sees it."""

    async def create(self, ctx: RequestContext, req: CreateRequest) -> list[Instance]:
        """Accept a boot (202): quota-checked, recorded, spawned in the background."""

    async def get(self, ctx: RequestContext, instance_id: str, *, replica: bool = False
                  ) -> Instance:
        """One visible instance; another project's is InstanceNotFound (404).
        ``replica``: another node's, as last replicated (its node is down)."""

    async def list_servers(self, ctx: RequestContext, filters: ListFilters) -> list[Instance]:
        """Visible instances, newest first."""

    async def update(self, ctx: RequestContext, instance_id: str, name: str | None,
                     description: str | None = None, *, set_description: bool = False,
                     access_ips: Mapping[str, str] | None = None,
                     hostname: str | None = None) -> Instance:
        """Rename, and with ``set_description`` set the description (2.19;
        None clears it); ``access_ips`` sets ``access_ip_v4``/``access_ip_v6``
        fields; set the ``hostname`` (2.90); not a state change."""

    async def edit_metadata(self, ctx: RequestContext, instance_id: str, verb: str,
                            edit: Callable[[dict[str, str]], dict[str, str]]) -> dict[str, str]:
        """Change the metadata with ``edit``, guarded as Nova guards it; ``verb``
        ("update" or "delete") names a refusal."""

    async def edit_tags(self, ctx: RequestContext, instance_id: str, action: str,
                        edit: Callable[[list[str]], list[str]]) -> list[str]:
        """Change the server's tags with ``edit`` (2.26): refused (409) outside
        ACTIVE, PAUSED, SUSPENDED and STOPPED, as Nova; ``action`` ("update
        tag", "delete tags", ...) names the refusal.  Returns the new tags."""

    async def delete(self, ctx: RequestContext, instance_id: str) -> None:
        """``DELETE /servers/{id}`` (soft delete when reclaim_instance_interval > 0)."""

    async def act(self, ctx: RequestContext, instance_id: str, action: str,
                  params: Mapping[str, Any]) -> ActionResult:
        """Run one action of the action table by its table name (``pause``,
        ``reboot_hard``, ``resize``, ``create_image`` ...) with validated
        parameters; returns when the action is accepted (the work goes on
        under the supervisor)."""

    async def server_groups_of(self, ctx: RequestContext, instance: Instance) -> list[str]:
        """The ids of the server groups the instance belongs to (2.71)."""

    async def fault(self, instance: Instance) -> FaultRecord | None:
        """The latest fault, for the server view."""

    async def console_output(self, ctx: RequestContext, instance_id: str,
                             length: int | None) -> str:
        """The tail of the guest's console log, Nova-cleaned."""

    async def console_url(self, ctx: RequestContext, instance_id: str, protocol: str,
                          console_type: str) -> str:
        """A console URL with a fresh token."""

    async def instance_actions(self, ctx: RequestContext, instance_id: str, *,
                               deleted: bool = False) -> list[ActionRecord]:
        """The instance's actions, newest first; with ``deleted`` (2.21) a
        deleted instance's too (else it is InstanceNotFound)."""

    async def instance_action(self, ctx: RequestContext, instance_id: str,
                              request_id: str, *, deleted: bool = False) -> ActionRecord:
        """One action with its events (``deleted`` as for :meth:`instance_actions`)."""

    async def flavors(self, ctx: RequestContext) -> Sequence[Flavor]:
        """Flavors visible to the caller."""

    async def live_migrations(self, ctx: RequestContext, instance_id: str) -> list[Migration]:
        """The server's in-progress live migrations (2.23)."""

    async def live_migration(self, ctx: RequestContext, instance_id: str,
                             migration_id: str) -> Migration:
        """One in-progress live migration of the server (2.23); NotFound otherwise."""

    async def live_migration_progress(self, instance_id: str) -> MigrationProgress | None:
        """The running live migration's reading here; None when none runs."""

    async def diagnostics(self, ctx: RequestContext, instance_id: str
                          ) -> tuple[Instance, GuestDiagnostics]:
        """The server and its guest's readings (server diagnostics); 409
        unless the guest is running, as Nova."""

    async def force_complete(self, ctx: RequestContext, instance_id: str,
                             migration_id: str) -> None:
        """Make a running live migration finish (2.22): Conflict unless the
        server is migrating, NotFound, Invalid unless it is ``running``."""

    async def abort_live_migration(self, ctx: RequestContext, instance_id: str,
                                   migration_id: str, *, queued_too: bool = False) -> None:
        """Cancel a running live migration (2.24), or with ``queued_too`` (2.65)
        a queued or preparing one; errors as :meth:`force_complete`."""
