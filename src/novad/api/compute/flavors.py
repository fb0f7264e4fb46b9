"""``/flavors``: list, show, create, delete, access lists and extra specs (2.1 shapes)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from novad.api import microversion
from novad.api.common import Route, context, json_response, validate
from novad.api.compute import extra_specs, schemas
from novad.api.compute.parsing import (
    int_param,
    limit_param,
    read_body,
    read_single_key,
    spec_values,
    to_bool,
    to_int,
)
from novad.api.compute.views import Links, flavor_access, flavor_brief, flavor_detail
from novad.compute.flavors import FlavorAPI, FlavorCreate, FlavorQuery
from novad.config import Config
from novad.context import RequestContext
from novad.errors import Invalid, NoSuchAction, NotFound
from novad.store.models import Flavor
from novad.strutils import parse_bool


def parse_is_public(value: str | None) -> bool | None:
    """Nova's ``is_public`` filter: absent = True, ``none`` = all, else a strict bool."""
    if value is None:
        return True
    if value.strip().lower() == "none":
        return None
    parsed = parse_bool(value)
    if parsed is None:
        raise Invalid(f"Invalid is_public filter [{value}]")
    return parsed


def flavor_query(request: web.Request, ctx: RequestContext) -> FlavorQuery:
    """The list filters; ``is_public`` is read only for admins, as Nova."""
    query = request.query
    return FlavorQuery(
        is_public=parse_is_public(query.get("is_public")) if ctx.is_admin else True,
        min_ram=int_param(query.get("minRam"), "minRam"),
        min_disk=int_param(query.get("minDisk"), "minDisk"),
        limit=limit_param(query), marker=query.get("marker"))


def flavor_create(flavor: dict[str, Any]) -> FlavorCreate:
    """A schema-valid ``flavor`` object as a :class:`FlavorCreate`."""
    flavor_id = flavor.get("id")
    return FlavorCreate(
        name=flavor["name"], ram=to_int(flavor["ram"]), vcpus=to_int(flavor["vcpus"]),
        disk=to_int(flavor["disk"]), id=None if flavor_id is None else str(flavor_id),
        ephemeral=to_int(flavor.get("OS-FLV-EXT-DATA:ephemeral", 0)),
        swap=to_int(flavor.get("swap", 0)),
        rxtx_factor=float(flavor.get("rxtx_factor", 1.0)),
        is_public=to_bool(flavor.get("os-flavor-access:is_public", True)),
        description=flavor.get("description"))


def _described(request: web.Request) -> bool:
    """Whether flavors have a description at the request's version (2.55)."""
    return microversion.at_least(request, microversion.FLAVOR_DESCRIPTION)


class FlavorHandlers:
    """Handlers of ``/flavors`` and its sub-resources."""

    def __init__(self, flavors: FlavorAPI, config: Config) -> None:
        self.flavors = flavors
        self.config = config
        self.max_body = config.DEFAULT.max_request_body_size

    async def _list(self, request: web.Request, detail: bool) -> web.StreamResponse:
        ctx = context(request)
        query = flavor_query(request, ctx)
        found = await self.flavors.list_flavors(ctx, query)
        links, version = Links.of(request, self.config), microversion.of(request)
        view = flavor_detail if detail else flavor_brief
        body: dict[str, Any] = {"flavors": [view(f, links, version) for f in found]}
        if found and query.limit is not None and len(found) >= query.limit:
            collection = "flavors/detail" if detail else "flavors"
            body["flavors_links"] = links.next_page(collection, request.query.items(),
                                                    found[-1].id)
        return json_response(body)

    async def index(self, request: web.Request) -> web.StreamResponse:
        """List flavors (id, name, links)."""
        return await self._list(request, detail=False)

    async def detail(self, request: web.Request) -> web.StreamResponse:
        """List flavors with details."""
        return await self._list(request, detail=True)

    async def show(self, request: web.Request) -> web.StreamResponse:
        """Show one flavor."""
        flavor = await self.flavors.get_flavor(context(request), request.match_info["flavor_id"])
        return json_response({"flavor": self._view(request, flavor)})

    def _view(self, request: web.Request, flavor: Flavor) -> dict[str, Any]:
        return flavor_detail(flavor, Links.of(request, self.config), microversion.of(request))

    async def create(self, request: web.Request) -> web.StreamResponse:
        """Create a flavor (admin); with a ``description`` from 2.55."""
        ctx = context(request)
        body = await read_body(request, self.max_body, schemas.FLAVOR_CREATE_V2_55
                               if _described(request) else schemas.FLAVOR_CREATE)
        flavor = await self.flavors.create_flavor(ctx, flavor_create(body["flavor"]))
        return json_response({"flavor": self._view(request, flavor)})

    async def update(self, request: web.Request) -> web.StreamResponse:
        """Set or clear a flavor's description (admin; 2.55, 404 before as Nova)."""
        ctx = context(request)
        if not _described(request):
            raise NotFound("The resource could not be found.")
        body = await read_body(request, self.max_body, schemas.FLAVOR_UPDATE)
        flavor = await self.flavors.update_flavor(ctx, request.match_info["flavor_id"],
                                                  body["flavor"]["description"])
        return json_response({"flavor": self._view(request, flavor)})

    async def delete(self, request: web.Request) -> web.StreamResponse:
        """Delete a flavor (admin; servers keep their copy)."""
        await self.flavors.delete_flavor(context(request), request.match_info["flavor_id"])
        return web.Response(status=202)

    async def access(self, request: web.Request) -> web.StreamResponse:
        """List the projects given a private flavor (admin)."""
        flavor_id = request.match_info["flavor_id"]
        projects = await self.flavors.flavor_access(context(request), flavor_id)
        return json_response(flavor_access(flavor_id, projects))

    async def action(self, request: web.Request) -> web.StreamResponse:
        """addTenantAccess / removeTenantAccess (admin); adding a project to a
        public flavor is 409 from 2.7, recorded before."""
        ctx = context(request)
        flavor_id = request.match_info["flavor_id"]
        key, argument = await read_single_key(request, self.max_body)
        schema = schemas.FLAVOR_ACTION_ARGUMENTS.get(key)
        if schema is None:
            raise NoSuchAction(key)
        validate({key: argument}, schemas.envelope(key, schema))
        if key == "addTenantAccess":
            projects = await self.flavors.add_flavor_access(
                ctx, flavor_id, argument["tenant"], public_conflict=microversion.at_least(
                    request, microversion.PUBLIC_FLAVOR_ACCESS_CONFLICT))
        else:
            projects = await self.flavors.remove_flavor_access(ctx, flavor_id,
                                                               argument["tenant"])
        return json_response(flavor_access(flavor_id, projects))

    @staticmethod
    def _checked(request: web.Request, specs: dict[str, str]) -> dict[str, str]:
        """``specs`` once 2.86's validation of the known ones passes (400
        otherwise); a non-admin's are left to the policy check (403), which
        Nova makes first."""
        if microversion.at_least(request, microversion.EXTRA_SPEC_VALIDATION) \
                and context(request).is_admin:
            extra_specs.validate(specs)
        return specs

    async def specs_index(self, request: web.Request) -> web.StreamResponse:
        """Show a flavor's extra specs."""
        specs = await self.flavors.extra_specs(context(request), request.match_info["flavor_id"])
        return json_response({"extra_specs": specs})

    async def specs_create(self, request: web.Request) -> web.StreamResponse:
        """Add or overwrite extra specs (admin); echoes the ones given."""
        body = await read_body(request, self.max_body, schemas.EXTRA_SPECS_SET)
        specs = self._checked(request, spec_values(body["extra_specs"]))
        await self.flavors.set_extra_specs(context(request), request.match_info["flavor_id"],
                                           specs)
        return json_response({"extra_specs": specs})

    async def specs_show(self, request: web.Request) -> web.StreamResponse:
        """Show one extra spec."""
        flavor_id, key = request.match_info["flavor_id"], request.match_info["key"]
        specs = await self.flavors.extra_specs(context(request), flavor_id)
        if key not in specs:
            raise NotFound(f"Flavor {flavor_id} has no extra specs with key {key}.")
        return json_response({key: specs[key]})

    async def specs_put(self, request: web.Request) -> web.StreamResponse:
        """Set one extra spec (admin); the body's key must be the URL's."""
        flavor_id, key = request.match_info["flavor_id"], request.match_info["key"]
        body = await read_body(request, self.max_body, schemas.EXTRA_SPEC_ITEM)
        if key not in body:
            raise Invalid("Request body and URI mismatch")
        specs = self._checked(request, spec_values(body))
        await self.flavors.set_extra_specs(context(request), flavor_id, specs)
        return json_response(specs)

    async def specs_delete(self, request: web.Request) -> web.StreamResponse:
        """Delete one extra spec (admin)."""
        await self.flavors.delete_extra_spec(context(request), request.match_info["flavor_id"],
                                             request.match_info["key"])
        return web.Response(status=202)

    def routes(self) -> list[Route]:
        """The flavor routes, relative to a versioned mount."""
        one, specs = "/flavors/{flavor_id}", "/flavors/{flavor_id}/os-extra_specs"
        return [
            Route("GET", "/flavors", self.index, tag="flavors"),
            Route("GET", "/flavors/detail", self.detail, tag="flavors"),
            Route("POST", "/flavors", self.create, schema=schemas.FLAVOR_CREATE,
                  tag="flavors"),
            Route("GET", one, self.show, tag="flavors"),
            Route("PUT", one, self.update, schema=schemas.FLAVOR_UPDATE, tag="flavors",
                  summary="Set or clear a flavor's description (admin; 2.55)"),
            Route("DELETE", one, self.delete, tag="flavors", responses={202: "Deleted"}),
            Route("GET", one + "/os-flavor-access", self.access, tag="flavor access"),
            Route("POST", one + "/action", self.action, schema=schemas.FLAVOR_ACTION,
                  tag="flavor access"),
            Route("GET", specs, self.specs_index, tag="flavor extra specs"),
            Route("POST", specs, self.specs_create, schema=schemas.EXTRA_SPECS_SET,
                  tag="flavor extra specs"),
            Route("GET", specs + "/{key}", self.specs_show, tag="flavor extra specs"),
            Route("PUT", specs + "/{key}", self.specs_put, schema=schemas.EXTRA_SPEC_ITEM,
                  tag="flavor extra specs"),
            Route("DELETE", specs + "/{key}", self.specs_delete, tag="flavor extra specs",
                  responses={202: "Deleted"}),
        ]
