"""The transmit-limited broadcast queue (memberlist's
``TransmitLimitedQueue``): updates waiting to be piggybacked.

Each update is sent at most ``retransmit_limit(mult, N)`` times, which grows
as log10 of the cluster size, so that with high probability every member
hears it while the traffic per member stays constant.  A newer update about
the same member replaces the queued one; the fewest-transmitted updates go
first (newest first among equals), so fresh news is never starved by old.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any


def retransmit_limit(mult: int, n: int) -> int:
    """How many times one update is sent in a cluster of ``n`` members:
    ``mult * ceil(log10(n + 1))`` (memberlist's ``retransmitLimit``)."""
    return mult * math.ceil(math.log10(n + 1))


@dataclass(slots=True)
class _Entry:
    key: str
    update: dict[str, Any]
    size: int
    transmits: int = 0


class BroadcastQueue:
    """Updates keyed by what they are about; not thread-safe (sans-IO)."""

    def __init__(self) -> None:
        self._by_key: dict[str, _Entry] = {}
        # transmits -> entries in insertion order (newest last)
        self._buckets: dict[int, dict[str, _Entry]] = {}
        self._unique = 0

    def __len__(self) -> int:
        return len(self._by_key)

    def __contains__(self, key: object) -> bool:
        return key in self._by_key

    def queue(self, update: dict[str, Any], key: str | None = None) -> None:
        """Queue ``update``; it replaces any queued update with the same key
        (None: a key of its own, nothing replaces it)."""
        if key is None:
            self._unique += 1
            key = f"\x00{self._unique}"
        old = self._by_key.pop(key, None)
        if old is not None:
            bucket = self._buckets[old.transmits]
            del bucket[key]
            if not bucket:
                del self._buckets[old.transmits]
        entry = _Entry(key, update, len(json.dumps(update, separators=(",", ":"))))
        self._by_key[key] = entry
        self._buckets.setdefault(0, {})[key] = entry

    def take(self, budget: int, limit: int, max_count: int) -> list[dict[str, Any]]:
        """Updates whose encoded sizes fit in ``budget`` bytes (at most
        ``max_count``; an update larger than the budget goes alone), each
        counted as transmitted once more; those that reach ``limit``
        transmissions leave the queue."""
        if not self._by_key:
            return []
        buckets = self._buckets
        chosen: list[_Entry] = []
        for transmits in sorted(buckets):
            for entry in reversed(buckets[transmits].values()):
                # An update larger than the whole budget still goes, alone.
                if entry.size <= budget or not chosen:
                    chosen.append(entry)
                    budget -= entry.size
                    if budget <= 0 or len(chosen) >= max_count:
                        break
            else:
                continue
            break
        for entry in chosen:
            bucket = buckets[entry.transmits]
            del bucket[entry.key]
            if not bucket:
                del buckets[entry.transmits]
            entry.transmits += 1
            if entry.transmits >= limit:
                del self._by_key[entry.key]
            else:
                buckets.setdefault(entry.transmits, {})[entry.key] = entry
        return [entry.update for entry in chosen]

    def transmits(self, key: str) -> int | None:
        """How often the update queued under ``key`` went out; None if none is."""
        entry = self._by_key.get(key)
        return None if entry is None else entry.transmits
