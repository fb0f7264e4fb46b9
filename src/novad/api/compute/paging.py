"""Paging of lists the service hands back whole: instance actions (2.58) and
migrations (2.59) take ``limit``, ``marker`` and ``changes-since``, and refuse
query parameters they do not know, as Nova's schemas for them do.

Both lists are short enough to read whole (one server's actions; the
cluster's migrations), so the page is cut here rather than in SQL.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import TypeVar

from multidict import MultiMapping

from novad.api.compute.parsing import limit_param, time_param
from novad.errors import Invalid

T = TypeVar("T")

PAGE_PARAMS = ("limit", "marker", "changes-since")
"""The paging parameters 2.58 and 2.59 add."""


def check_query(query: MultiMapping[str], allowed: Collection[str]) -> None:
    """400 for a parameter outside ``allowed`` or given twice, in Nova's words."""
    for name in query:
        if name not in allowed:
            raise Invalid(f"Invalid input for query parameters {name}. Value: "
                          f"{query.getall(name)}. Additional properties are not allowed "
                          f"('{name}' was unexpected)")
        if len(query.getall(name)) > 1:
            raise Invalid(f"Invalid input for query parameters {name}. Value: "
                          f"{query.getall(name)}. {query.getall(name)} is not of type "
                          "'string'")


@dataclass(frozen=True)
class Page:
    """What a list query asks for: at most ``limit`` items after ``marker``,
    changed since ``changes_since`` (a store timestamp)."""

    limit: int
    marker: str | None
    changes_since: str | None

    @classmethod
    def of(cls, query: MultiMapping[str]) -> Page:
        """The paging parameters of ``query`` (400 for a malformed one)."""
        return cls(limit_param(query), query.get("marker"),
                   time_param(query.get("changes-since"), "changes-since"))

    def cut(self, items: Sequence[T], key: Callable[[T], str],
            changed: Callable[[T], str]) -> list[T]:
        """``items`` (already in the list's order) after the one whose ``key``
        is the marker (400 when none is), changed since ``changes_since``,
        at most ``limit`` of them."""
        rest = list(items)
        if self.marker is not None:
            keys = [key(item) for item in rest]
            if self.marker not in keys:
                raise Invalid(f"Marker {self.marker} could not be found.")
            rest = rest[keys.index(self.marker) + 1:]
        if self.changes_since is not None:
            since = self.changes_since
            rest = [item for item in rest if _stamp(changed(item)) >= since]
        return rest[:self.limit]

    def full(self, found: Sequence[object]) -> bool:
        """Whether ``found`` fills the page, so a next one may follow."""
        return bool(found) and len(found) >= self.limit


def _stamp(ts: str) -> str:
    """A stored time in :func:`time_param`'s form, for comparing."""
    return time_param(ts, "updated_at") or ""
