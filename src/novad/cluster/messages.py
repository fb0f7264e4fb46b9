"""The membership wire format: plain JSON objects, one validator per type.

Every message carries ``type``, ``from`` (the sender's name) and ``addr``
(the address it answers at)::

    ping             seq, node (the name meant), updates
    ack              seq, updates
    nack             seq                  (a relay's target did not answer)
    ping-req         seq, node, node_addr, nack (bool), updates
    gossip           updates
    push-pull        join (bool), nodes, user (object or null)
    push-pull-reply  nodes, user
    join-refused     reason

``updates`` are the piggybacked broadcasts::

    {"type": "alive", "node", "addr", "inc", "meta"}
    {"type": "suspect", "node", "inc", "from"}
    {"type": "dead", "node", "inc", "from"}      from == node: it left
    {"type": "user", "payload": {...}}

``nodes`` (push-pull) are ``{"node", "addr", "inc", "state", "meta"}``.

:func:`validate` checks a whole message before anything is applied, so a
malformed one raises :class:`BadMessage` and changes nothing.  Unknown keys
are ignored (a newer peer may add some); wrong types, unknown types, missing
keys and absurd sizes are refused.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

MAX_NAME = 255
MAX_ADDRESS = 255
MAX_UPDATES = 1024
MAX_NODES = 10_000
MAX_META_KEYS = 256
MAX_REASON = 1024
MAX_INT = 2**63 - 1

NODE_STATES = ("alive", "suspect", "dead", "left")


class BadMessage(ValueError):
    """A membership message that does not match the schema (HTTP 400)."""


def _fail(what: str) -> BadMessage:
    return BadMessage(what)


# Exact types: JSON decodes to exactly these, and ``type(x) is int`` also
# keeps booleans out (the validators run on every message: keep them lean).

def _str(message: dict[str, Any], key: str, limit: int) -> str:
    value = message.get(key)
    if type(value) is not str or not 0 < len(value) <= limit:
        raise _fail(f"{key}: expected a string of 1..{limit} characters")
    return value


def _int(message: dict[str, Any], key: str) -> int:
    value = message.get(key)
    if type(value) is not int or not 0 <= value <= MAX_INT:
        raise _fail(f"{key}: expected an integer in 0..2^63-1")
    return value


def _bool(message: dict[str, Any], key: str) -> bool:
    value = message.get(key)
    if type(value) is not bool:
        raise _fail(f"{key}: expected a boolean")
    return value


def _meta(message: dict[str, Any], key: str = "meta") -> None:
    # Keys need no check: a JSON object's keys are strings.
    value = message.get(key)
    if type(value) is not dict or len(value) > MAX_META_KEYS:
        raise _fail(f"{key}: expected an object of at most {MAX_META_KEYS} keys")


def _list(message: dict[str, Any], key: str, limit: int) -> list[Any]:
    value = message.get(key)
    if type(value) is not list or len(value) > limit:
        raise _fail(f"{key}: expected a list of at most {limit} items")
    return value


def _envelope(message: dict[str, Any]) -> None:
    _str(message, "from", MAX_NAME)
    _str(message, "addr", MAX_ADDRESS)


# -- piggybacked updates ---------------------------------------------------------------

def _check_alive(update: dict[str, Any]) -> None:
    node, addr, inc, meta = update.get("node"), update.get("addr"), update.get("inc"), \
        update.get("meta")
    if (type(node) is str and 0 < len(node) <= MAX_NAME and type(addr) is str
            and 0 < len(addr) <= MAX_ADDRESS and type(inc) is int and 0 <= inc <= MAX_INT
            and type(meta) is dict and len(meta) <= MAX_META_KEYS):
        return
    _str(update, "node", MAX_NAME)  # one of these names the problem
    _str(update, "addr", MAX_ADDRESS)
    _int(update, "inc")
    _meta(update)


def _check_suspect_or_dead(update: dict[str, Any]) -> None:
    _str(update, "node", MAX_NAME)
    _int(update, "inc")
    _str(update, "from", MAX_NAME)


def _check_user(update: dict[str, Any]) -> None:
    if not isinstance(update.get("payload"), dict):
        raise _fail("user: payload must be an object")


_UPDATE_CHECKS: dict[str, Callable[[dict[str, Any]], None]] = {
    "alive": _check_alive,
    "suspect": _check_suspect_or_dead,
    "dead": _check_suspect_or_dead,
    "user": _check_user,
}


def _updates(message: dict[str, Any]) -> None:
    for update in _list(message, "updates", MAX_UPDATES):
        if type(update) is not dict:
            raise _fail("updates: each update must be an object")
        check = _UPDATE_CHECKS.get(update.get("type"))  # type: ignore[arg-type]
        if check is None:
            raise _fail(f"updates: unknown update type {str(update.get('type'))[:40]!r}")
        check(update)


def _nodes(message: dict[str, Any]) -> None:
    for node in _list(message, "nodes", MAX_NODES):
        if type(node) is not dict:
            raise _fail("nodes: each node must be an object")
        _check_alive(node)
        if node.get("state") not in NODE_STATES:
            raise _fail(f"nodes: state must be one of {', '.join(NODE_STATES)}")


def _user_state(message: dict[str, Any]) -> None:
    value = message.get("user", False)
    if value is not None and not isinstance(value, dict):
        raise _fail("user: expected an object or null")


# -- one validator per message type ---------------------------------------------------

def _check_ping(message: dict[str, Any]) -> None:
    _int(message, "seq")
    _str(message, "node", MAX_NAME)
    _updates(message)


def _check_ack(message: dict[str, Any]) -> None:
    _int(message, "seq")
    _updates(message)


def _check_nack(message: dict[str, Any]) -> None:
    _int(message, "seq")


def _check_ping_req(message: dict[str, Any]) -> None:
    _int(message, "seq")
    _str(message, "node", MAX_NAME)
    _str(message, "node_addr", MAX_ADDRESS)
    _bool(message, "nack")
    _updates(message)


def _check_gossip(message: dict[str, Any]) -> None:
    _updates(message)


def _check_push_pull(message: dict[str, Any]) -> None:
    _bool(message, "join")
    _nodes(message)
    _user_state(message)


def _check_push_pull_reply(message: dict[str, Any]) -> None:
    _nodes(message)
    _user_state(message)


def _check_join_refused(message: dict[str, Any]) -> None:
    _str(message, "reason", MAX_REASON)


_CHECKS: dict[str, Callable[[dict[str, Any]], None]] = {
    "ping": _check_ping,
    "ack": _check_ack,
    "nack": _check_nack,
    "ping-req": _check_ping_req,
    "gossip": _check_gossip,
    "push-pull": _check_push_pull,
    "push-pull-reply": _check_push_pull_reply,
    "join-refused": _check_join_refused,
}

MESSAGE_TYPES = tuple(_CHECKS)


def validate(message: Any) -> str:
    """Check ``message`` against its type's schema; return the type.

    Pure: reads only.  Raises :class:`BadMessage` naming the first problem.
    """
    if not isinstance(message, dict):
        raise _fail("expected an object")
    kind = message.get("type")
    check = _CHECKS.get(kind) if isinstance(kind, str) else None
    if check is None:
        raise _fail(f"type: unknown message type {str(kind)[:40]!r}")
    _envelope(message)
    check(message)
    return kind  # type: ignore[return-value]
