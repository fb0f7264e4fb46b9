"""Fernet API tokens sealed with a key derived from the cluster key.

A token is a Fernet token around a compact JSON payload: who (user), where
(project), when (issued, expires) and an audit id.  Roles are deliberately
not in it: they are read again at validation so that removing a role takes
effect at once.  Tokens are never stored; revoking one records its audit id.

Every node that shares ``<state_dir>/cluster.key`` derives the same Fernet
key (HKDF-SHA256), so a token issued by one node is accepted by the others.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

CLUSTER_KEY_FILE = "cluster.key"
CLUSTER_KEY_BYTES = 32
_HKDF_INFO = b"novad-identity-token"
_PAYLOAD_VERSION = 1


class BadToken(Exception):
    """A token that cannot be opened: forged, corrupt, or another key's."""


def load_or_create_cluster_key(state_dir: Path) -> bytes:
    """The 32-byte cluster secret in ``<state_dir>/cluster.key``.

    Created (mode 0600, written atomically) when missing.  Blocks on file
    I/O; call at start-up.  Raises ValueError when the file exists with the
    wrong length.
    """
    path = Path(state_dir) / CLUSTER_KEY_FILE
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_bytes(CLUSTER_KEY_BYTES)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(key)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            # link, not rename: a concurrent creator must not be overwritten.
            os.link(tmp, path)
        except FileExistsError:
            key = path.read_bytes()
        finally:
            os.unlink(tmp)
    if len(key) != CLUSTER_KEY_BYTES:
        raise ValueError(f"{path}: expected {CLUSTER_KEY_BYTES} bytes, found {len(key)}")
    return key


def fernet_for(cluster_key: bytes) -> Fernet:
    """The token Fernet derived from ``cluster_key`` (HKDF-SHA256)."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO)
    return Fernet(base64.urlsafe_b64encode(hkdf.derive(cluster_key)))


@dataclass(frozen=True)
class TokenPayload:
    """What a token says: times are epoch seconds."""

    user_id: str
    project_id: str
    issued_at: float
    expires_at: float
    audit_id: str


def new_audit_id() -> str:
    """A Keystone-style audit id: 22 url-safe characters."""
    return secrets.token_urlsafe(16)


def seal(fernet: Fernet, payload: TokenPayload) -> str:
    """The token string carrying ``payload``."""
    raw = json.dumps(
        {"v": _PAYLOAD_VERSION, "u": payload.user_id, "p": payload.project_id,
         "i": payload.issued_at, "e": payload.expires_at, "a": payload.audit_id},
        separators=(",", ":"),
    ).encode()
    return fernet.encrypt_at_time(raw, int(payload.issued_at)).decode("ascii")


def unseal(fernet: Fernet, token: str) -> TokenPayload:
    """The payload of ``token``; BadToken when it is not one of ours.

    Expiry is not checked here (the caller owns the clock).
    """
    try:
        raw = fernet.decrypt(token.encode("ascii"))
        data = json.loads(raw)
        if data["v"] != _PAYLOAD_VERSION:
            raise BadToken("unknown token version")
        return TokenPayload(
            user_id=str(data["u"]), project_id=str(data["p"]),
            issued_at=float(data["i"]), expires_at=float(data["e"]),
            audit_id=str(data["a"]),
        )
    except (InvalidToken, UnicodeEncodeError, ValueError, KeyError, TypeError) as exc:
        raise BadToken(str(exc) or type(exc).__name__) from None
