"""Response bodies of the Compute API, per microversion.

A view given a ``version`` adds what the versions up to it add (the names
are :mod:`novad.api.microversion`'s); without one it is the 2.1 body.

Views turn store records into Nova's JSON shapes; they never fetch anything.
Links follow the mount a request came in by (``/compute/v2.1`` or ``/v2.1``)
and ``[api] public_endpoint`` when set.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from collections.abc import Iterable
from urllib.parse import quote, urlencode

from aiohttp import web

from novad.api import microversion
from novad.api.common import base_url
from novad.hostname import sanitize as sanitize_hostname
from novad.compute.operations import TRUSTED_CERTS_KEY
from novad.config import Config
from novad.context import RequestContext
from novad.states.status import PROGRESS_STATUSES, status_of
from novad.store.models import ActionRecord, EventRecord, FaultRecord, Flavor, Instance, Keypair

API_VERSION_PATH = "v2.1"

Version = tuple[int, int]
BASE = microversion.BASE.key

ROOT_DEVICE_NAME = "/dev/vda"
"""The boot disk's device name once the guest is built (virtio, as libvirt)."""


@dataclass(frozen=True)
class Links:
    """How this request reaches the API: ``base`` (scheme://host[:port]),
    the mount ``prefix`` (``/compute`` or empty) and the ``project`` id the
    URL named (2.18 made it optional; empty when absent), which Nova keeps
    in the links it gives back."""

    base: str
    prefix: str
    project: str = ""

    @classmethod
    def of(cls, request: web.Request, config: Config) -> Links:
        """The links of ``request``."""
        path = request.path
        prefix = "/compute" if path == "/compute" or path.startswith("/compute/") else ""
        return cls(base_url(request, config.api.public_endpoint), prefix,
                   request.match_info.get("project_id", ""))

    @functools.cached_property
    def root(self) -> str:
        """The unversioned endpoint (bookmark links start here)."""
        return f"{self.base}{self.prefix}"

    @functools.cached_property
    def _project(self) -> str:
        return f"/{self.project}" if self.project else ""

    @functools.cached_property
    def api(self) -> str:
        """The versioned endpoint (self links start here)."""
        return f"{self.root}/{API_VERSION_PATH}{self._project}"

    @functools.cached_property
    def _bookmarks(self) -> str:
        return f"{self.root}{self._project}"

    def self_href(self, collection: str, ident: str) -> str:
        """``<api>/<collection>/<id>``."""
        return f"{self.api}/{collection}/{_quote(ident)}"

    def bookmark(self, collection: str, ident: str) -> str:
        """``<root>[/<project>]/<collection>/<id>``."""
        return f"{self._bookmarks}/{collection}/{_quote(ident)}"

    def pair(self, collection: str, ident: str) -> list[dict[str, str]]:
        """Nova's self + bookmark link list."""
        quoted = _quote(ident)
        return [{"rel": "self", "href": f"{self.api}/{collection}/{quoted}"},
                {"rel": "bookmark", "href": f"{self._bookmarks}/{collection}/{quoted}"}]

    def image_location(self, image_id: str) -> str:
        """Where the image service serves an image (createImage's Location)."""
        return f"{self.base}/image/v2/images/{image_id}"

    def next_page(self, collection: str, query: Iterable[tuple[str, str]], marker: str
                  ) -> list[dict[str, str]]:
        """The ``*_links`` of a full page: the same query with a new marker."""
        params = [(k, v) for k, v in query if k != "marker"] + [("marker", marker)]
        return [{"rel": "next", "href": f"{self.api}/{collection}?{urlencode(params)}"}]


@functools.lru_cache(maxsize=65536)
def _quote(ident: str) -> str:
    """Path-quote an id; memoised, since listings quote the same ids again and again."""
    return quote(ident, safe="")


# -- time -------------------------------------------------------------------------

def _utc(ts: str) -> datetime:
    value = datetime.fromisoformat(ts)
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


@functools.lru_cache(maxsize=65536)
def iso_z(ts: str | None) -> str | None:
    """``2026-11-21T10:00:00Z`` (server created/updated, fault created)."""
    return None if not ts else _utc(ts).strftime("%Y-%m-%dT%H:%M:%SZ")


@functools.lru_cache(maxsize=65536)
def iso_micro(ts: str | None) -> str | None:
    """``2026-11-21T10:00:00.000000`` (launched_at, actions, key pairs)."""
    return None if not ts else _utc(ts).isoformat(timespec="microseconds")


def now_micro() -> str:
    """The current time in :func:`iso_micro`'s form."""
    return datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="microseconds")


# -- servers ----------------------------------------------------------------------

@functools.lru_cache(maxsize=4096)
def host_id(project_id: str, host: str) -> str:
    """Nova's ``hostId``: sha224 of project and host; empty without a host."""
    return hashlib.sha224((project_id + host).encode()).hexdigest() if host else ""


def instance_name(inst: Instance) -> str:
    """The hypervisor's name for the guest (``OS-EXT-SRV-ATTR:instance_name``)."""
    return inst.system_metadata.get("instance_name") or f"instance-{inst.uuid}"


def addresses(inst: Instance) -> dict[str, list[dict[str, Any]]]:
    """The server's ``addresses``: none, as novad runs no network service
    that would allocate and report them."""
    return {}


def server_brief(inst: Instance, links: Links) -> dict[str, Any]:
    """The ``GET /servers`` entry."""
    return {"id": inst.uuid, "name": inst.name, "links": links.pair("servers", inst.uuid)}


@dataclass(frozen=True)
class ServerShape:
    """What a microversion adds to the server body, decided once per version
    rather than once per server of a listing."""

    extended: bool
    locked: bool
    host_status: bool
    description: bool
    tags: bool
    trusted_certs: bool
    server_groups: bool
    lock_reason: bool
    hostname: bool
    pinned_az: bool

    @classmethod
    @functools.lru_cache(maxsize=256)
    def of(cls, version: Version) -> ServerShape:
        """The shape at ``version``."""
        return cls(
            extended=version >= microversion.EXTENDED_ATTRIBUTES.key,
            locked=version >= microversion.LOCKED.key,
            host_status=version >= microversion.HOST_STATUS.key,
            description=version >= microversion.SERVER_DESCRIPTION.key,
            tags=version >= microversion.SERVER_TAGS.key,
            trusted_certs=version >= microversion.TRUSTED_CERTS.key,
            server_groups=version >= microversion.SERVER_GROUPS_IN_SERVER.key,
            lock_reason=version >= microversion.LOCK_REASON.key,
            hostname=version >= microversion.HOSTNAME.key,
            pinned_az=version >= microversion.PINNED_AZ.key)


def server_detail(inst: Instance, links: Links, ctx: RequestContext,
                  fault: FaultRecord | None = None, *, version: Version = BASE,
                  host_status: str | None = None,
                  server_groups: list[str] | None = None) -> dict[str, Any]:
    """The server body (``GET /servers/{id}``, ``/servers/detail``): 2.3's
    extended attributes for admins, 2.9's ``locked``, 2.16's ``host_status``
    when the caller passes one (show and detail, for admins), 2.19's
    ``description``, 2.26's ``tags``, 2.63's ``trusted_image_certificates``,
    2.71's ``server_groups`` when the caller passes them (show, update,
    rebuild), 2.73's ``locked_reason``, 2.90's hostname for everyone, 2.96's
    ``pinned_availability_zone``.  Attached volumes (2.3 adds their
    ``delete_on_termination``) are always none here; ``security_groups`` is
    left out, as Nova leaves it out of a server with no network ports (every
    novad server: there is no network service)."""
    shape = ServerShape.of(version)
    status = status_of(inst.vm_state, inst.task_state, inst.deleted)
    image: Any = "" if not inst.image_ref else {
        "id": inst.image_ref, "links": [{"rel": "bookmark",
                                         "href": links.bookmark("images", inst.image_ref)}]}
    body: dict[str, Any] = {
        "id": inst.uuid, "name": inst.name, "status": status,
        "tenant_id": inst.project_id, "user_id": inst.user_id,
        "metadata": dict(inst.metadata), "hostId": host_id(inst.project_id, inst.host),
        "image": image, "flavor": server_flavor(inst.flavor, links, version),
        "created": iso_z(inst.created_at), "updated": iso_z(inst.updated_at or inst.created_at),
        "addresses": addresses(inst), "accessIPv4": inst.access_ip_v4 or "",
        "accessIPv6": inst.access_ip_v6 or "",
        "links": links.pair("servers", inst.uuid), "key_name": inst.key_name,
        "config_drive": "True" if inst.config_drive else "",
        "OS-EXT-STS:vm_state": str(inst.vm_state),
        "OS-EXT-STS:task_state": None if inst.task_state is None else str(inst.task_state),
        "OS-EXT-STS:power_state": int(inst.power_state),
        "OS-EXT-AZ:availability_zone": inst.availability_zone,
        "OS-SRV-USG:launched_at": iso_micro(inst.launched_at),
        "OS-SRV-USG:terminated_at": iso_micro(inst.terminated_at),
        "OS-DCF:diskConfig": inst.system_metadata.get("disk_config", "MANUAL"),
        "os-extended-volumes:volumes_attached": [],
    }
    if status in PROGRESS_STATUSES:
        body["progress"] = inst.progress or 0
    if ctx.is_admin:
        body["OS-EXT-SRV-ATTR:host"] = body["OS-EXT-SRV-ATTR:hypervisor_hostname"] = \
            inst.host or None
        body["OS-EXT-SRV-ATTR:instance_name"] = instance_name(inst)
        if shape.extended:  # 2.3's keys; whole-disk images: never a kernel or ramdisk
            sysmeta = inst.system_metadata
            body["OS-EXT-SRV-ATTR:reservation_id"] = inst.reservation_id
            body["OS-EXT-SRV-ATTR:launch_index"] = int(sysmeta.get("launch_index", 0))
            body["OS-EXT-SRV-ATTR:hostname"] = sysmeta.get("hostname") \
                or sanitize_hostname(inst.name, inst.uuid)
            body["OS-EXT-SRV-ATTR:kernel_id"] = body["OS-EXT-SRV-ATTR:ramdisk_id"] = ""
            body["OS-EXT-SRV-ATTR:root_device_name"] = \
                ROOT_DEVICE_NAME if inst.launched_at else None
            body["OS-EXT-SRV-ATTR:user_data"] = inst.user_data
    elif shape.hostname:
        body["OS-EXT-SRV-ATTR:hostname"] = hostname(inst)  # everyone's from 2.90
    if shape.locked:
        body["locked"] = inst.locked
    if host_status is not None and shape.host_status:
        body["host_status"] = host_status
    if shape.description:
        body["description"] = inst.description
    if shape.tags:
        body["tags"] = list(inst.tags)
    if shape.trusted_certs:
        body["trusted_image_certificates"] = \
            trusted_certs(inst) if TRUSTED_CERTS_KEY in inst.system_metadata else None
    if server_groups is not None and shape.server_groups:
        body["server_groups"] = list(server_groups)
    if shape.lock_reason:
        body["locked_reason"] = inst.locked_reason if inst.locked else None
    if shape.pinned_az:
        body["pinned_availability_zone"] = inst.system_metadata.get("pinned_availability_zone")
    if fault is not None and status in ("ERROR", "DELETED"):
        body["fault"] = fault_view(fault, ctx)
    return body


def trusted_certs(inst: Instance) -> list[str] | None:
    """The server's ``trusted_image_certificates`` (None: none were given)."""
    raw = inst.system_metadata.get(TRUSTED_CERTS_KEY)
    return None if not raw else [str(c) for c in json.loads(raw)]


def server_unreachable(inst: Instance, links: Links, *, detail: bool, show: bool = False,
                       server_groups: list[str] | None = None) -> dict[str, Any]:
    """A server whose node is unreachable, as Nova shows one of a down cell
    (2.69): the list entry has ``id``, ``status`` UNKNOWN and ``links``; the
    detailed entry adds ``tenant_id`` and ``created``; show adds what Nova
    keeps outside the cell (flavor, image, zone, power state, user and, from
    2.71, the server groups)."""
    body: dict[str, Any] = {"id": inst.uuid, "status": "UNKNOWN",
                            "links": links.pair("servers", inst.uuid)}
    if not detail:
        return body
    body.update({"tenant_id": inst.project_id, "created": iso_z(inst.created_at)})
    if show:
        body.update({
            "image": "" if not inst.image_ref else {
                "id": inst.image_ref,
                "links": [{"rel": "bookmark", "href": links.bookmark("images", inst.image_ref)}]},
            "flavor": {"id": inst.flavor.id, "links": [
                {"rel": "bookmark", "href": links.bookmark("flavors", inst.flavor.id)}]},
            "OS-EXT-AZ:availability_zone": inst.availability_zone or "UNKNOWN",
            "OS-EXT-STS:power_state": int(inst.power_state),
            "user_id": inst.user_id or "UNKNOWN"})
        if server_groups is not None:
            body["server_groups"] = list(server_groups)
    return body


_PLAIN_PREFIXES = ("OS-EXT-AZ:", "OS-EXT-STS:", "OS-SRV-USG:", "OS-EXT-SRV-ATTR:",
                   "os-extended-volumes:")
_PLAIN_KEYS = frozenset({"config_drive", "key_name", "security_groups", "host_status"})


def server_changed(inst: Instance, links: Links, ctx: RequestContext,
                   fault: FaultRecord | None = None, *, version: Version = BASE,
                   rebuild: bool = False, host_status: str | None = None,
                   server_groups: list[str] | None = None) -> dict[str, Any]:
    """The server body of ``PUT /servers/{id}`` and of the ``rebuild`` action.

    Below 2.75 Nova renders both with its show view's extensions switched
    off (``show_AZ``, ``show_config_drive``, ``show_keypair``,
    ``show_srv_usg``, ``show_sec_grp``, ``show_extended_status``,
    ``show_extended_volumes``, ``show_extended_attr``, ``show_host_status``
    all false), so the body is :func:`server_detail` without those keys;
    rebuild shows ``key_name`` again from 2.54 and ``user_data`` from 2.57.
    From 2.75 both are the whole GET view, rebuild's with ``user_data``
    instead of ``OS-EXT-SRV-ATTR:user_data``.  What versions add to every
    view (2.9 ``locked``, 2.19 ``description``, 2.26 ``tags``, ...) stays."""
    full = version >= microversion.STRICT_PARAMS.key
    body = server_detail(inst, links, ctx, fault, version=version,
                         host_status=host_status if full else None,
                         server_groups=server_groups)
    if not full:
        body = {key: value for key, value in body.items()
                if key not in _PLAIN_KEYS and not key.startswith(_PLAIN_PREFIXES)}
    if rebuild:
        if version >= microversion.REBUILD_KEY_NAME.key:
            body["key_name"] = inst.key_name
        if version >= microversion.PERSONALITY_GONE.key:
            body.pop("OS-EXT-SRV-ATTR:user_data", None)
            body["user_data"] = inst.user_data
    return body


def server_flavor(flavor: Flavor, links: Links, version: Version = BASE) -> dict[str, Any]:
    """A server's ``flavor``: its id and bookmark before 2.47; from 2.47 the
    server's own copy of it, as it was when the server was built or resized
    (extra specs included: Nova's default policy lets everyone see them)."""
    if version < microversion.EMBEDDED_FLAVOR.key:
        return {"id": flavor.id, "links": [
            {"rel": "bookmark", "href": links.bookmark("flavors", flavor.id)}]}
    return {"vcpus": flavor.vcpus, "ram": flavor.memory_mb, "disk": flavor.root_gb,
            "ephemeral": flavor.ephemeral_gb, "swap": flavor.swap,
            "original_name": flavor.name, "extra_specs": dict(flavor.extra_specs)}


def hostname(inst: Instance) -> str:
    """The hostname the user set (2.90), else Nova's sanitised server name
    (:func:`novad.hostname.sanitize`)."""
    return inst.system_metadata.get("hostname") or sanitize_hostname(inst.name, inst.uuid)


def fault_view(fault: FaultRecord, ctx: RequestContext) -> dict[str, Any]:
    """A server's ``fault``; details hidden from non-admins for 500s, as Nova."""
    body: dict[str, Any] = {"code": fault.code, "created": iso_z(fault.created_at),
                            "message": fault.message}
    if fault.details and (ctx.is_admin or fault.code != 500):
        body["details"] = fault.details
    return body


# -- flavors ----------------------------------------------------------------------

def flavor_brief(flavor: Flavor, links: Links, version: Version = BASE) -> dict[str, Any]:
    """The ``GET /flavors`` entry; its ``description`` from 2.55."""
    body: dict[str, Any] = {"id": flavor.id, "name": flavor.name,
                            "links": links.pair("flavors", flavor.id)}
    if version >= microversion.FLAVOR_DESCRIPTION.key:
        body["description"] = flavor.description
    return body


def flavor_detail(flavor: Flavor, links: Links, version: Version = BASE) -> dict[str, Any]:
    """The flavor body: 2.1's, its ``description`` from 2.55, its
    ``extra_specs`` from 2.61; from 2.75 ``swap`` is 0 (not "") without swap."""
    body: dict[str, Any] = {
        "id": flavor.id, "name": flavor.name, "ram": flavor.memory_mb, "disk": flavor.root_gb,
        "vcpus": flavor.vcpus,
        # 2.75: no swap is 0, not Nova's old empty string
        "swap": flavor.swap if version >= microversion.STRICT_PARAMS.key else flavor.swap or "",
        "OS-FLV-EXT-DATA:ephemeral": flavor.ephemeral_gb,
        "OS-FLV-DISABLED:disabled": flavor.disabled,
        "os-flavor-access:is_public": flavor.is_public,
        "rxtx_factor": flavor.rxtx_factor, "links": links.pair("flavors", flavor.id),
    }
    if version >= microversion.FLAVOR_DESCRIPTION.key:
        body["description"] = flavor.description
    if version >= microversion.FLAVOR_EXTRA_SPECS.key:
        body["extra_specs"] = dict(flavor.extra_specs)
    return body


def flavor_access(flavor_id: str, projects: list[str]) -> dict[str, Any]:
    """``{"flavor_access": [{"flavor_id", "tenant_id"}]}``."""
    return {"flavor_access": [{"flavor_id": flavor_id, "tenant_id": p} for p in projects]}


# -- key pairs --------------------------------------------------------------------

def keypair_brief(pair: Keypair, version: Version = BASE) -> dict[str, Any]:
    """The ``GET /os-keypairs`` entry (wrapped in ``keypair`` by the caller);
    ``type`` from 2.2."""
    body: dict[str, Any] = {"name": pair.name, "public_key": pair.public_key,
                            "fingerprint": pair.fingerprint}
    if version >= microversion.KEYPAIR_TYPE.key:
        body["type"] = pair.type
    return body


def keypair_created(pair: Keypair, private_key: str | None, version: Version = BASE
                    ) -> dict[str, Any]:
    """The create/import body: the entry with ``user_id`` (and the private
    key when one was generated)."""
    body = {**keypair_brief(pair, version), "user_id": pair.user_id}
    if private_key is not None:
        body["private_key"] = private_key
    return body


def keypair_id(pair: Keypair) -> int:
    """The key pair's ``id``: Nova shows its database row's integer id; novad's
    pairs are replicated records without one, so it is a positive 31-bit
    number drawn from the owner and name, the same on every node."""
    digest = hashlib.sha256(f"{pair.user_id}\0{pair.name}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF or 1


def keypair_detail(pair: Keypair, version: Version = BASE) -> dict[str, Any]:
    """The ``GET /os-keypairs/{name}`` body, with Nova's integer ``id``."""
    return {**keypair_brief(pair, version), "user_id": pair.user_id, "deleted": False,
            "created_at": iso_micro(pair.created_at), "updated_at": None,
            "deleted_at": None, "id": keypair_id(pair)}


# -- instance actions -------------------------------------------------------------

def action_view(action: ActionRecord, version: Version = BASE) -> dict[str, Any]:
    """One entry of ``instanceActions`` (2.1: no updated_at; from 2.58 it is shown)."""
    body = {"action": action.action, "instance_uuid": action.instance_uuid,
            "request_id": action.request_id, "user_id": action.user_id,
            "project_id": action.project_id, "start_time": iso_micro(action.start_time),
            "message": action.message}
    if version >= microversion.ACTION_PAGES.key:
        body["updated_at"] = iso_micro(action.updated_at)
    return body


def event_details(event: EventRecord) -> str | None:
    """2.84's ``details`` of an event: the fault message of a failed one,
    null for any other (as Nova records it only on failure)."""
    return event.details if event.result == "Error" else None


def event_view(event: EventRecord, version: Version = BASE, *, project_id: str = "",
               show_host: bool = False, traceback: bool = True) -> dict[str, Any]:
    """One event: with its ``traceback`` for callers with the events policy
    (admins), without it for the others, who see events from 2.51; from 2.62
    with the ``hostId`` of its host for the server's ``project_id`` and, with
    ``show_host`` (admins), the ``host`` itself."""
    body: dict[str, Any] = {"event": event.event, "start_time": iso_micro(event.start_time),
                            "finish_time": iso_micro(event.finish_time),
                            "result": event.result}
    if traceback:
        body["traceback"] = event.traceback
    if version >= microversion.ACTION_EVENT_HOST.key:
        body["hostId"] = host_id(project_id, event.host)
        if show_host:
            body["host"] = event.host
    return body
