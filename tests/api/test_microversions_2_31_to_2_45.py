"""The boundaries from 2.31 to 2.45, over HTTP: the same request at N-1 and N,
showing the difference Nova documents for N (or, where novad has nothing to
show, that nothing differs).

Each test runs a whole daemon on a real port (libvirt's test driver, a real
SQLite store, the real identity service), so a request that passes the API
reaches the real compute service.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from novad.app import Node, running
from novad.config import load

UNKNOWN_NET = "3f0a1c6e-7d5b-4c2a-9e1f-0b8d6a4c2e11"


class Api:
    """A running daemon, its admin token and an HTTP session."""

    def __init__(self, node: Node, url: str, session: aiohttp.ClientSession,
                 token: str, project: str) -> None:
        self.node, self.url, self.session, self.token = node, url, session, token
        self.project = project
        self.image = ""

    async def call(self, method: str, path: str, version: str = "2.1", body: Any = None,
                   ) -> tuple[int, Any, aiohttp.typedefs.LooseHeaders]:
        """One compute request at ``version``: (status, JSON body or None, headers)."""
        hdrs = {"X-Auth-Token": self.token, "OpenStack-API-Version": f"compute {version}"}
        async with self.session.request(method, f"{self.url}/compute/v2.1{path}", json=body,
                                        headers=hdrs) as resp:
            raw = await resp.read()
            data = await resp.json(content_type=None) if raw else None
            return resp.status, data, resp.headers

    async def create(self, version: str, **server: Any) -> tuple[int, Any]:
        """``POST /servers`` of one ``m1.nano`` server of the test image."""
        body = {"server": {"name": "vm", "flavorRef": "42", "imageRef": self.image, **server}}
        status, data, _ = await self.call("POST", "/servers", version, body)
        return status, data

    async def boot(self, name: str = "vm") -> str:
        """An ACTIVE server; its id."""
        status, data = await self.create("2.1", name=name)
        assert status == 202, data
        await self.node.supervisor.drain()
        return str(data["server"]["id"])


def message(body: Any) -> str:
    """The message of a Nova error body (which has exactly one key)."""
    (value,) = body.values()
    return str(value["message"])


async def _admin_token(session: aiohttp.ClientSession, url: str, clouds: Path
                       ) -> tuple[str, str]:
    password = yaml.safe_load(clouds.read_text())["clouds"]["novad"]["auth"]["password"]
    auth = {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"name": "Default"}, "password": password}}},
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}
    async with session.post(f"{url}/identity/v3/auth/tokens", json={"auth": auth}) as resp:
        assert resp.status == 201
        body = await resp.json()
        return resp.headers["X-Subject-Token"], body["token"]["project"]["id"]


async def _image(api: Api) -> str:
    hdrs = {"X-Auth-Token": api.token}
    async with api.session.post(f"{api.url}/image/v2/images", headers=hdrs, json={
            "name": "img", "disk_format": "raw", "container_format": "bare"}) as resp:
        assert resp.status == 201
        image = await resp.json()
    async with api.session.put(f"{api.url}/image/v2/images/{image['id']}/file",
                               data=bytes(1 << 20), headers={
                                   **hdrs, "Content-Type": "application/octet-stream"}) as resp:
        assert resp.status == 204
    return str(image["id"])


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    config = load(None, {"DEFAULT": {"state_dir": str(tmp_path), "listen": "127.0.0.1:0"}})
    async with running(config) as (node, url), aiohttp.ClientSession() as session:
        api = Api(node, url, session,
                  *await _admin_token(session, url, tmp_path / "clouds.yaml"))
        api.image = await _image(api)
        yield api


# -- 2.31 os-console-auth-tokens shows every console type ----------------------------------

async def test_2_31_console_tokens_of_every_type(api: Api) -> None:
    assert api.node.consoles is not None
    issued = await api.node.consoles.tokens.authorize(
        instance_uuid="0a0b", host="127.0.0.1", port=5905, console_type="novnc",
        access_url_base=api.node.consoles.base_url(), ttl=600, user_id="u", project_id="p")
    path = f"/os-console-auth-tokens/{issued.token}"
    status, body, _ = await api.call("GET", path, "2.30")
    assert status == 401 and message(body) == \
        "The requested console type details are not accessible"
    status, body, _ = await api.call("GET", path, "2.31")
    assert status == 200 and body["console"]["port"] == 5905


# -- 2.32, 2.33, 2.37, 2.42 device tags on create ------------------------------------------

def _tagged_bdm(api: Api) -> list[dict[str, Any]]:
    return [{"source_type": "image", "destination_type": "local", "uuid": api.image,
             "boot_index": 0, "tag": "root"}]


@pytest.mark.parametrize(("version", "accepted"), [
    ("2.31", False), ("2.32", True), ("2.33", False), ("2.41", False), ("2.42", True)])
async def test_block_device_tag_by_version(api: Api, version: str, accepted: bool) -> None:
    networks = "auto" if version >= "2.37" else []
    status, body = await api.create(version, imageRef="", networks=networks,
                                    block_device_mapping_v2=_tagged_bdm(api))
    if accepted:
        assert status == 202, body
    else:
        assert status == 400 and "tag" in message(body), body


@pytest.mark.parametrize(("version", "tag_allowed"), [
    ("2.31", False), ("2.32", True), ("2.36", True), ("2.37", False), ("2.41", False),
    ("2.42", True)])
async def test_network_tag_by_version(api: Api, version: str, tag_allowed: bool) -> None:
    status, body = await api.create(version, networks=[{"uuid": UNKNOWN_NET, "tag": "nic1"}])
    assert status == 400
    if tag_allowed:  # the tag passes; the network named does not exist here
        assert message(body) == f"Network {UNKNOWN_NET} could not be found."
    else:
        assert "tag" in message(body), body


# -- 2.37 networks: required; auto, none, or a list of UUIDs -------------------------------

async def test_2_37_networks_is_required(api: Api) -> None:
    status, body = await api.create("2.36")
    assert status == 202, body
    status, body = await api.create("2.37")
    assert status == 400 and "networks" in message(body)


async def test_2_37_auto_and_none(api: Api) -> None:
    for value in ("auto", "none"):
        status, body = await api.create("2.36", networks=value)
        assert status == 400, value
    status, auto = await api.create("2.37", name="auto", networks="auto")
    assert status == 202, auto
    status, none = await api.create("2.37", name="none", networks="none")
    assert status == 202, none
    await api.node.supervisor.drain()
    for server, nics in ((auto, 1), (none, 0)):
        uuid = server["server"]["id"]
        status, shown, _ = await api.call("GET", f"/servers/{uuid}", "2.37")
        assert shown["server"]["status"] == "ACTIVE"
        xml = api.node.driver._lookup(uuid).XMLDesc(0)  # type: ignore[attr-defined]
        assert xml.count("<interface ") == nics, xml


async def test_2_37_network_uuid_must_be_a_uuid(api: Api) -> None:
    status, body = await api.create("2.36", networks=[{"uuid": "not-a-uuid"}])
    assert status == 400 and message(body) == \
        "Bad networks format: network uuid is not in proper format (not-a-uuid)"
    status, body = await api.create("2.37", networks=[{"uuid": "not-a-uuid"}])
    assert status == 400 and "not-a-uuid" in message(body)
    assert "proper format" not in message(body)  # the schema refuses it now


async def test_named_networks_and_ports_are_refused_at_every_version(api: Api) -> None:
    """novad has one network, which has no id: naming any is Nova's 400 for a
    network that does not exist (never accepted and ignored)."""
    for version in ("2.1", "2.37"):
        status, body = await api.create(version, networks=[{"uuid": UNKNOWN_NET}])
        assert (status, message(body)) == (400, f"Network {UNKNOWN_NET} could not be found.")
        status, body = await api.create(version, networks=[{"port": UNKNOWN_NET}])
        assert (status, message(body)) == (400, f"Port id {UNKNOWN_NET} could not be found.")
    status, body = await api.create("2.1", networks=[{"fixed_ip": "10.0.0.5"}])
    assert (status, message(body)) == (400, "Bad network format: missing 'uuid'")
    status, listed, _ = await api.call("GET", "/servers", "2.1")
    assert listed == {"servers": []}
    status, body = await api.create("2.1", networks=[])  # what the CLI sends below 2.37
    assert status == 202, body


# -- 2.34 live-migration pre-checks after the 202 ------------------------------------------

async def test_2_34_pre_checks_after_the_202(api: Api) -> None:
    uuid = await api.boot()
    live = {"os-migrateLive": {"host": None, "block_migration": "auto"}}
    status, body, _ = await api.call("POST", f"/servers/{uuid}/action", "2.33", live)
    assert (status, message(body)) == (
        400, "No valid host was found. There are not enough hosts available.")
    status, listed, _ = await api.call("GET", "/os-migrations", "2.33")
    assert listed["migrations"] == []
    status, body, _ = await api.call("POST", f"/servers/{uuid}/action", "2.34", live)
    assert status == 202, body
    await api.node.supervisor.drain()
    status, listed, _ = await api.call("GET", "/os-migrations", "2.34")
    assert [(m["migration_type"], m["status"]) for m in listed["migrations"]] == [
        ("live-migration", "error")]
    status, shown, _ = await api.call("GET", f"/servers/{uuid}", "2.34")
    assert shown["server"]["status"] == "ACTIVE"


async def test_an_unknown_destination_is_400_on_both_sides(api: Api) -> None:
    uuid = await api.boot()
    live = {"os-migrateLive": {"host": "nowhere", "block_migration": "auto"}}
    for version in ("2.33", "2.34"):
        status, body, _ = await api.call("POST", f"/servers/{uuid}/action", version, live)
        assert (status, message(body)) == (400, "Compute host nowhere could not be found.")
    status, listed, _ = await api.call("GET", "/os-migrations", "2.34")
    assert listed["migrations"] == []


# -- 2.33 os-hypervisors, 2.35 os-keypairs, 2.40 os-simple-tenant-usage pages --------------

async def test_2_33_hypervisor_pages(api: Api) -> None:
    for path in ("/os-hypervisors", "/os-hypervisors/detail"):
        _, before, _ = await api.call("GET", f"{path}?limit=1&marker=nope", "2.32")
        assert len(before["hypervisors"]) == 1 and "hypervisors_links" not in before
        status, body, _ = await api.call("GET", f"{path}?marker=nope", "2.33")
        assert (status, message(body)) == (400, "Marker nope could not be found.")
        _, page, _ = await api.call("GET", f"{path}?limit=1", "2.33")
        (hypervisor,) = page["hypervisors"]
        (link,) = page["hypervisors_links"]
        assert link["rel"] == "next" and f"marker={hypervisor['id']}" in link["href"]
        _, rest, _ = await api.call("GET", f"{path}?marker={hypervisor['id']}", "2.33")
        assert rest == {"hypervisors": []}


async def test_2_35_keypair_pages(api: Api) -> None:
    for name in ("kc", "ka", "kb"):
        status, body, _ = await api.call("POST", "/os-keypairs", "2.35",
                                         {"keypair": {"name": name}})
        assert status == 201, body

    def names(body: Any) -> list[str]:
        return [k["keypair"]["name"] for k in body["keypairs"]]

    _, before, _ = await api.call("GET", "/os-keypairs?limit=1&marker=zz", "2.34")
    assert names(before) == ["ka", "kb", "kc"] and "keypairs_links" not in before
    _, page, _ = await api.call("GET", "/os-keypairs?limit=2", "2.35")
    assert names(page) == ["ka", "kb"]
    (link,) = page["keypairs_links"]
    assert "marker=kb" in link["href"] and "limit=2" in link["href"]
    _, rest, _ = await api.call("GET", "/os-keypairs?limit=2&marker=kb", "2.35")
    assert names(rest) == ["kc"] and "keypairs_links" not in rest
    status, body, _ = await api.call("GET", "/os-keypairs?marker=zz", "2.35")
    assert (status, message(body)) == (400, "Marker zz could not be found.")


async def test_2_40_usage_pages(api: Api) -> None:
    first, second = await api.boot("u1"), await api.boot("u2")
    period = "start=2000-01-01T00:00:00&end=2100-01-01T00:00:00"
    _, before, _ = await api.call("GET", f"/os-simple-tenant-usage?detailed=1&limit=1&{period}",
                                  "2.39")
    (usage,) = before["tenant_usages"]
    assert len(usage["server_usages"]) == 2 and "tenant_usages_links" not in before
    _, page, _ = await api.call("GET", f"/os-simple-tenant-usage?detailed=1&limit=1&{period}",
                                "2.40")
    (usage,) = page["tenant_usages"]
    assert [s["instance_id"] for s in usage["server_usages"]] == [first]
    (link,) = page["tenant_usages_links"]
    assert f"marker={first}" in link["href"]
    project = usage["tenant_id"]
    _, one, _ = await api.call(
        "GET", f"/os-simple-tenant-usage/{project}?limit=1&marker={first}&{period}", "2.40")
    assert [s["instance_id"] for s in one["tenant_usage"]["server_usages"]] == [second]
    assert f"marker={second}" in one["tenant_usage_links"][0]["href"]
    status, body, _ = await api.call("GET", f"/os-simple-tenant-usage?marker=nope&{period}",
                                     "2.40")
    assert (status, message(body)) == (400, "Marker nope could not be found.")


# -- 2.36 proxy APIs and network quotas, 2.39 image metadata ---------------------------

async def test_2_36_image_proxy_is_404(api: Api) -> None:
    for path, key in (("/images", "images"), ("/images/detail", "images"),
                      (f"/images/{api.image}", "image")):
        status, body, _ = await api.call("GET", path, "2.35")
        assert status == 200 and set(body) == {key}, path
        status, body, _ = await api.call("GET", path, "2.36")
        assert status == 404 and "itemNotFound" in body, path


@pytest.mark.parametrize("base", ["/os-networks", "/os-tenant-networks"])
async def test_2_36_network_proxies_go(api: Api, base: str) -> None:
    """novad's one network has no record: Nova's empty list and 404 below 2.36."""
    status, body, _ = await api.call("GET", base, "2.35")
    assert (status, body) == (200, {"networks": []})
    status, body, _ = await api.call("GET", f"{base}/{UNKNOWN_NET}", "2.35")
    assert (status, message(body)) == (404, "Network not found")
    for path in (base, f"{base}/{UNKNOWN_NET}"):
        status, body, _ = await api.call("GET", path, "2.36")
        assert (status, message(body)) == (404, "The resource could not be found.")


@pytest.mark.parametrize("path", ["/os-floating-ips", "/os-floating-ip-pools", "/os-volumes",
                                  "/os-snapshots", "/os-baremetal-nodes", "/os-fping"])
async def test_proxies_novad_never_served_are_404_on_both_sides(api: Api, path: str) -> None:
    # (os-security-groups is served below 2.36: tests/api/test_tempest_findings.py)
    for version in ("2.35", "2.36"):
        status, _, _ = await api.call("GET", path, version)
        assert status == 404, (path, version)


async def test_2_36_fixed_ips_stay_gone(api: Api) -> None:
    """Nova answers 410 for os-fixed-ips at every version since nova-network went."""
    for version in ("2.35", "2.36"):
        status, _, _ = await api.call("GET", "/os-fixed-ips/10.0.0.1", version)
        assert status == 410, version


NETWORK_QUOTAS = {"fixed_ips", "floating_ips", "security_group_rules", "security_groups"}


async def test_2_36_network_quotas_go(api: Api) -> None:
    project = api.project
    for suffix in ("", "/detail", "/defaults"):
        status, before, _ = await api.call("GET", f"/os-quota-sets/{project}{suffix}", "2.35")
        assert status == 200 and NETWORK_QUOTAS <= set(before["quota_set"]), suffix
        _, after, _ = await api.call("GET", f"/os-quota-sets/{project}{suffix}", "2.36")
        assert not NETWORK_QUOTAS & set(after["quota_set"]), suffix
        assert set(before["quota_set"]) - set(after["quota_set"]) == NETWORK_QUOTAS
    change = {"quota_set": {"floating_ips": 5}}
    status, body, _ = await api.call("PUT", f"/os-quota-sets/{project}", "2.35", change)
    assert status == 400 and "cannot be changed in novad" in message(body)
    status, body, _ = await api.call("PUT", f"/os-quota-sets/{project}", "2.36", change)
    assert status == 400 and "floating_ips" in message(body)
    assert "cannot be changed" not in message(body)  # no such quota at 2.36
    status, body, _ = await api.call("PUT", f"/os-quota-sets/{project}", "2.36",
                                     {"quota_set": {"instances": 7}})
    assert status == 200 and body["quota_set"]["instances"] == 7
    assert not NETWORK_QUOTAS & set(body["quota_set"])


NETWORK_LIMITS = {"maxSecurityGroups", "maxSecurityGroupRules", "totalSecurityGroupsUsed",
                  "maxTotalFloatingIps", "totalFloatingIpsUsed"}


async def test_2_36_and_2_39_limits(api: Api) -> None:
    async def absolute(version: str) -> set[str]:
        status, body, _ = await api.call("GET", "/limits", version)
        assert status == 200
        return set(body["limits"]["absolute"])

    at_2_35, at_2_36 = await absolute("2.35"), await absolute("2.36")
    assert at_2_35 - at_2_36 == NETWORK_LIMITS and at_2_36 <= at_2_35
    at_2_38, at_2_39 = await absolute("2.38"), await absolute("2.39")
    assert at_2_38 == at_2_36 and at_2_38 - at_2_39 == {"maxImageMeta"}


async def test_2_39_image_metadata_proxy_goes(api: Api) -> None:
    status, body, _ = await api.call("GET", f"/images/{api.image}/metadata", "2.38")
    assert (status, body) == (200, {"metadata": {}})
    status, body, _ = await api.call("GET", f"/images/{api.image}/metadata", "2.39")
    assert status == 404 and "itemNotFound" in body


# -- 2.38 an unknown status filter ---------------------------------------------------------

async def test_2_38_unknown_status_is_400(api: Api) -> None:
    await api.boot()
    for path in ("/servers", "/servers/detail"):
        status, body, _ = await api.call("GET", f"{path}?status=BOGUS", "2.37")
        assert (status, body["servers"]) == (200, []), path
        status, body, _ = await api.call("GET", f"{path}?status=BOGUS", "2.38")
        assert (status, message(body)) == (400, "Invalid status value"), path
        status, body, _ = await api.call("GET", f"{path}?status=active", "2.38")
        assert status == 200 and len(body["servers"]) == 1, path


# -- 2.41 aggregate uuids: novad's node is in no aggregate ---------------------------------

async def test_2_41_aggregates_on_both_sides(api: Api) -> None:
    for version in ("2.40", "2.41"):
        status, body, _ = await api.call("GET", "/os-aggregates", version)
        assert (status, body) == (200, {"aggregates": []})


# -- 2.43 os-hosts is gone -----------------------------------------------------------------

async def test_2_43_os_hosts(api: Api) -> None:
    await api.boot()
    host = api.node.host
    _, listed, _ = await api.call("GET", "/os-hosts", "2.42")
    assert listed == {"hosts": [{"host_name": host, "service": "compute", "zone": "nova"}]}
    _, listed, _ = await api.call("GET", "/os-hosts?zone=elsewhere", "2.42")
    assert listed == {"hosts": []}
    status, shown, _ = await api.call("GET", f"/os-hosts/{host}", "2.42")
    assert status == 200
    rows = [r["resource"] for r in shown["host"]]
    assert [r["project"] for r in rows[:3]] == ["(total)", "(used_now)", "(used_max)"]
    assert len(rows) == 4 and rows[2]["cpu"] == rows[3]["cpu"] >= 1
    status, body, _ = await api.call("GET", "/os-hosts/nowhere", "2.42")
    assert (status, message(body)) == (404, "Compute host nowhere could not be found.")
    status, _, _ = await api.call("PUT", f"/os-hosts/{host}", "2.42", {"status": "disable"})
    assert status == 501
    status, _, _ = await api.call("GET", f"/os-hosts/{host}/reboot", "2.42")
    assert status == 501
    for method, path, body in (("GET", "/os-hosts", None), ("GET", f"/os-hosts/{host}", None),
                               ("PUT", f"/os-hosts/{host}", {"status": "disable"}),
                               ("GET", f"/os-hosts/{host}/reboot", None)):
        status, _, _ = await api.call(method, path, "2.43", body)
        assert status == 404, path


# -- 2.44 the address actions and os-virtual-interfaces ------------------------------------

@pytest.mark.parametrize(("action", "argument", "status", "text"), [
    ("addFixedIp", {"networkId": UNKNOWN_NET}, 400, f"Network {UNKNOWN_NET} could not be found."),
    ("removeFixedIp", {"address": "10.0.0.5"}, 400, "doesn't have fixed IP '10.0.0.5'."),
    ("addFloatingIp", {"address": "172.24.4.10"}, 400, "No fixed IPs associated to instance"),
    ("removeFloatingIp", {"address": "172.24.4.10"}, 404, "floating IP not found"),
])
async def test_2_44_address_actions_go(api: Api, action: str, argument: dict[str, Any],
                                       status: int, text: str) -> None:
    uuid = await api.boot()
    got, body, _ = await api.call("POST", f"/servers/{uuid}/action", "2.43", {action: argument})
    assert got == status and message(body).endswith(text), body
    got, body, _ = await api.call("POST", f"/servers/{uuid}/action", "2.44", {action: argument})
    assert (got, message(body)) == (404, "The resource could not be found.")


async def test_2_44_virtual_interfaces_stay_gone(api: Api) -> None:
    uuid = await api.boot()
    for version in ("2.43", "2.44"):
        status, _, _ = await api.call("GET", f"/servers/{uuid}/os-virtual-interfaces", version)
        assert status == 410, version


# -- 2.45 createImage and createBackup answer the image id ---------------------------------

@pytest.mark.parametrize("action", [
    {"createImage": {"name": "snap"}},
    {"createBackup": {"name": "bak", "backup_type": "daily", "rotation": 1}}])
async def test_2_45_image_id_in_the_body(api: Api, action: dict[str, Any]) -> None:
    uuid = await api.boot()
    status, body, headers = await api.call("POST", f"/servers/{uuid}/action", "2.44", action)
    assert status == 202 and body is None
    old_id = headers["Location"].rsplit("/", 1)[-1]
    await api.node.supervisor.drain()
    status, body, headers = await api.call("POST", f"/servers/{uuid}/action", "2.45", action)
    assert status == 202 and "Location" not in headers
    assert set(body) == {"image_id"} and body["image_id"] != old_id
    await api.node.supervisor.drain()
    status, _, _ = await api.call("GET", f"/images/{body['image_id']}", "2.1")
    assert status == 200
