"""Stable device rescue through the Compute API, as Tempest's
``ServerStableDeviceRescueTest`` drives it: snapshot the server, give the
snapshot ``hw_rescue_device``/``hw_rescue_bus``, rescue with it, wait for
RESCUE, unrescue, wait for ACTIVE.  A real stack (SQLite, image service on
disk, libvirt's test driver); the guest's XML is read from its files."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from api_helpers import MEMBER, error_of, headers
from stack_api import stack_client
from compute.conftest import Stack

from novad.states.enums import VmState

Client = TestClient[Any, Any]
V = "/compute/v2.1"
AT = headers(**{"OpenStack-API-Version": "compute 2.87"})


@pytest.fixture
async def client(stack: Stack) -> AsyncIterator[Client]:
    async with stack_client(stack, migrations=stack.store) as test_client:
        yield test_client


@pytest.fixture
async def server(stack: Stack, client: Client, tmp_path: Path) -> str:
    """A server booted through the API from a small raw image."""
    data = tmp_path / "disk.raw"
    data.write_bytes(b"\0" * 512)
    image = await stack.images.create_from_file(MEMBER.project_id, "img", data, "raw", {},
                                                visibility="public")
    resp = await client.post(f"{V}/servers", headers=AT, json={"server": {
        "name": "rescuee", "flavorRef": "42", "imageRef": image.id, "networks": "none"}})
    assert resp.status == 202, await resp.text()
    uuid: str = (await resp.json())["server"]["id"]
    await stack.settle()
    return uuid


async def snapshot_with(stack: Stack, client: Client, server: str, **props: str) -> str:
    """createImage of ``server``, then the rescue properties added to it."""
    resp = await client.post(f"{V}/servers/{server}/action", headers=AT,
                             json={"createImage": {"name": "rescue-snap"}})
    assert resp.status == 202, await resp.text()
    image_id: str = (await resp.json())["image_id"]
    await stack.settle()
    await stack.images.update(MEMBER, image_id, [
        {"op": "add", "path": f"/{key}", "value": value} for key, value in props.items()])
    return image_id


async def status_of(client: Client, server: str) -> str:
    resp = await client.get(f"{V}/servers/{server}", headers=AT)
    assert resp.status == 200
    return str((await resp.json())["server"]["status"])


def targets(stack: Stack, server: str) -> list[tuple[str, str, str, str | None]]:
    """(source file name, target dev, bus, boot order) of the defined guest's disks."""
    xml = ET.parse(Path(stack.config.DEFAULT.state_dir) / "instances" / server
                   / "libvirt.xml").getroot()
    found = []
    for disk in xml.iterfind("./devices/disk"):
        source, target, boot = disk.find("source"), disk.find("target"), disk.find("boot")
        assert source is not None and target is not None
        found.append((Path(source.get("file", "")).name, target.get("dev", ""),
                      target.get("bus", ""), boot.get("order") if boot is not None else None))
    return found


@pytest.mark.parametrize(("props", "rescue_disk"), [
    ({"hw_rescue_device": "disk", "hw_rescue_bus": "virtio"}, ("vdb", "virtio")),
    ({"hw_rescue_device": "disk", "hw_rescue_bus": "scsi"}, ("sda", "scsi")),
    ({"hw_rescue_device": "disk", "hw_rescue_bus": "usb"}, ("sda", "usb")),
    ({"hw_rescue_device": "cdrom", "hw_rescue_bus": "ide"}, ("hda", "ide")),
])
async def test_rescue_and_unrescue_with_a_stable_device_snapshot(
        stack: Stack, client: Client, server: str, props: dict[str, str],
        rescue_disk: tuple[str, str]) -> None:
    before = targets(stack, server)
    assert before == [("disk", "vda", "virtio", None)]
    image_id = await snapshot_with(stack, client, server, **props)
    resp = await client.post(f"{V}/servers/{server}/action", headers=AT,
                             json={"rescue": {"rescue_image_ref": image_id}})
    assert resp.status == 200, await resp.text()
    await stack.settle()
    assert await status_of(client, server) == "RESCUE"
    assert targets(stack, server) == [*before, ("disk.rescue", *rescue_disk, "1")]
    resp = await client.post(f"{V}/servers/{server}/action", headers=AT,
                             json={"unrescue": None})
    assert resp.status == 202, await resp.text()
    await stack.settle()
    assert await status_of(client, server) == "ACTIVE"
    assert targets(stack, server) == before


@pytest.mark.parametrize(("props", "word"), [
    ({"hw_rescue_bus": "nvme-of-things"}, "bus 'nvme-of-things'"),
    ({"hw_rescue_device": "tape"}, "device 'tape'"),
    ({"hw_rescue_device": "floppy", "hw_rescue_bus": "usb"}, "bus 'usb'"),
])
async def test_a_value_nova_refuses_is_400_and_nothing_changes(
        stack: Stack, client: Client, server: str, props: dict[str, str], word: str) -> None:
    image_id = await snapshot_with(stack, client, server, **props)
    before = targets(stack, server)
    resp = await client.post(f"{V}/servers/{server}/action", headers=AT,
                             json={"rescue": {"rescue_image_ref": image_id}})
    status, key, message = await error_of(resp)
    assert (status, key) == (400, "badRequest")
    assert word in message and "rescue" in message
    await stack.settle()
    inst = await stack.store.get_instance(server)
    assert (inst.vm_state, inst.task_state) == (VmState.ACTIVE, None)
    assert targets(stack, server) == before
    resp = await client.get(f"{V}/servers/{server}/os-instance-actions", headers=AT)
    actions = [a["action"] for a in (await resp.json())["instanceActions"]]
    assert "rescue" not in actions
