"""The boundaries 2.46 to 2.60, over HTTP against a real compute stack
(SQLite store, libvirt's test driver): the same request at N-1 and N,
showing the difference Nova documents for N and nothing else."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, cast

import uuid

import pytest
from aiohttp.test_utils import TestClient, TestServer
from api_helpers import MEMBER, StaticNode, error_of, headers, identity_shaped, validate_token
from stack_api import stack_client
from compute.conftest import Stack

from novad.api.app import build_api
from novad.api.compute import routes as compute_routes
from novad.api.compute.views import instance_name
from novad.cluster.members import Member, MemberState
from novad.compute.flavors import FlavorService
from novad.compute.interface import ActionResult, ComputeAPI
from novad.compute.keypairs import KeypairService
from novad.compute.quotas import Quotas
from novad.context import RequestContext

Client = TestClient[Any, Any]
V = "/compute/v2.1"


def at(version: str, token: str = "member-token") -> dict[str, str]:
    return headers(token, **{"OpenStack-API-Version": f"compute {version}"})


@pytest.fixture
def node(stack: Stack) -> StaticNode:
    return StaticNode(host=stack.config.host, store=stack.store, service=stack.service)


@pytest.fixture
async def client(stack: Stack, node: StaticNode) -> AsyncIterator[Client]:
    async with stack_client(stack, node, quotas=Quotas(stack.store, stack.config.quota),
                            migrations=stack.store) as test_client:
        yield test_client


@pytest.fixture
async def server(stack: Stack) -> str:
    return (await stack.boot("vm", MEMBER)).uuid


async def show(client: Client, server: str, version: str,
               token: str = "member-token") -> dict[str, Any]:
    resp = await client.get(f"{V}/servers/{server}", headers=at(version, token))
    assert resp.status == 200, await resp.text()
    body: dict[str, Any] = (await resp.json())["server"]
    return body


# -- 2.46 X-OpenStack-Request-ID: both headers at every version --------------------------

async def test_2_46_both_request_id_headers_on_both_sides(client: Client) -> None:
    for version in ("2.45", "2.46"):
        resp = await client.get(f"{V}/flavors", headers=at(version))
        assert resp.status == 200
        rid = resp.headers["X-OpenStack-Request-ID"]
        assert rid.startswith("req-") and resp.headers["X-Compute-Request-ID"] == rid


# -- 2.49 tagged attach: no os-interface or os-volume_attachments ------------------------

async def test_2_49_attach_routes_are_404_on_both_sides(client: Client, server: str) -> None:
    for version in ("2.48", "2.49"):
        for path, body in ((f"{V}/servers/{server}/os-interface",
                            {"interfaceAttachment": {"net_id": server, "tag": "t"}}),
                           (f"{V}/servers/{server}/os-volume_attachments",
                            {"volumeAttachment": {"volumeId": server, "tag": "t"}})):
            resp = await client.post(path, json=body, headers=at(version))
            assert resp.status == 404, (version, path)


# -- 2.51 action events for everyone, traceback for admins ------------------------------

async def test_2_51_events_shown_to_non_admins(client: Client, server: str) -> None:
    base = f"{V}/servers/{server}/os-instance-actions"
    listed = await (await client.get(base, headers=at("2.51"))).json()
    request_id = listed["instanceActions"][-1]["request_id"]

    async def action(version: str, token: str) -> dict[str, Any]:
        resp = await client.get(f"{base}/{request_id}", headers=at(version, token))
        assert resp.status == 200
        body: dict[str, Any] = (await resp.json())["instanceAction"]
        return body

    before, after = await action("2.50", "member-token"), await action("2.51", "member-token")
    assert "events" not in before
    assert set(after) - set(before) == {"events"} and after["events"]
    assert all("traceback" not in e for e in after["events"])
    assert set(after["events"][0]) == {"event", "start_time", "finish_time", "result"}
    for version in ("2.50", "2.51"):
        admin = await action(version, "admin-token")
        assert admin["events"] and all("traceback" in e for e in admin["events"])


# -- 2.60 multiattach: no volume service, nothing changes --------------------------------

async def test_2_60_server_view_unchanged(client: Client, server: str) -> None:
    before, after = await show(client, server, "2.59"), await show(client, server, "2.60")
    assert set(before) == set(after)
    assert after["os-extended-volumes:volumes_attached"] == []


async def an_image(stack: Stack) -> str:
    """An active image the member's project owns (a small raw disk)."""
    image = await stack.images.create(MEMBER, {"name": "tiny", "disk_format": "raw",
                                               "container_format": "bare"})

    async def data() -> AsyncIterator[bytes]:
        yield b"\0" * 4096

    await stack.images.upload(MEMBER, image.id, data(), 1 << 20)
    return image.id


# -- 2.52 tags on create ---------------------------------------------------------------

async def test_2_52_create_takes_tags(stack: Stack, client: Client) -> None:
    image = await an_image(stack)

    def body(**extra: Any) -> dict[str, Any]:
        return {"server": {"name": "t", "flavorRef": "42", "imageRef": image,
                           "networks": "auto", **extra}}  # networks: required from 2.37

    before = await client.post(f"{V}/servers", json=body(tags=["a"]), headers=at("2.51"))
    assert (await error_of(before))[0] == 400
    after = await client.post(f"{V}/servers", json=body(tags=["a", "b", "a"]),
                              headers=at("2.52"))
    assert after.status == 202, await after.text()
    server = (await after.json())["server"]["id"]
    await stack.settle()
    assert (await show(client, server, "2.52"))["tags"] == ["a", "b"]
    for bad in (["a/b"], [""], [f"t{i}" for i in range(51)], "a"):
        resp = await client.post(f"{V}/servers", json=body(tags=bad), headers=at("2.52"))
        assert (await error_of(resp))[0] == 400, bad


async def rebuild(client: Client, server: str, version: str, **argument: Any) -> Any:
    return await client.post(f"{V}/servers/{server}/action",
                             json={"rebuild": argument}, headers=at(version))


# -- 2.54 rebuild takes key_name -------------------------------------------------------

async def test_2_54_rebuild_takes_key_name(stack: Stack, client: Client, server: str) -> None:
    image = await an_image(stack)
    await KeypairService(stack.store).create_keypair(MEMBER, "mine", None)
    before = await rebuild(client, server, "2.53", imageRef=image, key_name="mine")
    assert (await error_of(before))[0] == 400
    after = await rebuild(client, server, "2.54", imageRef=image, key_name="mine")
    assert after.status == 202, await after.text()
    assert (await after.json())["server"]["key_name"] == "mine"
    await stack.settle()
    inst = await stack.store.get_instance(server)
    assert inst.key_name == "mine" and inst.key_data and inst.key_data.startswith("ssh-")
    assert (await show(client, server, "2.54"))["status"] == "ACTIVE"
    missing = await rebuild(client, server, "2.54", imageRef=image, key_name="nope")
    assert await error_of(missing) == (400, "badRequest", "Invalid key_name provided.")
    removed = await rebuild(client, server, "2.54", imageRef=image, key_name=None)
    assert (await removed.json())["server"]["key_name"] is None
    await stack.settle()
    assert (await stack.store.get_instance(server)).key_data is None


# -- 2.56 migrate takes host -----------------------------------------------------------

async def test_2_56_migrate_takes_host(stack: Stack, client: Client, server: str) -> None:
    async def migrate(version: str, argument: Any) -> Any:
        return await client.post(f"{V}/servers/{server}/action", json={"migrate": argument},
                                 headers=at(version, "admin-token"))

    assert (await error_of(await migrate("2.55", {"host": "node-2"})))[0] == 400
    same = await migrate("2.56", {"host": stack.config.host})
    assert await error_of(same) == (400, "badRequest",
                                    "Cannot migrate to the host where the server exists.")
    unknown = await migrate("2.56", {"host": "node-9"})
    assert await error_of(unknown) == (400, "badRequest",
                                       "Compute host node-9 could not be found.")
    assert (await error_of(await migrate("2.56", {"host": "a b"})))[0] == 400
    assert (await error_of(await migrate("2.56", {"other": 1})))[0] == 400


# -- 2.57 personality gone, user_data on rebuild, no personality limits -----------------

async def test_2_57_rebuild_takes_user_data(stack: Stack, client: Client, server: str) -> None:
    image = await an_image(stack)
    before = await rebuild(client, server, "2.56", imageRef=image, user_data="aGk=")
    assert (await error_of(before))[0] == 400
    after = await rebuild(client, server, "2.57", imageRef=image, user_data="aGk=")
    assert after.status == 202, await after.text()
    await stack.settle()
    assert (await show(client, server, "2.57", "admin-token"))[
        "OS-EXT-SRV-ATTR:user_data"] == "aGk="
    bad = await rebuild(client, server, "2.57", imageRef=image, user_data="not base64!")
    assert await error_of(bad) == (400, "badRequest", "Userdata content cannot be decoded")
    assert (await rebuild(client, server, "2.57", imageRef=image, user_data=None)).status == 202
    await stack.settle()
    assert (await stack.store.get_instance(server)).user_data is None


async def test_2_57_personality_gone(stack: Stack, client: Client, server: str) -> None:
    image = await an_image(stack)
    files = [{"path": "/etc/motd", "contents": "aGk="}]
    create = {"server": {"name": "p", "flavorRef": "42", "imageRef": image,
                         "networks": "auto", "personality": files}}
    assert (await rebuild(client, server, "2.56", imageRef=image,
                          personality=files)).status == 202
    await stack.settle()
    resp = await client.post(f"{V}/servers", json=create, headers=at("2.56"))
    assert resp.status == 202, await resp.text()
    await stack.settle()
    for version in ("2.57", "2.96"):
        status, key, message = await error_of(await rebuild(
            client, server, version, imageRef=image, personality=files))
        assert (status, key) == (400, "badRequest"), version
        assert message.startswith("Invalid input for field/attribute rebuild. ")
        assert message.endswith("Additional properties are not allowed ('personality' was "
                                "unexpected)"), message
        status, key, message = await error_of(await client.post(
            f"{V}/servers", json=create, headers=at(version)))
        assert (status, key) == (400, "badRequest"), version
        assert message.startswith("Invalid input for field/attribute server. ")
        assert message.endswith("Additional properties are not allowed ('personality' was "
                                "unexpected)"), message


async def test_2_57_personality_limits_and_quotas_gone(client: Client) -> None:
    async def absolute(version: str) -> dict[str, Any]:
        resp = await client.get(f"{V}/limits", headers=at(version))
        assert resp.status == 200
        limits: dict[str, Any] = (await resp.json())["limits"]["absolute"]
        return limits

    before, after = await absolute("2.56"), await absolute("2.57")
    assert set(before) - set(after) == {"maxPersonality", "maxPersonalitySize"}
    assert set(after) <= set(before)
    gone = {"injected_file_content_bytes", "injected_file_path_bytes", "injected_files"}
    for path in ("", "/detail", "/defaults"):
        url = f"{V}/os-quota-sets/{MEMBER.project_id}{path}"
        old = (await (await client.get(url, headers=at("2.56"))).json())["quota_set"]
        new = (await (await client.get(url, headers=at("2.57"))).json())["quota_set"]
        assert set(old) - set(new) == gone and set(new) <= set(old), path
    url, h = f"{V}/os-quota-sets/{MEMBER.project_id}", at("2.57", "admin-token")
    refused = await client.put(url, json={"quota_set": {"injected_files": 3}}, headers=h)
    assert (await error_of(refused))[0] == 400
    accepted = await client.put(url, json={"quota_set": {"instances": 7}}, headers=h)
    assert accepted.status == 200
    assert not gone & set((await accepted.json())["quota_set"])


# -- 2.55 flavor description -----------------------------------------------------------

async def test_2_55_flavor_description(client: Client) -> None:
    admin = "admin-token"
    flavor = {"name": "described", "ram": 64, "vcpus": 1, "disk": 1, "id": "d1"}
    old = await client.post(f"{V}/flavors", json={"flavor": {**flavor, "description": "x"}},
                            headers=at("2.54", admin))
    assert (await error_of(old))[0] == 400
    created = await client.post(f"{V}/flavors",
                                json={"flavor": {**flavor, "description": "small one"}},
                                headers=at("2.55", admin))
    assert created.status == 200, await created.text()
    assert (await created.json())["flavor"]["description"] == "small one"

    async def one(version: str) -> dict[str, Any]:
        body: dict[str, Any] = await (await client.get(f"{V}/flavors/d1",
                                                       headers=at(version))).json()
        return body["flavor"]

    before, after = await one("2.54"), await one("2.55")
    assert set(after) - set(before) == {"description"} and set(before) <= set(after)
    for path in ("/flavors", "/flavors/detail"):
        listed = await (await client.get(f"{V}{path}", headers=at("2.55"))).json()
        assert {f["id"]: f["description"] for f in listed["flavors"]}["d1"] == "small one"
        listed = await (await client.get(f"{V}{path}", headers=at("2.54"))).json()
        assert all("description" not in f for f in listed["flavors"])

    put = {"flavor": {"description": "renamed"}}
    resp = await client.put(f"{V}/flavors/d1", json=put, headers=at("2.54", admin))
    assert (await error_of(resp))[0] == 404
    resp = await client.put(f"{V}/flavors/d1", json=put, headers=at("2.55", admin))
    assert resp.status == 200 and (await resp.json())["flavor"]["description"] == "renamed"
    assert (await one("2.55"))["description"] == "renamed"
    resp = await client.put(f"{V}/flavors/d1", json=put, headers=at("2.55"))
    assert (await error_of(resp))[0] == 403
    for bad in ({"flavor": {"name": "n"}}, {"flavor": {}},
                {"flavor": {"description": "a", "name": "n"}},
                {"flavor": {"description": "x" * 65536}}):
        resp = await client.put(f"{V}/flavors/d1", json=bad, headers=at("2.55", admin))
        assert (await error_of(resp))[0] == 400, bad
    resp = await client.put(f"{V}/flavors/nope", json=put, headers=at("2.55", admin))
    assert (await error_of(resp))[0] == 404
    cleared = await client.put(f"{V}/flavors/d1", json={"flavor": {"description": None}},
                               headers=at("2.55", admin))
    assert (await cleared.json())["flavor"]["description"] is None


# -- 2.47 the server's flavor embedded ---------------------------------------------------

async def test_2_47_embedded_flavor(stack: Stack, client: Client) -> None:
    await stack.store.set_extra_specs("42", {"hw:cpu_policy": "shared"})
    server = (await stack.boot("vm", MEMBER)).uuid
    await stack.store.set_extra_specs("42", {"later": "1"})  # the server keeps its copy
    flavor = await stack.store.get_flavor("42")
    before, after = await show(client, server, "2.46"), await show(client, server, "2.47")
    assert set(before) == set(after)
    assert set(before["flavor"]) == {"id", "links"} and before["flavor"]["id"] == "42"
    assert after["flavor"] == {"vcpus": flavor.vcpus, "ram": flavor.memory_mb,
                               "disk": flavor.root_gb, "ephemeral": flavor.ephemeral_gb,
                               "swap": flavor.swap, "original_name": flavor.name,
                               "extra_specs": {"hw:cpu_policy": "shared"}}
    listed = await (await client.get(f"{V}/servers/detail", headers=at("2.47"))).json()
    assert listed["servers"][0]["flavor"] == after["flavor"]
    updated = await client.put(f"{V}/servers/{server}", json={"server": {"name": "n"}},
                               headers=at("2.47"))
    assert (await updated.json())["server"]["flavor"] == after["flavor"]
    image = await an_image(stack)
    rebuilt = await rebuild(client, server, "2.47", imageRef=image)
    assert (await rebuilt.json())["server"]["flavor"] == after["flavor"]
    await stack.settle()
    old = await rebuild(client, server, "2.46", imageRef=image)
    assert set((await old.json())["server"]["flavor"]) == {"id", "links"}


# -- 2.58 instance actions in pages, with updated_at --------------------------------------

async def test_2_58_instance_action_pages(stack: Stack, client: Client, server: str) -> None:
    for action in ("lock", "unlock", "lock"):
        resp = await client.post(f"{V}/servers/{server}/action", json={action: None},
                                 headers=at("2.58"))
        assert resp.status == 202, await resp.text()
    base = f"{V}/servers/{server}/os-instance-actions"

    async def listing(version: str, query: str = "") -> Any:
        return await client.get(f"{base}{query}", headers=at(version))

    old = await (await listing("2.57", "?limit=1&foo=1")).json()
    assert len(old["instanceActions"]) == 4 and "links" not in old
    assert all("updated_at" not in a for a in old["instanceActions"])
    new = await (await listing("2.58")).json()
    assert [a["request_id"] for a in new["instanceActions"]] == [
        a["request_id"] for a in old["instanceActions"]]
    assert all(set(a) - {"updated_at"} == set(b) for a, b in
               zip(new["instanceActions"], old["instanceActions"]))
    ids = [a["request_id"] for a in new["instanceActions"]]
    first = await (await listing("2.58", "?limit=2")).json()
    assert [a["request_id"] for a in first["instanceActions"]] == ids[:2]
    [link] = first["links"]
    assert link["rel"] == "next" and f"marker={ids[1]}" in link["href"]
    rest = await (await listing("2.58", f"?marker={ids[1]}")).json()
    assert [a["request_id"] for a in rest["instanceActions"]] == ids[2:]
    assert "links" not in rest
    future = await (await listing("2.58", "?changes-since=2999-01-01T00:00:00Z")).json()
    assert future["instanceActions"] == []
    past = await (await listing("2.58", "?changes-since=2000-01-01T00:00:00Z")).json()
    assert len(past["instanceActions"]) == 4
    for query in ("?foo=1", "?marker=req-nope", "?limit=-1", "?limit=x",
                  "?changes-since=yesterday", "?limit=1&limit=2"):
        assert (await error_of(await listing("2.58", query)))[0] == 400, query
    one = f"{base}/{ids[0]}"
    shown_old = (await (await client.get(one, headers=at("2.57"))).json())["instanceAction"]
    shown_new = (await (await client.get(one, headers=at("2.58"))).json())["instanceAction"]
    assert set(shown_new) - set(shown_old) == {"updated_at"}


# -- 2.59 migrations in pages, newest first, with uuid ------------------------------------

async def test_2_59_migration_pages(stack: Stack, client: Client, server: str) -> None:
    made = [await stack.store.create_migration(server, "migration", "finished",
                                               stack.config.host, "node-2", "42", "42")
            for _ in range(3)]

    async def listing(version: str, query: str = "") -> Any:
        return await client.get(f"{V}/os-migrations{query}", headers=at(version, "admin-token"))

    old = await (await listing("2.58", "?limit=1&foo=1")).json()
    assert [m["id"] for m in old["migrations"]] == [m.id for m in made]
    assert all("uuid" not in m for m in old["migrations"])
    new = await (await listing("2.59")).json()
    assert [m["uuid"] for m in new["migrations"]] == [m.uuid for m in reversed(made)]
    assert all(set(m) - {"uuid"} == set(old["migrations"][0]) for m in new["migrations"])
    first = await (await listing("2.59", "?limit=2")).json()
    assert [m["id"] for m in first["migrations"]] == [made[2].id, made[1].id]
    [link] = first["migrations_links"]
    assert link["rel"] == "next" and f"marker={made[1].uuid}" in link["href"]
    rest = await (await listing("2.59", f"?marker={made[1].uuid}")).json()
    assert [m["id"] for m in rest["migrations"]] == [made[0].id]
    future = await (await listing("2.59", "?changes-since=2999-01-01T00:00:00Z")).json()
    assert future["migrations"] == []
    filtered = await (await listing("2.59", "?status=finished&hidden=0")).json()
    assert len(filtered["migrations"]) == 3
    for query in ("?foo=1", f"?marker={server}", "?limit=-1", "?changes-since=x"):
        assert (await error_of(await listing("2.59", query)))[0] == 400, query


async def test_2_59_server_migrations_show_uuid(stack: Stack, client: Client,
                                                server: str) -> None:
    made = await stack.store.create_migration(server, "live-migration", "queued",
                                              stack.config.host, "node-2", "42", "42")
    base = f"{V}/servers/{server}/migrations"
    for path, key in ((base, "migrations"), (f"{base}/{made.id}", "migration")):
        old = await (await client.get(path, headers=at("2.58", "admin-token"))).json()
        new = await (await client.get(path, headers=at("2.59", "admin-token"))).json()
        before = old[key][0] if key == "migrations" else old[key]
        after = new[key][0] if key == "migrations" else new[key]
        assert set(after) - set(before) == {"uuid"} and after["uuid"] == made.uuid


# -- 2.53 services and hypervisors by UUID ----------------------------------------------

def peer(name: str = "node-2") -> Member:
    return Member(name, "10.0.0.2:8774", MemberState.ALIVE, 1, {"az": "nova"}, 0.0, 1000.0)


async def services(client: Client, version: str) -> list[dict[str, Any]]:
    resp = await client.get(f"{V}/os-services", headers=at(version, "admin-token"))
    assert resp.status == 200
    listed: list[dict[str, Any]] = (await resp.json())["services"]
    return listed


async def test_2_53_service_ids_are_uuids(client: Client, node: StaticNode) -> None:
    node.members = [peer()]
    before, after = await services(client, "2.52"), await services(client, "2.53")
    assert [s["host"] for s in before] == [s["host"] for s in after]
    assert all(isinstance(s["id"], int) for s in before)
    for service in after:
        assert str(uuid.UUID(service["id"])) == service["id"]
        assert set(service) == set(before[0])
    assert len({s["id"] for s in after}) == 2
    again = await services(client, "2.53")
    assert [s["id"] for s in again] == [s["id"] for s in after]  # stable


async def test_2_53_put_by_uuid(client: Client, node: StaticNode, stack: Stack) -> None:
    node.members = [peer()]
    ids = {s["host"]: s["id"] for s in await services(client, "2.53")}
    h = at("2.53", "admin-token")

    async def put(ident: str, body: Any) -> Any:
        return await client.put(f"{V}/os-services/{ident}", json=body, headers=h)

    disabled = await put(ids["node-2"], {"status": "disabled", "disabled_reason": "maint"})
    assert disabled.status == 200, await disabled.text()
    shown = (await disabled.json())["service"]
    [listed] = [s for s in await services(client, "2.53") if s["host"] == "node-2"]
    assert set(shown) == set(listed) and shown["id"] == listed["id"]
    assert (shown["status"], shown["disabled_reason"], shown["forced_down"]) == (
        "disabled", "maint", False)
    down = await (await put(ids["node-2"], {"forced_down": True})).json()
    assert (down["service"]["state"], down["service"]["status"]) == ("down", "disabled")
    both = await (await put(ids["node-2"], {"status": "enabled", "forced_down": "no"})).json()
    assert (both["service"]["status"], both["service"]["disabled_reason"],
            both["service"]["forced_down"], both["service"]["state"]) == (
        "enabled", None, False, "up")
    mine = await put(ids[stack.config.host], {"status": "disabled"})
    assert (await mine.json())["service"]["status"] == "disabled"
    await stack.service.load()
    assert not stack.service.schedulable()
    assert await error_of(await put(ids["node-2"], {"status": "enabled",
                                                    "disabled_reason": "x"})) == (
        400, "badRequest", "Specifying 'disabled_reason' with status 'enabled' is invalid.")
    for body in ({}, {"disabled_reason": "x"}):
        assert await error_of(await put(ids["node-2"], body)) == (
            400, "badRequest",
            "No updates were requested. Fields 'status' or 'forced_down' should be specified.")
    for body in ({"status": "off"}, {"host": "node-2", "binary": "nova-compute",
                                     "status": "enabled"}, {"forced_down": "maybe"}):
        assert (await error_of(await put(ids["node-2"], body)))[0] == 400, body
    unknown = str(uuid.uuid4())
    assert await error_of(await put(unknown, {"status": "enabled"})) == (
        404, "itemNotFound", f"Service {unknown} could not be found.")
    member = await client.put(f"{V}/os-services/{ids['node-2']}", json={"status": "enabled"},
                              headers=at("2.53"))
    assert (await error_of(member))[0] == 403


async def test_2_53_old_routes_take_no_host_and_binary(client: Client,
                                                       node: StaticNode) -> None:
    node.members = [peer()]
    body = {"host": "node-2", "binary": "nova-compute"}
    for action in ("enable", "disable", "disable-log-reason", "force-down"):
        extra = {"disabled_reason": "r"} if action == "disable-log-reason" else \
            {"forced_down": True} if action == "force-down" else {}
        old = await client.put(f"{V}/os-services/{action}", json={**body, **extra},
                               headers=at("2.52", "admin-token"))
        assert old.status == 200, (action, await old.text())
        new = await client.put(f"{V}/os-services/{action}", json={"status": "enabled"},
                               headers=at("2.53", "admin-token"))
        assert await error_of(new) == (400, "badRequest", f"Invalid uuid {action}"), action


async def test_2_53_delete_service(client: Client, node: StaticNode, server: str,
                                   stack: Stack) -> None:
    node.members = [peer()]
    old = {s["host"]: s["id"] for s in await services(client, "2.52")}
    new = {s["host"]: s["id"] for s in await services(client, "2.53")}

    async def delete(version: str, ident: Any) -> Any:
        return await client.delete(f"{V}/os-services/{ident}", headers=at(version, "admin-token"))

    status, _, message = await error_of(await delete("2.53", new[stack.config.host]))
    assert (status, message) == (409, "Unable to delete compute service that is hosting "
                                      "instances. Migrate or delete the instances first.")
    assert (await error_of(await delete("2.53", new["node-2"])))[0] == 409
    assert (await error_of(await delete("2.52", old["node-2"])))[0] == 409
    assert await error_of(await delete("2.53", old["node-2"])) == (
        400, "badRequest", f"Invalid uuid {old['node-2']}")
    assert (await error_of(await delete("2.52", new["node-2"])))[0] == 400
    assert (await error_of(await delete("2.53", uuid.uuid4())))[0] == 404
    assert (await error_of(await delete("2.52", 12345)))[0] == 404
    assert (await client.delete(f"{V}/os-services/{new['node-2']}",
                                headers=at("2.53"))).status == 403


async def test_2_53_hypervisor_uuids_and_queries(client: Client, node: StaticNode,
                                                 server: str, stack: Stack) -> None:
    node.members = [peer()]

    async def get(path: str, version: str = "2.53") -> Any:
        return await client.get(f"{V}/os-hypervisors{path}", headers=at(version, "admin-token"))

    before = (await (await get("/detail", "2.52")).json())["hypervisors"]
    after = (await (await get("/detail")).json())["hypervisors"]
    assert [set(a) for a in after] == [set(b) for b in before]
    services_by_host = {s["host"]: s["id"] for s in await services(client, "2.53")}
    for hyp in after:
        uuid.UUID(hyp["id"])
        assert hyp["service"]["id"] == services_by_host[hyp["service"]["host"]]
    mine = [x for x in after if x["hypervisor_hostname"] == stack.config.host][0]
    shown = await get(f"/{mine['id']}")
    assert (await shown.json())["hypervisor"]["id"] == mine["id"]
    assert (await get(f"/{mine['id']}/uptime")).status == 200
    old_id = [b for b in before if b["hypervisor_hostname"] == stack.config.host][0]["id"]
    assert await error_of(await get(f"/{old_id}")) == (400, "badRequest",
                                                        f"Invalid uuid {old_id}")
    assert (await get(f"/{old_id}", "2.52")).status == 200
    assert (await error_of(await get(f"/{uuid.uuid4()}")))[0] == 404

    listed = (await (await get("?hypervisor_hostname_pattern=ode-2")).json())["hypervisors"]
    assert [x["hypervisor_hostname"] for x in listed] == ["node-2"]
    assert (await error_of(await get("?hypervisor_hostname_pattern=zzz")))[0] == 404
    assert (await error_of(await get("?hypervisor_hostname_pattern=n&limit=1")))[0] == 400
    assert (await error_of(await get("?foo=1")))[0] == 400
    assert (await get("?foo=1", "2.52")).status == 200
    with_servers = (await (await get("/detail?with_servers=true")).json())["hypervisors"]
    inst = await stack.store.get_instance(server)
    by_host = {x["hypervisor_hostname"]: x for x in with_servers}
    assert by_host[stack.config.host]["servers"] == [{"name": instance_name(inst),
                                                      "uuid": server}]
    assert "servers" not in by_host["node-2"]
    one = await (await get(f"/{mine['id']}?with_servers=1")).json()
    assert one["hypervisor"]["servers"][0]["uuid"] == server
    assert (await error_of(await get("?with_servers=maybe")))[0] == 400
    plain = (await (await get("/detail?with_servers=true", "2.52")).json())["hypervisors"]
    assert all("servers" not in x for x in plain)


# -- 2.50 quota classes: server group quotas in, network quotas out ---------------------

async def test_2_50_quota_class_keys(client: Client) -> None:
    url = f"{V}/os-quota-class-sets/default"

    async def shown(version: str) -> dict[str, Any]:
        resp = await client.get(url, headers=at(version, "admin-token"))
        assert resp.status == 200
        body: dict[str, Any] = (await resp.json())["quota_class_set"]
        return body

    before, after, later = await shown("2.49"), await shown("2.50"), await shown("2.57")
    network = {"fixed_ips", "floating_ips", "security_group_rules", "security_groups"}
    groups = {"server_groups", "server_group_members"}
    assert set(before) - set(after) == network and set(after) - set(before) == groups
    assert before["id"] == "default" and after["instances"] == before["instances"]
    assert set(after) - set(later) == {"injected_files", "injected_file_content_bytes",
                                       "injected_file_path_bytes"}
    assert (await error_of(await client.get(url, headers=at("2.50"))))[0] == 403
    for version, body in (("2.49", {"server_groups": 1}), ("2.50", {"floating_ips": 1}),
                          ("2.50", {"instances": 5})):
        resp = await client.put(url, json={"quota_class_set": body},
                                headers=at(version, "admin-token"))
        assert (await error_of(resp))[0] == 400, (version, body)
    same = await client.put(url, json={"quota_class_set": {}}, headers=at("2.50", "admin-token"))
    assert same.status == 200
    assert (await same.json())["quota_class_set"] == {k: v for k, v in after.items()
                                                      if k != "id"}


# -- 2.48 standard diagnostics --------------------------------------------------------------

async def test_2_48_diagnostics(stack: Stack, client: Client, server: str) -> None:
    url = f"{V}/servers/{server}/diagnostics"
    old = await client.get(url, headers=at("2.47", "admin-token"))
    assert old.status == 200, await old.text()
    blob = await old.json()
    assert "cpu0_time" in blob and blob["memory"] > 0 and "vda_read" in blob
    new = await client.get(url, headers=at("2.48", "admin-token"))
    body = await new.json()
    assert set(body) == {"state", "driver", "hypervisor", "hypervisor_os", "uptime",
                         "config_drive", "num_cpus", "num_nics", "num_disks", "cpu_details",
                         "nic_details", "disk_details", "memory_details"}
    assert (body["state"], body["driver"], body["hypervisor_os"]) == (
        "running", "libvirt", "linux")
    assert body["hypervisor"] == stack.config.libvirt.virt_type
    assert body["num_cpus"] == len(body["cpu_details"]) >= 1
    assert body["num_disks"] == len(body["disk_details"]) >= 1
    assert set(body["disk_details"][0]) == {"read_bytes", "read_requests", "write_bytes",
                                            "write_requests", "errors_count"}
    assert body["memory_details"]["maximum"] >= body["memory_details"]["used"] > 0
    assert body["config_drive"] is False and body["uptime"] is None
    for version in ("2.47", "2.48"):
        denied = await client.get(url, headers=at(version))
        assert (await error_of(denied))[0] == 403
    stop = await client.post(f"{V}/servers/{server}/action", json={"os-stop": None},
                             headers=at("2.48"))
    assert stop.status == 202
    await stack.settle()
    stopped = await client.get(url, headers=at("2.48", "admin-token"))
    assert await error_of(stopped) == (
        409, "conflictingRequest",
        f"Cannot 'get_diagnostics' instance {server} while it is in power_state shutdown")
    missing = await client.get(f"{V}/servers/{uuid.uuid4()}/diagnostics",
                               headers=at("2.48", "admin-token"))
    assert (await error_of(missing))[0] == 404


class RecordingCompute:
    """Accepts every server action and remembers what reached it."""

    def __init__(self) -> None:
        self.acts: list[tuple[str, dict[str, Any]]] = []

    async def act(self, ctx: RequestContext, instance_id: str, action: str,
                  params: dict[str, Any]) -> ActionResult:
        self.acts.append((action, params))
        return ActionResult()


async def test_2_56_migrate_host_reaches_the_service_unforced(stack: Stack) -> None:
    recorder = RecordingCompute()
    app_routes = compute_routes(cast(ComputeAPI, recorder), stack.config, None,
                                StaticNode(store=stack.store),
                                flavors=FlavorService(stack.store),
                                keypairs=KeypairService(stack.store))
    app = build_api(stack.config, app_routes, validate_token, identity_shaped)
    async with TestClient(TestServer(app)) as recording:
        url = f"{V}/servers/{uuid.uuid4()}/action"
        for version, body in (("2.55", None), ("2.56", None), ("2.56", {}),
                              ("2.56", {"host": None}), ("2.56", {"host": "node-2"})):
            resp = await recording.post(url, json={"migrate": body},
                                        headers=at(version, "admin-token"))
            assert resp.status == 202, (version, body, await resp.text())
    assert recorder.acts == [("migrate", {"host": None, "force": False})] * 4 + [
        ("migrate", {"host": "node-2", "force": False})]
