"""The operators of flavor extra specs, as Nova's ComputeCapabilitiesFilter
reads them (``nova/scheduler/filters/extra_specs_ops.py``).

A requirement is ``"<op> <operand>..."`` matched against the host's value
as a string.  The first word picks the operator; a requirement whose first
word is no operator must equal the value exactly.

======== ============================================================
``=``     numerically at least (``= 4`` passes 4 and 8)
``==``    numerically equal; ``!=`` numerically different
``>=``    numerically at least; ``<=`` numerically at most
``s==``   string equal; ``s!=``, ``s<``, ``s<=``, ``s>``, ``s>=`` compare
          as strings
``<in>``  the operand is a substring of the value
``<all-in>`` every operand word is a substring of the value
``<or>``  ``<or> a <or> b``: the value equals one of the alternatives
======== ============================================================

Nova lets a non-numeric value crash the numeric operators; here it simply
does not match.
"""

from __future__ import annotations

import operator
from collections.abc import Callable

_Compare = Callable[[str, str], bool]


def _numeric(compare: Callable[[float, float], bool]) -> _Compare:
    def check(value: str, wanted: str) -> bool:
        try:
            return compare(float(value), float(wanted))
        except ValueError:
            return False
    return check


_OPERATORS: dict[str, _Compare] = {
    "=": _numeric(operator.ge),
    "==": _numeric(operator.eq),
    "!=": _numeric(operator.ne),
    ">=": _numeric(operator.ge),
    "<=": _numeric(operator.le),
    "s==": operator.eq,
    "s!=": operator.ne,
    "s<": operator.lt,
    "s<=": operator.le,
    "s>": operator.gt,
    "s>=": operator.ge,
    "<in>": lambda value, wanted: wanted in value,
}

OPERATORS: frozenset[str] = frozenset(_OPERATORS) | {"<all-in>", "<or>"}
"""Every operator word :func:`match` knows."""


def match(value: str, requirement: str) -> bool:
    """Whether the host's ``value`` satisfies one extra-spec ``requirement``."""
    words = requirement.split()
    if not words or words[0] not in OPERATORS:
        return value == requirement
    op, operands = words[0], words[1:]
    if op == "<or>":
        # "<or> a <or> b": alternatives sit at the even positions.
        return value in operands[::2]
    if not operands:
        return False
    if op == "<all-in>":
        return all(word in value for word in operands)
    return _OPERATORS[op](value, operands[0])
