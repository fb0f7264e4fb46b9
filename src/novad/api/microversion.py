"""Compute API microversions: which we serve, and how a request asks for one.

We advertise only versions whose response shapes we serve exactly.  The
clients take the lower of our maximum and their own, so with a maximum of
2.1 every request arrives at 2.1 (``openstack-clients.md``, Compute).
"""

from __future__ import annotations

import re

from aiohttp import web

from novad.errors import Invalid, NotAcceptable

MIN_MICROVERSION = "2.1"
"""The oldest microversion served (Nova's v2.1 base)."""

MAX_MICROVERSION = "2.1"
"""The newest microversion served; raise it only with the shapes it implies."""

SERVICE_TYPE = "compute"

VERSION_KEY = web.RequestKey[tuple[int, int]]("microversion")
"""Where the middleware stores the request's microversion as ``(major, minor)``."""

_FORMAT = re.compile(r"^([1-9]\d*)\.(0|[1-9]\d*)$")

VARY = "OpenStack-API-Version, X-OpenStack-Nova-API-Version"


def parse(text: str) -> tuple[int, int]:
    """``"2.1"`` as ``(2, 1)``; ``"latest"`` is the maximum; 400 otherwise."""
    text = text.strip()
    if text.lower() == "latest":
        return parse(MAX_MICROVERSION)
    match = _FORMAT.match(text)
    if match is None:
        raise Invalid(f"API Version String {text} is of invalid format. Must be of format "
                      "MajorNum.MinorNum.")
    return int(match.group(1)), int(match.group(2))


def render(version: tuple[int, int]) -> str:
    """``(2, 1)`` as ``"2.1"``."""
    return f"{version[0]}.{version[1]}"


def from_headers(new_style: str | None, legacy: str | None) -> tuple[int, int]:
    """The version a request asks for, as Nova reads it.

    ``OpenStack-API-Version: compute X.Y`` (possibly one of several
    comma-separated services) wins over ``X-OpenStack-Nova-API-Version``;
    with neither the minimum applies.  Raises Invalid (400) for a malformed
    value and NotAcceptable (406) for one outside [MIN, MAX].
    """
    wanted: str | None = None
    if new_style:
        for item in new_style.split(","):
            service, _, value = item.strip().partition(" ")
            if service.lower() == SERVICE_TYPE:
                wanted = value
                break
    if wanted is None and legacy:
        wanted = legacy
    if wanted is None:
        return parse(MIN_MICROVERSION)
    version = parse(wanted)
    if not parse(MIN_MICROVERSION) <= version <= parse(MAX_MICROVERSION):
        raise NotAcceptable(f"Version {render(version)} is not supported by the API. "
                            f"Minimum is {MIN_MICROVERSION} and maximum is {MAX_MICROVERSION}.")
    return version


def of(request: web.Request) -> tuple[int, int]:
    """The request's microversion (the minimum when none was negotiated)."""
    if VERSION_KEY in request:
        return request[VERSION_KEY]
    return parse(MIN_MICROVERSION)


def at_least(request: web.Request, version: str) -> bool:
    """Whether the request's microversion is ``version`` or newer."""
    return of(request) >= parse(version)


def echo_headers(version: tuple[int, int]) -> dict[str, str]:
    """The headers Nova adds to every compute response."""
    text = render(version)
    return {"OpenStack-API-Version": f"{SERVICE_TYPE} {text}",
            "X-OpenStack-Nova-API-Version": text, "Vary": VARY}
