"""Shared helpers of the API tests: test callers, their tokens, and stand-ins."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from novad.api.common import json_response
from novad.cluster.members import Member
from novad.compute.hosts import Hosts
from novad.compute.service_record import ServiceRecord
from novad.context import RequestContext
from novad.drivers.base import HostResources
from novad.errors import DriverError, NotAuthenticated, NovadError
from novad.store import Store

ADMIN = RequestContext(user_id="admin-user", project_id="admin-project",
                       roles=frozenset({"admin", "member", "reader"}))
MEMBER = RequestContext(user_id="member-user", project_id="project-a",
                        roles=frozenset({"member", "reader"}))
OTHER = RequestContext(user_id="other-user", project_id="project-b",
                       roles=frozenset({"member", "reader"}))

TOKENS = {"admin-token": ADMIN, "member-token": MEMBER, "other-token": OTHER}


def headers(token: str = "member-token", **extra: str) -> dict[str, str]:
    """Request headers with a token."""
    return {"X-Auth-Token": token, **extra}


class UnreachableCompute:
    """Any use of the compute service fails the test loudly."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the compute service was reached ({name}); this test must be "
                             "answered before it")


@dataclass
class StaticNode:
    """This node as /limits sees it, and the cluster as /os-services,
    /os-hypervisors and /os-availability-zone see it: ``members`` stands in
    for membership (at ``clock`` on its clock), ``store`` holds the
    service records."""

    host: str = "node-1"
    used: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    service: ServiceRecord | None = None
    store: Store | None = None
    members: list[Member] = field(default_factory=list)
    clock: float = 1000.0
    libvirt_down: bool = False

    @property
    def hosts(self) -> Hosts:
        assert self.store is not None, "this StaticNode has no store to list hosts from"
        return Hosts(self.store, self.host, "nova", self.resources, self.service,
                     lambda: self.members, lambda: self.clock)

    async def usage(self, project_id: str) -> tuple[int, int, int]:
        return self.used.get(project_id, (0, 0, 0))

    async def resources(self) -> HostResources:
        if self.libvirt_down:
            raise DriverError("libvirt is unreachable")
        return HostResources(hypervisor_type="QEMU", hypervisor_hostname=self.host, vcpus=8,
                             vcpus_used=2, memory_mb=16384, memory_mb_used=2048, local_gb=100,
                             local_gb_used=10, running_vms=1)


async def validate_token(token: str) -> RequestContext:
    """The test tokens; anything else is 401."""
    try:
        return TOKENS[token]
    except KeyError:
        raise NotAuthenticated("The request you have made requires authentication.") from None


async def boom(request: web.Request) -> web.StreamResponse:
    """A handler with a bug in it."""
    raise KeyError("secret-internal-detail")


def identity_shaped(request: web.Request, exc: NovadError) -> dict[str, Any]:
    """A stand-in for the lead's error-body chooser (Keystone's shape under /identity)."""
    if request.path.startswith("/identity"):
        return {"error": {"code": exc.status, "message": exc.message, "title": "Error"}}
    return exc.body()


async def identity_probe(request: web.Request) -> web.StreamResponse:
    """A protected identity route, for the error-body test."""
    return json_response({})


async def error_of(resp: Any) -> tuple[int, str, str]:
    """(status, body key, message) of a Nova error response; checks its shape."""
    body = await resp.json()
    assert resp.content_type == "application/json"
    assert len(body) == 1, body
    key, value = next(iter(body.items()))
    assert value["code"] == resp.status
    return resp.status, key, value["message"]
