"""This node's identity: a uuid kept in ``<state_dir>/node_id``.

The libvirt driver tags every guest with it, so that several daemons on one
libvirtd (tests run many) each list and reap only their own guests.  It is
read before the state directory may be written (start-up must write nothing
when the hypervisor is unreachable), so a state directory without the file
gets a value derived from its absolute path and host name, and
:func:`save_node_id` writes that value once the directory exists: from then
on the identity stays with the directory even if it moves.
"""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path
from typing import Final

NODE_ID_FILE: Final = "node_id"
_NAMESPACE: Final = uuid.UUID("5b0c2a5e-8f0e-4d3b-9d55-6e6f76616421")


def node_id(state_dir: Path) -> str:
    """The node id of ``state_dir``: the file's content, else the derived value.
    Blocks (reads one small file)."""
    try:
        text = (state_dir / NODE_ID_FILE).read_text().strip()
    except FileNotFoundError:
        text = ""
    if text:
        return text
    return str(uuid.uuid5(_NAMESPACE, f"{socket.gethostname()}:{state_dir.absolute()}"))


def save_node_id(state_dir: Path) -> str:
    """Write ``node_id`` into ``state_dir`` if it is not there; returns the id.
    Blocks; the file is written atomically."""
    value = node_id(state_dir)
    path = state_dir / NODE_ID_FILE
    if not path.exists():
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(value + "\n")
        os.replace(tmp, path)
    return value
