"""The console service: issues console URLs, checks tokens at connect time,
revokes tokens when an instance goes away, and records sessions.

The compute service asks :meth:`ConsoleService.console_url` for a URL (its
``console_url_factory``); the proxy asks :meth:`ConsoleService.check_token`
whether a websocket may be relayed, and reports sessions through
:meth:`session_started` / :meth:`session_ended`, which become a ``console``
instance action with one ``console_session`` event.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import structlog

from novad.config import Config, parse_listen
from novad.context import RequestContext, new_request_id
from novad.drivers.base import ConsoleInfo
from novad.errors import (
    DriverError,
    InstanceNotFound,
    InstanceNotReady,
    Invalid,
    NotFound,
    NotImplementedByDriver,
)
from novad.console.tokens import ConsoleGrant, TokenStore
from novad.states.enums import VmState
from novad.store import Store
from novad.store import actions as action_rows
from novad.store.db import utcnow
from novad.store.models import ActionStart, EventFinish, EventStart, Instance

log = structlog.get_logger("novad.console")

REVOKING_ACTIONS = frozenset({
    "delete", "force_delete", "soft_delete", "shelve", "shelve_offload", "migrate", "resize",
    "live_migrate", "evacuate", "rescue",
})
"""Actions after which an instance's console tokens are deleted: the guest is
gone, moved, or (rescue) showing another disk."""

SESSION_ACTION = "console"
SESSION_EVENT = "console_session"

ConsoleLocator = Callable[[str], Awaitable[ConsoleInfo]]
"""Where an instance's VNC server listens now (the driver's ``get_console``)."""


class ConsoleRefused(Exception):
    """A websocket may not be relayed; the message is for the log only."""


@dataclass
class SessionStats:
    """Bytes relayed by one console session."""

    to_client: int = 0
    from_client: int = 0


def proxy_listen(config: Config) -> tuple[str, int]:
    """``[vnc] novncproxy_listen``, or the API's host and port + 1 when it is
    empty (port 0 when the API's port is 0: tests pick free ports)."""
    if config.vnc.novncproxy_listen:
        return parse_listen(config.vnc.novncproxy_listen)
    host, port = config.listen_addr
    return host, port + 1 if port else 0


class ConsoleService:
    """Console URLs, token checks and session records for this node."""

    def __init__(self, config: Config, store: Store, tokens: TokenStore,
                 console_of: ConsoleLocator, host: str) -> None:
        self.config = config
        self.store = store
        self.tokens = tokens
        self.console_of = console_of
        self.host = host
        self.proxy_address: tuple[str, int] | None = None
        """Set by the proxy once it listens (the real port when 0 was asked)."""

    def base_url(self) -> str:
        """``[vnc] novncproxy_base_url``, or ``http://<host>:<proxy port>/vnc_auto.html``
        with the host of ``[api] public_endpoint`` (else the proxy's address)."""
        if self.config.vnc.novncproxy_base_url:
            return self.config.vnc.novncproxy_base_url
        host, port = self.proxy_address or proxy_listen(self.config)
        public = urlsplit(self.config.api.public_endpoint).hostname
        if public:
            host = public
        elif host in ("", "0.0.0.0", "::"):
            host = self.config.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{port}/vnc_auto.html"

    async def console_url(self, ctx: RequestContext, inst: Instance, console_type: str) -> str:
        """A fresh token for the instance's VNC server, as a noVNC URL.
        InstanceNotReady (409) while building, Invalid (400) when the guest
        has no VNC server (not running, or a hypervisor without one)."""
        try:
            info = await self.console_of(inst.uuid)
        except (NotImplementedByDriver, DriverError, InstanceNotFound):
            if inst.vm_state is VmState.BUILDING:
                raise InstanceNotReady(inst.uuid) from None
            raise Invalid("Unavailable console type vnc.") from None
        issued = await self.tokens.authorize(
            instance_uuid=inst.uuid, host=info.host, port=info.port, console_type=console_type,
            access_url_base=self.base_url(), ttl=self.config.consoleauth.token_ttl,
            user_id=ctx.user_id, project_id=ctx.project_id)
        log.info("console token issued", instance_id=inst.uuid, request_id=ctx.request_id,
                 user_id=ctx.user_id, expires=issued.grant.expires)
        return issued.access_url

    async def check_token(self, token: str) -> ConsoleGrant:
        """The grant of ``token`` if it may be used now: known, unexpired, its
        instance still there, and its port still that instance's console
        (Nova's ``validate_console_port``).  Raises ConsoleRefused."""
        grant = await self.tokens.validate(token)
        if grant is None:
            raise ConsoleRefused("invalid or expired token")
        try:
            await self.store.get_instance(grant.instance_uuid)
            info = await self.console_of(grant.instance_uuid)
        except (InstanceNotFound, NotImplementedByDriver, DriverError) as exc:
            raise ConsoleRefused(f"instance {grant.instance_uuid} has no console: {exc}") \
                from None
        if (info.host, info.port) != (grant.host, grant.port):
            raise ConsoleRefused(f"port {grant.port} is no longer the console of "
                                 f"instance {grant.instance_uuid}")
        return grant

    async def token_info(self, token: str) -> ConsoleGrant:
        """The grant of a valid token (the admin look-up); NotFound otherwise."""
        grant = await self.tokens.validate(token)
        if grant is None:
            raise NotFound("Token not found")
        return grant

    async def on_action_finished(self, action: str, instance_uuid: str) -> None:
        """Runner hook: revoke the instance's tokens after a revoking action."""
        if action in REVOKING_ACTIONS:
            count = await self.tokens.delete_for_instance(instance_uuid)
            if count:
                log.info("console tokens revoked", instance_id=instance_uuid, action=action,
                         count=count)

    async def purge_expired(self) -> None:
        """Periodic job: delete expired tokens."""
        count = await self.tokens.purge_expired()
        if count:
            log.info("expired console tokens purged", count=count)

    async def session_started(self, grant: ConsoleGrant, peer: str) -> str:
        """Record the start of a session (a ``console`` action with an open
        ``console_session`` event); returns its request id."""
        request_id = new_request_id()
        action = ActionStart(SESSION_ACTION, request_id, grant.user_id, grant.project_id)
        event = EventStart(request_id, SESSION_EVENT, self.host)

        def run(conn: sqlite3.Connection) -> None:
            now = utcnow()
            action_id = action_rows.insert_action_sync(conn, grant.instance_uuid, action, now)
            action_rows.start_event_sync(conn, grant.instance_uuid, event, now, action_id)

        try:
            await self.store.db.write(run)
        except (sqlite3.Error, NotFound) as exc:  # the instance row went away meanwhile
            log.warning("console session not recorded", instance_id=grant.instance_uuid,
                        error=str(exc))
        log.info("console session started", instance_id=grant.instance_uuid,
                 user_id=grant.user_id, request_id=request_id, peer=peer)
        return request_id

    async def session_ended(self, grant: ConsoleGrant, request_id: str, stats: SessionStats,
                            started: float, error: str | None) -> None:
        """Close the session's event with its byte counts and duration."""
        duration = time.monotonic() - started
        details = (f"user {grant.user_id}: {stats.to_client} bytes to the client, "
                   f"{stats.from_client} from it, {duration:.1f} s"
                   + (f"; {error}" if error else ""))
        event = EventFinish(request_id, SESSION_EVENT, "Error" if error else "Success",
                            details=details)

        def run(conn: sqlite3.Connection) -> None:
            action_rows.finish_event_sync(conn, grant.instance_uuid, event, utcnow(), True)

        try:
            await self.store.db.write(run)
        except (sqlite3.Error, NotFound) as exc:
            log.warning("console session end not recorded", instance_id=grant.instance_uuid,
                        error=str(exc))
        log.info("console session ended", instance_id=grant.instance_uuid,
                 user_id=grant.user_id, request_id=request_id, bytes_to_client=stats.to_client,
                 bytes_from_client=stats.from_client, seconds=round(duration, 3), error=error)
