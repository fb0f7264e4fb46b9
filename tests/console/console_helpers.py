"""Helpers of the console tests: real VNC servers (QEMU processes), free
ports, websocket clients speaking RFB through the proxy, and a PNG reader.

The fast tier needs no libvirtd: its VNC servers are bare
``qemu-system-x86_64 -vnc`` processes (a real RFB 3.8 server in ~0.1 s), and
the only stand-in is the table that says which instance's console listens on
which port (what libvirt's live XML says in production).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import struct
import subprocess
import time
import zlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

from novad.console import rfb
from novad.drivers.base import ConsoleInfo
from novad.errors import NotImplementedByDriver

QEMU = shutil.which("qemu-system-x86_64")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class VncServer:
    """A QEMU process whose only job is to run a VNC server."""

    port: int
    process: subprocess.Popen[bytes]
    password: str | None = None

    def stop(self) -> None:
        """Kill the process and reap it."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)


def start_vnc_server(password: str | None = None, vga: bool = False) -> VncServer:
    """``qemu-system-x86_64 -vnc 127.0.0.1:<free>`` (VNC auth with ``password``),
    ready to accept connections.  ``vga`` gives it a VGA card showing SeaBIOS."""
    assert QEMU is not None
    for _ in range(5):
        port = free_port()
        if port < 5900:
            continue
        vnc = f"127.0.0.1:{port - 5900}"
        args = [QEMU, "-nodefaults", "-display", "none", "-S"]
        if password:
            args += ["-object", f"secret,id=vncpw,data={password}"]
            vnc += ",password-secret=vncpw"
        args += ["-machine", "pc", "-m", "32", "-vga", "std"] if vga else ["-machine", "none"]
        args += ["-vnc", vnc]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        server = VncServer(port, proc, password)
        if _wait_listening(port, proc):
            return server
        server.stop()
    raise RuntimeError("could not start a QEMU VNC server")


def _wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return True
        time.sleep(0.02)
    return False


@dataclass
class ConsolePorts:
    """Which instance's VNC server listens where: the stand-in for libvirt's
    live XML in the fast tier."""

    table: dict[str, ConsoleInfo] = field(default_factory=dict)

    async def __call__(self, instance_id: str) -> ConsoleInfo:
        info = self.table.get(instance_id)
        if info is None:
            raise NotImplementedByDriver("no VNC port")
        return info


@contextlib.asynccontextmanager
async def ws_connect(url: str, *, origin: str | None = None,
                     headers: dict[str, str] | None = None) -> AsyncIterator[ClientConnection]:
    """A websocket to the proxy as noVNC opens it (``binary`` subprotocol)."""
    extra = dict(headers or {})
    async with websockets.connect(url, subprotocols=[websockets.Subprotocol("binary")],
                                  origin=websockets.Origin(origin) if origin else None,
                                  additional_headers=extra, compression=None,
                                  max_size=None, open_timeout=10) as ws:
        yield ws


async def refused_status(url: str, **kwargs: Any) -> int:
    """The HTTP status a refused websocket upgrade got (fails if accepted)."""
    try:
        async with ws_connect(url, **kwargs):
            pass
    except websockets.InvalidStatus as exc:
        return int(exc.response.status_code)
    raise AssertionError(f"{url} was accepted")


async def rfb_screen(ws: ClientConnection) -> tuple[rfb.ServerInit, set[bytes]]:
    """Handshake through the proxy, fetch one full raw frame; (ServerInit,
    the set of distinct pixel values)."""
    channel = rfb.WebSocketChannel(ws)
    init = await rfb.client_handshake(channel)
    await rfb.use_raw_32bpp(channel)
    await rfb.request_update(channel, init.width, init.height)
    colours: set[bytes] = set()
    for *_, pixels in await rfb.read_update(channel):
        colours.update(pixels[i:i + 3] for i in range(0, len(pixels), 4))
    return init, colours


async def wait_for(predicate: Any, timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Poll an async predicate until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)


# -- a PNG reader (8-bit RGB/RGBA, non-interlaced), for screenshots -------------

def png_pixels(data: bytes) -> Iterator[bytes]:
    """The RGB(A) pixels of a PNG, row by row, as one ``bytes`` per pixel."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, bytearray(), b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour in (2, 6) and interlace == 0, (depth, colour, interlace)
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(bytes(idat))
    stride = width * bpp
    prev = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        row = bytearray(raw[start + 1:start + 1 + stride])
        _unfilter(raw[start], row, prev, bpp)
        for x in range(0, stride, bpp):
            yield bytes(row[x:x + bpp])
        prev = row


def _unfilter(kind: int, row: bytearray, prev: bytearray, bpp: int) -> None:
    for i in range(len(row)):
        left = row[i - bpp] if i >= bpp else 0
        up = prev[i]
        if kind == 1:
            row[i] = (row[i] + left) & 0xFF
        elif kind == 2:
            row[i] = (row[i] + up) & 0xFF
        elif kind == 3:
            row[i] = (row[i] + ((left + up) >> 1)) & 0xFF
        elif kind == 4:
            corner = prev[i - bpp] if i >= bpp else 0
            p = left + up - corner
            pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
            pred = left if pa <= pb and pa <= pc else up if pb <= pc else corner
            row[i] = (row[i] + pred) & 0xFF


def remove_tree(path: Path) -> None:
    """rm -rf, quietly (scratch directories of Chromium)."""
    shutil.rmtree(path, ignore_errors=True)
