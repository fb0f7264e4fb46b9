"""Python values <-> SQLite values for the compute tables.

Enums need no encoding (sqlite3 binds StrEnum as text and IntEnum as
integer); only JSON columns and flavors do.  Decoding is table-driven so a
row becomes an :class:`Instance` with one positional constructor call.
"""

from __future__ import annotations

import functools

import dataclasses
import json
from collections.abc import Callable, Mapping
from typing import Any

from novad.states.enums import PowerState, VmState
from novad.store.models import Flavor, Instance, task_from_db

INSTANCE_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Instance))
INSTANCE_COLUMNS = ", ".join(INSTANCE_FIELDS)

FLAVOR_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Flavor))
FLAVOR_COLUMNS = ", ".join(FLAVOR_FIELDS)

_JSON_FIELDS = frozenset({"metadata", "system_metadata", "networks", "tags"})
_BOOL_FIELDS = frozenset({"locked", "deleted", "config_drive"})


def _dumps(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"))


def _loads(value: str | None) -> Any:
    return None if value is None else json.loads(value)


def flavor_to_json(flavor: Flavor) -> str:
    """A flavor as stored inside an instance row."""
    return json.dumps(flavor.to_dict(), separators=(",", ":"))


@functools.lru_cache(maxsize=1024)
def flavor_from_json(text: str) -> Flavor:
    """Inverse of :func:`flavor_to_json`.  Cached like whole rows (see
    :func:`decode_instance`): rows of one flavor embed the same text, and a
    row changed by an action misses the row cache but not this one."""
    return Flavor.from_dict(json.loads(text))


def encode_field(name: str, value: Any) -> Any:
    """One Instance field as a SQLite value."""
    if name == "flavor":
        return flavor_to_json(value)
    if name in _JSON_FIELDS:
        return _dumps(value)
    return value


def instance_row(inst: Instance) -> tuple[Any, ...]:
    """All fields of ``inst`` in :data:`INSTANCE_FIELDS` order, encoded."""
    return tuple(encode_field(name, getattr(inst, name)) for name in INSTANCE_FIELDS)


_DECODERS: dict[str, Callable[[Any], Any]] = {
    "flavor": flavor_from_json,
    "vm_state": VmState,
    "task_state": task_from_db,
    "power_state": PowerState,
    **{name: _loads for name in _JSON_FIELDS},
    **{name: bool for name in _BOOL_FIELDS},
}
_INSTANCE_DECODE = [(i, _DECODERS[n]) for i, n in enumerate(INSTANCE_FIELDS) if n in _DECODERS]


def decode_instance(row: tuple[Any, ...]) -> Instance:
    """An Instance from a row selected as :data:`INSTANCE_COLUMNS`.

    Decoding the JSON columns dominates listing 1,000 servers, and a row's
    values fully determine the Instance, so identical rows are decoded once.
    The cache is safe because Instance is frozen and callers copy its dicts
    before changing them.
    """
    return _decode_row(tuple(row))


@functools.lru_cache(maxsize=16384)
def _decode_row(row: tuple[Any, ...]) -> Instance:
    values = list(row)
    for i, decode in _INSTANCE_DECODE:
        values[i] = decode(values[i])
    return Instance(*values)


def encode_changes(changes: Mapping[str, Any]) -> dict[str, Any]:
    """Encode a ``changes`` mapping keyed by Instance field names."""
    return {name: encode_field(name, value) for name, value in changes.items()}


def flavor_row(flavor: Flavor) -> tuple[Any, ...]:
    """All fields of ``flavor`` in :data:`FLAVOR_FIELDS` order, encoded."""
    return tuple(
        _dumps(flavor.extra_specs) if name == "extra_specs" else getattr(flavor, name)
        for name in FLAVOR_FIELDS
    )


def decode_flavor(row: tuple[Any, ...]) -> Flavor:
    """A Flavor from a row selected as :data:`FLAVOR_COLUMNS`."""
    data = dict(zip(FLAVOR_FIELDS, row, strict=True))
    data["is_public"] = bool(data["is_public"])
    data["disabled"] = bool(data["disabled"])
    data["extra_specs"] = json.loads(data["extra_specs"])
    return Flavor(**data)
