"""Reading booleans written as text, as oslo's ``strutils`` does for Nova:
image properties, flavor extra specs, query parameters."""

from __future__ import annotations

from typing import Final

TRUE_STRINGS: Final = frozenset({"1", "t", "true", "on", "y", "yes"})
FALSE_STRINGS: Final = frozenset({"0", "f", "false", "off", "n", "no"})


def parse_bool(value: object) -> bool | None:
    """True or False for the words oslo accepts (any case, padded), else None."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in TRUE_STRINGS:
        return True
    if text in FALSE_STRINGS:
        return False
    return None


def bool_from_string(value: object) -> bool:
    """oslo's lenient ``bool_from_string``: anything not a true word is False."""
    return parse_bool(value) is True
