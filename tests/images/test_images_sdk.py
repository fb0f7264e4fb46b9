"""openstacksdk, unmodified, against the image API (the calls the
``openstack image ...`` commands make), run in a thread so the event loop
keeps serving."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import openstack.connection
from images_helpers import Api
from keystoneauth1 import session as ks_session
from keystoneauth1 import token_endpoint


def _connect(api: Api, token: str) -> openstack.connection.Connection:
    """An SDK connection with a static token and the image endpoint fixed."""
    auth = token_endpoint.Token(endpoint=f"{api.url}/image", token=token)
    return openstack.connection.Connection(session=ks_session.Session(auth=auth),
                                           image_endpoint_override=f"{api.url}/image")


def _sdk_flow(api: Api, tmp: Path) -> None:
    conn = _connect(api, "p1:member")
    data = os.urandom(3 * 1024 * 1024 + 7)
    src = tmp / "cirros.qcow2"
    src.write_bytes(data)
    # What `openstack image create --file F --disk-format qcow2
    # --container-format bare NAME` calls.
    conn.image.create_image(name="cirros", filename=str(src), disk_format="qcow2",
                            container_format="bare", allow_duplicates=True)
    image = conn.image.find_image("cirros", ignore_missing=False)
    assert image.status == "active"
    assert image.size == len(data)
    assert image.checksum == hashlib.md5(data).hexdigest()
    assert image.hash_value == hashlib.sha512(data).hexdigest()
    assert image.properties["owner_specified.openstack.md5"] == ""

    assert [i.name for i in conn.image.images()] == ["cirros"]
    assert conn.image.get_image(image.id).id == image.id

    # `openstack image set --property k=v NAME` and `image unset --property k`
    # (declared SDK attributes such as os_distro are not in `properties`).
    conn.image.update_image(image.id, os_distro="cirros", novad_test_prop="virtio", min_ram=64)
    updated = conn.image.get_image(image.id)
    assert updated.os_distro == "cirros" and updated.min_ram == 64
    assert updated.properties["novad_test_prop"] == "virtio"
    delattr(updated, "os_distro")
    new_props = dict(updated.properties)
    new_props.pop("novad_test_prop")
    conn.image.update_image(updated, properties=new_props)
    unset = conn.image.get_image(image.id)
    assert unset.os_distro is None and "novad_test_prop" not in unset.properties

    # `openstack image save --file OUT NAME` (verifies the sha512 itself).
    out = io.BytesIO()
    conn.image.download_image(image.id, stream=True, output=out)
    assert out.getvalue() == data

    # Pagination through `next` links.
    for n in range(3):
        conn.image.create_image(name=f"extra{n}", disk_format="raw",
                                container_format="bare", allow_duplicates=True)
    names = sorted(i.name for i in conn.image.images(limit=2))
    assert names == ["cirros", "extra0", "extra1", "extra2"]

    conn.image.delete_image(image.id)
    assert conn.image.find_image("cirros") is None


async def test_openstacksdk_create_list_get_download_delete(api: Api, tmp_path: Path) -> None:
    import asyncio

    await asyncio.to_thread(_sdk_flow, api, tmp_path)
