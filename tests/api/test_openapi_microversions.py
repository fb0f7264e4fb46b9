"""``GET /openapi.json``: each compute operation names the microversions that
change it (``x-microversions``), from :attr:`Microversion.affects`.

The application here carries every optional compute route group (quotas,
usage, migrations, server groups, the image look-ups, console tokens), so
that every operation a version names is documented; the services behind
them are stand-ins that fail if called, and no request here reaches one.
"""

from __future__ import annotations

import fnmatch
import re
from typing import Any, cast

import pytest
from aiohttp.test_utils import TestClient
from api_helpers import StaticNode, UnreachableCompute, identity_probe

from novad.api import microversion
from novad.api.common import Route
from novad.api.compute import ImageLookup
from novad.api.compute import routes as compute_routes
from novad.api.compute.consoles import ConsoleTokenLookup
from novad.compute.flavors import FlavorService
from novad.compute.interface import ComputeAPI
from novad.compute.keypairs import KeypairService
from novad.compute.quotas import Quotas
from novad.compute.server_groups import ServerGroupService
from novad.config import Config
from novad.store import Store

Client = TestClient[Any, Any]

MOUNTS = ("/compute/v2.1", "/v2.1", "/compute/v2.1/{project_id}", "/v2.1/{project_id}")
"""Where every (non-public) compute operation is documented."""

_ROOT = re.compile(r"^/(?:compute/)?v2\.1(?:/\{project_id\})?(?=/|$)")

_PATTERN = re.compile(r"^(\*|GET|POST|PUT|DELETE) (\*|/\S*)$")
"""What an ``affects`` item looks like: a method (or ``*``) and a path (or ``*``)."""

Operations = dict[tuple[str, str], list[str]]
"""(method, path relative to the versioned root) -> the versions it lists."""


@pytest.fixture
def app_routes(config: Config, store: Store, node: StaticNode) -> list[Route]:
    """Every compute route group, and one identity route."""
    unreachable = UnreachableCompute()
    return [Route("GET", "/identity/v3/probe", identity_probe),
            *compute_routes(cast(ComputeAPI, unreachable), config,
                            cast(ImageLookup, unreachable), node,
                            flavors=FlavorService(store), keypairs=KeypairService(store),
                            consoles=cast(ConsoleTokenLookup, unreachable),
                            quotas=Quotas(store, config.quota), usage=store, migrations=store,
                            server_groups=ServerGroupService(store))]


async def document(client: Client) -> dict[str, Any]:
    resp = await client.get("/openapi.json")
    assert resp.status == 200
    body: dict[str, Any] = await resp.json()
    return body


def listed(op: dict[str, Any]) -> list[str]:
    return [row["version"] for row in op.get("x-microversions", [])]


async def compute_operations(client: Client) -> Operations:
    """The compute operations of /openapi.json, by their path relative to
    the versioned root; checks every mount lists the same versions."""
    found: Operations = {}
    for path, item in (await document(client))["paths"].items():
        root = _ROOT.match(path)
        if root is None:
            continue
        for method, op in item.items():
            key = (method.upper(), path[root.end():] or "/")
            versions = listed(op)
            assert found.setdefault(key, versions) == versions, (method, path)
    return found


def matches(pattern: str, operation: tuple[str, str]) -> bool:
    return fnmatch.fnmatchcase(" ".join(operation), pattern)


async def test_every_affected_operation_exists(client: Client) -> None:
    operations = await compute_operations(client)
    for version in microversion.HISTORY:
        for pattern in version.affects:
            assert _PATTERN.match(pattern), (version.text, pattern)
            assert any(matches(pattern, op) for op in operations), (version.text, pattern)


def test_every_version_but_the_base_names_what_it_changes() -> None:
    assert microversion.BASE.affects == ()
    for version in microversion.HISTORY[1:]:
        assert version.affects, version.text


async def test_each_operation_lists_exactly_the_versions_that_name_it(client: Client) -> None:
    operations = await compute_operations(client)
    for op, versions in operations.items():
        assert versions == [v.text for v in microversion.HISTORY
                            if any(matches(p, op) for p in v.affects)], op
    touched = {v for versions in operations.values() for v in versions}
    assert touched == {v.text for v in microversion.HISTORY[1:]}


async def test_versions_show_on_each_mount_with_their_meaning(client: Client) -> None:
    paths = (await document(client))["paths"]
    for mount in MOUNTS:
        show = paths[f"{mount}/servers/{{server_id}}"]["get"]
        rows = {row["version"]: row["changes"] for row in show["x-microversions"]}
        for version in (microversion.LOCKED, microversion.SERVER_DESCRIPTION,
                        microversion.SERVER_TAGS, microversion.EMBEDDED_FLAVOR,
                        microversion.LOCK_REASON, microversion.PINNED_AZ):
            assert rows[version.text] == version.meaning, (mount, version.text)
        consoles = paths[f"{mount}/servers/{{server_id}}/remote-consoles"]["post"]
        assert microversion.REMOTE_CONSOLES.text in listed(consoles)
        keypairs = listed(paths[f"{mount}/os-keypairs"]["get"])
        assert {microversion.KEYPAIR_TYPE.text, microversion.KEYPAIR_PAGES.text} <= set(keypairs)


async def test_added_and_removed_routes_show_the_version(client: Client) -> None:
    operations = await compute_operations(client)
    for op, version in ((("POST", "/servers/{server_id}/remote-consoles"),
                         microversion.REMOTE_CONSOLES),
                        (("GET", "/servers/{server_id}/tags"), microversion.SERVER_TAGS),
                        (("PUT", "/flavors/{flavor_id}"), microversion.FLAVOR_DESCRIPTION),
                        (("GET", "/os-networks"), microversion.PROXY_APIS_GONE),
                        (("GET", "/images/{image_id}"), microversion.PROXY_APIS_GONE),
                        (("DELETE", "/images/{image_id}"), microversion.PROXY_APIS_GONE),
                        (("PUT", "/images/{image_id}/metadata/{key}"),
                         microversion.IMAGE_METADATA_PROXY_GONE),
                        (("GET", "/os-hosts"), microversion.OS_HOSTS_GONE),
                        (("GET", "/os-hypervisors/statistics"), microversion.HYPERVISOR_SLIM)):
        assert version.text in operations[op], op


async def test_untouched_operations_list_only_the_every_request_versions(
        client: Client) -> None:
    every = [v.text for v in microversion.HISTORY if "* *" in v.affects]
    assert every == [microversion.OPTIONAL_PROJECT_ID.text,
                     microversion.NEW_VERSION_HEADER.text,
                     microversion.REQUEST_ID_HEADER.text]
    operations = await compute_operations(client)
    assert operations[("GET", "/servers/{server_id}/ips")] == every
    assert operations[("DELETE", "/servers/{server_id}")] == every


async def test_operations_outside_the_compute_mounts_get_no_key(client: Client) -> None:
    paths = (await document(client))["paths"]
    for path in ("/openapi.json", "/compute", "/identity/v3/probe"):
        assert "x-microversions" not in paths[path]["get"], path


def test_affects_leaves_equality_and_hashing_to_the_number_and_meaning() -> None:
    base = microversion.BASE
    copy = microversion.Microversion(base.text, base.meaning, affects=("* *",))
    assert copy == base and hash(copy) == hash(base)
    assert microversion.LOCKED.key == (2, 9)
