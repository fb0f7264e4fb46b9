"""The image service: a small Glance v2 for one node.

Rows live in the ``images`` table (:mod:`novad.images.schema`), data in
``<images_dir>/<id>`` (:mod:`novad.images.files`).  Every status change is a
compare-and-swap ``UPDATE ... WHERE status IN (...)``, so two uploads, or an
upload racing a delete, never both win.  Data is placed on disk *before*
its row says ``active``; :meth:`ImageService.start` repairs what a crash
left between the two.

Who sees what (Glance's default policy): ``public`` and ``community``
images are visible to everyone, ``private`` and ``shared`` ones to their
owner project and admins.  Writes need the member or admin role and
ownership (or admin); publicising an image or changing its owner needs
admin.  An invisible image is 404, never 403.

Two kinds of callers:

* the HTTP API (:mod:`novad.images.routes`), passing a
  :class:`~novad.context.RequestContext`;
* the compute service, making images from instance snapshots and backups
  without HTTP: :meth:`create_from_file`, :meth:`reserve` /
  :meth:`finish_from_file` / :meth:`kill`, :meth:`path_of`,
  :meth:`delete_internal`, :meth:`list_backups`.
"""

from __future__ import annotations

import asyncio
import builtins
import sqlite3
import uuid
from functools import partial
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import structlog

from novad.context import RequestContext
from novad.errors import Conflict, Forbidden, ImageNotFound, Invalid, NotFound
from novad.images.files import Digest, ImageFiles
from novad.images.model import (
    COLUMNS,
    CORE,
    FIELDS,
    HASH_ALGO,
    RESERVED,
    Image,
    ImageStatus,
    Visibility,
    decode,
    encode,
)
from novad.images.rules import (
    apply_patch,
    check_policy,
    check_writable,
    extra_value,
    split_create_body,
)
from novad.store.db import Database, utcnow

log = structlog.get_logger(__name__)

PeerData = Callable[[str], Iterable[tuple[str, AsyncIterator[bytes]]]]
"""For an image id: (node name, stream of its data) for each node to try."""

SORT_KEYS = frozenset({"created_at", "updated_at", "name", "id", "status", "size",
                       "disk_format", "container_format", "visibility", "min_disk", "min_ram"})
"""Attributes :meth:`ImageService.list` can sort by."""

MATCH_COLUMNS = frozenset({"name", "status", "owner", "disk_format", "container_format",
                           "checksum", "os_hash_value", "protected", "size"})
"""Columns :meth:`ImageService.list` can filter on by equality."""

_SELECT = f"SELECT {COLUMNS} FROM images"
_INSERT = f"INSERT INTO images ({COLUMNS}) VALUES ({', '.join('?' * len(FIELDS))})"
_UPDATE = (f"UPDATE images SET {', '.join(f'{f} = ?' for f in FIELDS[1:])} WHERE id = ?")


def canonical_id(value: Any) -> str:
    """A client-given image id as a dashed lower-case UUID; 400 otherwise."""
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise Invalid(f"Invalid image id: {value!r} is not a UUID.") from None


def _sort(images: builtins.list[Image], sort: Sequence[tuple[str, str]]) -> None:
    """Sort in place by several keys (``(key, 'asc'|'desc')``), None first."""
    for key, direction in reversed([*sort, ("id", sort[-1][1] if sort else "desc")]):
        if key not in SORT_KEYS or direction not in ("asc", "desc"):
            raise Invalid(f"Invalid sort key or direction: {key}:{direction}")
        images.sort(key=partial(_sort_value, key), reverse=direction == "desc")


def _sort_value(key: str, image: Image) -> tuple[Any, ...]:
    value = getattr(image, key)
    return (0,) if value is None else (1, value)


def _internal_properties(properties: Mapping[str, str]) -> dict[str, str]:
    """Extra properties given by the compute service: never a core or
    reserved name (it would be shadowed in the API view), always strings."""
    bad = sorted(k for k in properties if k in CORE or k in RESERVED)
    if bad:
        raise ValueError(f"not extra properties: {', '.join(bad)}")
    return {k: str(v) for k, v in properties.items()}


def _extra_property(key: str, value: Any) -> str:
    """A client-given extra property's value, checked as Glance checks a
    property set by a patch; a core attribute's name is 403, as it is not
    an extra property."""
    check_writable(key)
    if key in CORE:
        raise Forbidden(f"Attribute '{key}' is not an extra property.")
    return extra_value(key, value)


class ImageService:
    """Images of this node: metadata in SQLite, data under ``images_dir``.

    Methods taking a ``ctx`` apply visibility and policy; the others are
    for the compute service and trust their caller.  Nothing here blocks
    the event loop: file work runs in threads.
    """

    def __init__(self, db: Database, images_dir: Path) -> None:
        self.db = db
        self.files = ImageFiles(images_dir)
        self.peer_data: PeerData | None = None
        """In a cluster: where to stream an image's data from (see path_of)."""
        self._fetching: dict[str, asyncio.Lock] = {}

    async def start(self) -> None:
        """Repair what a crash left behind.  Idempotent; call before serving.

        Images stuck in ``saving`` go back to ``queued``; every ``.part``
        file, and every data file whose image is not active or deactivated
        (or is gone), is deleted.
        """
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "UPDATE images SET status = ?, updated_at = ? WHERE status = ?",
                (ImageStatus.QUEUED, utcnow(), ImageStatus.SAVING))
            requeued = cur.rowcount
        rows = await self.db.conn.execute_fetchall(
            "SELECT id FROM images WHERE status IN (?, ?)",
            (ImageStatus.ACTIVE, ImageStatus.DEACTIVATED))
        removed = await asyncio.to_thread(self.files.sweep, [str(r[0]) for r in rows])
        if requeued or removed:
            log.info("images_recovered", requeued=requeued, files_removed=removed)

    # -- reading -----------------------------------------------------------

    async def _fetch(self, image_id: str) -> Image | None:
        rows = list(await self.db.conn.execute_fetchall(f"{_SELECT} WHERE id = ?", (image_id,)))
        return decode(rows[0]) if rows else None

    @staticmethod
    def _visible(ctx: RequestContext, image: Image) -> bool:
        return (ctx.is_admin or image.owner == ctx.project_id
                or image.visibility in (Visibility.PUBLIC, Visibility.COMMUNITY))

    async def get(self, ctx: RequestContext, image_id: str) -> Image:
        """The image, if ``ctx`` may see it; ImageNotFound otherwise."""
        image = await self._fetch(image_id)
        if image is None or not self._visible(ctx, image):
            raise ImageNotFound(image_id)
        return image

    async def list(
        self, ctx: RequestContext, *, name: str | None = None,
        id_in: Sequence[str] | None = None, status: str | None = None,
        visibility: str | None = None, owner: str | None = None,
        match: Mapping[str, Any] | None = None,
        tags: Sequence[str] = (), properties: Mapping[str, str] | None = None,
        hidden: bool = False, updated_since: str | None = None,
        min_ram: int | None = None, min_disk: int | None = None,
        limit: int | None = None, marker: str | None = None,
        sort: Sequence[tuple[str, str]] = (("created_at", "desc"),),
    ) -> builtins.list[Image]:
        """The images ``ctx`` may list, filtered, sorted, one page.

        With no ``visibility``, Glance's default listing: public images and
        the caller's own (admins: all).  ``visibility`` ``community``,
        ``public`` and ``all`` widen it to every image of that kind.
        ``hidden`` lists only ``os_hidden`` images (otherwise they are left
        out).  ``match`` filters on more columns by equality (one of
        :data:`MATCH_COLUMNS`), ``tags`` and ``properties`` on tags and extra
        properties.  ``updated_since`` (a stored timestamp), ``min_ram`` and
        ``min_disk`` keep the images updated then or later, or needing at
        least that much (Nova's ``changes-since``, ``minRam`` and ``minDisk``).
        ``marker`` is the id of the last image of the previous page
        (400 if it is not in the listing).  Sorted by ``sort`` then id.
        """
        where, args = self._list_where(ctx, visibility)
        columns = {"name": name, "status": status, "owner": owner, **(match or {})}
        for column, value in columns.items():
            if column not in MATCH_COLUMNS:
                raise Invalid(f"Cannot filter images by {column}.")
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if id_in is not None:
            where.append(f"id IN ({', '.join('?' * len(id_in))})")
            args.extend(id_in)
        for column, least in (("updated_at", updated_since), ("min_ram", min_ram),
                              ("min_disk", min_disk)):
            if least is not None:
                where.append(f"{column} >= ?")
                args.append(least)
        where.append("os_hidden = ?")
        args.append(int(hidden))
        rows = await self.db.conn.execute_fetchall(f"{_SELECT} WHERE {' AND '.join(where)}", args)
        wanted_props = dict(properties or {})
        images = [img for img in map(decode, rows)
                  if all(t in img.tags for t in tags)
                  and all(img.properties.get(k) == v for k, v in wanted_props.items())]
        _sort(images, sort)
        if marker is not None:
            index = next((i for i, img in enumerate(images) if img.id == marker), None)
            if index is None:
                raise Invalid(f"Invalid marker. Image {marker} could not be found.")
            images = images[index + 1:]
        return images if limit is None else images[:limit]

    @staticmethod
    def _list_where(ctx: RequestContext,
                    visibility: str | None) -> tuple[builtins.list[str], builtins.list[Any]]:
        if visibility is not None and visibility not in {"all", *map(str, Visibility)}:
            raise Invalid(f"Invalid visibility value: {visibility}")
        if visibility in ("public", "community"):
            return ["visibility = ?"], [visibility]
        if visibility == "all":
            if ctx.is_admin:
                return ["1"], []
            return ["(owner = ? OR visibility IN ('public', 'community'))"], [ctx.project_id]
        where: builtins.list[str] = []
        args: builtins.list[Any] = []
        if visibility is not None:
            where, args = ["visibility = ?"], [visibility]
        if not ctx.is_admin:
            where.append("(owner = ? OR visibility = 'public')")
            args.append(ctx.project_id)
        return where or ["1"], args

    # -- writing through the API -----------------------------------------

    async def _writable(self, ctx: RequestContext, image_id: str) -> Image:
        """The image, if ``ctx`` may modify it: 403 for readers and for
        other projects' visible images, 404 for invisible ones."""
        if not ctx.can_write:
            raise Forbidden()
        image = await self.get(ctx, image_id)
        if not (ctx.is_admin or image.owner == ctx.project_id):
            raise Forbidden("You are not permitted to modify this image.")
        return image

    async def _insert(self, image: Image) -> None:
        try:
            async with self.db.transaction() as conn:
                await conn.execute(_INSERT, encode(image))
        except sqlite3.IntegrityError:
            raise Conflict(f"Image with identifier {image.id} already exists!") from None

    async def create(self, ctx: RequestContext, fields: Mapping[str, Any]) -> Image:
        """A new ``queued`` image from a ``POST /v2/images`` body.

        ``fields`` is Glance's flat object: core attributes plus extra
        properties as top-level string values; ``id`` may be given.  403
        for readers, read-only attributes, another owner or ``public``
        (non-admins); 400 for bad values; 409 for a duplicate id.
        """
        if not ctx.can_write:
            raise Forbidden()
        core, extra = split_create_body(fields)
        owner = core.pop("owner", None) or ctx.project_id
        if owner != ctx.project_id and not ctx.is_admin:
            raise Forbidden("You are not permitted to create images owned by another project.")
        image_id = canonical_id(fields["id"]) if fields.get("id") is not None \
            else str(uuid.uuid4())
        now = utcnow()
        image = Image(
            id=image_id, name=core.get("name"), status=ImageStatus.QUEUED,
            visibility=Visibility(core.get("visibility") or Visibility.SHARED),
            protected=core.get("protected", False), os_hidden=core.get("os_hidden", False),
            owner=owner, disk_format=core.get("disk_format"),
            container_format=core.get("container_format"), size=None, virtual_size=None,
            checksum=None, os_hash_algo=None, os_hash_value=None,
            min_disk=core.get("min_disk", 0), min_ram=core.get("min_ram", 0),
            created_at=now, updated_at=now, properties=extra, tags=core.get("tags", []))
        check_policy(None, image, ctx.is_admin)
        await self._insert(image)
        log.info("image_created", image_id=image.id, owner=owner, request_id=ctx.request_id)
        return image

    async def update(self, ctx: RequestContext, image_id: str, ops: Any) -> Image:
        """Apply a Glance JSON patch (see :func:`novad.images.rules.apply_patch`).

        400 malformed patch or value; 403 read-only attribute, reader,
        not the owner, admin-only change; 404 invisible; 409 replacing or
        removing a property that does not exist.
        """
        await self._writable(ctx, image_id)
        async with self.db.transaction():
            image = await self._fetch(image_id)
            if image is None:
                raise ImageNotFound(image_id)
            core, props = apply_patch(image, ops)
            new = image.replace(**core, properties=props, updated_at=utcnow())
            check_policy(image, new, ctx.is_admin)
            await self.db.conn.execute(_UPDATE, (*encode(new)[1:], image_id))
        return new

    async def set_properties(self, ctx: RequestContext, image_id: str,
                             edit: Callable[[dict[str, str]], Mapping[str, str]]) -> Image:
        """Replace the image's extra properties with ``edit`` of a copy of
        them, read and written in one transaction (Nova's image metadata).

        ``edit`` may raise to refuse the change; nothing is written then.
        403 for readers, other projects' images, and names that are core or
        reserved attributes; 400 for a bad name or value; 404 invisible.
        """
        await self._writable(ctx, image_id)
        async with self.db.transaction():
            image = await self._fetch(image_id)
            if image is None:
                raise ImageNotFound(image_id)
            props = {key: _extra_property(key, value)
                     for key, value in edit(dict(image.properties)).items()}
            new = image.replace(properties=props, updated_at=utcnow())
            await self.db.conn.execute(_UPDATE, (*encode(new)[1:], image_id))
        return new

    async def add_tag(self, ctx: RequestContext, image_id: str, tag: str) -> None:
        """Add ``tag`` (no-op when present)."""
        await self.update(ctx, image_id, [{"op": "add", "path": "/tags/-", "value": tag}])

    async def remove_tag(self, ctx: RequestContext, image_id: str, tag: str) -> None:
        """Remove ``tag``; 404 when the image does not have it."""
        image = await self._writable(ctx, image_id)
        if tag not in image.tags:
            raise NotFound(f"Tag {tag} not found.")
        await self.update(ctx, image_id, [{"op": "remove",
                                           "path": f"/tags/{image.tags.index(tag)}"}])

    async def delete(self, ctx: RequestContext, image_id: str) -> None:
        """Delete the image and its data.  403 when protected."""
        await self._writable(ctx, image_id)
        await self.delete_internal(image_id, missing_ok=False)
        log.info("image_deleted", image_id=image_id, request_id=ctx.request_id)

    async def set_active(self, ctx: RequestContext, image_id: str, active: bool) -> None:
        """Glance's reactivate (``active``) / deactivate: admins only.

        Idempotent; 400 unless the image is active or deactivated.
        """
        if not ctx.is_admin:
            raise Forbidden()
        image = await self.get(ctx, image_id)
        target, source = ((ImageStatus.ACTIVE, ImageStatus.DEACTIVATED) if active
                          else (ImageStatus.DEACTIVATED, ImageStatus.ACTIVE))
        if image.status == target:
            return
        if not await self._cas(image_id, (source,), status=target):
            verb = "reactivate" if active else "deactivate"
            raise Invalid(f"Not allowed to {verb} image in status '{image.status}'")

    # -- data ---------------------------------------------------------------

    async def _cas(self, image_id: str, expected: Iterable[ImageStatus],
                   **changes: Any) -> bool:
        """``UPDATE`` ``changes`` (and ``updated_at``) only if the status is
        one of ``expected``; whether it did."""
        expected = builtins.list(expected)
        changes["updated_at"] = utcnow()
        sets = ", ".join(f"{k} = ?" for k in changes)
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                f"UPDATE images SET {sets} WHERE id = ? AND status IN "
                f"({', '.join('?' * len(expected))})",
                (*changes.values(), image_id, *expected))
            return cur.rowcount == 1

    async def _transition(self, image_id: str, expected: ImageStatus,
                          target: ImageStatus) -> None:
        """CAS ``expected`` → ``target``; 404 if gone, 409 if in another status."""
        if await self._cas(image_id, (expected,), status=target):
            return
        current = await self._fetch(image_id)
        if current is None:
            raise ImageNotFound(image_id)
        raise Conflict(f"Image status transition from {current.status} to {target} "
                       "is not allowed")

    async def _activate(self, image_id: str, digest: Digest, **extra: Any) -> Image:
        """``saving`` → ``active`` with the data's size and hashes.  If the
        image was deleted or killed meanwhile, its file goes and 404/409."""
        done = await self._cas(
            image_id, (ImageStatus.SAVING,), status=ImageStatus.ACTIVE, size=digest.size,
            virtual_size=digest.virtual_size, checksum=digest.md5, os_hash_algo=HASH_ALGO,
            os_hash_value=digest.sha512, **extra)
        image = await self._fetch(image_id)
        if not done or image is None:
            self.files.remove(image_id)
            raise ImageNotFound(image_id) if image is None else Conflict(
                f"Image {image_id} changed status to {image.status} during upload.")
        return image

    async def upload(self, ctx: RequestContext, image_id: str, stream: AsyncIterator[bytes],
                     size_limit: int) -> Image:
        """Store the image's data from ``stream``: queued → saving → active.

        Streams to disk, hashing as it goes.  409 unless queued; 400 when
        disk or container format is unset; 413 past ``size_limit`` bytes.
        Any failure (a dropped client too) puts the image back to queued.
        """
        image = await self._writable(ctx, image_id)
        if not image.disk_format or not image.container_format:
            raise Invalid("Properties disk_format, container_format must be set prior to "
                          "saving data.")
        await self._transition(image_id, ImageStatus.QUEUED, ImageStatus.SAVING)
        try:
            digest = await self.files.receive(image_id, stream, size_limit, image.disk_format)
            await self.files.place(image_id)
        except BaseException:
            await self._cas(image_id, (ImageStatus.SAVING,), status=ImageStatus.QUEUED)
            raise
        log.info("image_uploaded", image_id=image_id, size=digest.size,
                 request_id=ctx.request_id)
        return await self._activate(image_id, digest)

    async def open_data(self, ctx: RequestContext, image_id: str) -> tuple[Image, Path | None]:
        """The image and its data file, or None as the path when it has no
        data yet (Glance answers 204).  403 for a deactivated image unless
        admin."""
        image = await self.get(ctx, image_id)
        if image.status == ImageStatus.DEACTIVATED and not ctx.is_admin:
            raise Forbidden("The requested image has been deactivated. "
                            "Image data download is forbidden.")
        return image, self.path_of_image(image)

    def path_of_image(self, image: Image) -> Path | None:
        """Where ``image``'s data is, if it has data and the file exists."""
        path = self.files.path(image.id)
        return path if image.has_data and path.is_file() else None

    # -- for the compute service (no request context) ---------------------

    async def create_from_file(
        self, owner_project_id: str, name: str, path: Path, disk_format: str,
        properties: Mapping[str, str], visibility: str = "private", move: bool = False,
        min_disk: int = 0, min_ram: int = 0,
    ) -> Image:
        """A new ``active`` image whose data is the file ``path``.

        The file is hashed in a thread and moved (``move``; across file
        systems it is copied then removed) or copied in.  Raises OSError
        when ``path`` cannot be read, ValueError when a property name is a
        core or reserved attribute.
        """
        props = _internal_properties(properties)
        image_id = str(uuid.uuid4())
        digest = await self.files.ingest(image_id, path, disk_format, move)
        now = utcnow()
        image = Image(
            id=image_id, name=name, status=ImageStatus.ACTIVE, visibility=Visibility(visibility),
            protected=False, os_hidden=False, owner=owner_project_id, disk_format=disk_format,
            container_format="bare", size=digest.size, virtual_size=digest.virtual_size,
            checksum=digest.md5, os_hash_algo=HASH_ALGO, os_hash_value=digest.sha512,
            min_disk=min_disk, min_ram=min_ram, created_at=now, updated_at=now,
            properties=props, tags=[])
        try:
            await self._insert(image)
        except BaseException:
            self.files.remove(image_id)
            raise
        return image

    async def reserve(self, owner: str, name: str, properties: Mapping[str, str], *,
                      min_disk: int = 0, min_ram: int = 0,
                      visibility: str = "private") -> Image:
        """A ``queued`` image with no data yet, for a snapshot whose id the
        API must return at once; complete it with :meth:`finish_from_file`
        or :meth:`kill`."""
        props = _internal_properties(properties)
        now = utcnow()
        image = Image(
            id=str(uuid.uuid4()), name=name, status=ImageStatus.QUEUED,
            visibility=Visibility(visibility), protected=False, os_hidden=False, owner=owner,
            disk_format=None, container_format="bare", size=None, virtual_size=None,
            checksum=None, os_hash_algo=None, os_hash_value=None, min_disk=min_disk,
            min_ram=min_ram, created_at=now, updated_at=now, properties=props, tags=[])
        await self._insert(image)
        return image

    async def finish_from_file(self, image_id: str, path: Path, disk_format: str, *,
                               move: bool = False) -> Image:
        """Give a reserved image its data: queued → saving → active.

        ``move`` as in :meth:`create_from_file`.  404 when the image is
        gone (it was deleted meanwhile; its data is then discarded), 409
        when it is not queued.  On failure the image is queued again.
        """
        await self._transition(image_id, ImageStatus.QUEUED, ImageStatus.SAVING)
        try:
            digest = await self.files.ingest(image_id, path, disk_format, move)
        except BaseException:
            await self._cas(image_id, (ImageStatus.SAVING,), status=ImageStatus.QUEUED)
            raise
        return await self._activate(image_id, digest, disk_format=disk_format)

    async def kill(self, image_id: str) -> None:
        """Mark a queued or saving image ``killed`` and drop any data.

        Idempotent for killed images; 404 when gone; 409 for an image that
        already has its data.
        """
        if not await self._cas(image_id, (ImageStatus.QUEUED, ImageStatus.SAVING),
                               status=ImageStatus.KILLED):
            image = await self._fetch(image_id)
            if image is None:
                raise ImageNotFound(image_id)
            if image.status != ImageStatus.KILLED:
                raise Conflict(f"Image {image_id} is {image.status}, it cannot be killed.")
        self.files.remove(image_id)

    async def path_of(self, image_id: str) -> Path | None:
        """The data file of an active or deactivated image; None when the
        image is missing or has no data.  In a cluster, an image whose
        record came from another node is fetched from a node that has its
        data first (streamed, checked against the record's checksums)."""
        image = await self._fetch(image_id)
        if image is None:
            return None
        path = self.path_of_image(image)
        if path is None and image.has_data and self.peer_data is not None:
            path = await self._fetch_from_peers(image)
        return path

    async def _fetch_from_peers(self, image: Image) -> Path | None:
        lock = self._fetching.setdefault(image.id, asyncio.Lock())
        async with lock:
            path = self.path_of_image(image)
            if path is not None or self.peer_data is None:
                return path
            for peer, chunks in self.peer_data(image.id):
                try:
                    digest = await self.files.receive(image.id, chunks, 1 << 42,
                                                      image.disk_format)
                except Exception as exc:  # an unreachable or failing peer: try the next
                    log.info("image data not fetched", image_id=image.id, peer=peer,
                             why=f"{type(exc).__name__}: {exc}")
                    continue
                if digest.md5 != image.checksum or (image.os_hash_value
                                                    and digest.sha512 != image.os_hash_value):
                    log.warning("image data from a peer fails its checksum", image_id=image.id,
                                peer=peer)
                    self.files.part(image.id).unlink(missing_ok=True)
                    continue
                await self.files.place(image.id)
                log.info("image data fetched", image_id=image.id, peer=peer, size=digest.size)
                return self.path_of_image(image)
        return None

    async def delete_internal(self, image_id: str, *, missing_ok: bool = True) -> None:
        """Delete the image row and its data, whoever owns it.

        403 when the image is protected (Glance refuses that to everyone);
        a missing image is fine unless ``missing_ok`` is false (404).
        """
        async with self.db.transaction():
            image = await self._fetch(image_id)
            if image is None:
                if missing_ok:
                    return
                raise ImageNotFound(image_id)
            if image.protected:
                raise Forbidden(f"Image {image_id} is protected and cannot be deleted.")
            await self.db.conn.execute("DELETE FROM images WHERE id = ?", (image_id,))
        self.files.remove(image_id)

    async def list_backups(self, instance_uuid: str, backup_type: str) -> builtins.list[Image]:
        """The backups (``image_type=backup``) of an instance with this
        ``backup_type``, oldest first, killed ones left out: what backup
        rotation deletes from the front of."""
        rows = await self.db.conn.execute_fetchall(
            f"{_SELECT} WHERE json_extract(properties, '$.image_type') = 'backup'"
            " AND json_extract(properties, '$.instance_uuid') = ?"
            " AND json_extract(properties, '$.backup_type') = ?"
            " AND status != ? ORDER BY created_at, id",
            (instance_uuid, backup_type, ImageStatus.KILLED))
        return [decode(r) for r in rows]

