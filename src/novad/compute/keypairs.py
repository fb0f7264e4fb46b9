"""Key pairs (os-keypairs) as the Compute API serves them.

:class:`KeypairAPI` is what the HTTP layer calls; :class:`KeypairService`
implements it over the store.  Key pairs belong to a user.  Without a public
key, Nova (before 2.92) generates an RSA 2048 pair and returns the private
key exactly once; an imported key gets an MD5 fingerprint of its blob.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import string
from dataclasses import dataclass
from typing import Protocol

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from novad.context import RequestContext
from novad.errors import Invalid, OverQuota
from novad.store import Store
from novad.store.models import Keypair

MAX_KEYPAIRS = 100
"""Nova's default ``[quota] key_pairs`` per user (also shown by /limits)."""

_SAFE = frozenset("_- " + string.digits + string.ascii_letters)


class InvalidKeypair(Invalid):
    """Key pair data Nova refuses (400)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"Keypair data is invalid: {reason}")


@dataclass(frozen=True)
class CreatedKeypair:
    """A new key pair; ``private_key`` is set only when novad generated it."""

    keypair: Keypair
    private_key: str | None = None


class KeypairAPI(Protocol):
    """The key-pair service as the API layer sees it.  Raises NotFound (404),
    Conflict (409, duplicate name), Invalid (400), OverQuota (403)."""

    async def list_keypairs(self, ctx: RequestContext) -> list[Keypair]:
        """The caller's key pairs, ordered by name."""

    async def get_keypair(self, ctx: RequestContext, name: str) -> Keypair:
        """One of the caller's key pairs."""

    async def create_keypair(self, ctx: RequestContext, name: str,
                             public_key: str | None) -> CreatedKeypair:
        """Import ``public_key``, or generate a pair when it is None."""

    async def delete_keypair(self, ctx: RequestContext, name: str) -> None:
        """Delete one of the caller's key pairs."""


def fingerprint(public_key: str) -> str:
    """Nova's fingerprint: MD5 of the key blob as colon-separated hex.

    Raises InvalidKeypair when ``public_key`` is not an OpenSSH public key.
    """
    try:
        serialization.load_ssh_public_key(public_key.encode())
        blob = base64.b64decode(public_key.split()[1])
    except (ValueError, IndexError, UnicodeError, TypeError):
        raise InvalidKeypair("failed to generate fingerprint") from None
    raw = hashlib.md5(blob, usedforsecurity=False).hexdigest()
    return ":".join(raw[i:i + 2] for i in range(0, len(raw), 2))


def generate_keypair() -> tuple[str, str]:
    """A new RSA 2048 pair as (private PEM, OpenSSH public key).  Blocks
    for tens of milliseconds: call it in a thread."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH).decode()
    return private, f"{public} Generated-by-Nova"


def check_name(name: str) -> None:
    """Nova's pre-2.92 key-pair name rule: letters, digits, ``_- `` only."""
    if any(c not in _SAFE for c in name):
        raise InvalidKeypair("Keypair name contains unsafe characters")
    if not 1 <= len(name) <= 255:
        raise InvalidKeypair("Keypair name must be string and between 1 and 255 "
                             "characters long")


class KeypairService:
    """Implements :class:`KeypairAPI` over :class:`novad.store.Store`."""

    def __init__(self, store: Store, max_keypairs: int = MAX_KEYPAIRS) -> None:
        self.store = store
        self.max_keypairs = max_keypairs

    async def list_keypairs(self, ctx: RequestContext) -> list[Keypair]:
        """The caller's key pairs."""
        return await self.store.list_keypairs(ctx.user_id)

    async def get_keypair(self, ctx: RequestContext, name: str) -> Keypair:
        """NotFound when the caller has no such key pair."""
        return await self.store.get_keypair(ctx.user_id, name)

    async def create_keypair(self, ctx: RequestContext, name: str,
                             public_key: str | None) -> CreatedKeypair:
        """Validate the name and quota, then import or generate."""
        check_name(name)
        if len(await self.store.list_keypairs(ctx.user_id)) >= self.max_keypairs:
            raise OverQuota("Quota exceeded, too many key pairs.")
        private: str | None = None
        if public_key is None:
            private, key = await asyncio.to_thread(generate_keypair)
        else:
            key = public_key
        pair = await self.store.create_keypair(ctx.user_id, name, key, fingerprint(key), "ssh")
        return CreatedKeypair(pair, private)

    async def delete_keypair(self, ctx: RequestContext, name: str) -> None:
        """NotFound when the caller has no such key pair."""
        await self.store.delete_keypair(ctx.user_id, name)
