"""Key pairs (os-keypairs) as the Compute API serves them.

:class:`KeypairAPI` is what the HTTP layer calls; :class:`KeypairService`
implements it over the store.  Key pairs belong to a user; an admin may
manage another user's (microversion 2.10), anyone else only their own.
A pair is ``ssh`` (an OpenSSH public key, MD5 fingerprint of its blob) or
``x509`` (a PEM certificate, SHA-1 fingerprint of its DER form), the type
2.2 lets a caller choose.  Without a public key, Nova (before 2.92)
generates the pair and returns its private key exactly once: for ssh an RSA
2048 key in PEM, for x509 a self-signed client certificate for the user
with its key as a base64 PKCS#12 bundle without a password.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import hashlib
import string
from dataclasses import dataclass
from typing import Final, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from novad.context import RequestContext
from novad.errors import Forbidden, Invalid, OverQuota
from novad.store import Store
from novad.store.models import Keypair

MAX_KEYPAIRS = 100
"""Nova's default ``[quota] key_pairs`` per user (also shown by /limits)."""

_SAFE = frozenset("_- " + string.digits + string.ascii_letters)
_SAFE_V2_92 = _SAFE | frozenset("@.")
"""From microversion 2.92 key-pair names may also hold ``@`` and ``.``."""

SSH: Final = "ssh"
X509: Final = "x509"
TYPES: Final = (SSH, X509)
"""The key pair types (Nova's ``keypair_obj.KEYPAIR_TYPE_*``)."""

_UPN = x509.ObjectIdentifier("1.3.6.1.4.1.311.20.2.3")
"""Microsoft's User Principal Name, the ``otherName`` WinRM maps to a user."""


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
    """The key-pair service as the API layer sees it.  ``user_id`` None is
    the caller; another user's is for admins only.  Raises NotFound (404),
    Conflict (409, duplicate name), Invalid (400), OverQuota and Forbidden
    (403)."""

    async def list_keypairs(self, ctx: RequestContext, user_id: str | None = None, *,
                            limit: int | None = None, marker: str | None = None
                            ) -> list[Keypair]:
        """The user's key pairs, ordered by name: at most ``limit``, after the
        one named ``marker`` (2.35; an unknown marker is Invalid)."""

    async def get_keypair(self, ctx: RequestContext, name: str, user_id: str | None = None
                          ) -> Keypair:
        """One of the user's key pairs."""

    async def create_keypair(self, ctx: RequestContext, name: str, public_key: str | None,
                             key_type: str = SSH, user_id: str | None = None, *,
                             at_and_dot: bool = False) -> CreatedKeypair:
        """Import ``public_key``, or generate a pair of ``key_type`` when it is
        None; ``at_and_dot`` (2.92) lets the name hold ``@`` and ``.``."""

    async def delete_keypair(self, ctx: RequestContext, name: str,
                             user_id: str | None = None) -> None:
        """Delete one of the user's key pairs."""


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


def x509_fingerprint(certificate: str) -> str:
    """Nova's x509 fingerprint: SHA-1 of the certificate (DER) as
    colon-separated hex.  Raises InvalidKeypair for anything but a PEM
    certificate."""
    try:
        cert = x509.load_pem_x509_certificate(certificate.encode())
    except (ValueError, TypeError, UnicodeError) as exc:
        raise InvalidKeypair(f"failed to generate X509 fingerprint. Error message: {exc}"
                             ) from None
    raw = cert.fingerprint(hashes.SHA1()).hex()  # noqa: S303 - the fingerprint Nova shows
    return ":".join(raw[i:i + 2] for i in range(0, len(raw), 2))


def fingerprint_of(public_key: str, key_type: str) -> str:
    """The fingerprint of a key of ``key_type``."""
    return x509_fingerprint(public_key) if key_type == X509 else fingerprint(public_key)


def generate_x509(user_id: str) -> tuple[str, str]:
    """A new RSA 2048 key and a self-signed client certificate for
    ``user_id`` (``CN=<user>``, UPN ``<user>@localhost``, ten years), as
    (base64 PKCS#12 without password, PEM certificate).  Blocks for tens of
    milliseconds: call it in a thread."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, user_id)])
    upn = f"{user_id}@localhost".encode()
    der_utf8 = b"\x0c" + bytes([len(upn)]) + upn if len(upn) < 128 else \
        b"\x0c\x82" + len(upn).to_bytes(2, "big") + upn
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .add_extension(x509.SubjectAlternativeName([x509.OtherName(_UPN, der_utf8)]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    bundle = pkcs12.serialize_key_and_certificates(None, key, cert, None,
                                                   serialization.NoEncryption())
    return (base64.b64encode(bundle).decode(),
            cert.public_bytes(serialization.Encoding.PEM).decode())


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


def check_name(name: str, *, at_and_dot: bool = False) -> None:
    """Nova's key-pair name rule: letters, digits, ``_- `` only; with
    ``at_and_dot`` (2.92) also ``@`` and ``.``."""
    safe = _SAFE_V2_92 if at_and_dot else _SAFE
    if any(c not in safe for c in name):
        raise InvalidKeypair("Keypair name contains unsafe characters")
    if not 1 <= len(name) <= 255:
        raise InvalidKeypair("Keypair name must be string and between 1 and 255 "
                             "characters long")


class KeypairService:
    """Implements :class:`KeypairAPI` over :class:`novad.store.Store`."""

    def __init__(self, store: Store, max_keypairs: int = MAX_KEYPAIRS) -> None:
        self.store = store
        self.max_keypairs = max_keypairs

    async def list_keypairs(self, ctx: RequestContext, user_id: str | None = None, *,
                            limit: int | None = None, marker: str | None = None
                            ) -> list[Keypair]:
        """The user's key pairs, one page of them."""
        return await self.store.list_keypairs(_owner(ctx, user_id, "index"), limit=limit,
                                              marker=marker)

    async def get_keypair(self, ctx: RequestContext, name: str, user_id: str | None = None
                          ) -> Keypair:
        """NotFound when the user has no such key pair."""
        return await self.store.get_keypair(_owner(ctx, user_id, "show"), name)

    async def create_keypair(self, ctx: RequestContext, name: str, public_key: str | None,
                             key_type: str = SSH, user_id: str | None = None, *,
                             at_and_dot: bool = False) -> CreatedKeypair:
        """Check the caller may, the name and the user's quota, then import
        or generate."""
        owner = _owner(ctx, user_id, "create")
        check_name(name, at_and_dot=at_and_dot)
        if len(await self.store.list_keypairs(owner)) >= self.max_keypairs:
            raise OverQuota("Quota exceeded, too many key pairs.")
        private: str | None = None
        if public_key is not None:
            key = public_key
        elif key_type == X509:
            private, key = await asyncio.to_thread(generate_x509, owner)
        else:
            private, key = await asyncio.to_thread(generate_keypair)
        pair = await self.store.create_keypair(owner, name, key, fingerprint_of(key, key_type),
                                               key_type)
        return CreatedKeypair(pair, private)

    async def delete_keypair(self, ctx: RequestContext, name: str,
                             user_id: str | None = None) -> None:
        """NotFound when the user has no such key pair."""
        await self.store.delete_keypair(_owner(ctx, user_id, "delete"), name)


def _owner(ctx: RequestContext, user_id: str | None, action: str) -> str:
    """The user whose key pairs a request is about: the caller's own, or,
    for an admin, anyone's (Nova's ``admin or user_id:%(user_id)s``)."""
    owner = user_id or ctx.user_id
    if owner != ctx.user_id and not ctx.is_admin:
        raise Forbidden(f"Policy doesn't allow os_compute_api:os-keypairs:{action} "
                        "to be performed.")
    return owner
