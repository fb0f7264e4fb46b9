"""Nova's image proxy under the compute mounts: ``/images`` (list, detail,
show, delete; 404 from 2.36) and ``/images/{id}/metadata`` (404 from 2.39).

Nova answers these from Glance in its own shapes (``{"image": {...}}`` with
``minRam``, ``progress``, ``metadata``...), not Glance's; clients that still
speak them (Tempest's ``create_image_from_server`` polls
``GET /images/{id}`` at 2.1 and deletes through ``DELETE /images/{id}``)
validate those shapes.  Everything goes through the image service with the
caller's rights, so its visibility and write rules (protected images,
other projects' images) hold here as on ``/image/v2``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from aiohttp import web
from multidict import MultiMapping

from novad.api import microversion
from novad.api.common import Route, context, json_response
from novad.api.compute import schemas
from novad.api.compute.paging import Page
from novad.api.compute.parsing import int_param, read_body
from novad.api.compute.protocols import ImageLookup
from novad.api.compute.proxies import proxy_served
from novad.api.compute.servers import MAX_METADATA_ITEMS
from novad.api.compute.views import Links, iso_z
from novad.config import Config
from novad.errors import Forbidden, ImageNotFound, Invalid, NotFound
from novad.images.model import Image
from novad.strutils import parse_bool

STATUSES: Mapping[str, str] = {
    "active": "ACTIVE", "queued": "SAVING", "saving": "SAVING", "uploading": "SAVING",
    "importing": "SAVING", "killed": "ERROR", "deleted": "DELETED",
    "pending_delete": "DELETED",
}
"""Nova's image status for each Glance status; any other is ``UNKNOWN``."""

PROGRESS: Mapping[str, int] = {"ACTIVE": 100, "SAVING": 50}
"""Nova's ``progress`` by its status (a queued image is 25); otherwise 0."""

IMAGE_TYPE = "application/vnd.openstack.image"
"""The media type of the ``alternate`` link (the image service's record)."""


def nova_status(glance_status: str) -> str:
    """Nova's ``status`` of an image in this Glance status."""
    return STATUSES.get(glance_status, "UNKNOWN")


def progress(glance_status: str) -> int:
    """Nova's ``progress`` of an image in this Glance status."""
    if glance_status == "queued":
        return 25
    return PROGRESS.get(nova_status(glance_status), 0)


def image_links(image_id: str, links: Links) -> list[dict[str, str]]:
    """self, bookmark, and the image service's record as ``alternate``."""
    return [*links.pair("images", image_id),
            {"rel": "alternate", "type": IMAGE_TYPE,
             "href": f"{links.base}/image/images/{image_id}"}]


def image_brief(image: Image, links: Links) -> dict[str, Any]:
    """An item of ``GET /images``."""
    return {"id": image.id, "name": image.name, "links": image_links(image.id, links)}


def image_view(image: Image, links: Links) -> dict[str, Any]:
    """Nova's full image view (show, and each item of ``/images/detail``)."""
    metadata = {key: str(value) for key, value in image.properties.items()}
    view: dict[str, Any] = {
        "id": image.id, "name": image.name,
        "minRam": image.min_ram, "minDisk": image.min_disk, "metadata": metadata,
        "created": iso_z(image.created_at), "updated": iso_z(image.updated_at),
        "status": nova_status(image.status), "progress": progress(image.status),
        "links": image_links(image.id, links), "OS-EXT-IMG-SIZE:size": image.size,
    }
    server = metadata.get("instance_uuid")
    if server is not None:
        view["server"] = {"id": server, "links": links.pair("servers", server)}
    disk_config = metadata.get("auto_disk_config")
    if disk_config is not None:
        view["OS-DCF:diskConfig"] = "AUTO" if parse_bool(disk_config) else "MANUAL"
    return view


def list_filters(query: MultiMapping[str]) -> dict[str, Any]:
    """Nova's image list filters as the image service's keyword arguments:
    ``server`` (an id or a server URL) and ``type`` are the snapshot
    properties ``instance_uuid`` and ``image_type``, ``property-<key>``
    any extra property; statuses are Glance's (lower case).  Other query
    parameters are ignored, as Nova ignores them."""
    properties = {key.removeprefix("property-"): value for key, value in query.items()
                  if key.startswith("property-")}
    if query.get("server"):
        properties["instance_uuid"] = query["server"].rsplit("/", 1)[-1]
    if query.get("type"):
        properties["image_type"] = query["type"]
    status = query.get("status")
    return {"name": query.get("name"), "status": None if status is None else status.lower(),
            "properties": properties or None,
            "min_ram": int_param(query.get("minRam"), "minRam"),
            "min_disk": int_param(query.get("minDisk"), "minDisk")}


@contextlib.contextmanager
def nova_not_found() -> Iterator[None]:
    """Nova's image proxy answers an image the caller cannot see with its own
    404 message, "Image not found.", not the image service's."""
    try:
        yield
    except ImageNotFound:
        raise NotFound("Image not found.") from None


def metadata_served(request: web.Request) -> None:
    """404 from 2.39, where Nova's image-metadata proxy went."""
    if microversion.at_least(request, microversion.IMAGE_METADATA_PROXY_GONE):
        raise NotFound("The resource could not be found.")


def within_quota(metadata: dict[str, str]) -> dict[str, str]:
    """``metadata`` if it fits Nova's ``[quota] metadata_items``; 403 otherwise."""
    if len(metadata) > MAX_METADATA_ITEMS:
        raise Forbidden("Image metadata limit exceeded")
    return metadata


class ImageHandlers:
    """Nova's image proxy and image metadata, over the image service."""

    def __init__(self, images: ImageLookup, config: Config) -> None:
        self.images = images
        self.config = config
        self.max_body = config.DEFAULT.max_request_body_size

    async def _list(self, request: web.Request, collection: str, detail: bool
                    ) -> web.StreamResponse:
        proxy_served(request)
        ctx = context(request)
        page = Page.of(request.query)
        found = await self.images.list(ctx, **list_filters(request.query),
                                       updated_since=page.changes_since,
                                       limit=page.limit, marker=page.marker)
        links = Links.of(request, self.config)
        view = image_view if detail else image_brief
        body: dict[str, Any] = {"images": [view(image, links) for image in found]}
        if page.full(found):
            body["images_links"] = links.next_page(collection, request.query.items(),
                                                   found[-1].id)
        return json_response(body)

    async def index(self, request: web.Request) -> web.StreamResponse:
        """List images: id, name and links of each."""
        return await self._list(request, "images", detail=False)

    async def detail(self, request: web.Request) -> web.StreamResponse:
        """List images with every detail."""
        return await self._list(request, "images/detail", detail=True)

    async def show(self, request: web.Request) -> web.StreamResponse:
        """Show one image in Nova's shape."""
        proxy_served(request)
        with nova_not_found():
            image = await self.images.get(context(request), request.match_info["image_id"])
        return json_response({"image": image_view(image, Links.of(request, self.config))})

    async def delete(self, request: web.Request) -> web.StreamResponse:
        """Delete an image, as the image API would for the caller."""
        proxy_served(request)
        with nova_not_found():
            await self.images.delete(context(request), request.match_info["image_id"])
        return web.Response(status=204)

    # -- metadata -----------------------------------------------------------------

    async def _metadata(self, request: web.Request) -> dict[str, str]:
        metadata_served(request)
        with nova_not_found():
            image = await self.images.get(context(request), request.match_info["image_id"])
        return dict(image.properties)

    async def _set(self, request: web.Request,
                   change: Callable[[dict[str, str]], dict[str, str]]) -> Image:
        """``change`` applied to the URL's image's metadata, as the image API
        would apply it for the caller."""
        with nova_not_found():
            return await self.images.set_properties(context(request),
                                                    request.match_info["image_id"], change)

    async def _body(self, request: web.Request, schema: dict[str, Any]) -> Any:
        """The request body, once the version is known to serve the route
        (a 2.39 request is 404 whatever its body)."""
        metadata_served(request)
        context(request)
        return await read_body(request, self.max_body, schema)

    async def metadata_index(self, request: web.Request) -> web.StreamResponse:
        """Show the image's metadata (its extra properties)."""
        return json_response({"metadata": await self._metadata(request)})

    async def metadata_merge(self, request: web.Request) -> web.StreamResponse:
        """Add or overwrite metadata items; answers all of them."""
        items = (await self._body(request, schemas.METADATA_SET))["metadata"]
        image = await self._set(request, lambda current: within_quota({**current, **items}))
        return json_response({"metadata": image.properties})

    async def metadata_replace(self, request: web.Request) -> web.StreamResponse:
        """Replace all metadata items."""
        items = (await self._body(request, schemas.METADATA_SET))["metadata"]
        image = await self._set(request, lambda _current: within_quota(dict(items)))
        return json_response({"metadata": image.properties})

    async def metadata_show(self, request: web.Request) -> web.StreamResponse:
        """Show one metadata item."""
        key = request.match_info["key"]
        metadata = await self._metadata(request)
        if key not in metadata:
            raise NotFound("The resource could not be found.")
        return json_response({"meta": {key: metadata[key]}})

    async def metadata_put(self, request: web.Request) -> web.StreamResponse:
        """Set one metadata item; the body's key must be the URL's."""
        key = request.match_info["key"]
        meta = (await self._body(request, schemas.METADATA_ITEM))["meta"]
        if key not in meta:
            raise Invalid("Request body and URI mismatch")
        await self._set(request, lambda current: within_quota({**current, key: meta[key]}))
        return json_response({"meta": {key: meta[key]}})

    async def metadata_delete(self, request: web.Request) -> web.StreamResponse:
        """Delete one metadata item."""
        metadata_served(request)
        key = request.match_info["key"]

        def without(current: dict[str, str]) -> dict[str, str]:
            if current.pop(key, None) is None:
                raise NotFound("Invalid metadata key")
            return current

        await self._set(request, without)
        return web.Response(status=204)

    def routes(self) -> list[Route]:
        """The image proxy routes, relative to a versioned mount."""
        one, meta = "/images/{image_id}", "/images/{image_id}/metadata"
        tag, meta_tag = "images (below 2.36)", "image metadata (below 2.39)"
        return [
            Route("GET", "/images", self.index, tag=tag),
            Route("GET", "/images/detail", self.detail, tag=tag),
            Route("GET", one, self.show, tag=tag),
            Route("DELETE", one, self.delete, tag=tag, responses={204: "Deleted"}),
            Route("GET", meta, self.metadata_index, tag=meta_tag),
            Route("POST", meta, self.metadata_merge, schema=schemas.METADATA_SET, tag=meta_tag),
            Route("PUT", meta, self.metadata_replace, schema=schemas.METADATA_SET,
                  tag=meta_tag),
            Route("GET", meta + "/{key}", self.metadata_show, tag=meta_tag),
            Route("PUT", meta + "/{key}", self.metadata_put, schema=schemas.METADATA_ITEM,
                  tag=meta_tag),
            Route("DELETE", meta + "/{key}", self.metadata_delete, tag=meta_tag,
                  responses={204: "Deleted"}),
        ]
