"""Moving instances between nodes: cold migrate, resize to another node
(with confirm and revert), evacuate, and fencing of stale copies.

The instance's row is its truth, and exactly one node holds it (in
``instances``; the others hold a copy in the cluster directory).  A move
hands the row over (:class:`~novad.cluster.replication.Handover`): the
destination adopts it with the instance's ``generation`` raised, which
makes its record win everywhere, and the source drops its own without a
tombstone.  Seed 003's cold migration, per node:

=========================  =============================================
source (owns the row)      destination
=========================  =============================================
RESIZE_PREP: schedule      ``prepare``: claim the flavor (``move_preps``)
RESIZE_MIGRATING: power
off; migration migrating
RESIZE_MIGRATED: stream    ``file``: each disk file, checksummed (BLAKE3)
the files
``adopt`` ──────────────►  the row is adopted in the same transaction
                           that settles the prepared move
release the row; keep the  RESIZE_FINISH: define, start (unless it was
files for a revert         STOPPED); migration finished; VERIFY_RESIZE
=========================  =============================================

Confirm (asked of the owner, the destination) tells the source to drop its
files; revert hands the row back the same way and the source starts its
untouched original.  Evacuate (only when gossip says the source is dead
and an admin forced its service down) has the chosen node adopt the row
from its replicated copy and rebuild it from its image.

**Never two copies.**  A prepared move is settled once, either adopted or
aborted, in the destination's store, so a source whose ``adopt`` went
unanswered asks ``abort`` and always learns which: only an aborted move
lets the source start its guest again.  A node that finds the cluster's
record of one of its instances at a higher generation (it was evacuated
while it was cut off or down) destroys its copy before it starts
anything: at start-up after catching up, and whenever such a record
arrives (:meth:`Mover.fence_stale`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import shlex
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import structlog
from blake3 import blake3

from novad.cluster.auth import NONCE
from novad.cluster.http import PREFIX, PeerError, encode
from novad.cluster.members import MemberState
from novad.cluster.replication import Handover
from novad.cluster.service import ClusterService
from novad.compute.placement import Placement
from novad.compute.runner import Op, Outcome, Runner, now
from novad.compute.specs import SpecBuilder
from novad.config import Config
from novad.context import RequestContext, new_request_id
from novad.drivers.base import LiveMigrateData
from novad.errors import (
    ClaimFailed,
    Conflict,
    InstanceFaultRollback,
    InstanceNotFound,
    Invalid,
    NotAuthenticated,
    NoValidHost,
    NovadError,
)
from novad.states.enums import PowerState as P, TaskState as T, VmState as V
from novad.states.table import BY_NAME
from novad.store import Store
from novad.store.codec import flavor_to_json
from novad.store.models import (ActionStart, EventStart, Expect, Fault, Flavor, Instance,
                                 Migration)
from novad.store.moves import ABORTED, ADOPTED, PREPARED
from novad.supervisor import Supervisor

log = structlog.get_logger("novad.moves")

MOVES_PATH = f"{PREFIX}/moves"
FILE_PATH = f"{MOVES_PATH}/file"
MOVE_HEADER = "X-Novad-Move"
PARAMS_KEY = "novad_task_params"
INCOMING = ".incoming"
_CHUNK = 4 * 1024 * 1024
_SKIPPED = ("libvirt.xml", "unrescue.xml")
OPEN_SOURCE = ("pre-migrating", "migrating", "post-migrating", "finished", "confirming",
               "reverting")
"""Statuses in which a source still keeps its files for the instance."""


class MoveFailed(NovadError):
    """A move could not be completed (the instance stays where it was)."""

    status = 500


def _files_of(inst_dir: Path) -> list[Path]:
    """The files a move carries: disks, kernel copies, config drive,
    console log; not the XML (the destination writes its own) nor what a
    same-host resize or a rescue keeps."""
    if not inst_dir.is_dir():
        return []
    return sorted(p for p in inst_dir.iterdir()
                  if p.is_file() and not p.name.startswith(".") and p.name not in _SKIPPED
                  and not p.name.endswith((".resize", ".rescue")))


def _params(inst: Instance) -> dict[str, Any]:
    try:
        value = json.loads(inst.system_metadata.get(PARAMS_KEY) or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


class Mover:
    """This node's side of every move (see the module docstring)."""

    def __init__(self, config: Config, store: Store, cluster: ClusterService,
                 placement: Placement, specs: SpecBuilder, runner: Runner,
                 supervisor: Supervisor) -> None:
        self.config = config
        self.store = store
        self.cluster = cluster
        self.placement = placement
        self.specs = specs
        self.runner = runner
        self.supervisor = supervisor
        self.handover = Handover(store.db)
        self.host = config.host
        self.unsettled: dict[str, Instance] = {}
        """Instances whose move to another node a restart interrupted here."""
        self.rollback: Callable[[Instance], Awaitable[None]] | None = None
        """Rolls an interrupted resize back on this node (set by recovery)."""
        self.reconfirm: set[str] = set()
        """Instances whose confirm a restart interrupted here (the source is remote)."""
        self.rerun: Callable[[Instance, str], Awaitable[None]] | None = None
        """Runs an interrupted action again (set by recovery)."""
        self.aborting: set[int] = set()
        """Live migrations (ids) an admin asked to abort: they end ``cancelled``."""

    # -- peers ---------------------------------------------------------------
    def alone(self) -> bool:
        """Whether no other node is alive (moves need one)."""
        return self.cluster.alone()

    def is_alive(self, host: str) -> bool:
        """Whether gossip says ``host`` is alive."""
        member = self.cluster.member(host)
        return member is not None and member.state is MemberState.ALIVE

    def _address(self, host: str) -> str:
        member = self.cluster.member(host)
        if member is None or member.state is not MemberState.ALIVE:
            raise PeerError(host, f"node {host} is not alive")
        return member.address

    async def call(self, host: str, kind: str, message: dict[str, Any],
                   timeout: float = 60.0) -> Any:
        """A signed node-to-node request about a move; PeerError otherwise."""
        return await self.cluster.client.post(self._address(host), f"{MOVES_PATH}/{kind}",
                                              message, timeout)

    async def send_file(self, host: str, migration_id: int, uuid: str, path: Path) -> str:
        """Stream one file to ``host``; returns its BLAKE3 digest, which the
        receiver computed too and must have answered with."""
        descriptor = encode({"migration": migration_id, "instance": uuid, "name": path.name})
        headers = self.cluster.auth.sign("POST", FILE_PATH, descriptor)
        headers[MOVE_HEADER] = base64.b64encode(descriptor).decode()
        headers["Content-Type"] = "application/octet-stream"
        digest = blake3()

        async def chunks() -> AsyncIterator[bytes]:
            # The next block is read and hashed in a thread while this one is
            # sent: hashing overlaps the network instead of taking turns.
            with path.open("rb") as f:
                ahead = asyncio.ensure_future(asyncio.to_thread(_read_hashed, f, digest))
                try:
                    while block := await ahead:
                        ahead = asyncio.ensure_future(asyncio.to_thread(_read_hashed, f, digest))
                        yield block
                finally:
                    await asyncio.wait([ahead])

        address = self._address(host)
        wait = aiohttp.ClientTimeout(total=None, sock_connect=5, sock_read=120)
        try:
            async with self.cluster.client.session.post(
                    f"http://{address}{FILE_PATH}", data=chunks(), headers=headers,
                    timeout=wait) as resp:
                raw = await resp.read()
                status, answer_headers = resp.status, dict(resp.headers)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise PeerError(address, f"file {path.name}: {type(exc).__name__}") from None
        self.cluster.auth.verify_response(headers[NONCE], status, answer_headers, raw)
        if status != 200:
            raise PeerError(address, f"file {path.name} refused with {status}", status)
        theirs = json.loads(raw).get("blake3")
        if theirs != digest.hexdigest():
            raise PeerError(address, f"file {path.name} arrived damaged")
        return digest.hexdigest()

    # -- source: moving out ----------------------------------------------------
    async def move_out(self, r: Runner, op: Op, kind: str, new_flavor: Flavor) -> Outcome:
        """Migrate or resize ``op``'s instance to another node (steps above)."""
        inst = op.instance
        ignore = frozenset({r.host})
        forced, requested = _destination(op.params)  # migrate's host (2.56) is requested
        decision = await self.placement.for_move(new_flavor, {}, self.cluster.members(),
                                                 ignore, forced, requested)
        if not decision.hosts:
            raise NoValidHost()
        migration = await self.store.create_migration(
            inst.uuid, kind, "pre-migrating", r.host, None, inst.flavor.id, new_flavor.id,
            user_id=op.ctx.user_id, project_id=op.ctx.project_id)
        target, _ = await self._prepare(decision.hosts, migration, inst, new_flavor)
        await self.store.set_migration_dest(migration.id, target)
        meta = {**inst.system_metadata, "old_vm_state": op.origin_vm.value}
        await r.step(op, T.RESIZE_MIGRATING, system_metadata=meta)
        await self.store.update_migration_status(migration.id, "migrating")
        try:
            op.touched_guest = True
            await r.driver.power_off(inst.uuid, True, self.config.DEFAULT.shutdown_timeout,
                                     self.config.compute.shutdown_retry_interval)
            await self.store.update_migration_status(migration.id, "post-migrating")
            await r.step(op, T.RESIZE_MIGRATED)
            files = {p.name: await self.send_file(target, migration.id, inst.uuid, p)
                     for p in _files_of(self.specs.instance_dir(inst.uuid))}
        except Exception as exc:
            await self._call_off(r, op, target, migration)
            raise InstanceFaultRollback(f"Migration to {target} failed: {exc}") from exc
        try:
            row = await self._hand_to(target, op, migration, files, {
                "flavor": flavor_to_json(new_flavor), "action": op.spec.name})
        except PeerError as exc:
            # Neither adopt nor abort was answered: only the target knows.
            # The task stays; settle_unsettled asks until it answers.
            log.warning("move in doubt until the target answers", instance_id=inst.uuid,
                        target=target, why=str(exc))
            self.unsettled[inst.uuid] = op.instance
            return Outcome(released=True)
        if row is None:
            await self._call_off(r, op, target, migration, asked=True)
            raise InstanceFaultRollback(f"Node {target} refused the instance")
        await r.driver.destroy(inst.uuid, None)  # the files stay for a revert
        await self.handover.release(inst.uuid, row)
        log.info("instance moved", instance_id=inst.uuid, to=target, migration=migration.id)
        return Outcome(released=True)

    async def _prepare(self, hosts: list[str], migration: Migration, inst: Instance,
                       flavor: Flavor, live: bool = False) -> tuple[str, dict[str, Any]]:
        failed: list[str] = []
        for host in hosts[:self.config.scheduler.max_attempts]:
            try:
                answer = await self.call(host, "prepare", {
                    "migration": migration.id, "instance": inst.uuid, "source": self.host,
                    "flavor": flavor.to_dict(), "live": live})
                return host, dict(answer or {})
            except PeerError as exc:
                failed.append(f"{host}: {exc}")
        await self.store.update_migration_status(migration.id, "error")
        raise NoValidHost(detail="; ".join(failed))

    async def _hand_to(self, target: str, op: Op, migration: Migration,
                       files: dict[str, str], extra: dict[str, Any]) -> dict[str, Any] | None:
        """Ask ``target`` to adopt the row; its new row, or None when the
        move was aborted there.  Raises MoveInDoubt-like PeerError only when
        neither an adopt nor an abort got an answer."""
        exported = await self.handover.export(op.uuid)
        assert exported is not None
        params = {"arrived": True, "migration_id": migration.id, **extra}
        meta = {**op.instance.system_metadata, PARAMS_KEY: json.dumps(params),
                "task_host": target}
        message = {"migration": migration.id, "instance": op.uuid, "source": self.host,
                   "exported": exported, "files": files, "request_id": op.request_id,
                   "changes": {"host": target, "generation": op.instance.generation + 1,
                               "system_metadata": json.dumps(meta), "task_state": op.task.value
                               if op.task is not None else None}}
        for delay in (0.0, 0.5, 2.0):
            await asyncio.sleep(delay)
            try:
                answer = await self.call(target, "adopt", message, timeout=120.0)
                return answer.get("row") if answer.get("state") == ADOPTED else None
            except PeerError as exc:
                if exc.status is not None:
                    break  # refused: whether anything was adopted, abort says for sure
                log.warning("adopt unanswered; asking again", instance_id=op.uuid, why=str(exc))
        return await self.settle(target, migration.id, op.uuid)

    async def settle(self, target: str, migration_id: int, uuid: str) -> dict[str, Any] | None:
        """Ask ``target`` to abort; the row it adopted (None: aborted).
        PeerError when it cannot be reached: the move is in doubt."""
        answer = await self.call(target, "abort", {"migration": migration_id, "instance": uuid,
                                                   "source": self.host})
        return answer.get("row") if answer.get("state") == ADOPTED else None

    async def _call_off(self, r: Runner, op: Op, target: str, migration: Migration,
                        asked: bool = False) -> None:
        """Undo a move that did not happen: the target drops what it got,
        the guest starts again here unless it was stopped."""
        if not asked:
            try:
                if await self.settle(target, migration.id, op.uuid) is not None:
                    raise MoveFailed(f"Node {target} adopted the instance after all")
            except PeerError as exc:
                log.warning("target not told to abort", instance_id=op.uuid, why=str(exc))
        await self.store.update_migration_status(migration.id, "error")
        if op.origin_vm is not V.STOPPED:
            await r.driver.power_on(await self.specs.build(op.instance))

    # -- destination: moving in ------------------------------------------------
    async def prepare(self, message: dict[str, Any]) -> dict[str, Any]:
        """Claim a move's flavor here (ClaimFailed when it does not fit)."""
        flavor = Flavor.from_dict(message["flavor"])
        claims = self.runner_claims
        if claims is None:
            raise ClaimFailed(f"Claim failed on {self.host}: no claims")
        async with claims.claim(flavor, 1):
            prep = await self.store.prepare_move(int(message["migration"]),
                                                 str(message["instance"]),
                                                 str(message["source"]), flavor)
        if prep.state == ABORTED:
            raise Conflict(f"Migration {prep.migration_id} was aborted")
        inst_dir = self.specs.instance_dir(prep.instance_uuid)
        await asyncio.to_thread((inst_dir / INCOMING).mkdir, parents=True, exist_ok=True)
        if not message.get("live"):
            return {"state": prep.state}
        # A live migration fills disks laid out here first (block migration).
        replica = await self.store.get_replica(prep.instance_uuid)
        data = await self.runner.driver.pre_live_migration(
            await self.specs.build(replica.replace(flavor=flavor, host=self.host)))
        lv = self.config.libvirt
        inbound = lv.live_migration_inbound_addr
        return {"state": prep.state, "instance_dir": str(data.instance_dir),
                "node_id": data.node_id, "uri": lv.live_migration_uri or lv.connection_uri,
                "migrate_uri": f"tcp://{inbound}" if inbound else None}

    runner_claims: Any = None
    """The node's :class:`~novad.compute.claims.Claims` (set when wired)."""

    async def receive_file(self, descriptor: dict[str, Any],
                           stream: AsyncIterator[bytes]) -> dict[str, Any]:
        """Write one streamed file of a prepared move under ``.incoming``."""
        prep = await self.store.get_move(int(descriptor["migration"]))
        name = str(descriptor["name"])
        if prep is None or prep.state != PREPARED or prep.instance_uuid != descriptor["instance"]:
            raise Conflict("No prepared move for this file")
        if "/" in name or name.startswith(".") or not name:
            raise Invalid(f"Bad file name {name!r}")
        incoming = self.specs.instance_dir(prep.instance_uuid) / INCOMING
        await asyncio.to_thread(incoming.mkdir, parents=True, exist_ok=True)
        part = incoming / f".{name}.part"
        digest = blake3()
        size = 0
        with part.open("wb") as f:
            # Chunks are gathered to about 4 MiB per thread hop, and one batch
            # is written and hashed while the next arrives.
            batch: list[bytes] = []
            held = 0
            writing: asyncio.Future[None] | None = None
            try:
                async for block in stream:
                    batch.append(block)
                    held += len(block)
                    size += len(block)
                    if held >= _CHUNK:
                        if writing is not None:
                            await writing
                        writing = asyncio.ensure_future(
                            asyncio.to_thread(_write_hashed, f, batch, digest))
                        batch, held = [], 0
            finally:
                if writing is not None:
                    await asyncio.wait([writing])
            if writing is not None:
                await writing
            await asyncio.to_thread(_write_hashed, f, batch, digest)
            await asyncio.to_thread(os.fsync, f.fileno())
        await asyncio.to_thread(os.replace, part, incoming / name)
        await asyncio.to_thread((incoming / f"{name}.blake3").write_text, digest.hexdigest())
        return {"blake3": digest.hexdigest(), "size": size}

    async def adopt(self, message: dict[str, Any]) -> dict[str, Any]:
        """Take the row of a prepared move (or of a revert coming back);
        then finish it here in the background."""
        mid, uuid = int(message["migration"]), str(message["instance"])
        files = {str(k): str(v) for k, v in dict(message.get("files") or {}).items()}
        inst_dir = self.specs.instance_dir(uuid)
        prep = await self.store.get_move(mid)
        reverting = message.get("revert") is True
        if prep is not None and prep.state == ABORTED:
            return {"state": ABORTED}
        if prep is None and not reverting:
            return {"state": ABORTED}
        if prep is None or prep.state == PREPARED:
            await asyncio.to_thread(_place_files, inst_dir, files)
        adopted = await self.handover.adopt(message["exported"], dict(message["changes"]),
                                            migration_id=mid, source=str(message["source"]))
        if not adopted:
            return {"state": ABORTED}
        inst = await self.store.get_instance(uuid)
        self._finish_here(inst, str(message.get("request_id") or new_request_id()))
        row = await self.handover.export(uuid)
        return {"state": ADOPTED, "row": row["row"] if row else None}

    async def abort(self, message: dict[str, Any]) -> dict[str, Any]:
        """Call off a move unless it was adopted; says which it is now."""
        mid, uuid = int(message["migration"]), str(message["instance"])
        state = await self.store.settle_move(mid, ABORTED, uuid, str(message.get("source", "")))
        if state == ADOPTED:
            row = await self.handover.export(uuid)
            return {"state": ADOPTED, "row": row["row"] if row else None}
        try:
            await self.store.get_instance(uuid)
        except InstanceNotFound:
            await asyncio.to_thread(shutil.rmtree, self.specs.instance_dir(uuid), True)
        return {"state": ABORTED}

    def _finish_here(self, inst: Instance, request_id: str) -> None:
        """Run the rest of the arrived action (resize finish, revert finish,
        evacuation rebuild) as this node's own work."""
        params = _params(inst)
        spec = BY_NAME[str(params.get("action") or "resize")]
        origin = V(inst.system_metadata.get("old_vm_state", inst.vm_state.value)) \
            if spec.name != "evacuate" else inst.vm_state
        if spec.name == "revert_resize":
            origin = V.RESIZED
        op = Op(spec=spec, instance=inst, ctx=RequestContext.admin(request_id), params=params,
                origin_vm=origin, task=inst.task_state, request_id=request_id)
        self.supervisor.spawn(f"{spec.name}:{inst.uuid}", lambda: self.runner.run(op))

    async def arrive_resize(self, r: Runner, op: Op) -> Outcome:
        """The destination's half of a migrate or resize: RESIZE_FINISH,
        define and start on the files that came, migration finished."""
        old_flavor = op.instance.flavor
        new_flavor = Flavor.from_dict(json.loads(op.params["flavor"]))
        meta = {**op.instance.system_metadata, "old_flavor": old_flavor.id}
        if op.task is T.RESIZE_MIGRATED:
            await r.step(op, T.RESIZE_FINISH, flavor=new_flavor, system_metadata=meta)
        spec = await self.specs.build(op.instance)
        op.touched_guest = True
        await r.driver.accept_migrated_disks(spec)
        old_vm = V(op.instance.system_metadata.get("old_vm_state", V.ACTIVE.value))
        await r.driver.finish_migration(spec, power_on=old_vm is not V.STOPPED)
        await self.store.update_migration_status(int(op.params["migration_id"]), "finished")
        return Outcome(changes={"launched_at": now()})

    # -- live migration --------------------------------------------------------------
    async def live_out(self, r: Runner, op: Op) -> Outcome:
        """Live-migrate to another node: queued → preparing (the target lays
        out the disks and claims) → running (libvirt peer-to-peer, with the
        disks copied when storage is not shared) → the target adopts the row
        → completed; the source's files go.  A failure before the guest left
        leaves it running here (task cleared, migration failed)."""
        inst = op.instance
        migration = await self.store.create_migration(
            inst.uuid, "live-migration", "queued", r.host, None, inst.flavor.id, inst.flavor.id,
            user_id=op.ctx.user_id, project_id=op.ctx.project_id)
        decision = await self.placement.for_move(inst.flavor, {}, self.cluster.members(),
                                                 frozenset({r.host}), *_destination(op.params))
        if not decision.hosts:  # a failed pre-check ends the migration in error, as Nova
            await self.store.update_migration_status(migration.id, "error")
            raise NoValidHost()
        await self.store.update_migration_status(migration.id, "preparing")
        target, dest = await self._prepare(decision.hosts, migration, inst, inst.flavor, live=True)
        await self.store.set_migration_dest(migration.id, target)
        if migration.id in self.aborting:  # 2.65: aborted while queued or preparing
            self.aborting.discard(migration.id)
            await self.store.update_migration_status(migration.id, "cancelled")
            with contextlib.suppress(PeerError):
                await self.settle(target, migration.id, inst.uuid)
            raise MoveFailed(f"Live migration {migration.id} was aborted before it ran")
        await self.store.update_migration_status(migration.id, "running")
        block = op.params.get("block_migration") not in (False, "false", "False")
        try:
            await r.driver.live_migrate(
                await self.specs.build(inst), str(dest["uri"]), block_migration=block,
                migrate_uri=dest.get("migrate_uri"),
                dest=LiveMigrateData(Path(str(dest["instance_dir"])), dest.get("node_id")))
        except Exception:
            aborted = migration.id in self.aborting
            self.aborting.discard(migration.id)
            await self.store.update_migration_status(
                migration.id, "cancelled" if aborted else "failed")
            with contextlib.suppress(PeerError):
                await self.settle(target, migration.id, inst.uuid)
            raise
        self.aborting.discard(migration.id)  # an abort that came too late to stop it
        row = await self._hand_to(target, op, migration, {}, {"action": "live_migrate"})
        if row is None:  # the guest runs there already: nothing to start here
            raise MoveFailed(f"Node {target} runs the guest but refused its record")
        await r.driver.destroy(inst.uuid, self.specs.instance_dir(inst.uuid))
        await self.handover.release(inst.uuid, row)
        log.info("instance live-migrated", instance_id=inst.uuid, to=target)
        return Outcome(released=True)

    async def live_destinations(self, inst: Instance, params: dict[str, Any]) -> list[str]:
        """The nodes a live migration of ``inst`` would try now: the
        scheduler's pre-checks, which Nova runs before its API answers below
        2.34; empty when no node fits (the scheduler's NoValidHost).  Claims
        nothing.  Does not block."""
        try:
            decision = await self.placement.for_move(inst.flavor, {}, self.cluster.members(),
                                                     frozenset({self.host}),
                                                     *_destination(params))
        except NoValidHost:
            return []
        for host in decision.hosts[:1]:
            decision.failed(host)  # for_move counted it as tried: this was only a check
        return decision.hosts

    async def abort_live(self, migration: Migration) -> None:
        """Cancel a running live migration of an instance here (2.24): the
        driver stops it, :meth:`live_out` then ends it ``cancelled``.
        Raises DriverError when none runs.  A queued or preparing one (2.65)
        is only marked: :meth:`live_out` cancels it before the guest moves."""
        self.aborting.add(migration.id)
        if migration.status in ("queued", "preparing"):
            return
        try:
            await self.runner.driver.live_migration_abort(migration.instance_uuid)
        except BaseException:
            self.aborting.discard(migration.id)
            raise

    async def force_complete_live(self, migration: Migration) -> None:
        """Make a running live migration of an instance here finish (2.22).
        Raises DriverError when none runs."""
        await self.runner.driver.live_migration_force_complete(migration.instance_uuid)

    async def arrive_live(self, r: Runner, op: Op) -> Outcome:
        """The target's half of a live migration: the guest runs here already."""
        await self.store.update_migration_status(int(op.params["migration_id"]), "completed")
        return Outcome()

    # -- confirm and revert across nodes ------------------------------------------
    async def confirm_remote(self, migration: Migration) -> None:
        """Ask the source to drop the files it kept (Nova: the source must be up)."""
        try:
            await self.call(migration.source_compute, "confirm",
                            {"migration": migration.id, "instance": migration.instance_uuid})
        except PeerError as exc:
            raise Conflict(f"Compute service of {migration.source_compute} is unavailable at "
                           f"this time: {exc}") from None

    async def drop_source(self, message: dict[str, Any]) -> dict[str, Any]:
        """The source's side of confirm: the kept copy goes."""
        uuid = str(message["instance"])
        try:
            await self.store.get_instance(uuid)
            raise Conflict("The instance is here: nothing to confirm")
        except InstanceNotFound:
            pass
        await self.runner.driver.destroy(uuid, self.specs.instance_dir(uuid))
        return {"state": "confirmed"}

    async def revert_out(self, r: Runner, op: Op, migration: Migration) -> Outcome:
        """Hand a resized instance back to its source, which starts the
        original; this node's copy goes."""
        op.touched_guest = True
        await r.driver.power_off(op.uuid, False, 0, 0)
        old = await self.specs.old_flavor(op.instance)
        try:
            row = await self._hand_back(op, migration, old)
        except PeerError as exc:
            log.warning("revert in doubt until the source answers", instance_id=op.uuid,
                        source=migration.source_compute, why=str(exc))
            self.unsettled[op.uuid] = op.instance
            return Outcome(released=True)
        if row is None:
            await self._unrevert(op.instance, migration)
            return Outcome(released=True)
        await r.driver.destroy(op.uuid, self.specs.instance_dir(op.uuid))
        await self.handover.release(op.uuid, row)
        return Outcome(released=True)

    async def _hand_back(self, op: Op, migration: Migration, old: Flavor) -> dict[str, Any] | None:
        exported = await self.handover.export(op.uuid)
        assert exported is not None
        params = {"arrived": True, "migration_id": migration.id, "action": "revert_resize"}
        meta = {**op.instance.system_metadata, PARAMS_KEY: json.dumps(params),
                "task_host": migration.source_compute}
        message = {"migration": migration.id, "instance": op.uuid, "source": self.host,
                   "revert": True, "exported": exported, "files": {},
                   "request_id": op.request_id,
                   "changes": {"host": migration.source_compute,
                               "generation": op.instance.generation + 1,
                               "flavor": flavor_to_json(old), "system_metadata": json.dumps(meta),
                               "task_state": T.RESIZE_REVERTING.value}}
        try:
            answer = await self.call(migration.source_compute, "adopt", message, timeout=120.0)
        except PeerError:
            return await self.settle(migration.source_compute, migration.id, op.uuid)
        return answer.get("row") if answer.get("state") == ADOPTED else None

    async def _settle_live(self, inst: Instance, migration: Migration, dest: str) -> bool:
        """A live migration a restart interrupted here.  libvirt carries a
        peer-to-peer migration on by itself, so the guest tells how it
        ended: still here, the target is told to drop its side (the task is
        cleared, the migration is error); gone, it runs there, and the target
        is asked to adopt the row.  False: ask again later."""
        uuid = inst.uuid
        async with self.runner.working.hold(uuid):
            power = await self.runner.driver.get_power_state(uuid)
            if power in (P.RUNNING, P.PAUSED):
                try:
                    row = await self.settle(dest, migration.id, uuid)
                except PeerError:
                    return False
                if row is not None:  # cannot be: the guest is here; keep asking
                    return False
                await self.store.update_migration_status(migration.id, "error")
                await self.store.write(uuid, Expect.task(T.MIGRATING),
                                       {"task_state": None, "power_state": power})
                log.info("interrupted live migration settled: still here", instance_id=uuid)
                return True
            op = Op(spec=BY_NAME["live_migrate"], instance=inst, ctx=RequestContext.admin(),
                    params={}, origin_vm=inst.vm_state, task=T.MIGRATING,
                    request_id=new_request_id())
            try:
                row = await self._hand_to(dest, op, migration, {}, {"action": "live_migrate"})
            except PeerError:
                return False
            if row is None:
                await self.store.write(uuid, Expect.task(T.MIGRATING),
                                       {"vm_state": V.ERROR, "task_state": None},
                                       fault=Fault(500, f"Live migration to {dest} was "
                                                   "interrupted and its outcome is unknown",
                                                   "", self.host))
                return True
            await self.runner.driver.destroy(uuid, self.specs.instance_dir(uuid))
            await self.handover.release(uuid, row)
            log.info("interrupted live migration settled: handed over", instance_id=uuid, to=dest)
            return True

    async def _unrevert(self, inst: Instance, migration: Migration) -> None:
        """A revert the source never took: the resized guest here starts
        again and the server is VERIFY_RESIZE, as before the revert."""
        old_vm = V(inst.system_metadata.get("old_vm_state", V.ACTIVE.value))
        await self.runner.driver.finish_migration(await self.specs.build(inst),
                                                  power_on=old_vm is not V.STOPPED)
        await self.store.update_migration_status(migration.id, "finished")
        await self.store.write(inst.uuid, Expect.task(T.RESIZE_REVERTING),
                               {"vm_state": V.RESIZED, "task_state": None,
                                "power_state": await self.runner.driver.get_power_state(
                                    inst.uuid)})

    async def arrive_revert(self, r: Runner, op: Op) -> Outcome:
        """The source's half of a revert: its untouched original starts again."""
        meta = dict(op.instance.system_metadata)
        old_vm = V(meta.pop("old_vm_state", V.ACTIVE.value))
        meta.pop("old_flavor", None)
        op.touched_guest = True
        await r.driver.finish_revert_migration(await self.specs.build(op.instance),
                                               power_on=old_vm is not V.STOPPED)
        await self.store.update_migration_status(int(op.params["migration_id"]), "reverted")
        return Outcome(vm_state=old_vm, changes={"system_metadata": meta})

    # -- evacuate ----------------------------------------------------------------
    async def source_down(self, host: str) -> bool:
        """Nova's rule plus gossip: the node is dead *and* forced down."""
        member = self.cluster.member(host)
        if member is not None and member.state is MemberState.ALIVE:
            raise Invalid(f"Compute service of {host} is still in use.")
        service = await self.store.get_service(host, "nova-compute")
        if service is None or not service.forced_down:
            # forced down a moment ago through another node: ask the others
            await self.cluster.pull_from_all()
            service = await self.store.get_service(host, "nova-compute")
        if service is None or not service.forced_down:
            raise Invalid(f"Compute service of {host} is not marked down; fence the node, "
                          f"then: openstack compute service set --down {host} nova-compute")
        return True

    async def evacuate(self, ctx: RequestContext, inst: Instance,
                       params: dict[str, Any]) -> None:
        """Rebuild a dead, fenced node's instance elsewhere (seed 000 §5)."""
        await self.source_down(inst.host)
        decision = await self.placement.for_move(inst.flavor, {}, self.cluster.members(),
                                                 frozenset({inst.host}), *_destination(params))
        if not decision.hosts:
            raise NoValidHost()
        failed: list[str] = []
        for host in decision.hosts[:self.config.scheduler.max_attempts]:
            message = {"instance": inst.uuid, "source": inst.host, "params": params,
                       "request_id": ctx.request_id, "user_id": ctx.user_id,
                       "project_id": ctx.project_id, "generation": inst.generation}
            try:
                if host == self.host:
                    await self.rebuild_here(message)
                else:
                    await self.call(host, "evacuate", message)
                return
            except (PeerError, ClaimFailed) as exc:
                failed.append(f"{host}: {exc}")
        raise NoValidHost(detail="; ".join(failed))

    async def rebuild_here(self, message: dict[str, Any]) -> dict[str, Any]:
        """Adopt a dead node's instance from the replicated record and
        rebuild it here (claimed first)."""
        uuid = str(message["instance"])
        replica = await self.handover.export_replica(uuid)
        if replica is None or replica["row"]["host"] != message["source"]:
            raise Conflict(f"Instance {uuid} is not on {message['source']} any more")
        inst = await self.store.get_replica(uuid)
        if inst.vm_state not in (V.ACTIVE, V.STOPPED, V.ERROR):
            raise Conflict(f"Cannot 'evacuate' instance {uuid} while it is in vm_state "
                           f"{inst.vm_state.value}")
        rid = str(message.get("request_id") or new_request_id())
        params = {"arrived": True, "action": "evacuate", **dict(message.get("params") or {})}
        meta = {**inst.system_metadata, PARAMS_KEY: json.dumps(params), "task_host": self.host}
        changes = {"host": self.host, "generation": inst.generation + 1,
                   "task_state": T.REBUILDING.value, "power_state": int(P.NOSTATE),
                   "availability_zone": self.config.DEFAULT.default_availability_zone,
                   "system_metadata": json.dumps(meta)}
        claims = self.runner_claims
        if claims is None:
            raise ClaimFailed(f"Claim failed on {self.host}: no claims")
        async with claims.claim(inst.flavor, 1):
            await self.handover.adopt(replica, changes)
        migration = await self.store.create_migration(
            uuid, "evacuation", "pre-migrating", str(message["source"]), self.host,
            inst.flavor.id, inst.flavor.id, user_id=message.get("user_id"),
            project_id=message.get("project_id"))
        params["migration_id"] = migration.id
        meta[PARAMS_KEY] = json.dumps(params)
        spec = BY_NAME["evacuate"]
        adopted = await self.store.write(
            uuid, Expect.task(T.REBUILDING), {"system_metadata": meta},
            action=ActionStart(spec.instance_action or spec.name, rid,
                               str(message.get("user_id") or inst.user_id), inst.project_id),
            event_start=EventStart(rid, spec.event or "evacuate", self.host))
        self._finish_here(adopted, rid)
        return {"state": ADOPTED}

    async def arrive_evacuate(self, r: Runner, op: Op) -> Outcome:
        """Rebuild from the image on this node; STOPPED stays STOPPED, and
        with ``target_state`` stopped (the API's from 2.95) any server but an
        ERROR one (which ends ACTIVE) ends STOPPED, as in Nova."""
        await r.step(op, T.REBUILD_BLOCK_DEVICE_MAPPING)
        await r.step(op, T.REBUILD_SPAWNING)
        op.touched_guest = True
        await r.driver.destroy(op.uuid, self.specs.instance_dir(op.uuid))
        await r.driver.spawn(await self.specs.build(op.instance))
        stop = op.origin_vm is V.STOPPED or (
            op.params.get("target_state") == V.STOPPED.value and op.origin_vm is not V.ERROR)
        if stop:
            await r.step(op, T.POWERING_OFF)
            await r.driver.power_off(op.uuid, True, self.config.DEFAULT.shutdown_timeout,
                                     self.config.compute.shutdown_retry_interval)
        await self.store.update_migration_status(int(op.params["migration_id"]), "done")
        return Outcome(vm_state=V.STOPPED if stop else None, changes={"launched_at": now()})

    async def drop_dead_preps(self) -> int:
        """Abort moves prepared here that will never arrive (their record says
        the move ended otherwise), so their claims are freed; returns how many."""
        dropped = 0
        for prep in await self.store.list_moves(PREPARED):
            migration = await self.store.get_migration(prep.migration_id)
            over = migration is not None and (
                migration.status in ("error", "failed", "cancelled", "reverted", "confirmed")
                or migration.dest_compute not in (None, self.host))
            if not over:
                continue
            if await self.store.settle_move(prep.migration_id, ABORTED) == ABORTED:
                if not await self.store.has_instance(prep.instance_uuid):
                    await asyncio.to_thread(shutil.rmtree,
                                            self.specs.instance_dir(prep.instance_uuid), True)
                log.info("prepared move dropped", migration=prep.migration_id,
                         status=migration.status if migration else None)
                dropped += 1
        # A file still arriving when its move was aborted may have made the
        # directory again after the abort removed it.
        for prep in await self.store.list_moves(ABORTED):
            inst_dir = self.specs.instance_dir(prep.instance_uuid)
            if prep.instance_uuid and inst_dir.exists() \
                    and not await self.store.has_instance(prep.instance_uuid) \
                    and prep.instance_uuid not in await self.kept_dirs():
                await asyncio.to_thread(shutil.rmtree, inst_dir, True)
        await self.store.purge_moves(older_than_days=1)
        return dropped

    # -- automatic evacuation --------------------------------------------------------
    async def auto_evacuate(self) -> list[str]:
        """``[cluster] auto_evacuate``: one node (the live one whose name sorts
        first) fences each node dead for ``auto_evacuate_after`` seconds with
        ``fence_command``; only when that reports success is the node forced
        down and its instances evacuated.  Returns the nodes evacuated."""
        c = self.config.cluster
        if not c.auto_evacuate or not c.fence_command or self.cluster.runner is None:
            return []
        members = self.cluster.members()
        alive = sorted(m.name for m in members if m.state is MemberState.ALIVE)
        if not alive or alive[0] != self.host:
            return []
        now = self.cluster.runner.now()
        done = []
        for member in members:
            if member.state is not MemberState.DEAD \
                    or now - member.state_changed_at < c.auto_evacuate_after:
                continue
            service = await self.store.get_service(member.name, "nova-compute")
            if service is None or not service.forced_down:
                if not await self._fence(member.name):
                    continue
                await self.store.set_forced_down(member.name, "nova-compute", True)
            await self._evacuate_all(member.name)
            done.append(member.name)
        return done

    async def _fence(self, host: str) -> bool:
        argv = [arg.replace("{host}", host) for arg in shlex.split(self.config.cluster.fence_command)]
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
            out, _ = await asyncio.wait_for(proc.communicate(), 300)
        except (OSError, TimeoutError) as exc:
            log.error("fence command failed to run", host=host, error=repr(exc))
            return False
        if proc.returncode != 0:
            log.error("fence command did not fence the node", host=host,
                      code=proc.returncode, output=out.decode(errors="replace")[-500:])
            return False
        log.warning("node fenced", host=host)
        return True

    async def _evacuate_all(self, host: str) -> None:
        rows = await self.store.db.fetch(
            "SELECT uuid FROM cluster_instances WHERE host = ? AND deleted = 0", (host,))
        for (uuid,) in rows:
            try:
                inst = await self.store.get_replica(str(uuid))
                if inst.vm_state not in (V.ACTIVE, V.STOPPED, V.ERROR):
                    continue
                await self.evacuate(RequestContext.admin(new_request_id()), inst, {})
                log.warning("instance evacuated automatically", instance_id=uuid, source=host)
            except NovadError as exc:
                log.error("automatic evacuation failed", instance_id=uuid, error=exc.message)

    # -- fencing stale copies ----------------------------------------------------------
    async def fence_stale(self) -> list[str]:
        """Destroy every copy held here whose record moved on to a higher
        generation on another node, and drop its row (seed 000 §5 step 4).
        A resize's source keeps its files until confirm or revert."""
        rows = await self.store.db.fetch(
            "SELECT i.uuid FROM instances i JOIN cluster_instances c ON c.uuid = i.uuid"
            " WHERE c.generation > i.generation")
        fenced = []
        for (uuid,) in rows:
            uuid = str(uuid)
            async with self.runner.working.hold(uuid):
                kept = await self.store.get_migration_for_instance(uuid, OPEN_SOURCE)
                keep = kept is not None and kept.source_compute == self.host \
                    and kept.migration_type in ("resize", "migration")
                log.warning("destroying a stale copy: the instance moved on", instance_id=uuid,
                            keep_files=keep)
                await self.runner.driver.destroy(uuid, None if keep
                                                 else self.specs.instance_dir(uuid))
                successor = await self.handover.export_replica(uuid)
                await self.handover.release(uuid, successor["row"] if successor else None)
                for m in await self.store.search_migrations(instance_uuid=uuid,
                                                            source_compute=self.host,
                                                            migration_type="evacuation"):
                    if m.status in ("accepted", "pre-migrating", "done"):
                        await self.store.update_migration_status(m.id, "completed")
            fenced.append(uuid)
        return fenced

    async def kept_dirs(self) -> set[str]:
        """Instances whose directories this node keeps without a row: a
        resize's source awaiting confirm, a move prepared here."""
        keep = {p.instance_uuid for p in await self.store.list_moves(PREPARED)}
        for m in await self.store.search_migrations(source_compute=self.host):
            if m.status in OPEN_SOURCE and m.dest_compute != self.host:
                keep.add(m.instance_uuid)
        return keep

    async def recover(self, inst: Instance) -> str | None:
        """Start-up recovery of an instance in the middle of a move; None
        when the ordinary recovery applies."""
        params = _params(inst)
        if params.get("arrived") and inst.task_state in (
                T.RESIZE_MIGRATED, T.RESIZE_FINISH, T.RESIZE_REVERTING):
            self._finish_here(inst, new_request_id())
            return "finish arrival"
        if inst.vm_state is V.RESIZED and inst.task_state is None:
            confirming = await self.store.get_migration_for_instance(inst.uuid, ("confirming",))
            if confirming is not None and confirming.source_compute != self.host:
                self.reconfirm.add(inst.uuid)  # the source is asked once membership runs
                return f"confirm once {confirming.source_compute} answers"
        if inst.task_state not in (T.RESIZE_MIGRATING, T.RESIZE_MIGRATED, T.RESIZE_REVERTING,
                                   T.MIGRATING):
            return None
        migration, peer = await self._in_flight(inst)
        if migration is None or peer in (None, self.host):
            return None
        # Membership has not started yet: the other node is asked once it
        # has (settle_unsettled); until then the task says a move is in flight.
        self.unsettled[inst.uuid] = inst
        return f"in doubt until {peer} answers"

    async def _in_flight(self, inst: Instance) -> tuple[Migration | None, str | None]:
        """The move ``inst`` is in the middle of, and the node that decides
        it: the destination of a move out, the source of a revert going back."""
        if inst.task_state is T.RESIZE_REVERTING:
            m = await self.store.get_migration_for_instance(inst.uuid, ("reverting", "reverted"))
            return m, m.source_compute if m is not None else None
        if inst.task_state is T.MIGRATING:
            m = await self.store.get_migration_for_instance(
                inst.uuid, ("queued", "preparing", "running"))
            return m, m.dest_compute if m is not None else None
        m = await self.store.get_migration_for_instance(
            inst.uuid, ("pre-migrating", "migrating", "post-migrating"))
        return m, m.dest_compute if m is not None else None

    async def settle_unsettled(self) -> int:
        """Settle the moves a restart interrupted on this, their source: ask
        each destination whether it adopted the instance (release it here)
        or not (roll back here).  A destination that does not answer is
        asked again next time, unless it is dead and forced down (fenced):
        then nothing runs there, and the rollback is safe.  Returns how
        many were settled."""
        settled = 0
        for uuid in list(self.reconfirm):
            migration = await self.store.get_migration_for_instance(uuid, ("confirming",))
            if migration is None:
                self.reconfirm.discard(uuid)
                continue
            if not self.is_alive(migration.source_compute) or self.rerun is None:
                continue
            self.reconfirm.discard(uuid)
            await self.rerun(await self.store.get_instance(uuid), "confirm_resize")
            settled += 1
        for uuid, inst in list(self.unsettled.items()):
            migration, dest = await self._in_flight(inst)
            if migration is None or dest is None:
                del self.unsettled[uuid]
                continue
            if inst.task_state is T.MIGRATING:
                if await self._settle_live(inst, migration, dest):
                    del self.unsettled[uuid]
                    settled += 1
                continue
            try:
                row = await self.settle(dest, migration.id, uuid)
            except PeerError:
                service = await self.store.get_service(dest, "nova-compute")
                if self.is_alive(dest) or service is None or not service.forced_down:
                    continue
                row = None
            del self.unsettled[uuid]
            reverting = inst.task_state is T.RESIZE_REVERTING
            async with self.runner.working.hold(uuid):
                if row is not None:
                    await self.runner.driver.destroy(
                        uuid, self.specs.instance_dir(uuid) if reverting else None)
                    await self.handover.release(uuid, row)
                    log.info("interrupted move settled: handed over", instance_id=uuid, to=dest)
                elif reverting:
                    await self._unrevert(inst, migration)
                    log.info("interrupted revert settled: still resized here", instance_id=uuid)
                elif self.rollback is not None:
                    await self.rollback(inst)
                    log.info("interrupted move settled: rolled back", instance_id=uuid, to=dest)
            settled += 1
        return settled


def _destination(params: dict[str, Any]) -> tuple[str | None, str | None]:
    """A move's named host as (forced, requested): forced skips the
    scheduler's checks, requested must pass them (2.29/2.30's ``force``)."""
    host = params.get("host")
    if not host:
        return None, None
    return (host, None) if params.get("force", True) else (None, host)


def _read_hashed(f: Any, digest: Any) -> bytes:
    block: bytes = f.read(_CHUNK)
    digest.update(block)
    return block


def _write_hashed(f: Any, blocks: list[bytes], digest: Any) -> None:
    for block in blocks:
        f.write(block)
        digest.update(block)


def _place_files(inst_dir: Path, files: dict[str, str]) -> None:
    """Move the checked incoming files into the instance directory (blocks);
    MoveFailed when one is missing or its checksum differs."""
    incoming = inst_dir / INCOMING
    for name, digest in files.items():
        got = incoming / f"{name}.blake3"
        if not (incoming / name).is_file() or not got.is_file() \
                or got.read_text().strip() != digest:
            raise MoveFailed(f"File {name} did not arrive whole")
    for name in files:
        os.replace(incoming / name, inst_dir / name)
    shutil.rmtree(incoming, ignore_errors=True)


__all__ = ["FILE_PATH", "MOVE_HEADER", "Mover", "NotAuthenticated"]
