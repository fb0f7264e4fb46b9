"""The noVNC proxy: a ``websockets`` server on the daemon's event loop.

One port serves both noVNC's pages over plain HTTP and the websocket relay.
A websocket upgrade is checked before it is accepted (refused with an HTTP
error, so no websocket is ever opened for a bad request):

1. the token, from the ``token`` query parameter (noVNC sends the URL's
   ``path=?token=...`` back as the websocket's query) or the ``token``
   cookie, must be valid, its instance must exist, and its port must still
   be that instance's VNC port (:meth:`ConsoleService.check_token`);
2. the ``Origin``, when present, must name this host (the ``Host`` header)
   or one of ``[console] allowed_origins``, with the scheme of the token's
   base URL (``X-Forwarded-Proto`` wins over the Origin's scheme); a missing
   Origin is a non-browser client and is accepted.

The session then connects to the VNC server, authenticates to it and greets
the browser with security type None (:mod:`novad.console.rfb`), and relays
bytes both ways with back-pressure until either side closes, the session is
idle for ``[console] idle_timeout``, or (``[consoleauth]
enforce_session_timeout``) the token expires.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Sequence
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qs, urlsplit

import structlog
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from novad.config import Config
from novad.console import rfb
from novad.console.relay import ConsoleConnection, ServerSide, TenantSide
from novad.console.service import ConsoleRefused, ConsoleService, SessionStats
from novad.console.static import StaticFiles
from novad.console.tokens import ConsoleGrant

log = structlog.get_logger("novad.console")

BINARY = Subprotocol("binary")
HANDSHAKE_TIMEOUT = 10.0
"""Seconds for the VNC connection and both RFB handshakes."""
MAX_CLIENT_MESSAGE = 1024 * 1024
"""Largest websocket message accepted from a browser (RFB client messages are small)."""


def token_from(request: Request) -> str:
    """The token: the ``token`` query parameter, else the ``token`` cookie
    (pieces that do not parse are skipped, as Nova does)."""
    query = parse_qs(urlsplit(request.path).query)
    token = query.get("token", [""])[0]
    if token:
        return token
    for piece in request.headers.get("Cookie", "").split(";"):
        cookie: SimpleCookie = SimpleCookie()
        try:
            cookie.load(piece)
        except CookieError:
            log.debug("malformed cookie piece skipped")
            continue
        if "token" in cookie:
            return cookie["token"].value
    return ""


def _hostname(host_header: str) -> str:
    """The hostname of a ``Host`` header (port and IPv6 brackets removed)."""
    if host_header.startswith("["):
        return host_header[1:].split("]", 1)[0].lower()
    return host_header.rsplit(":", 1)[0].lower() if ":" in host_header else host_header.lower()


_SAME_SCHEME = {"ws": "http", "wss": "https"}


def check_origin(headers: Headers, access_url_base: str, allowed: Sequence[str]) -> None:
    """Nova's Origin rule; raises ConsoleRefused.  No Origin: accepted."""
    origin = headers.get("Origin")
    if origin is None:
        return
    parsed = urlsplit(origin)
    if not parsed.hostname or not parsed.scheme:
        raise ConsoleRefused(f"Origin header not valid: {origin!r}")
    expected = _hostname(headers.get("Host", ""))
    if parsed.hostname != expected and parsed.hostname not in {a.lower() for a in allowed}:
        raise ConsoleRefused(f"Origin {parsed.hostname!r} does not match this host")
    scheme = headers.get("X-Forwarded-Proto") or parsed.scheme
    base_scheme = urlsplit(access_url_base).scheme
    if not base_scheme:
        raise ConsoleRefused("the token has no access URL")
    if _SAME_SCHEME.get(scheme.lower(), scheme.lower()) != _SAME_SCHEME.get(base_scheme,
                                                                           base_scheme):
        raise ConsoleRefused(f"Origin scheme {scheme!r} does not match {base_scheme!r}")


def _select_binary(_conn: ServerConnection, offered: Sequence[Subprotocol]) -> Subprotocol | None:
    return BINARY if BINARY in offered else None


class ConsoleProxy:
    """The websocket server; :meth:`start` it on the daemon's loop, :meth:`stop` it
    before the store closes."""

    def __init__(self, service: ConsoleService, config: Config, static: StaticFiles) -> None:
        self.service = service
        self.config = config
        self.static = static
        self.password = config.vnc.vnc_password or None
        self._grants: weakref.WeakKeyDictionary[ServerConnection, ConsoleGrant] = \
            weakref.WeakKeyDictionary()
        self._server: Server | None = None

    async def start(self, host: str, port: int, *, fallback: bool = False) -> tuple[str, int]:
        """Listen; returns the bound address (a real port when 0 was asked).
        With ``fallback``, a taken port is replaced by a free one (the port
        was derived, not configured: the URLs handed out name the real one)."""
        try:
            self._server = await self._serve(host, port)
        except OSError as exc:
            if not fallback or port == 0:
                raise
            log.warning("console proxy port taken, using a free one", port=port, error=str(exc))
            self._server = await self._serve(host, 0)
        bound = self._server.sockets[0].getsockname()
        self.service.proxy_address = (host, int(bound[1]))
        log.info("console proxy listening", url=self.service.base_url(),
                 novnc=str(self.static.root) if self.static.root else None)
        return host, int(bound[1])

    async def _serve(self, host: str, port: int) -> Server:
        return await serve(
            self._session, host, port, process_request=self._process_request,
            select_subprotocol=_select_binary, subprotocols=[BINARY], compression=None,
            max_size=MAX_CLIENT_MESSAGE, server_header=None, ping_interval=20,
            ping_timeout=20, close_timeout=5, create_connection=ConsoleConnection)

    async def stop(self) -> None:
        """Close the listener and every session (code 1001), and wait for them."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _process_request(self, conn: ServerConnection, request: Request
                               ) -> Response | None:
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return await self._static(conn, request)
        try:
            grant = await self.service.check_token(token_from(request))
        except ConsoleRefused as exc:
            log.info("console connection refused", reason=str(exc), peer=_peer(conn))
            return conn.respond(HTTPStatus.UNAUTHORIZED, "Invalid or expired console token.\n")
        try:
            check_origin(request.headers, grant.access_url_base,
                         self.config.console.allowed_origins)
        except ConsoleRefused as exc:
            log.info("console connection refused", reason=str(exc), peer=_peer(conn),
                     instance_id=grant.instance_uuid)
            return conn.respond(HTTPStatus.FORBIDDEN, "Origin not allowed.\n")
        self._grants[conn] = grant
        return None

    async def _static(self, conn: ServerConnection, request: Request) -> Response:
        found = await self.static.read(urlsplit(request.path).path)
        if found is None:
            return conn.respond(HTTPStatus.NOT_FOUND, "Not found.\n")
        body, ctype = found
        headers = Headers([("Content-Type", ctype), ("Content-Length", str(len(body))),
                           ("Cache-Control", "no-cache"), ("X-Content-Type-Options", "nosniff"),
                           ("Connection", "close")])
        return Response(HTTPStatus.OK, "OK", headers, body)

    async def _session(self, ws: ServerConnection) -> None:
        grant = self._grants.pop(ws, None)
        if grant is None:  # process_request did not admit it
            await ws.close(1008, "not authorized")
            return
        assert isinstance(ws, ConsoleConnection)
        await Session(self, ws, grant).run()


def _peer(conn: ServerConnection) -> str:
    address = conn.remote_address
    return f"{address[0]}:{address[1]}" if address else "?"


class Session:
    """One relayed console connection."""

    def __init__(self, proxy: ConsoleProxy, ws: ConsoleConnection, grant: ConsoleGrant) -> None:
        self.proxy = proxy
        self.ws = ws
        self.grant = grant
        self.stats = SessionStats()
        self.last_activity = asyncio.get_running_loop().time()

    async def run(self) -> None:
        """Handshake, relay, record; never raises (cancellation aside)."""
        service = self.proxy.service
        started = time.monotonic()
        request_id = await service.session_started(self.grant, _peer(self.ws))
        error: str | None = None
        try:
            error = await self._connect_and_relay()
        except (OSError, rfb.RFBError, TimeoutError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        finally:
            await self.ws.close(1000 if error is None else 1011)
            await service.session_ended(self.grant, request_id, self.stats, started, error)

    async def _connect_and_relay(self) -> str | None:
        grant = self.grant
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(HANDSHAKE_TIMEOUT):
            transport, server = await loop.create_connection(ServerSide, grant.host, grant.port)
        try:
            tenant = self.ws.tenant
            async with asyncio.timeout(HANDSHAKE_TIMEOUT):
                try:
                    await rfb.authenticate_to_server(server, self.proxy.password)
                except rfb.RFBError:
                    # Intentionally vague towards the tenant: no information leaks.
                    await rfb.refuse_tenant(tenant, "Unable to negotiate security with server")
                    raise
                await rfb.accept_tenant(tenant)
            return await self._relay(server, tenant)
        finally:
            transport.close()

    async def _relay(self, server: ServerSide, tenant: TenantSide) -> str | None:
        """Relay until one side ends; returns why it ended abnormally (None
        for a normal close by either side)."""
        loop = asyncio.get_running_loop()
        stats = self.stats

        def down(nbytes: int) -> None:
            stats.to_client += nbytes
            self.last_activity = loop.time()

        def up(nbytes: int) -> None:
            stats.from_client += nbytes
            self.last_activity = loop.time()

        server.on_data, tenant.on_data = down, up
        server.start_relay(self.ws, tenant)
        tenant.start_relay(server)
        browser = asyncio.create_task(self.ws.wait_closed(), name="console-browser")
        relay = asyncio.create_task(server.relay(), name="console-relay")
        try:
            return await self._supervise({browser, relay})
        finally:
            for task in (browser, relay):
                task.cancel()
            await asyncio.gather(browser, relay, return_exceptions=True)

    async def _supervise(self, tasks: set[asyncio.Task[None]]) -> str | None:
        """Wait for a pump to end, the idle timeout, or the token's expiry."""
        loop = asyncio.get_running_loop()
        config = self.proxy.config
        idle = config.console.idle_timeout
        deadline = None
        if config.consoleauth.enforce_session_timeout:
            deadline = loop.time() + (self.grant.expires - time.time())
        while True:
            waits = [5.0]
            if idle:
                waits.append(self.last_activity + idle - loop.time())
            if deadline is not None:
                waits.append(deadline - loop.time())
            done, _ = await asyncio.wait(tasks, timeout=max(min(waits), 0.0),
                                         return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                exc = task.exception()
                if exc is not None and not isinstance(exc, ConnectionClosed | OSError):
                    raise exc
                return None if exc is None or isinstance(exc, ConnectionClosed) \
                    else f"{type(exc).__name__}: {exc}"
            if deadline is not None and loop.time() >= deadline:
                return "token expired (enforce_session_timeout)"
            if idle and loop.time() - self.last_activity >= idle:
                return f"idle for {idle} s"
