"""From 2.76 on, through a real daemon and the unmodified ``openstack`` CLI
(which negotiates our maximum, 2.84 for instance actions): a failed event's
``details`` (2.84) in ``server event show``, key pairs made at the new
maximum (2.92: the CLI generates the pair itself and imports its public
key), and the 2.89/2.90 difference of one request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from e2e_helpers import OPENSTACK, Daemon, wait_settled

pytestmark = [
    pytest.mark.cli,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.skipif(not OPENSTACK.exists(), reason="python-openstackclient not installed"),
]

V = "/compute/v2.1"
NO_HOST = "No valid host was found. There are not enough hosts available."


def at(version: str) -> dict[str, str]:
    return {"OpenStack-API-Version": f"compute {version}"}


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def image(novad: Daemon) -> AsyncIterator[str]:
    await novad.upload_image("img")
    yield "img"


async def test_2_84_server_event_show_gives_the_failure(novad: Daemon, image: str) -> None:
    host = novad.node.host
    # pinned below 2.53, whose service ids are another range's delta
    service = ("--os-compute-api-version", "2.11", "compute", "service", "set")
    await novad.cli(*service, "--disable", host, "nova-compute")
    try:
        created = await novad.cli_json("server", "create", "--flavor", "m1.nano", "--image",
                                       image, "refused")
        shown = await wait_settled(novad, created["id"])
    finally:
        await novad.cli(*service, "--enable", host, "nova-compute")
    assert shown["status"] == "ERROR"
    [create] = await novad.cli_json("server", "event", "list", created["id"])
    event = await novad.cli_json("server", "event", "show", created["id"],
                                 create["Request ID"])
    [failed] = event["events"]
    assert failed["result"] == "Error" and failed["details"] == NO_HOST


async def test_2_92_keypair_create_at_the_maximum(novad: Daemon) -> None:
    for name, extra in (("k-ssh", ("--type", "ssh")), ("k-plain", ())):
        result = await novad.cli("keypair", "create", *extra, name)
        assert "PRIVATE KEY" in result.stdout, name  # made by the CLI, not the server
        shown = await novad.cli_json("keypair", "show", name)
        assert shown["name"] == name and shown["type"] == "ssh" and shown["fingerprint"]
    status, body = await novad.call("POST", f"{V}/os-keypairs", await novad.token(),
                                    json_body={"keypair": {"name": "k-server"}},
                                    headers=at("2.92"))
    assert status == 400 and "public_key" in body["badRequest"]["message"]


async def test_2_90_hostname_through_the_cli(novad: Daemon, image: str) -> None:
    created = await novad.cli_json("server", "create", "--flavor", "m1.nano", "--image",
                                   image, "--hostname", "web-01", "--wait", "Web Server")
    shown = await novad.cli_json("server", "show", created["id"])
    assert shown["OS-EXT-SRV-ATTR:hostname"] == "web-01", sorted(shown)
    token = await novad.token()
    _, before = await novad.call("GET", f"{V}/servers/{created['id']}", token,
                                 headers=at("2.89"))
    _, after = await novad.call("GET", f"{V}/servers/{created['id']}", token,
                                headers=at("2.90"))
    assert before["server"]["OS-EXT-SRV-ATTR:hostname"] == "web-01"  # the admin's, 2.3
    assert after["server"]["OS-EXT-SRV-ATTR:hostname"] == "web-01"


async def call(d: Daemon, method: str, path: str, version: str, body: Any = None
               ) -> tuple[int, Any]:
    return await d.call(method, V + path, await d.token(), json_body=body, headers=at(version))


async def test_2_88_hypervisor_show_at_the_maximum(novad: Daemon) -> None:
    [listed] = await novad.cli_json("hypervisor", "list")
    shown = await novad.cli_json("hypervisor", "show", str(listed["ID"]))
    assert shown["state"] == "up" and "uptime" in shown
    status, _ = await call(novad, "GET", "/os-hypervisors/statistics", "2.88")
    assert status == 404
