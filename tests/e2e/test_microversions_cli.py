"""The microversion boundaries that need a real server (2.3, 2.5, 2.6, 2.8,
2.9), each the same request at N-1 and N, and ``openstack compute service
set --down`` / ``--up`` (2.11) through the unmodified CLI.

The rest of the boundaries are in ``tests/api/test_microversions.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from e2e_helpers import OPENSTACK, Daemon

pytestmark = [
    pytest.mark.cli,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.skipif(not OPENSTACK.exists(), reason="python-openstackclient not installed"),
]

V = "/compute/v2.1"
EXTENDED_2_3 = {"OS-EXT-SRV-ATTR:reservation_id", "OS-EXT-SRV-ATTR:launch_index",
                "OS-EXT-SRV-ATTR:hostname", "OS-EXT-SRV-ATTR:kernel_id",
                "OS-EXT-SRV-ATTR:ramdisk_id", "OS-EXT-SRV-ATTR:root_device_name",
                "OS-EXT-SRV-ATTR:user_data"}


def at(version: str) -> dict[str, str]:
    return {"OpenStack-API-Version": f"compute {version}"}


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def server(novad: Daemon) -> AsyncIterator[str]:
    """An active server of the admin project (its id)."""
    await novad.upload_image("img")
    created = await novad.cli_json("server", "create", "--flavor", "m1.nano", "--image", "img",
                                   "--wait", "Web_Server.1")
    yield str(created["id"])


async def show(d: Daemon, server: str, version: str, token: str | None = None
               ) -> dict[str, Any]:
    status, body = await d.call("GET", f"{V}/servers/{server}", token or await d.token(),
                                headers=at(version))
    assert status == 200, body
    shown: dict[str, Any] = body["server"]
    return shown


async def test_2_3_extended_attributes_for_admins(novad: Daemon, server: str) -> None:
    before, after = await show(novad, server, "2.2"), await show(novad, server, "2.3")
    assert set(after) - set(before) == EXTENDED_2_3 and set(before) <= set(after)
    assert {k: after[k] for k in before} == before
    assert after["OS-EXT-SRV-ATTR:hostname"] == "web-server-1"
    assert after["OS-EXT-SRV-ATTR:launch_index"] == 0
    assert after["OS-EXT-SRV-ATTR:reservation_id"].startswith("r-")
    assert after["OS-EXT-SRV-ATTR:root_device_name"] == "/dev/vda"
    assert (after["OS-EXT-SRV-ATTR:kernel_id"], after["OS-EXT-SRV-ATTR:ramdisk_id"],
            after["OS-EXT-SRV-ATTR:user_data"]) == ("", "", None)
    assert after["os-extended-volumes:volumes_attached"] == []


async def test_2_9_locked(novad: Daemon, server: str) -> None:
    before, after = await show(novad, server, "2.8"), await show(novad, server, "2.9")
    assert set(after) - set(before) == {"locked"} and after["locked"] is False
    await novad.cli("server", "lock", server)
    assert (await show(novad, server, "2.9"))["locked"] is True
    shown = await novad.cli_json("server", "show", server)  # the CLI negotiates 2.11
    assert shown["locked"] is True
    await novad.cli("server", "unlock", server)
    assert (await show(novad, server, "2.9"))["locked"] is False


async def test_2_5_ip6_filter_for_non_admins(novad: Daemon, server: str) -> None:
    await novad.add_user("viewer", "admin", "member")
    token = await novad.token("viewer", "pw-viewer", "admin")
    found = {}
    for version in ("2.4", "2.5"):
        status, body = await novad.call("GET", f"{V}/servers?ip6=.", token,
                                        headers=at(version))
        assert status == 200, body
        found[version] = [s["id"] for s in body["servers"]]
    # novad's servers have no addresses, so a filter that applies matches none
    assert found == {"2.4": [server], "2.5": []}
    status, body = await novad.call("GET", f"{V}/servers?ip6=.", await novad.token(),
                                    headers=at("2.4"))
    assert body["servers"] == [], "an admin's ip6 filter applies at every version"


async def test_2_6_remote_consoles(novad: Daemon, server: str) -> None:
    # libvirt's test driver assigns no VNC port, so neither way makes a URL
    # here (the real-QEMU tier covers one): the two answer alike.
    token = await novad.token()
    old = await novad.call("POST", f"{V}/servers/{server}/action", token,
                           json_body={"os-getVNCConsole": {"type": "novnc"}},
                           headers=at("2.5"))
    body = {"remote_console": {"protocol": "vnc", "type": "novnc"}}
    new = await novad.call("POST", f"{V}/servers/{server}/remote-consoles", token,
                           json_body=body, headers=at("2.6"))
    assert new == old and 400 <= new[0] < 500, new
    gone = await novad.call("POST", f"{V}/servers/{server}/action", token,
                            json_body={"os-getVNCConsole": {"type": "novnc"}},
                            headers=at("2.6"))
    assert gone == (404, {"itemNotFound": {"code": 404,
                                           "message": "The resource could not be found."}})
    early = await novad.call("POST", f"{V}/servers/{server}/remote-consoles", token,
                             json_body=body, headers=at("2.5"))
    assert early == gone
    spice = {"remote_console": {"protocol": "spice", "type": "spice-html5"}}
    refused = await novad.call("POST", f"{V}/servers/{server}/remote-consoles", token,
                               json_body=spice, headers=at("2.6"))
    assert refused == (400, {"badRequest": {
        "code": 400, "message": "Unavailable console type spice-html5."}})
    result = await novad.cli("console", "url", "show", "--novnc", server, check=False)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert new[1][next(iter(new[1]))]["message"] in result.stderr, "the CLI used remote-consoles"


async def test_2_8_mks(novad: Daemon, server: str) -> None:
    token = await novad.token()
    body = {"remote_console": {"protocol": "mks", "type": "webmks"}}
    answers = {}
    for version in ("2.7", "2.8"):
        answers[version] = await novad.call("POST", f"{V}/servers/{server}/remote-consoles",
                                            token, json_body=body, headers=at(version))
    assert answers["2.7"][0] == 400
    assert "Invalid input for field/attribute remote_console/" in \
        answers["2.7"][1]["badRequest"]["message"]
    assert answers["2.8"] == (400, {"badRequest": {
        "code": 400, "message": "Unavailable console type webmks."}})


def compute_row(listed: list[dict[str, Any]]) -> dict[str, Any]:
    (row,) = [r for r in listed if r["Binary"] == "nova-compute"]
    return row


async def test_service_set_down_and_up_with_the_cli(novad: Daemon, server: str) -> None:
    host = novad.node.host
    row = compute_row(await novad.cli_json("compute", "service", "list", "--long"))
    assert (row["State"], row["Forced Down"]) == ("up", False)
    await novad.cli("compute", "service", "set", "--down", host, "nova-compute")
    row = compute_row(await novad.cli_json("compute", "service", "list", "--long"))
    assert (row["Status"], row["State"], row["Forced Down"]) == ("enabled", "down", True)
    stored = await novad.node.store.get_service(host, "nova-compute")
    assert stored is not None and stored.forced_down
    await novad.cli("compute", "service", "set", "--up", host, "nova-compute")
    row = compute_row(await novad.cli_json("compute", "service", "list", "--long"))
    assert (row["Status"], row["State"], row["Forced Down"]) == ("enabled", "up", False)
