"""Wiring only: config → driver → store → services → routes → supervisor.

Start-up order matters for "bad input stops start-up and writes nothing":
the configuration is validated and the hypervisor reached *before* the
store is opened or the state directory created.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import structlog
from aiohttp import web
from aiohttp.typedefs import Middleware

from novad import systemd
from novad.api.app import build_api
from novad.api import forward
from novad.api.common import Route, context, json_response
from novad.api.compute import routes as compute_routes
from novad.api import cluster as cluster_api
from novad.cluster.auth import KeyFileError, load_key
from novad.cluster.replication import CLUSTER
from novad.cluster.service import ClusterService, JoinFailed, JoinRefused
from novad.compute.build import DEFAULT_FLAVORS, build_compute
from novad.compute.flavors import FlavorService
from novad.compute.hosts import Hosts
from novad.compute.keypairs import KeypairService
from novad.compute.periodic import PeriodicJobs
from novad.compute.moves import Mover
from novad.compute.placement import Decision, Placement, owner_of
from novad.compute.power_sync import PowerSync
from novad.compute.recovery import StartupRecovery
from novad.compute.server_groups import ServerGroupService
from novad.compute.service import ComputeService
from novad.compute.service_record import ServiceRecord
from novad.config import Config
from novad.console.proxy import ConsoleProxy
from novad.console.service import ConsoleService, proxy_listen
from novad.console.static import StaticFiles, find_novnc
from novad.console.tokens import CONSOLE, TokenStore
from novad.context import RequestContext
from novad.demo import register_demo_images, wants_demo
from novad.drivers.base import Driver, HostResources
from novad.drivers.libvirt import LibvirtDriver
from novad.errors import NoValidHost, NovadError
from novad.identity import routes as identity_routes
from novad.identity.schema import IDENTITY
from novad.identity.service import IdentityService
from novad.images.routes import routes as image_routes
from novad.images.schema import IMAGES
from novad.images.service import ImageService
from novad.nodeid import node_id, save_node_id
from novad.store import COMPUTE, Database, Store
from novad.supervisor import Supervisor

log = structlog.get_logger("novad")

@dataclass
class Node:
    """Everything one running novad holds; built by :func:`start_node`."""

    config: Config
    db: Database
    store: Store
    driver: Driver
    identity: IdentityService
    images: ImageService
    compute: ComputeService
    power_sync: PowerSync
    supervisor: Supervisor
    started_at: float
    ready: bool = False
    consoles: ConsoleService | None = None
    service: ServiceRecord | None = None
    cluster: ClusterService | None = None
    placement: Placement | None = None
    mover: Mover | None = None

    @property
    def host(self) -> str:
        """This node's name."""
        return self.compute.host

    def public_url(self) -> str:
        """The base URL clients use."""
        if self.config.api.public_endpoint:
            return self.config.api.public_endpoint.rstrip("/")
        host, port = self.config.listen_addr
        return f"http://{host}:{port}"

    async def usage(self, project_id: str) -> tuple[int, int, int]:
        """Instances, cores and RAM a project uses."""
        return await self.store.count_usage(project_id)

    async def resources(self) -> HostResources:
        """The hypervisor's capacity and use."""
        return await self.driver.host_resources()

    @functools.cached_property
    def hosts(self) -> Hosts:
        """Every compute host of the cluster as this node sees it."""
        zone = self.config.DEFAULT.default_availability_zone
        cluster = self.cluster
        if cluster is None:
            return Hosts(self.store, self.host, zone, self.resources, self.service)

        def clock() -> float:  # membership's clock, which its last_seen times are on
            return cluster.runner.now() if cluster.runner is not None else time.monotonic()
        return Hosts(self.store, self.host, zone, self.resources, self.service,
                     cluster.members, clock)


async def connect_driver(config: Config) -> Driver:
    """Reach the hypervisor; DriverError (one clear line) if it is unreachable."""
    driver = LibvirtDriver(config.libvirt.connection_uri, config.libvirt.virt_type,
                           config.vnc.vncserver_listen, config.host,
                           instances_path=config.state_dir / "instances",
                           node_id=node_id(config.state_dir),
                           vnc_password=config.vnc.vnc_password or None,
                           ephemeral_format=config.DEFAULT.default_ephemeral_format)
    await driver.start()
    return driver


SCHEMAS = (COMPUTE, IDENTITY, IMAGES, CONSOLE, CLUSTER)
"""Every component's schema in the node's one database."""


async def start_node(config: Config, driver: Driver | None = None,
                     stopped_event_delay: float = 15.0) -> Node:
    """Open everything, recover, start the background jobs; the node is ready."""
    driver = driver or await connect_driver(config)
    state = config.state_dir
    state.mkdir(parents=True, exist_ok=True)
    save_node_id(state)
    key = _cluster_key(config)
    db = await Database.open(state / "novad.sqlite")
    await db.migrate(SCHEMAS)
    store = Store(db)
    cluster = ClusterService(config, db, node_id(state), key)
    await cluster.start()
    identity = IdentityService(db, config, key)
    images = ImageService(db, state / "images")
    images.peer_data = cluster.image_data  # a no-op while no peer is alive
    await images.start()
    supervisor = Supervisor()
    await supervisor.start()
    consoles = ConsoleService(config, store, TokenStore(db), driver.get_console, config.host)
    service = ServiceRecord(store, config.host)
    await service.load()
    compute, power_sync = build_compute(config, store, driver, images, supervisor,
                                        stopped_event_delay, on_finish=consoles.on_action_finished,
                                        console_url=consoles.console_url,
                                        project_exists=identity.project_exists, record=service)
    node = Node(config, db, store, driver, identity, images, compute, power_sync, supervisor,
                time.time(), consoles=consoles, service=service, cluster=cluster,
                placement=Placement(config, store, images))
    mover = _mover(node, cluster)
    if cluster.clustered:
        # A node that never synced waits for the cluster's records: it must
        # create no admin, flavors or demo images of its own.  One that holds
        # instances waits too (a while): it must learn which of them were
        # evacuated while it was away before it starts anything.
        fresh = not await identity.has_users()
        holds = bool(await store.list_instances(host=config.host))
        if not await cluster.catch_up(wait=fresh) and holds and config.cluster.rejoin_wait > 0:
            try:
                await asyncio.wait_for(cluster.catch_up(wait=True), config.cluster.rejoin_wait)
            except TimeoutError:
                log.warning("no member answered; starting without the cluster's records",
                            waited=config.cluster.rejoin_wait)
    for uuid in await mover.fence_stale():  # records held from before a crash count too
        log.warning("stale copy destroyed at start-up", instance_id=uuid)
    await service.auto_enable()  # libvirt answered: a disable for its loss is over
    driver.watch_connection(service.auto_disable, service.auto_enable)
    await _first_start(node)
    if wants_demo(config.libvirt.connection_uri):
        await _register_demo(node)
    done = await StartupRecovery(store, compute.runner, compute.specs, compute.host,
                                 mover=mover).run()
    log.info("recovery finished", instances=len(done))
    _schedule(node)
    return node


def _mover(node: Node, cluster: ClusterService) -> Mover:
    """Moves between nodes, wired into the compute stack; stale copies are
    fenced whenever replication brings word that one moved on."""
    compute = node.compute
    assert node.placement is not None
    mover = Mover(node.config, node.store, cluster, node.placement, compute.specs,
                  compute.runner, node.supervisor)
    mover.runner_claims = compute.claims
    compute.mover = mover
    compute.operations.mover = mover

    def lost() -> None:
        cluster.replicator.lost.clear()
        node.supervisor.spawn("fence-stale", mover.fence_stale)
    cluster.replicator.on_lost = lost
    node.mover = mover
    return mover


def _cluster_key(config: Config) -> bytes:
    """The cluster key; a joiner must have been given it (NovadError otherwise)."""
    try:
        return load_key(config.cluster_key_path, create=not config.cluster.seeds)
    except KeyFileError as exc:
        raise NovadError(f"cluster key: {exc}") from None


async def join_cluster(node: Node) -> None:
    """Start membership once the API serves (peers answer on it), then
    the cluster's background jobs; the node is ready afterwards."""
    cluster = node.cluster
    if cluster is not None:
        try:
            await cluster.join()
        except JoinRefused as exc:
            raise NovadError(f"cannot join the cluster: {exc}") from None
        except JoinFailed as exc:
            log.warning("no seed answered the join; membership keeps trying", why=str(exc))
        cluster.schedule(node.supervisor.every, node.supervisor.run_forever)
        node.supervisor.every("cluster-meta", 2.0, functools.partial(_gossip_meta, node))
        if node.mover is not None:
            node.supervisor.every("moves-settle", 2.0, node.mover.settle_unsettled)
            node.supervisor.every("moves-gc", 5.0, node.mover.drop_dead_preps)
        if node.config.cluster.auto_evacuate and node.mover is not None:
            node.supervisor.every("auto-evacuate", 5.0, node.mover.auto_evacuate, run_now=False)
    node.ready = True


async def _gossip_meta(node: Node) -> None:
    """What other members schedule with: resources, zone, service state."""
    if node.cluster is None:
        return
    res = await node.driver.host_resources()
    # used as claimed (every live instance's flavor), not as the guests use it
    vcpus_used, ram_used, disk_used = await node.compute.claims.used() \
        if node.compute.claims is not None else (res.vcpus_used, res.memory_mb_used,
                                                 res.local_gb_used)
    service = node.service
    if service is not None:
        await service.load()  # an admin on another node may have changed it
    d = node.config.DEFAULT
    meta = {
        "az": node.config.DEFAULT.default_availability_zone,
        "hypervisor_type": res.hypervisor_type,
        "enabled": service.schedulable() if service is not None else True,
        "ratios": {"cpu": d.cpu_allocation_ratio, "ram": d.ram_allocation_ratio,
                   "disk": d.disk_allocation_ratio,
                   "reserved_host_memory_mb": d.reserved_host_memory_mb,
                   "reserved_host_disk_mb": d.reserved_host_disk_mb,
                   "reserved_host_cpus": d.reserved_host_cpus},
        "resources": {"vcpus": res.vcpus, "vcpus_used": vcpus_used,
                      "memory_mb": res.memory_mb, "memory_mb_used": ram_used,
                      "local_gb": res.local_gb, "local_gb_used": disk_used,
                      "running_vms": res.running_vms},
    }
    if {k: v for k, v in node.cluster.meta.items() if k != "at"} != meta:
        node.cluster.update_meta({**meta, "at": time.time()})  # when it was sampled


async def _first_start(node: Node) -> None:
    """Flavors, admin project/user/roles and clouds.yaml, once."""
    path = await node.identity.bootstrap(node.config.state_dir, node.public_url())
    if path is None:
        return
    if await node.store.count_flavors() == 0:
        for flavor in DEFAULT_FLAVORS:
            await node.store.create_flavor(flavor)
    print(f"novad: admin credentials written to {path}", flush=True)


async def _register_demo(node: Node) -> None:
    """The demo guest's images, owned by the admin project (see :mod:`novad.demo`)."""
    [admin] = await node.identity.list_projects(RequestContext.admin(), name="admin")
    await register_demo_images(node.images, admin.id, node.config.demo_dir)


def _schedule(node: Node) -> None:
    defaults = node.config.DEFAULT
    sup = node.supervisor
    jobs = PeriodicJobs(node.compute)
    if defaults.sync_power_state_interval >= 0:
        sup.every("power-sync", defaults.sync_power_state_interval or 60, node.power_sync.sweep)
    sup.run_forever("lifecycle-events", lambda: node.power_sync.consume(node.driver.events))
    if defaults.resize_confirm_window > 0:
        sup.every("resize-auto-confirm", 60, jobs.confirm_resizes, run_now=False)
    if defaults.shelved_offload_time > 0:
        sup.every("shelved-offload", defaults.shelved_poll_interval, jobs.offload_shelved,
                  run_now=False)
    if defaults.reclaim_instance_interval > 0:
        sup.every("reclaim", defaults.reclaim_instance_interval, jobs.reclaim, run_now=False)
    if node.consoles is not None:
        sup.every("console-token-purge", defaults.instance_delete_interval,
                  node.consoles.purge_expired, run_now=False)
    sup.every("revoked-token-purge", defaults.instance_delete_interval,
              node.identity.purge_revoked, run_now=False)
    cache = node.config.image_cache
    if cache.manager_interval > 0 and cache.remove_unused_base_images:
        async def age_image_cache() -> None:
            await node.driver.age_image_cache(cache.remove_unused_original_minimum_age_seconds)
        sup.every("image-cache", cache.manager_interval, age_image_cache, run_now=False)
    interval = systemd.watchdog_interval()
    if interval:
        async def ping() -> None:
            systemd.notify("WATCHDOG=1")
        sup.every("watchdog", interval, ping)


async def stop_node(node: Node) -> None:
    """Stop jobs (operations get a grace period), close store and driver."""
    node.ready = False
    if node.cluster is not None:
        await node.cluster.stop()
    await node.supervisor.stop()
    await node.db.close()
    await node.driver.close()


def _error_body(request: web.Request, exc: NovadError) -> dict[str, object]:
    if request.path.startswith("/identity"):
        return identity_routes.keystone_error_body(exc)
    return exc.body()


def build_app(node: Node) -> web.Application:
    """The HTTP application of a started node."""
    async def healthz(request: web.Request) -> web.StreamResponse:
        status = 200 if node.ready else 503
        return json_response({"status": "ok" if node.ready else "starting",
                              "host": node.host}, status)

    routes: list[Route] = [Route("GET", "/healthz", healthz, public=True,
                                 summary="Readiness probe", tag="health")]
    routes += identity_routes.routes(node.identity, node.config)
    routes += image_routes(node.images, node.config)
    routes += compute_routes(node.compute, node.config, node.images, node,
                             flavors=FlavorService(node.store), keypairs=KeypairService(node.store),
                             consoles=node.consoles, quotas=node.compute.quotas,
                             usage=node.store, migrations=node.store,
                             server_groups=ServerGroupService(node.store))
    inner = []
    if node.cluster is not None:
        routes += cluster_api.routes(node.cluster, node.images, node.mover)
        inner.append(_forwarding(node, node.cluster))
    return build_api(node.config, routes, node.identity.validate_token, _error_body, inner)


def _forwarding(node: Node, cluster: ClusterService) -> Middleware:
    """Requests about other nodes' instances go to their owner; creates go
    where the scheduler says."""
    placement = node.placement or Placement(node.config, node.store, node.images)

    async def place(request: web.Request, body: bytes) -> Decision:
        try:
            parsed = json.loads(body)
        except ValueError:
            raise NoValidHost("unreadable create request") from None
        return await placement.candidates(context(request), parsed, cluster.members())

    return forward.middleware(cluster, functools.partial(owner_of, node.store), place,
                              node.config.scheduler.max_attempts)


@contextlib.asynccontextmanager
async def running(config: Config, driver: Driver | None = None,
                  stopped_event_delay: float = 15.0) -> AsyncIterator[tuple[Node, str]]:
    """A started node serving HTTP on ``config``'s listen address (tests, benchmarks).

    Yields the node and its base URL; a port of 0 picks a free one.
    """
    node = await start_node(config, driver, stopped_event_delay)
    runner = web.AppRunner(build_app(node), access_log=None, handle_signals=False)
    await runner.setup()
    host, port = config.listen_addr
    site = web.TCPSite(runner, host, port, reuse_address=True)
    await site.start()
    bound = runner.addresses[0][1] if runner.addresses else port
    try:
        await join_cluster(node)
        async with _console_proxy(node):
            yield node, f"http://{host}:{bound}"
    finally:
        await runner.cleanup()
        await stop_node(node)


@contextlib.asynccontextmanager
async def _console_proxy(node: Node) -> AsyncIterator[None]:
    """The noVNC proxy while the API serves (when ``[vnc] enabled``)."""
    if node.consoles is None or not node.config.vnc.enabled:
        yield
        return
    static = StaticFiles(find_novnc(node.config.vnc.novnc_path))
    if static.root is None:
        log.warning("noVNC not found: console pages are 404 (run scripts/setup)")
    proxy = ConsoleProxy(node.consoles, node.config, static)
    await proxy.start(*proxy_listen(node.config), fallback=not node.config.vnc.novncproxy_listen)
    try:
        yield
    finally:
        await proxy.stop()


GC_THRESHOLDS = (50_000, 20, 100)
"""The cyclic collector's thresholds in the daemon (CPython's are 700, 10, 10)."""


def settle_gc() -> None:
    """Tune the cyclic garbage collector for a long-running daemon.

    Everything alive once the node is up (modules, routes, schemas, the
    state machine) is moved out of the collector's sight with
    ``gc.freeze()``, and young objects are collected less often.  With the
    defaults, building a 1,000-server listing set off full collections that
    took a sixth of such requests from about 20 ms to about 60 ms (a p99
    of 65-110 ms in ``scripts/bench/api.py``); with these, none did.
    Memory is still freed by reference counting as before; only cycles
    wait a little longer.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


async def serve(config: Config) -> None:
    """Run until SIGTERM/SIGINT: the ``novad serve`` command."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    import signal
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with running(config) as (node, url):
        settle_gc()
        systemd.notify("READY=1")
        log.info("novad ready", url=url, host=node.host, state_dir=str(config.state_dir),
                 libvirt=config.libvirt.connection_uri)
        await stop.wait()
        systemd.notify("STOPPING=1")
        log.info("novad stopping")

