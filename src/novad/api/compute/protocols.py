"""What the compute routes need from the rest of the daemon, besides
:class:`~novad.compute.interface.ComputeAPI`, :class:`~novad.compute.flavors.FlavorAPI`
and :class:`~novad.compute.keypairs.KeypairAPI`.

The lead's wiring implements these; the handlers call nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from novad.context import RequestContext
from novad.drivers.base import HostResources
from novad.store.models import ServiceRow


class NodeInfo(Protocol):
    """This node, for ``/limits``, ``/os-services``, ``/os-hypervisors`` and
    ``/os-availability-zone``."""

    @property
    def host(self) -> str:
        """This node's name (the nova-compute service's host)."""

    async def usage(self, project_id: str) -> tuple[int, int, int]:
        """The project's (instances, cores, ram MiB) in use; does not block."""

    async def resources(self) -> HostResources:
        """This node's capacity and use, from the driver."""

    @property
    def service(self) -> ServiceSwitch | None:
        """This node's nova-compute record; None: always enabled."""


class ServiceSwitch(Protocol):
    """Whether this node's nova-compute takes new instances
    (:class:`novad.compute.service_record.ServiceRecord` fits as it is)."""

    @property
    def row(self) -> ServiceRow:
        """The current record."""

    async def set(self, disabled: bool, reason: str | None = None) -> ServiceRow:
        """Enable, or disable with an optional reason; durable on return."""


class ApiImage(Protocol):
    """An image record that renders itself in Glance v2's shape."""

    def to_api(self, base_url: str = "") -> dict[str, Any]:
        """The flat Glance v2 image object."""


class ImageLookup(Protocol):
    """Read-only images, for Glance-shaped look-ups under the compute mounts
    (clients pointed at the compute endpoint alone look images up there).
    :class:`novad.images.service.ImageService` fits as it is."""

    async def get(self, ctx: RequestContext, image_id: str) -> ApiImage:
        """A visible image; raises ImageNotFound (404)."""

    async def list(self, ctx: RequestContext, *, name: str | None = None,
                   id_in: Sequence[str] | None = None, status: str | None = None,
                   limit: int | None = None, marker: str | None = None) -> Sequence[ApiImage]:
        """Visible images filtered as Glance filters; Invalid (400) for a bad marker."""
