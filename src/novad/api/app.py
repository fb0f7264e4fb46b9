"""The HTTP application: every route behind one middleware stack.

Service packages declare their endpoints as :class:`~novad.api.common.Route`
lists; :func:`build_api` mounts them all and wraps them, in this order:

1. **request id** (outermost): a fresh ``req-<uuid>`` per request, bound in
   structlog's context vars and sent back as ``x-openstack-request-id`` and
   ``x-compute-request-id`` on every response, errors and 404s included;
2. **errors**: every :class:`~novad.errors.NovadError` becomes its status
   and Nova's error body; aiohttp's own 404/405/413 are rendered the same
   way; anything else is logged with its traceback and answered with a 500
   ``computeFault`` that carries no traceback;
3. **gate**: unknown path → 404 and wrong method → 405 whatever the
   credentials; the body limit for non-streaming routes; ``X-Auth-Token``
   for every non-public route; the compute microversion for ``/compute/v2.1``
   and ``/v2.1`` paths (echoed on their responses with ``Vary``).

``GET /openapi.json`` (public) describes every route given, each compute
operation with the microversions that change it.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler as AioHandler
from aiohttp.typedefs import Middleware

from novad.api import microversion
from novad.api.common import CTX, ROUTE, Route, json_response
from novad.config import Config
from novad.context import RequestContext, new_request_id
from novad.errors import (
    BodyTooLarge,
    Conflict,
    Forbidden,
    Invalid,
    MethodNotAllowed,
    NotAcceptable,
    NotAuthenticated,
    NotFound,
    NotImplementedByDriver,
    NovadError,
    UnsupportedMediaType,
)

log = structlog.get_logger(__name__)

TokenValidator = Callable[[str], Awaitable[RequestContext]]
"""Turns an ``X-Auth-Token`` into the caller; raises NotAuthenticated (401)."""

ErrorBody = Callable[[web.Request, NovadError], dict[str, Any]]
"""Renders an error body for a request (identity routes answer in Keystone's shape)."""

REQUEST_ID = web.RequestKey[str]("request_id")
"""The request's ``req-<uuid>``, also the ``request_id`` of its context."""

STREAM_MAX = 1 << 40
"""aiohttp's ``client_max_size``: image uploads stream through; JSON routes
are held to ``[DEFAULT] max_request_body_size`` by the gate and ``read_json``."""

UNEXPECTED = ("Unexpected API Error. Please report this to the novad maintainers and attach "
              "the novad log if possible.\n{cls}")

_COMPUTE_PATH = re.compile(r"^/(compute/)?v2\.1(/|$)")

_COMPUTE_ROOT = re.compile(r"^/(?:compute/)?v2\.1(?:/\{project_id\})?(?=/|$)")
"""A documented compute path's versioned root: either mount, with or without
the project segment (parameters already written bare, ``{project_id}``)."""

_HTTP_ERRORS: dict[int, type[NovadError]] = {
    400: Invalid, 401: NotAuthenticated, 403: Forbidden, 404: NotFound,
    405: MethodNotAllowed, 406: NotAcceptable, 409: Conflict, 413: BodyTooLarge,
    415: UnsupportedMediaType, 501: NotImplementedByDriver,
}

_HTTP_MESSAGES: dict[int, str] = {
    404: "The resource could not be found.",
    405: "The method is not allowed for this resource.",
    413: "Request is too large.",
}


def build_api(config: Config, routes: Sequence[Route],
              validate_token: TokenValidator,
              error_body: ErrorBody | None = None,
              inner: Sequence[Middleware] = ()) -> web.Application:
    """The aiohttp application serving ``routes`` plus ``GET /openapi.json``.

    ``validate_token`` is awaited for every non-public route; ``error_body``
    (when given) renders error bodies instead of ``NovadError.body()``;
    ``inner`` middlewares run after authentication (cluster forwarding).
    Raises ValueError when two routes share a method and path.
    """
    all_routes = [*routes, _openapi_route(routes)]
    table: dict[web.AbstractRoute, Route] = {}
    app = web.Application(
        client_max_size=STREAM_MAX,
        middlewares=[_request_id_middleware(),
                     _error_middleware(error_body),
                     _gate_middleware(config, table, validate_token), *inner])
    _register(app, all_routes, table)
    app.on_response_prepare.append(_stamp_headers)
    return app


# -- registration -------------------------------------------------------------------

def _slash_variant(path: str) -> str | None:
    """The same path with the trailing slash toggled (None for ``/``)."""
    if path == "/":
        return None
    return path[:-1] if path.endswith("/") else path + "/"


def _register(app: web.Application, routes: Sequence[Route],
              table: dict[web.AbstractRoute, Route]) -> None:
    """Add every route, and its slash variant unless that is declared too."""
    declared = {(r.method.upper(), r.path) for r in routes}
    resources: dict[str, web.Resource] = {}
    seen: set[tuple[str, str]] = set()
    for route in routes:
        method = route.method.upper()
        paths = [route.path]
        variant = _slash_variant(route.path)
        if variant is not None and (method, variant) not in declared:
            paths.append(variant)
        for path in paths:
            if (method, path) in seen:
                raise ValueError(f"route {method} {path} declared twice")
            seen.add((method, path))
            resource = resources.get(path)
            if resource is None:
                resource = resources[path] = app.router.add_resource(path)
            table[resource.add_route(method, route.handler)] = route


# -- middleware ---------------------------------------------------------------------

def _request_id_middleware() -> Middleware:
    @web.middleware
    async def request_id(request: web.Request, handler: AioHandler) -> web.StreamResponse:
        """Give the request its id and bind it to every log line it causes."""
        rid = new_request_id()
        request[REQUEST_ID] = rid
        with structlog.contextvars.bound_contextvars(request_id=rid):
            return await handler(request)

    return request_id


async def _stamp_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: request ids everywhere, versions on compute paths."""
    rid = request.get(REQUEST_ID) or new_request_id()
    response.headers["x-openstack-request-id"] = rid
    response.headers["x-compute-request-id"] = rid
    version = request.get(microversion.VERSION_KEY)
    if version is not None:
        response.headers.update(microversion.echo_headers(version))


def _error_middleware(error_body: ErrorBody | None) -> Middleware:
    def render(request: web.Request, exc: NovadError) -> web.Response:
        body = error_body(request, exc) if error_body is not None else exc.body()
        return json_response(body, status=exc.status)

    @web.middleware
    async def errors(request: web.Request, handler: AioHandler) -> web.StreamResponse:
        """The one place errors become HTTP responses."""
        try:
            return await handler(request)
        except NovadError as exc:
            if exc.status >= 500:
                log.warning("request failed", method=request.method, path=request.path,
                            status=exc.status, error=exc.message)
            return render(request, exc)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            response = render(request, _from_http(exc))
            if "Allow" in exc.headers:
                response.headers["Allow"] = exc.headers["Allow"]
            return response
        except Exception as exc:
            log.exception("unexpected API error", method=request.method, path=request.path)
            fault = NovadError(UNEXPECTED.format(cls=type(exc)))
            return render(request, fault)

    return errors


def _from_http(exc: web.HTTPException) -> NovadError:
    """aiohttp's HTTP exceptions in novad's hierarchy."""
    cls = _HTTP_ERRORS.get(exc.status, NovadError)
    return cls(_HTTP_MESSAGES.get(exc.status) or exc.reason)


def _gate_middleware(config: Config, table: dict[web.AbstractRoute, Route],
                     validate_token: TokenValidator) -> Middleware:
    limit = config.DEFAULT.max_request_body_size

    @web.middleware
    async def gate(request: web.Request, handler: AioHandler) -> web.StreamResponse:
        """Routing errors, body limit, authentication, microversion."""
        match = request.match_info
        if match.http_exception is not None:
            raise match.http_exception
        route = table.get(match.route)
        if route is None:  # pragma: no cover - every registered route is in the table
            raise web.HTTPNotFound()
        request[ROUTE] = route
        if not route.streaming and (request.content_length or 0) > limit:
            raise BodyTooLarge()
        if not route.public:
            request[CTX] = await _authenticate(request, validate_token)
        if _COMPUTE_PATH.match(request.path):
            request[microversion.VERSION_KEY] = microversion.from_headers(
                request.headers.get("OpenStack-API-Version"),
                request.headers.get("X-OpenStack-Nova-API-Version"))
        return await handler(request)

    return gate


async def _authenticate(request: web.Request, validate_token: TokenValidator
                        ) -> RequestContext:
    """The caller behind ``X-Auth-Token``, carrying this request's id."""
    token = request.headers.get("X-Auth-Token", "").strip()
    if not token:
        raise NotAuthenticated()
    ctx = await validate_token(token)
    return dataclasses.replace(ctx, request_id=request[REQUEST_ID])


# -- OpenAPI ------------------------------------------------------------------------

_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::[^{}]*)?\}")


def openapi_document(routes: Sequence[Route]) -> dict[str, Any]:
    """An OpenAPI 3.1 description of ``routes`` (paths, methods, request schemas)."""
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        path = _PARAM.sub(r"{\1}", route.path)
        paths.setdefault(path, {})[route.method.lower()] = _operation(route, path)
    return {
        "openapi": "3.1.0",
        "info": {"title": "novad", "version": microversion.MAX_MICROVERSION,
                 "description": "OpenStack-compatible Compute, Identity and Image APIs "
                                "for one node."},
        "x-compute-microversions": _microversions(),
        "paths": paths,
        "components": {"securitySchemes": {
            "X-Auth-Token": {"type": "apiKey", "in": "header", "name": "X-Auth-Token"}}},
        "security": [{"X-Auth-Token": []}],
    }


def _microversions() -> dict[str, Any]:
    """How a compute request picks its microversion, and what each one changes
    (:data:`microversion.HISTORY`): the per-version differences of every path."""
    return {
        "minimum": microversion.MIN_MICROVERSION,
        "maximum": microversion.MAX_MICROVERSION,
        "request_headers": ["OpenStack-API-Version: compute X.Y",
                            "X-OpenStack-Nova-API-Version: X.Y"],
        "default": microversion.MIN_MICROVERSION,
        "history": [{"version": v.text, "changes": v.meaning} for v in microversion.HISTORY],
    }


def _operation(route: Route, path: str) -> dict[str, Any]:
    """One OpenAPI operation object; a compute one lists the microversions
    that change it under ``x-microversions`` (oldest first)."""
    doc = (route.handler.__doc__ or "").strip().splitlines()
    op: dict[str, Any] = {
        "operationId": f"{route.method.lower()}{re.sub(r'[^A-Za-z0-9]+', '_', path)}",
        "summary": route.summary or (doc[0] if doc else ""),
        "responses": {str(code): {"description": text}
                      for code, text in sorted(route.responses.items())}
        or {"default": {"description": "Response"}},
    }
    if route.tag:
        op["tags"] = [route.tag]
    if route.public:
        op["security"] = []
    names = _PARAM.findall(route.path)
    if names:
        op["parameters"] = [{"name": n, "in": "path", "required": True,
                             "schema": {"type": "string"}} for n in names]
    if route.schema is not None:
        op["requestBody"] = {"required": True,
                             "content": {"application/json": {"schema": route.schema}}}
    changes = _version_changes(route.method, path)
    if changes:
        op["x-microversions"] = changes
    return op


def _version_changes(method: str, path: str) -> list[dict[str, str]]:
    """The microversions that change a compute operation, as the
    ``x-compute-microversions`` history writes them; none outside the
    compute mounts.  ``path`` is the documented one, whose mount and optional
    project segment are dropped to give the operation as
    :attr:`microversion.Microversion.affects` names it."""
    root = _COMPUTE_ROOT.match(path)
    if root is None:
        return []
    relative = path[root.end():] or "/"
    return [{"version": v.text, "changes": v.meaning}
            for v in microversion.changing(method, relative)]


def _openapi_route(routes: Sequence[Route]) -> Route:
    async def openapi(request: web.Request) -> web.StreamResponse:
        """This API's OpenAPI description."""
        return json_response(document)

    route = Route("GET", "/openapi.json", openapi, public=True,
                  summary="OpenAPI description of this API", tag="meta",
                  responses={200: "The OpenAPI document"})
    document = openapi_document([*routes, route])
    return route
