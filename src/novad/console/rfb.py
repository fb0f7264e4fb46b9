"""The RFB (VNC) protocol, as far as a security proxy and a test client need it.

The proxy speaks RFB 3.8 on both sides (Nova's rule): towards the hypervisor
it authenticates with the configured scheme (None, or VNC password
authentication), towards the tenant it offers only security type None,
because the token check has already authenticated the tenant.  After the
security handshake the proxy relays bytes and never parses RFB again.

:class:`ByteChannel` is the byte-stream view both sides are read through
during the handshake; the proxy's are in :mod:`novad.console.relay`.  A TCP
stream (:class:`StreamChannel`) and a client's websocket whose binary
messages form one stream (:class:`WebSocketChannel`) serve the small client
at the end (:func:`client_handshake` and friends), which the tests and
``scripts/bench/console.py`` use.
"""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass
from typing import Protocol

from websockets.asyncio.connection import Connection
from websockets.exceptions import ConnectionClosed

try:  # cryptography >= 43 keeps DES under "decrepit"
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
except ImportError:  # pragma: no cover - older cryptography
    from cryptography.hazmat.primitives.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

VERSION_38 = b"RFB 003.008\n"
SEC_INVALID = 0
SEC_NONE = 1
SEC_VNC = 2
RESULT_OK = b"\x00\x00\x00\x00"
_MAX_REASON = 4096


class RFBError(Exception):
    """The RFB handshake failed; the message is for the log, not the tenant."""


class ByteChannel(Protocol):
    """A byte stream read in exact amounts."""

    async def readexactly(self, n: int) -> bytes:
        """Exactly ``n`` bytes; raises RFBError when the peer closes first."""

    async def write(self, data: bytes) -> None:
        """Send ``data`` and wait until the transport accepted it."""


class StreamChannel:
    """A TCP connection's asyncio streams as a :class:`ByteChannel`."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def readexactly(self, n: int) -> bytes:
        """Exactly ``n`` bytes from the stream."""
        try:
            return await self.reader.readexactly(n)
        except asyncio.IncompleteReadError as exc:
            raise RFBError("connection closed during the RFB handshake") from exc

    async def write(self, data: bytes) -> None:
        """Write and drain."""
        self.writer.write(data)
        await self.writer.drain()


class WebSocketChannel:
    """A websocket's binary messages as one byte stream (RFB ignores message
    boundaries).  Bytes read past what the handshake needed stay in
    :attr:`buffer` for the relay to forward first."""

    def __init__(self, ws: Connection) -> None:
        self.ws = ws
        self.buffer = bytearray()

    async def readexactly(self, n: int) -> bytes:
        """Exactly ``n`` bytes, gathered over as many messages as it takes."""
        while len(self.buffer) < n:
            try:
                message = await self.ws.recv()
            except ConnectionClosed as exc:
                raise RFBError("websocket closed during the RFB handshake") from exc
            self.buffer += message.encode() if isinstance(message, str) else message
        data = bytes(self.buffer[:n])
        del self.buffer[:n]
        return data

    async def write(self, data: bytes) -> None:
        """Send one binary message."""
        try:
            await self.ws.send(data)
        except ConnectionClosed as exc:
            raise RFBError("websocket closed during the RFB handshake") from exc

    def take_buffered(self) -> bytes:
        """Bytes received but not consumed by the handshake; empties the buffer."""
        data = bytes(self.buffer)
        self.buffer.clear()
        return data


def parse_version(data: bytes) -> tuple[int, int]:
    """``RFB xxx.yyy\\n`` as (major, minor); RFBError when malformed."""
    if len(data) != 12 or not data.startswith(b"RFB ") or data[7:8] != b"." \
            or data[11:] != b"\n" or not (data[4:7] + data[8:11]).isdigit():
        raise RFBError(f"not an RFB version string: {data[:12]!r}")
    return int(data[4:7]), int(data[8:11])


def vnc_auth_response(password: str, challenge: bytes) -> bytes:
    """The VNC authentication answer: the 16-byte challenge DES-encrypted
    with the password (8 bytes, zero-padded, each byte's bits reversed)."""
    key = password.encode("latin-1")[:8].ljust(8, b"\x00")
    key = bytes(int(f"{b:08b}"[::-1], 2) for b in key)
    encryptor = Cipher(TripleDES(key * 3), modes.ECB()).encryptor()
    return encryptor.update(challenge) + encryptor.finalize()


async def _read_reason(channel: ByteChannel) -> str:
    (length,) = struct.unpack(">I", await channel.readexactly(4))
    if length > _MAX_REASON:
        raise RFBError(f"failure reason of {length} bytes")
    return (await channel.readexactly(length)).decode("utf-8", errors="replace")


async def _security_result(channel: ByteChannel) -> None:
    (result,) = struct.unpack(">I", await channel.readexactly(4))
    if result != 0:
        raise RFBError(f"security handshake failed: {await _read_reason(channel)}")


def _choose(offered: bytes, password: str | None) -> int:
    if password and SEC_VNC in offered:
        return SEC_VNC
    if SEC_NONE in offered:
        return SEC_NONE
    if SEC_VNC in offered:
        raise RFBError("the VNC server wants a password and [vnc] vnc_password is empty")
    raise RFBError(f"no supported security type among {list(offered)}")


async def authenticate_to_server(server: ByteChannel, password: str | None) -> None:
    """Be an RFB 3.8 client up to a successful SecurityResult: version,
    security type (VNC auth when a password is set and offered, else None),
    authentication.  Raises RFBError; the server is then unusable."""
    version = await server.readexactly(12)
    if parse_version(version) != (3, 8):
        raise RFBError(f"the VNC server speaks {version[:11]!r}; RFB 3.8 is required")
    await server.write(VERSION_38)
    (count,) = await server.readexactly(1)
    if count == 0:
        raise RFBError(f"the VNC server refused the connection: {await _read_reason(server)}")
    chosen = _choose(await server.readexactly(count), password)
    await server.write(bytes((chosen,)))
    if chosen == SEC_VNC:
        await server.write(vnc_auth_response(password or "", await server.readexactly(16)))
    await _security_result(server)


async def accept_tenant(tenant: ByteChannel) -> None:
    """Be an RFB 3.8 server up to SecurityResult OK, offering only security
    type None (the token already authenticated the tenant)."""
    await tenant.write(VERSION_38)
    version = await tenant.readexactly(12)
    if parse_version(version) != (3, 8):
        raise RFBError(f"the client speaks {version[:11]!r}; RFB 3.8 is required")
    await tenant.write(bytes((1, SEC_NONE)))
    (choice,) = await tenant.readexactly(1)
    if choice != SEC_NONE:
        await _fail_result(tenant, "Only the security type None (1) is supported")
        raise RFBError(f"the client chose security type {choice}")
    await tenant.write(RESULT_OK)


async def refuse_tenant(tenant: ByteChannel, reason: str) -> None:
    """Tell an RFB client the connection cannot proceed (no security types
    and a reason, which noVNC shows).  Best effort: errors are ignored."""
    text = reason.encode()
    try:
        await tenant.write(VERSION_38)
        await tenant.readexactly(12)
        await tenant.write(b"\x00" + struct.pack(">I", len(text)) + text)
    except RFBError:
        pass


async def _fail_result(tenant: ByteChannel, reason: str) -> None:
    text = reason.encode()
    await tenant.write(struct.pack(">II", 1, len(text)) + text)


# -- a minimal client, for tests and benchmarks ----------------------------------

RAW = 0
FRAMEBUFFER_UPDATE = 0
_SKIP_FIXED = {2: 0}  # Bell: no payload after the type byte


@dataclass(frozen=True)
class ServerInit:
    """What the server says after ClientInit."""

    width: int
    height: int
    pixel_format: bytes
    name: str


async def client_handshake(channel: ByteChannel, password: str | None = None) -> ServerInit:
    """Connect as an RFB 3.8 client (shared session) and read ServerInit."""
    await authenticate_to_server(channel, password)
    await channel.write(b"\x01")  # ClientInit, shared
    width, height = struct.unpack(">HH", await channel.readexactly(4))
    pixel_format = await channel.readexactly(16)
    (name_len,) = struct.unpack(">I", await channel.readexactly(4))
    name = (await channel.readexactly(name_len)).decode("utf-8", errors="replace")
    return ServerInit(width, height, pixel_format, name)


async def use_raw_32bpp(channel: ByteChannel) -> None:
    """SetPixelFormat (32 bpp true colour, little-endian BGRX) and
    SetEncodings [Raw]."""
    pixel_format = struct.pack(">BBBBHHHBBB3x", 32, 24, 0, 1, 255, 255, 255, 16, 8, 0)
    await channel.write(b"\x00\x00\x00\x00" + pixel_format
                        + struct.pack(">BxHi", 2, 1, RAW))


async def request_update(channel: ByteChannel, width: int, height: int, *,
                         incremental: bool = False, x: int = 0, y: int = 0) -> None:
    """FramebufferUpdateRequest for a rectangle."""
    await channel.write(struct.pack(">BBHHHH", 3, int(incremental), x, y, width, height))


async def read_update(channel: ByteChannel) -> list[tuple[int, int, int, int, bytes]]:
    """The next FramebufferUpdate's raw rectangles (x, y, w, h, pixels), at
    4 bytes per pixel; other server messages before it are skipped."""
    while True:
        (kind,) = await channel.readexactly(1)
        if kind == FRAMEBUFFER_UPDATE:
            break
        await _skip_message(channel, kind)
    (count,) = struct.unpack(">xH", await channel.readexactly(3))
    rects = []
    for _ in range(count):
        x, y, w, h, encoding = struct.unpack(">HHHHi", await channel.readexactly(12))
        if encoding != RAW:
            raise RFBError(f"unexpected encoding {encoding}")
        rects.append((x, y, w, h, await channel.readexactly(w * h * 4)))
    return rects


async def _skip_message(channel: ByteChannel, kind: int) -> None:
    if kind in _SKIP_FIXED:
        return
    if kind == 1:  # SetColourMapEntries
        _, count = struct.unpack(">xHH", await channel.readexactly(5))
        await channel.readexactly(6 * count)
    elif kind == 3:  # ServerCutText
        (length,) = struct.unpack(">3xI", await channel.readexactly(7))
        await channel.readexactly(length)
    else:
        raise RFBError(f"unexpected server message type {kind}")
