"""The boundaries from 2.76 to 2.96, over HTTP against a real compute stack
(real SQLite, real libvirt test driver): the same request at N-1 and N,
showing the difference Nova documents for N and nothing else.

Where novad has no service behind a version (volumes, accelerators, the
external-events callers) the test shows that both sides answer alike.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from api_helpers import ADMIN, MEMBER, error_of, headers
from stack_api import stack_client
from compute.conftest import Stack

from novad.context import RequestContext, new_request_id
from novad.store.models import Expect

Client = TestClient[Any, Any]
V = "/compute/v2.1"


def at(version: str, token: str = "member-token") -> dict[str, str]:
    return headers(token, **{"OpenStack-API-Version": f"compute {version}"})


def member() -> RequestContext:
    """The API tests' member, with a fresh request id (the stack records actions by it)."""
    return dataclasses.replace(MEMBER, request_id=new_request_id())


def admin() -> RequestContext:
    """The API tests' admin, with a fresh request id."""
    return dataclasses.replace(ADMIN, request_id=new_request_id())


def admin_at(version: str) -> dict[str, str]:
    return at(version, "admin-token")


@pytest.fixture
async def client(stack: Stack) -> AsyncIterator[Client]:
    async with stack_client(stack, migrations=stack.store) as test_client:
        yield test_client


@pytest.fixture
async def server(stack: Stack) -> str:
    return (await stack.boot("mv", member())).uuid


NOT_FOUND = (404, "itemNotFound", "The resource could not be found.")


# -- 2.76 / 2.82 external events: not served, so both sides are 404 ------------------

@pytest.mark.parametrize(("before", "after", "name"), [("2.75", "2.76", "power-update"),
                                                       ("2.81", "2.82",
                                                        "accelerator-request-bound")])
async def test_external_events_are_not_served(client: Client, server: str, before: str,
                                              after: str, name: str) -> None:
    event = {"events": [{"name": name, "server_uuid": server, "tag": "POWER_OFF"}]}
    for version in (before, after):
        resp = await client.post(f"{V}/os-server-external-events", json=event,
                                 headers=admin_at(version))
        assert await error_of(resp) == NOT_FOUND, version


# -- 2.79 / 2.85 / 2.89 volume attachments: not served, so both sides are 404 ---------

@pytest.mark.parametrize(("before", "after"), [("2.78", "2.79"), ("2.84", "2.85"),
                                               ("2.88", "2.89")])
async def test_volume_attachments_are_not_served(client: Client, server: str, before: str,
                                                 after: str) -> None:
    base = f"{V}/servers/{server}/os-volume_attachments"
    volume = "8a1c4b2e-6f3d-4e5a-9b7c-0d1e2f3a4b5c"
    body = {"volumeAttachment": {"volumeId": volume, "delete_on_termination": True}}
    for version in (before, after):
        for method, path, payload in (("GET", base, None), ("POST", base, body),
                                      ("GET", f"{base}/{volume}", None),
                                      ("PUT", f"{base}/{volume}", body)):
            resp = await client.request(method, path, json=payload, headers=at(version))
            assert await error_of(resp) == NOT_FOUND, (version, method, path)


# -- 2.81 image cache on an aggregate ---------------------------------------------------

async def test_2_81_aggregate_images(client: Client) -> None:
    path = f"{V}/os-aggregates/1/images"
    body = {"cache": [{"id": "0d5c4b2e-6f3d-4e5a-9b7c-0d1e2f3a4b5c"}]}
    assert await error_of(await client.post(path, json=body, headers=admin_at("2.80"))) \
        == NOT_FOUND
    assert await error_of(await client.post(path, json=body, headers=admin_at("2.81"))) == (
        404, "itemNotFound", "Aggregate 1 could not be found.")
    status, _, message = await error_of(await client.post(path, json=body, headers=at("2.81")))
    assert status == 403 and "compute:aggregates:images" in message
    for bad in ({"cache": []}, {"cache": [{"id": "nope"}]}, {},
                {"cache": [{"id": body["cache"][0]["id"], "x": 1}]}):
        assert (await error_of(await client.post(path, json=bad,
                                                 headers=admin_at("2.81"))))[0] == 400, bad
    twice = {"cache": body["cache"] * 2}
    assert await error_of(await client.post(path, json=twice, headers=admin_at("2.81"))) == (
        400, "badRequest", "Duplicate images in request")


# -- 2.88 slimmer hypervisors; statistics and uptime gone --------------------------------

RESOURCE_FIELDS = {"current_workload", "cpu_info", "vcpus", "vcpus_used", "free_disk_gb",
                   "local_gb", "local_gb_used", "disk_available_least", "free_ram_mb",
                   "memory_mb", "memory_mb_used", "running_vms"}


async def test_2_88_hypervisor_views(client: Client) -> None:
    async def views(version: str) -> list[dict[str, Any]]:
        resp = await client.get(f"{V}/os-hypervisors/detail", headers=admin_at(version))
        assert resp.status == 200
        listed: list[dict[str, Any]] = (await resp.json())["hypervisors"]
        shown = await client.get(f"{V}/os-hypervisors/{listed[0]['id']}",
                                 headers=admin_at(version))
        assert shown.status == 200
        return [listed[0], (await shown.json())["hypervisor"]]

    for old, new in zip(await views("2.87"), await views("2.88"), strict=True):
        assert RESOURCE_FIELDS <= set(old) and not RESOURCE_FIELDS & set(new)
        assert "uptime" not in old and "load average" in new["uptime"]
        assert set(old) - RESOURCE_FIELDS == set(new) - {"uptime"}


async def test_2_88_statistics_and_uptime_are_gone(client: Client) -> None:
    listed = await client.get(f"{V}/os-hypervisors", headers=admin_at("2.88"))
    ident = (await listed.json())["hypervisors"][0]["id"]
    for path in ("/os-hypervisors/statistics", f"/os-hypervisors/{ident}/uptime"):
        assert (await client.get(V + path, headers=admin_at("2.87"))).status == 200, path
        assert await error_of(await client.get(V + path, headers=admin_at("2.88"))) \
            == NOT_FOUND, path


# -- 2.92 key pairs: import only; @ and . in names ----------------------------------------

PUBLIC_KEY = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC8dn4Kcxb5f0nPRJtYd2c7hxr1e2QDYOu5FYXA"
              "Vb7Gj test@novad")


async def test_2_92_generation_is_gone(client: Client) -> None:
    generated = await client.post(f"{V}/os-keypairs", json={"keypair": {"name": "gen"}},
                                  headers=at("2.91"))
    assert generated.status == 201 and "private_key" in (await generated.json())["keypair"]
    status, _, message = await error_of(await client.post(
        f"{V}/os-keypairs", json={"keypair": {"name": "gen2"}}, headers=at("2.92")))
    assert status == 400 and "public_key" in message
    imported = await client.post(f"{V}/os-keypairs", json={"keypair": {
        "name": "imp", "public_key": PUBLIC_KEY}}, headers=at("2.92"))
    body = (await imported.json())["keypair"]
    assert imported.status == 201 and "private_key" not in body
    assert body["public_key"] == PUBLIC_KEY and body["type"] == "ssh"


async def test_2_92_at_and_dot_in_names(client: Client) -> None:
    spec = {"name": "me@host.example", "public_key": PUBLIC_KEY}
    status, _, message = await error_of(await client.post(
        f"{V}/os-keypairs", json={"keypair": spec}, headers=at("2.91")))
    assert (status, message) == (400, "Keypair data is invalid: Keypair name contains "
                                      "unsafe characters")
    created = await client.post(f"{V}/os-keypairs", json={"keypair": spec}, headers=at("2.92"))
    assert created.status == 201
    shown = await client.get(f"{V}/os-keypairs/me@host.example", headers=at("2.92"))
    assert shown.status == 200 and (await shown.json())["keypair"]["name"] == spec["name"]
    for bad in ("a/b", "a$b", "a:b"):
        status, _, _ = await error_of(await client.post(
            f"{V}/os-keypairs", json={"keypair": {**spec, "name": bad}}, headers=at("2.92")))
        assert status == 400, bad


# -- 2.80 who asked for a migration ------------------------------------------------------

async def test_2_80_migrations_show_and_filter_by_owner(client: Client, stack: Stack,
                                                        server: str) -> None:
    await stack.act(server, "resize", admin(), flavor_id="1")
    [resize] = await stack.store.search_migrations(instance_uuid=server)
    assert (resize.user_id, resize.project_id) == (ADMIN.user_id, ADMIN.project_id)
    await stack.store.create_migration(server, "live-migration", "queued", "node-1",
                                       user_id="someone", project_id="elsewhere")

    async def listed(version: str, query: str = "") -> list[dict[str, Any]]:
        resp = await client.get(f"{V}/os-migrations{query}", headers=admin_at(version))
        assert resp.status == 200
        found: list[dict[str, Any]] = (await resp.json())["migrations"]
        return found

    old, new = await listed("2.79"), await listed("2.80")
    assert all("user_id" not in m and "project_id" not in m for m in old)
    assert [(m["user_id"], m["project_id"]) for m in new] == [  # newest first (2.59)
        ("someone", "elsewhere"), (ADMIN.user_id, ADMIN.project_id)]
    assert [{k: v for k, v in m.items() if k not in ("user_id", "project_id")}
            for m in new] == old
    for query in ("?user_id=someone", "?project_id=elsewhere",
                  "?user_id=someone&project_id=elsewhere"):
        # 2.59's strict query refuses them until 2.80 names them
        resp = await client.get(f"{V}/os-migrations{query}", headers=admin_at("2.79"))
        assert resp.status == 400, query
        assert [m["user_id"] for m in await listed("2.80", query)] == ["someone"], query
    assert await listed("2.80", "?user_id=someone&project_id=admin-project") == []


async def test_2_80_server_migrations_show_owner(client: Client, stack: Stack,
                                                 server: str) -> None:
    live = await stack.store.create_migration(server, "live-migration", "queued", "node-1",
                                              user_id="someone", project_id="elsewhere")
    base = f"{V}/servers/{server}/migrations"
    for path, key in ((base, "migrations"), (f"{base}/{live.id}", "migration")):
        old = await (await client.get(path, headers=admin_at("2.79"))).json()
        new = await (await client.get(path, headers=admin_at("2.80"))).json()
        one_old = old[key][0] if key == "migrations" else old[key]
        one_new = new[key][0] if key == "migrations" else new[key]
        assert "user_id" not in one_old and "project_id" not in one_old
        assert one_new == {**one_old, "user_id": "someone", "project_id": "elsewhere"}


# -- 2.84 a failed event's details ----------------------------------------------------------

async def test_2_84_failed_event_details(client: Client, stack: Stack) -> None:
    await stack.service.set(True, "maintenance")
    refused = await stack.boot("refused", member())
    await stack.service.set(False)
    actions = await client.get(f"{V}/servers/{refused.uuid}/os-instance-actions",
                               headers=admin_at("2.84"))
    [create] = (await actions.json())["instanceActions"]
    path = f"{V}/servers/{refused.uuid}/os-instance-actions/{create['request_id']}"
    old = (await (await client.get(path, headers=admin_at("2.83"))).json())["instanceAction"]
    new = (await (await client.get(path, headers=admin_at("2.84"))).json())["instanceAction"]
    [old_event], [new_event] = old["events"], new["events"]
    assert old_event["result"] == "Error" and "details" not in old_event
    assert new_event == {**old_event, "details": "No valid host was found. There are not "
                                                 "enough hosts available."}
    assert {k: v for k, v in new.items() if k != "events"} == \
        {k: v for k, v in old.items() if k != "events"}


async def test_2_84_successful_events_have_null_details(client: Client, stack: Stack,
                                                        server: str) -> None:
    actions = await client.get(f"{V}/servers/{server}/os-instance-actions",
                               headers=admin_at("2.84"))
    [create] = (await actions.json())["instanceActions"]
    shown = await client.get(f"{V}/servers/{server}/os-instance-actions/"
                             f"{create['request_id']}", headers=admin_at("2.84"))
    events = (await shown.json())["instanceAction"]["events"]
    assert events and all(e["result"] == "Success" and e["details"] is None for e in events)


# -- 2.83 attribute filters for everyone ---------------------------------------------------

async def test_2_83_attribute_filters_for_non_admins(client: Client, stack: Stack) -> None:
    running = await stack.boot("running", member())
    stopped = await stack.boot("stopped", member())
    await stack.act(stopped.uuid, "stop", member())
    await stack.store.write(stopped.uuid, Expect(), {"availability_zone": "zone-b",
                                                     "key_name": "mykey",
                                                     "config_drive": True})
    both = {running.uuid, stopped.uuid}

    async def names(version: str, query: str, token: str = "member-token") -> set[str]:
        resp = await client.get(f"{V}/servers/detail?{query}", headers=at(version, token))
        assert resp.status == 200, await resp.text()
        return {s["id"] for s in (await resp.json())["servers"]}

    for query in ("vm_state=stopped", "power_state=4", "availability_zone=^zone-",
                  "key_name=my", "config_drive=true",
                  "vm_state=active&vm_state=stopped&power_state=4"):
        assert await names("2.82", query) == both, query  # ignored for members below 2.83
        assert await names("2.83", query) == {stopped.uuid}, query
        assert await names("2.82", query + "&all_tenants=1", "admin-token") \
            == {stopped.uuid}, query  # admins' at every version
    assert await names("2.83", f"user_id={MEMBER.user_id}") == both
    assert await names("2.83", "user_id=nobody") == set()
    assert await names("2.83", "progress=0") == both
    assert await names("2.83", "created_at=^2") == both
    assert await names("2.83", "launched_at=(") == set()  # a bad pattern matches nothing
    assert await names("2.83", "terminated_at=.") == set()  # never terminated


# -- 2.78 server topology ----------------------------------------------------------------

async def test_2_78_topology(client: Client, server: str) -> None:
    path = f"{V}/servers/{server}/topology"
    assert await error_of(await client.get(path, headers=at("2.77"))) == NOT_FOUND
    for headers_ in (at("2.78"), admin_at("2.78")):
        resp = await client.get(path, headers=headers_)
        assert (resp.status, await resp.json()) == (200, {"nodes": [], "pagesize_kb": None})
    status, _, _ = await error_of(await client.get(path, headers=at("2.78", "other-token")))
    assert status == 404  # another project's server


# -- 2.90 / 2.94 hostname --------------------------------------------------------------

@pytest.fixture
async def image(stack: Stack, tmp_path: Path) -> str:
    data = tmp_path / "disk.raw"
    data.write_bytes(b"\0" * 512)
    made = await stack.images.create_from_file(MEMBER.project_id, "img", data, "raw", {},
                                               visibility="public")
    return str(made.id)


def create_body(image: str, **server: Any) -> dict[str, Any]:
    # (networks is required from 2.37; every version here is past it)
    return {"server": {"name": "Named Server", "flavorRef": "42", "imageRef": image,
                       "networks": "auto", **server}}


async def shown(client: Client, server: str, version: str,
                token: str = "member-token") -> dict[str, Any]:
    resp = await client.get(f"{V}/servers/{server}", headers=at(version, token))
    assert resp.status == 200
    body: dict[str, Any] = (await resp.json())["server"]
    return body


async def test_2_90_hostname_on_create(client: Client, stack: Stack, image: str) -> None:
    status, _, message = await error_of(await client.post(
        f"{V}/servers", json=create_body(image, hostname="web-01"), headers=at("2.89")))
    assert status == 400 and "hostname" in message
    resp = await client.post(f"{V}/servers", json=create_body(image, hostname="web-01"),
                             headers=at("2.90"))
    assert resp.status == 202, await resp.text()
    server = (await resp.json())["server"]["id"]
    await stack.settle()
    assert "OS-EXT-SRV-ATTR:hostname" not in await shown(client, server, "2.89")
    assert (await shown(client, server, "2.89", "admin-token"))[
        "OS-EXT-SRV-ATTR:hostname"] == "web-01"
    assert (await shown(client, server, "2.90"))["OS-EXT-SRV-ATTR:hostname"] == "web-01"


async def test_2_90_hostname_derived_from_the_name_is_shown_to_everyone(
        client: Client, server: str) -> None:
    assert (await shown(client, server, "2.90"))["OS-EXT-SRV-ATTR:hostname"] == "mv"


@pytest.mark.parametrize("bad", ["a", "-web", "web-", "web_01", "web.example.org", "x" * 64])
async def test_2_90_hostname_is_one_label(client: Client, image: str, bad: str) -> None:
    status, _, message = await error_of(await client.post(
        f"{V}/servers", json=create_body(image, hostname=bad), headers=at("2.90")))
    assert status == 400 and "hostname" in message, bad


async def test_2_90_one_hostname_for_many_servers_is_refused(client: Client,
                                                             image: str) -> None:
    status, _, message = await error_of(await client.post(
        f"{V}/servers", json=create_body(image, hostname="web", min_count=2), headers=at("2.90")))
    assert status == 400 and "multiple instances" in message


async def test_2_90_hostname_on_update(client: Client, server: str) -> None:
    path = f"{V}/servers/{server}"
    body = {"server": {"hostname": "renamed"}}
    assert (await error_of(await client.put(path, json=body, headers=at("2.89"))))[0] == 400
    resp = await client.put(path, json=body, headers=at("2.90"))
    assert resp.status == 200
    assert (await resp.json())["server"]["OS-EXT-SRV-ATTR:hostname"] == "renamed"
    assert (await shown(client, server, "2.90"))["OS-EXT-SRV-ATTR:hostname"] == "renamed"


async def test_2_90_hostname_on_rebuild(client: Client, stack: Stack, server: str,
                                        image: str) -> None:
    path = f"{V}/servers/{server}/action"
    body = {"rebuild": {"imageRef": image, "hostname": "rebuilt"}}
    status, _, message = await error_of(await client.post(path, json=body, headers=at("2.89")))
    assert status == 400 and "hostname" in message
    resp = await client.post(path, json=body, headers=at("2.90"))
    assert resp.status == 202, await resp.text()
    assert (await resp.json())["server"]["OS-EXT-SRV-ATTR:hostname"] == "rebuilt"
    await stack.settle()
    assert (await shown(client, server, "2.90"))["OS-EXT-SRV-ATTR:hostname"] == "rebuilt"
    bad = {"rebuild": {"imageRef": image, "hostname": "a.b"}}
    assert (await error_of(await client.post(path, json=bad, headers=at("2.93"))))[0] == 400


async def test_2_94_hostname_may_be_an_fqdn(client: Client, stack: Stack, server: str,
                                            image: str) -> None:
    fqdn = "web-01.example.org"
    for method, path, body in (
            ("POST", f"{V}/servers", create_body(image, hostname=fqdn)),
            ("PUT", f"{V}/servers/{server}", {"server": {"hostname": fqdn}})):
        before = await client.request(method, path, json=body, headers=at("2.93"))
        assert (await error_of(before))[0] == 400, method
        after = await client.request(method, path, json=body, headers=at("2.94"))
        assert after.status < 300, (method, await after.text())
    await stack.settle()
    assert (await shown(client, server, "2.94"))["OS-EXT-SRV-ATTR:hostname"] == fqdn
    for bad in ("", "web/01", "web 01", "x" * 256):
        resp = await client.put(f"{V}/servers/{server}", json={"server": {"hostname": bad}},
                                headers=at("2.94"))
        assert (await error_of(resp))[0] == 400, bad


# -- 2.96 pinned_availability_zone ------------------------------------------------------

async def test_2_96_pinned_availability_zone(client: Client, stack: Stack, server: str,
                                             image: str) -> None:
    resp = await client.post(f"{V}/servers", json=create_body(image, availability_zone="nova"),
                             headers=at("2.96"))
    assert resp.status == 202, await resp.text()
    pinned = (await resp.json())["server"]["id"]
    await stack.settle()
    for uuid, zone in ((pinned, "nova"), (server, None)):
        old, new = await shown(client, uuid, "2.95"), await shown(client, uuid, "2.96")
        assert "pinned_availability_zone" not in old
        assert new == {**old, "pinned_availability_zone": zone}
    listed = await client.get(f"{V}/servers/detail", headers=at("2.96"))
    assert {s["id"]: s["pinned_availability_zone"]
            for s in (await listed.json())["servers"]} == {pinned: "nova", server: None}


# -- 2.77 / 2.91 unshelve to a zone or a host; a null zone unpins ------------------------

@pytest.fixture
async def offloaded(stack: Stack) -> str:
    inst = await stack.boot("offloaded", member())
    await stack.act(inst.uuid, "shelve", member())
    await stack.act(inst.uuid, "shelve_offload", member())
    return inst.uuid


async def unshelve(client: Client, server: str, version: str, argument: Any,
                   token: str = "member-token") -> Any:
    return await client.post(f"{V}/servers/{server}/action", json={"unshelve": argument},
                             headers=at(version, token))


async def test_2_77_unshelve_to_a_zone(client: Client, stack: Stack, offloaded: str) -> None:
    argument = {"availability_zone": "nova"}
    status, _, message = await error_of(await unshelve(client, offloaded, "2.76", argument))
    assert status == 400 and "availability_zone" in message
    assert await error_of(await unshelve(client, offloaded, "2.77", {
        "availability_zone": "nowhere"})) == (
        400, "badRequest", "The requested availability zone is not available")
    resp = await unshelve(client, offloaded, "2.77", argument)
    assert resp.status == 202, await resp.text()
    await stack.settle()
    server = await shown(client, offloaded, "2.96")
    assert server["status"] == "ACTIVE" and server["pinned_availability_zone"] == "nova"


async def test_2_77_a_zone_needs_an_offloaded_server(client: Client, stack: Stack,
                                                     server: str) -> None:
    await stack.act(server, "shelve", member())
    status, _, message = await error_of(await unshelve(client, server, "2.77", {
        "availability_zone": "nova"}))
    assert status == 409 and "must be SHELVED_OFFLOADED" in message
    assert (await unshelve(client, server, "2.77", None)).status == 202


async def test_2_77_a_zone_this_node_is_not_in_finds_no_host(stack: Stack,
                                                             offloaded: str) -> None:
    inst = await stack.act(offloaded, "unshelve", member(), availability_zone="zone-b")
    assert (inst.vm_state.value, inst.task_state) == ("shelved_offloaded", None)
    fault = await stack.store.latest_fault(offloaded)
    assert fault is not None and fault.message.startswith("No valid host was found.")
    assert "pinned_availability_zone" not in inst.system_metadata


async def test_2_91_unshelve_to_a_host(client: Client, stack: Stack, offloaded: str) -> None:
    host = {"host": stack.config.host}
    status, _, message = await error_of(await unshelve(client, offloaded, "2.90", host))
    assert status == 400 and "host" in message
    status, _, message = await error_of(await unshelve(client, offloaded, "2.91", host))
    assert status == 403 and "unshelve_to_host" in message
    assert await error_of(await unshelve(client, offloaded, "2.91", {"host": "elsewhere"},
                                         "admin-token")) == (
        400, "badRequest", "Compute host elsewhere could not be found.")
    resp = await unshelve(client, offloaded, "2.91", {**host, "availability_zone": "nova"},
                          "admin-token")
    assert resp.status == 202, await resp.text()
    await stack.settle()
    assert (await shown(client, offloaded, "2.91"))["status"] == "ACTIVE"


async def test_2_91_a_null_zone_unpins(client: Client, stack: Stack, offloaded: str) -> None:
    inst = await stack.store.get_instance(offloaded)
    await stack.store.write(offloaded, Expect(), {"system_metadata": {
        **inst.system_metadata, "pinned_availability_zone": "nova"}})
    unpin = {"availability_zone": None}
    assert (await error_of(await unshelve(client, offloaded, "2.90", unpin)))[0] == 400
    resp = await unshelve(client, offloaded, "2.91", unpin)
    assert resp.status == 202, await resp.text()
    await stack.settle()
    server = await shown(client, offloaded, "2.96")
    assert server["status"] == "ACTIVE" and server["pinned_availability_zone"] is None


# -- 2.86 extra spec validation -----------------------------------------------------------

GOOD_SPECS = {"hw:cpu_policy": "dedicated", "hw:numa_nodes": "2", "hw:numa_cpus.0": "0-1",
              "hw:mem_page_size": "2MB", "hw:boot_menu": "true", "hw_rng:allowed": "False",
              "hw_video:ram_max_mb": "64", "os:secure_boot": "required",
              "quota:disk_read_bytes_sec": "10240", "resources:VCPU": "2",
              "resources1:CUSTOM_GPU": "1", "trait:HW_CPU_X86_AVX2": "required",
              "aggregate_instance_extra_specs:ssd": "true", "capabilities:cpu_arch": "x86_64",
              "pci_passthrough:alias": "a1:2", "accel:device_profile": "fpga",
              "group_policy": "isolate", "custom:anything": "goes", "no_namespace": "x",
              "vmware:hw_version": "vmx-13"}


async def test_2_86_known_specs_pass(client: Client) -> None:
    resp = await client.post(f"{V}/flavors/42/os-extra_specs",
                             json={"extra_specs": GOOD_SPECS}, headers=admin_at("2.86"))
    assert (resp.status, await resp.json()) == (200, {"extra_specs": GOOD_SPECS})


@pytest.mark.parametrize(("key", "value", "said"), [
    ("hw:cpu_policy", "bogus", "one of dedicated, shared, mixed"),
    ("hw:numa_nodes", "0", "an integer of at least 1"),
    ("hw:numa_nodes", "two", "an integer"),
    ("hw:boot_menu", "maybe", "a boolean"),
    ("resources:VCPU", "-1", "an integer of at least 0"),
    ("trait:HW_CPU_X86_AVX2", "wanted", "one of required, forbidden"),
    ("hw:mem_page_size", "huge", "small, large, any"),
    ("group_policy", "all", "one of none, isolate"),
])
async def test_2_86_bad_values_are_refused(client: Client, key: str, value: str,
                                           said: str) -> None:
    path, body = f"{V}/flavors/42/os-extra_specs", {"extra_specs": {key: value}}
    assert (await client.post(path, json=body, headers=admin_at("2.85"))).status == 200
    status, _, message = await error_of(await client.post(path, json=body,
                                                          headers=admin_at("2.86")))
    assert status == 400 and key in message and said in message, message
    one = await client.put(f"{path}/{key}", json={key: value}, headers=admin_at("2.86"))
    assert (await error_of(one))[0] == 400
    assert (await client.put(f"{path}/{key}", json={key: value},
                             headers=admin_at("2.85"))).status == 200


async def test_2_86_unknown_specs_of_known_namespaces(client: Client) -> None:
    path = f"{V}/flavors/42/os-extra_specs"
    for key in ("hw:no_such_thing", "hw_rng:speed", "quota:everything", "trait:lower_case"):
        body = {"extra_specs": {key: "1"}}
        assert (await client.post(path, json=body, headers=admin_at("2.85"))).status == 200
        assert await error_of(await client.post(path, json=body, headers=admin_at("2.86"))) \
            == (400, "badRequest", f"Validation failed; extra spec '{key}' does not appear "
                                   "to be a valid extra spec.")


async def test_2_86_the_policy_check_comes_first(client: Client) -> None:
    resp = await client.post(f"{V}/flavors/42/os-extra_specs",
                             json={"extra_specs": {"hw:cpu_policy": "bogus"}},
                             headers=at("2.86"))
    assert (await error_of(resp))[0] == 403


# -- 2.93 volume-backed rebuild: no server is, so rebuild is unchanged --------------------

async def test_2_93_rebuild_is_unchanged(client: Client, stack: Stack, server: str,
                                         image: str) -> None:
    bodies = []
    for version in ("2.92", "2.93"):
        resp = await client.post(f"{V}/servers/{server}/action",
                                 json={"rebuild": {"imageRef": image}}, headers=at(version))
        assert resp.status == 202, await resp.text()
        bodies.append((await resp.json())["server"])
        await stack.settle()
    assert set(bodies[0]) == set(bodies[1])
    assert (await shown(client, server, "2.93"))["status"] == "ACTIVE"
