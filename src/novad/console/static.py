"""noVNC's files, served by the console proxy over plain HTTP.

noVNC is not part of the repository: ``scripts/setup`` unpacks a pinned
release (Debian's ``novnc`` package) into ``.cache/novnc`` of the checkout.
``vnc_auto.html`` is what Nova's URLs name; noVNC 1.x no longer ships it
(seed 001 shows the 404 users then get), so it is served as ``vnc_lite.html``,
which connects at once, as ``vnc_auto.html`` did.
"""

from __future__ import annotations

import asyncio
import mimetypes
from pathlib import Path, PurePosixPath

import structlog

log = structlog.get_logger("novad.console")

PAGES = {"vnc.html": "vnc.html", "vnc_lite.html": "vnc_lite.html",
         "vnc_auto.html": "vnc_lite.html"}
"""Top-level pages: requested name to file."""

TREES = ("app", "core", "vendor")
"""Directories whose files the pages load."""

_TYPES = {".js": "text/javascript", ".html": "text/html; charset=utf-8", ".css": "text/css",
          ".svg": "image/svg+xml", ".json": "application/json", ".png": "image/png",
          ".ttf": "font/ttf", ".woff": "font/woff", ".mp3": "audio/mpeg", ".oga": "audio/ogg"}
_MAX_FILE = 4 * 1024 * 1024


def checkout_novnc() -> Path:
    """``.cache/novnc`` of the source checkout this module runs from."""
    return Path(__file__).resolve().parents[3] / ".cache" / "novnc"


def find_novnc(configured: str) -> Path | None:
    """The noVNC directory: ``configured``, else the checkout's ``.cache/novnc``,
    else ``/usr/share/novnc``; None when none holds ``vnc_lite.html``."""
    candidates = [Path(configured)] if configured else [checkout_novnc(),
                                                        Path("/usr/share/novnc")]
    for path in candidates:
        if (path / "vnc_lite.html").is_file():
            return path.resolve()
    return None


def content_type(name: str) -> str:
    """The Content-Type of a file (JavaScript modules must be text/javascript)."""
    suffix = PurePosixPath(name).suffix.lower()
    return _TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"


class StaticFiles:
    """Read-only, cached access to noVNC's pages and assets under a URL prefix."""

    def __init__(self, root: Path | None, prefix: str = "/") -> None:
        self.root = root
        self.prefix = prefix if prefix.endswith("/") else prefix + "/"
        self._cache: dict[str, bytes] = {}

    def resolve(self, url_path: str) -> Path | None:
        """The file a URL path names, or None (outside noVNC, or not served).
        Paths are served under the prefix and, for reverse proxies that strip
        it, at the root too."""
        if self.root is None:
            return None
        rel = url_path
        if rel.startswith(self.prefix):
            rel = rel[len(self.prefix):]
        else:
            rel = rel.lstrip("/")
        parts = PurePosixPath(rel).parts
        if not parts or any(p in ("..", ".") or p.startswith(".") for p in parts):
            return None
        if len(parts) == 1:
            page = PAGES.get(parts[0])
            return self.root / page if page else None
        if parts[0] not in TREES:
            return None
        path = self.root.joinpath(*parts)
        if not path.is_file() or not path.resolve().is_relative_to(self.root):
            return None  # symlinks must not lead out of noVNC
        return path

    async def read(self, url_path: str) -> tuple[bytes, str] | None:
        """(body, content type) of a served file, or None (404)."""
        path = self.resolve(url_path)
        if path is None:
            return None
        key = str(path)
        body = self._cache.get(key)
        if body is None:
            try:
                body = await asyncio.to_thread(_read_small, path)
            except OSError:
                return None
            self._cache[key] = body
        return body, content_type(path.name)


def _read_small(path: Path) -> bytes:
    if path.stat().st_size > _MAX_FILE:
        raise OSError(f"{path} is too large to serve")
    return path.read_bytes()
