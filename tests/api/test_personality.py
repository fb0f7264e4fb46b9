"""Personality (files injected at create and rebuild, below 2.57), over HTTP
against a real compute stack (SQLite store, libvirt's test driver): Nova's
schema, its 400 and quota 403s, the files kept through a restart, and the
config drive that carries them to the guest."""

from __future__ import annotations

import contextlib
import base64
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pycdlib
import pytest
from aiohttp.test_utils import TestClient
from api_helpers import MEMBER, error_of
from stack_api import stack_client
from compute.conftest import Stack, build_stack, close_stack
from test_microversions_2_46_to_2_60 import V, an_image, at, rebuild

from novad.compute.quotas import Quotas
from novad.drivers.libvirt import disks

Client = TestClient[Any, Any]

MOTD = b"Welcome to novad.\n"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


FILES = [{"path": "/etc/motd", "contents": b64(MOTD)},
         {"path": "/root/.config/app.ini", "contents": b64(b"[app]\nx = 1\n")}]


def _client(stack: Stack) -> contextlib.AbstractAsyncContextManager[Client]:
    return stack_client(stack, quotas=Quotas(stack.store, stack.config.quota),
                        migrations=stack.store)


@pytest.fixture
async def client(stack: Stack) -> AsyncIterator[Client]:
    async with _client(stack) as test_client:
        yield test_client


@pytest.fixture
async def image(stack: Stack) -> str:
    return await an_image(stack)


def body(image: str, files: Any, **extra: Any) -> dict[str, Any]:
    return {"server": {"name": "p", "flavorRef": "42", "imageRef": image,
                       "networks": "auto", "personality": files, **extra}}


async def create(client: Client, image: str, files: Any, version: str = "2.56") -> Any:
    return await client.post(f"{V}/servers", json=body(image, files), headers=at(version))


async def created(stack: Stack, client: Client, image: str, files: Any) -> str:
    resp = await create(client, image, files)
    assert resp.status == 202, await resp.text()
    await stack.settle()
    server: str = (await resp.json())["server"]["id"]
    return server


def drive_of(stack: Stack, server: str) -> dict[str, bytes]:
    """Every file of the server's config drive, by path under openstack/."""
    iso = pycdlib.PyCdlib()
    iso.open(str(stack.compute.specs.instance_dir(server) / disks.CONFIG))
    found: dict[str, bytes] = {}
    try:
        for root, _dirs, names in iso.walk(rr_path="/openstack"):
            for name in names:
                out = io.BytesIO()
                iso.get_file_from_iso_fp(out, rr_path=f"{root}/{name}")
                found[f"{root}/{name}".removeprefix("/openstack/")] = out.getvalue()
    finally:
        iso.close()
    return found


def assert_drive_has(drive: dict[str, bytes], files: list[tuple[str, bytes]]) -> None:
    listed = [{"path": path, "content_path": f"/content/{i:04d}"}
              for i, (path, _) in enumerate(files)]
    for version in ("latest", "2012-08-10"):
        meta = json.loads(drive[f"{version}/meta_data.json"])
        assert meta.get("files", []) == listed, version
    contents = {path: data for path, data in drive.items() if path.startswith("content/")}
    assert contents == {f"content/{i:04d}": data for i, (_, data) in enumerate(files)}


# -- accepted below 2.57 and delivered on the config drive -----------------------------

async def test_create_with_personality_writes_the_files_on_the_config_drive(
        stack: Stack, client: Client, image: str) -> None:
    server = await created(stack, client, image, FILES)
    inst = await stack.store.get_instance(server)
    assert inst.vm_state.value == "active" and not inst.config_drive  # not asked for
    assert_drive_has(drive_of(stack, server), [("/etc/motd", MOTD),
                                               ("/root/.config/app.ini", b"[app]\nx = 1\n")])


async def test_no_view_shows_the_files(stack: Stack, client: Client, image: str) -> None:
    server = await created(stack, client, image, FILES)
    for token in ("member-token", "admin-token"):
        for url in (f"{V}/servers/{server}", f"{V}/servers/detail",
                    f"{V}/servers/{server}/metadata"):
            text = await (await client.get(url, headers=at("2.56", token))).text()
            assert "motd" not in text and FILES[0]["contents"] not in text, url


async def test_rebuild_replaces_the_files_and_without_personality_leaves_none(
        stack: Stack, client: Client, image: str) -> None:
    server = await created(stack, client, image, FILES)
    issue = [{"path": "/etc/issue", "contents": b64(b"rebuilt\n")}]
    resp = await rebuild(client, server, "2.56", imageRef=image, personality=issue)
    assert resp.status == 202, await resp.text()
    await stack.settle()
    assert_drive_has(drive_of(stack, server), [("/etc/issue", b"rebuilt\n")])
    resp = await rebuild(client, server, "2.56", imageRef=image)
    assert resp.status == 202, await resp.text()
    await stack.settle()
    inst = await stack.store.get_instance(server)
    assert inst.vm_state.value == "active"
    assert (await stack.compute.specs.build(inst)).files == ()
    assert not (stack.compute.specs.instance_dir(server) / disks.CONFIG).exists()


async def test_rebuild_without_personality_at_2_57_leaves_no_files(
        stack: Stack, client: Client, image: str) -> None:
    server = await created(stack, client, image, FILES[:1])
    resp = await rebuild(client, server, "2.57", imageRef=image, user_data=b64(b"#x\n"))
    assert resp.status == 202, await resp.text()
    await stack.settle()
    drive = drive_of(stack, server)  # user data keeps a drive; the files are gone
    assert_drive_has(drive, [])
    assert drive["latest/user_data"] == b"#x\n"


async def test_files_survive_a_restart_between_the_202_and_the_build(
        tmp_path: Path, image: str, stack: Stack, client: Client) -> None:
    resp = await create(client, image, FILES[:1])
    assert resp.status == 202, await resp.text()
    server = (await resp.json())["server"]["id"]
    await stack.supervisor.stop(grace=0)  # the "crash": the boot may not have run at all
    restarted = await build_stack(tmp_path / "state", seed=False)
    try:
        inst = await restarted.store.get_instance(server)
        spec = await restarted.compute.specs.build(inst)
        assert spec.files == (("/etc/motd", MOTD),) and spec.config_drive
    finally:
        await close_stack(restarted)


# -- Nova's 400 and 403s --------------------------------------------------------------

async def test_contents_that_are_not_base64_are_400(client: Client, image: str,
                                                    stack: Stack) -> None:
    bad = [{"path": "/etc/motd", "contents": "not base64!"}]
    expected = (400, "badRequest", "Personality content for /etc/motd cannot be decoded.")
    assert await error_of(await create(client, image, bad)) == expected
    assert await stack.store.list_instances() == []
    server = await created(stack, client, image, FILES[:1])
    assert await error_of(await rebuild(client, server, "2.56", imageRef=image,
                                        personality=bad)) == expected


@pytest.mark.parametrize("item", [{"path": "/a"}, {"contents": "aGk="},
                                  {"path": "/a", "contents": "aGk=", "mode": "0600"},
                                  {"path": "", "contents": "aGk="}, "a"])
async def test_schema(client: Client, image: str, item: Any) -> None:
    status, key, message = await error_of(await create(client, image, [item]))
    assert (status, key) == (400, "badRequest")
    assert message.startswith("Invalid input for field/attribute"), message


async def test_more_files_than_the_quota_is_403(stack: Stack, client: Client,
                                                image: str) -> None:
    files = [{"path": f"/etc/f{i}", "contents": "aGk="} for i in range(6)]
    expected = (403, "forbidden", "Personality file limit exceeded")
    assert await error_of(await create(client, image, files)) == expected
    assert await stack.store.list_instances() == []
    server = await created(stack, client, image, files[:5])  # the limit itself is fine
    assert await error_of(await rebuild(client, server, "2.56", imageRef=image,
                                        personality=files)) == expected


async def test_contents_longer_than_the_quota_are_403(client: Client, image: str) -> None:
    big = [{"path": "/etc/big", "contents": b64(b"x" * 10241)}]
    assert await error_of(await create(client, image, big)) == (
        403, "forbidden", "Personality file content exceeds maximum 10240")
    long_path = [{"path": "/" + "p" * 255, "contents": "aGk="}]
    assert await error_of(await create(client, image, long_path)) == (
        403, "forbidden", "Personality file path exceeds maximum 255")


async def test_the_projects_own_quotas_apply(stack: Stack, client: Client, image: str) -> None:
    url = f"{V}/os-quota-sets/{MEMBER.project_id}"
    own = {"injected_files": 1, "injected_file_path_bytes": 8,
           "injected_file_content_bytes": 4}
    resp = await client.put(url, json={"quota_set": own}, headers=at("2.56", "admin-token"))
    assert resp.status == 200, await resp.text()
    shown = (await (await client.get(url, headers=at("2.56"))).json())["quota_set"]
    assert {k: shown[k] for k in own} == own
    limits = (await (await client.get(f"{V}/limits", headers=at("2.56"))).json())
    assert limits["limits"]["absolute"]["maxPersonality"] == 1
    assert limits["limits"]["absolute"]["maxPersonalitySize"] == 4
    two = [{"path": "/a", "contents": "aGk="}, {"path": "/b", "contents": "aGk="}]
    assert (await error_of(await create(client, image, two)))[2] == \
        "Personality file limit exceeded"
    # the path is reported before the contents, as Nova does
    both = [{"path": "/etc/motd", "contents": b64(b"hello")}]
    assert (await error_of(await create(client, image, both)))[2] == \
        "Personality file path exceeds maximum 8"
    assert (await error_of(await create(client, image, [{"path": "/etc/a", "contents": b64(
        b"hello")}])))[2] == "Personality file content exceeds maximum 4"
    await created(stack, client, image, [{"path": "/etc/a", "contents": b64(b"hell")}])
