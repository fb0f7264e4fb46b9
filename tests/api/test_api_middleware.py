"""The middleware stack: request ids, errors, authentication, microversions, OpenAPI."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

from aiohttp.test_utils import TestClient
from api_helpers import headers

from novad.api.microversion import HISTORY, MAX_MICROVERSION

NEXT = f"2.{HISTORY[-1].key[1] + 1}"
"""The first version not served."""

Client = TestClient[Any, Any]

REQ_ID = re.compile(r"^req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


async def shape_of(resp: Any) -> tuple[str, int, str]:
    """(body key, code, message) of a Nova error body; checks it has one key."""
    body = await resp.json()
    assert resp.content_type == "application/json"
    assert len(body) == 1, body
    key, value = next(iter(body.items()))
    assert value["code"] == resp.status
    return key, value["code"], value["message"]


# -- request ids ----------------------------------------------------------------------

async def test_request_ids_on_success_error_and_404(client: Client) -> None:
    seen = set()
    for path, hdrs, status in [("/compute/v2.1", {}, 200),
                               ("/compute/v2.1/servers", {}, 401),
                               ("/no/such/path", headers(), 404),
                               ("/compute/v2.1/flavors/nope", headers(), 404),
                               ("/boom", {}, 500)]:
        resp = await client.get(path, headers=hdrs)
        assert resp.status == status, path
        rid = resp.headers["x-openstack-request-id"]
        assert REQ_ID.match(rid), rid
        assert resp.headers["x-compute-request-id"] == rid
        seen.add(rid)
    assert len(seen) == 5


async def test_client_request_id_is_not_taken(client: Client) -> None:
    resp = await client.get("/compute/v2.1",
                            headers={"x-openstack-request-id": "req-mine",
                                     "X-Compute-Request-Id": "req-mine"})
    assert resp.headers["x-openstack-request-id"] != "req-mine"
    assert REQ_ID.match(resp.headers["x-openstack-request-id"])


# -- errors ---------------------------------------------------------------------------

async def test_unknown_path_is_404_with_or_without_token(client: Client) -> None:
    for hdrs in ({}, headers(), headers("bogus")):
        resp = await client.get("/compute/v2.1/no-such-resource", headers=hdrs)
        assert resp.status == 404
        assert await shape_of(resp) == ("itemNotFound", 404, "The resource could not be found.")


async def test_wrong_method_is_405(client: Client) -> None:
    resp = await client.patch("/compute/v2.1/flavors", headers=headers())
    assert resp.status == 405
    key, _, _ = await shape_of(resp)
    assert key == "badMethod"
    assert "GET" in resp.headers["Allow"]


async def test_malformed_json_is_400(client: Client) -> None:
    resp = await client.post("/compute/v2.1/flavors", data=b'{"flavor": ',
                             headers=headers("admin-token", **{"Content-Type":
                                                               "application/json"}))
    assert resp.status == 400
    assert await shape_of(resp) == ("badRequest", 400, "Malformed request body")


async def test_empty_body_is_400(client: Client) -> None:
    resp = await client.post("/compute/v2.1/os-keypairs", headers=headers())
    assert resp.status == 400
    assert await shape_of(resp) == ("badRequest", 400, "Malformed request body")


async def test_body_over_the_limit_is_413(client: Client, config: Any) -> None:
    big = json.dumps({"server": {"name": "x" * config.DEFAULT.max_request_body_size}})
    resp = await client.post("/compute/v2.1/servers", data=big,
                             headers=headers(**{"Content-Type": "application/json"}))
    assert resp.status == 413
    key, _, _ = await shape_of(resp)
    assert key == "overLimit"


async def test_chunked_body_over_the_limit_is_413(client: Client, config: Any) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"keypair": {"name": "'
        for _ in range(config.DEFAULT.max_request_body_size // 4096 + 1):
            yield b"a" * 4096
        yield b'"}}'

    resp = await client.post("/compute/v2.1/os-keypairs", data=chunks(),
                             headers=headers(**{"Content-Type": "application/json"}))
    assert resp.status == 413
    assert (await shape_of(resp))[0] == "overLimit"


async def test_wrong_content_type_is_415(client: Client) -> None:
    resp = await client.post("/compute/v2.1/os-keypairs", data=b"<keypair/>",
                             headers=headers(**{"Content-Type": "application/xml"}))
    assert resp.status == 415
    assert (await shape_of(resp))[0] == "badMediaType"


async def test_schema_failure_names_the_field(client: Client) -> None:
    resp = await client.post("/compute/v2.1/os-keypairs",
                             json={"keypair": {"name": "k", "bogus": 1}}, headers=headers())
    assert resp.status == 400
    key, _, message = await shape_of(resp)
    assert key == "badRequest"
    assert message.startswith("Invalid input for field/attribute keypair.")


async def test_unexpected_exception_is_500_without_traceback(client: Client) -> None:
    resp = await client.get("/boom")
    assert resp.status == 500
    text = await resp.text()
    key, _, message = await shape_of(resp)
    assert key == "computeFault"
    assert message.startswith("Unexpected API Error.")
    assert "Traceback" not in text and "secret-internal-detail" not in text
    assert "File " not in text


async def test_error_body_callback_chooses_the_shape(client: Client) -> None:
    resp = await client.get("/identity/v3/probe")
    assert resp.status == 401
    body = await resp.json()
    assert body["error"]["code"] == 401
    resp = await client.get("/compute/v2.1/servers")
    assert (await shape_of(resp))[0] == "unauthorized"


# -- authentication -------------------------------------------------------------------

async def test_missing_token_is_401(client: Client) -> None:
    resp = await client.get("/compute/v2.1/servers/detail")
    assert resp.status == 401
    assert (await shape_of(resp))[0] == "unauthorized"


async def test_invalid_token_is_401(client: Client) -> None:
    resp = await client.get("/compute/v2.1/flavors", headers=headers("bogus"))
    assert resp.status == 401
    assert (await shape_of(resp))[0] == "unauthorized"


async def test_valid_token_reaches_the_handler(client: Client) -> None:
    resp = await client.get("/compute/v2.1/flavors", headers=headers())
    assert resp.status == 200
    assert await resp.json() == {"flavors": []}


async def test_public_routes_need_no_token(client: Client) -> None:
    for path in ("/compute", "/compute/", "/compute/v2.1", "/compute/v2.1/", "/v2.1",
                 "/v2.1/", "/openapi.json"):
        resp = await client.get(path)
        assert resp.status == 200, path


# -- microversions --------------------------------------------------------------------

async def test_microversion_defaults_and_echo(client: Client) -> None:
    resp = await client.get("/compute/v2.1/flavors", headers=headers())
    assert resp.headers["OpenStack-API-Version"] == "compute 2.1"
    assert resp.headers["X-OpenStack-Nova-API-Version"] == "2.1"
    assert resp.headers["Vary"] == "OpenStack-API-Version, X-OpenStack-Nova-API-Version"


async def test_microversion_headers_accepted(client: Client) -> None:
    for hdrs, echoed in (({"OpenStack-API-Version": "compute 2.1"}, "2.1"),
                         ({"X-OpenStack-Nova-API-Version": "2.1"}, "2.1"),
                         ({"OpenStack-API-Version": "image 2.5, compute latest"},
                          MAX_MICROVERSION),
                         ({"X-OpenStack-Nova-API-Version": "latest"}, MAX_MICROVERSION),
                         ({"OpenStack-API-Version": "compute 2.1",
                           "X-OpenStack-Nova-API-Version": "2.1"}, "2.1")):
        resp = await client.get("/v2.1/flavors", headers=headers(**hdrs))
        assert resp.status == 200, hdrs
        assert resp.headers["OpenStack-API-Version"] == f"compute {echoed}"


async def test_bad_microversion_is_400(client: Client) -> None:
    for value in ("compute 2.x", "compute 2", "compute 02.1", "compute 2.1.1"):
        resp = await client.get("/compute/v2.1/flavors",
                                headers=headers(**{"OpenStack-API-Version": value}))
        assert resp.status == 400, value
        assert (await shape_of(resp))[0] == "badRequest"


async def test_unsupported_microversion_is_406(client: Client) -> None:
    for value in (NEXT, "2.200", "3.0", "2.0", "1.1"):
        resp = await client.get("/compute/v2.1/flavors",
                                headers=headers(**{"X-OpenStack-Nova-API-Version": value}))
        assert resp.status == 406, value
        _, _, message = await shape_of(resp)
        assert message.endswith(f"Minimum is 2.1 and maximum is {MAX_MICROVERSION}."), message


async def test_new_header_wins_over_legacy(client: Client) -> None:
    resp = await client.get("/compute/v2.1/flavors",
                            headers=headers(**{"OpenStack-API-Version": "compute 2.1",
                                               "X-OpenStack-Nova-API-Version": "2.90"}))
    assert resp.status == 200


async def test_microversion_echoed_on_errors(client: Client) -> None:
    resp = await client.get("/compute/v2.1/flavors/missing", headers=headers())
    assert resp.status == 404
    assert resp.headers["X-OpenStack-Nova-API-Version"] == "2.1"
    assert "OpenStack-API-Version" in resp.headers["Vary"]


async def test_no_microversion_headers_outside_compute(client: Client) -> None:
    resp = await client.get("/openapi.json")
    assert "X-OpenStack-Nova-API-Version" not in resp.headers


# -- OpenAPI --------------------------------------------------------------------------

async def test_openapi_document(client: Client) -> None:
    resp = await client.get("/openapi.json")
    assert resp.status == 200
    doc = await resp.json()
    assert doc["openapi"].startswith("3.")
    paths = doc["paths"]
    for path in ("/compute/v2.1/servers", "/compute/v2.1/servers/{server_id}/action",
                 "/compute/v2.1/flavors", "/v2.1/flavors/{flavor_id}",
                 "/compute/v2.1/os-keypairs", "/openapi.json"):
        assert path in paths, path
    create = paths["/compute/v2.1/servers"]["post"]
    schema = create["requestBody"]["content"]["application/json"]["schema"]
    assert "flavorRef" in schema["properties"]["server"]["properties"]
    assert doc["components"]["securitySchemes"]["X-Auth-Token"]["in"] == "header"
    assert paths["/compute/v2.1"]["get"]["security"] == []
    ids = set()
    for item in paths.values():
        for op in item.values():
            assert op["responses"]
            assert op["operationId"] not in ids
            ids.add(op["operationId"])
    action = paths["/compute/v2.1/servers/{server_id}/action"]["post"]
    assert action["parameters"][0] == {"name": "server_id", "in": "path", "required": True,
                                       "schema": {"type": "string"}}


async def test_large_body_under_the_limit_is_read_whole(client: Client, config: Any) -> None:
    # The body arrives in several reads; all of it must be parsed.
    key = "ssh-rsa " + "A" * (config.DEFAULT.max_request_body_size - 1000)
    resp = await client.post("/compute/v2.1/os-keypairs",
                             json={"keypair": {"name": "big", "public_key": key}},
                             headers=headers())
    assert resp.status == 400
    assert (await shape_of(resp))[2] == "Keypair data is invalid: failed to generate fingerprint"


async def test_openapi_documents_every_served_microversion(client: Client) -> None:
    doc = await (await client.get("/openapi.json")).json()
    versions = doc["x-compute-microversions"]
    assert (versions["minimum"], versions["maximum"]) == (HISTORY[0].text, MAX_MICROVERSION)
    assert [row["version"] for row in versions["history"]] == [v.text for v in HISTORY]
    locked = next(row for row in versions["history"] if row["version"] == "2.9")
    assert "locked" in locked["changes"]
