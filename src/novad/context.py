"""Who is asking: the request context every service call carries."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field


def new_request_id() -> str:
    """A request id in OpenStack's ``req-<uuid>`` form."""
    return f"req-{uuid.uuid4()}"


@dataclass(frozen=True)
class RequestContext:
    """The authenticated caller of one request.

    ``roles`` are role names in the scoped project: ``admin``, ``member``,
    ``reader``.  Services decide visibility and permission from these.
    """

    user_id: str
    project_id: str
    roles: frozenset[str] = frozenset()
    request_id: str = field(default_factory=new_request_id)
    user_name: str = ""
    project_name: str = ""

    @property
    def is_admin(self) -> bool:
        """Admin role in the scoped project: sees and acts on every project."""
        return "admin" in self.roles

    @property
    def can_write(self) -> bool:
        """Member or admin; readers only read."""
        return bool(self.roles & {"admin", "member"})

    @classmethod
    def admin(cls, request_id: str | None = None) -> RequestContext:
        """The daemon's own context (periodic jobs, recovery)."""
        return cls(
            user_id="novad",
            project_id="novad",
            roles=frozenset({"admin"}),
            request_id=request_id or new_request_id(),
        )
