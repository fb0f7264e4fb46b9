"""Each microversion boundary novad serves, over HTTP: the same request at
N-1 and at N, showing the difference Nova documents for N and nothing else.

The boundaries that need a server (2.3, 2.5, 2.6, 2.8, 2.9) are in
``tests/e2e/test_microversions_servers.py``, against a whole daemon.
"""

from __future__ import annotations

import base64
from typing import Any

from aiohttp.test_utils import TestClient
from api_helpers import StaticNode, error_of, headers
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import pkcs12

from novad.api import microversion
from novad.compute.keypairs import generate_x509
from novad.store import Store

Client = TestClient[Any, Any]
V = "/compute/v2.1"
K = f"{V}/os-keypairs"


def at(version: str, token: str = "member-token") -> dict[str, str]:
    """Headers asking for ``version``."""
    return headers(token, **{"OpenStack-API-Version": f"compute {version}"})


def ssh_public() -> str:
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    return key.public_bytes(serialization.Encoding.OpenSSH,
                            serialization.PublicFormat.OpenSSH).decode()


def without(body: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in keys}


# -- the table and the headers --------------------------------------------------------

def test_history_is_consecutive_and_ends_at_the_maximum() -> None:
    keys = [v.key for v in microversion.HISTORY]
    assert keys == [(2, minor) for minor in range(1, len(keys) + 1)]
    assert microversion.MAX_MICROVERSION == microversion.HISTORY[-1].text == "2.96"
    assert all(v.meaning for v in microversion.HISTORY)


async def test_latest_is_the_maximum_and_only_in_lower_case(client: Client) -> None:
    resp = await client.get(f"{V}/flavors", headers=at("latest"))
    assert resp.headers["OpenStack-API-Version"] == f"compute {microversion.MAX_MICROVERSION}"
    assert resp.headers["X-OpenStack-Nova-API-Version"] == microversion.MAX_MICROVERSION
    assert resp.headers["Vary"] == "OpenStack-API-Version, X-OpenStack-Nova-API-Version"
    resp = await client.get(f"{V}/flavors", headers=at("LATEST"))
    assert await error_of(resp) == (
        400, "badRequest",
        "API Version String LATEST is of invalid format. Must be of format MajorNum.MinorNum.")


async def test_out_of_range_is_406_without_version_headers(client: Client) -> None:
    top = microversion.HISTORY[-1].key[1]
    resp = await client.get(f"{V}/flavors", headers=at(f"2.{top + 1}"))
    assert await error_of(resp) == (
        406, "computeFault",
        f"Version 2.{top + 1} is not supported by the API. Minimum is 2.1 and maximum is "
        f"2.{top}.")
    assert "OpenStack-API-Version" not in resp.headers
    assert "Vary" not in resp.headers


# -- 2.2 key pair type; create 201, delete 204 ------------------------------------------

async def test_2_2_keypair_type_and_status_codes(client: Client) -> None:
    public = ssh_public()
    created = {}
    for version, name in (("2.1", "old"), ("2.2", "new")):
        resp = await client.post(K, json={"keypair": {"name": name, "public_key": public}},
                                 headers=at(version))
        created[version] = (resp.status, await resp.json())
    (old_status, old), (new_status, new) = created["2.1"], created["2.2"]
    assert (old_status, new_status) == (200, 201)
    assert new["keypair"]["type"] == "ssh"
    assert without(new["keypair"], "type", "name") == without(old["keypair"], "name")

    listed = {v: (await (await client.get(K, headers=at(v))).json())["keypairs"]
              for v in ("2.1", "2.2")}
    assert [e["keypair"]["type"] for e in listed["2.2"]] == ["ssh", "ssh"]
    assert [without(e["keypair"], "type") for e in listed["2.2"]] == \
        [e["keypair"] for e in listed["2.1"]]
    shown = {v: (await (await client.get(f"{K}/old", headers=at(v))).json())["keypair"]
             for v in ("2.1", "2.2")}
    assert shown["2.2"] == {**shown["2.1"], "type": "ssh"}

    assert (await client.delete(f"{K}/old", headers=at("2.1"))).status == 202
    assert (await client.delete(f"{K}/new", headers=at("2.2"))).status == 204


async def test_2_2_type_in_the_body(client: Client) -> None:
    body = {"keypair": {"name": "k", "type": "ssh", "public_key": ssh_public()}}
    resp = await client.post(K, json=body, headers=at("2.1"))
    status, key, message = await error_of(resp)
    assert (status, key) == (400, "badRequest") and "Additional properties" in message
    assert (await client.post(K, json=body, headers=at("2.2"))).status == 201
    bad = {"keypair": {"name": "k2", "type": "pgp", "public_key": ssh_public()}}
    assert (await client.post(K, json=bad, headers=at("2.2"))).status == 400


async def test_2_2_x509_import_and_generate(client: Client) -> None:
    _, certificate = generate_x509("someone")
    resp = await client.post(K, json={"keypair": {"name": "cert", "type": "x509",
                                                  "public_key": certificate}},
                             headers=at("2.2"))
    assert resp.status == 201
    body = (await resp.json())["keypair"]
    sha1 = x509.load_pem_x509_certificate(certificate.encode()).fingerprint(hashes.SHA1())
    assert body["fingerprint"] == ":".join(f"{b:02x}" for b in sha1)
    assert body["type"] == "x509" and "private_key" not in body

    resp = await client.post(K, json={"keypair": {"name": "made", "type": "x509"}},
                             headers=at("2.2"))
    body = (await resp.json())["keypair"]
    key, cert, _ = pkcs12.load_key_and_certificates(base64.b64decode(body["private_key"]),
                                                    None)
    assert cert is not None and key is not None
    assert cert.subject.rfc4514_string() == "CN=member-user"
    assert cert.public_bytes(serialization.Encoding.PEM).decode() == body["public_key"]

    resp = await client.post(K, json={"keypair": {"name": "junk", "type": "x509",
                                                  "public_key": ssh_public()}},
                             headers=at("2.2"))
    status, _, message = await error_of(resp)
    assert status == 400
    assert message.startswith("Keypair data is invalid: failed to generate X509 fingerprint.")


# -- 2.4 os-fixed-ips: gone at every version -------------------------------------------

async def test_2_4_fixed_ips_are_gone_on_both_sides(client: Client) -> None:
    gone = (410, "computeFault",
            "This resource is no longer available.  No forwarding address is given.")
    for version in ("2.3", "2.4"):
        resp = await client.get(f"{V}/os-fixed-ips/10.0.0.2", headers=at(version, "admin-token"))
        assert await error_of(resp) == gone, version
        resp = await client.post(f"{V}/os-fixed-ips/10.0.0.2/action", json={"reserve": None},
                                 headers=at(version, "admin-token"))
        assert await error_of(resp) == gone, version


# -- 2.6 remote-consoles replaces os-getVNCConsole (the parts answered before the server)

async def test_2_6_remote_consoles_route_and_the_old_action(client: Client) -> None:
    body = {"remote_console": {"protocol": "vnc", "type": "novnc"}}
    resp = await client.post(f"{V}/servers/any/remote-consoles", json=body, headers=at("2.5"))
    assert await error_of(resp) == (404, "itemNotFound", "The resource could not be found.")
    resp = await client.post(f"{V}/servers/any/action",
                             json={"os-getVNCConsole": {"type": "novnc"}}, headers=at("2.6"))
    assert await error_of(resp) == (404, "itemNotFound", "The resource could not be found.")


async def test_2_8_mks_is_refused_by_the_schema_before_2_8(client: Client) -> None:
    body = {"remote_console": {"protocol": "mks", "type": "webmks"}}
    resp = await client.post(f"{V}/servers/any/remote-consoles", json=body, headers=at("2.7"))
    status, key, message = await error_of(resp)
    assert (status, key) == (400, "badRequest")
    assert message.startswith("Invalid input for field/attribute remote_console/")


# -- 2.7 flavor access to a public flavor ------------------------------------------------

async def test_2_7_public_flavor_access_is_409(client: Client) -> None:
    admin = "admin-token"
    flavor = {"flavor": {"name": "pub", "id": "pub", "ram": 64, "vcpus": 1, "disk": 1}}
    assert (await client.post(f"{V}/flavors", json=flavor, headers=at("2.1", admin))).status \
        == 200
    grant = {"addTenantAccess": {"tenant": "project-a"}}
    resp = await client.post(f"{V}/flavors/pub/action", json=grant, headers=at("2.6", admin))
    assert resp.status == 200
    assert await resp.json() == {"flavor_access": [{"flavor_id": "pub",
                                                    "tenant_id": "project-a"}]}
    other = {"addTenantAccess": {"tenant": "project-b"}}
    resp = await client.post(f"{V}/flavors/pub/action", json=other, headers=at("2.7", admin))
    assert await error_of(resp) == (409, "conflictingRequest",
                                    "Can not add access to a public flavor.")


# -- 2.10 other users' key pairs for admins ----------------------------------------------

async def test_2_10_admin_creates_and_reads_another_users_keypair(client: Client) -> None:
    admin = "admin-token"
    body = {"keypair": {"name": "theirs", "public_key": ssh_public(),
                        "user_id": "member-user"}}
    resp = await client.post(K, json=body, headers=at("2.9", admin))
    status, _, message = await error_of(resp)
    assert status == 400 and "Additional properties" in message
    resp = await client.post(K, json=body, headers=at("2.10", admin))
    assert resp.status == 201
    assert (await resp.json())["keypair"]["user_id"] == "member-user"

    names = {}
    for version in ("2.9", "2.10"):
        resp = await client.get(f"{K}?user_id=member-user", headers=at(version, admin))
        names[version] = [e["keypair"]["name"] for e in (await resp.json())["keypairs"]]
    assert names == {"2.9": [], "2.10": ["theirs"]}  # 2.9 ignores the parameter
    resp = await client.get(f"{K}/theirs?user_id=member-user", headers=at("2.9", admin))
    assert resp.status == 404
    resp = await client.get(f"{K}/theirs?user_id=member-user", headers=at("2.10", admin))
    assert (await resp.json())["keypair"]["user_id"] == "member-user"
    mine = await client.get(f"{K}/theirs", headers=at("2.10"))
    assert mine.status == 200
    resp = await client.delete(f"{K}/theirs?user_id=member-user", headers=at("2.9", admin))
    assert resp.status == 404
    resp = await client.delete(f"{K}/theirs?user_id=member-user", headers=at("2.10", admin))
    assert resp.status == 204


async def test_2_10_others_may_name_only_themselves(client: Client) -> None:
    resp = await client.get(f"{K}?user_id=admin-user", headers=at("2.10"))
    assert await error_of(resp) == (
        403, "forbidden", "Policy doesn't allow os_compute_api:os-keypairs:index to be "
        "performed.")
    body = {"keypair": {"name": "k", "public_key": ssh_public(), "user_id": "admin-user"}}
    resp = await client.post(K, json=body, headers=at("2.10"))
    assert (await error_of(resp))[:2] == (403, "forbidden")
    resp = await client.get(f"{K}?user_id=member-user", headers=at("2.10"))
    assert resp.status == 200


# -- 2.11 forced_down --------------------------------------------------------------------

async def services(client: Client, version: str) -> list[dict[str, Any]]:
    resp = await client.get(f"{V}/os-services", headers=at(version, "admin-token"))
    body: list[dict[str, Any]] = (await resp.json())["services"]
    return body


async def test_2_11_forced_down_in_the_service_view(client: Client) -> None:
    (before,), (after,) = await services(client, "2.10"), await services(client, "2.11")
    # updated_at of this node is "now": the one key besides forced_down that may differ
    assert without(after, "updated_at") == {**without(before, "updated_at"),
                                            "forced_down": False}


async def test_2_11_force_down_and_up(client: Client, store: Store, node: StaticNode) -> None:
    down = {"host": "node-1", "binary": "nova-compute", "forced_down": True}
    url = f"{V}/os-services/force-down"
    resp = await client.put(url, json={"host": "node-1", "binary": "nova-compute"},
                            headers=at("2.10", "admin-token"))
    assert await error_of(resp) == (404, "itemNotFound", "Unknown action")
    resp = await client.put(url, json=down, headers=at("2.10", "admin-token"))
    status, _, message = await error_of(resp)
    assert status == 400 and "Additional properties" in message

    resp = await client.put(url, json=down, headers=at("2.11", "admin-token"))
    assert resp.status == 200
    assert await resp.json() == {"service": down}
    row = await store.get_service("node-1", "nova-compute")
    assert row is not None and row.forced_down and not row.disabled
    assert node.service is not None and not node.service.schedulable()
    (shown,) = await services(client, "2.11")
    assert (shown["state"], shown["status"], shown["forced_down"]) == ("down", "enabled", True)
    (old,) = await services(client, "2.1")
    assert old["state"] == "down" and "forced_down" not in old

    disable = {"host": "node-1", "binary": "nova-compute"}
    resp = await client.put(f"{V}/os-services/disable", json=disable,
                            headers=at("2.11", "admin-token"))
    assert await resp.json() == {"service": {**disable, "status": "disabled"}}
    row = await store.get_service("node-1", "nova-compute")
    assert row is not None and row.forced_down and row.disabled, "disable keeps forced_down"

    resp = await client.put(url, json={**down, "forced_down": "false"},
                            headers=at("2.11", "admin-token"))
    assert await resp.json() == {"service": {**down, "forced_down": False}}
    (shown,) = await services(client, "2.11")
    assert (shown["state"], shown["status"], shown["forced_down"]) == ("up", "disabled", False)


async def test_2_11_force_down_refusals(client: Client) -> None:
    url = f"{V}/os-services/force-down"
    resp = await client.put(url, json={"host": "node-1", "binary": "nova-compute"},
                            headers=at("2.11", "admin-token"))
    assert await error_of(resp) == (400, "badRequest", "Missing forced_down field")
    down = {"host": "node-1", "binary": "nova-compute", "forced_down": True}
    resp = await client.put(url, json=down, headers=at("2.11"))
    assert (await error_of(resp))[:2] == (403, "forbidden")
    resp = await client.put(url, json={**down, "host": "elsewhere"},
                            headers=at("2.11", "admin-token"))
    assert (await error_of(resp))[:2] == (404, "itemNotFound")
