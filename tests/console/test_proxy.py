"""The console proxy on a real port, in front of real RFB servers (QEMU).

Token rules (expired, deleted instance, another instance's port, cookie),
Origin rules, the RFB security proxy (None towards the browser, None or VNC
password towards QEMU), session records, and session ends (server gone,
idle, token expiry).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable

import pytest
from console_harness import Harness, HarnessFactory, owner, token_of
from console_helpers import VncServer, refused_status, rfb_screen, wait_for, ws_connect
from websockets.exceptions import ConnectionClosed

from novad.console import rfb
from novad.drivers.base import ConsoleInfo


async def test_rfb_through_the_proxy(harness: Harness, vnc: VncServer) -> None:
    inst = await harness.boot()
    token = await harness.token_for(inst, vnc)
    async with ws_connect(harness.ws_url(token), origin=harness.origin) as ws:
        assert ws.subprotocol == "binary"
        init, colours = await rfb_screen(ws)
    assert (init.width, init.height) == (640, 480) and init.name.startswith("QEMU")
    assert colours, "no pixels came through"


async def test_browser_is_offered_security_none_only(harness: Harness, vnc: VncServer) -> None:
    inst = await harness.boot()
    token = await harness.token_for(inst, vnc)
    async with ws_connect(harness.ws_url(token)) as ws:
        channel = rfb.WebSocketChannel(ws)
        assert await channel.readexactly(12) == rfb.VERSION_38
        await channel.write(rfb.VERSION_38)
        assert await channel.readexactly(2) == b"\x01\x01"  # one type: None
        await channel.write(b"\x01")
        assert await channel.readexactly(4) == rfb.RESULT_OK


async def test_older_rfb_client_is_refused(harness: Harness, vnc: VncServer) -> None:
    inst = await harness.boot()
    token = await harness.token_for(inst, vnc)
    async with ws_connect(harness.ws_url(token)) as ws:
        channel = rfb.WebSocketChannel(ws)
        await channel.readexactly(12)
        await channel.write(b"RFB 003.003\n")
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)


async def test_expired_token_is_refused(make_harness: HarnessFactory, vnc: VncServer) -> None:
    async with make_harness(consoleauth={"token_ttl": 0}) as h:
        inst = await h.boot()
        token = await h.token_for(inst, vnc)
        assert await refused_status(h.ws_url(token)) == 401


async def test_unknown_token_is_refused(harness: Harness) -> None:
    assert await refused_status(harness.ws_url("0f8c7c2e-0000-4000-8000-000000000000")) == 401
    assert await refused_status(f"ws://{harness.host}:{harness.port}/") == 401


async def test_token_of_a_deleted_instance_is_refused(harness: Harness, vnc: VncServer) -> None:
    inst = await harness.boot()
    token = await harness.token_for(inst, vnc)
    async with ws_connect(harness.ws_url(token)) as ws:
        await rfb_screen(ws)
    await harness.node.compute.delete(owner(), inst.uuid)
    await harness.node.supervisor.drain()
    assert await harness.node.consoles.tokens.validate(token) is None  # type: ignore[union-attr]
    assert await refused_status(harness.ws_url(token)) == 401


@pytest.mark.parametrize("action", ["rescue", "shelve"])
async def test_tokens_revoked_by_rescue_and_shelve(harness: Harness, vnc: VncServer,
                                                   action: str) -> None:
    inst = await harness.boot()
    token = await harness.token_for(inst, vnc)
    await harness.node.compute.act(owner(), inst.uuid, action, {})
    await harness.node.supervisor.drain()
    assert await refused_status(harness.ws_url(token)) == 401


async def test_token_for_a_cannot_reach_b(harness: Harness, vnc: VncServer,
                                          vnc_factory: Callable[..., VncServer]) -> None:
    a, b = await harness.boot("a"), await harness.boot("b")
    vnc_b = vnc_factory()
    token_a = await harness.token_for(a, vnc)
    token_b = await harness.token_for(b, vnc_b)
    # A stored row pointing at B's port (stale or forged) is refused: A's
    # console is not there.
    with sqlite3.connect(harness.node.db.path) as conn:
        conn.execute("UPDATE console_auth_tokens SET port = ? WHERE instance_uuid = ?",
                     (vnc_b.port, a.uuid))
    assert await refused_status(harness.ws_url(token_a)) == 401
    # A's guest went away (its port may now be anyone's): refused as well.
    with sqlite3.connect(harness.node.db.path) as conn:
        conn.execute("UPDATE console_auth_tokens SET port = ? WHERE instance_uuid = ?",
                     (vnc.port, a.uuid))
    async with ws_connect(harness.ws_url(token_a)) as ws:
        await rfb_screen(ws)
    del harness.ports.table[a.uuid]
    assert await refused_status(harness.ws_url(token_a)) == 401
    harness.ports.table[a.uuid] = ConsoleInfo("127.0.0.1", vnc_b.port)  # A restarted elsewhere
    assert await refused_status(harness.ws_url(token_a)) == 401
    async with ws_connect(harness.ws_url(token_b)) as ws:
        await rfb_screen(ws)


async def test_wrong_origin_is_refused(harness: Harness, vnc: VncServer) -> None:
    inst = await harness.boot()
    token = await harness.token_for(inst, vnc)
    url = harness.ws_url(token)
    assert await refused_status(url, origin="http://evil.example.com") == 403
    assert await refused_status(url, origin=f"https://{harness.host}:{harness.port}") == 403
    assert await refused_status(url, origin=harness.origin,
                                headers={"X-Forwarded-Proto": "https"}) == 403
    assert await refused_status(url, origin="null") == 403
    async with ws_connect(url, origin=harness.origin) as ws:
        await rfb_screen(ws)


async def test_missing_origin_is_accepted(harness: Harness, vnc: VncServer) -> None:
    inst = await harness.boot()
    token = await harness.token_for(inst, vnc)
    async with ws_connect(harness.ws_url(token)) as ws:
        init, _ = await rfb_screen(ws)
    assert init.width == 640


async def test_allowed_origins(make_harness: HarnessFactory, vnc: VncServer) -> None:
    async with make_harness(console={"allowed_origins": ["console.example.com"]}) as h:
        inst = await h.boot()
        token = await h.token_for(inst, vnc)
        async with ws_connect(h.ws_url(token), origin="http://console.example.com") as ws:
            await rfb_screen(ws)
        # behind a TLS-terminating proxy: X-Forwarded-Proto must match the base URL's scheme
        assert await refused_status(h.ws_url(token), origin="https://console.example.com",
                                    headers={"X-Forwarded-Proto": "https"}) == 403
        assert await refused_status(h.ws_url(token), origin="http://other.example.com") == 403


async def test_token_from_cookie_and_any_path(harness: Harness, vnc: VncServer) -> None:
    inst = await harness.boot()
    token = await harness.token_for(inst, vnc)
    base = f"ws://{harness.host}:{harness.port}"
    async with ws_connect(f"{base}/websockify",
                          headers={"Cookie": f"junk=1; token={token}"}) as ws:
        await rfb_screen(ws)
    async with ws_connect(f"{base}/websockify?token={token}") as ws:
        await rfb_screen(ws)


async def test_vnc_password_towards_the_server(make_harness: HarnessFactory,
                                               vnc_factory: Callable[..., VncServer]) -> None:
    locked = vnc_factory(password="s3cret")
    async with make_harness(vnc={"vnc_password": "s3cret"}) as h:
        inst = await h.boot()
        token = await h.token_for(inst, locked)
        async with ws_connect(h.ws_url(token)) as ws:
            init, _ = await rfb_screen(ws)  # the browser side is still security None
        assert init.width == 640
    async with make_harness(vnc={"vnc_password": "wrong"}) as h:
        inst = await h.boot()
        token = await h.token_for(inst, locked)
        async with ws_connect(h.ws_url(token)) as ws:
            with pytest.raises(rfb.RFBError, match="refused the connection: Unable to "
                                                   "negotiate security with server"):
                await rfb.client_handshake(rfb.WebSocketChannel(ws))


async def test_session_is_recorded(harness: Harness, vnc: VncServer) -> None:
    inst = await harness.boot()
    token = await harness.token_for(inst, vnc)
    async with ws_connect(harness.ws_url(token)) as ws:
        await rfb_screen(ws)
    store = harness.node.store

    async def finished() -> object:
        actions = [a for a in await store.list_actions(inst.uuid) if a.action == "console"]
        return actions and actions[0].finish_time and actions[0]
    action = await wait_for(finished)
    assert action.user_id == "u1" and action.project_id == "p1"
    [event] = (await store.get_action(inst.uuid, action.request_id)).events
    assert event.event == "console_session" and event.result == "Success"
    assert event.start_time and event.finish_time
    assert "bytes to the client" in (event.details or "") and "user u1" in (event.details or "")


async def test_enforce_session_timeout(make_harness: HarnessFactory, vnc: VncServer) -> None:
    async with make_harness(consoleauth={"token_ttl": 2, "enforce_session_timeout": True}) as h:
        inst = await h.boot()
        token = await h.token_for(inst, vnc)
        async with ws_connect(h.ws_url(token)) as ws:
            await rfb_screen(ws)
            started = time.monotonic()
            with pytest.raises(ConnectionClosed):
                while True:
                    await asyncio.wait_for(ws.recv(), 10)
            assert time.monotonic() - started < 5


async def test_session_outlives_token_without_enforcement(make_harness: HarnessFactory,
                                                          vnc: VncServer) -> None:
    async with make_harness(consoleauth={"token_ttl": 1}) as h:
        inst = await h.boot()
        token = await h.token_for(inst, vnc)
        async with ws_connect(h.ws_url(token)) as ws:
            init, _ = await rfb_screen(ws)
            await asyncio.sleep(1.5)
            channel = rfb.WebSocketChannel(ws)
            await rfb.request_update(channel, init.width, init.height)
            assert await rfb.read_update(channel)


async def test_idle_session_is_closed(make_harness: HarnessFactory, vnc: VncServer) -> None:
    async with make_harness(console={"idle_timeout": 1}) as h:
        inst = await h.boot()
        token = await h.token_for(inst, vnc)
        async with ws_connect(h.ws_url(token)) as ws:
            await rfb_screen(ws)
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 10)


async def test_vnc_server_gone_closes_the_websocket(harness: Harness,
                                                    vnc_factory: Callable[..., VncServer]
                                                    ) -> None:
    doomed = vnc_factory()
    inst = await harness.boot()
    token = await harness.token_for(inst, doomed)
    async with ws_connect(harness.ws_url(token)) as ws:
        await rfb_screen(ws)
        doomed.stop()
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 10)


async def test_console_action_never_collects_other_events(harness: Harness,
                                                          vnc: VncServer) -> None:
    """Recovery attaches its events to the latest action: a console session
    opened meanwhile must not be it."""
    from novad.console.service import SESSION_ACTION
    from novad.store.actions import OBSERVING_ACTIONS
    assert SESSION_ACTION in OBSERVING_ACTIONS
    inst = await harness.boot()
    token = await harness.token_for(inst, vnc)
    async with ws_connect(harness.ws_url(token)) as ws:
        await rfb_screen(ws)
        store = harness.node.store
        actions = [a.action for a in await store.list_actions(inst.uuid)]
        assert actions[0] == SESSION_ACTION
        latest = await store.latest_action(inst.uuid)
        assert latest is not None and latest.action == "create"


async def test_console_url_refused_while_deleting_building_or_stopped(harness: Harness,
                                                                      vnc: VncServer) -> None:
    import dataclasses

    from novad.errors import InstanceInvalidState, InstanceNotReady, Invalid
    from novad.states.enums import TaskState, VmState
    from novad.store.models import Expect
    inst = await harness.boot()
    with pytest.raises(InstanceNotReady):  # building, no VNC server yet: 409
        await harness.service.console_url(owner(), dataclasses.replace(
            inst, vm_state=VmState.BUILDING), "novnc")
    with pytest.raises(Invalid, match="Unavailable console type vnc"):  # no VNC server: 400
        await harness.service.console_url(owner(), inst, "novnc")
    harness.ports.table[inst.uuid] = ConsoleInfo("127.0.0.1", vnc.port)
    for task in (TaskState.DELETING, TaskState.MIGRATING):
        await harness.node.store.write(inst.uuid, Expect(), {"task_state": task})
        with pytest.raises(InstanceInvalidState) as refused:
            await harness.node.compute.console_url(owner(), inst.uuid, "vnc", "novnc")
        assert refused.value.status == 409


@pytest.mark.parametrize("copying", [True, False], ids=["transport-copies", "transport-keeps"])
async def test_relay_carries_every_byte_both_ways(harness: Harness, copying: bool,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """16 MiB each way at once through the zero-copy relay, against an RFB
    server that echoes after its handshake: nothing lost, reordered or reused.
    Both buffer policies run: reuse (Python < 3.12 transports copy what they
    cannot send) and hand-over (later ones keep a reference)."""
    import hashlib
    import os

    from novad.console import relay
    monkeypatch.setattr(relay, "_COPYING_TRANSPORTS", copying)

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(rfb.VERSION_38)
        await reader.readexactly(12)
        writer.write(b"\x01\x01")
        await reader.readexactly(1)
        writer.write(rfb.RESULT_OK)
        while data := await reader.read(300_000):
            writer.write(data)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    inst = await harness.boot()
    harness.ports.table[inst.uuid] = ConsoleInfo("127.0.0.1", server.sockets[0].getsockname()[1])
    token = token_of(await harness.service.console_url(owner(), inst, "novnc"))
    payload = os.urandom(16 * 1024 * 1024)
    async with ws_connect(harness.ws_url(token)) as ws:
        channel = rfb.WebSocketChannel(ws)
        await rfb.authenticate_to_server(channel, None)

        async def send() -> None:
            for start in range(0, len(payload), 70_001):  # odd sizes on purpose
                await channel.write(payload[start:start + 70_001])

        sender = asyncio.create_task(send())
        received = await channel.readexactly(len(payload))
        await sender
    server.close()
    assert hashlib.sha256(received).digest() == hashlib.sha256(payload).digest()
