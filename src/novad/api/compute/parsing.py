"""Request parsing shared by the compute handlers: bodies, query values, passwords.

Everything here raises :mod:`novad.errors` exceptions with Nova's wording.
"""

from __future__ import annotations

import binascii
import ipaddress
import re
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from multidict import MultiMapping

from novad.api.common import read_json, validate
from novad.errors import Invalid, MalformedBody
from novad.strutils import bool_from_string, parse_bool

MAX_LIMIT = 1000
"""Nova's ``[api] max_limit``: the largest page any list returns."""

_PASSWORD_GROUPS = ("23456789", "ABCDEFGHJKLMNPQRSTUVWXYZ", "abcdefghijkmnopqrstuvwxyz")


def check_user_data(user_data: str) -> None:
    """400 unless ``user_data`` (create, and rebuild from 2.57) is base64."""
    try:
        binascii.a2b_base64(user_data.encode())
    except (binascii.Error, UnicodeEncodeError):
        raise Invalid("Userdata content cannot be decoded") from None


def personality_files(personality: list[dict[str, str]]) -> tuple[tuple[str, bytes], ...]:
    """A schema-valid ``personality`` (create and rebuild below 2.57) as
    (path, decoded contents) pairs; 400 in Nova's words for contents that
    are not base64 (decoded as Nova's base64 format check decodes them)."""
    files = []
    for item in personality:
        try:
            files.append((item["path"], binascii.a2b_base64(item["contents"].encode())))
        except (binascii.Error, UnicodeEncodeError):
            raise Invalid(f"Personality content for {item['path']} cannot be decoded.") \
                from None
    return tuple(files)


async def read_body(request: web.Request, max_size: int, schema: dict[str, Any]) -> Any:
    """The JSON body, checked against ``schema`` (400/413/415 on failure)."""
    body = await read_json(request, max_size)
    validate(body, schema)
    return body


async def read_single_key(request: web.Request, max_size: int) -> tuple[str, Any]:
    """An action body: an object with exactly one key, as (key, value)."""
    body = await read_json(request, max_size)
    if not isinstance(body, dict) or len(body) != 1:
        raise MalformedBody()
    key, value = next(iter(body.items()))
    return str(key), value


ACCESS_IP_FIELDS = {"accessIPv4": "access_ip_v4", "accessIPv6": "access_ip_v6"}
"""Body key of each access IP → its Instance field."""


def access_ips(body: Mapping[str, Any]) -> dict[str, str]:
    """The access IPs a schema-valid create, update or rebuild body sets, as
    Instance fields in canonical form (Nova keeps them as netaddr addresses,
    so ``0000::babe:220.12.22.2`` comes back as ``::babe:dc0c:1602``)."""
    return {field: str(ipaddress.ip_address(body[key]))
            for key, field in ACCESS_IP_FIELDS.items() if key in body}


def to_bool(value: Any) -> bool:
    """A value that passed Nova's ``boolean`` schema, as a bool."""
    return bool_from_string(value)


def bool_param(value: str | None, default: bool = False) -> bool:
    """A lenient boolean query parameter (oslo ``bool_from_string``, not strict)."""
    if value is None:
        return default
    return bool_from_string(value)


def strict_bool(value: str, name: str) -> bool:
    """A strict boolean query parameter; 400 for anything else."""
    parsed = parse_bool(value)
    if parsed is None:
        raise Invalid(f"Invalid value '{value}' for {name}")
    return parsed


def limit_param(query: MultiMapping[str]) -> int:
    """``limit``: a non-negative integer, capped at :data:`MAX_LIMIT`."""
    raw = query.get("limit")
    if raw is None:
        return MAX_LIMIT
    try:
        limit = int(raw)
    except ValueError:
        raise Invalid("limit param must be an integer") from None
    if limit < 0:
        raise Invalid("limit param must be positive")
    return min(limit, MAX_LIMIT)


def int_param(value: str | None, name: str) -> int | None:
    """A non-negative integer query filter (``minRam``...); 400 otherwise."""
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        raise Invalid(f"Invalid {name} filter [{value}]") from None
    if number < 0:
        raise Invalid(f"Invalid {name} filter [{value}]")
    return number


def time_param(value: str | None, name: str) -> str | None:
    """An ISO-8601 query time as the store writes times (naive UTC, µs)."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise Invalid(f"Invalid input for query parameters {name}. Value: {value}. "
                      f"'{value}' is not a 'date-time'") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat(timespec="microseconds")


def regex_param(value: str | None, name: str) -> str | None:
    """A regular-expression filter, checked so the store never sees a bad one."""
    if value is None:
        return None
    try:
        re.compile(value)
    except re.error:
        raise Invalid(f"Invalid regular expression for {name}: {value}") from None
    return value


def to_int(value: Any) -> int:
    """A value that passed an ``["integer", "string"]`` digits schema."""
    return int(value)


def generate_password(length: int = 12) -> str:
    """Nova's ``generate_password``: unambiguous characters, every group present."""
    alphabet = "".join(_PASSWORD_GROUPS)
    while True:
        password = "".join(secrets.choice(alphabet) for _ in range(length))
        if all(any(c in group for c in password) for group in _PASSWORD_GROUPS):
            return password


def spec_values(specs: Mapping[str, Any]) -> dict[str, str]:
    """Extra-spec values as strings (Nova accepts numbers and booleans)."""
    return {str(k): (str(v) if not isinstance(v, str) else v) for k, v in specs.items()}

