"""Compute version discovery documents."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from aiohttp.test_utils import TestClient, TestServer
from api_helpers import UnreachableCompute, StaticNode, validate_token

from novad.api.app import build_api
from novad.api.compute import routes
from novad.api.microversion import MAX_MICROVERSION
from novad.compute.flavors import FlavorService
from novad.compute.interface import ComputeAPI
from novad.compute.keypairs import KeypairService
from novad.config import load
from novad.store import Store

Client = TestClient[Any, Any]


async def test_v21_document(client: Client) -> None:
    resp = await client.get("/compute/v2.1")
    body = await resp.json()
    base = str(client.make_url("")).rstrip("/")
    assert body == {"version": {
        "id": "v2.1", "status": "CURRENT", "version": MAX_MICROVERSION, "min_version": "2.1",
        "updated": "2013-07-23T11:33:21Z",
        "links": [{"rel": "self", "href": f"{base}/compute/v2.1/"},
                  {"rel": "describedby", "type": "text/html",
                   "href": "http://docs.openstack.org/"}],
        "media-types": [{"base": "application/json",
                         "type": "application/vnd.openstack.compute+json;version=2.1"}]}}
    assert await (await client.get("/compute/v2.1/")).json() == body


async def test_v21_document_on_the_bare_mount(client: Client) -> None:
    body = await (await client.get("/v2.1/")).json()
    base = str(client.make_url("")).rstrip("/")
    assert body["version"]["links"][0]["href"] == f"{base}/v2.1/"


async def test_versions_list(client: Client) -> None:
    resp = await client.get("/compute")
    assert resp.status == 200
    versions = (await resp.json())["versions"]
    assert [(v["id"], v["status"]) for v in versions] == [("v2.0", "SUPPORTED"),
                                                          ("v2.1", "CURRENT")]
    assert versions[1]["version"] == MAX_MICROVERSION
    assert versions[1]["links"][0]["href"].endswith("/compute/v2.1/")


async def test_public_endpoint_wins_over_host_header(tmp_path: Path, store: Store) -> None:
    config = load(None, {"api": {"public_endpoint": "https://cloud.example.com:8774/"}})
    app = build_api(config, routes(cast(ComputeAPI, UnreachableCompute()), config, None,
                                   StaticNode(), flavors=FlavorService(store),
                                   keypairs=KeypairService(store)), validate_token)
    async with TestClient(TestServer(app)) as client:
        body = await (await client.get("/compute/v2.1")).json()
    assert body["version"]["links"][0]["href"] == "https://cloud.example.com:8774/compute/v2.1/"
