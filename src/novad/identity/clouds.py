"""The ``clouds.yaml`` novad writes for its bootstrap admin.

The admin password exists in clear only in this file (mode 0600), so a
later start that needs a new ``auth_url`` reads the password back from it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import structlog
import yaml

CLOUD_NAME = "novad"
CLOUDS_FILE = "clouds.yaml"

log = structlog.get_logger(__name__)


def auth_url_for(public_url: str) -> str:
    """The Keystone v3 URL under a node's public base URL."""
    return f"{public_url.rstrip('/')}/identity/v3"


def cloud_entry(auth_url: str, username: str, password: str, project_name: str
                ) -> dict[str, Any]:
    """One ``clouds:`` entry for password auth against novad."""
    return {
        "auth_type": "password",
        "auth": {
            "auth_url": auth_url,
            "username": username,
            "password": password,
            "project_name": project_name,
            "user_domain_name": "Default",
            "project_domain_name": "Default",
        },
        "region_name": "RegionOne",
        "identity_api_version": 3,
    }


def write_private_yaml(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` to ``path`` atomically with mode 0600.  Blocks."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            yaml.safe_dump(data, fh, default_flow_style=False, sort_keys=False)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_clouds_yaml(path: Path, auth_url: str, password: str) -> None:
    """Create ``path`` with the ``novad`` cloud for user ``admin``.  Blocks."""
    entry = cloud_entry(auth_url, "admin", password, "admin")
    write_private_yaml(path, {"clouds": {CLOUD_NAME: entry}})


def retarget_clouds_yaml(path: Path, auth_url: str) -> bool:
    """Point the ``novad`` cloud of ``path`` at ``auth_url``, keeping the rest.

    Returns True when the file was rewritten.  A missing or unreadable file
    is left alone (logged): the password it held cannot be recovered.
    Blocks.
    """
    try:
        data = yaml.safe_load(path.read_text())
        auth = data["clouds"][CLOUD_NAME]["auth"]
        current = auth["auth_url"]
    except FileNotFoundError:
        log.warning("clouds_yaml_missing", path=str(path))
        return False
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        log.warning("clouds_yaml_unreadable", path=str(path))
        return False
    if current == auth_url:
        return False
    auth["auth_url"] = auth_url
    write_private_yaml(path, data)
    log.info("clouds_yaml_retargeted", path=str(path), auth_url=auth_url)
    return True
