"""The config drive: an ISO 9660 image in OpenStack's layout.

Nova writes it with ``genisoimage``; novad writes it with ``pycdlib`` (pure
Python), so a machine without the ISO tools still gets one.  The volume
label is ``config-2``, which cloud-init looks for; Rock Ridge and Joliet
carry the real (long, lower-case) file names.  Layout::

    openstack/latest/meta_data.json       uuid, name, hostname, keys, az, project, meta
    openstack/latest/user_data            when the server has user data
    openstack/latest/network_data.json    {} (no networking service yet)
    openstack/latest/vendor_data.json     {}
    openstack/2012-08-10/...              the same files (the oldest version cloud-init knows)
    openstack/content/0000, 0001, ...     the personality files' contents, in order;
                                          each version's meta_data.json lists them in
                                          ``files`` (path in the guest, content_path)

The image is written under a temporary name and renamed into place, so a
crash never leaves half an ISO where the guest would find it.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any, Final

import pycdlib

from novad import hostname
from novad.drivers.base import InstanceSpec

LABEL: Final = "config-2"
VERSIONS: Final = ("2012-08-10", "latest")


def meta_data(spec: InstanceSpec) -> dict[str, Any]:
    """``meta_data.json`` for ``spec``, with Nova's keys."""
    keys: dict[str, str] = {}
    if spec.key_data:
        keys[spec.key_name or "key"] = spec.key_data
    data: dict[str, Any] = {
        "uuid": spec.instance_id,
        "name": spec.name,
        "hostname": spec.hostname or hostname.sanitize(spec.name, spec.instance_id),
        "availability_zone": spec.availability_zone,
        "project_id": spec.project_id,
        "launch_index": 0,
        "meta": dict(spec.metadata),
        "public_keys": keys,
        "devices": [],
    }
    if keys:
        data["keys"] = [{"name": name, "type": "ssh", "data": key}
                        for name, key in keys.items()]
    if spec.files:
        data["files"] = [{"path": path, "content_path": f"/{content}"}
                         for (path, _), content in zip(spec.files, content_paths(spec),
                                                       strict=True)]
    return data


def content_paths(spec: InstanceSpec) -> list[str]:
    """Where each personality file's contents go, under ``openstack/``:
    ``content/0000``, ``content/0001``, ... (OpenStack's layout)."""
    return [f"content/{index:04d}" for index in range(len(spec.files))]


def files_of(spec: InstanceSpec) -> dict[str, bytes]:
    """Every file of the drive, by path, for ``spec``."""
    meta = json.dumps(meta_data(spec)).encode()
    found: dict[str, bytes] = {}
    for version in VERSIONS:
        base = f"openstack/{version}"
        found[f"{base}/meta_data.json"] = meta
        found[f"{base}/network_data.json"] = b"{}"
        found[f"{base}/vendor_data.json"] = b"{}"
        if spec.user_data is not None:
            found[f"{base}/user_data"] = spec.user_data
    for (_, data), content in zip(spec.files, content_paths(spec), strict=True):
        found[f"openstack/{content}"] = data
    return found


def write(spec: InstanceSpec, target: Path) -> None:
    """Write the config drive of ``spec`` at ``target`` (blocks; run it in a thread)."""
    iso = pycdlib.PyCdlib()
    # Level 4 (ISO 9660:1999) takes the names as they are; Rock Ridge and
    # Joliet make Linux and Windows guests show them so.
    iso.new(interchange_level=4, vol_ident=LABEL, joliet=3, rock_ridge="1.09")
    dirs: set[str] = set()
    for path, data in sorted(files_of(spec).items()):
        parts = path.split("/")
        for depth in range(1, len(parts)):
            folder = "/".join(parts[:depth])
            if folder not in dirs:
                dirs.add(folder)
                iso.add_directory(f"/{folder}", rr_name=parts[depth - 1],
                                  joliet_path=f"/{folder}")
        iso.add_fp(io.BytesIO(data), len(data), f"/{path}", rr_name=parts[-1],
                   joliet_path=f"/{path}")
    part = target.with_name(f".{target.name}.part")
    try:
        iso.write(str(part))
    finally:
        iso.close()
    os.replace(part, target)
