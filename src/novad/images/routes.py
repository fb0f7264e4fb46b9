"""The Glance v2 HTTP API, mounted under ``/image``.

Thin handlers: parse, call :class:`~novad.images.service.ImageService`,
render.  Errors are raised as :mod:`novad.errors` exceptions and rendered by
the app's middleware.  What the real clients need of it is written down in
``/work/shared/reference/openstack-clients.md`` ("Image").
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from multidict import MultiMapping

from novad.api.common import Route, base_url, context, json_response, read_json
from novad.config import Config
from novad.errors import BodyTooLarge, Invalid, MalformedBody, UnsupportedMediaType
from novad.images.api_schema import IMAGE_SCHEMA, IMAGES_SCHEMA
from novad.images.files import CHUNK
from novad.images.model import Image
from novad.images.rules import from_v2_0_patch
from novad.images.service import ImageService

IMAGE_SIZE_CAP = 1 << 40
"""Largest image accepted, bytes (Glance's ``image_size_cap`` default: 1 TiB)."""

DEFAULT_LIMIT = 25
MAX_LIMIT = 1000
PATCH_TYPES = frozenset({"application/openstack-images-v2.1-json-patch",
                         "application/openstack-images-v2.0-json-patch"})

MAX_VERSION = 16
"""Image API v2.<MAX_VERSION> is advertised as CURRENT, the rest SUPPORTED."""

# Query parameters that are not extra-property filters.  member_status,
# size_min/size_max and the time filters are accepted and not applied:
# novad has no image members and nothing asks for ranges.
_LIST_PARAMS = frozenset({"limit", "marker", "name", "id", "status", "visibility", "owner",
                          "tag", "os_hidden", "sort", "sort_key", "sort_dir", "member_status",
                          "disk_format", "container_format", "checksum", "os_hash_value",
                          "protected", "size", "size_min", "size_max", "created_at",
                          "updated_at"})


def versions_body(base: str) -> dict[str, Any]:
    """Glance's version document: v2.0 … v2.<MAX_VERSION>, newest first."""
    link = [{"rel": "self", "href": f"{base}/image/v2/"}]
    return {"versions": [
        {"id": f"v2.{minor}", "status": "CURRENT" if minor == MAX_VERSION else "SUPPORTED",
         "links": link}
        for minor in range(MAX_VERSION, -1, -1)
    ]}


def _flag(name: str, value: str) -> bool:
    if value.lower() not in ("true", "false"):
        raise Invalid(f"Invalid value for {name}: {value!r} (expected true or false).")
    return value.lower() == "true"


def _limit(query: MultiMapping[str]) -> int:
    raw = query.get("limit")
    if raw is None:
        return DEFAULT_LIMIT
    if not raw.isdigit():
        raise Invalid("limit param must be an integer")
    return min(int(raw), MAX_LIMIT)


def _sort(query: MultiMapping[str]) -> list[tuple[str, str]]:
    """``sort=k1:asc,k2`` or ``sort_key=k1&sort_key=k2&sort_dir=desc``."""
    if "sort" in query:
        pairs = [part.partition(":") for part in query["sort"].split(",") if part]
        return [(k.strip(), (d or "desc").strip()) for k, _, d in pairs]
    keys = query.getall("sort_key", ["created_at"])
    dirs = query.getall("sort_dir", [])
    return [(key, dirs[min(i, len(dirs) - 1)] if dirs else "desc")
            for i, key in enumerate(keys)]


def _filters(query: MultiMapping[str]) -> dict[str, Any]:
    """Keyword arguments of :meth:`ImageService.list` from a query string."""
    raw_id = query.get("id")
    id_in = None
    if raw_id is not None:
        id_in = [i.strip().strip('"') for i in raw_id.removeprefix("in:").split(",")
                 if i.strip()]
    match: dict[str, Any] = {
        k: query[k] for k in ("disk_format", "container_format", "checksum",
                              "os_hash_value") if k in query}
    if "protected" in query:
        match["protected"] = int(_flag("protected", query["protected"]))
    if "size" in query:
        if not query["size"].isdigit():
            raise Invalid("size must be an integer")
        match["size"] = int(query["size"])
    return {
        "name": query.get("name"), "id_in": id_in, "status": query.get("status"),
        "visibility": query.get("visibility"), "owner": query.get("owner"),
        "tags": query.getall("tag", []), "match": match,
        "hidden": _flag("os_hidden", query.get("os_hidden", "false")),
        "properties": {k: v for k, v in query.items() if k not in _LIST_PARAMS},
        "marker": query.get("marker"), "sort": _sort(query),
    }


class ImageApi:
    """The handlers, bound to one service and configuration."""

    def __init__(self, service: ImageService, config: Config, image_size_cap: int) -> None:
        self.service = service
        self.config = config
        self.image_size_cap = image_size_cap

    def _base(self, request: web.Request) -> str:
        return base_url(request, self.config.api.public_endpoint)

    def _show(self, request: web.Request, image: Image, status: int = 200) -> web.Response:
        return json_response(image.to_api(self._base(request)), status=status)

    async def versions(self, request: web.Request) -> web.Response:
        """``GET /image``: 300 Multiple Choices with the version list."""
        return json_response(versions_body(self._base(request)), status=300)

    async def versions_ok(self, request: web.Request) -> web.Response:
        """``GET /image/versions``: the same document, 200."""
        return json_response(versions_body(self._base(request)))

    async def schema_image(self, request: web.Request) -> web.Response:
        """``GET /image/v2/schemas/image``."""
        return json_response(IMAGE_SCHEMA)

    async def schema_images(self, request: web.Request) -> web.Response:
        """``GET /image/v2/schemas/images``."""
        return json_response(IMAGES_SCHEMA)

    async def list_images(self, request: web.Request) -> web.Response:
        """``GET /image/v2/images``: one page, with ``next`` when there is more."""
        ctx = context(request)
        limit = _limit(request.query)
        images = await self.service.list(ctx, limit=limit + 1, **_filters(request.query))
        body: dict[str, Any] = {"images": [i.to_api(self._base(request))
                                           for i in images[:limit]],
                                "first": "/v2/images", "schema": "/v2/schemas/images"}
        if len(images) > limit and limit > 0:
            params = [(k, v) for k, v in request.query.items() if k not in ("marker", "limit")]
            params += [("marker", images[limit - 1].id), ("limit", str(limit))]
            body["next"] = f"/v2/images?{urlencode(params)}"
        return json_response(body)

    async def create_image(self, request: web.Request) -> web.Response:
        """``POST /image/v2/images``: 201 and the new (queued) image."""
        ctx = context(request)
        body = await read_json(request, self.config.DEFAULT.max_request_body_size)
        if not isinstance(body, dict):
            raise Invalid("The request body must be a JSON object.")
        image = await self.service.create(ctx, body)
        return self._show(request, image, status=201)

    async def show_image(self, request: web.Request) -> web.Response:
        """``GET /image/v2/images/{image_id}``: the bare image object."""
        image = await self.service.get(context(request), request.match_info["image_id"])
        return self._show(request, image)

    async def image_tasks(self, request: web.Request) -> web.Response:
        """``GET /image/v2/images/{image_id}/tasks`` (v2.12): the image's import
        tasks, in Glance's ``{"tasks": [...]}``; novad imports nothing through
        tasks (data is uploaded), so the list is empty.  404 as show for an
        image the caller cannot see."""
        await self.service.get(context(request), request.match_info["image_id"])
        return json_response({"tasks": []})

    async def _read_patch(self, request: web.Request) -> Any:
        if request.content_type not in PATCH_TYPES:
            raise UnsupportedMediaType(
                f"Unsupported Content-Type {request.content_type}; use "
                "application/openstack-images-v2.1-json-patch")
        limit = self.config.DEFAULT.max_request_body_size
        if request.content_length is not None and request.content_length > limit:
            raise BodyTooLarge()
        raw = await request.content.read(limit + 1)
        if len(raw) > limit:
            raise BodyTooLarge()
        try:
            ops = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise MalformedBody() from None
        if request.content_type == "application/openstack-images-v2.0-json-patch":
            return from_v2_0_patch(ops)
        return ops

    async def update_image(self, request: web.Request) -> web.Response:
        """``PATCH /image/v2/images/{image_id}`` with a Glance JSON patch."""
        ctx = context(request)
        ops = await self._read_patch(request)
        image = await self.service.update(ctx, request.match_info["image_id"], ops)
        return self._show(request, image)

    async def delete_image(self, request: web.Request) -> web.Response:
        """``DELETE /image/v2/images/{image_id}``: 204."""
        await self.service.delete(context(request), request.match_info["image_id"])
        return web.Response(status=204)

    async def upload(self, request: web.Request) -> web.Response:
        """``PUT /image/v2/images/{image_id}/file``: stream the body to disk; 204."""
        ctx = context(request)
        if request.content_type != "application/octet-stream":
            raise UnsupportedMediaType(
                f"Unsupported Content-Type {request.content_type}; use application/octet-stream")
        announced = request.content_length or 0
        hint = request.headers.get("X-OpenStack-Image-Size", "")
        if hint.isdigit():
            announced = max(announced, int(hint))
        if announced > self.image_size_cap:
            raise BodyTooLarge(f"Image exceeds the storage limit of {self.image_size_cap} bytes.")
        await self.service.upload(ctx, request.match_info["image_id"],
                                  request.content.iter_chunked(CHUNK), self.image_size_cap)
        return web.Response(status=204)

    async def download(self, request: web.Request) -> web.StreamResponse:
        """``GET /image/v2/images/{image_id}/file``: the data, streamed from
        disk; 204 when the image has no data yet."""
        image, path = await self.service.open_data(context(request),
                                                   request.match_info["image_id"])
        if path is None:
            return web.Response(status=204)
        headers = {"Content-Type": "application/octet-stream"}
        if image.checksum:
            headers["Content-MD5"] = image.checksum
        return web.FileResponse(path, chunk_size=CHUNK, headers=headers)

    async def deactivate(self, request: web.Request) -> web.Response:
        """``POST /image/v2/images/{image_id}/actions/deactivate``: 204 (admin)."""
        await self.service.set_active(context(request), request.match_info["image_id"], False)
        return web.Response(status=204)

    async def reactivate(self, request: web.Request) -> web.Response:
        """``POST /image/v2/images/{image_id}/actions/reactivate``: 204 (admin)."""
        await self.service.set_active(context(request), request.match_info["image_id"], True)
        return web.Response(status=204)

    async def add_tag(self, request: web.Request) -> web.Response:
        """``PUT /image/v2/images/{image_id}/tags/{tag}``: 204."""
        await self.service.add_tag(context(request), request.match_info["image_id"],
                                   request.match_info["tag"])
        return web.Response(status=204)

    async def remove_tag(self, request: web.Request) -> web.Response:
        """``DELETE /image/v2/images/{image_id}/tags/{tag}``: 204."""
        await self.service.remove_tag(context(request), request.match_info["image_id"],
                                      request.match_info["tag"])
        return web.Response(status=204)


def routes(service: ImageService, config: Config, *,
           image_size_cap: int = IMAGE_SIZE_CAP) -> list[Route]:
    """The image API's route table."""
    api = ImageApi(service, config, image_size_cap)
    one = "/image/v2/images/{image_id}"
    tag = "images"
    return [
        Route("GET", "/image", api.versions, public=True, tag=tag,
              summary="Image API versions", responses={300: "version list"}),
        Route("GET", "/image/versions", api.versions_ok, public=True, tag=tag,
              summary="Image API versions"),
        Route("GET", "/image/v2/schemas/image", api.schema_image, tag=tag,
              summary="The image JSON schema"),
        Route("GET", "/image/v2/schemas/images", api.schema_images, tag=tag,
              summary="The image list JSON schema"),
        Route("GET", "/image/v2/images", api.list_images, tag=tag, summary="List images"),
        Route("POST", "/image/v2/images", api.create_image, tag=tag, summary="Create an image",
              responses={201: "the image"}),
        Route("GET", one, api.show_image, tag=tag, summary="Show an image"),
        Route("GET", f"{one}/tasks", api.image_tasks, tag=tag,
              summary="List an image's tasks (none: novad has no import tasks)"),
        Route("PATCH", one, api.update_image, tag=tag,
              summary="Update an image (Glance JSON patch)"),
        Route("DELETE", one, api.delete_image, tag=tag, summary="Delete an image",
              responses={204: "deleted"}),
        Route("PUT", f"{one}/file", api.upload, streaming=True, tag=tag,
              summary="Upload image data", responses={204: "stored"}),
        Route("GET", f"{one}/file", api.download, tag=tag, summary="Download image data",
              responses={200: "the data", 204: "no data yet"}),
        Route("POST", f"{one}/actions/deactivate", api.deactivate, tag=tag,
              summary="Deactivate an image", responses={204: "done"}),
        Route("POST", f"{one}/actions/reactivate", api.reactivate, tag=tag,
              summary="Reactivate an image", responses={204: "done"}),
        Route("PUT", f"{one}/tags/{{tag}}", api.add_tag, tag=tag, summary="Add a tag",
              responses={204: "done"}),
        Route("DELETE", f"{one}/tags/{{tag}}", api.remove_tag, tag=tag,
              summary="Remove a tag", responses={204: "done"}),
    ]
