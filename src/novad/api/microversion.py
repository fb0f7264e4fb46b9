"""Compute API microversions: the one table of what each version changes,
which we serve, and how a request asks for one.

:data:`HISTORY` lists every served version with its one-line meaning, in
Nova's words as facts (its REST API version history), and the operations
it changes (``GET /openapi.json`` lists those versions on each operation).
Code that behaves differently from a version on names the entry
(``microversion.LOCKED``), never a literal, and asks :func:`at_least`.  We advertise the newest entry
only once its every delta is served; the clients negotiate the lower of our
maximum and their own, so raising it changes what every CLI call sees.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from dataclasses import dataclass, field

from aiohttp import web

from novad.errors import Invalid, NotAcceptable

SERVICE_TYPE = "compute"

_FORMAT = re.compile(r"^([1-9]\d*)\.(0|[1-9]\d*)$")


@dataclass(frozen=True)
class Microversion:
    """One compute microversion and what it changed."""

    text: str
    meaning: str
    affects: tuple[str, ...] = field(default=(), compare=False)
    """The operations the version changes, each ``"METHOD /path"`` with the
    path relative to the versioned root as the route table spells it
    (``"GET /servers/{server_id}"``); ``*`` matches any run of characters,
    ``/`` included (``"* /os-hypervisors*"``, ``"* *"`` for every request).
    Routes the version adds or removes count: they change there too.  Left
    out of equality and hashing, which stay those of the number and meaning."""

    @functools.cached_property
    def key(self) -> tuple[int, int]:
        """``(major, minor)``, for comparisons (parsed once: views compare it
        for every server they render)."""
        return _split(self.text)

    @functools.cached_property
    def _affected(self) -> re.Pattern[str] | None:
        """:attr:`affects` as one regular expression (None: it names nothing)."""
        if not self.affects:
            return None
        return re.compile("|".join(fnmatch.translate(p) for p in self.affects))

    def changes(self, method: str, path: str) -> bool:
        """Whether the version changes the operation ``method path`` (the
        path relative to the versioned root, as in :attr:`affects`)."""
        pattern = self._affected
        return pattern is not None and pattern.match(f"{method.upper()} {path}") is not None


def _split(text: str) -> tuple[int, int]:
    major, _, minor = text.partition(".")
    return int(major), int(minor)


# The operations several versions change, named once.
_ACTION = "POST /servers/{server_id}/action"
"""Every server action (reboot, rebuild, evacuate, os-migrateLive, lock, ...): one operation."""
_CREATE = "POST /servers"
_LISTS = ("GET /servers", "GET /servers/detail")
"""The server list and its detailed form (their query parameters)."""
_SHOWN = ("GET /servers/detail", "GET /servers/{server_id}")
"""The operations that show the whole server body."""
_SERVER_VIEWS = (*_SHOWN, "PUT /servers/{server_id}", _ACTION)
"""Those and the ones that answer it after a change: update and the rebuild action."""
_UNSERVED = ("GET /servers/{server_id}",)
"""Where a version that changes only an API novad does not serve
(os-volume_attachments, os-interface, os-server-external-events: 404 at
every version) is listed, so that every version names a served operation:
the server those APIs are about.  Its body does not change, as the
version's meaning says."""
_EVERY = ("* *",)
"""Every compute request."""
_FLAVOR_BODY = ("GET /flavors/detail", "POST /flavors", "GET /flavors/{flavor_id}",
                "PUT /flavors/{flavor_id}")
"""The operations that answer the whole flavor body."""
_HYPERVISOR_LISTS = ("GET /os-hypervisors", "GET /os-hypervisors/detail")
_GROUP_BODY = ("GET /os-server-groups", "POST /os-server-groups", "GET /os-server-groups/{id}")
"""The operations that answer server group bodies."""
_INSTANCE_ACTIONS = ("GET /servers/{server_id}/os-instance-actions*",)
"""A server's instance actions: the list and one action."""
_INSTANCE_ACTION = "GET /servers/{server_id}/os-instance-actions/{request_id}"
"""One instance action, with its events."""
_LIVE_MIGRATIONS = "GET /servers/{server_id}/migrations*"
"""A server's in-progress live migrations: the list and one of them."""
_QUOTA_SETS = ("GET /os-quota-sets/{tenant_id}*", "PUT /os-quota-sets/{tenant_id}")
"""The operations that show or take a project's quota set (show, detail, defaults, update)."""
_QUOTA_CLASS = "* /os-quota-class-sets/{class_name}"

BASE = Microversion("2.1", "The v2.1 API: v2.0's resources with strict input validation.")
KEYPAIR_TYPE = Microversion(
    "2.2", "Key pairs have a `type` (ssh or x509) in create/import and in every view; "
    "create answers 201 (was 200), delete 204 (was 202).",
    affects=("* /os-keypairs*",))
EXTENDED_ATTRIBUTES = Microversion(
    "2.3", "Admins see `OS-EXT-SRV-ATTR:` reservation_id, launch_index, hostname, "
    "kernel_id, ramdisk_id, root_device_name and user_data; attached volumes show "
    "`delete_on_termination`.",
    affects=_SHOWN)
FIXED_IP_RESERVED = Microversion(
    "2.4", "os-fixed-ips shows `reserved` (novad, like Nova without nova-network, "
    "answers 410 Gone there at every version).",
    affects=("GET /os-fixed-ips/{fixed_ip}",))
IP6_FILTER = Microversion(
    "2.5", "Non-admins may filter the server list by `ip6`.",
    affects=_LISTS)
REMOTE_CONSOLES = Microversion(
    "2.6", "`POST /servers/{id}/remote-consoles` replaces the os-get*Console actions "
    "(404 from here on).",
    affects=("POST /servers/{server_id}/remote-consoles", _ACTION))
PUBLIC_FLAVOR_ACCESS_CONFLICT = Microversion(
    "2.7", "Adding project access to a public flavor is 409 (was accepted).",
    affects=("POST /flavors/{flavor_id}/action",))
MKS_CONSOLE = Microversion(
    "2.8", "remote-consoles accepts protocol `mks`, type `webmks` (not enabled here: 400).",
    affects=("POST /servers/{server_id}/remote-consoles",))
LOCKED = Microversion(
    "2.9", "Server views show `locked` (true/false).",
    affects=_SERVER_VIEWS)
KEYPAIR_USER = Microversion(
    "2.10", "Admins manage other users' key pairs: `user_id` in the create body and as "
    "a query parameter of list, show and delete.",
    affects=("* /os-keypairs*",))
FORCED_DOWN = Microversion(
    "2.11", "os-services shows `forced_down`; `PUT /os-services/force-down` sets it.",
    affects=("GET /os-services", "PUT /os-services/{action}"))

VIF_NET_ID = Microversion(
    "2.12", "os-virtual-interfaces shows each VIF's `net_id` (novad, like Nova since "
    "nova-network went, answers 410 Gone there at every version).",
    affects=("GET /servers/{server_id}/os-virtual-interfaces",))
SERVER_GROUP_OWNER = Microversion(
    "2.13", "Server group views show `project_id` and `user_id`.",
    affects=_GROUP_BODY)
EVACUATE_NO_SHARED_STORAGE = Microversion(
    "2.14", "evacuate: `onSharedStorage` is gone from the request (detected) and the "
    "response has no `adminPass` (empty 200).",
    affects=(_ACTION,))
SOFT_AFFINITY = Microversion(
    "2.15", "Server groups accept the `soft-affinity` and `soft-anti-affinity` policies.",
    affects=("POST /os-server-groups",))
HOST_STATUS = Microversion(
    "2.16", "Admins see `host_status` (UP, DOWN, MAINTENANCE, UNKNOWN or empty) in server "
    "show and detail.",
    affects=_SHOWN)
TRIGGER_CRASH_DUMP = Microversion(
    "2.17", "The `trigger_crash_dump` server action (an NMI to the guest).",
    affects=(_ACTION,))
OPTIONAL_PROJECT_ID = Microversion(
    "2.18", "The project id in URLs is optional: every resource is also served under "
    "`/v2.1/{project_id}`.",
    affects=_EVERY)
SERVER_DESCRIPTION = Microversion(
    "2.19", "Servers have a `description`: set on create, rebuild and update; shown in "
    "show, detail, update and rebuild.",
    affects=("POST /servers", *_SERVER_VIEWS))
SHELVED_VOLUME_ATTACH = Microversion(
    "2.20", "Volumes may be attached to and detached from shelved servers (novad has no "
    "volume service and serves no volume attachments, so nothing changes here).",
    affects=_UNSERVED)
DELETED_INSTANCE_ACTIONS = Microversion(
    "2.21", "os-instance-actions also lists the actions of deleted servers.",
    affects=_INSTANCE_ACTIONS)
FORCE_COMPLETE = Microversion(
    "2.22", "`POST /servers/{id}/migrations/{migration_id}/action` `force_complete` makes "
    "a running live migration finish (202).",
    affects=("POST /servers/{server_id}/migrations/{migration_id}/action",))
SERVER_MIGRATIONS = Microversion(
    "2.23", "`GET /servers/{id}/migrations[/{migration_id}]` shows in-progress live "
    "migrations; os-migrations shows `migration_type` and links to them.",
    affects=(_LIVE_MIGRATIONS, "GET /os-migrations"))
ABORT_LIVE_MIGRATION = Microversion(
    "2.24", "`DELETE /servers/{id}/migrations/{migration_id}` aborts a running live "
    "migration (202; it ends `cancelled`).",
    affects=("DELETE /servers/{server_id}/migrations/{migration_id}",))
LIVE_MIGRATE_AUTO = Microversion(
    "2.25", "os-migrateLive: `block_migration` may be `auto` (novad's disks are local "
    "to their node, so auto is a block migration); `disk_over_commit` is gone (400).",
    affects=(_ACTION,))
SERVER_TAGS = Microversion(
    "2.26", "Server tags: `/servers/{id}/tags[/{tag}]` (list, replace, check, add, "
    "delete); `tags` in show, detail, update and rebuild; the list filters `tags`, "
    "`tags-any`, `not-tags` and `not-tags-any`.",
    affects=("* /servers/{server_id}/tags*", "GET /servers", *_SERVER_VIEWS))
NEW_VERSION_HEADER = Microversion(
    "2.27", "The `OpenStack-API-Version: compute X.Y` header is accepted besides "
    "`X-OpenStack-Nova-API-Version` (both are read, and both answered, at every version, "
    "as Nova does, so nothing else changes).",
    affects=_EVERY)
CPU_INFO_OBJECT = Microversion(
    "2.28", "Hypervisor show and detail give `cpu_info` as a JSON object (was a string).",
    affects=("GET /os-hypervisors/detail", "GET /os-hypervisors/{hypervisor_id}"))
EVACUATE_FORCE = Microversion(
    "2.29", "evacuate takes `force`: a named host is checked by the scheduler unless "
    "`force` is true (below 2.29 a named host is always forced); `force` without a host "
    "is 400.",
    affects=(_ACTION,))
LIVE_MIGRATE_FORCE = Microversion(
    "2.30", "os-migrateLive takes `force`, with the same meaning as evacuate's at 2.29.",
    affects=(_ACTION,))

CONSOLE_AUTH_TOKENS = Microversion(
    "2.31", "`GET /os-console-auth-tokens/{token}` answers for every console type (below, "
    "RDP only: the noVNC tokens novad issues are 401 there, as in Nova).",
    affects=("GET /os-console-auth-tokens/{console_token}",))
DEVICE_TAGS_FIRST = Microversion(
    "2.32", "A `tag` on each `networks` and `block_device_mapping_v2` item of server "
    "create (accepted; novad names no network, so a tagged network is still 400, and the "
    "boot disk's tag is not shown to the guest).",
    affects=(_CREATE,))
HYPERVISOR_PAGES = Microversion(
    "2.33", "os-hypervisors lists take `limit` and `marker`; `block_device_mapping_v2` "
    "items lose `tag` (restored at 2.42).",
    affects=(*_HYPERVISOR_LISTS, _CREATE))
ASYNC_LIVE_MIGRATE_CHECKS = Microversion(
    "2.34", "os-migrateLive checks the destination after answering 202; a failed check "
    "ends the migration `error` instead of a 400 (below, no node to go to is 400 "
    "`No valid host was found.` before anything is recorded).",
    affects=(_ACTION,))
KEYPAIR_PAGES = Microversion(
    "2.35", "os-keypairs takes `limit` and `marker` and sorts by name.",
    affects=("GET /os-keypairs",))
PROXY_APIS_GONE = Microversion(
    "2.36", "The proxy APIs are 404: the image proxy (`/images`: list, detail, show, "
    "delete, in Nova's shapes, over the image service) and "
    "`os-networks`/`os-tenant-networks` and `os-security-groups` (below, empty lists: "
    "novad's one network has no record, and no group) go; os-volumes, os-snapshots, "
    "os-floating-ips, os-fping and "
    "os-baremetal-nodes are not served at any version, and os-fixed-ips stays 410 as in Nova; "
    "the network quotas leave os-quota-sets (shown and settable) and the network limits "
    "leave `/limits`.",
    affects=("GET /images", "GET /images/detail", "* /images/{image_id}",
             "GET /os-networks*", "GET /os-tenant-networks*", "* /os-security-group*",
             *_QUOTA_SETS, "GET /limits"))
NETWORKS_AUTO = Microversion(
    "2.37", "`networks` is required on create: `auto` (the guest's one user-mode NIC), "
    "`none` (no NIC), or a list whose `uuid`s must be UUIDs (novad runs no network service: "
    "a network or port named is 400 at every version, as Nova's for one that does not "
    "exist); `networks` items lose `tag` (restored at 2.42).",
    affects=(_CREATE,))
STATUS_FILTER_STRICT = Microversion(
    "2.38", "An unknown `status` filter on the server list is 400 `Invalid status value` "
    "(was an empty list).",
    affects=_LISTS)
IMAGE_METADATA_PROXY_GONE = Microversion(
    "2.39", "`maxImageMeta` leaves the limits; the image-metadata proxy "
    "(`/images/{id}/metadata`: the image's extra properties, shown and set within the "
    "`metadata_items` quota) is 404.",
    affects=("GET /limits", "* /images/{image_id}/metadata*"))
USAGE_PAGES = Microversion(
    "2.40", "os-simple-tenant-usage takes `limit` and `marker`.",
    affects=("GET /os-simple-tenant-usage*",))
AGGREGATE_UUID = Microversion(
    "2.41", "Aggregates show their `uuid` (novad's node belongs to no aggregate and the "
    "list is empty, so nothing changes here).",
    affects=("GET /os-aggregates",))
DEVICE_TAGS = Microversion(
    "2.42", "`tag` is accepted again on `networks` and `block_device_mapping_v2` items.",
    affects=(_CREATE,))
OS_HOSTS_GONE = Microversion(
    "2.43", "os-hosts is 404 (use os-hypervisors and os-services); below it lists the "
    "compute hosts and shows their resources, and its update and power actions are 501 as "
    "with Nova's libvirt driver.",
    affects=("* /os-hosts*",))
NETWORK_ACTIONS_GONE = Microversion(
    "2.44", "addFixedIp, removeFixedIp, addFloatingIp and removeFloatingIp are 404 (below, "
    "novad, with no network service, answers each as Nova does for a network or address "
    "that does not exist); os-virtual-interfaces stays 410 Gone, as in Nova since "
    "nova-network went.",
    affects=(_ACTION,))
IMAGE_ID_IN_BODY = Microversion(
    "2.45", "createImage and createBackup answer `{\"image_id\": ...}` and no `Location` "
    "header.",
    affects=(_ACTION,))
REQUEST_ID_HEADER = Microversion(
    "2.46", "`X-OpenStack-Request-ID` beside `X-Compute-Request-ID` (signalling only: "
    "novad sends both at every version).",
    affects=_EVERY)
EMBEDDED_FLAVOR = Microversion(
    "2.47", "Server show, detail, update and rebuild embed the server's own copy of its "
    "flavor, as built or last resized (`vcpus`, `ram`, `disk`, `ephemeral`, `swap`, "
    "`original_name`, and `extra_specs` for everyone, as Nova's default policy), instead of "
    "the flavor's id and links.",
    affects=_SERVER_VIEWS)
STANDARD_DIAGNOSTICS = Microversion(
    "2.48", "`GET /servers/{id}/diagnostics` (admin; 409 unless the guest runs) has a "
    "standard shape (state, driver, hypervisor, counts, cpu/nic/disk/memory details, "
    "config_drive), with `null` where libvirt cannot tell (rates, uptime, CPU use); below "
    "2.48 it is libvirt's flat blob.",
    affects=("GET /servers/{server_id}/diagnostics",))
TAGGED_ATTACH = Microversion(
    "2.49", "Interface and volume attach take a `tag` (novad has no network or volume "
    "service and serves neither os-interface nor os-volume_attachments, which answer 404 "
    "at every version: nothing changes).",
    affects=_UNSERVED)
QUOTA_CLASS_GROUPS = Microversion(
    "2.50", "os-quota-class-sets (admin; every class shows novad's defaults, which come "
    "from `[quota]`, so a PUT naming a quota is 400) show `server_groups` and "
    "`server_group_members` and drop the network quotas.",
    affects=(_QUOTA_CLASS,))
ACTION_EVENTS_ALL = Microversion(
    "2.51", "Instance action events are shown to non-admins (without `traceback`); the "
    "`volume-extended` external event (novad serves no os-server-external-events and has "
    "no volume service, so only the events change).",
    affects=(_INSTANCE_ACTION,))
TAGS_ON_CREATE = Microversion(
    "2.52", "Server create takes `tags` (at most 50, each as `PUT /servers/{id}/tags` "
    "takes them; duplicates dropped).",
    affects=(_CREATE,))
SERVICE_UUIDS = Microversion(
    "2.53", "Services and hypervisors are identified by UUID (derived from the host name: "
    "the same on every node); `PUT /os-services/{uuid}` with `status`, `disabled_reason` "
    "and `forced_down` answers the whole service and replaces the enable, disable and "
    "force-down routes (a non-UUID there is 400, as Nova); `DELETE /os-services/{uuid}`; "
    "hypervisor lists take `hypervisor_hostname_pattern` and `with_servers` (show takes "
    "`with_servers`) and no other new parameter.",
    affects=("* /os-services*", *_HYPERVISOR_LISTS,
    "GET /os-hypervisors/{hypervisor_id}*"))
REBUILD_KEY_NAME = Microversion(
    "2.54", "Rebuild takes `key_name` (one of the caller's key pairs, else 400; null removes "
    "the server's key pair).",
    affects=(_ACTION,))
FLAVOR_DESCRIPTION = Microversion(
    "2.55", "Flavors have a `description`: set on create, changed (admin) by `PUT "
    "/flavors/{id}`, the only update there is (404 before); shown in every flavor view.",
    affects=("GET /flavors", *_FLAVOR_BODY))
MIGRATE_HOST = Microversion(
    "2.56", "The migrate action takes `host`: the scheduler checks it (never forced); the "
    "server's own host or one the cluster does not know is 400.",
    affects=(_ACTION,))
PERSONALITY_GONE = Microversion(
    "2.57", "`personality` leaves create and rebuild (below 2.57 its files reach the guest "
    "on the config drive, within the `injected_file*` quotas; from 2.57 it is 400); rebuild "
    "takes `user_data` (null removes it); `maxPersonality*` leave the limits and "
    "`injected_file*` the quota sets.",
    affects=(_CREATE, _ACTION, "GET /limits", *_QUOTA_SETS, _QUOTA_CLASS))
ACTION_PAGES = Microversion(
    "2.58", "Instance actions take `limit`, `marker` (a request id) and `changes-since` (of "
    "`updated_at`) and no other query parameter (400); a full page links to the next; "
    "list and show give `updated_at`.",
    affects=_INSTANCE_ACTIONS)
MIGRATION_PAGES = Microversion(
    "2.59", "os-migrations lists newest first and takes `limit`, `marker` (a migration "
    "`uuid`) and `changes-since`, refusing other unknown query parameters (400); a full page "
    "gives `migrations_links`; it and `/servers/{id}/migrations` show each `uuid`.",
    affects=("GET /os-migrations", _LIVE_MIGRATIONS))
MULTIATTACH = Microversion(
    "2.60", "Multiattach volumes (novad has no volume service: nothing changes).",
    affects=(_CREATE,))
FLAVOR_EXTRA_SPECS = Microversion(
    "2.61", "Flavor views (list detail, show, create) show the flavor's `extra_specs`.",
    affects=_FLAVOR_BODY)
ACTION_EVENT_HOST = Microversion(
    "2.62", "Instance action events show `hostId` (hashed with the server's project) and, "
    "for admins, `host`.",
    affects=(_INSTANCE_ACTION,))
TRUSTED_CERTS = Microversion(
    "2.63", "Create and rebuild take `trusted_image_certificates` (at most 50 distinct ids; "
    "rebuild's null clears them); they are kept with the server and shown in show, detail, "
    "update and rebuild (null when none).  novad, like Nova with signature verification "
    "off, stores them and checks no signature.",
    affects=(_CREATE, *_SERVER_VIEWS))
GROUP_POLICY_RULES = Microversion(
    "2.64", "Server groups are created with one `policy` and optional `rules` "
    "(`max_server_per_host`, anti-affinity only, else 400) and show `policy` and `rules` "
    "instead of `policies` and `metadata`; the anti-affinity filter enforces the rule.",
    affects=_GROUP_BODY)
ABORT_QUEUED_LIVE = Microversion(
    "2.65", "A live migration may also be aborted while `queued` or `preparing` (it ends "
    "`cancelled` before the guest moves); below, only `running` (400 otherwise).",
    affects=("DELETE /servers/{server_id}/migrations/{migration_id}",))
CHANGES_BEFORE = Microversion(
    "2.66", "`changes-before` filters servers, instance actions and os-migrations by "
    "`updated_at` (servers: deleted ones too); earlier than `changes-since` is 400.",
    affects=(*_LISTS, "GET /servers/{server_id}/os-instance-actions", "GET /os-migrations"))
VOLUME_TYPE_BDM = Microversion(
    "2.67", "`block_device_mapping_v2` items take `volume_type` (novad has no volume "
    "service and boots only image to local disks, so a volume_type is 400 as Nova's "
    "with destination_type local).",
    affects=(_CREATE,))
FORCE_GONE = Microversion(
    "2.68", "`force` leaves evacuate and os-migrateLive (400): a named host is always "
    "checked by the scheduler.",
    affects=(_ACTION,))
DOWN_CELL = Microversion(
    "2.69", "Servers (list, detail, show) and os-services of a node this one cannot reach "
    "come back in Nova's down-cell form (`status` UNKNOWN and only the keys Nova keeps "
    "outside the cell) instead of as last replicated.",
    affects=(*_LISTS, "GET /servers/{server_id}", "GET /os-services"))
DEVICE_TAGS_SHOWN = Microversion(
    "2.70", "Interface and volume attachment views show `tag` (novad has no network or "
    "volume service and serves neither os-interface nor os-volume_attachments (404): "
    "nothing changes).",
    affects=_UNSERVED)
SERVER_GROUPS_IN_SERVER = Microversion(
    "2.71", "Server show, update and rebuild list the ids of the server's `server_groups`.",
    affects=("GET /servers/{server_id}", "PUT /servers/{server_id}", _ACTION))
PORT_RESOURCE_REQUEST = Microversion(
    "2.72", "Neutron ports with resource requests (novad has no network service: nothing "
    "changes).",
    affects=(_CREATE,))
LOCK_REASON = Microversion(
    "2.73", "`lock` takes `locked_reason` (at most 255 characters); servers show "
    "`locked_reason` (show, detail, update, rebuild); the list filters by `locked` and "
    "sorts by it (`sort_key=locked`).",
    affects=("GET /servers", *_SERVER_VIEWS))
CREATE_HOST = Microversion(
    "2.74", "Create takes `host` and `hypervisor_hostname` (admins only, 403 otherwise; an "
    "unknown host is 400; not with an `az:host:node` zone, 400); the scheduler still runs "
    "its filters on that host.",
    affects=(_CREATE,))
STRICT_PARAMS = Microversion(
    "2.75", "An unknown query parameter or sort key of the server list is 400; flavor "
    "`swap` is 0, not \"\"; update and rebuild answer the full server view; a hypervisor "
    "asked `with_servers` (2.53's query) shows `servers` even when it has none.",
    affects=(*_LISTS, "PUT /servers/{server_id}", _ACTION, *_FLAVOR_BODY,
    *_HYPERVISOR_LISTS, "GET /os-hypervisors/{hypervisor_id}"))
POWER_UPDATE_EVENT = Microversion(
    "2.76", "The `power-update` external event (novad serves no os-server-external-events: "
    "there is no Ironic to send it, so nothing changes; the route is 404 at every version).",
    affects=_UNSERVED)
UNSHELVE_AZ = Microversion(
    "2.77", "Unshelve takes `availability_zone` (one of the cluster's, else 400; only for a "
    "SHELVED_OFFLOADED server, else 409); it pins the server to that zone. novad unshelves "
    "on the server's own node, so a zone that node is not in finds no valid host.",
    affects=(_ACTION,))
SERVER_TOPOLOGY = Microversion(
    "2.78", "`GET /servers/{id}/topology` shows the guest's NUMA topology (novad gives no "
    "guest one: `{\"nodes\": [], \"pagesize_kb\": null}`, as Nova for a guest without NUMA).",
    affects=("GET /servers/{server_id}/topology",))
VOLUME_DELETE_ON_TERMINATION = Microversion(
    "2.79", "Volume attach takes and shows `delete_on_termination` (novad has no volume "
    "service and serves no volume attachments, so nothing changes here).",
    affects=_UNSERVED)
MIGRATION_OWNER = Microversion(
    "2.80", "os-migrations and `/servers/{id}/migrations` show who asked for each move "
    "(`user_id`, `project_id`; null for records made before novad stored them); "
    "os-migrations filters by them.",
    affects=("GET /os-migrations", _LIVE_MIGRATIONS))
IMAGE_CACHE = Microversion(
    "2.81", "`POST /os-aggregates/{id}/images` pre-caches images on an aggregate's hosts "
    "(admin; novad's nodes are in no aggregate, so a well-formed request is 404 for the "
    "aggregate, as Nova answers for one that does not exist).",
    affects=("POST /os-aggregates/{aggregate_id}/images",))
ARQ_EVENT = Microversion(
    "2.82", "The `accelerator-request-bound` external event (novad has no accelerator "
    "service and serves no os-server-external-events: nothing changes).",
    affects=_UNSERVED)
USER_FILTERS = Microversion(
    "2.83", "Non-admins may filter servers by availability_zone, config_drive, key_name, "
    "created_at, launched_at, terminated_at, power_state, task_state, vm_state, "
    "progress and user_id (admins may at every version; below, others' are ignored).",
    affects=_LISTS)
ACTION_EVENT_DETAILS = Microversion(
    "2.84", "Instance action events show `details`: a failed event's fault message, null "
    "for the others.",
    affects=(_INSTANCE_ACTION,))
VOLUME_ATTACHMENT_UPDATE = Microversion(
    "2.85", "`PUT /servers/{id}/os-volume_attachments/{volume}` takes "
    "`delete_on_termination` (novad has no volume service and serves no volume "
    "attachments, so nothing changes here).",
    affects=_UNSERVED)
EXTRA_SPEC_VALIDATION = Microversion(
    "2.86", "os-extra_specs create and update validate the specs of the namespaces novad "
    "knows (hw, hw_rng, hw_video, os, quota, resources, trait, "
    "aggregate_instance_extra_specs, capabilities, pci_passthrough, accel; 400 for an "
    "unknown spec there or a bad value); other namespaces pass, as in Nova.",
    affects=("POST /flavors/{flavor_id}/os-extra_specs",
    "PUT /flavors/{flavor_id}/os-extra_specs/{key}"))
BFV_RESCUE = Microversion(
    "2.87", "Volume-backed servers may be rescued (novad has no volume service, so no "
    "server is volume-backed: rescue is unchanged).",
    affects=(_ACTION,))
HYPERVISOR_SLIM = Microversion(
    "2.88", "Hypervisor show and detail drop `cpu_info`, `current_workload`, `running_vms` "
    "and the vcpu, memory and disk figures and show `uptime` (null for another node's); "
    "`/os-hypervisors/statistics` and `/os-hypervisors/{id}/uptime` are 404.",
    affects=("GET /os-hypervisors/detail", "GET /os-hypervisors/statistics",
    "GET /os-hypervisors/{hypervisor_id}*"))
VOLUME_ATTACHMENT_IDS = Microversion(
    "2.89", "Volume attachment views show `attachment_id` and `bdm_uuid` and drop `id` "
    "(novad has no volume service and serves no volume attachments: nothing changes).",
    affects=_UNSERVED)
HOSTNAME = Microversion(
    "2.90", "Create, update and rebuild take `hostname` (one RFC 1123 label of 2-63 "
    "characters; 400 with more than one server), which the config drive publishes; "
    "`OS-EXT-SRV-ATTR:hostname` is shown to everyone.",
    affects=(_CREATE, *_SERVER_VIEWS))
UNSHELVE_HOST = Microversion(
    "2.91", "Unshelve takes `host` (admins; a known compute host in the zone asked for, "
    "else 400; a host other than the server's node finds no valid host), and "
    "`availability_zone: null` unpins the server.",
    affects=(_ACTION,))
KEYPAIR_IMPORT_ONLY = Microversion(
    "2.92", "Key pair create only imports: `public_key` is required (400 without; the "
    "server generates no pairs); names may contain `@` and `.`.",
    affects=("POST /os-keypairs",))
REBUILD_VOLUME_BACKED = Microversion(
    "2.93", "Volume-backed servers may be rebuilt (novad has no volume service, so no "
    "server is volume-backed: rebuild is unchanged).",
    affects=(_ACTION,))
HOSTNAME_FQDN = Microversion(
    "2.94", "`hostname` may be a fully qualified domain name (up to 255 letters, digits, "
    "`-`, `.` and `_`).",
    affects=(_CREATE, "PUT /servers/{server_id}", _ACTION))
EVACUATE_STOPPED = Microversion(
    "2.95", "An evacuated server ends STOPPED at its destination (an ERROR one ACTIVE); "
    "below, it ends as it was (STOPPED stays STOPPED, else ACTIVE).",
    affects=(_ACTION,))
PINNED_AZ = Microversion(
    "2.96", "Server show, detail, update and rebuild show `pinned_availability_zone`: the "
    "zone the user asked for at create (or at an unshelve, 2.77), null when none.",
    affects=_SERVER_VIEWS)

HISTORY: tuple[Microversion, ...] = (
    BASE, KEYPAIR_TYPE, EXTENDED_ATTRIBUTES, FIXED_IP_RESERVED, IP6_FILTER, REMOTE_CONSOLES,
    PUBLIC_FLAVOR_ACCESS_CONFLICT, MKS_CONSOLE, LOCKED, KEYPAIR_USER, FORCED_DOWN, VIF_NET_ID,
    SERVER_GROUP_OWNER, EVACUATE_NO_SHARED_STORAGE, SOFT_AFFINITY, HOST_STATUS,
    TRIGGER_CRASH_DUMP, OPTIONAL_PROJECT_ID, SERVER_DESCRIPTION, SHELVED_VOLUME_ATTACH,
    DELETED_INSTANCE_ACTIONS, FORCE_COMPLETE, SERVER_MIGRATIONS, ABORT_LIVE_MIGRATION,
    LIVE_MIGRATE_AUTO, SERVER_TAGS, NEW_VERSION_HEADER, CPU_INFO_OBJECT, EVACUATE_FORCE,
    LIVE_MIGRATE_FORCE, CONSOLE_AUTH_TOKENS, DEVICE_TAGS_FIRST, HYPERVISOR_PAGES,
    ASYNC_LIVE_MIGRATE_CHECKS, KEYPAIR_PAGES, PROXY_APIS_GONE, NETWORKS_AUTO,
    STATUS_FILTER_STRICT, IMAGE_METADATA_PROXY_GONE, USAGE_PAGES, AGGREGATE_UUID, DEVICE_TAGS,
    OS_HOSTS_GONE, NETWORK_ACTIONS_GONE, IMAGE_ID_IN_BODY, REQUEST_ID_HEADER, EMBEDDED_FLAVOR,
    STANDARD_DIAGNOSTICS, TAGGED_ATTACH, QUOTA_CLASS_GROUPS, ACTION_EVENTS_ALL, TAGS_ON_CREATE,
    SERVICE_UUIDS, REBUILD_KEY_NAME, FLAVOR_DESCRIPTION, MIGRATE_HOST, PERSONALITY_GONE,
    ACTION_PAGES, MIGRATION_PAGES, MULTIATTACH, FLAVOR_EXTRA_SPECS, ACTION_EVENT_HOST,
    TRUSTED_CERTS, GROUP_POLICY_RULES, ABORT_QUEUED_LIVE, CHANGES_BEFORE, VOLUME_TYPE_BDM,
    FORCE_GONE, DOWN_CELL, DEVICE_TAGS_SHOWN, SERVER_GROUPS_IN_SERVER, PORT_RESOURCE_REQUEST,
    LOCK_REASON, CREATE_HOST, STRICT_PARAMS, POWER_UPDATE_EVENT, UNSHELVE_AZ, SERVER_TOPOLOGY,
    VOLUME_DELETE_ON_TERMINATION, MIGRATION_OWNER, IMAGE_CACHE, ARQ_EVENT, USER_FILTERS,
    ACTION_EVENT_DETAILS, VOLUME_ATTACHMENT_UPDATE, EXTRA_SPEC_VALIDATION, BFV_RESCUE,
    HYPERVISOR_SLIM, VOLUME_ATTACHMENT_IDS, HOSTNAME, UNSHELVE_HOST, KEYPAIR_IMPORT_ONLY,
    REBUILD_VOLUME_BACKED, HOSTNAME_FQDN, EVACUATE_STOPPED, PINNED_AZ,
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


def changing(method: str, path: str) -> tuple[Microversion, ...]:
    """The versions of :data:`HISTORY` that change the operation ``method
    path`` (relative to the versioned root), oldest first."""
    return tuple(v for v in HISTORY if v.changes(method, path))


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
