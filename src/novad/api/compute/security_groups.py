"""``os-security-groups`` and ``os-security-group-rules``: Nova's proxies to the
network service's security groups, as Nova answers them when that service has
none.

novad runs no network service and its guests have no network interfaces, so
there is nothing a group could filter (libvirt's nwfilter attaches to an
interface).  The answers are therefore those of a cloud without security
groups: the list is empty, every group or rule id is unknown (404), and a new
group cannot be made (400).  Below 2.36 only: from 2.36 Nova removed these
proxies (404).  The server side (create's ``security_groups``, the add/remove
actions) is in :mod:`~novad.api.compute.servers` and
:mod:`~novad.api.compute.actions`.
"""

from __future__ import annotations

from aiohttp import web

from novad.api import microversion
from novad.api.common import Route, context, json_response
from novad.api.compute.parsing import read_single_key
from novad.errors import Invalid, NotFound

NO_SECURITY_GROUPS = ("Security groups are not available: this node runs no network "
                      "service.")


def _served(request: web.Request) -> None:
    """Authenticated, and below 2.36 (404 from it, as Nova)."""
    context(request)
    if microversion.at_least(request, microversion.PROXY_APIS_GONE):
        raise NotFound("The resource could not be found.")


async def list_groups(request: web.Request) -> web.StreamResponse:
    """The project's security groups: none."""
    _served(request)
    return json_response({"security_groups": []})


async def show_group(request: web.Request) -> web.StreamResponse:
    """Show, update or delete a security group: no group exists (404)."""
    _served(request)
    raise NotFound(f"Security group {request.match_info['group_id']} not found.")


async def create_group(request: web.Request) -> web.StreamResponse:
    """Create a security group: there is no service to create it in (400)."""
    _served(request)
    await read_single_key(request, 1 << 16)
    raise Invalid(NO_SECURITY_GROUPS)


async def create_rule(request: web.Request) -> web.StreamResponse:
    """Add a rule: its parent group does not exist (404, as Nova's look-up)."""
    _served(request)
    key, rule = await read_single_key(request, 1 << 16)
    parent = rule.get("parent_group_id") if key == "security_group_rule" \
        and isinstance(rule, dict) else None
    if parent is None:
        raise Invalid("Bad parent_group_id.")
    raise NotFound(f"Security group {parent} not found.")


async def delete_rule(request: web.Request) -> web.StreamResponse:
    """Delete a rule: no rule exists (404)."""
    _served(request)
    raise NotFound(f"Rule ({request.match_info['rule_id']}) not found.")


def routes() -> list[Route]:
    """The security-group proxy routes, relative to a versioned mount."""
    tag, one = "security groups (none)", "/os-security-groups/{group_id}"
    return [
        Route("GET", "/os-security-groups", list_groups, tag=tag,
              summary="List security groups (always none; 404 from 2.36)"),
        Route("POST", "/os-security-groups", create_group, tag=tag,
              summary="Create a security group (400: no network service)"),
        Route("GET", one, show_group, tag=tag, summary="Show a security group (404)"),
        Route("PUT", one, show_group, tag=tag, summary="Update a security group (404)"),
        Route("DELETE", one, show_group, tag=tag, summary="Delete a security group (404)"),
        Route("POST", "/os-security-group-rules", create_rule, tag=tag,
              summary="Add a security group rule (404: no such group)"),
        Route("DELETE", "/os-security-group-rules/{rule_id}", delete_rule, tag=tag,
              summary="Delete a security group rule (404)"),
    ]
