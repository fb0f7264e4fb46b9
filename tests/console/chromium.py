"""Headless Chromium driven over the DevTools protocol (a websocket), for the
console's end-to-end test: open a page, read an element, take a screenshot."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--no-first-run", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1024,768", "--remote-debugging-port=0")


class Page:
    """One tab, attached with a flat DevTools session."""

    def __init__(self, ws: ClientConnection, session_id: str) -> None:
        self.ws = ws
        self.session_id = session_id
        self._ids = itertools.count(1000)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command on this tab and return its result."""
        return await _call(self.ws, self._ids, method, params, self.session_id)

    async def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression."""
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    async def wait_for(self, expression: str, timeout: float = 30.0) -> Any:
        """Poll ``expression`` until it is truthy; its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = await self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {expression}")
            await asyncio.sleep(0.2)

    async def screenshot(self, clip: dict[str, float] | None = None) -> bytes:
        """A PNG of the page (or of ``clip``)."""
        params: dict[str, Any] = {"format": "png"}
        if clip is not None:
            params["clip"] = {**clip, "scale": 1}
        return base64.b64decode((await self.call("Page.captureScreenshot", **params))["data"])


async def _call(ws: ClientConnection, ids: Any, method: str, params: dict[str, Any],
                session_id: str | None = None) -> dict[str, Any]:
    ident = next(ids)
    message: dict[str, Any] = {"id": ident, "method": method, "params": params}
    if session_id:
        message["sessionId"] = session_id
    await ws.send(json.dumps(message))
    async with asyncio.timeout(30):
        while True:
            reply = json.loads(await ws.recv())
            if reply.get("id") == ident:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return dict(reply.get("result", {}))


@contextlib.asynccontextmanager
async def chromium(scratch: Path) -> AsyncIterator[ClientConnection]:
    """A headless Chromium and a DevTools connection to its browser target."""
    assert CHROMIUM is not None
    profile = scratch / "chromium-profile"
    profile.mkdir(parents=True, exist_ok=True)
    # Chromium leaves scratch files in TMPDIR; give it a short one of its own
    # (its singleton socket lives there, and socket paths are short).
    scratch_tmp = tempfile.mkdtemp(prefix="novad-chromium-")
    env = {**os.environ, "TMPDIR": scratch_tmp}
    proc = await asyncio.create_subprocess_exec(
        CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank", env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not port_file.exists() or len(port_file.read_text().split()) < 2:
            if proc.returncode is not None or time.monotonic() > deadline:
                raise RuntimeError("Chromium did not start its DevTools endpoint")
            await asyncio.sleep(0.1)
        port, path = port_file.read_text().split()[:2]
        async with websockets.connect(f"ws://127.0.0.1:{port}{path}", max_size=None,
                                      compression=None) as ws:
            yield ws
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
        shutil.rmtree(profile, ignore_errors=True)
        shutil.rmtree(scratch_tmp, ignore_errors=True)


async def open_page(browser: ClientConnection, url: str) -> Page:
    """A new tab showing ``url``."""
    ids = itertools.count(1)
    target = await _call(browser, ids, "Target.createTarget", {"url": "about:blank"})
    attached = await _call(browser, ids, "Target.attachToTarget",
                           {"targetId": target["targetId"], "flatten": True})
    page = Page(browser, attached["sessionId"])
    await page.call("Page.enable")
    await page.call("Page.navigate", url=url)
    return page
