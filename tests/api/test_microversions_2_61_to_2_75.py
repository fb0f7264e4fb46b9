"""The boundaries 2.61 to 2.75, over HTTP against a real compute stack (real
SQLite, real libvirt test driver): the same request at N-1 and N, showing
the difference Nova documents for N and nothing else.

Requests answered before the compute service (schemas of the moves) go to
a recorder, as in ``test_microversions_2_25_up``; servers of another,
unreachable node arrive in the store through the real replicator.
"""

from __future__ import annotations

import hashlib
import uuid as uuidlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from api_helpers import MEMBER, StaticNode, error_of, headers, identity_shaped, validate_token
from stack_api import stack_client
from compute.conftest import Stack, build_stack, close_stack

from novad.api.app import build_api
from novad.api.common import REPLICA
from novad.api.compute.misc import hypervisor_servers
from novad.api.compute import routes as compute_routes
from novad.app import SCHEMAS
from novad.cluster.members import Member, MemberState
from novad.cluster.replication import Replicator
from novad.cluster.scheduler import FilterScheduler, Flavor, HostState, RequestSpec
from novad.compute.flavors import FlavorService
from novad.compute.interface import ActionResult, ComputeAPI
from novad.compute.keypairs import KeypairService
from novad.compute.moves import Mover
from novad.compute.server_groups import ServerGroupService, scheduler_info
from novad.context import RequestContext
from novad.errors import NoValidHost
from novad.states.enums import PowerState, TaskState, VmState
from novad.store import Database, Store
from novad.store.models import Flavor as FlavorRow, Instance

Client = TestClient[Any, Any]
V = "/compute/v2.1"


def at(version: str, token: str = "member-token") -> dict[str, str]:
    return headers(token, **{"OpenStack-API-Version": f"compute {version}"})


def admin(version: str) -> dict[str, str]:
    return at(version, "admin-token")


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    s = await build_stack(tmp_path / "state")
    await s.db.migrate(list(SCHEMAS))
    try:
        yield s
    finally:
        await close_stack(s)


@pytest.fixture
def node(stack: Stack) -> StaticNode:
    """This node alone, under the compute stack's own host name."""
    return StaticNode(host=stack.config.host, store=stack.store,
                      members=[member(stack.config.host, MemberState.ALIVE)])


UNREACHABLE: set[str] = set()
"""Servers whose owner the forwarding middleware found dead (set by ``far_server``)."""


@web.middleware
async def dead_owner(request: web.Request, handler: Any) -> web.StreamResponse:
    """What the forwarding middleware decides for a read of a server whose
    node is dead: answer here, from the record as last replicated."""
    if request.method == "GET" and any(request.path.endswith(f"/servers/{u}")
                                       for u in UNREACHABLE):
        request[REPLICA] = True
    response: web.StreamResponse = await handler(request)
    return response


@pytest.fixture
async def client(stack: Stack, node: StaticNode) -> AsyncIterator[Client]:
    UNREACHABLE.clear()
    async with stack_client(stack, node, inner=[dead_owner], migrations=stack.store,
                            server_groups=ServerGroupService(stack.store)) as test_client:
        yield test_client


@pytest.fixture
async def image(stack: Stack, tmp_path: Path) -> str:
    """A small public raw image to boot from."""
    data = tmp_path / "disk.raw"
    data.write_bytes(b"\0" * 65536)
    made = await stack.images.create_from_file(MEMBER.project_id, "img", data, "raw", {},
                                               visibility="public")
    return made.id


@pytest.fixture
async def server(stack: Stack) -> str:
    return (await stack.boot("vm1", MEMBER)).uuid


async def show(client: Client, server: str, version: str, token: str = "member-token"
               ) -> dict[str, Any]:
    resp = await client.get(f"{V}/servers/{server}", headers=at(version, token))
    assert resp.status == 200, await resp.text()
    body: dict[str, Any] = (await resp.json())["server"]
    return body


def member(name: str, state: MemberState) -> Member:
    meta = {"az": "nova", "hypervisor_type": "QEMU", "enabled": True, "resources": {}}
    return Member(name, "10.0.0.9:8774", state, 1, meta, 0.0, 990.0)


def without(body: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in keys}


# -- 2.61 flavor extra_specs --------------------------------------------------------------

async def test_2_61_flavor_views_show_extra_specs(client: Client) -> None:
    resp = await client.post(f"{V}/flavors/1/os-extra_specs",
                             json={"extra_specs": {"hw:cpu_policy": "shared"}},
                             headers=admin("2.60"))
    assert resp.status == 200
    for path in ("/flavors/1", "/flavors/detail"):
        old = await (await client.get(V + path, headers=at("2.60"))).json()
        new = await (await client.get(V + path, headers=at("2.61"))).json()
        before = old["flavor"] if "flavor" in old else old["flavors"][0]
        after = new["flavor"] if "flavor" in new else new["flavors"][0]
        assert "extra_specs" not in before
        assert without(after, "extra_specs") == before
    shown = (await (await client.get(f"{V}/flavors/1", headers=at("2.61"))).json())["flavor"]
    assert shown["extra_specs"] == {"hw:cpu_policy": "shared"}
    brief = (await (await client.get(f"{V}/flavors", headers=at("2.61"))).json())["flavors"]
    assert "extra_specs" not in brief[0], "the brief list stays brief"
    body = {"flavor": {"name": "f61", "ram": 64, "vcpus": 1, "disk": 0}}
    created = await client.post(f"{V}/flavors", json=body, headers=admin("2.61"))
    assert (await created.json())["flavor"]["extra_specs"] == {}


# -- 2.62 instance action events show hostId and host --------------------------------------

async def test_2_62_events_show_host_id_and_host(client: Client, stack: Stack,
                                                 server: str) -> None:
    base = f"{V}/servers/{server}/os-instance-actions"
    listed = (await (await client.get(base, headers=admin("2.62"))).json())["instanceActions"]
    request_id = listed[-1]["request_id"]
    old = (await (await client.get(f"{base}/{request_id}", headers=admin("2.61"))).json())
    new = (await (await client.get(f"{base}/{request_id}", headers=admin("2.62"))).json())
    events_old, events_new = old["instanceAction"]["events"], new["instanceAction"]["events"]
    assert events_old and all("hostId" not in e and "host" not in e for e in events_old)
    expected = hashlib.sha224((MEMBER.project_id + stack.config.host).encode()).hexdigest()
    assert [(e["hostId"], e["host"]) for e in events_new] == \
        [(expected, stack.config.host)] * len(events_new)
    assert [without(e, "hostId", "host") for e in events_new] == events_old


# -- 2.63 trusted_image_certificates -------------------------------------------------------

IMAGE: dict[str, str] = {}


@pytest.fixture(autouse=True)
def _remember_image(request: pytest.FixtureRequest) -> None:
    IMAGE.clear()
    if "image" in request.fixturenames:
        IMAGE["id"] = request.getfixturevalue("image")


async def create(client: Client, version: str, token: str = "member-token",
                 **extra: Any) -> Any:
    # (from 2.37 networks is required; every version here is past it)
    body = {"server": {"name": "new", "flavorRef": "42", "networks": "auto",
                       "imageRef": IMAGE.get("id", str(uuidlib.uuid4())), **extra}}
    return await client.post(f"{V}/servers", json=body, headers=at(version, token))


async def test_2_63_trusted_certs_accepted_shown_and_verified(client: Client, stack: Stack,
                                                              image: str) -> None:
    certs = ["cert-a", "cert-b"]
    status, _, message = await error_of(await create(client, "2.62",
                                                     trusted_image_certificates=certs))
    assert status == 400 and "trusted_image_certificates" in message
    resp = await create(client, "2.63", trusted_image_certificates=certs)
    assert resp.status == 202, await resp.text()
    ident = (await resp.json())["server"]["id"]
    await stack.settle()
    shown = await show(client, ident, "2.63")
    assert shown["trusted_image_certificates"] == certs
    assert "trusted_image_certificates" not in await show(client, ident, "2.62")
    # Nova verifies the image against them whatever verify_glance_signatures
    # says; with no key manager to hold them, the build fails
    assert shown["status"] == "ERROR"
    assert "Signature verification" in shown["fault"]["message"]


async def test_2_63_trusted_certs_limits(client: Client) -> None:
    for bad in ([], ["x"] * 2, [f"c{i}" for i in range(51)], [""], "cert"):
        resp = await create(client, "2.63", trusted_image_certificates=bad)
        assert (await error_of(resp))[0] == 400, bad


async def test_2_63_rebuild_takes_and_clears_trusted_certs(client: Client, stack: Stack,
                                                           server: str, image: str) -> None:
    assert (await show(client, server, "2.63"))["trusted_image_certificates"] is None
    action = f"{V}/servers/{server}/action"

    async def rebuild(version: str, certs: Any) -> Any:
        body = {"rebuild": {"imageRef": image, "trusted_image_certificates": certs}}
        return await client.post(action, json=body, headers=at(version))

    status, _, message = await error_of(await rebuild("2.62", None))
    assert status == 400 and "trusted_image_certificates" in message
    cleared = await rebuild("2.63", None)
    assert cleared.status == 202, await cleared.text()
    assert (await cleared.json())["server"]["trusted_image_certificates"] is None
    await stack.settle()
    assert (await show(client, server, "2.63"))["status"] == "ACTIVE"
    given = await rebuild("2.63", ["cert-a"])
    assert (await given.json())["server"]["trusted_image_certificates"] == ["cert-a"]
    await stack.settle()
    shown = await show(client, server, "2.63")
    assert (shown["trusted_image_certificates"], shown["status"]) == (["cert-a"], "ERROR")


# -- 2.64 server group policy and rules ----------------------------------------------------

async def make_group(client: Client, version: str, **group: Any) -> Any:
    return await client.post(f"{V}/os-server-groups", json={"server_group": group},
                             headers=at(version))


async def test_2_64_policy_and_rules_replace_policies(client: Client) -> None:
    old = await make_group(client, "2.63", name="g", policies=["anti-affinity"])
    assert old.status == 200
    assert set((await old.json())["server_group"]) >= {"policies", "metadata"}
    assert (await error_of(await make_group(client, "2.63", name="g",
                                            policy="anti-affinity")))[0] == 400
    assert (await error_of(await make_group(client, "2.64", name="g",
                                            policies=["anti-affinity"])))[0] == 400
    new = await make_group(client, "2.64", name="g2", policy="anti-affinity",
                           rules={"max_server_per_host": 2})
    assert new.status == 200, await new.text()
    group = (await new.json())["server_group"]
    assert (group["policy"], group["rules"], group["members"]) == (
        "anti-affinity", {"max_server_per_host": 2}, [])
    assert "policies" not in group and "metadata" not in group
    shown = await client.get(f"{V}/os-server-groups/{group['id']}", headers=at("2.63"))
    assert (await shown.json())["server_group"]["policies"] == ["anti-affinity"]
    plain = await make_group(client, "2.64", name="g3", policy="soft-affinity")
    assert (await plain.json())["server_group"]["rules"] == {}


async def test_2_64_rules_are_for_anti_affinity_only(client: Client) -> None:
    resp = await make_group(client, "2.64", name="g", policy="affinity",
                            rules={"max_server_per_host": 2})
    assert await error_of(resp) == (400, "badRequest",
                                    "Only anti-affinity policy supports rules.")
    for rules in ({"max_server_per_host": 0}, {"max_server_per_host": "0"},
                  {"max_server_per_host": "x"}, {"other": 1}):
        resp = await make_group(client, "2.64", name="g", policy="anti-affinity", rules=rules)
        assert (await error_of(resp))[0] == 400, rules


async def test_2_64_max_server_per_host_is_enforced(client: Client, stack: Stack) -> None:
    resp = await make_group(client, "2.64", name="spread", policy="anti-affinity",
                            rules={"max_server_per_host": 2})
    group_id = (await resp.json())["server_group"]["id"]
    for index in range(2):
        await stack.store.add_server_group_member(group_id, f"member-{index}")
    group = await stack.store.get_server_group(group_id)
    info = scheduler_info(group, {"h1"})
    roomy = dict(vcpus=8, memory_mb=16384, local_gb=100, reserved_host_memory_mb=0)
    h1 = HostState(name="h1", instance_uuids=frozenset({"member-0"}), **roomy)
    full = HostState(name="h1", instance_uuids=frozenset({"member-0", "member-1"}), **roomy)
    h2 = HostState(name="h2", **roomy)
    scheduler = FilterScheduler(stack.config)
    spec = RequestSpec(instance_uuid="new", flavor=Flavor(vcpus=1, memory_mb=64, root_gb=0),
                       group=info)
    assert {h.name for h in scheduler.filter_hosts([h1, h2], spec)} == {"h1", "h2"}
    assert [h.name for h in scheduler.filter_hosts([full, h2], spec)] == ["h2"]
    with pytest.raises(NoValidHost):
        scheduler.filter_hosts([full], spec)


# -- 2.65 abort a queued or preparing live migration -----------------------------------------

async def test_2_65_abort_queued_live_migration(client: Client, stack: Stack,
                                                server: str) -> None:
    inst = await stack.store.get_instance(server)
    await stack.force_task(inst, TaskState.MIGRATING)
    migration = await stack.store.create_migration(server, "live-migration", "queued",
                                                   stack.config.host, None, "42", "42")
    mover = Mover(stack.config, stack.store, cast(Any, None), cast(Any, None),
                  cast(Any, None), stack.compute.runner, stack.supervisor)
    stack.compute.mover = mover
    path = f"{V}/servers/{server}/migrations/{migration.id}"
    status, _, message = await error_of(await client.delete(path, headers=admin("2.64")))
    assert status == 400 and "is queued. Cannot abort live migration" in message
    assert (await client.delete(path, headers=admin("2.65"))).status == 202
    assert migration.id in mover.aborting
    await stack.store.update_migration_status(migration.id, "completed")
    status, _, message = await error_of(await client.delete(path, headers=admin("2.65")))
    assert status == 400 and "is completed" in message


# -- 2.66 changes-before ---------------------------------------------------------------------

async def test_2_66_changes_before_on_servers(client: Client, stack: Stack,
                                              server: str) -> None:
    updated = (await stack.store.get_instance(server)).updated_at or ""
    early = "2000-01-01T00:00:00Z"
    for version, expected in (("2.65", [server]), ("2.66", [])):
        resp = await client.get(f"{V}/servers?changes-before={early}", headers=at(version))
        assert [s["id"] for s in (await resp.json())["servers"]] == expected, version
    resp = await client.get(f"{V}/servers?changes-before=2999-01-01T00:00:00Z",
                            headers=at("2.66"))
    assert [s["id"] for s in (await resp.json())["servers"]] == [server]
    assert updated, "the server was updated"
    both = f"{V}/servers?changes-since=2030-01-01T00:00:00Z&changes-before={early}"
    assert (await client.get(both, headers=at("2.65"))).status == 200
    assert await error_of(await client.get(both, headers=at("2.66"))) == (
        400, "badRequest",
        "The value of changes-since must be less than or equal to changes-before.")
    assert (await error_of(await client.get(f"{V}/servers?changes-before=soon",
                                            headers=at("2.66"))))[0] == 400


async def test_2_66_changes_before_on_actions_and_migrations(client: Client, stack: Stack,
                                                             server: str) -> None:
    await stack.store.create_migration(server, "migration", "finished", "a", "b", "42", "42")
    early = "changes-before=2000-01-01T00:00:00Z"
    for path, key in ((f"/servers/{server}/os-instance-actions", "instanceActions"),
                      ("/os-migrations", "migrations")):
        # 2.58/2.59 made both queries strict: an unknown parameter is 400 until 2.66
        refused = await client.get(f"{V}{path}?{early}", headers=admin("2.65"))
        assert (await error_of(refused))[0] == 400, path
        old = await (await client.get(f"{V}{path}", headers=admin("2.65"))).json()
        new = await (await client.get(f"{V}{path}?{early}", headers=admin("2.66"))).json()
        assert len(old[key]) >= 1 and new[key] == [], path
        late = await client.get(f"{V}{path}?changes-before=2999-01-01T00:00:00Z",
                                headers=admin("2.66"))
        assert (await late.json())[key] == old[key], path


# -- 2.67 volume_type; 2.72 ports with resource requests (nothing changes) -------------------

async def test_2_67_volume_type_in_block_device_mappings(client: Client) -> None:
    bdm = {"source_type": "image", "destination_type": "local", "boot_index": 0,
           "uuid": str(uuidlib.uuid4()), "volume_type": "fast"}
    status, _, message = await error_of(await create(client, "2.66",
                                                     block_device_mapping_v2=[bdm]))
    assert status == 400 and "volume_type" in message
    assert await error_of(await create(client, "2.67", block_device_mapping_v2=[bdm])) == (
        400, "badRequest", "Block Device Mapping is Invalid: Specifying a volume_type with "
        "destination_type=local is not supported.")
    volume = {**bdm, "source_type": "volume", "destination_type": "volume"}
    status, _, message = await error_of(await create(client, "2.67",
                                                     block_device_mapping_v2=[volume]))
    assert status == 400 and "boots only from an image" in message


async def test_2_72_create_answers_the_same(client: Client, stack: Stack,
                                            image: str) -> None:
    old, new = await create(client, "2.71"), await create(client, "2.72")
    assert (old.status, new.status) == (202, 202)
    assert set((await old.json())["server"]) == set((await new.json())["server"])
    await stack.settle()


# -- 2.68 force leaves evacuate and os-migrateLive ---------------------------------------------

@dataclass
class RecordingCompute:
    """Accepts every action and remembers the (row, params) it was given."""

    acts: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    async def act(self, ctx: RequestContext, instance_id: str, action: str,
                  params: dict[str, Any]) -> ActionResult:
        self.acts.append((action, params))
        return ActionResult()


@pytest.fixture
async def recording(stack: Stack) -> AsyncIterator[tuple[Client, RecordingCompute]]:
    compute = RecordingCompute()
    app_routes = compute_routes(cast(ComputeAPI, compute), stack.config, None,
                                StaticNode(store=stack.store),
                                flavors=FlavorService(stack.store),
                                keypairs=KeypairService(stack.store))
    app = build_api(stack.config, app_routes, validate_token, identity_shaped)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client, compute


async def test_2_68_force_is_gone(recording: tuple[Client, RecordingCompute]) -> None:
    client, compute = recording
    action = f"{V}/servers/{uuidlib.uuid4()}/action"
    moves = ({"evacuate": {"host": "n2", "force": True}},
             {"os-migrateLive": {"host": "n2", "block_migration": "auto", "force": True}})
    for body in moves:
        assert (await client.post(action, json=body, headers=admin("2.67"))).status < 300
        status, _, message = await error_of(await client.post(action, json=body,
                                                              headers=admin("2.68")))
        assert status == 400 and "force" in message, body
        key = next(iter(body))
        unforced = {key: {k: v for k, v in body[key].items() if k != "force"}}
        assert (await client.post(action, json=unforced, headers=admin("2.68"))).status < 300
    assert [p["force"] for _, p in compute.acts] == [True, False, True, False]


# -- 2.69 down-cell views of an unreachable node's servers and services ------------------------

@pytest.fixture
async def far_server(tmp_path: Path, stack: Stack, node: StaticNode) -> Instance:
    """A server of node-3, replicated here; node-3 is then dead in gossip."""
    here = Replicator(stack.db, "origin-here", stack.config.host)
    await here.install()
    db = await Database.open(tmp_path / "node-3.sqlite")
    await db.migrate(list(SCHEMAS))
    there = Replicator(db, "origin-node-3", "node-3")
    await there.install()
    inst = Instance(uuid=str(uuidlib.uuid4()), name="far", project_id=MEMBER.project_id,
                    user_id=MEMBER.user_id, host="node-3",
                    flavor=FlavorRow("42", "m1.nano", vcpus=1, memory_mb=64, root_gb=0),
                    image_ref="", vm_state=VmState.ACTIVE, task_state=None,
                    power_state=PowerState.RUNNING, availability_zone="nova",
                    created_at="2026-01-01T00:00:00.000000")
    created = await Store(db).create_instance(inst)
    while True:
        records, reached, complete = await there.changes_since(await here.have())
        await here.apply(records, reached)
        if complete:
            break
    await db.close()
    node.members = [member(stack.config.host, MemberState.ALIVE),
                    member("node-3", MemberState.DEAD)]
    UNREACHABLE.add(created.uuid)
    return created


async def test_2_69_servers_of_an_unreachable_node(client: Client, far_server: Instance,
                                                   server: str) -> None:
    far = far_server.uuid
    for path in ("/servers", "/servers/detail"):
        old = {s["id"]: s for s in (await (await client.get(
            V + path, headers=at("2.68"))).json())["servers"]}
        new = {s["id"]: s for s in (await (await client.get(
            V + path, headers=at("2.69"))).json())["servers"]}
        assert set(old) == set(new) == {far, server}
        assert old[far]["name"] == "far", "below 2.69: as last replicated"
        if "detail" in path:
            assert old[far]["status"] == "ACTIVE"
        keys = {"id", "status", "links"} | ({"tenant_id", "created"} if "detail" in path
                                             else set())
        assert set(new[far]) == keys and new[far]["status"] == "UNKNOWN", path
        assert new[server]["id"] == server and "name" in new[server], "this node's: in full"
    shown = await show(client, far, "2.69")
    assert set(shown) == {"id", "status", "tenant_id", "created", "links", "image", "flavor",
                          "OS-EXT-AZ:availability_zone", "OS-EXT-STS:power_state",
                          "user_id"}
    assert (shown["status"], shown["user_id"], shown["OS-EXT-STS:power_state"]) == (
        "UNKNOWN", MEMBER.user_id, 1)
    assert (await show(client, far, "2.68"))["name"] == "far", "below 2.69: as replicated"
    assert set(await show(client, far, "2.71")) >= {"server_groups"}


async def test_2_69_services_of_an_unreachable_node(client: Client, stack: Stack,
                                                    node: StaticNode,
                                                    far_server: Instance) -> None:
    old = (await (await client.get(f"{V}/os-services", headers=admin("2.68"))).json())
    new = (await (await client.get(f"{V}/os-services", headers=admin("2.69"))).json())
    by_host_old = {s["host"]: s for s in old["services"]}
    by_host_new = {s["host"]: s for s in new["services"]}
    assert by_host_old["node-3"]["state"] == "down"
    assert by_host_new["node-3"] == {"binary": "nova-compute", "host": "node-3",
                                     "status": "UNKNOWN"}
    assert by_host_new[stack.config.host] == {**by_host_old[stack.config.host],
                                              "updated_at": by_host_new[stack.config.host][
                                                  "updated_at"]}


# -- 2.70 device tags in interface and volume attachment views (neither is served) -------------

async def test_2_70_no_interfaces_or_volume_attachments(client: Client, server: str) -> None:
    for path in ("os-interface", "os-volume_attachments"):
        for version in ("2.69", "2.70"):
            resp = await client.get(f"{V}/servers/{server}/{path}", headers=at(version))
            assert resp.status == 404, (path, version)


# -- 2.71 server_groups in show, update and rebuild ------------------------------------------

async def test_2_71_server_groups_in_show_update_and_rebuild(client: Client, stack: Stack,
                                                              server: str, image: str) -> None:
    resp = await make_group(client, "2.64", name="g", policy="affinity")
    group_id = (await resp.json())["server_group"]["id"]
    await stack.store.add_server_group_member(group_id, server)
    old, new = await show(client, server, "2.70"), await show(client, server, "2.71")
    assert "server_groups" not in old and new["server_groups"] == [group_id]
    assert without(new, "server_groups") == old
    updated = await client.put(f"{V}/servers/{server}", json={"server": {"name": "vm1"}},
                               headers=at("2.71"))
    assert (await updated.json())["server"]["server_groups"] == [group_id]
    detail = await (await client.get(f"{V}/servers/detail", headers=at("2.71"))).json()
    assert "server_groups" not in detail["servers"][0], "not in the list, as Nova"
    action = f"{V}/servers/{server}/action"
    for version, expected in (("2.70", None), ("2.71", [group_id])):
        rebuilt = await client.post(action, json={"rebuild": {"imageRef": image}},
                                    headers=at(version))
        assert rebuilt.status == 202, await rebuilt.text()
        assert (await rebuilt.json())["server"].get("server_groups") == expected, version
        await stack.settle()


# -- 2.73 lock reason --------------------------------------------------------------------------

async def lock(client: Client, server: str, version: str, argument: Any) -> Any:
    return await client.post(f"{V}/servers/{server}/action", json={"lock": argument},
                             headers=at(version))


async def test_2_73_lock_with_a_reason(client: Client, stack: Stack, server: str) -> None:
    status, _, message = await error_of(await lock(client, server, "2.72",
                                                   {"locked_reason": "disk swap"}))
    assert status == 400 and "locked_reason" in message
    assert (await error_of(await lock(client, server, "2.73",
                                      {"locked_reason": "x" * 256})))[0] == 400
    assert (await error_of(await lock(client, server, "2.73", {"locked_reason": ""})))[0] == 400
    assert (await lock(client, server, "2.73", {"locked_reason": "disk swap"})).status == 202
    old, new = await show(client, server, "2.72"), await show(client, server, "2.73")
    assert (old["locked"], "locked_reason" in old) == (True, False)
    assert (new["locked"], new["locked_reason"]) == (True, "disk swap")
    assert without(new, "locked_reason") == old
    detail = (await (await client.get(f"{V}/servers/detail", headers=at("2.73"))).json())
    assert detail["servers"][0]["locked_reason"] == "disk swap"
    unlocked = await client.post(f"{V}/servers/{server}/action", json={"unlock": None},
                                 headers=at("2.73"))
    assert unlocked.status == 202
    assert (await show(client, server, "2.73"))["locked_reason"] is None
    assert (await lock(client, server, "2.73", None)).status == 202
    assert (await show(client, server, "2.73"))["locked_reason"] is None


async def test_2_73_locked_filter_and_sort(client: Client, stack: Stack, server: str) -> None:
    other = (await stack.boot("vm2", MEMBER)).uuid
    assert (await lock(client, server, "2.73", None)).status == 202

    async def ids(query: str, version: str = "2.73") -> list[str]:
        resp = await client.get(f"{V}/servers?{query}", headers=at(version))
        assert resp.status == 200, await resp.text()
        return [s["id"] for s in (await resp.json())["servers"]]

    assert await ids("locked=true", "2.72") == [other, server], "below 2.73: ignored"
    assert await ids("locked=true") == [server]
    assert await ids("locked=False") == [other]
    assert await ids("sort_key=locked&sort_dir=desc") == [server, other]
    assert await ids("sort_key=locked&sort_dir=asc") == [other, server]
    resp = await client.get(f"{V}/servers?locked=maybe", headers=at("2.73"))
    status, _, message = await error_of(resp)
    assert status == 400 and message.startswith("Unrecognized value 'maybe'")


# -- 2.74 host and hypervisor_hostname on create --------------------------------------------

async def test_2_74_requested_host(client: Client, stack: Stack, image: str) -> None:
    host = stack.config.host
    status, _, message = await error_of(await create(client, "2.73", "admin-token", host=host))
    assert status == 400 and "host" in message
    assert (await error_of(await create(client, "2.74", host=host)))[0] == 403
    assert await error_of(await create(client, "2.74", "admin-token", host="nowhere")) == (
        400, "badRequest", "Compute host nowhere could not be found.")
    resp = await create(client, "2.74", "admin-token", hypervisor_hostname=host,
                        availability_zone=f"nova:{host}")
    assert await error_of(resp) == (
        400, "badRequest", "One mechanism with host and/or hypervisor_hostname and another "
        "mechanism with zone:host:node are mutually exclusive.")
    made = await create(client, "2.74", "admin-token", host=host, hypervisor_hostname=host)
    assert made.status == 202, await made.text()
    await stack.settle()


def test_2_74_scheduler_still_filters_the_requested_host(stack: Stack) -> None:
    roomy = dict(vcpus=8, memory_mb=16384, local_gb=100, reserved_host_memory_mb=0)
    hosts = [HostState(name="h1", **roomy), HostState(name="h2", enabled=False, **roomy),
             HostState(name="h3", **roomy)]
    scheduler = FilterScheduler(stack.config)
    flavor = Flavor(vcpus=1, memory_mb=64, root_gb=0)
    spec = RequestSpec(instance_uuid="new", flavor=flavor, requested_host="h3")
    assert [h.name for h in scheduler.filter_hosts(hosts, spec)] == ["h3"]
    with pytest.raises(NoValidHost):
        scheduler.filter_hosts(hosts, RequestSpec(instance_uuid="new", flavor=flavor,
                                                  requested_host="h2"))
    assert RequestSpec.from_dict(spec.to_dict()).requested_host == "h3"


# -- 2.75 strict query parameters; flavor swap 0 -----------------------------------------------

async def test_2_75_unknown_server_list_parameters(client: Client, server: str) -> None:
    for query in ("foo=bar", "sort_key=vcpus"):
        assert (await client.get(f"{V}/servers?{query}", headers=at("2.74"))).status == 200
        for path in ("/servers", "/servers/detail"):
            resp = await client.get(f"{V}{path}?{query}", headers=at("2.75"))
            assert (await error_of(resp))[0] == 400, (path, query)
    status, _, message = await error_of(await client.get(f"{V}/servers?foo=bar",
                                                         headers=at("2.75")))
    assert message == "Additional properties are not allowed ('foo' was unexpected)"
    ok = await client.get(f"{V}/servers?name=vm&sort_key=display_name&limit=5",
                          headers=at("2.75"))
    assert ok.status == 200


async def test_2_75_flavor_swap_is_zero(client: Client) -> None:
    old = (await (await client.get(f"{V}/flavors/1", headers=at("2.74"))).json())["flavor"]
    new = (await (await client.get(f"{V}/flavors/1", headers=at("2.75"))).json())["flavor"]
    assert (old["swap"], new["swap"]) == ("", 0)
    assert without(new, "swap") == without(old, "swap")


def test_2_75_hypervisor_servers_always_shown_when_asked() -> None:
    # with_servers is 2.53's query; the view decides what 2.75 changes
    assert hypervisor_servers(None, True, (2, 74)) == {}
    assert hypervisor_servers([], True, (2, 75)) == {"servers": []}
    assert hypervisor_servers([], False, (2, 75)) == {}
    assert hypervisor_servers([("vm", "u1")], True, (2, 74)) == {
        "servers": [{"name": "vm", "uuid": "u1"}]}
