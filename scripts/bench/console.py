#!/usr/bin/env python3
"""Console relay throughput and latency: direct TCP vs websockify vs novad's proxy.

Three paths to the same VNC server, alternating in every round (medians and
ratios printed at the end):

* (a) direct TCP,
* (b) websockify 0.13.0 from PyPI (installed into the venv on first use) in
  front of the same port,
* (c) novad's proxy (``novad.console.proxy``, the code the daemon runs) in
  its own process, reached with a real console token.

Three workloads:

* ``guest``: a real guest's VNC server, a QEMU machine (TCG, std VGA, no
  disk) showing SeaBIOS's text console, as a novad guest without an image
  does.  The client asks for full-screen raw updates one after another
  (MB/s, latency per update), then for 16x16 updates.  QEMU sends updates
  on its display refresh timer (~150 ms for a still screen), so this shows
  what a user sees, not what a proxy can carry.
* ``replay``: the guest's screen, captured once, served by a small RFB
  server that answers each update request at once: the same requests, now
  bound by the path, not by QEMU.  The 16x16 round trip minus direct TCP's
  is the latency a proxy adds.
* ``echo``: an RFB handshake, then every byte echoed; bytes flow both ways at
  once (pure relay throughput).

The client (:class:`Client`) receives into one preallocated buffer, unwraps
websocket frames in place and counts pixels without copying them, so that it
is not the bottleneck it would otherwise be.

Run: ``.venv/bin/python scripts/bench/console.py [--rounds 5]``; the size
flags (``--guest-updates``, ``--replay-updates``, ``--small-updates``,
``--echo-mib``) shrink a round for a smoke run, their defaults are the
figures' sizes.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

# Keep this folder off sys.path (scripts/bench/transitions.py would shadow a library).
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from novad.console import rfb  # noqa: E402

WEBSOCKIFY = "websockify==0.13.0"
PYTHON = sys.executable
GUEST_UPDATES = 20
"""QEMU paces its VNC updates with its refresh timer (~150 ms for a still screen)."""
REPLAY_UPDATES = 200
SMALL_UPDATES = 500
ECHO_MIB = 512
ECHO_BLOCK = 256 * 1024


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float = 20.0) -> None:
    """Block until something listens on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


# -- processes ----------------------------------------------------------------------

def websockify_command() -> list[str]:
    """websockify's command line, installing it into the venv if needed."""
    probe = subprocess.run([PYTHON, "-c", "import websockify"], capture_output=True)
    if probe.returncode != 0:
        print(f"installing {WEBSOCKIFY} into the venv", file=sys.stderr)
        subprocess.run([PYTHON, "-m", "pip", "install", "-q", WEBSOCKIFY], check=True)
    return [PYTHON, "-m", "websockify"]


def start_guest() -> tuple[subprocess.Popen[bytes], int]:
    """A QEMU guest (SeaBIOS on std VGA, no disk) with VNC on a free port."""
    qemu = shutil.which("qemu-system-x86_64")
    if qemu is None:
        raise SystemExit("qemu-system-x86_64 is missing (scripts/setup installs it)")
    port = free_port()
    while port < 5900:
        port = free_port()
    proc = subprocess.Popen([qemu, "-nodefaults", "-machine", "pc,accel=tcg", "-m", "32",
                             "-vga", "std", "-display", "none", "-vnc",
                             f"127.0.0.1:{port - 5900}"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    wait_port(port)
    return proc, port


def start_helper(*args: str) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """This script in another mode, in its own process, and the JSON line it prints."""
    proc = subprocess.Popen([PYTHON, __file__, *args], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:  # the daemon prints other lines (clouds.yaml) first
        if line.startswith("{"):
            return proc, json.loads(line)
    raise RuntimeError(f"helper {args} failed to start")


# -- helper modes ----------------------------------------------------------------------

async def echo_server() -> None:
    """An RFB 3.8 server up to SecurityResult (type None), then an echo."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            writer.write(rfb.VERSION_38)
            await reader.readexactly(12)
            writer.write(b"\x01\x01")
            await reader.readexactly(1)
            writer.write(rfb.RESULT_OK)
            while data := await reader.read(1024 * 1024):
                writer.write(data)
                await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, limit=2 * 1024 * 1024)
    print(json.dumps({"port": server.sockets[0].getsockname()[1]}), flush=True)
    await asyncio.to_thread(sys.stdin.read)


async def replay_server(frame_file: str) -> None:
    """An RFB 3.8 server showing a captured guest screen, answering every
    FramebufferUpdateRequest at once (raw): the proxies, not QEMU's refresh
    timer, then bound the rate."""
    data = Path(frame_file).read_bytes()
    width, height, name_len = struct.unpack(">HHI", data[:8])
    name, pixels = data[8:8 + name_len], data[8 + name_len:]
    server_init = struct.pack(">HH", width, height) + _PIXEL_FORMAT + \
        struct.pack(">I", len(name)) + name

    def update(x: int, y: int, w: int, h: int) -> list[bytes]:
        head = struct.pack(">BxHHHHHi", 0, 1, x, y, w, h, rfb.RAW)
        if (x, y, w, h) == (0, 0, width, height):
            return [head, pixels]
        rows = [pixels[((y + r) * width + x) * 4:((y + r) * width + x + w) * 4]
                for r in range(h)]
        return [head, *rows]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            writer.write(rfb.VERSION_38)
            await reader.readexactly(12)
            writer.write(b"\x01\x01")
            await reader.readexactly(1)  # security type None
            writer.write(rfb.RESULT_OK)
            await reader.readexactly(1)  # ClientInit
            writer.write(server_init)
            while True:
                (kind,) = await reader.readexactly(1)
                if kind == 3:
                    _, x, y, w, h = struct.unpack(">BHHHH", await reader.readexactly(9))
                    writer.writelines(update(x, y, w, h))
                    await writer.drain()
                elif kind == 0:
                    await reader.readexactly(19)
                elif kind == 2:
                    (count,) = struct.unpack(">xH", await reader.readexactly(3))
                    await reader.readexactly(4 * count)
                else:
                    raise OSError(f"unexpected client message {kind}")
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(json.dumps({"port": server.sockets[0].getsockname()[1]}), flush=True)
    await asyncio.to_thread(sys.stdin.read)


_PIXEL_FORMAT = struct.pack(">BBBBHHHBBB3x", 32, 24, 0, 1, 255, 255, 255, 16, 8, 0)


async def capture(port: int, path: Path) -> None:
    """Save the guest's screen (raw, 32 bpp) for the replay server."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=8 * 1024 * 1024)
    try:
        ch = rfb.StreamChannel(reader, writer)
        init = await rfb.client_handshake(ch)
        await rfb.use_raw_32bpp(ch)
        await rfb.request_update(ch, init.width, init.height)
        frame = bytearray(init.width * init.height * 4)
        for x, y, w, h, pixels in await rfb.read_update(ch):
            for row in range(h):
                start = ((y + row) * init.width + x) * 4
                frame[start:start + w * 4] = pixels[row * w * 4:(row + 1) * w * 4]
    finally:
        writer.close()
    name = init.name.encode()
    path.write_bytes(struct.pack(">HHI", init.width, init.height, len(name)) + name + frame)


async def proxy_host(targets: list[str]) -> None:
    """novad's console proxy in this process, with a token per ``name=port`` target.

    A node on libvirt's test driver provides the store and instances; the
    console service is told which port is which instance's console (what
    libvirt's live XML says for a real guest), then issues tokens the API way.
    """
    from novad.app import start_node, stop_node
    from novad.compute.interface import CreateRequest
    from novad.config import load
    from novad.console.proxy import ConsoleProxy
    from novad.console.service import ConsoleService
    from novad.console.static import StaticFiles
    from novad.context import RequestContext
    from novad.drivers.base import ConsoleInfo

    with tempfile.TemporaryDirectory() as state:
        config = load(None, {"DEFAULT": {"state_dir": state, "listen": "127.0.0.1:0"},
                             "vnc": {"enabled": False}})
        node = await start_node(config)
        table: dict[str, ConsoleInfo] = {}

        async def console_of(uuid: str) -> ConsoleInfo:
            return table[uuid]

        assert node.consoles is not None
        service = ConsoleService(config, node.store, node.consoles.tokens, console_of, node.host)
        proxy = ConsoleProxy(service, config, StaticFiles(None))
        _, port = await proxy.start("127.0.0.1", 0)
        tokens = {}
        for target in targets:
            name, target_port = target.split("=")
            [inst] = await node.compute.create(RequestContext.admin(), CreateRequest(
                name=name, flavor_id="42", image_id=""))
            await node.supervisor.drain()
            table[inst.uuid] = ConsoleInfo("127.0.0.1", int(target_port))
            inst = await node.store.get_instance(inst.uuid)
            url = await service.console_url(RequestContext.admin(), inst, "novnc")
            tokens[name] = url.rsplit("%3D", 1)[1]
        print(json.dumps({"port": port, "tokens": tokens}), flush=True)
        await asyncio.to_thread(sys.stdin.read)
        await proxy.stop()
        await stop_node(node)


# -- the client ---------------------------------------------------------------------------

class Client(asyncio.BufferedProtocol):
    """A minimal RFB client over raw TCP or a websocket, cheap enough not to be
    what is measured: the kernel receives into one preallocated buffer,
    websocket frames are unwrapped in place, and framebuffer pixels (and echoed
    bytes) are counted and skipped, never copied.  Frames are sent with a zero
    mask (valid, and free to apply)."""

    def __init__(self, ws: bool) -> None:
        self.ws = ws
        self.transport: asyncio.Transport | None = None
        self.view = memoryview(bytearray(4 * 1024 * 1024))
        self.http = bytearray() if ws else None  # the upgrade response, until complete
        self.frame_head = bytearray()
        self.frame_left = 0
        self.frame_opcode = 2
        self.control = bytearray()
        self.stream = bytearray()  # handshake bytes
        self.mode = "bytes"  # "bytes" | "updates" | "count"
        self.head = bytearray()
        self.want = 4
        self.state = "msg"
        self.skip = 0
        self.rects = 0
        self.moved = 0
        self.target = 0
        self.waiter: asyncio.Future[None] | None = None
        self.writable = asyncio.Event()
        self.writable.set()

    # asyncio plumbing
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.view

    def buffer_updated(self, nbytes: int) -> None:
        data = self.view[:nbytes]
        if self.http is not None:
            self.http += data
            end = self.http.find(b"\r\n\r\n")
            if end < 0:
                return
            if not self.http.startswith(b"HTTP/1.1 101"):
                raise ConnectionError(f"upgrade refused: {bytes(self.http[:40])!r}")
            data = memoryview(bytes(self.http[end + 4:]))
            self.http = None
            self._wake()
        if self.ws:
            self._unframe(data)
        else:
            self._payload(data)

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection lost"))

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def _wait(self) -> None:
        self.waiter = asyncio.get_running_loop().create_future()
        await self.waiter

    # websocket framing
    def _unframe(self, data: memoryview) -> None:
        i, n = 0, len(data)
        while i < n:
            if self.frame_left:
                step = min(self.frame_left, n - i)
                chunk = data[i:i + step]
                if self.frame_opcode in (0, 2):
                    self._payload(chunk)
                else:
                    self.control += chunk
                self.frame_left -= step
                i += step
                if not self.frame_left and self.frame_opcode not in (0, 2):
                    self._control()
                continue
            self.frame_head.append(data[i])
            i += 1
            if len(self.frame_head) >= 2:
                size = {126: 4, 127: 10}.get(self.frame_head[1] & 0x7F, 2)
                if len(self.frame_head) == size:
                    self._frame_start(size)

    def _frame_start(self, size: int) -> None:
        head = bytes(self.frame_head)
        self.frame_head.clear()
        length = head[1] & 0x7F
        if size == 4:
            (length,) = struct.unpack(">H", head[2:4])
        elif size == 10:
            (length,) = struct.unpack(">Q", head[2:10])
        self.frame_opcode = head[0] & 0x0F
        self.frame_left = length
        if not length and self.frame_opcode not in (0, 2):
            self._control()

    def _control(self) -> None:
        if self.frame_opcode == 9 and self.transport is not None:  # ping: pong
            self._send(0xA, bytes(self.control))
        self.control.clear()

    # the RFB layer
    def _payload(self, data: memoryview) -> None:
        if self.mode == "bytes":
            self.stream += data
            self._wake()
        elif self.mode == "count":
            self.moved += len(data)
            if self.moved >= self.target:
                self._wake()
        else:
            self._updates(data)

    def _updates(self, data: memoryview) -> None:
        i, n = 0, len(data)
        while i < n:
            if self.skip:
                step = min(self.skip, n - i)
                self.skip -= step
                self.moved += step
                i += step
                if not self.skip:
                    self._rect_done()
                continue
            take = data[i:i + self.want - len(self.head)]
            self.head += take
            i += len(take)
            if len(self.head) == self.want:
                self._header_done()

    def _header_done(self) -> None:
        head = bytes(self.head)
        self.head.clear()
        if self.state == "msg":
            if head[0] != 0:
                raise ConnectionError(f"unexpected server message {head[0]}")
            (self.rects,) = struct.unpack(">xxH", head)
            self.state, self.want = "rect", 12
            if not self.rects:
                self._update_done()
            return
        _, _, w, h, encoding = struct.unpack(">HHHHi", head)
        assert encoding == rfb.RAW, encoding
        self.skip = w * h * 4
        if not self.skip:
            self._rect_done()

    def _rect_done(self) -> None:
        self.rects -= 1
        if not self.rects:
            self._update_done()

    def _update_done(self) -> None:
        self.state, self.want = "msg", 4
        self._wake()

    # what the measurements call
    async def readexactly(self, n: int) -> bytes:
        """Handshake bytes."""
        while len(self.stream) < n:
            await self._wait()
        data = bytes(self.stream[:n])
        del self.stream[:n]
        return data

    def _send(self, opcode: int, data: bytes) -> None:
        assert self.transport is not None
        if not self.ws:
            self.transport.write(data)
            return
        n = len(data)
        if n < 126:
            head = struct.pack(">BB", 0x80 | opcode, 0x80 | n)
        elif n < 65536:
            head = struct.pack(">BBH", 0x80 | opcode, 0xFE, n)
        else:
            head = struct.pack(">BBQ", 0x80 | opcode, 0xFF, n)
        self.transport.write(head + b"\x00\x00\x00\x00")
        self.transport.write(data)

    async def write(self, data: bytes) -> None:
        """Send (one binary frame over a websocket), with flow control."""
        self._send(2, data)
        await self.writable.wait()

    async def update(self, width: int, height: int, x: int = 0) -> int:
        """Request a raw update and wait for all of it; its pixel bytes."""
        self.mode, before = "updates", self.moved
        await self.write(struct.pack(">BBHHHH", 3, 0, x, 0, width, height))
        await self._wait()
        return self.moved - before

    async def count(self, nbytes: int) -> None:
        """Wait until ``nbytes`` more payload bytes arrived (echo)."""
        self.mode, self.moved, self.target = "count", 0, nbytes
        while self.moved < self.target:
            await self._wait()


@contextlib.asynccontextmanager
async def connect(path: tuple[str, str]) -> AsyncIterator[Client]:
    """A :class:`Client` over ``("tcp", port)`` or ``("ws", url)``."""
    kind, where = path
    loop = asyncio.get_running_loop()
    if kind == "tcp":
        transport, client = await loop.create_connection(lambda: Client(False), "127.0.0.1",
                                                         int(where))
    else:
        parts = urlsplit(where)
        transport, client = await loop.create_connection(
            lambda: Client(True), parts.hostname or "127.0.0.1", parts.port or 80)
        key = base64.b64encode(os.urandom(16)).decode()
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        transport.write((f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                         "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                         f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                         "Sec-WebSocket-Protocol: binary\r\n\r\n").encode())
        while client.http is not None:
            await client._wait()
    try:
        yield client
    finally:
        transport.close()


async def framebuffer(path: tuple[str, str], updates: int, small_updates: int
                      ) -> dict[str, float]:
    """Full-screen raw updates one after another (MB/s, p50 ms), then 16x16
    updates (p50 ms: what a proxy adds to an RFB round trip)."""
    async with connect(path) as client:
        init = await rfb.client_handshake(client)
        await rfb.use_raw_32bpp(client)
        for _ in range(2):  # warm up (the first frame after SetPixelFormat)
            await client.update(init.width, init.height)
        full, moved = [], 0
        started = time.perf_counter()
        for _ in range(updates):
            t0 = time.perf_counter()
            moved += await client.update(init.width, init.height)
            full.append(time.perf_counter() - t0)
        elapsed = time.perf_counter() - started
        small = []
        for i in range(small_updates):
            t0 = time.perf_counter()
            await client.update(16, 16, x=(i * 16) % (init.width - 16))
            small.append(time.perf_counter() - t0)
    return {"mbps": moved / elapsed / 1e6, "full_ms": statistics.median(full) * 1e3,
            "small_ms": statistics.median(small) * 1e3, "frame_mb": moved / updates / 1e6}


async def echo(path: tuple[str, str], nbytes: int) -> dict[str, float]:
    """Bytes through the relay and back, both directions at once; MB/s each way."""
    block = os.urandom(ECHO_BLOCK)
    async with connect(path) as client:
        await rfb.authenticate_to_server(client, None)

        async def send() -> None:
            for _ in range(nbytes // ECHO_BLOCK):
                await client.write(block)

        started = time.perf_counter()
        await asyncio.gather(send(), client.count(nbytes))
        return {"mbps": nbytes / (time.perf_counter() - started) / 1e6}


# -- the run ------------------------------------------------------------------------------

PATHS = ("direct", "websockify", "novad")
WORKLOADS = ("guest", "replay", "echo")


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "n/a"


@contextlib.contextmanager
def _processes() -> Any:
    """Every process of the run; yields {workload: {path: channel address}}."""
    started: list[subprocess.Popen[Any]] = []
    helpers: list[subprocess.Popen[str]] = []
    scratch = Path(tempfile.mkdtemp(prefix="novad-bench-console-"))
    try:
        guest, guest_port = start_guest()
        started.append(guest)
        time.sleep(2)  # SeaBIOS reaches its final screen
        asyncio.run(capture(guest_port, scratch / "frame"))
        ports = {"guest": guest_port}
        for name, args in (("replay", ["--replay-server", str(scratch / "frame")]),
                           ("echo", ["--echo-server"])):
            proc, info = start_helper(*args)
            helpers.append(proc)
            ports[name] = info["port"]
        proc, novad = start_helper("--proxy-host", *(f"{k}={v}" for k, v in ports.items()))
        helpers.append(proc)
        paths: dict[str, dict[str, tuple[str, str]]] = {w: {} for w in WORKLOADS}
        for workload, target in ports.items():
            listen = free_port()
            started.append(subprocess.Popen(  # its own group: it forks per connection
                [*websockify_command(), f"127.0.0.1:{listen}", f"127.0.0.1:{target}"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
            wait_port(listen)
            paths[workload] = {
                "direct": ("tcp", str(target)),
                "websockify": ("ws", f"ws://127.0.0.1:{listen}/"),
                "novad": ("ws", f"ws://127.0.0.1:{novad['port']}/?token="
                                f"{novad['tokens'][workload]}")}
        yield paths
    finally:
        for proc in started:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # websockify's forked children too
            proc.wait()
        for helper in helpers:
            assert helper.stdin is not None
            helper.stdin.close()
            try:
                helper.wait(10)
            except subprocess.TimeoutExpired:
                helper.kill()
        shutil.rmtree(scratch, ignore_errors=True)


@dataclass(frozen=True)
class Sizes:
    """How much each workload does in one round (the defaults are the figures')."""

    guest_updates: int = GUEST_UPDATES
    """Full-screen updates from the guest, then as many 16x16 ones."""
    replay_updates: int = REPLAY_UPDATES
    small_updates: int = SMALL_UPDATES
    """16x16 updates from the replay server."""
    echo_mib: int = ECHO_MIB


async def _measure(workload: str, path: tuple[str, str], sizes: Sizes) -> dict[str, float]:
    if workload == "echo":
        return await echo(path, sizes.echo_mib * 1024 * 1024)
    if workload == "guest":
        return await framebuffer(path, sizes.guest_updates, sizes.guest_updates)
    return await framebuffer(path, sizes.replay_updates, sizes.small_updates)


async def _rounds(paths: dict[str, dict[str, tuple[str, str]]], rounds: int, sizes: Sizes
                  ) -> dict[str, dict[str, dict[str, float]]]:
    """Medians per workload and path; the paths' order rotates every round."""
    rows: dict[str, dict[str, list[dict[str, float]]]] = {
        w: {p: [] for p in PATHS} for w in WORKLOADS}
    for r in range(rounds):
        order = PATHS[r % 3:] + PATHS[:r % 3]
        for workload in WORKLOADS:
            for name in order:
                result = await _measure(workload, paths[workload][name], sizes)
                rows[workload][name].append(result)
                print(f"round {r + 1} {workload:6s} {name:10s} "
                      + " ".join(f"{k}={v:.3f}" for k, v in result.items()), file=sys.stderr)
    return {w: {p: {k: statistics.median(x[k] for x in runs) for k in runs[0]}
                for p, runs in by_path.items()} for w, by_path in rows.items()}


def report(med: dict[str, dict[str, dict[str, float]]], rounds: int) -> None:
    """Print the medians and the ratios the targets are about."""
    print(f"{rounds} rounds, medians; raw frame {med['guest']['direct']['frame_mb']:.2f} MB")
    for workload in ("guest", "replay"):
        for name, m in med[workload].items():
            print(f"{workload:6s} {name:10s} {m['mbps']:8.1f} MB/s  full frame p50 "
                  f"{m['full_ms']:7.2f} ms  16x16 p50 {m['small_ms']:6.3f} ms")
    for name, m in med["echo"].items():
        print(f"echo   {name:10s} {m['mbps']:8.1f} MB/s each way")
    for workload in WORKLOADS:
        n, w, d = (med[workload][p]["mbps"] for p in ("novad", "websockify", "direct"))
        print(f"{workload:6s} throughput: novad/websockify {_ratio(n, w)}x, "
              f"novad/direct {_ratio(n, d)}")
    for workload in ("guest", "replay"):
        small = {p: med[workload][p]["small_ms"] for p in PATHS}
        print(f"{workload:6s} added latency p50 (16x16): novad "
              f"{(small['novad'] - small['direct']) * 1000:.0f} us, websockify "
              f"{(small['websockify'] - small['direct']) * 1000:.0f} us")


def main() -> None:
    """Parse arguments; run the benchmark or one of its helper processes."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--guest-updates", type=int, default=GUEST_UPDATES,
                        help="full-screen (then 16x16) updates from the guest a round")
    parser.add_argument("--replay-updates", type=int, default=REPLAY_UPDATES,
                        help="full-screen updates from the replay server a round")
    parser.add_argument("--small-updates", type=int, default=SMALL_UPDATES,
                        help="16x16 updates from the replay server a round")
    parser.add_argument("--echo-mib", type=int, default=ECHO_MIB,
                        help="MiB echoed each way a round")
    parser.add_argument("--echo-server", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--replay-server", help=argparse.SUPPRESS)
    parser.add_argument("--proxy-host", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.echo_server:
        asyncio.run(echo_server())
    elif args.replay_server:
        asyncio.run(replay_server(args.replay_server))
    elif args.proxy_host:
        asyncio.run(proxy_host(args.proxy_host))
    else:
        rounds = max(args.rounds, 1)
        with _processes() as paths:
            sizes = Sizes(max(args.guest_updates, 1), max(args.replay_updates, 1),
                          max(args.small_updates, 1), max(args.echo_mib, 1))
            report(asyncio.run(_rounds(paths, rounds, sizes)), rounds)


if __name__ == "__main__":
    main()
