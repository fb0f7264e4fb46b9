"""Nova's image proxy under the compute mounts, over HTTP: ``/images`` in
Nova's shapes below 2.36 and 404 from it, ``/images/{id}/metadata`` below
2.39 and 404 from it, everything through the real image service (SQLite,
data on disk) with the caller's rights."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from api_helpers import MEMBER, OTHER, error_of, headers
from stack_api import stack_client
from compute.conftest import Stack

from novad.api.compute.servers import MAX_METADATA_ITEMS
from novad.images.model import Image

Client = TestClient[Any, Any]
V = "/compute/v2.1"

SHOW_KEYS = {"id", "name", "minRam", "minDisk", "metadata", "created", "updated", "status",
             "progress", "links", "OS-EXT-IMG-SIZE:size"}
"""Nova's image view of an image no server made (Tempest requires all but the size)."""

SERVER = "6c3e4f5a-1b2c-4d5e-8f90-a1b2c3d4e5f6"


def at(version: str, token: str = "member-token") -> dict[str, str]:
    return headers(token, **{"OpenStack-API-Version": f"compute {version}"})


@pytest.fixture
async def client(stack: Stack) -> AsyncIterator[Client]:
    async with stack_client(stack, images=True) as test_client:
        yield test_client


@pytest.fixture
async def image(stack: Stack, tmp_path: Path) -> Image:
    """An active image of the member's project, with one extra property."""
    data = tmp_path / "disk.raw"
    data.write_bytes(b"\0" * 4096)
    return await stack.images.create_from_file(MEMBER.project_id, "img", data, "raw",
                                               {"os_type": "linux"}, min_disk=1, min_ram=64)


async def get_json(client: Client, path: str, version: str = "2.35",
                   token: str = "member-token") -> tuple[int, Any]:
    resp = await client.get(f"{V}{path}", headers=at(version, token))
    return resp.status, await resp.json()


# -- the image proxy, 2.35 and 2.36 -------------------------------------------------------

async def test_show_is_novas_view(client: Client, image: Image) -> None:
    status, body = await get_json(client, f"/images/{image.id}", "2.1")
    assert status == 200 and set(body) == {"image"}
    view = body["image"]
    assert set(view) == SHOW_KEYS
    assert (view["id"], view["name"], view["minRam"], view["minDisk"]) == \
        (image.id, "img", 64, 1)
    assert view["metadata"] == {"os_type": "linux"}
    assert (view["status"], view["progress"], view["OS-EXT-IMG-SIZE:size"]) == \
        ("ACTIVE", 100, 4096)
    assert view["created"].endswith("Z") and len(view["created"]) == 20
    assert view["updated"].endswith("Z")
    rels = {link["rel"]: link for link in view["links"]}
    assert rels["self"]["href"].endswith(f"/compute/v2.1/images/{image.id}")
    assert rels["bookmark"]["href"].endswith(f"/compute/images/{image.id}")
    assert rels["alternate"]["type"] == "application/vnd.openstack.image"
    assert rels["alternate"]["href"].endswith(f"/image/images/{image.id}")


async def test_a_queued_image_is_saving_at_25(stack: Stack, client: Client) -> None:
    queued = await stack.images.reserve(MEMBER.project_id, "snap", {})
    _, body = await get_json(client, f"/images/{queued.id}")
    assert (body["image"]["status"], body["image"]["progress"]) == ("SAVING", 25)
    assert body["image"]["OS-EXT-IMG-SIZE:size"] is None
    await stack.images.kill(queued.id)
    _, body = await get_json(client, f"/images/{queued.id}")
    assert (body["image"]["status"], body["image"]["progress"]) == ("ERROR", 0)


async def test_a_snapshot_names_its_server(stack: Stack, client: Client) -> None:
    snap = await stack.images.reserve(MEMBER.project_id, "snap",
                                      {"instance_uuid": SERVER, "image_type": "snapshot"})
    _, body = await get_json(client, f"/images/{snap.id}")
    server = body["image"]["server"]
    assert server["id"] == SERVER
    assert [link["rel"] for link in server["links"]] == ["self", "bookmark"]
    assert server["links"][0]["href"].endswith(f"/compute/v2.1/servers/{SERVER}")


async def test_list_and_detail(stack: Stack, client: Client, image: Image) -> None:
    status, body = await get_json(client, "/images")
    assert status == 200 and set(body) == {"images"}
    (item,) = body["images"]
    assert set(item) == {"id", "name", "links"} and item["id"] == image.id
    status, body = await get_json(client, "/images/detail")
    assert status == 200 and set(body["images"][0]) == SHOW_KEYS


async def test_list_filters(stack: Stack, client: Client, image: Image) -> None:
    snap = await stack.images.reserve(MEMBER.project_id, "snap",
                                      {"instance_uuid": SERVER, "image_type": "snapshot"})

    async def ids(query: str) -> set[str]:
        status, body = await get_json(client, f"/images/detail?{query}")
        assert status == 200, body
        return {i["id"] for i in body["images"]}

    assert await ids("name=img") == {image.id}
    assert await ids("status=ACTIVE") == {image.id}
    assert await ids("status=queued") == {snap.id}
    assert await ids(f"server=http://host/compute/v2.1/servers/{SERVER}") == {snap.id}
    assert await ids("type=snapshot") == {snap.id}
    assert await ids("property-os_type=linux") == {image.id}
    assert await ids("minRam=64") == {image.id}
    assert await ids("minDisk=2") == set()
    assert await ids("changes-since=2000-01-01T00:00:00Z") == {image.id, snap.id}
    assert await ids("changes-since=2999-01-01T00:00:00Z") == set()
    status, _ = await get_json(client, "/images?minRam=lots")
    assert status == 400


async def test_paging(stack: Stack, client: Client, image: Image) -> None:
    snap = await stack.images.reserve(MEMBER.project_id, "snap", {})
    _, first = await get_json(client, "/images?limit=1")
    (newest,) = first["images"]
    assert newest["id"] == snap.id
    (link,) = first["images_links"]
    assert link["rel"] == "next"
    assert "/compute/v2.1/images?" in link["href"] and f"marker={snap.id}" in link["href"]
    _, second = await get_json(client, f"/images/detail?limit=1&marker={snap.id}")
    assert [i["id"] for i in second["images"]] == [image.id]
    assert "/compute/v2.1/images/detail?" in second["images_links"][0]["href"]
    _, rest = await get_json(client, f"/images?limit=1&marker={image.id}")
    assert rest == {"images": []}
    status, _ = await get_json(client, "/images?marker=nope")
    assert status == 400


async def test_delete(client: Client, image: Image) -> None:
    resp = await client.delete(f"{V}/images/{image.id}", headers=at("2.35"))
    assert resp.status == 204
    resp = await client.get(f"{V}/images/{image.id}", headers=at("2.35"))
    assert (await error_of(resp))[:2] == (404, "itemNotFound")
    resp = await client.delete(f"{V}/images/{image.id}", headers=at("2.35"))
    assert resp.status == 404


@pytest.mark.parametrize(("method", "path", "body"), [
    ("GET", "/images/{id}", None), ("DELETE", "/images/{id}", None),
    ("GET", "/images/{id}/metadata", None), ("GET", "/images/{id}/metadata/a", None),
    ("POST", "/images/{id}/metadata", {"metadata": {"a": "1"}}),
    ("PUT", "/images/{id}/metadata/a", {"meta": {"a": "1"}}),
    ("DELETE", "/images/{id}/metadata/a", None)])
async def test_an_image_the_caller_cannot_see_is_novas_404(
        client: Client, image: Image, method: str, path: str, body: Any) -> None:
    """Nova's proxy words the miss its own way, "Image not found.", for an
    unknown image and for another project's private one alike."""
    for ident, token in (("0" * 8 + "-0000-4000-8000-" + "0" * 12, "member-token"),
                         (image.id, "other-token")):
        resp = await client.request(method, V + path.format(id=ident), json=body,
                                    headers=at("2.35", token))
        assert await error_of(resp) == (404, "itemNotFound", "Image not found."), (path, token)


async def test_delete_of_anothers_image(stack: Stack, client: Client, image: Image,
                                        tmp_path: Path) -> None:
    """A private image of another project is invisible (404); a public one
    is visible but not the caller's to delete (403), as the image API says."""
    resp = await client.delete(f"{V}/images/{image.id}", headers=at("2.35", "other-token"))
    assert (await error_of(resp))[:2] == (404, "itemNotFound")
    data = tmp_path / "pub.raw"
    data.write_bytes(b"\0" * 512)
    public = await stack.images.create_from_file(MEMBER.project_id, "pub", data, "raw", {},
                                                 visibility="public")
    resp = await client.delete(f"{V}/images/{public.id}", headers=at("2.35", "other-token"))
    assert (await error_of(resp))[:2] == (403, "forbidden")
    assert (await stack.images.get(OTHER, public.id)).id == public.id


async def test_delete_of_a_protected_image_is_403(stack: Stack, client: Client,
                                                  image: Image) -> None:
    await stack.images.update(MEMBER, image.id,
                              [{"op": "replace", "path": "/protected", "value": True}])
    resp = await client.delete(f"{V}/images/{image.id}", headers=at("2.35"))
    assert (await error_of(resp))[:2] == (403, "forbidden")


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/images"), ("GET", "/images/detail"), ("GET", "/images/{id}"),
    ("DELETE", "/images/{id}")])
async def test_2_36_proxy_is_404(client: Client, image: Image, method: str,
                                 path: str) -> None:
    url = V + path.format(id=image.id)
    resp = await client.request(method, url, headers=at("2.36"))
    assert (await error_of(resp))[:2] == (404, "itemNotFound")
    resp = await client.request(method, url, headers=at("2.35"))
    assert resp.status in (200, 204)


# -- image metadata, 2.38 and 2.39 --------------------------------------------------------

async def call(client: Client, method: str, path: str, version: str = "2.38",
               body: Any = None, token: str = "member-token") -> tuple[int, Any]:
    resp = await client.request(method, f"{V}{path}", json=body, headers=at(version, token))
    raw = await resp.read()
    return resp.status, (await resp.json() if raw else None)


async def test_metadata_routes(client: Client, image: Image) -> None:
    meta = f"/images/{image.id}/metadata"
    assert await call(client, "GET", meta) == (200, {"metadata": {"os_type": "linux"}})
    assert await call(client, "POST", meta, body={"metadata": {"a": "1"}}) == \
        (200, {"metadata": {"os_type": "linux", "a": "1"}})
    assert await call(client, "PUT", f"{meta}/b", body={"meta": {"b": "2"}}) == \
        (200, {"meta": {"b": "2"}})
    assert await call(client, "GET", f"{meta}/b") == (200, {"meta": {"b": "2"}})
    assert await call(client, "DELETE", f"{meta}/a") == (204, None)
    assert (await call(client, "DELETE", f"{meta}/a"))[0] == 404
    assert (await call(client, "GET", f"{meta}/a"))[0] == 404
    assert await call(client, "PUT", meta, body={"metadata": {"c": "3"}}) == \
        (200, {"metadata": {"c": "3"}})
    _, shown = await get_json(client, f"/images/{image.id}")
    assert shown["image"]["metadata"] == {"c": "3"}


async def test_metadata_refusals(client: Client, image: Image) -> None:
    meta = f"/images/{image.id}/metadata"
    status, body = await call(client, "PUT", f"{meta}/b", body={"meta": {"c": "2"}})
    assert (status, body["badRequest"]["message"]) == (400, "Request body and URI mismatch")
    too_many = {f"k{i}": "v" for i in range(MAX_METADATA_ITEMS)}
    status, body = await call(client, "POST", meta, body={"metadata": too_many})
    assert (status, body["forbidden"]["message"]) == (403, "Image metadata limit exceeded")
    status, _ = await call(client, "POST", meta, body={"metadata": {"name": "x"}})
    assert status == 403
    status, _ = await call(client, "POST", meta, body={"metadata": {"a": "1"}},
                           token="other-token")
    assert status == 404
    assert (await call(client, "GET", meta))[1] == {"metadata": {"os_type": "linux"}}


@pytest.mark.parametrize(("method", "path", "body"), [
    ("GET", "", None), ("POST", "", {"metadata": {"a": "1"}}),
    ("PUT", "", {"metadata": {}}), ("GET", "/os_type", None),
    ("PUT", "/a", {"meta": {"a": "1"}}), ("DELETE", "/os_type", None)])
async def test_2_39_metadata_is_404(client: Client, image: Image, method: str, path: str,
                                    body: Any) -> None:
    url = f"/images/{image.id}/metadata{path}"
    status, answer = await call(client, method, url, "2.39", body)
    assert status == 404 and "itemNotFound" in answer
    status, _ = await call(client, method, url, "2.38", body)
    assert status in (200, 204)
