"""The identity service's records, as plain frozen dataclasses.

Column order of each ``*_COLUMNS`` string matches the dataclass fields, so
``Project(*row)`` builds a record from a row selected with it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from novad.context import RequestContext, new_request_id

DEFAULT_DOMAIN_ID = "default"
DEFAULT_DOMAIN_NAME = "Default"


@dataclass(frozen=True)
class Project:
    """A project (tenant): the unit of ownership and role assignment."""

    id: str
    name: str
    domain_id: str
    description: str
    enabled: bool

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> Project:
        """From a row selected with :data:`PROJECT_COLUMNS`."""
        return cls(str(row[0]), str(row[1]), str(row[2]), str(row[3]), bool(row[4]))


PROJECT_COLUMNS = "p.id, p.name, p.domain_id, p.description, p.enabled"


@dataclass(frozen=True)
class User:
    """A user; ``extra`` holds Keystone's free-form attributes (email ...)."""

    id: str
    name: str
    domain_id: str
    enabled: bool
    default_project_id: str | None
    extra: dict[str, Any]

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> User:
        """From a row selected with :data:`USER_COLUMNS`."""
        return cls(str(row[0]), str(row[1]), str(row[2]), bool(row[3]),
                   None if row[4] is None else str(row[4]), dict(json.loads(row[5])))


USER_COLUMNS = "u.id, u.name, u.domain_id, u.enabled, u.default_project_id, u.extra"


@dataclass(frozen=True)
class Role:
    """A role name (admin, member, reader, or one an admin made)."""

    id: str
    name: str
    description: str

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> Role:
        """From a row selected with :data:`ROLE_COLUMNS`."""
        return cls(str(row[0]), str(row[1]), str(row[2]))


ROLE_COLUMNS = "r.id, r.name, r.description"


@dataclass(frozen=True)
class Assignment:
    """A role held by a user on a project, with the three names."""

    user_id: str
    user_name: str
    project_id: str
    project_name: str
    role_id: str
    role_name: str


ASSIGNMENT_COLUMNS = "u.id, u.name, p.id, p.name, r.id, r.name"


@dataclass(frozen=True)
class TokenInfo:
    """A validated token: who, where, with which roles, until when.

    Times are epoch seconds.  ``roles`` are (id, name) pairs, read from the
    database at validation time, never from the token.
    """

    user_id: str
    user_name: str
    project_id: str
    project_name: str
    roles: tuple[tuple[str, str], ...]
    issued_at: float
    expires_at: float
    audit_id: str

    def context(self, request_id: str | None = None) -> RequestContext:
        """The request context of a caller presenting this token."""
        return RequestContext(
            user_id=self.user_id,
            project_id=self.project_id,
            roles=frozenset(name for _, name in self.roles),
            request_id=request_id or new_request_id(),
            user_name=self.user_name,
            project_name=self.project_name,
        )
