"""The console token store on a real SQLite file: hashes only, TTL, revocation."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from novad.console.tokens import CONSOLE, TokenStore, token_hash
from novad.store import Database


class Clock:
    """Unix time the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


async def _issue(tokens: TokenStore, instance: str = "i-1", ttl: float = 600) -> str:
    issued = await tokens.authorize(
        instance_uuid=instance, host="127.0.0.1", port=5901, console_type="novnc",
        access_url_base="http://node:6080/vnc_auto.html", ttl=ttl, user_id="u", project_id="p")
    return issued.token


async def test_only_the_hash_is_stored(db: Database, tmp_path: Path) -> None:
    token = await _issue(TokenStore(db))
    with sqlite3.connect(tmp_path / "novad.sqlite") as conn:
        rows = conn.execute("SELECT * FROM console_auth_tokens").fetchall()
        dump = "\n".join(conn.iterdump())
    assert len(rows) == 1
    assert token not in repr(rows) and token not in dump
    assert hashlib.sha256(token.encode()).hexdigest() in repr(rows)
    assert token_hash(token) == hashlib.sha256(token.encode()).hexdigest()


async def test_validate_until_expiry_and_reusable(db: Database) -> None:
    clock = Clock()
    tokens = TokenStore(db, clock)
    token = await _issue(tokens, ttl=600)
    for _ in range(2):  # not single-use (Nova's rule)
        grant = await tokens.validate(token)
        assert grant is not None and (grant.instance_uuid, grant.port) == ("i-1", 5901)
        assert (grant.user_id, grant.project_id) == ("u", "p")
    clock.now += 599.9
    assert await tokens.validate(token) is not None
    clock.now += 0.1  # expires > now is required: at the expiry instant it is gone
    assert await tokens.validate(token) is None
    assert await tokens.validate("") is None
    assert await tokens.validate("not-a-token") is None


async def test_delete_for_instance_and_purge(db: Database) -> None:
    clock = Clock()
    tokens = TokenStore(db, clock)
    a1, a2 = await _issue(tokens, "a"), await _issue(tokens, "a")
    b_short = await _issue(tokens, "b", ttl=10)
    b_long = await _issue(tokens, "b", ttl=1000)
    assert await tokens.delete_for_instance("a") == 2
    assert await tokens.validate(a1) is None and await tokens.validate(a2) is None
    clock.now += 100
    assert await tokens.purge_expired() == 1
    assert await tokens.validate(b_short) is None
    assert await tokens.validate(b_long) is not None
    assert await tokens.purge_expired() == 0


async def test_access_url_is_novas(db: Database) -> None:
    issued = await TokenStore(db).authorize(
        instance_uuid="i", host="h", port=5900, console_type="novnc",
        access_url_base="http://node:6080/vnc_auto.html", ttl=600, user_id="u", project_id="p")
    assert issued.access_url == \
        f"http://node:6080/vnc_auto.html?path=%3Ftoken%3D{issued.token}"
    query = parse_qs(urlsplit(issued.access_url).query)
    assert query == {"path": [f"?token={issued.token}"]}
