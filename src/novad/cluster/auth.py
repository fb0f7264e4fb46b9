"""The cluster key and the authentication of every node-to-node message.

Every member holds the same 32-byte key (``[cluster] key_file``).  A message
between nodes is an HTTP request under ``/cluster/v1/`` whose headers carry
the sender's name, a timestamp, a random nonce and an HMAC-SHA256 over the
method, the path, those three and the SHA-256 of the body.  The MAC key is
derived from the cluster key with HKDF (its own ``info``), so it is never
the key that seals API tokens.  A receiver refuses, counts and logs:

* a missing or malformed header, or a signature that does not verify
  (forged, altered, or made with another key);
* a timestamp further than ``max_skew`` from its own clock (stale);
* a nonce it has already accepted within the skew window (replayed).

Answers to node-to-node requests are signed too, bound to the request's
nonce, so a reply cannot be forged or replayed onto another request.
"""

from __future__ import annotations

import base64
import collections
import hashlib
import hmac
import os
import secrets
import stat
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import structlog
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

log = structlog.get_logger("novad.cluster.auth")

KEY_BYTES = 32
_MAC_INFO = b"novad-cluster-mac"
NODE = "X-Novad-Node"
TIMESTAMP = "X-Novad-Timestamp"
NONCE = "X-Novad-Nonce"
SIGNATURE = "X-Novad-Signature"
_NONCE_BYTES = 16
_MAX_NONCES = 200_000


class KeyFileError(Exception):
    """The cluster key file is missing, unreadable, too open or malformed."""


class AuthFailed(Exception):
    """A node-to-node message was refused; ``reason`` is one stable word."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


def init_key(path: Path) -> None:
    """Write a new random cluster key to ``path`` (mode 0600, atomically).

    Blocks on file I/O.  Raises KeyFileError when ``path`` exists: a key is
    never overwritten, since every member must keep the same one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(secrets.token_bytes(KEY_BYTES))
        fh.flush()
        os.fsync(fh.fileno())
    try:
        os.link(tmp, path)  # link, not rename: an existing key is never replaced
    except FileExistsError:
        raise KeyFileError(f"{path} already exists; a cluster key is never overwritten") from None
    finally:
        os.unlink(tmp)


def read_key(path: Path) -> bytes:
    """The key in ``path``; KeyFileError unless it is 32 bytes that only
    its owner can read (mode 0600 or 0400, as ssh insists for private keys)."""
    try:
        info = path.stat()
        key = path.read_bytes()
    except FileNotFoundError:
        raise KeyFileError(f"{path}: no such file (create it with `novad cluster init-key "
                           f"{path}` on the first node and copy it to every other)") from None
    except OSError as exc:
        raise KeyFileError(f"{path}: {exc.strerror}") from None
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(f"{path}: mode {stat.S_IMODE(info.st_mode):04o} lets group or others "
                           "read the cluster key; chmod 600 it")
    if len(key) != KEY_BYTES:
        raise KeyFileError(f"{path}: expected {KEY_BYTES} bytes, found {len(key)}")
    return key


def load_key(path: Path, create: bool) -> bytes:
    """The cluster key, created first when missing and ``create`` (a node
    without seeds starts a cluster of its own; a joiner must be given the
    cluster's key)."""
    if create and not path.exists():
        try:
            init_key(path)
        except KeyFileError:
            pass  # created concurrently: read what is there
    return read_key(path)


def _mac_key(cluster_key: bytes) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_MAC_INFO)
    return hkdf.derive(cluster_key)


class MessageAuth:
    """Signs outgoing and verifies incoming node-to-node messages.

    Not thread-safe; used from the event loop only.  ``refused`` counts the
    refusals by reason (``forged``, ``stale``, ``replayed``, ``malformed``).
    """

    def __init__(self, cluster_key: bytes, node: str, max_skew: float = 30.0,
                 clock: Callable[[], float] = time.time) -> None:
        self._key = _mac_key(cluster_key)
        self.node = node
        self.max_skew = max_skew
        self._clock = clock
        self._nonces: collections.OrderedDict[str, float] = collections.OrderedDict()
        self.refused: collections.Counter[str] = collections.Counter()

    def _mac(self, *parts: str | bytes) -> str:
        mac = hmac.new(self._key, digestmod=hashlib.sha256)
        for part in parts:
            data = part.encode() if isinstance(part, str) else part
            mac.update(len(data).to_bytes(4, "big"))
            mac.update(data)
        return base64.urlsafe_b64encode(mac.digest()).decode("ascii")

    def sign(self, method: str, path: str, body: bytes) -> dict[str, str]:
        """Headers that authenticate a request of ours."""
        ts = f"{self._clock():.3f}"
        nonce = secrets.token_urlsafe(_NONCE_BYTES)
        digest = hashlib.sha256(body).digest()
        sig = self._mac("req", method.upper(), path, self.node, ts, nonce, digest)
        return {NODE: self.node, TIMESTAMP: ts, NONCE: nonce, SIGNATURE: sig}

    def verify(self, method: str, path: str, headers: Mapping[str, str], body: bytes,
               peer: str) -> str:
        """The sending node's name; AuthFailed (counted and logged) otherwise."""
        try:
            return self._verify(method, path, headers, body)
        except AuthFailed as exc:
            self.refused[exc.reason] += 1
            log.warning("node-to-node message refused", reason=exc.reason, peer=peer,
                        path=path, detail=str(exc))
            raise

    def _verify(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> str:
        node, ts, nonce, sig = (headers.get(h, "") for h in (NODE, TIMESTAMP, NONCE, SIGNATURE))
        if not (node and ts and nonce and sig) or len(node) > 255 or len(nonce) > 64:
            raise AuthFailed("malformed", "missing or oversized authentication headers")
        try:
            stamp = float(ts)
        except ValueError:
            raise AuthFailed("malformed", "timestamp is not a number") from None
        expected = self._mac("req", method.upper(), path, node, ts, nonce,
                             hashlib.sha256(body).digest())
        if not hmac.compare_digest(expected, sig):
            raise AuthFailed("forged", "signature does not verify with the cluster key")
        now = self._clock()
        if not abs(now - stamp) <= self.max_skew:
            raise AuthFailed("stale", f"timestamp {now - stamp:+.1f} s from ours")
        self._remember(nonce, now)
        return node

    def _remember(self, nonce: str, now: float) -> None:
        nonces = self._nonces
        while nonces:
            oldest, seen = next(iter(nonces.items()))
            if seen >= now - 2 * self.max_skew and len(nonces) < _MAX_NONCES:
                break
            del nonces[oldest]
        if nonce in nonces:
            raise AuthFailed("replayed", "nonce already used")
        nonces[nonce] = now

    def sign_response(self, request_nonce: str, status: int, body: bytes) -> dict[str, str]:
        """Headers that bind our answer to the request it answers."""
        sig = self._mac("resp", request_nonce, str(status), self.node,
                        hashlib.sha256(body).digest())
        return {NODE: self.node, SIGNATURE: sig}

    def verify_response(self, request_nonce: str, status: int, headers: Mapping[str, str],
                        body: bytes) -> str:
        """The answering node's name; AuthFailed when the answer is not
        a member's answer to this very request."""
        node, sig = headers.get(NODE, ""), headers.get(SIGNATURE, "")
        expected = self._mac("resp", request_nonce, str(status), node,
                             hashlib.sha256(body).digest())
        if not node or not hmac.compare_digest(expected, sig):
            self.refused["forged"] += 1
            raise AuthFailed("forged", "answer not signed with the cluster key")
        return node
