"""What ``novad cluster ...`` does (the argument parsing is in :mod:`novad.cli`)."""

from __future__ import annotations

import json
from pathlib import Path

from novad.cluster.auth import MessageAuth, init_key, read_key
from novad.cluster.http import PREFIX, ClusterClient, PeerError
from novad.cluster.service import members_table
from novad.config import Config

__all__ = ["PeerError", "init_key", "members"]


async def members(config: Config, as_json: bool) -> str:
    """The local node's member list, as a table or JSON.  The request is
    signed with the cluster key, so only someone who can read the key
    file can ask.  Raises KeyFileError or PeerError."""
    key = read_key(Path(config.cluster_key_path))
    client = ClusterClient(MessageAuth(key, "novad-cli", config.cluster.max_clock_skew))
    await client.start()
    try:
        host, port = config.listen_addr
        address = config.cluster.advertise_address or f"{host}:{port}"
        answer = await client.post(address, f"{PREFIX}/members", {})
    finally:
        await client.close()
    rows = sorted(answer["members"], key=lambda m: m["name"])
    return json.dumps(rows, indent=2) if as_json else members_table(rows)
