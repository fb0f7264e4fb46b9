"""Server requests refused before the compute service: actions, create, list, update.

Every request here must be answered by the API layer; the compute service
stand-in fails the test if it is reached.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from api_helpers import error_of, headers

from novad.api.compute import actions, schemas
from novad.states.table import ACTIONS

Client = TestClient[Any, Any]

SERVER = str(uuid.uuid4())
IMAGE = str(uuid.uuid4())
ACTION = f"/compute/v2.1/servers/{SERVER}/action"



# -- POST /servers/{id}/action ---------------------------------------------------------

async def test_unknown_action(client: Client) -> None:
    resp = await client.post(ACTION, json={"foo": None}, headers=headers())
    assert await error_of(resp) == (400, "badRequest", "There is no such action: foo")


@pytest.mark.parametrize("body", [{"pause": None, "unpause": None}, {}, [], "pause", 3, None])
async def test_action_body_must_have_exactly_one_key(client: Client, body: Any) -> None:
    resp = await client.post(ACTION, json=body, headers=headers())
    assert await error_of(resp) == (400, "badRequest", "Malformed request body")


@pytest.mark.parametrize("body", [
    {"reboot": {}}, {"reboot": None}, {"reboot": {"type": "WARM"}},
    {"reboot": {"type": "SOFT", "extra": 1}},
    {"resize": {}}, {"resize": {"flavorRef": ""}},
    {"createImage": {}}, {"createImage": {"name": " padded "}},
    {"createBackup": {"name": "b", "backup_type": "daily"}},
    {"createBackup": {"name": "b", "backup_type": "daily", "rotation": -1}},
    {"createBackup": {"name": "b", "backup_type": "daily", "rotation": "x"}},
    {"rebuild": {}}, {"rebuild": {"imageRef": "not-a-uuid"}},
    {"rebuild": {"imageRef": IMAGE, "description": "2.19+"}},
    {"os-migrateLive": {"host": None}},
    {"os-resetState": {"state": "stopped"}}, {"os-resetState": {}},
    {"rescue": {"rescue_image_ref": "x"}},
    {"lock": {"locked_reason": "2.73+"}},
    {"unshelve": {"availability_zone": "nova"}},
    {"pause": {"force": True}}, {"os-stop": 1},
    {"os-getConsoleOutput": None}, {"os-getConsoleOutput": {"length": "ten"}},
    {"os-getConsoleOutput": {"length": -2}},
    {"os-getVNCConsole": {}}, {"os-getVNCConsole": {"type": "spice-html5"}},
    {"evacuate": {"host": "bad host!"}},
    {"migrate": {"host": "other"}},
    {"changePassword": {}}, {"changePassword": {"adminPass": 42}},
    {"changePassword": {"adminPass": "x", "user": "root"}},
])
async def test_action_argument_validation(client: Client, body: dict[str, Any]) -> None:
    resp = await client.post(ACTION, json=body, headers=headers())
    status, key, message = await error_of(resp)
    assert (status, key) == (400, "badRequest"), body
    assert message.startswith("Invalid input for field/attribute"), message


async def test_action_newer_than_the_microversion_is_404(client: Client) -> None:
    resp = await client.post(ACTION, json={"trigger_crash_dump": None}, headers=headers())
    assert (await error_of(resp))[:2] == (404, "itemNotFound")


async def test_remote_consoles_is_not_served_at_2_1(client: Client) -> None:
    resp = await client.post(f"/compute/v2.1/servers/{SERVER}/remote-consoles",
                             json={"remote_console": {"protocol": "vnc", "type": "novnc"}},
                             headers=headers())
    assert resp.status == 404


def test_every_action_row_is_reachable_and_has_a_schema() -> None:
    for spec in ACTIONS:
        if spec.internal or spec.api_name in ("create", "delete"):
            continue
        assert spec.api_name in actions.DISPATCH, spec.api_name
        assert spec.api_name in schemas.ACTION_ARGUMENTS, spec.api_name
    assert actions.known_actions() == set(schemas.ACTION_ARGUMENTS)


def test_reboot_type_picks_the_row() -> None:
    assert actions.row_for("reboot", {"type": "hard"}) == "reboot_hard"
    assert actions.row_for("reboot", {"type": "Hard"}) == "reboot_hard"
    assert actions.row_for("reboot", {"type": "SOFT"}) == "reboot_soft"
    assert actions.row_for("os-stop", None) == "stop"
    assert actions.row_for("createImage", {"name": "x"}) == "snapshot"
    assert actions.row_for("os-migrateLive", {}) == "live_migrate"


def test_action_parameters() -> None:
    assert actions.PARAMS["resize"]({"flavorRef": 2}) == {"flavor_id": "2"}
    assert actions.PARAMS["createBackup"]({"name": "b", "backup_type": "daily",
                                           "rotation": "2"}) == {
        "name": "b", "backup_type": "daily", "rotation": 2, "metadata": {}}
    assert actions.PARAMS["os-migrateLive"]({"host": None, "block_migration": "false",
                                             "disk_over_commit": False}) == {
        "host": None, "block_migration": False}
    assert actions.PARAMS["rescue"](None) == {"admin_pass": None, "rescue_image_ref": None}
    assert actions.PARAMS["changePassword"]({"adminPass": "pw"}) == {"admin_pass": "pw"}


# -- POST /servers ---------------------------------------------------------------------

def server(**fields: Any) -> dict[str, Any]:
    return {"server": {"name": "vm", "flavorRef": "1", "imageRef": IMAGE, **fields}}


@pytest.mark.parametrize("body", [
    {"server": {"name": "vm", "imageRef": IMAGE}},
    {"server": {"flavorRef": "1", "imageRef": IMAGE}},
    server(name=""), server(name=" vm"), server(name="x" * 256),
    server(description="2.19+"), server(personality=[{"path": "/etc/motd"}]),
    server(personality=[{"path": "", "contents": ""}]), server(accessIPv4="10.0.0.1.1"),
    server(accessIPv6="notvalid"), server(security_groups=[{"name": ""}]),
    server(imageRef="not-a-uuid"), server(min_count=0), server(max_count="two"),
    server(metadata={"k": 1}), server(metadata={"k" * 256: "v"}),
    server(user_data="x" * 65536), server(networks="some"), server(config_drive="maybe"),
    server(block_device_mapping_v2=[{"source_type": "cinder"}]),
    server(**{"OS-DCF:diskConfig": "SOMETIMES"}), {"server": {}, "extra": 1}, {"server": []},
])
async def test_create_schema(client: Client, body: dict[str, Any]) -> None:
    resp = await client.post("/compute/v2.1/servers", json=body, headers=headers())
    status, key, message = await error_of(resp)
    assert (status, key) == (400, "badRequest"), body
    assert message.startswith("Invalid input for field/attribute"), message


@pytest.mark.parametrize(("body", "message"), [
    (server(min_count=3, max_count=2), "min_count must be <= max_count"),
    (server(user_data="not base64!"), "Userdata content cannot be decoded"),
    (server(imageRef=""), "Missing imageRef attribute"),
    ({"server": {"name": "vm", "flavorRef": "1"}}, "Missing imageRef attribute"),
    (server(imageRef="", block_device_mapping_v2=[
        {"source_type": "volume", "destination_type": "volume", "uuid": IMAGE,
         "boot_index": 0}]), None),
    (server(imageRef="", block_device_mapping_v2=[
        {"source_type": "image", "destination_type": "local", "uuid": IMAGE,
         "boot_index": 0},
        {"source_type": "blank", "destination_type": "local", "boot_index": -1}]), None),
])
async def test_create_semantic_checks(client: Client, body: dict[str, Any],
                                      message: str | None) -> None:
    resp = await client.post("/compute/v2.1/servers", json=body, headers=headers())
    status, key, text = await error_of(resp)
    assert (status, key) == (400, "badRequest")
    if message is None:
        assert text.startswith("Block Device Mapping is Invalid")
    else:
        assert text == message


async def test_create_metadata_quota_is_403(client: Client) -> None:
    body = server(metadata={f"k{i}": "v" for i in range(129)})
    resp = await client.post("/compute/v2.1/servers", json=body, headers=headers())
    assert (await error_of(resp))[:2] == (403, "forbidden")


def test_boot_image_from_block_device() -> None:
    from novad.api.compute.servers import boot_image, create_request
    bdm = [{"source_type": "image", "destination_type": "local", "uuid": IMAGE.upper(),
            "boot_index": "0"}]
    assert boot_image({"imageRef": "", "block_device_mapping_v2": bdm}) == IMAGE
    req = create_request({"name": "vm", "flavorRef": 2, "imageRef": IMAGE.replace("-", ""),
                          "min_count": "2", "config_drive": "true", "networks": "auto"})
    assert (req.image_id, req.flavor_id, req.min_count, req.max_count) == (IMAGE, "2", 2, 2)
    assert req.config_drive is True and req.networks == "auto"
    assert req.admin_pass and len(req.admin_pass) == 12


# -- GET /servers ----------------------------------------------------------------------

@pytest.mark.parametrize(("query", "status", "message"), [
    ("limit=-1", 400, "limit param must be positive"),
    ("limit=ten", 400, "limit param must be an integer"),
    ("changes-since=yesterday", 400, None),
    ("name=%5B", 400, None),
    ("all_tenants=1", 403, None),
    ("all_tenants=", 403, None),
])
async def test_list_query_refusals(client: Client, query: str, status: int,
                                   message: str | None) -> None:
    for path in ("/compute/v2.1/servers", "/compute/v2.1/servers/detail"):
        resp = await client.get(f"{path}?{query}", headers=headers())
        got_status, _, text = await error_of(resp)
        assert got_status == status, (path, query)
        if message:
            assert text == message


async def test_list_all_tenants_bad_value_for_admin(client: Client) -> None:
    resp = await client.get("/compute/v2.1/servers?all_tenants=maybe",
                            headers=headers("admin-token"))
    assert (await error_of(resp))[0] == 400


def test_list_filters_as_nova_reads_them() -> None:
    from multidict import MultiDict, MultiDictProxy

    from novad.api.compute.servers import list_filters
    from api_helpers import ADMIN, MEMBER

    def q(**kw: str) -> MultiDictProxy[str]:
        return MultiDictProxy(MultiDict(kw))

    member = list_filters(q(host="h", deleted="True", project_id="x", foo="bar",
                            status="ACTIVE"), MEMBER)
    assert (member.host, member.deleted, member.project_id, member.all_tenants) == (
        None, False, None, False)
    assert member.status == "ACTIVE" and member.limit == 1000
    admin = list_filters(q(all_tenants="1", tenant_id="p", host="h", deleted="true",
                           limit="5000", **{"changes-since": "2026-11-21T10:00:00Z"}), ADMIN)
    assert (admin.all_tenants, admin.project_id, admin.host, admin.deleted) == (
        True, "p", "h", True)
    assert admin.limit == 1000
    assert admin.changes_since == "2026-11-21T10:00:00.000000"
    own = list_filters(q(project_id="p"), ADMIN)
    assert own.project_id is None


# -- PUT /servers/{id} and metadata ---------------------------------------------------

@pytest.mark.parametrize("body", [{"server": {"description": "2.19+"}},
                                  {"server": {"name": ""}}, {"name": "x"}])
async def test_update_schema(client: Client, body: dict[str, Any]) -> None:
    resp = await client.put(f"/compute/v2.1/servers/{SERVER}", json=body, headers=headers())
    assert (await error_of(resp))[:2] == (400, "badRequest")


@pytest.mark.parametrize(("method", "path", "body"), [
    ("PUT", "/metadata", {"metadata": {"k": 1}}),
    ("POST", "/metadata", {"meta": {"k": "v"}}),
    ("PUT", "/metadata/k", {"meta": {"k": "v", "j": "w"}}),
    ("PUT", "/metadata/k", {"meta": {}}),
])
async def test_metadata_schema(client: Client, method: str, path: str,
                               body: dict[str, Any]) -> None:
    resp = await client.request(method, f"/compute/v2.1/servers/{SERVER}{path}", json=body,
                                headers=headers())
    assert (await error_of(resp))[:2] == (400, "badRequest")
