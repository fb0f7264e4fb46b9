"""Compute API microversions: the one table of what each version changes,
which we serve, and how a request asks for one.

:data:`HISTORY` lists every served version with its one-line meaning, in
Nova's words as facts (its REST API version history).  Code that behaves
differently from a version on names the entry (``microversion.LOCKED``),
never a literal, and asks :func:`at_least`.  We advertise the newest entry
only once its every delta is served; the clients negotiate the lower of our
maximum and their own, so raising it changes what every CLI call sees.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from aiohttp import web

from novad.errors import Invalid, NotAcceptable

SERVICE_TYPE = "compute"

_FORMAT = re.compile(r"^([1-9]\d*)\.(0|[1-9]\d*)$")


@dataclass(frozen=True)
class Microversion:
    """One compute microversion and what it changed."""

    text: str
    meaning: str

    @property
    def key(self) -> tuple[int, int]:
        """``(major, minor)``, for comparisons."""
        return _split(self.text)


def _split(text: str) -> tuple[int, int]:
    major, _, minor = text.partition(".")
    return int(major), int(minor)


BASE = Microversion("2.1", "The v2.1 API: v2.0's resources with strict input validation.")
KEYPAIR_TYPE = Microversion(
    "2.2", "Key pairs have a `type` (ssh or x509) in create/import and in every view; "
    "create answers 201 (was 200), delete 204 (was 202).")
EXTENDED_ATTRIBUTES = Microversion(
    "2.3", "Admins see `OS-EXT-SRV-ATTR:` reservation_id, launch_index, hostname, "
    "kernel_id, ramdisk_id, root_device_name and user_data; attached volumes show "
    "`delete_on_termination`.")
FIXED_IP_RESERVED = Microversion(
    "2.4", "os-fixed-ips shows `reserved` (novad, like Nova without nova-network, "
    "answers 410 Gone there at every version).")
IP6_FILTER = Microversion("2.5", "Non-admins may filter the server list by `ip6`.")
REMOTE_CONSOLES = Microversion(
    "2.6", "`POST /servers/{id}/remote-consoles` replaces the os-get*Console actions "
    "(404 from here on).")
PUBLIC_FLAVOR_ACCESS_CONFLICT = Microversion(
    "2.7", "Adding project access to a public flavor is 409 (was accepted).")
MKS_CONSOLE = Microversion(
    "2.8", "remote-consoles accepts protocol `mks`, type `webmks` (not enabled here: 400).")
LOCKED = Microversion("2.9", "Server views show `locked` (true/false).")
KEYPAIR_USER = Microversion(
    "2.10", "Admins manage other users' key pairs: `user_id` in the create body and as "
    "a query parameter of list, show and delete.")
FORCED_DOWN = Microversion(
    "2.11", "os-services shows `forced_down`; `PUT /os-services/force-down` sets it.")

VIF_NET_ID = Microversion(
    "2.12", "os-virtual-interfaces shows each VIF's `net_id` (novad, like Nova since "
    "nova-network went, answers 410 Gone there at every version).")
SERVER_GROUP_OWNER = Microversion(
    "2.13", "Server group views show `project_id` and `user_id`.")
EVACUATE_NO_SHARED_STORAGE = Microversion(
    "2.14", "evacuate: `onSharedStorage` is gone from the request (detected) and the "
    "response has no `adminPass` (empty 200).")
SOFT_AFFINITY = Microversion(
    "2.15", "Server groups accept the `soft-affinity` and `soft-anti-affinity` policies.")
HOST_STATUS = Microversion(
    "2.16", "Admins see `host_status` (UP, DOWN, MAINTENANCE, UNKNOWN or empty) in server "
    "show and detail.")
TRIGGER_CRASH_DUMP = Microversion(
    "2.17", "The `trigger_crash_dump` server action (an NMI to the guest).")
OPTIONAL_PROJECT_ID = Microversion(
    "2.18", "The project id in URLs is optional: every resource is also served under "
    "`/v2.1/{project_id}`.")
SERVER_DESCRIPTION = Microversion(
    "2.19", "Servers have a `description`: set on create, rebuild and update; shown in "
    "show, detail, update and rebuild.")
SHELVED_VOLUME_ATTACH = Microversion(
    "2.20", "Volumes may be attached to and detached from shelved servers (novad has no "
    "volume service and serves no volume attachments, so nothing changes here).")
DELETED_INSTANCE_ACTIONS = Microversion(
    "2.21", "os-instance-actions also lists the actions of deleted servers.")
FORCE_COMPLETE = Microversion(
    "2.22", "`POST /servers/{id}/migrations/{migration_id}/action` `force_complete` makes "
    "a running live migration finish (202).")
SERVER_MIGRATIONS = Microversion(
    "2.23", "`GET /servers/{id}/migrations[/{migration_id}]` shows in-progress live "
    "migrations; os-migrations shows `migration_type` and links to them.")
ABORT_LIVE_MIGRATION = Microversion(
    "2.24", "`DELETE /servers/{id}/migrations/{migration_id}` aborts a running live "
    "migration (202; it ends `cancelled`).")
LIVE_MIGRATE_AUTO = Microversion(
    "2.25", "os-migrateLive: `block_migration` may be `auto` (novad's disks are local "
    "to their node, so auto is a block migration); `disk_over_commit` is gone (400).")
SERVER_TAGS = Microversion(
    "2.26", "Server tags: `/servers/{id}/tags[/{tag}]` (list, replace, check, add, "
    "delete); `tags` in show, detail, update and rebuild; the list filters `tags`, "
    "`tags-any`, `not-tags` and `not-tags-any`.")
NEW_VERSION_HEADER = Microversion(
    "2.27", "The `OpenStack-API-Version: compute X.Y` header is accepted besides "
    "`X-OpenStack-Nova-API-Version` (both are read, and both answered, at every version, "
    "as Nova does, so nothing else changes).")
CPU_INFO_OBJECT = Microversion(
    "2.28", "Hypervisor show and detail give `cpu_info` as a JSON object (was a string).")
EVACUATE_FORCE = Microversion(
    "2.29", "evacuate takes `force`: a named host is checked by the scheduler unless "
    "`force` is true (below 2.29 a named host is always forced); `force` without a host "
    "is 400.")
LIVE_MIGRATE_FORCE = Microversion(
    "2.30", "os-migrateLive takes `force`, with the same meaning as evacuate's at 2.29.")

HISTORY: tuple[Microversion, ...] = (
    BASE, KEYPAIR_TYPE, EXTENDED_ATTRIBUTES, FIXED_IP_RESERVED, IP6_FILTER, REMOTE_CONSOLES,
    PUBLIC_FLAVOR_ACCESS_CONFLICT, MKS_CONSOLE, LOCKED, KEYPAIR_USER, FORCED_DOWN,
    VIF_NET_ID, SERVER_GROUP_OWNER, EVACUATE_NO_SHARED_STORAGE, SOFT_AFFINITY, HOST_STATUS,
    TRIGGER_CRASH_DUMP, OPTIONAL_PROJECT_ID, SERVER_DESCRIPTION, SHELVED_VOLUME_ATTACH,
    DELETED_INSTANCE_ACTIONS, FORCE_COMPLETE, SERVER_MIGRATIONS, ABORT_LIVE_MIGRATION,
    LIVE_MIGRATE_AUTO, SERVER_TAGS, NEW_VERSION_HEADER, CPU_INFO_OBJECT, EVACUATE_FORCE,
    LIVE_MIGRATE_FORCE,
)
"""Every served microversion, oldest first, each one minor after the last."""

MIN_MICROVERSION = HISTORY[0].text
"""The oldest microversion served (Nova's v2.1 base)."""

MAX_MICROVERSION = HISTORY[-1].text
"""The newest microversion served: the last row of :data:`HISTORY`."""

_MIN, _MAX = HISTORY[0].key, HISTORY[-1].key

VERSION_KEY = web.RequestKey[tuple[int, int]]("microversion")
"""Where the middleware stores the request's microversion as ``(major, minor)``."""

VARY = "OpenStack-API-Version, X-OpenStack-Nova-API-Version"


def parse(text: str) -> tuple[int, int]:
    """``"2.1"`` as ``(2, 1)``; ``"latest"`` (exactly, as Nova compares it)
    is the maximum; 400 otherwise."""
    text = text.strip()
    if text == "latest":
        return _MAX
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
        return _MIN
    version = parse(wanted)
    if not _MIN <= version <= _MAX:
        raise NotAcceptable(f"Version {render(version)} is not supported by the API. "
                            f"Minimum is {MIN_MICROVERSION} and maximum is {MAX_MICROVERSION}.")
    return version


def of(request: web.Request) -> tuple[int, int]:
    """The request's microversion (the minimum when none was negotiated)."""
    if VERSION_KEY in request:
        return request[VERSION_KEY]
    return _MIN


def at_least(request: web.Request, version: Microversion) -> bool:
    """Whether the request's microversion is ``version`` or newer."""
    return of(request) >= version.key


def echo_headers(version: tuple[int, int]) -> dict[str, str]:
    """The headers Nova adds to every compute response."""
    text = render(version)
    return {"OpenStack-API-Version": f"{SERVICE_TYPE} {text}",
            "X-OpenStack-Nova-API-Version": text, "Vary": VARY}


def table() -> str:
    """:data:`HISTORY` as a Markdown table (README's API section)."""
    rows = ["| version | what changes |", "|---|---|"]
    rows += [f"| {v.text} | {v.meaning} |" for v in HISTORY]
    return "\n".join(rows)
