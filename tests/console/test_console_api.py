"""The console endpoints of a whole daemon on real ports (libvirt test driver):
the admin token look-up, the console URL action's refusals, noVNC's pages on
the proxy port, the console log's ``length`` semantics, and the wiring
(two daemons side by side, the token purge job)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from novad.app import Node, running
from novad.compute.console_log import tail_console_log
from novad.compute.interface import CreateRequest
from novad.config import load
from novad.console.service import proxy_listen
from novad.console.static import PAGES, StaticFiles, find_novnc
from novad.context import RequestContext
from novad.errors import Forbidden


class Api:
    """A running daemon, its admin token and an HTTP session."""

    def __init__(self, node: Node, url: str, session: aiohttp.ClientSession, token: str) -> None:
        self.node, self.url, self.session, self.token = node, url, session, token

    async def call(self, method: str, path: str, body: Any = None,
                   token: str | None = None, version: str = "2.1") -> tuple[int, Any]:
        """One compute request at ``version``; (status, JSON body)."""
        hdrs = {"X-Auth-Token": token or self.token,
                "OpenStack-API-Version": f"compute {version}"}
        async with self.session.request(method, f"{self.url}/compute/v2.1{path}", json=body,
                                        headers=hdrs) as r:
            return r.status, await r.json(content_type=None)


async def _admin_token(session: aiohttp.ClientSession, url: str, clouds: Path) -> str:
    password = yaml.safe_load(clouds.read_text())["clouds"]["novad"]["auth"]["password"]
    auth = {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"name": "Default"}, "password": password}}},
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}
    async with session.post(f"{url}/identity/v3/auth/tokens", json={"auth": auth}) as resp:
        assert resp.status == 201
        return resp.headers["X-Subject-Token"]


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    config = load(None, {"DEFAULT": {"state_dir": str(tmp_path), "listen": "127.0.0.1:0"}})
    async with running(config) as (node, url), aiohttp.ClientSession() as session:
        yield Api(node, url, session, await _admin_token(session, url, tmp_path / "clouds.yaml"))


async def _instance(node: Node) -> str:
    [inst] = await node.compute.create(RequestContext.admin(), CreateRequest(
        name="vm", flavor_id="42", image_id=""))
    await node.supervisor.drain()
    return inst.uuid


async def test_admin_token_lookup(api: Api) -> None:
    assert api.node.consoles is not None
    issued = await api.node.consoles.tokens.authorize(
        instance_uuid="0a0b", host="127.0.0.1", port=5905, console_type="novnc",
        access_url_base=api.node.consoles.base_url(), ttl=600, user_id="u", project_id="p")
    status, body = await api.call("GET", f"/os-console-auth-tokens/{issued.token}",
                                  version="2.31")
    assert status == 200, body
    assert body == {"console": {"instance_uuid": "0a0b", "host": "127.0.0.1", "port": 5905,
                                "internal_access_path": None}}
    # below 2.31 Nova shows RDP tokens only (401 for any other console type)
    status, body = await api.call("GET", f"/os-console-auth-tokens/{issued.token}")
    assert status == 401
    assert body["unauthorized"]["message"] == \
        "The requested console type details are not accessible"
    status, body = await api.call("GET", "/os-console-auth-tokens/nope")
    assert status == 404 and body["itemNotFound"]["message"] == "Token not found"
    expired = await api.node.consoles.tokens.authorize(
        instance_uuid="0a0b", host="127.0.0.1", port=5905, console_type="novnc",
        access_url_base="http://x/vnc_auto.html", ttl=0, user_id="u", project_id="p")
    status, _ = await api.call("GET", f"/os-console-auth-tokens/{expired.token}")
    assert status == 404


async def test_token_lookup_is_admin_only(api: Api) -> None:
    ident = api.node.identity
    admin = RequestContext.admin()
    project = await ident.create_project(admin, "p2")
    user = await ident.create_user(admin, "bob", password="bob-pass-1",
                                   default_project_id=project.id)
    [member] = await ident.list_roles(admin, name="member")
    await ident.grant(admin, project.id, user.id, member.id)
    auth = {"identity": {"methods": ["password"], "password": {"user": {
        "name": "bob", "domain": {"name": "Default"}, "password": "bob-pass-1"}}},
        "scope": {"project": {"id": project.id}}}
    async with api.session.post(f"{api.url}/identity/v3/auth/tokens", json={"auth": auth}) as r:
        assert r.status == 201, await r.text()
        token = r.headers["X-Subject-Token"]
    status, body = await api.call("GET", "/os-console-auth-tokens/whatever", token=token)
    assert status == 403 and "os-console-auth-tokens" in body["forbidden"]["message"]


async def test_console_url_refusals(api: Api) -> None:
    uuid = await _instance(api.node)
    # libvirt's test driver has no VNC server: Nova's ConsoleTypeUnavailable.
    status, body = await api.call("POST", f"/servers/{uuid}/action",
                                  {"os-getVNCConsole": {"type": "novnc"}})
    assert status == 400 and body["badRequest"]["message"] == "Unavailable console type vnc."
    status, _ = await api.call("POST", f"/servers/{uuid}/action",
                               {"os-getVNCConsole": {"type": "xvpvnc"}})
    assert status == 400
    inst = await api.node.store.get_instance(uuid)
    reader = RequestContext(user_id="r", project_id=inst.project_id, roles=frozenset({"reader"}))
    with pytest.raises(Forbidden):
        await api.node.compute.console_url(reader, uuid, "vnc", "novnc")


async def test_novnc_pages_on_the_proxy_port(api: Api) -> None:
    if find_novnc("") is None:
        pytest.fail("noVNC is not unpacked in .cache/novnc: run scripts/setup")
    assert api.node.consoles is not None
    base = api.node.consoles.base_url()
    address = api.node.consoles.proxy_address
    assert address is not None
    assert base.endswith("/vnc_auto.html") and f":{address[1]}/" in base
    root = base.rsplit("/", 1)[0]
    got = {}
    for page in ("vnc_auto.html", "vnc_lite.html", "vnc.html", "core/rfb.js", "app/ui.js",
                 "vendor/pako/lib/zlib/inflate.js"):
        async with api.session.get(f"{root}/{page}") as resp:
            assert resp.status == 200, page
            got[page] = (await resp.read(), resp.headers["Content-Type"])
    assert got["vnc_auto.html"] == got["vnc_lite.html"]  # seed 001's 404, fixed
    assert got["core/rfb.js"][1] == "text/javascript"  # module scripts need it
    assert b"readQueryVariable('path'" in got["vnc_lite.html"][0]
    for bad in ("/utils/novnc_proxy", "/x.html", "/core/../../../etc/passwd", "/.novad-version"):
        reader, writer = await asyncio.open_connection(*address)
        writer.write(f"GET {bad} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert (await reader.readline()).startswith(b"HTTP/1.1 404"), bad
        writer.close()


def test_vnc_password_in_the_domain_xml(tmp_path: Path) -> None:
    from novad.drivers.base import FlavorSpec, ImageSpec, InstanceSpec
    from novad.drivers.libvirt.xml import domain_xml
    spec = InstanceSpec("0e0f7a8c-5c5c-4c4c-8c8c-0a0b0c0d0e0f", "vm", "p", "u",
                        FlavorSpec("42", "m1.nano", 1, 64, 0), ImageSpec(""), tmp_path)
    plain = domain_xml(spec, domain_type="qemu", vnc_listen="127.0.0.1", root_format="qcow2")
    locked = domain_xml(spec, domain_type="qemu", vnc_listen="127.0.0.1", root_format="qcow2",
                        vnc_password="pw-1234")
    assert "passwd" not in plain
    assert 'passwd="pw-1234"' in locked


def test_static_resolution(tmp_path: Path) -> None:
    (tmp_path / "core").mkdir()
    (tmp_path / "core" / "rfb.js").write_text("x")
    (tmp_path / "vnc_lite.html").write_text("lite")
    (tmp_path / "core" / "escape.js").symlink_to("/etc/hostname")
    files = StaticFiles(tmp_path, "/novnc/")
    assert files.resolve("/novnc/vnc_auto.html") == tmp_path / "vnc_lite.html"
    assert files.resolve("/vnc_auto.html") == tmp_path / "vnc_lite.html"
    assert files.resolve("/novnc/core/rfb.js") == tmp_path / "core" / "rfb.js"
    for bad in ("/novnc/core/escape.js", "/novnc/../x", "/core/../vnc_lite.html", "/",
                "/novnc/", "/etc/passwd", "/core/.hidden"):
        assert files.resolve(bad) is None, bad
    assert set(PAGES) == {"vnc.html", "vnc_lite.html", "vnc_auto.html"}
    assert StaticFiles(None).resolve("/vnc_auto.html") is None


async def test_two_daemons_side_by_side(tmp_path: Path) -> None:
    configs = [load(None, {"DEFAULT": {"state_dir": str(tmp_path / n),
                                       "listen": "127.0.0.1:0"}}) for n in "ab"]
    assert proxy_listen(configs[0]) == ("127.0.0.1", 0)
    assert proxy_listen(load(None, {"DEFAULT": {"listen": "0.0.0.0:8774"}})) == ("0.0.0.0", 8775)
    async with running(configs[0]) as (a, _), running(configs[1]) as (b, _):
        assert a.consoles and b.consoles
        assert a.consoles.proxy_address != b.consoles.proxy_address


async def test_taken_derived_port_falls_back(tmp_path: Path) -> None:
    import socket
    for _ in range(20):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            api_port = probe.getsockname()[1]
        blocker = socket.socket()
        try:
            blocker.bind(("127.0.0.1", api_port + 1))
        except OSError:
            blocker.close()
            continue
        break
    with blocker:
        blocker.listen()
        config = load(None, {"DEFAULT": {"state_dir": str(tmp_path / "a"),
                                         "listen": f"127.0.0.1:{api_port}"}})
        async with running(config) as (node, _):
            assert node.consoles is not None and node.consoles.proxy_address is not None
            assert node.consoles.proxy_address[1] not in (0, api_port + 1)
            assert f":{node.consoles.proxy_address[1]}/" in node.consoles.base_url()
        fixed = load(None, {"DEFAULT": {"state_dir": str(tmp_path / "b"),
                                        "listen": "127.0.0.1:0"},
                            "vnc": {"novncproxy_listen": f"127.0.0.1:{api_port + 1}"}})
        with pytest.raises(OSError):
            async with running(fixed):
                pass


async def test_purge_job_runs(tmp_path: Path) -> None:
    config = load(None, {"DEFAULT": {"state_dir": str(tmp_path), "listen": "127.0.0.1:0",
                                     "instance_delete_interval": 1}})
    async with running(config) as (node, _):
        assert node.consoles is not None
        tokens = node.consoles.tokens
        for ttl in (0, 600):
            await tokens.authorize(instance_uuid="i", host="h", port=1, console_type="novnc",
                                   access_url_base="http://x/", ttl=ttl, user_id="u",
                                   project_id="p")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            rows = await node.db.conn.execute_fetchall("SELECT COUNT(*) FROM console_auth_tokens")
            if list(rows)[0][0] == 1:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("expired token not purged")


# -- console log: Nova's `length` rules, big files ------------------------------------

def _nova_tail(log: bytes, length: int | None) -> str:
    """nova/compute/manager.py ``_tail_log`` + the API's control-character filter."""
    import re
    if length is not None:
        log = b"" if length == 0 else b"\n".join(log.split(b"\n")[-length:])
    return re.sub("[\x00-\x08\x0b-\x1f]", "", log.decode("ascii", "replace"))


@pytest.mark.parametrize("content", [b"l1\nl2\nl3\n", b"l1\nl2\nl3", b"", b"\n\n",
                                     b"a\x1b[0mb\x07c\r\n\xffd\te\n"])
def test_console_log_length_is_novas(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "console.log"
    path.write_bytes(content)
    for length in (None, -1, 0, 1, 2, 3, 4, 10):
        assert tail_console_log(path, length) == _nova_tail(content, length), (content, length)
    assert tail_console_log(tmp_path / "missing.log", 5) == ""


def test_console_log_big_file(tmp_path: Path) -> None:
    path = tmp_path / "console.log"
    line = b"x" * 99 + b"\n"
    with path.open("wb") as f:
        for i in range(4):
            f.write(line * 100_000)  # 40 MB in all
        f.write(b"second to last\nlast line\n")
    started = time.monotonic()
    out = tail_console_log(path, 3)
    assert out == "second to last\nlast line\n"
    assert len(tail_console_log(path, 50).split("\n")) == 50
    assert len(tail_console_log(path, None)) <= 1024 * 1024
    assert len(tail_console_log(path, 100_000)) <= 1024 * 1024  # capped, not loaded whole
    assert time.monotonic() - started < 2
