"""The one driver contract, in novad's own words.

A driver turns an :class:`InstanceSpec` into a guest and reports what the
guest is doing.  No hypervisor object ever leaves a driver.  Every method is
a coroutine: blocking hypervisor calls run in a thread inside the driver.

Unless a method says otherwise it is idempotent in the sense that matters
for crash recovery: calling it again after a crash half-way through brings
the guest to the state the method promises (``destroy`` of a missing guest
succeeds, ``power_off`` of a stopped guest succeeds, ...).

Errors: a missing guest raises :class:`novad.errors.DriverError` subclass
:class:`GuestNotFound`; any hypervisor failure raises
:class:`novad.errors.DriverError`; an operation the hypervisor cannot do
raises :class:`novad.errors.NotImplementedByDriver`.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from novad.errors import DriverError, UnsupportedRescueBus, UnsupportedRescueDevice
from novad.states.enums import PowerState
from novad.strutils import bool_from_string


class GuestNotFound(DriverError):
    """The hypervisor has no guest for this instance."""

    def __init__(self, instance_id: str) -> None:
        super().__init__(f"Instance {instance_id} has no guest on this hypervisor.")


class RebootKind(enum.StrEnum):
    """Soft (ACPI, falling back to hard) or hard (destroy and start)."""

    SOFT = "SOFT"
    HARD = "HARD"


class LifecycleEvent(enum.StrEnum):
    """Guest lifecycle events, in Nova's vocabulary."""

    STARTED = "started"
    STOPPED = "stopped"
    PAUSED = "paused"
    RESUMED = "resumed"
    SUSPENDED = "suspended"


@dataclass(frozen=True)
class FlavorSpec:
    """The sizes a guest is built with."""

    flavor_id: str
    name: str
    vcpus: int
    memory_mb: int
    root_gb: int
    ephemeral_gb: int = 0
    swap_mb: int = 0
    extra_specs: dict[str, str] = field(default_factory=dict)


class RescueDevice(enum.StrEnum):
    """What a stable device rescue attaches the rescue image as
    (the image property ``hw_rescue_device``)."""

    DISK = "disk"
    CDROM = "cdrom"
    FLOPPY = "floppy"


class DiskBus(enum.StrEnum):
    """A bus a guest disk sits on (``hw_rescue_bus``): the buses Nova's
    libvirt driver allows for QEMU guests."""

    VIRTIO = "virtio"
    SCSI = "scsi"
    USB = "usb"
    IDE = "ide"
    SATA = "sata"
    FDC = "fdc"


def rescue_options(properties: Mapping[str, object]
                   ) -> tuple[RescueDevice | None, DiskBus | None]:
    """``hw_rescue_device`` and ``hw_rescue_bus`` of a rescue image, checked.

    Either one set asks for a stable device rescue; neither is Nova's legacy
    rescue.  Raises UnsupportedRescueDevice / UnsupportedRescueBus (400) for
    a value Nova does not know, and for a pairing libvirt refuses: a floppy
    sits only on the fdc bus, and the fdc bus carries only floppies.
    """
    raw_device, raw_bus = properties.get("hw_rescue_device"), properties.get("hw_rescue_bus")
    try:
        device = RescueDevice(str(raw_device)) if raw_device is not None else None
    except ValueError:
        raise UnsupportedRescueDevice(str(raw_device)) from None
    try:
        bus = DiskBus(str(raw_bus)) if raw_bus is not None else None
    except ValueError:
        raise UnsupportedRescueBus(str(raw_bus)) from None
    if bus is not None and (device is RescueDevice.FLOPPY) != (bus is DiskBus.FDC):
        raise UnsupportedRescueBus(bus, f"for a {device or RescueDevice.DISK} rescue device")
    return device, bus


@dataclass(frozen=True)
class ImageSpec:
    """The boot image: a local file plus the properties that shape the guest.

    ``path`` is None when the image service has no data (the test driver
    then boots an empty disk).  ``kernel_path``/``ramdisk_path`` are set for
    the uec layout (direct kernel boot).
    """

    image_id: str
    path: Path | None = None
    disk_format: str = "qcow2"
    kernel_path: Path | None = None
    ramdisk_path: Path | None = None
    min_disk_gb: int = 0
    min_ram_mb: int = 0
    properties: dict[str, str] = field(default_factory=dict)
    rescue_device: RescueDevice | None = None
    """Set only on a rescue image (see :func:`rescue_options`): attach it as
    this device, leaving the instance's own disks where they are."""
    rescue_bus: DiskBus | None = None
    """Set only on a rescue image: the bus for the rescue device.  With
    either field set the driver does a stable device rescue and fills in the
    other with its defaults; with neither, the legacy rescue."""

    @property
    def stable_rescue(self) -> bool:
        """A rescue with this image keeps the instance's disks in place."""
        return self.rescue_device is not None or self.rescue_bus is not None

    @property
    def guest_agent(self) -> bool:
        """The image enables the QEMU guest agent (``hw_qemu_guest_agent``,
        read as Nova reads a boolean property)."""
        return bool_from_string(self.properties.get("hw_qemu_guest_agent", ""))

    @property
    def admin_user(self) -> str:
        """The guest's administrator, as Nova picks it: ``os_admin_user``,
        else Administrator on Windows and root elsewhere."""
        if user := self.properties.get("os_admin_user"):
            return user
        return "Administrator" if self.properties.get("os_type") == "windows" else "root"


@dataclass(frozen=True)
class InstanceSpec:
    """Everything a driver needs to build or rebuild one guest."""

    instance_id: str
    name: str
    project_id: str
    user_id: str
    flavor: FlavorSpec
    image: ImageSpec
    instance_dir: Path
    user_data: bytes | None = None
    key_data: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    config_drive: bool = False
    key_name: str | None = None
    availability_zone: str = "nova"
    nic: bool = True
    """Give the guest its user-mode network interface; False for a server
    created with ``networks: none``."""
    hostname: str | None = None
    """The hostname the user chose (2.90); None: the driver derives one from ``name``."""
    files: tuple[tuple[str, bytes], ...] = ()
    """Files for the guest (``personality``, below microversion 2.57): (path
    in the guest, contents), in the order asked.  A driver hands them over
    on the config drive (``config_drive`` is then true), the guest's agent
    (cloud-init) writes them; a driver never writes into the guest's disk."""


@dataclass(frozen=True)
class ConsoleInfo:
    """Where a guest's VNC server listens."""

    host: str
    port: int


@dataclass(frozen=True)
class HostResources:
    """This node's capacity and use, for the scheduler and os-hypervisors."""

    hypervisor_type: str
    hypervisor_hostname: str
    vcpus: int
    vcpus_used: int
    memory_mb: int
    memory_mb_used: int
    local_gb: int
    local_gb_used: int
    running_vms: int


@dataclass(frozen=True)
class GuestEvent:
    """One lifecycle event of a guest novad manages."""

    instance_id: str
    event: LifecycleEvent


TaskCallback = Callable[[str], Awaitable[None]]
"""Called by ``snapshot`` with ``"image_pending_upload"`` then ``"image_uploading"``."""


@dataclass(frozen=True)
class LiveMigrateData:
    """What a live migration's destination tells its source (Nova's
    ``LibvirtLiveMigrateData``, cut down), from ``pre_live_migration``:
    where the guest's files are there and which node owns it there."""

    instance_dir: Path
    node_id: str | None = None


@dataclass(frozen=True)
class CpuReading:
    """One virtual CPU: its id, CPU time (ns) and use (percent), None when
    the hypervisor does not say."""

    id: int
    time: int | None = None
    utilisation: int | None = None


@dataclass(frozen=True)
class NicReading:
    """One virtual NIC's counters (None: not reported)."""

    device: str
    mac_address: str | None = None
    rx_octets: int | None = None
    rx_errors: int | None = None
    rx_drop: int | None = None
    rx_packets: int | None = None
    tx_octets: int | None = None
    tx_errors: int | None = None
    tx_drop: int | None = None
    tx_packets: int | None = None


@dataclass(frozen=True)
class DiskReading:
    """One virtual disk's counters (None: not reported)."""

    device: str
    read_bytes: int | None = None
    read_requests: int | None = None
    write_bytes: int | None = None
    write_requests: int | None = None
    errors_count: int | None = None


@dataclass(frozen=True)
class GuestDiagnostics:
    """What the hypervisor says about a guest now (server diagnostics)."""

    power_state: PowerState
    memory_max_kib: int
    memory_used_kib: int
    cpus: tuple[CpuReading, ...] = ()
    nics: tuple[NicReading, ...] = ()
    disks: tuple[DiskReading, ...] = ()
    memory_stats: Mapping[str, int] = field(default_factory=dict)
    """The balloon's statistics (KiB), by libvirt's names."""


@dataclass(frozen=True)
class MigrationProgress:
    """One reading of a running live migration (the hypervisor's job
    statistics): bytes, except ``elapsed_ms`` and ``dirty_rate`` (pages a
    second).  ``iteration`` counts the passes over memory."""

    elapsed_ms: int = 0
    data_total: int = 0
    data_processed: int = 0
    data_remaining: int = 0
    memory_total: int = 0
    memory_processed: int = 0
    memory_remaining: int = 0
    disk_total: int = 0
    disk_processed: int = 0
    disk_remaining: int = 0
    dirty_rate: int = 0
    iteration: int = 0


ProgressCallback = Callable[[MigrationProgress], Awaitable[None]]
"""Called by ``live_migrate`` with each reading while the migration runs."""


@runtime_checkable
class Driver(Protocol):
    """What a hypervisor driver must do.  See the module docstring for errors."""

    async def start(self) -> None:
        """Connect to the hypervisor.  Raises DriverError if it is unreachable."""

    async def close(self) -> None:
        """Disconnect; guests keep running."""

    async def spawn(self, spec: InstanceSpec) -> None:
        """Create the instance directory and disks, define and start the guest."""

    async def destroy(self, instance_id: str, instance_dir: Path | None) -> None:
        """Stop and undefine the guest (with managed save and snapshot
        metadata) and remove ``instance_dir``.  Idempotent; a missing guest is
        not an error."""

    async def power_off(self, instance_id: str, clean: bool, timeout: float, retry_interval: float) -> None:
        """Stop the guest: ACPI shutdown re-sent every ``retry_interval``
        within ``timeout`` when ``clean``, then destroy.  A stopped guest is
        left alone."""

    async def power_on(self, spec: InstanceSpec) -> None:
        """Start the guest the hard-reboot way: destroy, regenerate XML,
        define, create."""

    async def reboot(self, spec: InstanceSpec, kind: RebootKind, soft_timeout: float) -> None:
        """Soft: ACPI shutdown, wait up to ``soft_timeout`` for the guest to go
        down and start it again, else fall back to hard.  Hard: as power_on."""

    async def pause(self, instance_id: str) -> None:
        """Freeze the guest in memory (domain suspend)."""

    async def unpause(self, instance_id: str) -> None:
        """Thaw a paused guest."""

    async def suspend(self, instance_id: str) -> None:
        """Save the guest's memory to disk and stop it (managed save)."""

    async def resume(self, spec: InstanceSpec) -> None:
        """Start a suspended guest from its managed save."""

    async def snapshot(self, instance_id: str, target: Path, update_task: TaskCallback) -> str:
        """Write the guest's root disk as an image file at ``target``;
        returns its disk format (``qcow2`` or ``raw``)."""

    async def rescue(self, spec: InstanceSpec, rescue_image: ImageSpec) -> None:
        """Keep the guest's XML, boot from ``rescue_image``.

        Legacy rescue (``rescue_image.stable_rescue`` false): the rescue disk
        first, the original root disk second.  Stable device rescue: every
        disk of the instance keeps its device, and the rescue image is one
        more device of ``rescue_device`` on ``rescue_bus``, booted first.
        Blocks until the rescue guest runs; a repeat keeps the saved XML.
        Raises DriverError when the hypervisor refuses the layout."""

    async def unrescue(self, spec: InstanceSpec) -> None:
        """Restore and boot the guest as it was before rescue."""

    async def migrate_disk_and_power_off(self, spec: InstanceSpec, new_flavor: FlavorSpec,
                                         timeout: float, retry_interval: float) -> None:
        """Resize step 1: stop the guest and keep its old XML and disk."""

    async def finish_migration(self, spec: InstanceSpec, power_on: bool) -> None:
        """Resize step 2: ``spec`` carries the new flavor; redefine, grow the
        disk, start when ``power_on``."""

    async def accept_migrated_disks(self, spec: InstanceSpec) -> None:
        """The disks of ``spec`` arrived from another node: make them usable
        here (a root overlay names this node's cached base).  Idempotent."""

    async def confirm_migration(self, instance_id: str, instance_dir: Path) -> None:
        """Resize confirmed: drop what was kept for a revert."""

    async def finish_revert_migration(self, spec: InstanceSpec, power_on: bool) -> None:
        """Resize reverted: ``spec`` carries the old flavor; restore the kept
        XML and disk exactly, start when ``power_on``."""

    async def trigger_crash_dump(self, instance_id: str) -> None:
        """Inject an NMI."""

    async def age_image_cache(self, min_age: float) -> list[str]:
        """Remove cached image copies no guest has used for ``min_age``
        seconds; returns their names."""

    async def set_admin_password(self, spec: InstanceSpec, password: str) -> None:
        """Set the running guest's administrator password (changePassword).
        Raises GuestAgentNotEnabled when the image does not enable the
        guest agent, NotImplementedByDriver when the guest cannot do it."""

    async def get_power_state(self, instance_id: str) -> PowerState:
        """The guest's power state now; NOSTATE when there is no guest."""

    async def list_instances(self) -> dict[str, PowerState]:
        """Every guest novad manages, by instance id.  Guests novad did not
        create are not listed."""

    async def get_console(self, instance_id: str) -> ConsoleInfo:
        """The guest's VNC endpoint.  Raises NotImplementedByDriver when the
        hypervisor gives none."""

    async def console_log_path(self, instance_id: str, instance_dir: Path) -> Path:
        """The file the guest's serial console is written to."""

    async def host_resources(self) -> HostResources:
        """This node's capacity and use."""

    def events(self) -> AsyncIterator[GuestEvent]:
        """Lifecycle events of managed guests, for as long as the driver runs."""
        ...

    def watch_connection(self, on_lost: Callable[[str], Awaitable[None]],
                         on_back: Callable[[], Awaitable[None]]) -> None:
        """Have ``on_lost(why)`` run when the hypervisor becomes unreachable
        and ``on_back()`` when it answers again (each as its own task; a
        failure is logged)."""

    async def pre_live_migration(self, spec: InstanceSpec) -> LiveMigrateData:
        """Live migration, on the destination, first: lay out ``spec``'s
        instance directory (disks from the image, boot files, config drive)
        as spawn would, defining no guest, so that a block migration can
        fill the disks.  Idempotent: existing files are kept."""

    async def live_migrate(self, spec: InstanceSpec, dest_uri: str, *, block_migration: bool,
                           migrate_uri: str | None, dest: LiveMigrateData | None = None,
                           bandwidth_mib: int = 0, post_copy: bool = False,
                           tunnelled: bool = False,
                           on_progress: ProgressCallback | None = None) -> None:
        """Live migration, on the source: move the running guest to the
        hypervisor at ``dest_uri`` while it runs.  Blocks until the
        migration ends.  ``block_migration`` copies the writable disks into
        the files ``pre_live_migration`` made there (``dest`` says where);
        without it the instance files must be on storage both nodes share.
        ``migrate_uri`` is where the guest's data goes (None: where the
        destination says); ``bandwidth_mib`` caps it in MiB/s (0: no cap);
        ``post_copy`` lets ``live_migration_force_complete`` switch to
        post-copy.  On success the guest runs there and no longer here (its
        files here stay, for ``destroy``).  On failure (an abort included)
        raises DriverError and the guest still runs here; GuestNotFound
        when there is no guest, NotImplementedByDriver when the hypervisor
        cannot migrate.  Not idempotent."""

    async def live_migration_progress(self, instance_id: str) -> MigrationProgress | None:
        """The running live migration's progress now; None when none runs."""

    async def diagnostics(self, instance_id: str) -> GuestDiagnostics:
        """The guest's CPU, memory, NIC and disk readings now; a counter the
        hypervisor does not report is None.  Raises GuestNotFound when there
        is no guest.  Does not block; idempotent."""

    async def live_migration_abort(self, instance_id: str) -> None:
        """Cancel the running live migration (``live_migrate`` then raises and
        the guest keeps running here).  Raises DriverError when none runs."""

    async def live_migration_force_complete(self, instance_id: str) -> None:
        """Make the running live migration finish: switch it to post-copy
        when it was started with ``post_copy``, else pause the guest so its
        memory stops changing, as Nova's libvirt driver does (the guest runs
        again on the destination; here, if the migration fails).  Raises
        DriverError when no migration runs."""
