"""The unmodified ``openstack`` CLI walks one server through its whole life.

One daemon serves the module (``novad`` fixture); the tests run in file
order and build on each other: catalog, boot, power actions, resize,
shelve, lock, rescue, snapshot, consoles, events, delete.  After every
action the server is polled with ``server show`` until its task_state is
null, and then its status, task_state and power_state are checked.  No test
asserts how long anything took; the polling timeouts only bound a hang.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from e2e_helpers import OPENSTACK, Daemon, make_disk, states, wait_settled

pytestmark = [
    pytest.mark.cli,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.skipif(not OPENSTACK.exists(), reason="python-openstackclient not installed"),
]

RUNNING, PAUSED, SHUTDOWN, SUSPENDED, NOSTATE = 1, 3, 4, 7, 0
"""Nova's power_state values as ``server show`` reports them."""


def flavor_name(shown: dict[str, Any]) -> str:
    """The server's flavor name as ``server show`` gives it: ``name (id)``
    before 2.47, the embedded flavor's ``original_name`` from 2.47."""
    flavor = shown["flavor"]
    return str(flavor["original_name"]) if isinstance(flavor, dict) else str(flavor)


async def act(novad: Daemon, *args: str) -> dict[str, Any]:
    """``openstack server ARGS vm1``, then ``server show vm1`` once it settled."""
    await novad.cli("server", *args, "vm1")
    return await wait_settled(novad, "vm1")


async def test_flavor_list_and_create(novad: Daemon) -> None:
    flavors = await novad.cli_json("flavor", "list")
    by_name = {f["Name"]: f for f in flavors}
    assert {"m1.nano", "m1.tiny", "m1.small"} <= by_name.keys()
    assert (by_name["m1.nano"]["RAM"], by_name["m1.nano"]["VCPUs"]) == (64, 1)

    created = await novad.cli_json("flavor", "create", "--ram", "128", "--disk", "1",
                                   "--vcpus", "1", "f1")
    assert (created["name"], created["ram"], created["disk"], created["vcpus"]) == \
        ("f1", 128, 1, 1)
    assert "f1" in {f["Name"] for f in await novad.cli_json("flavor", "list")}


async def test_image_create(novad: Daemon) -> None:
    path, disk_format = make_disk(novad.home)
    image = await novad.cli_json("image", "create", "--file", path.name, "--disk-format",
                                 disk_format, "--container-format", "bare", "img1")
    assert (image["name"], image["status"], image["disk_format"]) == \
        ("img1", "active", disk_format)
    assert image["size"] == path.stat().st_size


async def test_keypair_create(novad: Daemon) -> None:
    # Without --public-key the CLI prints the generated private key itself,
    # whatever -f says.
    result = await novad.cli("keypair", "create", "k1")
    assert "PRIVATE KEY" in result.stdout
    shown = await novad.cli_json("keypair", "show", "k1")
    assert shown["name"] == "k1" and shown["fingerprint"]


async def test_server_create_list_show(novad: Daemon) -> None:
    created = await novad.cli_json("server", "create", "--flavor", "m1.nano", "--image",
                                   "img1", "--key-name", "k1", "--wait", "vm1")
    assert created["name"] == "vm1" and created["status"] == "ACTIVE"

    listed = await novad.cli_json("server", "list")
    assert [(s["Name"], s["Status"], s["Image"], s["Flavor"]) for s in listed] == \
        [("vm1", "ACTIVE", "img1", "m1.nano")]

    shown = await wait_settled(novad, "vm1")
    assert states(shown) == ("ACTIVE", None, RUNNING)
    assert shown["OS-EXT-STS:vm_state"] == "active"
    assert shown["id"] == created["id"]
    assert shown["key_name"] == "k1"
    assert flavor_name(shown).startswith("m1.nano")
    assert shown["image"].startswith("img1")


@pytest.mark.parametrize(("args", "expected"), [
    (("stop",), ("SHUTOFF", None, SHUTDOWN)),
    (("start",), ("ACTIVE", None, RUNNING)),
    (("pause",), ("PAUSED", None, PAUSED)),
    (("unpause",), ("ACTIVE", None, RUNNING)),
    (("suspend",), ("SUSPENDED", None, SUSPENDED)),
    (("resume",), ("ACTIVE", None, RUNNING)),
    (("reboot",), ("ACTIVE", None, RUNNING)),
    (("reboot", "--hard"), ("ACTIVE", None, RUNNING)),
], ids=["stop", "start", "pause", "unpause", "suspend", "resume", "reboot-soft",
        "reboot-hard"])
async def test_power_actions(novad: Daemon, args: tuple[str, ...],
                             expected: tuple[str, None, int]) -> None:
    assert states(await act(novad, *args)) == expected


async def test_resize_confirm(novad: Daemon) -> None:
    # --wait returns once the status is VERIFY_RESIZE (or ACTIVE).
    shown = await act(novad, "resize", "--flavor", "m1.tiny", "--wait")
    assert states(shown) == ("VERIFY_RESIZE", None, RUNNING)
    assert shown["OS-EXT-STS:vm_state"] == "resized"
    assert flavor_name(shown).startswith("m1.tiny")

    shown = await act(novad, "resize", "confirm")
    assert states(shown) == ("ACTIVE", None, RUNNING)
    assert flavor_name(shown).startswith("m1.tiny")


async def test_resize_revert(novad: Daemon) -> None:
    # f1 has the same root disk as m1.tiny: a resize down would be refused.
    shown = await act(novad, "resize", "--flavor", "f1", "--wait")
    assert states(shown) == ("VERIFY_RESIZE", None, RUNNING)
    assert flavor_name(shown).startswith("f1")

    shown = await act(novad, "resize", "revert")
    assert states(shown) == ("ACTIVE", None, RUNNING)
    assert flavor_name(shown).startswith("m1.tiny")


async def test_shelve_unshelve(novad: Daemon) -> None:
    # shelved_offload_time is -1 here, so a plain shelve stays SHELVED.
    assert states(await act(novad, "shelve")) == ("SHELVED", None, SHUTDOWN)
    assert states(await act(novad, "unshelve")) == ("ACTIVE", None, RUNNING)

    # `server shelve --offload` shelves, waits for SHELVED, then offloads.
    shown = await act(novad, "shelve", "--offload")
    assert states(shown) == ("SHELVED_OFFLOADED", None, NOSTATE)
    assert states(await act(novad, "unshelve")) == ("ACTIVE", None, RUNNING)


async def test_lock_unlock(novad: Daemon) -> None:
    # `locked` is a 2.9 field (null at 2.1); that a lock refuses a non-admin
    # is proven in test_policy_cli.  Here: the admin locks and unlocks, the
    # server is untouched, and both are recorded as instance actions.
    assert states(await act(novad, "lock")) == ("ACTIVE", None, RUNNING)
    assert states(await act(novad, "unlock")) == ("ACTIVE", None, RUNNING)
    actions = [e["Action"] for e in await novad.cli_json("server", "event", "list", "vm1")]
    assert actions[:2] == ["unlock", "lock"]


async def test_server_set_password(novad: Daemon) -> None:
    # `server set --password` is changePassword, a synchronous call: the CLI
    # returns once the driver has set it (libvirt's test driver needs no agent).
    result = await novad.cli("server", "set", "--password", "n3w-pa55", "vm1")
    assert result.returncode == 0, result.stderr
    assert states(await wait_settled(novad, "vm1")) == ("ACTIVE", None, RUNNING)
    events = await novad.cli_json("server", "event", "list", "vm1")
    assert events[0]["Action"] == "changePassword"


async def test_rescue_unrescue(novad: Daemon) -> None:
    assert states(await act(novad, "rescue")) == ("RESCUE", None, RUNNING)
    shown = await act(novad, "unrescue")
    assert states(shown) == ("ACTIVE", None, RUNNING)
    assert shown["OS-EXT-STS:vm_state"] == "active"


async def test_server_image_create(novad: Daemon) -> None:
    image = await novad.cli_json("server", "image", "create", "--name", "snap1", "vm1")
    assert image["name"] == "snap1"
    deadline = time.monotonic() + 60
    while image["status"] != "active":
        assert image["status"] in ("queued", "saving"), image
        assert time.monotonic() < deadline, f"snapshot still {image['status']}"
        await asyncio.sleep(0.5)
        image = await novad.cli_json("image", "show", "snap1")
    assert image["properties"]["image_type"] == "snapshot"
    assert image["size"] > 0
    assert states(await wait_settled(novad, "vm1")) == ("ACTIVE", None, RUNNING)


async def test_console_log(novad: Daemon) -> None:
    # The test driver has no serial console: the output may well be empty,
    # but the call must succeed.
    result = await novad.cli("console", "log", "show", "vm1")
    assert "Traceback" not in result.stdout + result.stderr


async def test_console_url_is_a_clean_error(novad: Daemon) -> None:
    # libvirt's test driver assigns no VNC port (and this node may not serve
    # consoles at all), so no URL can be made: the honest answer is a clean
    # 4xx/501 in Nova's error shape.  The real-QEMU tier covers the URL.
    result = await novad.cli("console", "url", "show", "--novnc", "vm1", check=False)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    shown = await wait_settled(novad, "vm1")
    token = await novad.token()
    status, body = await novad.call(
        "POST", f"/compute/v2.1/servers/{shown['id']}/action", token,
        json_body={"os-getVNCConsole": {"type": "novnc"}})
    assert 400 <= status < 500 or status == 501, (status, body)
    assert str(status) in result.stderr
    ((key, error),) = body.items()
    assert key in ("badRequest", "conflictingRequest", "itemNotFound", "notImplemented"), body
    assert error["code"] == status and error["message"], body
    assert "Traceback" not in error["message"] and error["message"] in result.stderr


async def test_server_events(novad: Daemon) -> None:
    events = await novad.cli_json("server", "event", "list", "vm1")
    actions = [e["Action"] for e in events]
    assert actions[-1] == "create" and actions[0] == "createImage", actions
    assert {"stop", "start", "pause", "unpause", "suspend", "resume", "reboot", "resize",
            "confirmResize", "revertResize", "shelve", "unshelve", "lock", "unlock",
            "rescue", "unrescue"} <= set(actions), actions
    shown = await wait_settled(novad, "vm1")
    assert {e["Server ID"] for e in events} == {shown["id"]}

    pause = next(e for e in events if e["Action"] == "pause")
    detail = await novad.cli_json("server", "event", "show", "vm1", pause["Request ID"])
    assert detail["action"] == "pause"
    assert detail["request_id"] == pause["Request ID"]
    # Before 2.51 only admins see the events; the CLI runs as admin.
    assert detail["events"], detail
    assert all(e["result"] == "Success" and e["finish_time"] for e in detail["events"])


async def test_server_delete(novad: Daemon) -> None:
    server_id = (await wait_settled(novad, "vm1"))["id"]
    await novad.cli("server", "delete", "--wait", "vm1")
    result = await novad.cli("server", "show", "vm1", check=False)
    assert result.returncode != 0 and "No Server found for vm1" in result.stderr
    status, body = await novad.call("GET", f"/compute/v2.1/servers/{server_id}",
                                    await novad.token())
    assert status == 404 and body["itemNotFound"]["code"] == 404
    assert await novad.cli_json("server", "list") == []
