"""The image record, its states, and how Glance v2 shows it.

An image is a row of the ``images`` table plus, once its data is in, one
file ``<images_dir>/<id>``.  Its life (Glance's, trimmed to what one node
needs)::

    queued ──upload──▶ saving ──data in──▶ active ◀──reactivate── deactivated
       ▲                  │                  └────deactivate──────▶
       └── upload failed ─┘
    reserve ▶ queued ──finish_from_file▶ saving ▶ active;  kill ▶ killed (no data)

``deleted`` exists for Glance's vocabulary only: a deleted image's row is
removed.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


class ImageStatus(enum.StrEnum):
    """Glance's image statuses."""

    QUEUED = "queued"
    SAVING = "saving"
    ACTIVE = "active"
    KILLED = "killed"
    DELETED = "deleted"
    DEACTIVATED = "deactivated"


class Visibility(enum.StrEnum):
    """Who sees an image besides its owner and admins."""

    PUBLIC = "public"        # everyone, listed by default
    COMMUNITY = "community"  # everyone, listed only when asked for
    SHARED = "shared"        # owner (and members; novad has no image members)
    PRIVATE = "private"      # owner only


DISK_FORMATS: tuple[str, ...] = (
    "ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop",
)
CONTAINER_FORMATS: tuple[str, ...] = (
    "ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed",
)

HASH_ALGO = "sha512"
"""The secure hash novad computes for ``os_hash_value`` (Glance's default)."""

READ_ONLY: frozenset[str] = frozenset({
    "id", "status", "checksum", "os_hash_algo", "os_hash_value", "size", "virtual_size",
    "created_at", "updated_at", "self", "file", "schema", "direct_url", "locations", "stores",
})
"""Attributes a client may never set (403 "Attribute 'x' is read-only.")."""

RESERVED: frozenset[str] = frozenset({"location", "deleted", "deleted_at"})
"""Names no property may have (403 "Attribute 'x' is reserved.")."""

CORE: frozenset[str] = frozenset({
    "name", "visibility", "protected", "os_hidden", "owner", "disk_format",
    "container_format", "min_disk", "min_ram", "tags",
}) | READ_ONLY
"""Attributes that are columns, not extra properties."""


def api_time(stored: str | None) -> str | None:
    """A stored timestamp (``2026-11-21T10:00:00.123456``) as Glance shows
    it (``2026-11-21T10:00:00Z``)."""
    if stored is None:
        return None
    return stored.split(".", 1)[0].removesuffix("Z") + "Z"


@dataclass(frozen=True)
class Image:
    """One image, as stored.  ``properties`` holds every extra property
    (``kernel_id``, ``image_type``, ``instance_uuid`` ...), values strings."""

    id: str
    name: str | None
    status: ImageStatus
    visibility: Visibility
    protected: bool
    os_hidden: bool
    owner: str
    disk_format: str | None
    container_format: str | None
    size: int | None
    virtual_size: int | None
    checksum: str | None
    os_hash_algo: str | None
    os_hash_value: str | None
    min_disk: int
    min_ram: int
    created_at: str
    updated_at: str
    properties: dict[str, str] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)

    @property
    def has_data(self) -> bool:
        """Whether the image's file is in place (active or deactivated)."""
        return self.status in (ImageStatus.ACTIVE, ImageStatus.DEACTIVATED)

    def replace(self, **changes: Any) -> Image:
        """A copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)

    def to_api(self, base_url: str = "") -> dict[str, Any]:
        """Glance v2's flat image JSON.

        Extra properties become top-level keys.  ``self``, ``file`` and
        ``schema`` are relative paths, exactly as Glance serves them, so
        ``base_url`` is not needed; it is accepted so that every view in
        novad has the same ``to_api(base_url)`` signature.
        """
        del base_url  # Glance's own links are relative; see the docstring.
        body: dict[str, Any] = dict(self.properties)
        body.update({
            "id": self.id,
            "name": self.name,
            "status": str(self.status),
            "visibility": str(self.visibility),
            "protected": self.protected,
            "os_hidden": self.os_hidden,
            "owner": self.owner,
            "disk_format": self.disk_format,
            "container_format": self.container_format,
            "size": self.size,
            "virtual_size": self.virtual_size,
            "checksum": self.checksum,
            "os_hash_algo": self.os_hash_algo,
            "os_hash_value": self.os_hash_value,
            "min_disk": self.min_disk,
            "min_ram": self.min_ram,
            "created_at": api_time(self.created_at),
            "updated_at": api_time(self.updated_at),
            "tags": list(self.tags),
            "self": f"/v2/images/{self.id}",
            "file": f"/v2/images/{self.id}/file",
            "schema": "/v2/schemas/image",
        })
        return body


FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Image))
COLUMNS = ", ".join(FIELDS)
"""The ``images`` columns in :class:`Image` field order, for SELECT lists."""

_BOOLS = frozenset({"protected", "os_hidden"})
_JSON = frozenset({"properties", "tags"})


def encode(image: Image) -> tuple[Any, ...]:
    """All fields of ``image`` in :data:`FIELDS` order, as SQLite values."""
    out: list[Any] = []
    for name in FIELDS:
        value = getattr(image, name)
        if name in _JSON:
            value = json.dumps(value, separators=(",", ":"), sort_keys=True)
        elif name in _BOOLS:
            value = int(value)
        out.append(value)
    return tuple(out)


def decode(row: Sequence[Any]) -> Image:
    """An :class:`Image` from a row selected with :data:`COLUMNS`."""
    values = dict(zip(FIELDS, row, strict=True))
    for name in _JSON:
        values[name] = json.loads(values[name])
    for name in _BOOLS:
        values[name] = bool(values[name])
    values["status"] = ImageStatus(values["status"])
    values["visibility"] = Visibility(values["visibility"])
    return Image(**values)
