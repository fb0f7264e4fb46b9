"""Flavors over HTTP against a real SQLite store."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from api_helpers import error_of, headers

Client = TestClient[Any, Any]
F = "/compute/v2.1/flavors"


async def create(client: Client, *, status: int = 200, token: str = "admin-token",
                 more: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    flavor = {"name": "m1.small", "ram": 2048, "vcpus": 1, "disk": 20, **fields, **(more or {})}
    resp = await client.post(F, json={"flavor": flavor}, headers=headers(token))
    assert resp.status == status, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body



async def test_create_as_the_client_sends_it(client: Client) -> None:
    flavor = (await create(client, id=None, swap=0, more={"OS-FLV-EXT-DATA:ephemeral": 0,
                                                           "os-flavor-access:is_public": True}))
    flavor = flavor["flavor"]
    uuid.UUID(flavor["id"])
    base = str(client.make_url("")).rstrip("/")
    assert flavor == {
        "id": flavor["id"], "name": "m1.small", "ram": 2048, "disk": 20, "vcpus": 1,
        "swap": "", "OS-FLV-EXT-DATA:ephemeral": 0, "OS-FLV-DISABLED:disabled": False,
        "os-flavor-access:is_public": True, "rxtx_factor": 1.0,
        "links": [{"rel": "self", "href": f"{base}/compute/v2.1/flavors/{flavor['id']}"},
                  {"rel": "bookmark", "href": f"{base}/compute/flavors/{flavor['id']}"}]}


async def test_create_with_given_ids_and_strings(client: Client) -> None:
    flavor = (await create(client, id=42, ram="512", vcpus="2", disk="0", swap=512,
                           rxtx_factor="2.5"))["flavor"]
    assert (flavor["id"], flavor["ram"], flavor["vcpus"], flavor["disk"], flavor["swap"],
            flavor["rxtx_factor"]) == ("42", 512, 2, 0, 512, 2.5)
    resp = await client.get(f"{F}/42", headers=headers())
    assert (await resp.json())["flavor"] == flavor


@pytest.mark.parametrize("fields", [{"ram": 0}, {"vcpus": -1}, {"disk": "x"}, {"name": ""},
                                    {"id": " lead"}, {"rxtx_factor": 0}, {"extra": 1},
                                    {"ram": "0"}, {"ram": 2 ** 31}])
async def test_create_refusals(client: Client, fields: dict[str, Any]) -> None:
    body = await create(client, status=400, **fields)
    assert "badRequest" in body


async def test_create_conflicts_and_policy(client: Client) -> None:
    await create(client, id="1")
    assert (await create(client, status=409, id="2"))["conflictingRequest"]["message"] == \
        "Flavor with name m1.small already exists."
    assert (await create(client, status=409, id="1", name="other"))["conflictingRequest"][
        "message"] == "Flavor with ID 1 already exists."
    assert "forbidden" in await create(client, status=403, token="member-token", name="x")


async def test_list_show_delete(client: Client) -> None:
    await create(client, id="1", name="tiny", ram=512, disk=1)
    await create(client, id="2", name="big", ram=8192, disk=80)
    brief = (await (await client.get(F, headers=headers())).json())["flavors"]
    assert [(f["id"], f["name"], len(f["links"])) for f in brief] == [("1", "tiny", 2),
                                                                     ("2", "big", 2)]
    assert set(brief[0]) == {"id", "name", "links"}
    detail = await (await client.get(f"{F}/detail?minRam=1024", headers=headers())).json()
    assert [f["id"] for f in detail["flavors"]] == ["2"]
    detail = await (await client.get(f"{F}/detail?minDisk=2&minRam=0",
                                     headers=headers())).json()
    assert [f["id"] for f in detail["flavors"]] == ["2"]
    resp = await client.delete(f"{F}/1", headers=headers("member-token"))
    assert resp.status == 403
    resp = await client.delete(f"{F}/1", headers=headers("admin-token"))
    assert resp.status == 202
    resp = await client.get(f"{F}/1", headers=headers())
    assert await error_of(resp) == (404, "itemNotFound", "Flavor 1 could not be found.")
    resp = await client.delete(f"{F}/1", headers=headers("admin-token"))
    assert resp.status == 404


async def test_name_lookup_falls_back_to_listing(client: Client) -> None:
    # The client's --flavor NAME: GET /flavors/NAME must be 404, then it lists.
    await create(client, id="7", name="m1.tiny")
    assert (await client.get(f"{F}/m1.tiny", headers=headers())).status == 404
    listing = await (await client.get(f"{F}/detail?is_public=None", headers=headers())).json()
    assert [f["name"] for f in listing["flavors"]] == ["m1.tiny"]


async def test_pagination(client: Client) -> None:
    for i in range(1, 4):
        await create(client, id=str(i), name=f"f{i}")
    page = await (await client.get(f"{F}/detail?limit=2", headers=headers())).json()
    assert [f["id"] for f in page["flavors"]] == ["1", "2"]
    (link,) = page["flavors_links"]
    assert link["rel"] == "next" and link["href"].endswith(
        "/compute/v2.1/flavors/detail?limit=2&marker=2")
    page = await (await client.get(f"{F}?limit=2&marker=2", headers=headers())).json()
    assert [f["id"] for f in page["flavors"]] == ["3"]
    assert "flavors_links" not in page
    resp = await client.get(f"{F}?marker=nope", headers=headers())
    assert resp.status == 400
    for bad in ("limit=-1", "limit=x", "minRam=x", "minDisk=-3"):
        assert (await client.get(f"{F}/detail?{bad}", headers=headers())).status == 400, bad


async def test_private_flavors_and_access(client: Client) -> None:
    await create(client, id="pub", name="public")
    await create(client, id="priv", name="private",
                 more={"os-flavor-access:is_public": False})
    names = {"member-token": ["public"], "admin-token": ["public"]}
    for token, expected in names.items():
        body = await (await client.get(f"{F}/detail", headers=headers(token))).json()
        assert [f["name"] for f in body["flavors"]] == expected, token
    body = await (await client.get(f"{F}/detail?is_public=None",
                                   headers=headers("admin-token"))).json()
    assert [f["id"] for f in body["flavors"]] == ["priv", "pub"]
    body = await (await client.get(f"{F}/detail?is_public=false",
                                   headers=headers("admin-token"))).json()
    assert [f["id"] for f in body["flavors"]] == ["priv"]
    # is_public is an admin filter; others get the default, even with junk.
    body = await (await client.get(f"{F}/detail?is_public=junk", headers=headers())).json()
    assert [f["id"] for f in body["flavors"]] == ["pub"]
    resp = await client.get(f"{F}/detail?is_public=junk", headers=headers("admin-token"))
    assert await error_of(resp) == (400, "badRequest", "Invalid is_public filter [junk]")
    assert (await client.get(f"{F}/priv", headers=headers())).status == 404

    action = f"{F}/priv/action"
    grant = {"addTenantAccess": {"tenant": "project-a"}}
    assert (await client.post(action, json=grant, headers=headers())).status == 403
    resp = await client.post(action, json=grant, headers=headers("admin-token"))
    assert resp.status == 200
    assert await resp.json() == {"flavor_access": [{"flavor_id": "priv",
                                                    "tenant_id": "project-a"}]}
    resp = await client.post(action, json=grant, headers=headers("admin-token"))
    assert resp.status == 409
    assert (await client.get(f"{F}/priv", headers=headers())).status == 200
    assert (await client.get(f"{F}/priv", headers=headers("other-token"))).status == 404
    body = await (await client.get(f"{F}/detail", headers=headers())).json()
    assert [f["id"] for f in body["flavors"]] == ["priv", "pub"]

    resp = await client.get(f"{F}/priv/os-flavor-access", headers=headers("admin-token"))
    assert (await resp.json())["flavor_access"][0]["tenant_id"] == "project-a"
    resp = await client.get(f"{F}/pub/os-flavor-access", headers=headers("admin-token"))
    assert await error_of(resp) == (404, "itemNotFound",
                                    "Access list not available for public flavors.")
    resp = await client.post(f"{F}/pub/action", json=grant,  # 2.7: public is 409
                             headers=headers("admin-token",
                                             **{"OpenStack-API-Version": "compute 2.7"}))
    assert await error_of(resp) == (409, "conflictingRequest",
                                    "Can not add access to a public flavor.")
    revoke = {"removeTenantAccess": {"tenant": "project-a"}}
    resp = await client.post(action, json=revoke, headers=headers("admin-token"))
    assert await resp.json() == {"flavor_access": []}
    resp = await client.post(action, json=revoke, headers=headers("admin-token"))
    assert resp.status == 404
    resp = await client.post(action, json={"fly": {}}, headers=headers("admin-token"))
    assert await error_of(resp) == (400, "badRequest", "There is no such action: fly")
    resp = await client.post(action, json={"addTenantAccess": {}},
                             headers=headers("admin-token"))
    assert resp.status == 400


async def test_extra_specs(client: Client) -> None:
    await create(client, id="1")
    specs = f"{F}/1/os-extra_specs"
    admin = headers("admin-token")
    assert await (await client.get(specs, headers=headers())).json() == {"extra_specs": {}}
    body = {"extra_specs": {"hw:cpu_policy": "shared", "quota:cpu_shares": 1024,
                            "trait:X": True}}
    assert (await client.post(specs, json=body, headers=headers())).status == 403
    resp = await client.post(specs, json=body, headers=admin)
    assert resp.status == 200
    assert await resp.json() == {"extra_specs": {"hw:cpu_policy": "shared",
                                                 "quota:cpu_shares": "1024",
                                                 "trait:X": "True"}}
    resp = await client.get(f"{specs}/hw:cpu_policy", headers=headers())
    assert await resp.json() == {"hw:cpu_policy": "shared"}
    resp = await client.put(f"{specs}/hw:cpu_policy", json={"hw:cpu_policy": "dedicated"},
                            headers=admin)
    assert await resp.json() == {"hw:cpu_policy": "dedicated"}
    resp = await client.put(f"{specs}/hw:cpu_policy", json={"other": "x"}, headers=admin)
    assert await error_of(resp) == (400, "badRequest", "Request body and URI mismatch")
    resp = await client.put(f"{specs}/a", json={"a": "1", "b": "2"}, headers=admin)
    assert resp.status == 400
    resp = await client.delete(f"{specs}/hw:cpu_policy", headers=admin)
    assert resp.status == 202
    resp = await client.get(f"{specs}/hw:cpu_policy", headers=headers())
    assert await error_of(resp) == (404, "itemNotFound",
                                    "Flavor 1 has no extra specs with key hw:cpu_policy.")
    assert (await client.delete(f"{specs}/hw:cpu_policy", headers=admin)).status == 404
    full = await (await client.get(specs, headers=headers())).json()
    assert full == {"extra_specs": {"quota:cpu_shares": "1024", "trait:X": "True"}}
    assert (await client.get(f"{F}/nope/os-extra_specs", headers=headers())).status == 404
