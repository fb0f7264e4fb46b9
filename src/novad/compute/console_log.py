"""Reading a guest's serial console log the way Nova serves it."""

from __future__ import annotations

import re
from pathlib import Path

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f]")
_CHUNK = 64 * 1024
_MAX_BYTES = 1024 * 1024


def tail_console_log(path: Path, length: int | None) -> str:
    """The last ``length`` lines of ``path`` (all when None), control
    characters 0x00-0x08 and 0x0B-0x1F removed and non-ASCII replaced.

    Reads backwards in chunks, so a huge log is never loaded whole; at most
    the last 1 MiB is returned when no length is given (Nova caps it too).
    """
    if length == 0:
        return ""
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return ""
    with handle:
        handle.seek(0, 2)
        end = handle.tell()
        data = b""
        pos = end
        want = None if length is None or length < 0 else length + 1
        while pos > 0 and len(data) < _MAX_BYTES:
            step = min(_CHUNK, pos)
            pos -= step
            handle.seek(pos)
            data = handle.read(step) + data
            if want is not None and data.count(b"\n") >= want:
                break
    text = data.decode("ascii", errors="replace")
    lines = text.splitlines(keepends=True)
    if pos > 0 and lines:
        lines = lines[1:]  # the first line is probably cut
    if length is not None:
        lines = lines[1:] if length < 0 else lines[-length:]
    return _CONTROL.sub("", "".join(lines))
