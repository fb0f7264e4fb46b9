"""``/servers/{id}/tags`` (microversion 2.26): a server's tags, as Nova
serves them.

- ``GET .../tags`` lists them, ``PUT .../tags`` replaces them all (200 with
  the new list), ``DELETE .../tags`` removes them all (204);
- ``GET .../tags/{tag}`` is 204 when the server has it, else 404;
  ``PUT .../tags/{tag}`` adds one (201 with its Location; 204 when it was
  there already); ``DELETE .../tags/{tag}`` removes one (204; 404 when absent).

Below 2.26 every route is 404.  Writes are refused (409) unless the server
is ACTIVE, PAUSED, SUSPENDED or STOPPED (the compute service's guard); the
forwarding middleware sends these paths to the server's owner, and the tags
live in the instance row, so they replicate and move with it.
"""

from __future__ import annotations

from urllib.parse import quote

import jsonschema
from aiohttp import web

from novad.api import microversion
from novad.api.common import Route, context, json_response, read_json, validate
from novad.api.compute import schemas
from novad.api.compute.parsing import read_body
from novad.api.compute.views import Links
from novad.compute.interface import ComputeAPI
from novad.config import Config
from novad.errors import Invalid, NotFound


def _since(request: web.Request) -> None:
    if not microversion.at_least(request, microversion.SERVER_TAGS):
        raise NotFound("The resource could not be found.")


_TAG_VALIDATOR = jsonschema.Draft4Validator(schemas.TAG)


def _checked_tag(tag: str) -> None:
    """Nova's check of a tag named in the URL (400, in its words)."""
    error = jsonschema.exceptions.best_match(_TAG_VALIDATOR.iter_errors(tag))
    if error is not None:
        raise Invalid(f"Tag '{tag}' is invalid. It must be a non empty string without "
                      f"characters '/' and ','. Validation error message: {error.message}")


def _unique(tags: list[str]) -> list[str]:
    """``tags`` without repeats, first occurrence kept (a set, as Nova stores it)."""
    return list(dict.fromkeys(tags))


class ServerTagHandlers:
    """Handlers of ``/servers/{server_id}/tags[/{tag}]``."""

    def __init__(self, compute: ComputeAPI, config: Config) -> None:
        self.compute = compute
        self.config = config
        self.max_body = config.DEFAULT.max_request_body_size

    async def _tags(self, request: web.Request) -> list[str]:
        _since(request)
        inst = await self.compute.get(context(request), request.match_info["server_id"])
        return list(inst.tags or [])

    async def index(self, request: web.Request) -> web.StreamResponse:
        """The server's tags (2.26)."""
        return json_response({"tags": await self._tags(request)})

    async def show(self, request: web.Request) -> web.StreamResponse:
        """204 when the server has the tag, else 404 (2.26)."""
        tag, server_id = request.match_info["tag"], request.match_info["server_id"]
        if tag not in await self._tags(request):
            raise NotFound(f"Server {server_id} has no tag '{tag}'")
        return web.Response(status=204)

    async def replace(self, request: web.Request) -> web.StreamResponse:
        """Replace every tag (2.26): 200 with the new list."""
        _since(request)
        body = await read_body(request, self.max_body, schemas.SERVER_TAGS_REPLACE)
        tags = await self.compute.edit_tags(context(request), request.match_info["server_id"],
                                            "update tags", lambda _: _unique(body["tags"]))
        return json_response({"tags": tags})

    async def add(self, request: web.Request) -> web.StreamResponse:
        """Add one tag (2.26): 201 with its Location, 204 when it was there."""
        _since(request)
        validate(await read_json(request, self.max_body, required=False),
                 schemas.SERVER_TAG_ADD)
        tag, server_id = request.match_info["tag"], request.match_info["server_id"]
        added: list[bool] = []

        def edit(tags: list[str]) -> list[str]:
            _checked_tag(tag)
            if len(tags) >= schemas.MAX_TAGS:
                raise Invalid("The number of tags exceeded the per-server limit "
                              f"{schemas.MAX_TAGS}")
            if tag in tags:
                return tags
            added.append(True)
            return [*tags, tag]

        await self.compute.edit_tags(context(request), server_id, "update tag", edit)
        if not added:
            return web.Response(status=204)
        location = f"{Links.of(request, self.config).api}/servers/{server_id}/tags/" \
                   f"{quote(tag, safe='')}"
        return web.Response(status=201, headers={"Location": location})

    async def delete(self, request: web.Request) -> web.StreamResponse:
        """Remove one tag (2.26): 204; 404 when the server has no such tag."""
        _since(request)
        tag, server_id = request.match_info["tag"], request.match_info["server_id"]

        def edit(tags: list[str]) -> list[str]:
            if tag not in tags:
                raise NotFound(f"Instance {server_id} has no tag '{tag}'")
            return [t for t in tags if t != tag]

        await self.compute.edit_tags(context(request), server_id, "delete tag", edit)
        return web.Response(status=204)

    async def delete_all(self, request: web.Request) -> web.StreamResponse:
        """Remove every tag (2.26): 204."""
        _since(request)
        await self.compute.edit_tags(context(request), request.match_info["server_id"],
                                     "delete tags", lambda _: [])
        return web.Response(status=204)

    def routes(self) -> list[Route]:
        """The server-tag routes, relative to a versioned mount."""
        base = "/servers/{server_id}/tags"
        one = base + "/{tag}"
        return [
            Route("GET", base, self.index, tag="server tags", summary="List tags (2.26)"),
            Route("PUT", base, self.replace, schema=schemas.SERVER_TAGS_REPLACE,
                  tag="server tags", summary="Replace all tags (2.26)"),
            Route("DELETE", base, self.delete_all, tag="server tags",
                  responses={204: "Removed"}, summary="Remove all tags (2.26)"),
            Route("GET", one, self.show, tag="server tags",
                  responses={204: "The server has the tag"}, summary="Check a tag (2.26)"),
            Route("PUT", one, self.add, tag="server tags",
                  responses={201: "Added", 204: "Already there"}, summary="Add a tag (2.26)"),
            Route("DELETE", one, self.delete, tag="server tags",
                  responses={204: "Removed"}, summary="Remove a tag (2.26)"),
        ]
