"""Microversion 2.53: services and hypervisors named by UUID.

From 2.53 ``os-services`` shows each service's UUID as its ``id``, and one
``PUT /os-services/{service_uuid}`` (``status``, ``disabled_reason``,
``forced_down``) replaces the enable, disable, disable-log-reason and
force-down routes: a name that is not a UUID there is 400, as in Nova.
Hypervisors show their UUID as ``id`` (and their service's as
``service.id``), are looked up by it, and their lists take
``hypervisor_hostname_pattern`` and ``with_servers``.

The UUIDs are :func:`novad.compute.hosts.service_uuid` and
``hypervisor_uuid``: derived from the host's name, so every node gives a
host the same ones, across restarts, without a stored column.

``DELETE /os-services/{id}`` exists at every version (an integer id below
2.53, a UUID from it).  A novad service is a cluster member's, there for as
long as membership knows the node, so deleting a known one is 409 rather
than a delete that the member's next heartbeat would undo.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from typing import Any

from multidict import MultiMapping

from novad.api.compute.paging import check_query
from novad.api.compute.schemas import BOOLEAN, Schema, strict
from novad.compute.hosts import ComputeHost
from novad.errors import Conflict, Invalid, NotFound
from novad.store.models import Instance
from novad.strutils import parse_bool

SERVICE_UPDATE_V2_53: Schema = strict({
    "status": {"type": "string", "enum": ["enabled", "disabled"]},
    "disabled_reason": {"type": "string", "minLength": 1, "maxLength": 255},
    "forced_down": BOOLEAN,
})
"""``PUT /os-services/{service_uuid}`` (2.53); nothing is required, but
something must change."""

HYPERVISOR_LIST_PARAMS = ("limit", "marker", "hypervisor_hostname_pattern", "with_servers")
"""What the hypervisor lists take from 2.53 (and nothing else)."""


def check_uuid(ident: str) -> None:
    """400 in Nova's words unless ``ident`` is a UUID."""
    try:
        uuid.UUID(ident)
    except ValueError:
        raise Invalid(f"Invalid uuid {ident}") from None


def service_by_uuid(hosts: Sequence[ComputeHost], ident: str) -> ComputeHost:
    """The host whose nova-compute has UUID ``ident``; 400 for a malformed
    one, 404 for an unknown one."""
    check_uuid(ident)
    for host in hosts:
        if host.service_uuid == ident.lower():
            return host
    raise NotFound(f"Service {ident} could not be found.")


def service_by_id(hosts: Sequence[ComputeHost], ident: str, by_uuid: bool) -> ComputeHost:
    """The host a DELETE names: by UUID from 2.53, by integer id before."""
    if by_uuid:
        check_uuid(ident)
    elif not ident.isdigit():
        raise Invalid("Invalid input received: id must be an integer.")
    for host in hosts:
        if (host.service_uuid == ident.lower()) if by_uuid else (str(host.id) == ident):
            return host
    raise NotFound(f"Service {ident} not found.")


def refuse_delete(host: ComputeHost, hosted: Collection[Instance]) -> None:
    """DELETE of a known service: Nova's 409 while it hosts instances, and
    novad's 409 otherwise (membership, not a record, makes a service)."""
    if hosted:
        raise Conflict("Unable to delete compute service that is hosting instances. "
                       "Migrate or delete the instances first.")
    raise Conflict(f"Unable to delete compute service of {host.name}: it belongs to a "
                   "cluster member and goes when membership forgets the node.")


def service_changes(body: dict[str, Any]) -> tuple[tuple[bool, str | None] | None,
                                                    bool | None]:
    """What a schema-valid 2.53 body changes: ``(disabled, reason)`` or None,
    and ``forced_down`` or None; 400 as Nova for an enable with a reason or
    a body that changes nothing."""
    status: tuple[bool, str | None] | None = None
    if "status" in body:
        if body["status"] == "enabled":
            if body.get("disabled_reason"):
                raise Invalid("Specifying 'disabled_reason' with status 'enabled' is invalid.")
            status = (False, None)
        else:
            status = (True, body.get("disabled_reason"))
    forced = parse_bool(body["forced_down"]) if "forced_down" in body else None
    if status is None and forced is None:
        raise Invalid("No updates were requested. Fields 'status' or 'forced_down' should be "
                      "specified.")
    return status, forced


def hypervisor_query(query: MultiMapping[str]) -> tuple[str | None, bool]:
    """A 2.53 hypervisor list's ``hypervisor_hostname_pattern`` and
    ``with_servers``: no other parameter, and no paging with a pattern."""
    check_query(query, HYPERVISOR_LIST_PARAMS)
    pattern = query.get("hypervisor_hostname_pattern")
    if pattern is not None and ("limit" in query or "marker" in query):
        raise Invalid("Paging over hypervisors with the hypervisor_hostname_pattern query "
                      "parameter is not supported.")
    return pattern, with_servers(query)


def with_servers(query: MultiMapping[str]) -> bool:
    """The ``with_servers`` flag (a strict boolean; absent: false)."""
    raw = query.get("with_servers")
    if raw is None:
        return False
    value = parse_bool(raw)
    if value is None:
        raise Invalid(f"Invalid input for query parameters with_servers. Value: {raw}. "
                      f"'{raw}' is not one of the accepted boolean values")
    return value


def matching(found: Sequence[tuple[ComputeHost, Any]], pattern: str | None
             ) -> list[tuple[ComputeHost, Any]]:
    """The hypervisors whose hostname contains ``pattern`` (Nova's search is
    a SQL ``LIKE %pattern%``); 404 when a pattern matches none."""
    if pattern is None:
        return list(found)
    hits = [(h, r) for h, r in found if pattern.lower() in str(r.hypervisor_hostname).lower()]
    if not hits:
        raise NotFound(f"No hypervisor matching '{pattern}' could be found.")
    return hits


def servers_view(hosted: Sequence[Instance], name: Any) -> list[dict[str, str]]:
    """A hypervisor's ``servers`` (``with_servers``): each guest's
    hypervisor name and UUID, as Nova lists them."""
    return [{"name": str(name(inst)), "uuid": inst.uuid} for inst in hosted]
