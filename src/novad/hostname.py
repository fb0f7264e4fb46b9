"""Nova's ``sanitize_hostname``: the hostname a server gets from its name.

One function for the API's ``OS-EXT-SRV-ATTR:hostname`` and the guest's
config drive, so a guest calls itself what the API says it is called.
"""

from __future__ import annotations

import functools
import re

_SEPARATORS = re.compile(r"[ _.]")
_DROPPED = re.compile(r"[^\w.-]+")
MAX_LENGTH = 63
"""A DNS label's limit, which Nova truncates names to."""


@functools.lru_cache(maxsize=65536)
def sanitize(name: str, uuid: str) -> str:
    """The hostname of a server called ``name``: Latin-1 only, at most 63
    characters, spaces, dots and underscores as hyphens, other punctuation
    dropped, lower case, no leading or trailing dots and hyphens;
    ``Server-<uuid>`` when nothing is left.  Memoised: listings ask again
    for the same servers."""
    latin = name.encode("latin-1", "ignore").decode("latin-1")[:MAX_LENGTH]
    cleaned = _DROPPED.sub("", _SEPARATORS.sub("-", latin)).lower().strip(".-")
    return cleaned or f"Server-{uuid}"[:MAX_LENGTH]
