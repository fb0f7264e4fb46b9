"""Consoles of real QEMU guests (integration tier: ``qemu:///system``).

One daemon for the module, in this process, on free ports, with guests
booted without an image (their screen is SeaBIOS's text console).  The URL
comes from the unmodified ``openstack`` CLI; headless Chromium opens it
with noVNC and must show the guest's screen.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import pytest_asyncio
from chromium import CHROMIUM, chromium, open_page
from console_harness import token_of
from console_helpers import free_port, png_pixels, refused_status, rfb_screen, ws_connect

from novad.app import Node, running
from novad.compute.interface import CreateRequest
from novad.config import load
from novad.context import RequestContext
from novad.errors import DriverError

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

OPENSTACK = Path(sys.executable).parent / "openstack"
QEMU_URI = "qemu:///system"


@dataclass
class Daemon:
    """The module's daemon and its admin clouds.yaml."""

    node: Node
    url: str
    clouds: Path
    home: Path

    async def cli(self, *args: str) -> str:
        """``openstack --os-cloud novad ARGS``; its stdout (fails the test on error)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        env.update(OS_CLIENT_CONFIG_FILE=str(self.clouds), HOME=str(self.home), NO_PROXY="*")
        proc = await asyncio.create_subprocess_exec(
            str(OPENSTACK), "--os-cloud", "novad", *args, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 120)
        assert proc.returncode == 0, err.decode() + out.decode()
        return out.decode()

    async def boot(self, name: str) -> str:
        """An ACTIVE real guest (no image: SeaBIOS on the screen); its id."""
        [inst] = await self.node.compute.create(RequestContext.admin(), CreateRequest(
            name=name, flavor_id="42", image_id=""))
        await self.node.supervisor.drain()
        shown = await self.node.store.get_instance(inst.uuid)
        assert shown.vm_state == "active", shown
        return inst.uuid

    async def delete(self, uuid: str) -> None:
        """Delete through the service and wait for the end."""
        await self.node.compute.delete(RequestContext.admin(), uuid)
        await self.node.supervisor.drain()

    async def console_url(self, uuid: str) -> str:
        """A fresh console URL from the service."""
        return await self.node.compute.console_url(RequestContext.admin(), uuid, "vnc", "novnc")

    def ws_url(self, console_url: str) -> str:
        """The websocket noVNC opens for a console URL."""
        parts = urlsplit(console_url)
        return f"ws://{parts.netloc}/?token={token_of(console_url)}"


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def daemon(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Daemon]:
    tmp = tmp_path_factory.mktemp("console-qemu")
    config = load(None, {
        "DEFAULT": {"state_dir": str(tmp / "state"), "listen": f"127.0.0.1:{free_port()}",
                    "shutdown_timeout": 2, "shelved_offload_time": -1},
        "libvirt": {"connection_uri": QEMU_URI}})
    try:
        context = running(config)
        node, url = await context.__aenter__()
    except DriverError as exc:
        pytest.skip(f"{QEMU_URI} is unreachable ({exc.message}); scripts/libvirtd-up starts it")
    home = tmp / "home"
    home.mkdir()
    try:
        yield Daemon(node, url, config.state_dir / "clouds.yaml", home)
    finally:
        for uuid in await node.driver.list_instances():
            await node.compute.delete(RequestContext.admin(), uuid)
        await node.supervisor.drain()
        await context.__aexit__(None, None, None)


async def test_novnc_in_chromium_shows_the_guest(daemon: Daemon, tmp_path: Path) -> None:
    if CHROMIUM is None:
        pytest.fail("chromium is not installed (scripts/setup installs it)")
    uuid = await daemon.boot("browser-vm")
    url = (await daemon.cli("console", "url", "show", "--novnc", uuid, "-f", "value",
                            "-c", "url")).strip()
    assert "/vnc_auto.html?path=%3Ftoken%3D" in url, url
    async with chromium(tmp_path) as browser:
        page = await open_page(browser, url)
        status = await page.wait_for(
            "(s => s && s.textContent.startsWith('Connected') && s.textContent)"
            "(document.getElementById('status'))")
        assert f"novad-{uuid}" in status or "QEMU" in status, status
        box = await page.wait_for(
            "(c => c && c.width > 100 && (r => [r.x, r.y, r.width, r.height])"
            "(c.getBoundingClientRect()))(document.querySelector('#screen canvas'))")
        await asyncio.sleep(1.0)  # let the first full frame paint
        png = await page.screenshot({"x": box[0], "y": box[1], "width": box[2],
                                     "height": box[3]})
    (tmp_path / "console.png").write_bytes(png)
    colours: dict[bytes, int] = {}
    for pixel in png_pixels(png):
        colours[pixel[:3]] = colours.get(pixel[:3], 0) + 1
    total = sum(colours.values())
    assert len(colours) >= 2, f"blank screenshot: {colours}"
    # Text on a background: the background dominates, but not everything is it.
    assert max(colours.values()) < total * 0.999, colours


async def test_rfb_session_through_the_proxy(daemon: Daemon) -> None:
    uuid = await daemon.boot("rfb-vm")
    url = await daemon.console_url(uuid)
    async with ws_connect(daemon.ws_url(url), origin=f"http://{urlsplit(url).netloc}") as ws:
        init, colours = await rfb_screen(ws)
    assert init.name == f"QEMU (novad-{uuid})" or init.name.startswith("QEMU"), init.name
    assert len(colours) >= 2, "the guest's text console should not be blank"
    token = token_of(url)
    shown: Any = await _admin_get(daemon, f"/os-console-auth-tokens/{token}")
    info = await daemon.node.driver.get_console(uuid)
    assert shown["console"] == {"instance_uuid": uuid, "host": info.host, "port": info.port,
                                "internal_access_path": None}
    events = await daemon.cli("server", "event", "list", uuid, "-f", "value", "-c", "Action")
    assert "console" in events.split()


async def test_token_of_one_guest_cannot_reach_another(daemon: Daemon) -> None:
    a, b = await daemon.boot("vm-a"), await daemon.boot("vm-b")
    url_a, url_b = await daemon.console_url(a), await daemon.console_url(b)
    port_b = (await daemon.node.driver.get_console(b)).port
    with sqlite3.connect(daemon.node.db.path) as conn:  # a stale or forged row
        conn.execute("UPDATE console_auth_tokens SET port = ? WHERE instance_uuid = ?",
                     (port_b, a))
    assert await refused_status(daemon.ws_url(url_a)) == 401
    async with ws_connect(daemon.ws_url(url_b)) as ws:
        await rfb_screen(ws)
    await daemon.delete(b)
    assert await refused_status(daemon.ws_url(url_b)) == 401  # deleted: tokens gone
    with sqlite3.connect(daemon.node.db.path) as conn:
        left = conn.execute("SELECT COUNT(*) FROM console_auth_tokens WHERE instance_uuid = ?",
                            (b,)).fetchone()[0]
    assert left == 0
    await daemon.delete(a)


async def test_vnc_password_protects_the_guest(daemon: Daemon, tmp_path: Path) -> None:
    """With ``[vnc] vnc_password`` the guest's own VNC port demands VNC
    authentication, and the proxy still gives the browser security None."""
    config = load(None, {
        "DEFAULT": {"state_dir": str(tmp_path / "state"), "listen": "127.0.0.1:0",
                    "shutdown_timeout": 2},
        "libvirt": {"connection_uri": QEMU_URI}, "vnc": {"vnc_password": "pw-1234"}})
    async with running(config) as (node, _):
        locked = Daemon(node, "", tmp_path, tmp_path)
        uuid = await locked.boot("locked-vm")
        try:
            info = await node.driver.get_console(uuid)
            reader, writer = await asyncio.open_connection(info.host, info.port)
            assert await reader.readexactly(12) == b"RFB 003.008\n"
            writer.write(b"RFB 003.008\n")
            count = (await reader.readexactly(1))[0]
            assert list(await reader.readexactly(count)) == [2]  # VNC authentication only
            writer.close()
            url = await locked.console_url(uuid)
            async with ws_connect(locked.ws_url(url)) as ws:
                init, colours = await rfb_screen(ws)
            assert init.width > 0 and len(colours) >= 2
        finally:
            await locked.delete(uuid)


async def _admin_get(daemon: Daemon, path: str) -> Any:
    out = await daemon.cli("token", "issue", "-f", "value", "-c", "id")
    import aiohttp
    async with aiohttp.ClientSession() as session, session.get(
            f"{daemon.url}/compute/v2.1{path}",
            headers={"X-Auth-Token": out.strip(),
                     "OpenStack-API-Version": "compute 2.31"}) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()
