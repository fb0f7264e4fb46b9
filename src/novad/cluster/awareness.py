"""Lifeguard's local health awareness (memberlist's ``awareness``).

A node that misses acks (or whose relays do not even nack) may be the slow
one: it raises its score and stretches its own probe interval and timeout by
``score + 1``, so that it accuses others less hastily.  Successful probes
lower the score again.
"""

from __future__ import annotations


class Awareness:
    """A health score in ``0 .. max_multiplier - 1``; 0 is healthy."""

    __slots__ = ("max_multiplier", "score")

    def __init__(self, max_multiplier: int) -> None:
        self.max_multiplier = max(1, max_multiplier)
        self.score = 0

    def apply(self, delta: int) -> None:
        """Raise (positive) or lower (negative) the score, within bounds."""
        self.score = min(max(0, self.score + delta), self.max_multiplier - 1)

    def scale(self, timeout: float) -> float:
        """``timeout`` stretched by the current health."""
        return timeout * (self.score + 1)
