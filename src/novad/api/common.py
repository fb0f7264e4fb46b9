"""What every HTTP module shares: the route record, the request context, JSON bodies.

Each service package (``api/compute``, ``identity``, ``images``) declares its
routes as a list of :class:`Route`; :mod:`novad.api.app` mounts them all
behind one middleware stack (request ids, errors, authentication).  Handlers
raise :mod:`novad.errors` exceptions and never build error responses.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import jsonschema
import orjson
from aiohttp import web

from novad.context import RequestContext
from novad.errors import (
    BodyTooLarge,
    MalformedBody,
    NotAuthenticated,
    UnsupportedMediaType,
    ValidationFailed,
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Route:
    """One endpoint: method, path (aiohttp syntax), handler.

    ``public`` routes (version discovery, token issue) need no token.
    ``streaming`` routes read their own body (image upload) and are exempt
    from the JSON body limit.  ``summary``/``schema`` feed ``/openapi.json``.
    """

    method: str
    path: str
    handler: Handler
    public: bool = False
    streaming: bool = False
    summary: str = ""
    schema: dict[str, Any] | None = None
    responses: dict[int, str] = field(default_factory=dict)
    tag: str = ""


CTX: web.RequestKey[RequestContext] = web.RequestKey("novad.ctx", RequestContext)
"""Key under which the auth middleware stores the RequestContext on a request."""

ROUTE: web.RequestKey[Route] = web.RequestKey("novad.route", Route)
"""Key under which the app stores the matched :class:`Route` on a request."""


def context(request: web.Request) -> RequestContext:
    """The authenticated caller; NotAuthenticated if the route was public."""
    ctx = request.get(CTX)
    if not isinstance(ctx, RequestContext):
        raise NotAuthenticated()
    return ctx


@dataclass(frozen=True)
class Placed:
    """What the cluster's scheduler decided for a create request."""

    claim: bool = False
    """This node was chosen: claim the resources before creating."""
    no_valid_host: str | None = None
    """No node fits (why): the servers go to ERROR with NoValidHost."""


PLACED: web.RequestKey[Placed] = web.RequestKey("novad.placed", Placed)
"""Set by the cluster's forwarding middleware on a create request."""

REPLICA: web.RequestKey[bool] = web.RequestKey("novad.replica", bool)
"""Show the instance from the replicated record: its node is unreachable."""

RAW_BODY: web.RequestKey[bytes] = web.RequestKey("novad.raw_body", bytes)
"""A body a middleware already read (cluster forwarding); read_json uses it."""


async def read_limited(request: web.Request, max_size: int) -> bytes:
    """The raw body; 413 past ``max_size`` (by Content-Length or while reading)."""
    if request.content_length is not None and request.content_length > max_size:
        raise BodyTooLarge()
    # StreamReader.read(n) returns whatever is buffered (up to n), not n
    # bytes: keep reading until EOF or just past the limit.
    raw = bytearray()
    while len(raw) <= max_size:
        chunk = await request.content.read(max_size + 1 - len(raw))
        if not chunk:
            break
        raw += chunk
    if len(raw) > max_size:
        raise BodyTooLarge()
    return bytes(raw)


async def read_json(request: web.Request, max_size: int, *, required: bool = True) -> Any:
    """The request body parsed as JSON, with Nova's errors.

    413 when larger than ``max_size`` (checked against Content-Length and
    while reading), 415 for a non-JSON content type, 400 for bad JSON.
    An empty body is ``None`` when not ``required``.
    """
    if request.content_length is not None and request.content_length > max_size:
        raise BodyTooLarge()
    ctype = request.content_type
    if request.can_read_body and ctype not in ("application/json", "application/octet-stream",
                                               "text/plain", "") \
            and not ctype.endswith("+json"):
        raise UnsupportedMediaType(f"Unsupported Content-Type {ctype}")
    raw = request[RAW_BODY] if RAW_BODY in request else await read_limited(request, max_size)
    if len(raw) > max_size:
        raise BodyTooLarge()
    if not raw.strip():
        if required:
            raise MalformedBody()
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise MalformedBody() from None


def validate(body: Any, schema: dict[str, Any]) -> None:
    """Check ``body`` against a JSON schema; 400 in Nova's wording on failure.

    A small body that passed once is remembered (by schema and canonical
    JSON) and not checked again: the same few action bodies (``{"pause":
    null}``) arrive over and over, and jsonschema spent about a tenth of
    the daemon's time under load re-checking them.
    """
    validator = _validator(schema)
    try:  # canonical text; NaN stays NaN (orjson would write null)
        text: str | None = json.dumps(body, sort_keys=True)
    except (TypeError, ValueError, RecursionError):
        text = None
    key = (id(schema), text) if text is not None and len(text) <= _VALID_BODY_MAX else None
    if key is not None and key in _VALID:
        return
    try:
        error = jsonschema.exceptions.best_match(validator.iter_errors(body))
        if error is not None:
            raise error
    except jsonschema.ValidationError as exc:
        path = "/".join(str(p) for p in exc.absolute_path) or "body"
        value = exc.instance
        raise ValidationFailed(
            f"Invalid input for field/attribute {path}. Value: {_short(value)}. {exc.message}"
        ) from None
    if key is not None:
        if len(_VALID) >= _VALID_MAX:
            _VALID.clear()
        _VALID.add(key)


_VALID: set[tuple[int, str]] = set()
"""Bodies that passed, keyed by schema identity (safe: :func:`_validator`
keeps every schema it has seen alive) and canonical JSON."""
_VALID_MAX = 4096
_VALID_BODY_MAX = 512


_VALIDATORS: dict[int, tuple[dict[str, Any], Any]] = {}

_FORMATS = jsonschema.FormatChecker(formats=("ipv4", "ipv6"))
"""The formats checked: Nova's access IPs' (others are patterns or code)."""


def _validator(schema: dict[str, Any]) -> Any:
    """A checked, compiled validator per schema object.

    ``jsonschema.validate`` re-checks the schema and builds a validator on
    every call, which cost milliseconds per request; schemas are module
    constants, so one validator each is built once (keyed by identity, the
    schema kept alive beside it so the id cannot be reused).
    """
    entry = _VALIDATORS.get(id(schema))
    if entry is None or entry[0] is not schema:
        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)
        entry = _VALIDATORS[id(schema)] = (schema, cls(schema, format_checker=_FORMATS))
    return entry[1]


def _short(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else value
    return text if len(text) <= 200 else text[:200] + "..."


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None
                  ) -> web.Response:
    """A JSON response (compact, UTF-8), encoded with orjson: a list of
    1,000 servers encodes several times faster than with the stdlib."""
    return web.Response(body=orjson.dumps(body), status=status,
                        headers=headers, content_type="application/json")


def base_url(request: web.Request, public_endpoint: str) -> str:
    """The base URL clients reach this node by (config wins over the Host header)."""
    if public_endpoint:
        return public_endpoint.rstrip("/")
    return f"{request.scheme}://{request.host}"
