"""What the compute routes need from the rest of the daemon, besides
:class:`~novad.compute.interface.ComputeAPI`, :class:`~novad.compute.flavors.FlavorAPI`
and :class:`~novad.compute.keypairs.KeypairAPI`.

The lead's wiring implements these; the handlers call nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from novad.compute.hosts import ComputeHost
from novad.context import RequestContext
from novad.drivers.base import HostResources
from novad.images.model import Image
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


class ImageLookup(Protocol):
    """The images behind Nova's image proxy (``/images``, below 2.36) and
    image metadata (``/images/{id}/metadata``, below 2.39), acting with the
    caller's rights.  :class:`novad.images.service.ImageService` fits as it is.
    """

    async def get(self, ctx: RequestContext, image_id: str) -> Image:
        """A visible image; raises ImageNotFound (404).  Does not block."""

    async def list(self, ctx: RequestContext, *, name: str | None = None,
                   status: str | None = None, properties: Mapping[str, str] | None = None,
                   updated_since: str | None = None, min_ram: int | None = None,
                   min_disk: int | None = None, limit: int | None = None,
                   marker: str | None = None) -> Sequence[Image]:
        """Visible images (the image API's default listing), newest first,
        filtered by equality (``name``, ``status``, extra ``properties``) and
        by lower bounds (``updated_since`` a stored timestamp, ``min_ram``,
        ``min_disk``); one page after ``marker``.  Invalid (400) for a marker
        not in the listing.  Does not block."""

    async def delete(self, ctx: RequestContext, image_id: str) -> None:
        """Delete the image and its data; not idempotent.  ImageNotFound
        (404) when invisible or gone, Forbidden (403) for readers, other
        projects' images and protected ones."""

    async def set_properties(self, ctx: RequestContext, image_id: str,
                             edit: Callable[[dict[str, str]], Mapping[str, str]]) -> Image:
        """Replace the extra properties with ``edit`` of a copy of them, in
        one transaction; returns the updated image.  Whatever ``edit``
        raises propagates and nothing is written.  Forbidden (403) as for
        :meth:`delete` and for a core attribute's name, Invalid (400) for a
        bad value, ImageNotFound (404)."""
