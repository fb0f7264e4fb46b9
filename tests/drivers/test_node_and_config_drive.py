"""The libvirt driver's node tag and config drive, on ``test:///default``."""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path

import pycdlib

from novad.drivers.base import FlavorSpec, ImageSpec, InstanceSpec
from novad.drivers.libvirt import LibvirtDriver, configdrive
from novad.nodeid import NODE_ID_FILE, node_id, save_node_id

FLAVOR = FlavorSpec(flavor_id="1", name="m1.tiny", vcpus=1, memory_mb=128, root_gb=1)


def spec_in(tmp_path: Path, **changes: object) -> InstanceSpec:
    instance_id = str(uuid.uuid4())
    return InstanceSpec(instance_id=instance_id, name="My Server_1", project_id="p1",
                        user_id="u1", flavor=FLAVOR, image=ImageSpec("img"),
                        instance_dir=tmp_path / "instances" / instance_id,
                        **changes)  # type: ignore[arg-type]


async def test_each_driver_lists_only_its_nodes_guests(tmp_path: Path) -> None:
    mine = LibvirtDriver("test:///default", "qemu", "127.0.0.1", "n", node_id="node-a",
                         instances_path=tmp_path)
    other = LibvirtDriver("test:///default", "qemu", "127.0.0.1", "n", node_id="node-b",
                          instances_path=tmp_path)
    await mine.start()
    await other.start()
    spec = spec_in(tmp_path)
    try:
        await mine.spawn(spec)
        assert spec.instance_id in await mine.list_instances()
        assert spec.instance_id not in await other.list_instances()
        assert "<novad:node>node-a</novad:node>" in (spec.instance_dir / "libvirt.xml").read_text()
    finally:
        await mine.destroy(spec.instance_id, spec.instance_dir)
        await mine.close()
        await other.close()


def test_node_id_is_stable_and_kept_in_the_state_dir(tmp_path: Path) -> None:
    state = tmp_path / "state"
    before = node_id(state)  # derived, nothing written yet
    assert not state.exists()
    state.mkdir()
    assert save_node_id(state) == before == node_id(state)
    assert (state / NODE_ID_FILE).read_text().strip() == before
    assert node_id(tmp_path / "elsewhere") != before


def _read(iso: pycdlib.PyCdlib, path: str) -> bytes:
    out = io.BytesIO()
    iso.get_file_from_iso_fp(out, rr_path=path)
    return out.getvalue()


def test_config_drive_has_openstacks_layout(tmp_path: Path) -> None:
    spec = spec_in(tmp_path, user_data=b"#cloud-config\n", key_data="ssh-ed25519 AAAA k@h",
                   key_name="k1", metadata={"role": "web"})
    target = tmp_path / "disk.config"
    configdrive.write(spec, target)
    iso = pycdlib.PyCdlib()
    iso.open(str(target))
    try:
        assert iso.pvd.volume_identifier.decode().strip() == "config-2"
        for version in ("latest", "2012-08-10"):
            meta = json.loads(_read(iso, f"/openstack/{version}/meta_data.json"))
            assert meta["uuid"] == spec.instance_id
            assert meta["hostname"] == "my-server-1"
            assert meta["public_keys"] == {"k1": "ssh-ed25519 AAAA k@h"}
            assert meta["meta"] == {"role": "web"} and meta["launch_index"] == 0
            assert meta["project_id"] == "p1" and meta["availability_zone"] == "nova"
            assert _read(iso, f"/openstack/{version}/user_data") == b"#cloud-config\n"
    finally:
        iso.close()
    assert not list(tmp_path.glob(".*.part"))


def test_config_drive_publishes_the_hostname_the_user_chose(tmp_path: Path) -> None:
    assert configdrive.meta_data(spec_in(tmp_path))["hostname"] == "my-server-1"
    chosen = spec_in(tmp_path, hostname="web-01.example.org")
    assert configdrive.meta_data(chosen)["hostname"] == "web-01.example.org"


def test_config_drive_carries_personality_files(tmp_path: Path) -> None:
    files = (("/etc/motd", b"hi\n"), ("/etc/app/app.ini", b"\x00\x01binary"))
    spec = spec_in(tmp_path, files=files)
    target = tmp_path / "disk.config"
    configdrive.write(spec, target)
    iso = pycdlib.PyCdlib()
    iso.open(str(target))
    try:
        for version in ("latest", "2012-08-10"):
            meta = json.loads(_read(iso, f"/openstack/{version}/meta_data.json"))
            assert meta["files"] == [{"path": "/etc/motd", "content_path": "/content/0000"},
                                     {"path": "/etc/app/app.ini",
                                      "content_path": "/content/0001"}]
        assert _read(iso, "/openstack/content/0000") == b"hi\n"
        assert _read(iso, "/openstack/content/0001") == b"\x00\x01binary"
    finally:
        iso.close()
    assert "files" not in configdrive.meta_data(spec_in(tmp_path))
