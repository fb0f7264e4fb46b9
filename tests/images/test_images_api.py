"""The Glance v2 API over real HTTP: upload/download, listing, visibility,
policy, JSON patch."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator

from images_helpers import SIZE_CAP, Api

PATCH = {"Content-Type": "application/openstack-images-v2.1-json-patch"}
MiB = 1 << 20


async def _chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start:start + size]


async def test_versions_are_public(api: Api) -> None:
    status, body = await api.call("GET", "", token=None)
    assert status == 300
    current = body["versions"][0]
    assert current["id"] == "v2.16" and current["status"] == "CURRENT"
    assert current["links"][0]["href"] == f"{api.url}/image/v2/"
    status, same = await api.call("GET", "/versions", token=None)
    assert status == 200 and same == body


async def test_upload_20_mib_in_chunks_and_download_it_back(api: Api) -> None:
    data = os.urandom(20 * MiB + 12345)
    image = await api.create(name="big")
    assert image["status"] == "queued" and image["size"] is None
    # Chunked transfer encoding: no Content-Length, the server must stream.
    assert await api.upload(image["id"], _chunks(data, 256 * 1024)) == 204

    status, shown = await api.call("GET", f"/v2/images/{image['id']}")
    assert status == 200
    assert shown["status"] == "active"
    assert shown["size"] == len(data)
    assert shown["checksum"] == hashlib.md5(data).hexdigest()
    assert shown["os_hash_algo"] == "sha512"
    assert shown["os_hash_value"] == hashlib.sha512(data).hexdigest()

    md5, got = hashlib.md5(), 0
    sha = hashlib.sha512()
    async with api.session.get(f"{api.url}/image/v2/images/{image['id']}/file",
                               headers={"X-Auth-Token": "p1:member"}) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "application/octet-stream"
        assert resp.headers["Content-MD5"] == shown["checksum"]
        assert int(resp.headers["Content-Length"]) == len(data)
        async for chunk in resp.content.iter_chunked(MiB):
            md5.update(chunk)
            sha.update(chunk)
            got += len(chunk)
    assert got == len(data)
    assert md5.hexdigest() == shown["checksum"]
    assert sha.hexdigest() == shown["os_hash_value"]
    assert not list(api.images_dir.glob("*.part"))


async def test_second_upload_conflicts(api: Api) -> None:
    image = await api.create(name="once")
    assert await api.upload(image["id"], b"first") == 204
    assert await api.upload(image["id"], b"second") == 409
    status, body = await api.call("GET", f"/v2/images/{image['id']}/file")
    assert status == 200 and body == b"first"


async def test_queued_image_download_is_204(api: Api) -> None:
    image = await api.create(name="empty")
    status, body = await api.call("GET", f"/v2/images/{image['id']}/file")
    assert (status, body) == (204, None)


async def test_upload_needs_formats_and_respects_the_size_cap(api: Api) -> None:
    status, bare = await api.call("POST", "/v2/images", json={"name": "noformat"})
    assert status == 201
    assert await api.upload(bare["id"], b"x") == 400
    image = await api.create(name="huge")
    assert await api.upload(image["id"], _chunks(b"\0" * (SIZE_CAP + 1), MiB)) == 413
    status, shown = await api.call("GET", f"/v2/images/{image['id']}")
    assert shown["status"] == "queued"
    assert not list(api.images_dir.iterdir())
    assert await api.upload(image["id"], b"fits") == 204


async def test_image_json_shape(api: Api) -> None:
    image = await api.create(name="shape", kernel_id="k-1", ramdisk_id="r-1", min_ram=64,
                             tags=["a", "b"], id="a8b9c0d1-0000-4000-8000-000000000001")
    assert image["id"] == "a8b9c0d1-0000-4000-8000-000000000001"
    assert image["kernel_id"] == "k-1" and image["ramdisk_id"] == "r-1"
    assert image["owner"] == "p1" and image["visibility"] == "shared"
    assert image["protected"] is False and image["os_hidden"] is False
    assert image["min_ram"] == 64 and image["min_disk"] == 0 and image["tags"] == ["a", "b"]
    assert image["self"] == f"/v2/images/{image['id']}"
    assert image["file"] == f"/v2/images/{image['id']}/file"
    assert image["schema"] == "/v2/schemas/image"
    assert image["created_at"].endswith("Z") and "." not in image["created_at"]
    status, _ = await api.call("POST", "/v2/images", json={"id": image["id"]})
    assert status == 409
    status, _ = await api.call("POST", "/v2/images", json={"id": "not-a-uuid"})
    assert status == 400
    status, schema = await api.call("GET", "/v2/schemas/image")
    assert status == 200 and schema["name"] == "image"


async def test_filters_id_in_and_name(api: Api) -> None:
    a = await api.create(name="alpha")
    b = await api.create(name="beta")
    await api.create(name="gamma")
    status, body = await api.call("GET", f"/v2/images?id=in:{a['id']},{b['id']}")
    assert status == 200
    assert sorted(i["id"] for i in body["images"]) == sorted([a["id"], b["id"]])
    status, body = await api.call("GET", "/v2/images?name=beta")
    assert [i["id"] for i in body["images"]] == [b["id"]]
    status, body = await api.call("GET", "/v2/images?name=nothing")
    assert body["images"] == [] and "next" not in body
    assert body["first"] == "/v2/images" and body["schema"] == "/v2/schemas/images"


async def test_pagination_with_marker(api: Api) -> None:
    made = [(await api.create(name=f"img{n}"))["id"] for n in range(5)]
    newest_first = list(reversed(made))
    seen: list[str] = []
    path = "/v2/images?limit=2"
    pages = 0
    while path:
        status, body = await api.call("GET", path)
        assert status == 200
        seen += [i["id"] for i in body["images"]]
        pages += 1
        path = body.get("next", "")
    assert seen == newest_first
    assert pages == 3
    status, body = await api.call("GET", f"/v2/images?marker={made[2]}")
    assert [i["id"] for i in body["images"]] == [made[1], made[0]]
    status, _ = await api.call("GET", "/v2/images?marker=bogus")
    assert status == 400


async def test_private_image_of_a_is_404_for_b(api: Api) -> None:
    private = await api.create("pa:member", name="mine", visibility="private")
    status, _ = await api.call("GET", f"/v2/images/{private['id']}", "pb:member")
    assert status == 404
    status, body = await api.call("GET", "/v2/images", "pb:member")
    assert body["images"] == []
    status, _ = await api.call("DELETE", f"/v2/images/{private['id']}", "pb:member")
    assert status == 404
    status, _ = await api.call("GET", f"/v2/images/{private['id']}", "pb:admin")
    assert status == 200
    status, _ = await api.call("GET", f"/v2/images/{private['id']}", "pa:reader")
    assert status == 200


async def test_public_and_community_visibility(api: Api) -> None:
    public = await api.create("pa:admin", name="pub", visibility="public")
    community = await api.create("pa:member", name="com", visibility="community")
    status, body = await api.call("GET", "/v2/images", "pb:reader")
    assert [i["id"] for i in body["images"]] == [public["id"]]
    status, body = await api.call("GET", "/v2/images?visibility=community", "pb:reader")
    assert [i["id"] for i in body["images"]] == [community["id"]]
    status, _ = await api.call("GET", f"/v2/images/{community['id']}", "pb:reader")
    assert status == 200
    # Visible, but not theirs: 403 on writes.
    status, _ = await api.call("DELETE", f"/v2/images/{public['id']}", "pb:member")
    assert status == 403
    status, _ = await api.call("POST", "/v2/images", "pb:member",
                               json={"name": "x", "visibility": "public"})
    assert status == 403


async def test_reader_cannot_write(api: Api) -> None:
    status, body = await api.call("POST", "/v2/images", "p1:reader", json={"name": "r"})
    assert status == 403 and body["forbidden"]["code"] == 403
    image = await api.create(name="owned")
    status, _ = await api.call("PATCH", f"/v2/images/{image['id']}", "p1:reader",
                               json=[], headers=PATCH)
    assert status == 403
    assert await api.upload(image["id"], b"data", token="p1:reader") == 403
    status, _ = await api.call("DELETE", f"/v2/images/{image['id']}", "p1:reader")
    assert status == 403
    status, _ = await api.call("GET", "/v2/images", token=None)
    assert status == 401


async def test_json_patch_properties(api: Api) -> None:
    image = await api.create(name="patchme")
    path = f"/v2/images/{image['id']}"
    ops = [{"op": "add", "path": "/os_distro", "value": "cirros"},
           {"op": "add", "path": "/hw_disk_bus", "value": "virtio"},
           {"op": "replace", "path": "/name", "value": "patched"},
           {"op": "replace", "path": "/min_disk", "value": 2},
           {"op": "add", "path": "/tags/-", "value": "t1"}]
    status, body = await api.call("PATCH", path, json=ops, headers=PATCH)
    assert status == 200, body
    assert body["os_distro"] == "cirros" and body["name"] == "patched"
    assert body["min_disk"] == 2 and body["tags"] == ["t1"]
    ops = [{"op": "replace", "path": "/os_distro", "value": "ubuntu"},
           {"op": "remove", "path": "/hw_disk_bus"}]
    status, body = await api.call("PATCH", path, json=ops, headers=PATCH)
    assert status == 200
    assert body["os_distro"] == "ubuntu" and "hw_disk_bus" not in body
    status, shown = await api.call("GET", path)
    assert shown == body

    for ops, expected in [
        ([{"op": "replace", "path": "/status", "value": "active"}], 403),
        ([{"op": "add", "path": "/checksum", "value": "x"}], 403),
        ([{"op": "add", "path": "/deleted", "value": "x"}], 403),
        ([{"op": "remove", "path": "/name"}], 403),
        ([{"op": "replace", "path": "/missing", "value": "x"}], 409),
        ([{"op": "remove", "path": "/missing"}], 409),
        ([{"op": "move", "path": "/name", "from": "/x"}], 400),
        ([{"op": "add", "path": "/min_ram", "value": "lots"}], 400),
        ([{"op": "add", "path": "/prop", "value": 5}], 400),
        ([{"op": "replace", "path": "/visibility", "value": "public"}], 403),
        ({"op": "add"}, 400),
    ]:
        status, err = await api.call("PATCH", path, json=ops, headers=PATCH)
        assert status == expected, (ops, err)
    status, err = await api.call("PATCH", path, json=[{"op": "add", "path": "/id",
                                                       "value": "x"}], headers=PATCH)
    assert err["forbidden"]["message"] == "Attribute 'id' is read-only."
    status, _ = await api.call("PATCH", path, json=[], headers={"Content-Type":
                                                                "application/json"})
    assert status == 415


async def test_the_older_patch_dialect_is_read_as_glance_reads_it(api: Api) -> None:
    """``application/openstack-images-v2.0-json-patch`` (what Tempest's image
    client sends) names each operation's kind as its key."""
    image = await api.create(name="old-dialect")
    path = f"/v2/images/{image['id']}"
    v20 = {"Content-Type": "application/openstack-images-v2.0-json-patch"}
    ops = [{"add": "/hw_rescue_bus", "value": "virtio"},
           {"replace": "/name", "value": "renamed"}]
    status, body = await api.call("PATCH", path, json=ops, headers=v20)
    assert status == 200, body
    assert (body["hw_rescue_bus"], body["name"]) == ("virtio", "renamed")
    status, body = await api.call("PATCH", path, json=[{"remove": "/hw_rescue_bus"}],
                                  headers=v20)
    assert status == 200 and "hw_rescue_bus" not in body
    for bad in ([{"add": "/a", "remove": "/b"}], [{"move": "/name"}], [{"add": "/a"}]):
        status, err = await api.call("PATCH", path, json=bad, headers=v20)
        assert status == 400, (bad, err)


async def test_protected_image_cannot_be_deleted(api: Api) -> None:
    image = await api.create(name="keep", protected=True)
    path = f"/v2/images/{image['id']}"
    status, _ = await api.call("DELETE", path)
    assert status == 403
    status, _ = await api.call("PATCH", path, json=[{"op": "replace", "path": "/protected",
                                                     "value": False}], headers=PATCH)
    assert status == 200
    status, _ = await api.call("DELETE", path)
    assert status == 204
    status, _ = await api.call("GET", path)
    assert status == 404


async def test_delete_removes_the_file(api: Api) -> None:
    image = await api.create(name="gone")
    assert await api.upload(image["id"], b"bytes") == 204
    assert (api.images_dir / image["id"]).is_file()
    status, _ = await api.call("DELETE", f"/v2/images/{image['id']}")
    assert status == 204
    assert not (api.images_dir / image["id"]).exists()


async def test_deactivate_and_reactivate(api: Api) -> None:
    image = await api.create(name="toggle")
    assert await api.upload(image["id"], b"bits") == 204
    actions = f"/v2/images/{image['id']}/actions"
    status, _ = await api.call("POST", f"{actions}/deactivate")
    assert status == 403
    status, _ = await api.call("POST", f"{actions}/deactivate", "p1:admin")
    assert status == 204
    status, _ = await api.call("GET", f"/v2/images/{image['id']}/file")
    assert status == 403
    status, _ = await api.call("POST", f"{actions}/reactivate", "p1:admin")
    assert status == 204
    status, body = await api.call("GET", f"/v2/images/{image['id']}/file")
    assert (status, body) == (200, b"bits")


async def test_tags_endpoints(api: Api) -> None:
    image = await api.create(name="tagged")
    path = f"/v2/images/{image['id']}"
    assert (await api.call("PUT", f"{path}/tags/red"))[0] == 204
    assert (await api.call("PUT", f"{path}/tags/red"))[0] == 204
    assert (await api.call("GET", path))[1]["tags"] == ["red"]
    status, body = await api.call("GET", "/v2/images?tag=red")
    assert [i["id"] for i in body["images"]] == [image["id"]]
    assert (await api.call("DELETE", f"{path}/tags/red"))[0] == 204
    assert (await api.call("DELETE", f"{path}/tags/red"))[0] == 404
