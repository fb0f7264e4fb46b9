"""Structured logging for novad.

Every log line, whether it comes from a structlog logger or from a library
using the standard ``logging`` module (aiohttp, libvirt bindings), goes
through one handler on the root logger and is rendered the same way: an ISO
8601 UTC timestamp, the level name, the event, and the context bound with
``structlog.contextvars.bind_contextvars`` (``request_id``, ``instance_id``,
``action``). Rendering is JSON (one object per line) for machines, or
structlog's console renderer for people at a terminal.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any, TextIO

import orjson

import structlog
from structlog.typing import Processor

__all__ = ["LOG_FORMATS", "configure_logging"]

LOG_FORMATS = ("auto", "json", "console")


class _NovadHandler(logging.StreamHandler[TextIO]):
    """The root handler installed by :func:`configure_logging`.

    A class of its own so that configuring again replaces only our handler and
    leaves others (pytest's log capture, for one) in place.
    """


def _shared_processors() -> list[Processor]:
    """Processors applied to structlog and standard-library records alike."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]


def _renderers(fmt: str) -> list[Processor]:
    """The final processors for ``fmt``, which is "json" or "console"."""
    if fmt == "console":
        # Plain tracebacks: the fancy ones print local variables, and locals in
        # the API and identity layers hold passwords and tokens.
        renderer = structlog.dev.ConsoleRenderer(
            colors=sys.stderr.isatty(), exception_formatter=structlog.dev.plain_traceback
        )
        return [renderer]
    return [structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(serializer=_dumps)]


def _dumps(event: Any, **kwargs: Any) -> str:
    """One JSON line, with orjson (a log line per action was a visible part
    of the daemon's time under load with the standard library's encoder);
    whatever orjson cannot encode is written as its ``str``."""
    try:
        return orjson.dumps(event, default=str).decode()
    except TypeError:  # e.g. non-string keys or a huge integer
        return json.dumps(event, default=str)


def configure_logging(fmt: str, level: int = logging.INFO) -> None:
    """Configure structlog and the standard ``logging`` module for the daemon.

    ``fmt`` is "auto" (console renderer when stderr is a terminal, JSON
    otherwise), "json" or "console". Output goes to stderr. Safe to call more
    than once; the last call wins. Raises ValueError for an unknown ``fmt``.
    """
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log_format must be one of {', '.join(LOG_FORMATS)}, not {fmt!r}")
    if fmt == "auto":
        fmt = "console" if sys.stderr.isatty() else "json"

    shared = _shared_processors()
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=True,
    )

    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *_renderers(fmt)],
    )
    handler = _NovadHandler(sys.stderr)
    handler.setFormatter(formatter)

    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _NovadHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # ``transitions`` logs every trigger at INFO.  The lifecycle machine is
    # only asked for verdicts (and those are memoised), so its lines would
    # read as state changes that did not happen, for the first instance
    # that asks each question.  "action finished" says what did happen.
    logging.getLogger("transitions").setLevel(max(level, logging.WARNING))
