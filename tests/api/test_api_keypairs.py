"""Key pairs over HTTP against a real SQLite store; fingerprints checked with ssh-keygen."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from api_helpers import headers
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from novad.compute.keypairs import MAX_KEYPAIRS, fingerprint

Client = TestClient[Any, Any]
K = "/compute/v2.1/os-keypairs"


def ssh_keygen_md5(public_key: str, tmp_path: Path) -> str:
    """OpenSSH's own MD5 fingerprint of a public key, without the ``MD5:`` prefix."""
    path = tmp_path / "key.pub"
    path.write_text(public_key + "\n")
    out = subprocess.run(["ssh-keygen", "-E", "md5", "-lf", str(path)], check=True,
                         capture_output=True, text=True).stdout
    return out.split()[1].removeprefix("MD5:")


def ed25519_public() -> str:
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    return key.public_bytes(serialization.Encoding.OpenSSH,
                            serialization.PublicFormat.OpenSSH).decode() + " me@host"


needs_ssh_keygen = pytest.mark.skipif(shutil.which("ssh-keygen") is None,
                                      reason="ssh-keygen not installed")


@needs_ssh_keygen
async def test_import(client: Client, tmp_path: Path) -> None:
    public = ed25519_public()
    resp = await client.post(K, json={"keypair": {"name": "mine", "public_key": public}},
                             headers=headers())
    assert resp.status == 200
    body = (await resp.json())["keypair"]
    assert body == {"name": "mine", "public_key": public, "user_id": "member-user",
                    "fingerprint": ssh_keygen_md5(public, tmp_path)}


@needs_ssh_keygen
async def test_generate(client: Client, tmp_path: Path) -> None:
    resp = await client.post(K, json={"keypair": {"name": "gen"}}, headers=headers())
    assert resp.status == 200
    body = (await resp.json())["keypair"]
    assert body["private_key"].startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert body["public_key"].startswith("ssh-rsa ")
    assert body["fingerprint"] == ssh_keygen_md5(body["public_key"], tmp_path)
    private = serialization.load_pem_private_key(body["private_key"].encode(), password=None)
    derived = private.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                                serialization.PublicFormat.OpenSSH).decode()
    assert body["public_key"].split()[:2] == derived.split()[:2]
    shown = (await (await client.get(f"{K}/gen", headers=headers())).json())["keypair"]
    assert "private_key" not in shown


async def test_list_show_delete_and_ownership(client: Client) -> None:
    public = ed25519_public()
    await client.post(K, json={"keypair": {"name": "k1", "public_key": public}},
                      headers=headers())
    listing = await (await client.get(K, headers=headers())).json()
    assert listing == {"keypairs": [{"keypair": {"name": "k1", "public_key": public,
                                                 "fingerprint": fingerprint(public)}}]}
    assert await (await client.get(K, headers=headers("other-token"))).json() == {
        "keypairs": []}
    shown = (await (await client.get(f"{K}/k1", headers=headers())).json())["keypair"]
    assert shown["user_id"] == "member-user" and shown["deleted"] is False
    assert shown["created_at"].count(".") == 1 and not shown["created_at"].endswith("Z")
    assert (shown["updated_at"], shown["deleted_at"]) == (None, None)
    resp = await client.get(f"{K}/k1", headers=headers("other-token"))
    assert resp.status == 404
    assert (await client.delete(f"{K}/k1", headers=headers("other-token"))).status == 404
    assert (await client.delete(f"{K}/k1", headers=headers())).status == 202
    resp = await client.get(f"{K}/k1", headers=headers())
    body = await resp.json()
    assert resp.status == 404
    assert body["itemNotFound"]["message"] == "Keypair k1 not found for user member-user"


async def test_refusals(client: Client) -> None:
    public = ed25519_public()
    ok = await client.post(K, json={"keypair": {"name": "dup", "public_key": public}},
                           headers=headers())
    assert ok.status == 200
    resp = await client.post(K, json={"keypair": {"name": "dup", "public_key": public}},
                             headers=headers())
    assert resp.status == 409
    assert (await resp.json())["conflictingRequest"]["message"] == \
        "Key pair 'dup' already exists."
    cases = [({"name": "bad/name", "public_key": public},
              "Keypair data is invalid: Keypair name contains unsafe characters"),
             ({"name": "k", "public_key": "ssh-rsa notbase64"},
              "Keypair data is invalid: failed to generate fingerprint"),
             ({"name": "k", "public_key": ""},
              "Keypair data is invalid: failed to generate fingerprint")]
    for spec, message in cases:
        resp = await client.post(K, json={"keypair": spec}, headers=headers())
        assert resp.status == 400, spec
        assert (await resp.json())["badRequest"]["message"] == message
    bodies: list[dict[str, Any]] = [{"keypair": {"name": "k", "type": "x509"}},
                                    {"keypair": {}}, {"name": "k"}]
    for body in bodies:
        resp = await client.post(K, json=body, headers=headers())
        assert resp.status == 400, body


async def test_quota(client: Client) -> None:
    public = ed25519_public()
    for i in range(MAX_KEYPAIRS):
        resp = await client.post(K, json={"keypair": {"name": f"k{i}", "public_key": public}},
                                 headers=headers())
        assert resp.status == 200
    resp = await client.post(K, json={"keypair": {"name": "one-more", "public_key": public}},
                             headers=headers())
    assert resp.status == 403
    assert (await resp.json())["forbidden"]["message"] == "Quota exceeded, too many key pairs."
    resp = await client.post(K, json={"keypair": {"name": "theirs", "public_key": public}},
                             headers=headers("other-token"))
    assert resp.status == 200
