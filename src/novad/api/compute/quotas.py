"""os-quota-sets at microversion 2.1: a project's quotas, their defaults and
usage, and the admin's changes to them.

``instances``, ``cores`` and ``ram``, and below 2.57 the personality
quotas (``injected_file*``), are enforced and settable (see
:mod:`novad.compute.quotas`).  The other keys of Nova's 2.1 body are shown at
the values novad applies everywhere: the network ones are Neutron's (-1,
unlimited, as ``/limits`` says), the rest fixed; setting one is a 400 that
says so rather than a change that would do nothing.  From 2.36 the network
keys (:data:`~novad.api.compute.schemas.NETWORK_QUOTAS`) are neither shown
nor accepted, as in Nova.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from novad.api import microversion
from novad.api.common import Route, context, json_response
from novad.api.compute import schemas
from novad.api.compute.misc import require_admin
from novad.api.compute.parsing import read_body
from novad.api.compute.servers import MAX_METADATA_ITEMS
from novad.compute.keypairs import MAX_KEYPAIRS
from novad.compute.quotas import MAX_LIMIT, RESOURCES, QuotaAPI
from novad.config import Config
from novad.errors import Invalid, ValidationFailed
from novad.strutils import parse_bool

FIXED: dict[str, int] = {
    "fixed_ips": -1, "floating_ips": -1, "security_group_rules": -1, "security_groups": -1,
    "key_pairs": MAX_KEYPAIRS, "metadata_items": MAX_METADATA_ITEMS,
    "server_group_members": 10, "server_groups": 10,
}
"""The quota_set keys novad does not let a project change, with their values."""


def quota_view(limits: dict[str, int],
               version: tuple[int, int] = microversion.BASE.key) -> dict[str, int]:
    """Every key of ``version``, in Nova's order (from 2.36 without the
    network ones)."""
    merged = {**FIXED, **limits}
    hidden = schemas.NETWORK_QUOTAS if version >= microversion.PROXY_APIS_GONE.key else ()
    return {key: merged[key] for key in schemas.QUOTA_KEYS if key not in hidden}


def at_version(view: dict[str, Any], request: web.Request) -> dict[str, Any]:
    """``view`` without the keys the request's version removed (2.57: the
    personality quotas)."""
    if not microversion.at_least(request, microversion.PERSONALITY_GONE):
        return view
    return {k: v for k, v in view.items() if k not in schemas.PERSONALITY_QUOTAS}


class QuotaHandlers:
    """``/os-quota-sets/{tenant_id}`` and its ``/detail`` and ``/defaults``."""

    def __init__(self, quotas: QuotaAPI, config: Config) -> None:
        self.quotas = quotas
        self.max_body = config.DEFAULT.max_request_body_size

    async def show(self, request: web.Request) -> web.StreamResponse:
        """A project's quotas (admin, or a role on the project)."""
        project = _project(request)
        limits = await self.quotas.show(context(request), project)
        return json_response({"quota_set": {"id": project, **at_version(quota_view(
            limits, microversion.of(request)), request)}})

    async def detail(self, request: web.Request) -> web.StreamResponse:
        """A project's quotas with what it uses of each."""
        project = _project(request)
        limits = quota_view(await self.quotas.show(context(request), project),
                            microversion.of(request))
        used = await self.quotas.usage(project)
        body: dict[str, Any] = {"id": project}
        for key, limit in limits.items():
            body[key] = {"in_use": used.get(key, 0), "limit": limit, "reserved": 0}
        return json_response({"quota_set": at_version(body, request)})

    async def defaults(self, request: web.Request) -> web.StreamResponse:
        """The quotas of a project that has none of its own."""
        context(request)
        return json_response({"quota_set": {"id": _project(request), **at_version(quota_view(
            self.quotas.defaults(), microversion.of(request)), request)}})

    async def update(self, request: web.Request) -> web.StreamResponse:
        """Set some of a project's quotas (admin); ``force`` allows a limit
        below the current use."""
        project = _project(request)
        if microversion.at_least(request, microversion.PERSONALITY_GONE):
            schema = schemas.QUOTA_SET_UPDATE_V2_57
        elif microversion.at_least(request, microversion.PROXY_APIS_GONE):
            schema = schemas.QUOTA_SET_UPDATE_V2_36
        else:
            schema = schemas.QUOTA_SET_UPDATE
        body = (await read_body(request, self.max_body, schema))["quota_set"]
        force = parse_bool(body.pop("force", False)) is True
        limits: dict[str, int] = {}
        for key, raw in body.items():
            value = int(raw)
            if not -1 <= value <= MAX_LIMIT:
                raise ValidationFailed(f"Invalid input for field/attribute quota_set/{key}. "
                                       f"Value: {raw}. "
                                       f"{value} is not between -1 and {MAX_LIMIT}")
            if key not in RESOURCES:
                raise Invalid(f"Quota {key} cannot be changed in novad: it is fixed at "
                              f"{FIXED[key]}. Only {', '.join(RESOURCES)} can be set.")
            limits[key] = value
        updated = await self.quotas.update(context(request), project, limits, force)
        return json_response({"quota_set": at_version(
            quota_view(updated, microversion.of(request)), request)})

    def _class_view(self, request: web.Request) -> dict[str, int]:
        merged = {**FIXED, **self.quotas.defaults()}
        return {key: merged[key] for key in schemas.quota_class_keys(microversion.of(request))}

    async def class_show(self, request: web.Request) -> web.StreamResponse:
        """A quota class (admin): every class is the defaults, as in Nova, where
        only the ``default`` class is ever applied."""
        require_admin(context(request), "os-quota-class-sets:show")
        return json_response({"quota_class_set": {"id": request.match_info["class_name"],
                                                  **self._class_view(request)}})

    async def class_update(self, request: web.Request) -> web.StreamResponse:
        """Change a quota class (admin): novad's defaults are its ``[quota]``
        configuration, so a body naming any quota is 400; an empty one
        answers the class."""
        require_admin(context(request), "os-quota-class-sets:update")
        body = await read_body(request, self.max_body,
                               schemas.quota_class_update(microversion.of(request)))
        if body["quota_class_set"]:
            raise Invalid("Quota classes cannot be changed in novad: the default quotas are "
                          "its [quota] configuration, and no other class is applied.")
        return json_response({"quota_class_set": self._class_view(request)})

    async def delete(self, request: web.Request) -> web.StreamResponse:
        """Return a project to the default quotas (admin)."""
        await self.quotas.reset(context(request), _project(request))
        return web.Response(status=202)

    def routes(self) -> list[Route]:
        """The quota-set routes, relative to a versioned mount."""
        one = "/os-quota-sets/{tenant_id}"
        tag = "quota sets"
        klass = "/os-quota-class-sets/{class_name}"
        return [
            Route("GET", klass, self.class_show, tag="quota classes",
                  summary="Show a quota class: the defaults (admin)"),
            Route("PUT", klass, self.class_update, tag="quota classes",
                  schema=schemas.quota_class_update(microversion.BASE.key),
                  summary="Change a quota class (admin; 400: novad's come from [quota])"),
            Route("GET", one, self.show, tag=tag, summary="Show a project's quotas"),
            Route("GET", one + "/detail", self.detail, tag=tag,
                  summary="Show a project's quotas and usage"),
            Route("GET", one + "/defaults", self.defaults, tag=tag,
                  summary="Show the default quotas"),
            Route("PUT", one, self.update, schema=schemas.QUOTA_SET_UPDATE, tag=tag,
                  summary="Set a project's quotas (admin)"),
            Route("DELETE", one, self.delete, tag=tag, responses={202: "Accepted"},
                  summary="Return a project to the default quotas (admin)"),
        ]


def _project(request: web.Request) -> str:
    """The project id of the path; per-user quotas are not kept."""
    if "user_id" in request.query:
        raise Invalid("Per-user quotas are not supported by novad; quotas apply per project.")
    return request.match_info["tenant_id"]
