"""``POST /servers/{id}/action``: one key names the action.

The key → action-table row mapping is derived from
:data:`novad.states.table.ACTIONS` (each row's ``api_name``), so a new row
becomes reachable here once its argument schema exists in
:mod:`~novad.api.compute.schemas`.  ``reboot`` picks ``reboot_soft`` or
``reboot_hard`` by its ``type``; the two console actions are not table rows
(they change no state) and call the compute service directly, and the two
security-group actions are answered here (see :func:`security_group_missing`).
"""

from __future__ import annotations

import functools
import ipaddress

from collections.abc import Callable
from typing import Any

from aiohttp import web

from novad.api import microversion
from novad.api.common import Route, context, json_response, validate
from novad.api.compute import schemas
from novad.api.compute.parsing import (access_ips, check_user_data, personality_files,
                                       read_single_key, to_bool, to_int)
from novad.api.compute.protocols import NodeInfo
from novad.api.compute.views import Links, server_changed
from novad.compute.hosts import zones
from novad.compute.interface import ActionResult, ComputeAPI
from novad.config import Config
from novad.context import RequestContext
from novad.errors import Forbidden, Invalid, NoSuchAction, NotFound, NovadError
from novad.states.table import ACTIONS, BY_NAME

_NOT_ACTIONS = frozenset({"create", "delete", "reboot"})
"""api_names that are not ``/action`` keys (or need the special case below)."""


def _dispatch() -> dict[str, str]:
    table = {spec.api_name: spec.name for spec in ACTIONS
             if spec.api_name and not spec.internal and spec.api_name not in _NOT_ACTIONS}
    table["reboot"] = "reboot_soft"  # the row is chosen by the body's type
    return table


DISPATCH: dict[str, str] = _dispatch()
"""Action key → action-table row name."""

CONSOLE_ACTIONS = frozenset({"os-getConsoleOutput", "os-getVNCConsole"})

SECURITY_GROUP_ACTIONS = frozenset({"addSecurityGroup", "removeSecurityGroup"})
"""Nova's os-security-groups server actions, answered as Nova answers them when
the network service has no security groups (novad runs none)."""

NETWORK_ACTIONS = frozenset({"addFixedIp", "removeFixedIp", "addFloatingIp",
                             "removeFloatingIp"})
"""nova-network's and Neutron's address actions: 404 from 2.44.  novad runs no
network service, so below 2.44 each is answered as Nova answers for a server
with no addresses or a network, address or floating IP that does not exist."""

MIN_VERSIONS: dict[str, microversion.Microversion] = {
    "trigger_crash_dump": microversion.TRIGGER_CRASH_DUMP}
"""Action keys that exist only from a microversion on (404 below it, as Nova)."""

REMOVED_AT: dict[str, microversion.Microversion] = {
    "os-getVNCConsole": microversion.REMOTE_CONSOLES,
    **{key: microversion.NETWORK_ACTIONS_GONE for key in NETWORK_ACTIONS}}
"""Action keys that are gone from a microversion on (404 from it, as Nova)."""

ARGUMENTS_FROM: tuple[microversion.Microversion, ...] = (
    microversion.HOSTNAME_FQDN, microversion.UNSHELVE_HOST, microversion.HOSTNAME,
    microversion.UNSHELVE_AZ, microversion.LOCK_REASON, microversion.FORCE_GONE,
    microversion.TRUSTED_CERTS, microversion.PERSONALITY_GONE, microversion.MIGRATE_HOST,
    microversion.REBUILD_KEY_NAME, microversion.LIVE_MIGRATE_FORCE, microversion.EVACUATE_FORCE,
    microversion.LIVE_MIGRATE_AUTO, microversion.SERVER_DESCRIPTION,
    microversion.EVACUATE_NO_SHARED_STORAGE)
"""Versions that changed some action's arguments (newest first; their
schemas are :mod:`~novad.api.compute.schemas`' ``ACTION_ARGUMENTS_V2_<minor>``
and ``ACTION_PROPERTIES_V2_<minor>``)."""

_REVISED = {microversion.HOSTNAME_FQDN: schemas.ACTION_PROPERTIES_V2_94,
            microversion.UNSHELVE_HOST: schemas.ACTION_ARGUMENTS_V2_91,
            microversion.HOSTNAME: schemas.ACTION_PROPERTIES_V2_90,
            microversion.UNSHELVE_AZ: schemas.ACTION_ARGUMENTS_V2_77,
            microversion.LOCK_REASON: schemas.ACTION_ARGUMENTS_V2_73,
            microversion.FORCE_GONE: schemas.ACTION_ARGUMENTS_V2_68,
            microversion.TRUSTED_CERTS: schemas.ACTION_PROPERTIES_V2_63,
            microversion.PERSONALITY_GONE: schemas.ACTION_ARGUMENTS_V2_57,
            microversion.MIGRATE_HOST: schemas.ACTION_ARGUMENTS_V2_56,
            microversion.REBUILD_KEY_NAME: schemas.ACTION_ARGUMENTS_V2_54,
            microversion.LIVE_MIGRATE_FORCE: schemas.ACTION_ARGUMENTS_V2_30,
            microversion.EVACUATE_FORCE: schemas.ACTION_ARGUMENTS_V2_29,
            microversion.LIVE_MIGRATE_AUTO: schemas.ACTION_ARGUMENTS_V2_25,
            microversion.SERVER_DESCRIPTION: schemas.ACTION_ARGUMENTS_V2_19,
            microversion.EVACUATE_NO_SHARED_STORAGE: schemas.ACTION_ARGUMENTS_V2_14}

ParamBuilder = Callable[[Any], dict[str, Any]]


def _rebuild(a: Any) -> dict[str, Any]:
    params = {"image_id": a["imageRef"], "name": a.get("name"),
              "admin_pass": a.get("adminPass"), "metadata": a.get("metadata")}
    if "description" in a:  # 2.19; null clears it
        params["description"] = a["description"]
    if "trusted_image_certificates" in a:  # 2.63; null clears them
        params["trusted_certs"] = a["trusted_image_certificates"]
    if "hostname" in a:  # 2.90
        params["hostname"] = a["hostname"]
    if "OS-DCF:diskConfig" in a:
        params["disk_config"] = a["OS-DCF:diskConfig"]
    if "key_name" in a:  # 2.54; null removes the key pair
        params["key_name"] = a["key_name"]
    if "user_data" in a:  # 2.57; null removes it
        if a["user_data"] is not None:
            check_user_data(a["user_data"])
        params["user_data"] = a["user_data"]
    # Below 2.57; a rebuild without personality leaves the server no files,
    # as Nova passes only the rebuild's own to the guest.
    params["files"] = personality_files(a.get("personality") or [])
    return {**params, **access_ips(a)}


def _live_migrate(a: Any) -> dict[str, Any]:
    # 2.25's "auto" lets Nova pick block migration unless the instance's
    # storage is shared; novad's instance disks are local to their node, so
    # auto always means a block migration.
    block = a["block_migration"]
    return {"host": a["host"], "block_migration": True if block == "auto" else to_bool(block)}


def _unshelve(a: Any) -> dict[str, Any]:
    # 2.77's zone and 2.91's host; a null zone (2.91) unpins the server.
    a = a or {}
    params: dict[str, Any] = {}
    if "availability_zone" in a:
        params["availability_zone"] = a["availability_zone"]
    if a.get("host"):
        params["host"] = a["host"]
    return params


PARAMS: dict[str, ParamBuilder] = {
    "resize": lambda a: {"flavor_id": str(a["flavorRef"]),
                         **({"disk_config": a["OS-DCF:diskConfig"]}
                            if "OS-DCF:diskConfig" in a else {})},
    "createImage": lambda a: {"name": a["name"], "metadata": a.get("metadata") or {}},
    "createBackup": lambda a: {"name": a["name"], "backup_type": a["backup_type"],
                               "rotation": to_int(a["rotation"]),
                               "metadata": a.get("metadata") or {}},
    "rebuild": _rebuild,
    "os-resetState": lambda a: {"state": a["state"]},
    "changePassword": lambda a: {"admin_pass": a["adminPass"]},
    "lock": lambda a: {"reason": (a or {}).get("locked_reason")},  # 2.73
    "rescue": lambda a: {"admin_pass": (a or {}).get("adminPass"),
                         "rescue_image_ref": (a or {}).get("rescue_image_ref")},
    "evacuate": lambda a: {"host": a.get("host"), "admin_pass": a.get("adminPass")},
    "os-migrateLive": _live_migrate,
    # 2.56's host is checked by the scheduler, never forced
    "migrate": lambda a: {"host": (a or {}).get("host"), "force": False},
    "unshelve": _unshelve,
}
"""How each action's validated argument becomes ``compute.act`` parameters."""


@functools.cache
def known_actions() -> frozenset[str]:
    """Every key ``POST /servers/{id}/action`` accepts at some microversion
    (a table row without an argument schema is not offered)."""
    return (frozenset(DISPATCH) | CONSOLE_ACTIONS | SECURITY_GROUP_ACTIONS
            | NETWORK_ACTIONS) \
        & frozenset(schemas.ACTION_ARGUMENTS)


def security_group_missing(ctx: RequestContext, name: str) -> NotFound:
    """What Nova's add/removeSecurityGroup raise when the network service does
    not know the group: with no security groups in the network service (and
    no ports on the server, as every novad server), every name, ``default``
    included, is unknown.  Nova's message and its 404."""
    return NotFound(f"Security group {name} is not found for project {ctx.project_id}")


def row_for(key: str, argument: Any) -> str:
    """The action-table row a (validated) action key and argument run."""
    if key == "reboot":
        return "reboot_hard" if argument["type"].upper() == "HARD" else "reboot_soft"
    return DISPATCH[key]


def check_key(request: web.Request, key: str, argument: Any) -> None:
    """Unknown key → 400; too new or too old for the request's microversion
    → 404; argument not matching its schema → 400."""
    if key not in known_actions():
        raise NoSuchAction(key)
    minimum, removed = MIN_VERSIONS.get(key), REMOVED_AT.get(key)
    if (minimum is not None and not microversion.at_least(request, minimum)) or \
            (removed is not None and microversion.at_least(request, removed)):
        raise NotFound("The resource could not be found.")
    validate({key: argument}, schemas.action_schema(key, revision_for(request, key)))


def revision_for(request: web.Request, key: str) -> int:
    """The minor version whose arguments of ``key`` apply to the request
    (0: the 2.1 arguments)."""
    for version in ARGUMENTS_FROM:
        if key in _REVISED[version] and microversion.at_least(request, version):
            return version.key[1]
    return 0


FORCE_FROM: dict[str, microversion.Microversion] = {
    "evacuate": microversion.EVACUATE_FORCE, "os-migrateLive": microversion.LIVE_MIGRATE_FORCE}
"""Moves whose named host the scheduler checks from a version on, unless forced."""


def _forced(request: web.Request, key: str, argument: Any) -> bool:
    """Whether a move's named host skips the scheduler's checks: always below
    the version that added ``force`` (Nova's old behaviour), else only with
    ``force: true``, which needs a host (400 otherwise, as Nova)."""
    host = (argument or {}).get("host")
    if not microversion.at_least(request, FORCE_FROM[key]):
        return bool(host)
    if microversion.at_least(request, microversion.FORCE_GONE):
        return False  # 2.68: a named host is always checked by the scheduler
    force = bool((argument or {}).get("force", False))
    if force and not host:
        raise Invalid("Can't force to a non-provided destination")
    return force


def network_action_error(server_id: str, key: str, argument: dict[str, Any]) -> NovadError:
    """What a network action gets where no network service runs."""
    for name in ("address", "fixed_address"):
        if name in argument:
            try:
                ipaddress.ip_address(argument[name])
            except ValueError:
                return Invalid(f"Invalid input for field/attribute {name}. Value: "
                               f"{argument[name]}. '{argument[name]}' is not a 'ip-address'")
    if key == "addFixedIp":
        return Invalid(f"Network {argument['networkId']} could not be found.")
    if key == "removeFixedIp":
        return Invalid(f"Instance {server_id} doesn't have fixed IP '{argument['address']}'.")
    if key == "addFloatingIp":
        return Invalid("No fixed IPs associated to instance")
    return NotFound("floating IP not found")


class ActionHandlers:
    """The server-action endpoint."""

    def __init__(self, compute: ComputeAPI, config: Config,
                 node: NodeInfo | None = None) -> None:
        self.compute = compute
        self.config = config
        self.node = node
        self.max_body = config.DEFAULT.max_request_body_size

    async def action(self, request: web.Request) -> web.StreamResponse:
        """Run one server action named by the body's only key."""
        ctx = context(request)
        server_id = request.match_info["server_id"]
        key, argument = await read_single_key(request, self.max_body)
        check_key(request, key, argument)
        if key in CONSOLE_ACTIONS:
            return await self._console(ctx, server_id, key, argument)
        if key in SECURITY_GROUP_ACTIONS:
            return await self._security_group(ctx, server_id, argument["name"])
        if key in NETWORK_ACTIONS:
            await self.compute.get(ctx, server_id)  # another project's server stays 404
            raise network_action_error(server_id, key, argument)
        row = row_for(key, argument)
        params = PARAMS.get(key, lambda a: {})(argument)
        if key in FORCE_FROM:
            params["force"] = _forced(request, key, argument)
        if key == "os-migrateLive" and not microversion.at_least(
                request, microversion.ASYNC_LIVE_MIGRATE_CHECKS):
            params["check_destination"] = True  # 400 before the 202 when no node fits
        if key == "unshelve" and params:
            await self._check_unshelve(ctx, params)
        if key == "evacuate" and microversion.at_least(request, microversion.EVACUATE_STOPPED):
            params["target_state"] = "stopped"  # Nova's API asks for a stopped server at 2.95
        result = await self.compute.act(ctx, server_id, row, params)
        return await self._respond(request, ctx, server_id, key, row, result)

    async def _check_unshelve(self, ctx: RequestContext, params: dict[str, Any]) -> None:
        """Nova's checks of an unshelve's zone (2.77) and host (2.91, admins):
        each must be one of the cluster's, and the host in the zone."""
        zone, host = params.get("availability_zone"), params.get("host")
        if host is not None and not ctx.is_admin:
            raise Forbidden("Policy doesn't allow os_compute_api:os-shelve:unshelve_to_host "
                            "to be performed.")
        hosts = [] if self.node is None else await self.node.hosts.list_hosts()
        if zone is not None and zone not in {z.name for z in zones(hosts)}:
            raise Invalid("The requested availability zone is not available")
        if host is None:
            return
        named = [h for h in hosts if h.name == host]
        if not named:
            raise Invalid(f"Compute host {host} could not be found.")
        if zone is not None and named[0].zone != zone:
            raise Invalid(f"Host {host} is not in the availability zone {zone}.")

    async def _console(self, ctx: RequestContext, server_id: str, key: str,
                       argument: dict[str, Any]) -> web.StreamResponse:
        if key == "os-getConsoleOutput":
            length = argument.get("length")
            output = await self.compute.console_output(
                ctx, server_id, None if length is None else to_int(length))
            return json_response({"output": output})
        url = await self.compute.console_url(ctx, server_id, "vnc", argument["type"])
        return json_response({"console": {"type": argument["type"], "url": url}})

    async def _security_group(self, ctx: RequestContext, server_id: str,
                              name: str) -> web.StreamResponse:
        """Nova's order: the server (404), the policy (members; readers 403),
        the name (400 when blank), then the group (404: there is none)."""
        await self.compute.get(ctx, server_id)
        if not ctx.can_write:
            raise Forbidden()
        if not name.strip():
            raise Invalid("Security group name cannot be empty")
        raise security_group_missing(ctx, name)

    def _password_body(self, result: ActionResult) -> dict[str, Any]:
        if not self.config.api.enable_instance_password:
            return {}
        return {"adminPass": result.admin_pass}

    async def _respond(self, request: web.Request, ctx: RequestContext, server_id: str,
                       key: str, row: str, result: ActionResult) -> web.StreamResponse:
        """Nova's per-action response: most are an empty 202."""
        if key == "evacuate" and microversion.at_least(
                request, microversion.EVACUATE_NO_SHARED_STORAGE):
            return web.Response(status=200)  # no adminPass from 2.14, as Nova
        if key in ("rescue", "evacuate"):
            return json_response(self._password_body(result), status=200)
        if key == "rebuild":
            inst = result.instance or await self.compute.get(ctx, server_id)
            groups = None
            if microversion.at_least(request, microversion.SERVER_GROUPS_IN_SERVER):
                groups = await self.compute.server_groups_of(ctx, inst)
            links = Links.of(request, self.config)
            server = server_changed(inst, links, ctx, version=microversion.of(request),
                                    rebuild=True, server_groups=groups)
            server.update(self._password_body(result))
            # Nova's rebuild adds the server's Location, as create does.
            return json_response({"server": server}, status=202,
                                 headers={"Location": links.self_href("servers", inst.uuid)})
        if key in ("createImage", "createBackup") and result.image_id:
            if microversion.at_least(request, microversion.IMAGE_ID_IN_BODY):
                return json_response({"image_id": result.image_id}, status=202)
            location = Links.of(request, self.config).image_location(result.image_id)
            return web.Response(status=202, headers={"Location": location})
        return web.Response(status=BY_NAME[row].success_code)

    def routes(self) -> list[Route]:
        """The action route, relative to a versioned mount."""
        return [Route("POST", "/servers/{server_id}/action", self.action,
                      schema=schemas.SERVER_ACTION, tag="server actions",
                      responses={200: "Done (rescue, evacuate, consoles)",
                                 202: "Accepted", 204: "Done (confirmResize)"})]
