"""What the compute routes need from the rest of the daemon, besides
:class:`~novad.compute.interface.ComputeAPI`, :class:`~novad.compute.flavors.FlavorAPI`
and :class:`~novad.compute.keypairs.KeypairAPI`.

The lead's wiring implements these; the handlers call nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from novad.compute.hosts import ComputeHost
from novad.context import RequestContext
from novad.drivers.base import HostResources
from novad.store.models import ServiceRow


class NodeInfo(Protocol):
    """This node, for ``/limits``, and the cluster as it sees it, for
    ``/os-services``, ``/os-hypervisors`` and ``/os-availability-zone``."""

    @property
    def host(self) -> str:
        """This node's name (the nova-compute service's host)."""

    async def usage(self, project_id: str) -> tuple[int, int, int]:
        """The project's (instances, cores, ram MiB) in use; does not block."""

    @property
    def hosts(self) -> HostDirectory:
        """Every compute host of the cluster, this node's among them."""


class HostDirectory(Protocol):
    """The cluster's compute hosts and their service records
    (:class:`novad.compute.hosts.Hosts` fits as it is)."""

    async def list_hosts(self) -> Sequence[ComputeHost]:
        """Every host, by name; does not block."""

    def unreachable(self) -> frozenset[str]:
        """The names of the hosts membership does not believe alive; does
        not block (no store read)."""

    async def hypervisors(self) -> Sequence[tuple[ComputeHost, HostResources]]:
        """Every host with its capacity and use; DriverError while this
        node's hypervisor is unreachable."""

    async def set_service(self, host: str, binary: str, disabled: bool,
                          reason: str | None) -> ServiceRow:
        """Enable, or disable with an optional reason, any host's service;
        durable on return.  Raises NotFound for an unknown host or binary."""

    async def force_down(self, host: str, binary: str, forced_down: bool) -> ServiceRow:
        """Force any host's service down, or clear that; durable on return.
        Raises NotFound for an unknown host or binary."""


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
