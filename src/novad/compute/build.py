"""Builds the compute stack (service, runner, operations, power sync) from its parts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from novad.compute.claims import Claims
from novad.compute.operations import Operations
from novad.compute.power_sync import PowerSync
from novad.compute.quotas import Quotas
from novad.compute.runner import FinishHook, Runner
from novad.compute.service import ComputeService, ConsoleUrlFactory
from novad.compute.service_record import ServiceRecord
from novad.compute.specs import ImageStore, SpecBuilder
from novad.config import Config
from novad.context import RequestContext
from novad.drivers.base import Driver
from novad.states.machine import Lifecycle
from novad.store import Store
from novad.store.models import Flavor
from novad.supervisor import Supervisor

DEFAULT_FLAVORS = (  # seed 001's table; ids as devstack creates them
    Flavor(id="42", name="m1.nano", vcpus=1, memory_mb=64, root_gb=0),
    Flavor(id="1", name="m1.tiny", vcpus=1, memory_mb=512, root_gb=1),
    Flavor(id="2", name="m1.small", vcpus=1, memory_mb=2048, root_gb=20),
    Flavor(id="3", name="m1.medium", vcpus=2, memory_mb=4096, root_gb=40),
    Flavor(id="4", name="m1.large", vcpus=4, memory_mb=8192, root_gb=80),
    Flavor(id="5", name="m1.xlarge", vcpus=8, memory_mb=16384, root_gb=160),
)



def build_compute(config: Config, store: Store, driver: Driver, images: ImageStore,
             supervisor: Supervisor, stopped_event_delay: float,
             on_finish: FinishHook | None = None,
             console_url: ConsoleUrlFactory | None = None,
             project_exists: Callable[[str], Awaitable[bool]] | None = None,
             record: ServiceRecord | None = None
             ) -> tuple[ComputeService, PowerSync]:
    """The compute service and its power sync for one node.  ``on_finish``
    runs after each action's successful end; ``console_url`` makes console URLs;
    ``project_exists`` checks project ids given to os-quota-sets; ``record``
    (loaded) says whether new instances may be placed here (None: always)."""
    host = config.host
    specs = SpecBuilder(store, images, config.state_dir, host)

    async def other_hosts() -> list[str]:
        return []  # a single node; the cluster (Phase 5) adds members here

    ops = Operations(specs, config.DEFAULT.shutdown_timeout,
                     config.compute.shutdown_retry_interval,
                     config.libvirt.wait_soft_reboot_seconds,
                     config.DEFAULT.shelved_offload_time, other_hosts,
                     record.schedulable if record is not None else lambda: True,
                     host=host, zone=config.DEFAULT.default_availability_zone)
    runner = Runner(store, driver, Lifecycle(), host, ops.table(), on_finish)
    compute = ComputeService(config, store, runner, specs, supervisor,
                             host_is_up=lambda h: h == host, console_url_factory=console_url,
                             quotas=Quotas(store, config.quota, project_exists),
                             claims=Claims(config, store, driver))
    compute.operations = ops

    async def act(ctx: RequestContext, uuid: str, action: str) -> object:
        return await compute.act(ctx, uuid, action, {})

    power_sync = PowerSync(store, driver.get_power_state, host, act, compute.force_stop,
                           stopped_event_delay)
    return compute, power_sync


