"""Which image attributes a client may set, to what, and Glance's JSON patch.

Pure functions: no I/O.  Used by :class:`novad.images.service.ImageService`
for both ``POST /v2/images`` (a flat object) and
``PATCH /v2/images/{id}`` (``application/openstack-images-v2.1-json-patch``:
a list of ``add`` / ``replace`` / ``remove`` operations on ``/<attribute>``,
plus ``/tags/<index>`` and ``/tags/-``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from novad.errors import Conflict, Forbidden, Invalid
from novad.images.model import (
    CONTAINER_FORMATS,
    DISK_FORMATS,
    READ_ONLY,
    RESERVED,
    Image,
    ImageStatus,
    Visibility,
)

MAX_NAME = 255
MAX_VALUE = 65535


def _string(key: str, value: Any, *, nullable: bool = False, limit: int = MAX_NAME) -> Any:
    if value is None and nullable:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise Invalid(f"Invalid value for attribute '{key}': expected a string of at most "
                      f"{limit} characters, got {_show(value)}.")
    return value


def _choice(options: tuple[str, ...]) -> Callable[[str, Any], Any]:
    def check(key: str, value: Any) -> Any:
        if value is not None and value not in options:
            raise Invalid(f"Invalid value '{value}' for attribute '{key}': "
                          f"must be one of {', '.join(options)}.")
        return value
    return check


def _boolean(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise Invalid(f"Invalid value for attribute '{key}': expected a boolean, "
                      f"got {_show(value)}.")
    return value


def _count(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise Invalid(f"Invalid value for attribute '{key}': expected an integer >= 0, "
                      f"got {_show(value)}.")
    return value


def _tags(key: str, value: Any) -> list[str]:
    if not isinstance(value, list):
        raise Invalid(f"Invalid value for attribute '{key}': expected a list of strings.")
    tags: list[str] = []
    for tag in value:
        _string("tag", tag)
        if tag not in tags:
            tags.append(tag)
    return tags


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:80] + "..."


_CORE_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    "name": lambda k, v: _string(k, v, nullable=True),
    "visibility": _choice(tuple(str(v) for v in Visibility)),
    "protected": _boolean,
    "os_hidden": _boolean,
    "owner": _string,
    "disk_format": _choice(DISK_FORMATS),
    "container_format": _choice(CONTAINER_FORMATS),
    "min_disk": _count,
    "min_ram": _count,
    "tags": _tags,
}
WRITABLE_CORE = frozenset(_CORE_CHECKS)
"""Core attributes a client may set (subject to :func:`check_policy`)."""


def check_writable(key: str) -> None:
    """403 for read-only and reserved attribute names."""
    if key in READ_ONLY:
        raise Forbidden(f"Attribute '{key}' is read-only.")
    if key in RESERVED:
        raise Forbidden(f"Attribute '{key}' is reserved.")


def core_value(key: str, value: Any) -> Any:
    """``value`` checked (400) and normalised for the core attribute ``key``."""
    return _CORE_CHECKS[key](key, value)


def extra_value(key: str, value: Any) -> str:
    """An extra property's value: a string, as Glance's schema demands."""
    if not key or len(key) > MAX_NAME:
        raise Invalid(f"Invalid property name '{key[:MAX_NAME]}'.")
    return str(_string(key, value, limit=MAX_VALUE))


def split_create_body(body: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """A ``POST /v2/images`` body as (core attributes, extra properties).

    ``id`` is passed through (checked by the caller); read-only and
    reserved names are 403; extra properties whose value is null are
    dropped (openstacksdk sends them so).
    """
    core: dict[str, Any] = {}
    extra: dict[str, str] = {}
    for key, value in body.items():
        if key == "id":
            continue
        check_writable(key)
        if key in WRITABLE_CORE:
            core[key] = core_value(key, value)
        elif value is not None:
            extra[key] = extra_value(key, value)
    return core, extra


def check_policy(before: Image | None, after: Image, is_admin: bool) -> None:
    """Glance's default policy on a create (``before`` None) or an update.

    Only admins publicise images or give them to another project; the
    formats are fixed once data is in.
    """
    def changed(attr: str) -> bool:
        return before is None or bool(getattr(before, attr) != getattr(after, attr))

    if after.visibility == Visibility.PUBLIC and changed("visibility") and not is_admin:
        raise Forbidden("You are not authorized to complete publicize_image action.")
    if before is not None and changed("owner") and not is_admin:
        raise Forbidden("You are not authorized to change the owner of an image.")
    if before is not None and before.status != ImageStatus.QUEUED:
        for attr in ("disk_format", "container_format"):
            if changed(attr):
                raise Forbidden(f"Attribute {attr} can be only replaced for a queued image.")


def _parse_path(path: Any) -> list[str]:
    if not isinstance(path, str) or not path.startswith("/") or path == "/":
        raise Invalid(f"Invalid JSON pointer for this resource: '{path}'")
    tokens = [t.replace("~1", "/").replace("~0", "~") for t in path[1:].split("/")]
    if len(tokens) > 2 or (len(tokens) == 2 and tokens[0] != "tags"):
        raise Invalid(f"Nested paths are not allowed: '{path}'")
    return tokens


def _check_op(op: Any) -> tuple[str, list[str], Any]:
    if not isinstance(op, dict) or op.get("op") not in ("add", "replace", "remove"):
        raise Invalid("Operations must be JSON objects with 'op' one of add, replace, remove.")
    if op["op"] != "remove" and "value" not in op:
        raise Invalid(f"Operation '{op['op']}' requires a 'value'.")
    return str(op["op"]), _parse_path(op.get("path")), op.get("value")


def from_v2_0_patch(ops: Any) -> Any:
    """Glance's older patch dialect (``application/openstack-images-v2.0-json-patch``,
    which Tempest still sends): each operation names its kind as its key,
    ``{"add": "/path", "value": ...}``.  Returned in the RFC 6902 form
    :func:`apply_patch` reads; anything else is left for it to refuse."""
    if not isinstance(ops, list):
        return ops
    converted: list[Any] = []
    for op in ops:
        kinds = [k for k in ("add", "replace", "remove") if isinstance(op, dict) and k in op]
        if len(kinds) != 1 or set(op) - {kinds[0], "value"}:
            converted.append(op)
            continue
        kind = kinds[0]
        converted.append({"op": kind, "path": op[kind],
                          **({"value": op["value"]} if "value" in op else {})})
    return converted


def _tag_op(tags: list[str], kind: str, index: str, value: Any) -> list[str]:
    tags = list(tags)
    if kind == "add" and index == "-":
        return _tags("tags", [*tags, value])
    if not index.isdigit() or int(index) >= len(tags) + (kind == "add"):
        raise Conflict(f"Tag index {index} does not exist.")
    pos = int(index)
    if kind == "add":
        tags.insert(pos, value)
    elif kind == "replace":
        tags[pos] = value
    else:
        del tags[pos]
    return _tags("tags", tags)


def apply_patch(image: Image, ops: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """Glance's JSON patch applied to ``image``'s attributes.

    Returns the changed core attributes and the whole new property dict.
    400 for malformed operations or values, 403 for read-only/reserved
    attributes or removal of a core attribute, 409 for replacing or
    removing a property that does not exist.  Policy is left to
    :func:`check_policy`.
    """
    if not isinstance(ops, list):
        raise Invalid("A JSON patch must be a list of operations.")
    core: dict[str, Any] = {}
    props = dict(image.properties)
    for raw in ops:
        kind, tokens, value = _check_op(raw)
        key = tokens[0]
        check_writable(key)
        if len(tokens) == 2:
            core["tags"] = _tag_op(core.get("tags", image.tags), kind, tokens[1], value)
        elif key == "tags" and kind == "remove":
            core["tags"] = []
        elif key in WRITABLE_CORE:
            if kind == "remove":
                raise Forbidden(f"Property {key} may not be removed.")
            core[key] = core_value(key, value)
        elif kind == "remove":
            if props.pop(key, None) is None:
                raise Conflict(f"Property {key} does not exist.")
        else:
            if kind == "replace" and key not in props:
                raise Conflict(f"Property {key} does not exist.")
            props[key] = extra_value(key, value)
    return core, props
