"""The sd_notify protocol, without libsystemd.

systemd passes a unix datagram socket in ``$NOTIFY_SOCKET`` to services started
with ``Type=notify``; the service sends newline-separated ``KEY=VALUE`` lines to
it (``READY=1``, ``STOPPING=1``, ``WATCHDOG=1``, ``STATUS=...``). With
``WatchdogSec=`` set, systemd also passes ``WATCHDOG_USEC`` (and
``WATCHDOG_PID``) and kills the service when ``WATCHDOG=1`` does not arrive in
time. See sd_notify(3) and sd_watchdog_enabled(3).

Outside systemd every function here is a cheap no-op, so callers never need to
check whether they run under it.
"""

from __future__ import annotations

import os
import socket

__all__ = ["notify", "watchdog_interval"]


def _socket_address(value: str) -> str | None:
    """Turn ``$NOTIFY_SOCKET`` into an address for ``AF_UNIX``, or None.

    A leading '@' names a socket in the abstract namespace, which the kernel
    spells with a leading NUL byte. Other schemes (``vsock:``) are not used on
    a compute node and are not supported.
    """
    if value.startswith("@"):
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    return None


def notify(state: str) -> bool:
    """Send ``state`` (e.g. ``"READY=1"``) to the service manager.

    Never blocks: the datagram is sent with ``MSG_DONTWAIT``, so it is safe to
    call from the event loop. Does not raise for socket errors.

    Returns True when the message was handed to the socket, False when not
    running under systemd (``$NOTIFY_SOCKET`` unset or unusable) or when the
    send failed.
    """
    value = os.environ.get("NOTIFY_SOCKET", "")
    address = _socket_address(value) if value else None
    if address is None:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(state.encode("utf-8"), socket.MSG_DONTWAIT, address)
    except OSError:
        return False
    return True


def watchdog_interval() -> float | None:
    """How often, in seconds, to send ``WATCHDOG=1``; None when no watchdog is set.

    Returns half of ``$WATCHDOG_USEC``, as sd_watchdog_enabled(3) recommends.
    When ``$WATCHDOG_PID`` is set it must name this process: the variables are
    inherited by children, which must not ping on the parent's behalf.
    Malformed values count as "no watchdog". Does not block or raise.
    """
    usec_text = os.environ.get("WATCHDOG_USEC")
    if not usec_text:
        return None
    pid_text = os.environ.get("WATCHDOG_PID")
    try:
        usec = int(usec_text)
        if pid_text and int(pid_text) != os.getpid():
            return None
    except ValueError:
        return None
    if usec <= 0:
        return None
    return usec / 2 / 1_000_000
