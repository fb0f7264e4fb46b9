"""JSON schemas of Compute API request bodies, in Nova's 2.1 shapes.

Transcribed from Nova's ``api/openstack/compute/schemas`` at 2.1, with two
deliberate differences: formats (uuid, base64, date-time) are patterns or
checks in code, because :func:`novad.api.common.validate` checks only the
``ipv4`` and ``ipv6`` formats (Nova's access IPs); and fields novad cannot
honour (volume block devices) are refused rather than silently dropped.
"""

from __future__ import annotations

import functools

import copy
from typing import Any

from novad.api import microversion

Schema = dict[str, Any]

NAME: Schema = {
    # Printable characters, no leading or trailing white space (Nova's
    # valid_name_regex, approximated by excluding control characters).
    "type": "string", "minLength": 1, "maxLength": 255,
    "pattern": r"^(?!\s)[^\x00-\x1f\x7f-\x9f\u2028\u2029]*(?<!\s)$",
}

BOOLEAN: Schema = {
    "type": ["boolean", "string"],
    "enum": [True, "True", "TRUE", "true", "1", "ON", "On", "on", "YES", "Yes", "yes",
             False, "False", "FALSE", "false", "0", "OFF", "Off", "off", "NO", "No", "no"],
}

UUID_PATTERN = (r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?"
                r"[0-9a-fA-F]{12}$")

UUID: Schema = {"type": "string", "pattern": UUID_PATTERN}

POSITIVE_INT: Schema = {"type": ["integer", "string"], "pattern": "^[0-9]+$", "minimum": 1}

NON_NEGATIVE_INT: Schema = {"type": ["integer", "string"], "pattern": "^[0-9]+$", "minimum": 0}

HOSTNAME: Schema = {"type": "string", "minLength": 1, "maxLength": 255,
                    "pattern": "^[a-zA-Z0-9-._]*$"}

METADATA_KEY = "^[a-zA-Z0-9-_:. ]{1,255}$"

METADATA: Schema = {
    "type": "object",
    "patternProperties": {METADATA_KEY: {"type": "string", "maxLength": 255}},
    "additionalProperties": False,
}

ADMIN_PASSWORD: Schema = {"type": "string"}

IP_ADDRESS: Schema = {"type": "string", "minLength": 2, "maxLength": 45,
                      "pattern": r"^[0-9A-Fa-f.:]+$"}
"""An IPv4 or IPv6 address, roughly (no format checker runs); the handler parses it."""

FLAVOR_REF: Schema = {"type": ["string", "integer"], "minLength": 1}

DISK_CONFIG: Schema = {"type": "string", "enum": ["AUTO", "MANUAL"]}
"""``OS-DCF:diskConfig``.  novad always grows the root disk to the flavor's
size and leaves the partitions and file systems to the guest (cloud-init's
growpart), which is what Nova's libvirt driver does with AUTO for an image
whose file system it cannot resize in place (any partitioned image); so
both are accepted, kept and shown."""

ACCESS_IPV4: Schema = {"type": "string", "format": "ipv4"}
"""Nova's ``parameter_types.accessIPv4``."""

ACCESS_IPV6: Schema = {"type": "string", "format": "ipv6"}
"""Nova's ``parameter_types.accessIPv6``."""

ACCESS_IPS: Schema = {"accessIPv4": ACCESS_IPV4, "accessIPv6": ACCESS_IPV6}
"""The access IPs create, update and rebuild take (and keep)."""

NULL_OR_EMPTY: Schema = {"anyOf": [{"type": "null"},
                                   {"type": "object", "maxProperties": 0}]}
"""Body of an action without arguments: ``{"pause": null}`` or ``{"pause": {}}``."""


def envelope(key: str, inner: Schema) -> Schema:
    """``{key: inner}`` and nothing else."""
    return {"type": "object", "properties": {key: inner}, "required": [key],
            "additionalProperties": False}


def strict(properties: Schema, required: list[str] | None = None,
           types: str | list[str] = "object") -> Schema:
    """An object with exactly these properties."""
    schema: Schema = {"type": types, "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = required
    return schema


# -- servers ----------------------------------------------------------------------

PERSONALITY: Schema = {"type": "array", "items": strict({
    "path": {"type": "string", "minLength": 1},
    "contents": {"type": "string"},
}, required=["path", "contents"])}
"""``personality`` of create and rebuild, below 2.57: files for the guest
(base64 ``contents``, decoded by the handler).  A path's length is not
capped here: the project's ``injected_file_path_bytes`` quota caps it (403,
as Nova)."""

_NETWORK: Schema = strict({
    "fixed_ip": {"type": "string"},
    "port": {"type": ["string", "null"]},
    "uuid": {"type": "string"},
})

_BDM_V2: Schema = strict({
    "source_type": {"type": "string", "enum": ["volume", "image", "snapshot", "blank"]},
    "destination_type": {"type": "string", "enum": ["local", "volume"]},
    "uuid": {"type": "string", "minLength": 1, "maxLength": 255,
             "pattern": "^[a-zA-Z0-9._-]*$"},
    "image_id": UUID,
    "boot_index": {"type": ["integer", "string", "null"], "pattern": "^-?[0-9]+$"},
    "device_name": {"type": "string", "minLength": 1, "maxLength": 255,
                    "pattern": "^[a-zA-Z0-9._/-]*$"},
    "delete_on_termination": BOOLEAN,
    "guest_format": {"type": "string", "maxLength": 255},
    "device_type": {"type": "string", "maxLength": 255},
    "disk_bus": {"type": "string", "maxLength": 255},
    "volume_size": {"type": ["integer", "string", "null"], "pattern": "^[0-9]+$"},
})

SERVER_CREATE: Schema = {
    "type": "object",
    "properties": {
        "server": strict({
            "name": NAME,
            "imageRef": {"anyOf": [UUID, {"type": "string", "maxLength": 0}]},
            "flavorRef": FLAVOR_REF,
            "adminPass": ADMIN_PASSWORD,
            "metadata": METADATA,
            "networks": {"type": "array", "items": _NETWORK},
            "OS-DCF:diskConfig": DISK_CONFIG,
            **ACCESS_IPS,
            "availability_zone": NAME,
            "block_device_mapping_v2": {"type": "array", "items": _BDM_V2},
            "config_drive": BOOLEAN,
            "key_name": NAME,
            "min_count": POSITIVE_INT,
            "max_count": POSITIVE_INT,
            "return_reservation_id": BOOLEAN,
            "security_groups": {"type": "array", "items": strict({"name": NAME})},
            "user_data": {"type": "string", "maxLength": 65535},
            "personality": PERSONALITY,
        }, required=["name", "flavorRef"]),
        "os:scheduler_hints": {"type": "object"},
        "OS-SCH-HNT:scheduler_hints": {"type": "object"},
    },
    "required": ["server"],
    "additionalProperties": False,
}

SERVER_UPDATE: Schema = envelope("server", strict({
    "name": NAME,
    "OS-DCF:diskConfig": DISK_CONFIG,
    **ACCESS_IPS,
}))

DESCRIPTION: Schema = {
    # Nova's parameter_types.description: printable characters or null.
    "type": ["string", "null"], "minLength": 0, "maxLength": 255,
    "pattern": r"^[^\x00-\x1f\x7f-\x9f\u2028\u2029]*$",
}


def with_server_property(schema: Schema, name: str, value: Schema) -> Schema:
    """``schema`` (an envelope of ``server``) accepting one more property."""
    extended = copy.deepcopy(schema)
    extended["properties"]["server"]["properties"][name] = value
    return extended


SERVER_CREATE_V2_19 = with_server_property(SERVER_CREATE, "description", DESCRIPTION)
"""2.19: create takes a ``description``."""

SERVER_UPDATE_V2_19 = with_server_property(SERVER_UPDATE, "description", DESCRIPTION)
"""2.19: update takes a ``description``."""

TRUSTED_CERTS: Schema = {"type": ["array", "null"], "minItems": 1, "maxItems": 50,
                         "uniqueItems": True, "items": {"type": "string", "minLength": 1}}
"""2.63 ``trusted_image_certificates``: up to 50 distinct certificate ids
(null: none)."""

_BDM_V2_67: Schema = strict({**_BDM_V2["properties"],
                             "volume_type": {"type": ["string", "null"], "minLength": 0,
                                             "maxLength": 255}})
"""2.67: a block device mapping names its ``volume_type``."""


SERVER_HOSTNAME_V2_90: Schema = {"type": "string", "minLength": 2, "maxLength": 63,
                                 "pattern": "^[a-zA-Z0-9]+[a-zA-Z0-9-]*[a-zA-Z0-9]+$"}
"""2.90's ``hostname`` of create, update and rebuild: one RFC 952/1123 label."""

SERVER_HOSTNAME_V2_94: Schema = {"type": "string", "minLength": 1, "maxLength": 255,
                                 "pattern": "^[a-zA-Z0-9-._]*$"}
"""2.94: the ``hostname`` may be a fully qualified domain name."""

_HOSTNAMED: dict[tuple[int, bool], Schema] = {}


def with_hostname(schema: Schema, fqdn: bool) -> Schema:
    """``schema`` (a ``server`` envelope: create or update) also taking
    2.90's ``hostname`` (2.94's with ``fqdn``); built once per schema, since
    validators are cached per schema object."""
    key = (id(schema), fqdn)
    if key not in _HOSTNAMED:
        _HOSTNAMED[key] = with_server_property(
            schema, "hostname", SERVER_HOSTNAME_V2_94 if fqdn else SERVER_HOSTNAME_V2_90)
    return _HOSTNAMED[key]

MAX_TAGS = 50
"""Tags per server at most (Nova's MAX_TAG_COUNT)."""

TAG: Schema = {"type": "string", "minLength": 1, "maxLength": 60, "pattern": "^[^,/]*$"}
"""One server tag (2.26): no ``/`` or ``,``."""


def _tagged(item: Schema, tagged: bool) -> Schema:
    """A ``networks`` or ``block_device_mapping_v2`` item, with a device ``tag``
    (2.32) when ``tagged``."""
    if not tagged:
        return item
    return {**item, "properties": {**item["properties"], "tag": TAG}}


NETWORKS_V2_37: Schema = {"anyOf": [
    {"type": "array", "items": strict({"fixed_ip": {"type": "string"},
                                       "port": {"type": ["string", "null"]},
                                       "uuid": UUID})},
    {"type": "string", "enum": ["none", "auto"]}]}
"""2.37's ``networks``: ``auto``, ``none``, or a list whose ``uuid`` is a UUID."""


@functools.lru_cache(maxsize=None)
def server_create(version: tuple[int, int]) -> Schema:
    """``POST /servers`` at ``version`` (built once per version, as validators
    are cached per schema object): 2.19's ``description``; a device ``tag``
    on ``networks`` items at 2.32-2.36 and from 2.42, on
    ``block_device_mapping_v2`` items at 2.32 and from 2.42; from 2.37
    ``networks`` is required, ``auto``, ``none`` or a list of UUIDs; 2.52's
    ``tags``; 2.57 takes ``personality`` away; 2.63's
    ``trusted_image_certificates``; 2.67's ``volume_type`` on block devices;
    2.74's ``host`` and ``hypervisor_hostname``."""
    mv = microversion
    schema = copy.deepcopy(SERVER_CREATE_V2_19 if version >= mv.SERVER_DESCRIPTION.key
                           else SERVER_CREATE)
    server = schema["properties"]["server"]
    props = server["properties"]
    tags_back = version >= mv.DEVICE_TAGS.key
    bdm = _BDM_V2_67 if version >= mv.VOLUME_TYPE_BDM.key else _BDM_V2
    props["block_device_mapping_v2"]["items"] = _tagged(
        bdm, tags_back or mv.DEVICE_TAGS_FIRST.key <= version < mv.HYPERVISOR_PAGES.key)
    if version >= mv.NETWORKS_AUTO.key:
        networks = copy.deepcopy(NETWORKS_V2_37)
        networks["anyOf"][0]["items"] = _tagged(networks["anyOf"][0]["items"], tags_back)
        props["networks"] = networks
        server["required"] = [*server["required"], "networks"]
    else:
        props["networks"]["items"] = _tagged(_NETWORK, version >= mv.DEVICE_TAGS_FIRST.key)
    if version >= mv.PERSONALITY_GONE.key:
        del props["personality"]
    if version >= mv.TAGS_ON_CREATE.key:  # as PUT /servers/{id}/tags
        props["tags"] = {"type": "array", "items": TAG, "maxItems": MAX_TAGS}
    if version >= mv.TRUSTED_CERTS.key:
        props["trusted_image_certificates"] = TRUSTED_CERTS
    if version >= mv.CREATE_HOST.key:
        props["host"] = HOSTNAME
        props["hypervisor_hostname"] = HOSTNAME
    return schema


SERVER_TAGS_REPLACE: Schema = strict({"tags": {"type": "array", "items": TAG,
                                               "maxItems": MAX_TAGS}}, required=["tags"])
"""``PUT /servers/{id}/tags``."""

SERVER_TAG_ADD: Schema = {"type": "null"}
"""``PUT /servers/{id}/tags/{tag}`` takes no body."""

METADATA_SET: Schema = envelope("metadata", METADATA)

METADATA_ITEM: Schema = envelope("meta", {**METADATA, "minProperties": 1,
                                          "maxProperties": 1})

# -- server actions -----------------------------------------------------------------

NO_ARGUMENT_ACTIONS = ("os-start", "os-stop", "pause", "unpause", "suspend", "resume",
                       "shelve", "shelveOffload", "unshelve", "unrescue", "confirmResize",
                       "revertResize", "restore", "forceDelete", "lock", "unlock", "migrate",
                       "trigger_crash_dump")

ACTION_ARGUMENTS: dict[str, Schema] = {
    **{name: NULL_OR_EMPTY for name in NO_ARGUMENT_ACTIONS},
    "reboot": strict({"type": {"type": "string",
                               "enum": ["HARD", "Hard", "hard", "SOFT", "Soft", "soft"]}},
                     required=["type"]),
    "resize": strict({"flavorRef": FLAVOR_REF, "OS-DCF:diskConfig": DISK_CONFIG},
                     required=["flavorRef"]),
    "rebuild": strict({"imageRef": UUID, "name": NAME, "adminPass": ADMIN_PASSWORD,
                       "metadata": METADATA, "OS-DCF:diskConfig": DISK_CONFIG,
                       "personality": PERSONALITY, **ACCESS_IPS}, required=["imageRef"]),
    "createImage": strict({"name": NAME, "metadata": METADATA}, required=["name"]),
    "createBackup": strict({"name": NAME, "backup_type": {"type": "string"},
                            "rotation": NON_NEGATIVE_INT, "metadata": METADATA},
                           required=["name", "backup_type", "rotation"]),
    "evacuate": strict({"host": HOSTNAME, "onSharedStorage": BOOLEAN,
                        "adminPass": ADMIN_PASSWORD}),
    "os-migrateLive": strict({"block_migration": BOOLEAN, "disk_over_commit": BOOLEAN,
                              "host": {**HOSTNAME, "type": ["string", "null"]}},
                             required=["block_migration", "disk_over_commit", "host"]),
    "changePassword": strict({"adminPass": ADMIN_PASSWORD}, required=["adminPass"]),
    "os-resetState": strict({"state": {"type": "string", "enum": ["active", "error"]}},
                            required=["state"]),
    "rescue": strict({"adminPass": ADMIN_PASSWORD, "rescue_image_ref": UUID},
                     types=["object", "null"]),
    "os-getConsoleOutput": strict({"length": {"type": ["integer", "string", "null"],
                                              "pattern": "^-?[0-9]+$", "minimum": -1}}),
    "os-getVNCConsole": strict({"type": {"type": "string", "enum": ["novnc", "xvpvnc"]}},
                               required=["type"]),
    "addSecurityGroup": strict({"name": {"type": "string", "minLength": 1}},
                               required=["name"]),
    "removeSecurityGroup": strict({"name": {"type": "string", "minLength": 1}},
                                  required=["name"]),
    "addFixedIp": strict({"networkId": {"type": ["string", "number"]}},
                         required=["networkId"]),
    "removeFixedIp": strict({"address": IP_ADDRESS}, required=["address"]),
    "addFloatingIp": strict({"address": IP_ADDRESS, "fixed_address": IP_ADDRESS},
                            required=["address"]),
    "removeFloatingIp": strict({"address": IP_ADDRESS}, required=["address"]),
}
"""The value schema of each action key of ``POST /servers/{id}/action``."""


ACTION_ARGUMENTS_V2_14: dict[str, Schema] = {
    "evacuate": strict({"host": HOSTNAME, "adminPass": ADMIN_PASSWORD}),
}
"""2.14: evacuate no longer takes ``onSharedStorage`` (Nova detects it)."""

ACTION_ARGUMENTS_V2_19: dict[str, Schema] = {
    "rebuild": strict({**ACTION_ARGUMENTS["rebuild"]["properties"],
                       "description": DESCRIPTION}, required=["imageRef"]),
}
"""2.19: rebuild takes a ``description``."""


ACTION_ARGUMENTS_V2_25: dict[str, Schema] = {
    "os-migrateLive": strict({"block_migration": {"oneOf": [BOOLEAN, {"enum": ["auto"]}]},
                              "host": {**HOSTNAME, "type": ["string", "null"]}},
                             required=["block_migration", "host"]),
}
"""2.25: live migration's ``block_migration`` may be ``auto``; ``disk_over_commit``
is gone (refused as an additional property)."""


ACTION_ARGUMENTS_V2_29: dict[str, Schema] = {
    "evacuate": strict({**ACTION_ARGUMENTS_V2_14["evacuate"]["properties"], "force": BOOLEAN}),
}
"""2.29: evacuate takes ``force`` (a named host is checked unless it is true)."""

ACTION_ARGUMENTS_V2_30: dict[str, Schema] = {
    "os-migrateLive": strict({**ACTION_ARGUMENTS_V2_25["os-migrateLive"]["properties"],
                              "force": BOOLEAN}, required=["block_migration", "host"]),
}
"""2.30: os-migrateLive takes ``force``, as evacuate at 2.29."""

ACTION_ARGUMENTS_V2_54: dict[str, Schema] = {
    "rebuild": strict({**ACTION_ARGUMENTS_V2_19["rebuild"]["properties"],
                       "key_name": {**NAME, "type": ["string", "null"]}},
                      required=["imageRef"]),
}
"""2.54: rebuild takes ``key_name`` (null removes the server's key pair)."""

ACTION_ARGUMENTS_V2_56: dict[str, Schema] = {
    "migrate": strict({"host": {**HOSTNAME, "type": ["string", "null"]}},
                      types=["object", "null"]),
}
"""2.56: migrate takes ``host`` (checked by the scheduler)."""

ACTION_ARGUMENTS_V2_57: dict[str, Schema] = {
    "rebuild": strict({**{key: value for key, value
                          in ACTION_ARGUMENTS_V2_54["rebuild"]["properties"].items()
                          if key != "personality"},
                       "user_data": {"type": ["string", "null"], "maxLength": 65535}},
                      required=["imageRef"]),
}
"""2.57: rebuild takes ``user_data`` (null removes it); ``personality`` is
gone (an additional property)."""


ACTION_PROPERTIES_V2_63: dict[str, Schema] = {
    "rebuild": {"trusted_image_certificates": TRUSTED_CERTS}}
"""2.63: rebuild takes ``trusted_image_certificates`` (null clears them)."""

ACTION_ARGUMENTS_V2_68: dict[str, Schema] = {
    "evacuate": ACTION_ARGUMENTS_V2_14["evacuate"],
    "os-migrateLive": ACTION_ARGUMENTS_V2_25["os-migrateLive"],
}
"""2.68: ``force`` leaves evacuate and os-migrateLive (an additional property)."""

ACTION_ARGUMENTS_V2_73: dict[str, Schema] = {
    "lock": strict({"locked_reason": {"type": "string", "minLength": 1, "maxLength": 255}},
                   types=["object", "null"]),
}
"""2.73: lock takes a ``locked_reason``."""

ACTION_ARGUMENTS_V2_77: dict[str, Schema] = {
    "unshelve": strict({"availability_zone": NAME}, types=["object", "null"]),
}
"""2.77: unshelve takes an ``availability_zone`` (a shelved offloaded server's)."""

ACTION_ARGUMENTS_V2_91: dict[str, Schema] = {
    "unshelve": strict({"availability_zone": {"anyOf": [{"type": "null"}, NAME]},
                        "host": SERVER_HOSTNAME_V2_94}, types=["object", "null"]),
}
"""2.91: unshelve takes a ``host`` (admins), and ``availability_zone: null`` unpins."""

ACTION_PROPERTIES_V2_90: dict[str, Schema] = {"rebuild": {"hostname": SERVER_HOSTNAME_V2_90}}
"""2.90: rebuild takes a ``hostname``."""

ACTION_PROPERTIES_V2_94: dict[str, Schema] = {"rebuild": {"hostname": SERVER_HOSTNAME_V2_94}}
"""2.94: rebuild's ``hostname`` may be a fully qualified domain name."""

ARGUMENT_TABLES: dict[int, dict[str, Schema]] = {
    14: ACTION_ARGUMENTS_V2_14, 19: ACTION_ARGUMENTS_V2_19, 25: ACTION_ARGUMENTS_V2_25,
    29: ACTION_ARGUMENTS_V2_29, 30: ACTION_ARGUMENTS_V2_30, 54: ACTION_ARGUMENTS_V2_54,
    56: ACTION_ARGUMENTS_V2_56, 57: ACTION_ARGUMENTS_V2_57, 68: ACTION_ARGUMENTS_V2_68,
    73: ACTION_ARGUMENTS_V2_73, 77: ACTION_ARGUMENTS_V2_77, 91: ACTION_ARGUMENTS_V2_91}
"""Tables that replace an action's whole arguments from a minor version on."""

PROPERTY_TABLES: dict[int, dict[str, Schema]] = {63: ACTION_PROPERTIES_V2_63,
                                                 90: ACTION_PROPERTIES_V2_90,
                                                 94: ACTION_PROPERTIES_V2_94}
"""Tables that add (or redefine) some properties of an action's arguments
from a minor version on, on top of whatever the versions before it accept."""


def arguments_at(key: str, revision: int) -> Schema:
    """The argument schema of ``key`` at minor ``revision``: the 2.1 one with
    every table up to ``revision`` applied in version order."""
    arguments = ACTION_ARGUMENTS[key]
    for minor in sorted(set(ARGUMENT_TABLES) | set(PROPERTY_TABLES)):
        if minor > revision:
            break
        if key in ARGUMENT_TABLES.get(minor, {}):
            arguments = ARGUMENT_TABLES[minor][key]
        if key in PROPERTY_TABLES.get(minor, {}):
            arguments = {**arguments, "properties": {**arguments["properties"],
                                                     **PROPERTY_TABLES[minor][key]}}
    return arguments


@functools.lru_cache(maxsize=None)
def action_schema(key: str, revision: int = 0) -> Schema:
    """The whole-body schema of one action (built once: validators are cached
    per schema object).  ``revision`` is the minor version whose arguments
    apply (see :func:`arguments_at`)."""
    return envelope(key, arguments_at(key, revision))


SERVER_ACTION: Schema = {
    "type": "object",
    "oneOf": [action_schema(key) for key in sorted(ACTION_ARGUMENTS)],
}
"""Every action body (for ``/openapi.json``; dispatch validates per key)."""

# -- flavors ----------------------------------------------------------------------

_FLAVOR_POSITIVE: Schema = {"type": ["integer", "string"], "pattern": "^[0-9]+$",
                            "minimum": 1, "maximum": 0x7FFFFFFF}
_FLAVOR_NON_NEGATIVE: Schema = {**_FLAVOR_POSITIVE, "minimum": 0}

FLAVOR_CREATE: Schema = envelope("flavor", strict({
    "name": NAME,
    "id": {"type": ["string", "number", "null"], "minLength": 1, "maxLength": 255,
           "pattern": "^(?! )[a-zA-Z0-9. _-]+(?<! )$"},
    "ram": _FLAVOR_POSITIVE,
    "vcpus": _FLAVOR_POSITIVE,
    "disk": _FLAVOR_NON_NEGATIVE,
    "OS-FLV-EXT-DATA:ephemeral": _FLAVOR_NON_NEGATIVE,
    "swap": _FLAVOR_NON_NEGATIVE,
    "rxtx_factor": {"type": ["number", "string"], "pattern": r"^[0-9]+(\.[0-9]+)?$",
                    "exclusiveMinimum": 0, "maximum": 3.40282e38},
    "os-flavor-access:is_public": BOOLEAN,
}, required=["name", "ram", "vcpus", "disk"]))

FLAVOR_DESCRIPTION: Schema = {**DESCRIPTION, "maxLength": 65535}
"""A flavor's description (2.55): printable characters or null, longer than a server's."""

FLAVOR_CREATE_V2_55: Schema = envelope("flavor", strict({
    **FLAVOR_CREATE["properties"]["flavor"]["properties"], "description": FLAVOR_DESCRIPTION,
}, required=["name", "ram", "vcpus", "disk"]))
"""2.55: create takes a ``description``."""

FLAVOR_UPDATE: Schema = envelope("flavor", strict({"description": FLAVOR_DESCRIPTION},
                                                  required=["description"]))
"""``PUT /flavors/{id}`` (2.55): only the description changes."""

_TENANT: Schema = strict({"tenant": {"type": "string", "minLength": 1, "maxLength": 255}},
                         required=["tenant"])

FLAVOR_ACTION: Schema = {"type": "object", "oneOf": [envelope("addTenantAccess", _TENANT),
                                                     envelope("removeTenantAccess", _TENANT)]}

FLAVOR_ACTION_ARGUMENTS: dict[str, Schema] = {"addTenantAccess": _TENANT,
                                              "removeTenantAccess": _TENANT}

_SPECS: Schema = copy.deepcopy(METADATA)
_SPECS["patternProperties"][METADATA_KEY]["type"] = ["string", "number", "boolean"]

EXTRA_SPECS_SET: Schema = envelope("extra_specs", _SPECS)

EXTRA_SPEC_ITEM: Schema = {**_SPECS, "minProperties": 1, "maxProperties": 1}

# -- key pairs --------------------------------------------------------------------

KEYPAIR_CREATE: Schema = envelope("keypair", strict({
    "name": NAME,
    "public_key": {"type": "string"},
}, required=["name"]))
"""``POST /os-keypairs`` at 2.1."""

KEYPAIR_CREATE_V2_2: Schema = envelope("keypair", strict({
    "name": NAME,
    "type": {"type": "string", "enum": ["ssh", "x509"]},
    "public_key": {"type": "string"},
}, required=["name"]))
"""From 2.2: the key pair ``type``."""

KEYPAIR_CREATE_V2_10: Schema = envelope("keypair", strict({
    "name": NAME,
    "type": {"type": "string", "enum": ["ssh", "x509"]},
    "public_key": {"type": "string"},
    "user_id": {"type": "string"},
}, required=["name"]))
"""From 2.10: an admin names the ``user_id`` the pair is for."""

KEYPAIR_CREATE_V2_92: Schema = envelope("keypair", strict({
    "name": NAME,
    "type": {"type": "string", "enum": ["ssh", "x509"]},
    "public_key": {"type": "string"},
    "user_id": {"type": "string"},
}, required=["name", "public_key"]))
"""From 2.92: import only (``public_key`` required; the server generates no
pairs); the name rule is the service's."""


# -- remote consoles ---------------------------------------------------------------

_CONSOLE_PROTOCOLS = ["vnc", "spice", "rdp", "serial"]
_CONSOLE_TYPES = ["novnc", "xvpvnc", "rdp-html5", "spice-html5", "serial"]


def _remote_console(protocols: list[str], types: list[str]) -> Schema:
    return envelope("remote_console", strict({
        "protocol": {"type": "string", "enum": protocols},
        "type": {"type": "string", "enum": types},
    }, required=["protocol", "type"]))


REMOTE_CONSOLE_V2_6: Schema = _remote_console(_CONSOLE_PROTOCOLS, _CONSOLE_TYPES)
"""``POST /servers/{id}/remote-consoles`` from 2.6."""

REMOTE_CONSOLE_V2_8: Schema = _remote_console([*_CONSOLE_PROTOCOLS, "mks"],
                                              [*_CONSOLE_TYPES, "webmks"])
"""From 2.8: protocol ``mks``, type ``webmks``."""


# -- quota sets -------------------------------------------------------------------

QUOTA_VALUE: Schema = {"type": ["integer", "string"], "pattern": "^-?[0-9]+$",
                       "minimum": -1, "maximum": 0x7FFFFFFF}
"""Nova's ``non_negative_integer_with_minus_one``; strings are range-checked
by the handler."""

QUOTA_KEYS: tuple[str, ...] = (
    "cores", "fixed_ips", "floating_ips", "injected_file_content_bytes",
    "injected_file_path_bytes", "injected_files", "instances", "key_pairs", "metadata_items",
    "ram", "security_group_rules", "security_groups", "server_group_members", "server_groups")
"""The quota_set keys of microversion 2.1, in Nova's order."""

QUOTA_SET_UPDATE: Schema = envelope("quota_set", strict(
    {**{key: QUOTA_VALUE for key in QUOTA_KEYS}, "force": BOOLEAN}))

NETWORK_QUOTAS: tuple[str, ...] = ("fixed_ips", "floating_ips", "security_group_rules",
                                   "security_groups")
"""The network quota keys, gone from os-quota-sets at 2.36 (and from the
quota classes at 2.50)."""

QUOTA_SET_UPDATE_V2_36: Schema = envelope("quota_set", strict(
    {**{key: QUOTA_VALUE for key in QUOTA_KEYS if key not in NETWORK_QUOTAS},
     "force": BOOLEAN}))
"""2.36: the network quotas can no longer be named."""

_HOST_SWITCH: Schema = {"type": "string", "enum": ["enable", "disable", "Enable", "Disable",
                                                   "ENABLE", "DISABLE"]}

HOST_UPDATE: Schema = {
    "type": "object",
    "properties": {"status": _HOST_SWITCH, "maintenance_mode": _HOST_SWITCH},
    "anyOf": [{"required": ["status"]}, {"required": ["maintenance_mode"]}],
    "additionalProperties": False,
}
"""``PUT /os-hosts/{host}`` (below 2.43): ``status``, ``maintenance_mode`` or both."""

PERSONALITY_QUOTAS: tuple[str, ...] = (
    "injected_file_content_bytes", "injected_file_path_bytes", "injected_files")
"""The quota_set keys 2.57 removes with personality."""

QUOTA_SET_UPDATE_V2_57: Schema = envelope("quota_set", strict(
    {**{key: QUOTA_VALUE for key in QUOTA_KEYS
        if key not in PERSONALITY_QUOTAS and key not in NETWORK_QUOTAS},
     "force": BOOLEAN}))
"""2.57: the personality quotas can no longer be named either (nor, since
2.36, the network ones)."""

GROUP_QUOTAS: tuple[str, ...] = ("server_group_members", "server_groups")
"""The quota class keys 2.50 adds."""


def quota_class_keys(version: tuple[int, int]) -> tuple[str, ...]:
    """The os-quota-class-sets keys at ``version``, in Nova's order: 2.1's
    without the server group ones; from 2.50 those and no network ones; from
    2.57 no personality ones either."""
    keys = [k for k in QUOTA_KEYS if k not in GROUP_QUOTAS]
    if version >= microversion.QUOTA_CLASS_GROUPS.key:
        keys = [k for k in QUOTA_KEYS if k not in NETWORK_QUOTAS]
    if version >= microversion.PERSONALITY_GONE.key:
        keys = [k for k in keys if k not in PERSONALITY_QUOTAS]
    return tuple(keys)


@functools.lru_cache(maxsize=None)
def quota_class_update(version: tuple[int, int]) -> Schema:
    """``PUT /os-quota-class-sets/{id}`` at ``version``: the keys it shows."""
    return envelope("quota_class_set", strict(
        {key: QUOTA_VALUE for key in quota_class_keys(version)}))



# -- os-services --------------------------------------------------------------------
SERVICE_UPDATE: Schema = strict({
    "host": HOSTNAME, "binary": {"type": "string"},
    "disabled_reason": {"type": "string", "minLength": 1, "maxLength": 255},
}, required=["host", "binary"])
"""``PUT /os-services/{enable,disable,disable-log-reason}`` at 2.1."""

SERVICE_UPDATE_V2_11: Schema = strict({
    **SERVICE_UPDATE["properties"], "forced_down": BOOLEAN,
}, required=["host", "binary"])
"""``PUT /os-services/{action}`` from 2.11: ``forced_down`` too (for ``force-down``)."""


# -- aggregates (2.81) ---------------------------------------------------------------

AGGREGATE_IMAGES_V2_81: Schema = strict({
    "cache": {"type": "array", "minItems": 1,
              "items": strict({"id": UUID}, required=["id"])},
}, required=["cache"])
"""``POST /os-aggregates/{id}/images``: the images to pre-cache, by id."""
