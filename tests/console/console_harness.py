"""The console tests' harness: a real node (SQLite, compute service, libvirt's
test driver) with a real console proxy on a free port.

libvirt's test driver never assigns a VNC port, so the proxy's service is
given the one stand-in of these tests: a table saying which QEMU VNC server
is which instance's console (:class:`console_helpers.ConsolePorts`).
Tokens, instances, deletes, the proxy and the VNC servers are all real.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from console_helpers import ConsolePorts, VncServer

from novad.app import Node, start_node, stop_node
from novad.compute.interface import CreateRequest
from novad.config import load
from novad.console.proxy import ConsoleProxy
from novad.console.service import ConsoleService
from novad.console.static import StaticFiles, find_novnc
from novad.context import RequestContext
from novad.drivers.base import ConsoleInfo
from novad.store.models import Instance


def owner() -> RequestContext:
    """The owning project's member, with a fresh request id."""
    return RequestContext(user_id="u1", project_id="p1", roles=frozenset({"member"}))


def token_of(url: str) -> str:
    """The token inside a noVNC console URL (``?path=%3Ftoken%3D...``)."""
    inner = parse_qs(urlsplit(url).query)["path"][0]
    return parse_qs(urlsplit(inner).query)["token"][0]


@dataclass
class Harness:
    """A node, a console service whose port table the test controls, and its proxy."""

    node: Node
    service: ConsoleService
    ports: ConsolePorts
    proxy: ConsoleProxy
    host: str
    port: int

    @property
    def origin(self) -> str:
        """This proxy's own origin, as a browser on the console page sends it."""
        return f"http://{self.host}:{self.port}"

    def ws_url(self, token: str) -> str:
        """The websocket URL noVNC opens for ``token``."""
        return f"ws://{self.host}:{self.port}/?token={token}"

    async def boot(self, name: str = "vm") -> Instance:
        """An ACTIVE instance (libvirt test driver)."""
        [inst] = await self.node.compute.create(owner(), CreateRequest(
            name=name, flavor_id="42", image_id=""))
        await self.node.supervisor.drain()
        return await self.node.store.get_instance(inst.uuid)

    async def token_for(self, inst: Instance, vnc: VncServer) -> str:
        """Make ``vnc`` the instance's console and get a token the API way."""
        self.ports.table[inst.uuid] = ConsoleInfo("127.0.0.1", vnc.port)
        return token_of(await self.service.console_url(owner(), inst, "novnc"))


@contextlib.asynccontextmanager
async def open_harness(state: Path, **sections: dict[str, Any]) -> AsyncIterator[Harness]:
    """A harness whose configuration adds ``sections`` (``vnc={...}`` ...)."""
    overrides: dict[str, dict[str, Any]] = {
        "DEFAULT": {"state_dir": str(state), "listen": "127.0.0.1:0",
                    "shelved_offload_time": -1, "shutdown_timeout": 1}}
    overrides.update(sections)
    config = load(None, overrides)
    node = await start_node(config)
    assert node.consoles is not None
    ports = ConsolePorts()
    service = ConsoleService(config, node.store, node.consoles.tokens, ports, node.host)
    proxy = ConsoleProxy(service, config, StaticFiles(find_novnc("")))
    try:
        host, port = await proxy.start("127.0.0.1", 0)
        yield Harness(node, service, ports, proxy, host, port)
    finally:
        await proxy.stop()
        await stop_node(node)


HarnessFactory = Callable[..., contextlib.AbstractAsyncContextManager[Harness]]
