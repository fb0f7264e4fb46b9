"""2.31-2.45 through a real daemon and the unmodified ``openstack`` CLI: server
create's ``networks`` on both sides of 2.37 (the CLI sends ``auto`` from
2.37, ``none`` for ``--nic none``, and an empty list below), a named network,
and key pair pages (2.35)."""

from __future__ import annotations

import pytest
import pytest_asyncio
from e2e_helpers import OPENSTACK, Daemon

pytestmark = [
    pytest.mark.cli,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.skipif(not OPENSTACK.exists(), reason="python-openstackclient not installed"),
]

UNKNOWN_NET = "3f0a1c6e-7d5b-4c2a-9e1f-0b8d6a4c2e11"


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def image(novad: Daemon) -> str:
    """The image every server here boots."""
    await novad.upload_image("img")
    return "img"


async def _create(novad: Daemon, version: str, name: str, *args: str, check: bool = True
                  ) -> tuple[int, str, str]:
    result = await novad.cli("--os-compute-api-version", version, "server", "create",
                             "--flavor", "m1.nano", "--image", "img", *args, "--wait",
                             "-f", "value", "-c", "status", name, check=check)
    return result.returncode, result.stdout.strip(), result.stderr


async def test_create_on_both_sides_of_2_37(novad: Daemon, image: str) -> None:
    assert (await _create(novad, "2.36", "before"))[1] == "ACTIVE"
    assert (await _create(novad, "2.37", "auto"))[1] == "ACTIVE"
    assert (await _create(novad, "2.37", "auto-nic", "--nic", "auto"))[1] == "ACTIVE"
    assert (await _create(novad, "2.37", "no-nic", "--nic", "none"))[1] == "ACTIVE"


@pytest.mark.parametrize("version", ["2.36", "2.37"])
async def test_a_named_network_is_a_clear_error(novad: Daemon, image: str,
                                                version: str) -> None:
    """With no network endpoint the CLI resolves ``net-id`` through Nova's
    os-networks proxy, where novad has no network to find (a 404 below 2.36,
    and 404 from it as the proxy is gone): it stops before creating anything.
    The create API's own 400 for a named network is in tests/api."""
    code, _, err = await _create(novad, version, "named", "--nic", f"net-id={UNKNOWN_NET}",
                                 check=False)
    assert code != 0 and f"{UNKNOWN_NET} not found" in err, err
    listed = await novad.cli_json("server", "list", "--name", "^named$")
    assert listed == []


async def test_2_35_keypair_pages(novad: Daemon) -> None:
    for name in ("kb", "ka", "kc"):
        await novad.cli("keypair", "create", "--private-key", f"{name}.pem", name)
    listed = await novad.cli_json("--os-compute-api-version", "2.35", "keypair", "list",
                                  "--limit", "1", "--marker", "ka")
    # the SDK takes --limit as its page size and follows keypairs_links to the end
    assert [row["Name"] for row in listed] == ["kb", "kc"]
