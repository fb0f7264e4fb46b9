"""Nova's ``sanitize_hostname`` (``novad.hostname``), which the API's
``OS-EXT-SRV-ATTR:hostname`` and the config drive's ``meta_data.json`` share."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from novad.drivers.base import FlavorSpec, ImageSpec, InstanceSpec
from novad.drivers.libvirt import configdrive
from novad.hostname import sanitize

UUID = "2c1e7f5e-0b7a-4a52-9a57-6a3b9f0f3c11"


@pytest.mark.parametrize(("name", "expected"), [
    ("My Server_1", "my-server-1"),             # spaces and underscores become hyphens
    ("web.example.org", "web-example-org"),     # and so do dots
    ("a!b@c#d", "abcd"),                        # other punctuation is dropped
    ("--edge--", "edge"),                       # no leading or trailing hyphens
    ("Zoë 中文", "zoë"),                         # Latin-1 only; what is left is lower case
    ("x" * 70, "x" * 63),                       # a DNS label's 63 characters
    ("!!!", f"Server-{UUID}"[:63]),             # nothing left: Server-<uuid>
])
def test_sanitize_follows_novas_rules(name: str, expected: str) -> None:
    assert sanitize(name, UUID) == expected


def test_the_config_drive_publishes_the_hostname_the_api_shows(tmp_path: Path) -> None:
    """A guest calls itself what ``server show`` says it is called, for a
    name Nova's rules treat differently from a plain slug."""
    instance_id = str(uuid.uuid4())
    spec = InstanceSpec(instance_id=instance_id, name="Zoë's web.box!", project_id="p",
                        user_id="u", flavor=FlavorSpec(flavor_id="1", name="m1.tiny", vcpus=1,
                                          memory_mb=128, root_gb=1),
                        image=ImageSpec("img"), instance_dir=tmp_path / instance_id)
    assert configdrive.meta_data(spec)["hostname"] == sanitize(spec.name, instance_id) \
        == "zoës-web-box"
