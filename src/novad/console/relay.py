"""Both sides of a console session, each first a byte stream for the RFB
handshake, then a relay: :class:`ServerSide` (the TCP connection to the VNC
server, an asyncio protocol) and :class:`TenantSide` (the browser's websocket).

Server to browser is the heavy direction (framebuffer updates).  The kernel
receives straight into a buffer that keeps :data:`HEADROOM` bytes free in
front; the websocket frame header is written into that headroom and the
frame goes to the browser's transport in one ``write`` of a memoryview: no
copy in Python at all, and one message per read.  Frames are whole binary
frames written between the ``websockets`` connection's own writes (pings,
close), only while its protocol is OPEN.  Back-pressure: when the browser's
transport holds more than :data:`HIGH_WATER` unsent bytes, reading from the
VNC server pauses until ``websockets`` reports the transport drained.

Browser to server (keys, pointer, update requests): :class:`ConsoleConnection`
hands every websocket data frame to :class:`TenantSide` as ``websockets``
parses it, instead of queueing it as a message for a ``recv()``; after the
handshake each frame's payload goes to the VNC server's transport in that
same callback (unmasking is the one copy the protocol needs).  When the VNC
server's transport is full, reading from the browser pauses.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import sys
from collections.abc import Callable
from typing import Any

from websockets.asyncio.connection import Connection
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.frames import DATA_OPCODES, Frame
from websockets.protocol import Event, State

from novad.console.rfb import RFBError

CHUNK = 512 * 1024
"""Largest read from the VNC server, and so the largest websocket message."""
HEADROOM = 10
"""Room for the longest websocket frame header (2 + 8 bytes)."""
HIGH_WATER = 1024 * 1024
"""Unsent bytes towards the browser above which reading from the VNC server pauses."""
SOCKET_BUFFER = 4 * 1024 * 1024
"""Kernel buffers of the relayed direction (receive from the VNC server, send
to the browser): bulk framebuffer updates then move in few, large steps."""
_COPYING_TRANSPORTS = sys.version_info < (3, 12)
"""Before 3.12 a transport copies what it cannot send at once; later ones
keep a reference, so a buffer handed over must not be reused."""


def _socket_buffer(transport: asyncio.BaseTransport, option: int) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):  # the kernel caps it at its maximum anyway
            sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER)


def frame_header(buf: bytearray, length: int) -> int:
    """Write a final binary frame's header for ``length`` payload bytes just
    before ``buf[HEADROOM]``; returns where the frame starts."""
    if length < 126:
        buf[HEADROOM - 2:HEADROOM] = struct.pack(">BB", 0x82, length)
        return HEADROOM - 2
    if length < 65536:
        buf[HEADROOM - 4:HEADROOM] = struct.pack(">BBH", 0x82, 126, length)
        return HEADROOM - 4
    buf[:HEADROOM] = struct.pack(">BBQ", 0x82, 127, length)
    return 0


class _Inbox:
    """Bytes received during the handshake, read in exact amounts."""

    def __init__(self, peer: str) -> None:
        self.peer = peer
        self.data = bytearray()
        self.closed = False
        self._waiter: asyncio.Future[None] | None = None

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        self.data += data
        self._wake()

    def close(self) -> None:
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def readexactly(self, n: int) -> bytes:
        while len(self.data) < n:
            if self.closed:
                raise RFBError(f"{self.peer} closed the connection during the RFB handshake")
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        data = bytes(self.data[:n])
        del self.data[:n]
        return data

    def take(self) -> bytes:
        data = bytes(self.data)
        self.data.clear()
        return data


class ServerSide(asyncio.BufferedProtocol):
    """The TCP connection to a guest's VNC server."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = asyncio.get_running_loop().create_future()
        self._buf = bytearray(HEADROOM + CHUNK)
        self._view = memoryview(self._buf)
        self._inbox = _Inbox("the VNC server")
        self._writable = asyncio.Event()
        self._writable.set()
        self._ws: Connection | None = None
        self._blocked = asyncio.Event()
        self._tenant: TenantSide | None = None
        self.on_data: Callable[[int], None] = lambda n: None
        """Called with each chunk's size once relaying (byte counts, activity)."""

    # -- asyncio.BufferedProtocol ------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport."""
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        _socket_buffer(transport, socket.SO_RCVBUF)

    def get_buffer(self, sizehint: int) -> memoryview:
        """Where the kernel writes: after the header room."""
        return self._view[HEADROOM:]

    def buffer_updated(self, nbytes: int) -> None:
        """``nbytes`` arrived: keep them (handshake) or frame and forward them."""
        if self._ws is None:
            self._inbox.feed(self._view[HEADROOM:HEADROOM + nbytes])
            return
        self._forward(nbytes)

    def eof_received(self) -> bool:
        """The VNC server closed its side: close ours too."""
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        """Wake everyone waiting on this connection."""
        if not self.closed.done():
            self.closed.set_result(None)
        self._writable.set()
        self._blocked.set()
        self._inbox.close()

    def pause_writing(self) -> None:
        """The VNC server reads slower than the browser sends: stop reading the browser."""
        self._writable.clear()
        if self._tenant is not None:
            self._tenant.pause()

    def resume_writing(self) -> None:
        """It caught up."""
        self._writable.set()
        if self._tenant is not None:
            self._tenant.resume()

    # -- the handshake: a ByteChannel ----------------------------------------------------
    async def readexactly(self, n: int) -> bytes:
        """Exactly ``n`` handshake bytes; RFBError if the server closes first."""
        return await self._inbox.readexactly(n)

    async def write(self, data: bytes) -> None:
        """Send to the VNC server, waiting while its transport is full."""
        if self.transport is None or self.transport.is_closing():
            raise ConnectionResetError("the VNC server connection is closed")
        self.transport.write(data)
        await self._writable.wait()

    # -- the relay ------------------------------------------------------------------------
    def send_up(self, data: bytes | bytearray | memoryview) -> None:
        """Relay bytes from the browser (flow control pauses the browser)."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def start_relay(self, ws: Connection, tenant: TenantSide | None = None) -> None:
        """From now on every byte from the VNC server goes to ``ws`` (any
        handshake leftovers first); ``tenant`` is paused when this side is full."""
        self._ws = ws
        self._tenant = tenant
        _socket_buffer(ws.transport, socket.SO_SNDBUF)
        leftover = self._inbox.take()
        while leftover:
            step = leftover[:CHUNK]
            leftover = leftover[CHUNK:]
            self._view[HEADROOM:HEADROOM + len(step)] = step
            self._forward(len(step))

    def _forward(self, nbytes: int) -> None:
        ws = self._ws
        assert ws is not None and self.transport is not None
        if ws.protocol.state is not State.OPEN:
            self.transport.close()  # the browser is gone or leaving
            return
        start = frame_header(self._buf, nbytes)
        out = ws.transport
        out.write(self._view[start:HEADROOM + nbytes])
        self.on_data(nbytes)
        pending = out.get_write_buffer_size()
        if pending and not _COPYING_TRANSPORTS:
            self._buf = bytearray(HEADROOM + CHUNK)  # the transport holds the old one
            self._view = memoryview(self._buf)
        if pending > HIGH_WATER:
            self.transport.pause_reading()
            self._blocked.set()

    async def relay(self) -> None:
        """Run the back-pressure loop until the VNC server's connection ends:
        whenever reading was paused, wait for the browser's transport to
        drain, then read again."""
        ws = self._ws
        assert ws is not None and self.transport is not None
        while not self.closed.done():
            await self._blocked.wait()
            self._blocked.clear()
            if self.closed.done():
                break
            await ws.drain()
            if not self.transport.is_closing():
                self.transport.resume_reading()


class TenantSide:
    """The browser's side: its websocket data frames as one byte stream, fed
    by :class:`ConsoleConnection` as they are parsed; a ByteChannel for the
    handshake, then relayed to the VNC server in the same callback."""

    def __init__(self, conn: ServerConnection) -> None:
        self.conn = conn
        self._inbox = _Inbox("the browser")
        self._server: ServerSide | None = None
        self.on_data: Callable[[int], None] = lambda n: None
        """Called with each relayed payload's size (byte counts, activity)."""

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """A data frame's payload arrived."""
        if self._server is None:
            self._inbox.feed(data)
            return
        self._server.send_up(data)
        self.on_data(len(data))

    def closed(self) -> None:
        """The websocket's connection is gone."""
        self._inbox.close()

    async def readexactly(self, n: int) -> bytes:
        """Exactly ``n`` handshake bytes; RFBError if the browser leaves first."""
        return await self._inbox.readexactly(n)

    async def write(self, data: bytes) -> None:
        """Send one binary message (handshake)."""
        try:
            await self.conn.send(data)
        except ConnectionClosed as exc:
            raise RFBError("the browser closed the connection during the RFB handshake") \
                from exc

    def start_relay(self, server: ServerSide) -> None:
        """From now on every payload goes to ``server`` (handshake leftovers first)."""
        self._server = server
        leftover = self._inbox.take()
        if leftover:
            self.feed(leftover)

    def pause(self) -> None:
        """Stop reading the browser (the VNC server is not keeping up)."""
        if not self.conn.transport.is_closing():
            self.conn.transport.pause_reading()

    def resume(self) -> None:
        """Read the browser again."""
        if not self.conn.transport.is_closing():
            self.conn.transport.resume_reading()


class ConsoleConnection(ServerConnection):
    """A server connection whose data frames go to its :class:`TenantSide`
    instead of the message queue behind ``recv()`` (``serve(create_connection=...)``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tenant = TenantSide(self)

    def process_event(self, event: Event) -> None:
        """Data frames to the tenant side; the handshake and control frames as usual."""
        if self.request is not None and isinstance(event, Frame) \
                and event.opcode in DATA_OPCODES:
            self.tenant.feed(event.data)
            return
        super().process_event(event)

    def connection_lost(self, exc: Exception | None) -> None:
        """Also end a handshake waiting for the browser."""
        super().connection_lost(exc)
        self.tenant.closed()
