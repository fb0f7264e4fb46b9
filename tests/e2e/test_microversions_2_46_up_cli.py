"""2.46 to 2.60 through a real daemon and the unmodified ``openstack`` CLI:
``compute service set`` by service UUID (2.53: the CLI finds the service by
host and binary, then PUTs by its id), the embedded flavor of ``server
show`` (2.47) and flavor descriptions (2.55).  Each command names its
microversion, so what is checked is that version's behaviour whatever the
CLI would negotiate.  The tests run in file order."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from e2e_helpers import OPENSTACK, Daemon

pytestmark = [
    pytest.mark.cli,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.skipif(not OPENSTACK.exists(), reason="python-openstackclient not installed"),
]


def at(version: str) -> tuple[str, str]:
    return ("--os-compute-api-version", version)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def server(novad: Daemon) -> AsyncIterator[str]:
    """An active server of the admin project (its id)."""
    await novad.upload_image("img")
    created = await novad.cli_json(*at("2.60"), "server", "create", "--flavor", "m1.nano",
                                   "--image", "img", "--wait", "vm")
    yield str(created["id"])


async def compute_row(novad: Daemon, version: str) -> dict[str, object]:
    listed = await novad.cli_json(*at(version), "compute", "service", "list", "--long")
    (row,) = [r for r in listed if r["Binary"] == "nova-compute"]
    return dict(row)


async def test_2_53_service_list_shows_uuids(novad: Daemon) -> None:
    old, new = await compute_row(novad, "2.52"), await compute_row(novad, "2.53")
    assert isinstance(old["ID"], int)
    assert str(uuid.UUID(str(new["ID"]))) == new["ID"]


@pytest.mark.parametrize("version", ["2.52", "2.53"])
async def test_service_set_disable_enable(novad: Daemon, version: str) -> None:
    host = novad.node.host
    await novad.cli(*at(version), "compute", "service", "set", "--disable",
                    "--disable-reason", f"maintenance {version}", host, "nova-compute")
    row = await compute_row(novad, version)
    assert (row["Status"], row["Disabled Reason"]) == ("disabled", f"maintenance {version}")
    await novad.cli(*at(version), "compute", "service", "set", "--enable", host,
                    "nova-compute")
    row = await compute_row(novad, version)
    assert (row["Status"], row["Disabled Reason"]) == ("enabled", None)


@pytest.mark.parametrize("version", ["2.52", "2.53"])
async def test_service_set_down_up(novad: Daemon, version: str) -> None:
    host = novad.node.host
    await novad.cli(*at(version), "compute", "service", "set", "--down", host, "nova-compute")
    row = await compute_row(novad, version)
    assert (row["State"], row["Forced Down"]) == ("down", True)
    await novad.cli(*at(version), "compute", "service", "set", "--up", host, "nova-compute")
    row = await compute_row(novad, version)
    assert (row["State"], row["Forced Down"]) == ("up", False)


async def test_2_53_hypervisor_show_by_uuid(novad: Daemon) -> None:
    (listed,) = await novad.cli_json(*at("2.53"), "hypervisor", "list")
    uuid.UUID(str(listed["ID"]))
    shown = await novad.cli_json(*at("2.53"), "hypervisor", "show", str(listed["ID"]))
    assert shown["hypervisor_hostname"] == novad.node.host


async def test_2_47_server_show_embeds_the_flavor(novad: Daemon, server: str) -> None:
    old = await novad.cli_json(*at("2.46"), "server", "show", server)
    new = await novad.cli_json(*at("2.47"), "server", "show", server)
    assert old["flavor"].startswith("m1.nano")
    flavor = new["flavor"]
    assert flavor["original_name"] == "m1.nano"
    assert {"vcpus", "ram", "disk", "ephemeral", "swap", "extra_specs"} <= set(flavor)


async def test_2_55_flavor_description(novad: Daemon) -> None:
    created = await novad.cli_json(*at("2.55"), "flavor", "create", "--ram", "64", "--vcpus",
                                   "1", "--disk", "1", "--description", "a small one",
                                   "described")
    assert created["description"] == "a small one"
    await novad.cli(*at("2.55"), "flavor", "set", "--description", "changed", "described")
    shown = await novad.cli_json(*at("2.55"), "flavor", "show", "described")
    assert shown["description"] == "changed"
    refused = await novad.cli(*at("2.54"), "flavor", "create", "--ram", "64", "--vcpus", "1",
                              "--disk", "1", "--description", "x", "early", check=False)
    assert refused.returncode != 0


async def test_2_48_server_show_diagnostics(novad: Daemon, server: str) -> None:
    # the SDK knows only the standard fields, so the pre-2.48 blob is the API tier's
    new = await novad.cli_json(*at("2.48"), "server", "show", "--diagnostics", server)
    assert (new["state"], new["driver"], new["num_cpus"]) == ("running", "libvirt", 1)


async def test_2_52_server_create_with_tags(novad: Daemon) -> None:
    created = await novad.cli_json(*at("2.52"), "server", "create", "--flavor", "m1.nano",
                                   "--image", "img", "--tag", "blue", "--tag", "red", "--wait",
                                   "tagged")
    shown = await novad.cli_json(*at("2.52"), "server", "show", str(created["id"]))
    assert sorted(shown["tags"]) == ["blue", "red"]
    await novad.cli("server", "delete", "--wait", str(created["id"]))


async def test_2_54_rebuild_with_a_key_pair(novad: Daemon, server: str) -> None:
    await novad.cli("keypair", "create", "--private-key", str(novad.home / "k.pem"), "k1")
    await novad.cli(*at("2.54"), "server", "rebuild", "--image", "img", "--key-name", "k1",
                    "--wait", server)
    shown = await novad.cli_json(*at("2.54"), "server", "show", server)
    assert (shown["key_name"], shown["status"]) == ("k1", "ACTIVE")
