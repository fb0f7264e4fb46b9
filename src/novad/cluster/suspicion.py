"""Lifeguard's dynamic suspicion timeout (memberlist's ``suspicion``).

A suspicion starts long (``max``) and shrinks towards ``min`` as other
members independently confirm it: with ``C`` confirmations out of ``K``
expected the timeout is ``max(min, max - (max - min) * log(C + 1) / log(K + 1))``.
A node that is merely slow therefore gets the long timeout to refute, while
a node that many members find dead is declared so after ``min``.
"""

from __future__ import annotations

import math


def suspicion_timeout(mult: int, n: int, interval: float) -> float:
    """The minimum suspicion timeout in a cluster of ``n``:
    ``mult * max(1, log10(max(1, n))) * interval`` (memberlist's formula)."""
    return mult * max(1.0, math.log10(max(1, n))) * interval


def remaining_timeout(confirmations: int, k: int, min_timeout: float,
                      max_timeout: float) -> float:
    """The whole timeout after ``confirmations`` of ``k`` expected ones."""
    if k < 1:
        return min_timeout
    frac = math.log(confirmations + 1) / math.log(k + 1)
    return max(min_timeout, max_timeout - (max_timeout - min_timeout) * frac)


class Suspicion:
    """The timer of one suspected member.

    ``origin`` (the first accuser) never counts as a confirmation; each other
    accuser counts once, up to ``k``.
    """

    __slots__ = ("start", "k", "min_timeout", "max_timeout", "accusers", "deadline")

    def __init__(self, origin: str, k: int, min_timeout: float, max_timeout: float,
                 start: float) -> None:
        self.start = start
        self.k = max(0, k)
        self.min_timeout = min_timeout
        self.max_timeout = max_timeout
        self.accusers = {origin}
        self.deadline = start + remaining_timeout(0, self.k, min_timeout, max_timeout)

    @property
    def confirmations(self) -> int:
        """Independent confirmations so far."""
        return len(self.accusers) - 1

    def confirm(self, accuser: str) -> bool:
        """Count ``accuser``; True if it was new (so worth re-gossiping)."""
        if self.confirmations >= self.k or accuser in self.accusers:
            return False
        self.accusers.add(accuser)
        self.deadline = self.start + remaining_timeout(
            self.confirmations, self.k, self.min_timeout, self.max_timeout)
        return True
