"""Configuration: TOML loaded into a frozen, validated dataclass tree.

Section and option names follow nova.conf wherever nova has the same thing
(``[DEFAULT] shutdown_timeout``, ``[libvirt] connection_uri`` ...).  Every
field is documented by its ``doc`` metadata; ``conf/novad.toml`` shows them
all with their defaults.  Unknown keys and values of the wrong type stop
start-up with a :class:`ConfigError` naming the key.
"""

from __future__ import annotations

import dataclasses
import socket
import tomllib
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, get_type_hints


class ConfigError(Exception):
    """The configuration cannot be used; the message names the key."""


def _opt(default: Any, doc: str) -> Any:
    return field(default=default, metadata={"doc": doc})


def _list_opt(doc: str) -> Any:
    return field(default_factory=tuple, metadata={"doc": doc})


@dataclass(frozen=True)
class DefaultSection:
    """``[DEFAULT]``: node identity, listener and the periodic timers."""

    host: str = _opt("", "this node's name; empty means the machine's hostname")
    state_dir: str = _opt("./var", "where the SQLite store, images and instances live")
    listen: str = _opt("127.0.0.1:8774", "HOST:PORT of the HTTP API")
    shutdown_timeout: int = _opt(60, "seconds a clean shutdown may take before destroy")
    resize_confirm_window: int = _opt(0, "auto-confirm resizes older than N s; 0 = off")
    shelved_offload_time: int = _opt(0, "0 = offload at once, <0 = never, >0 = after N s")
    shelved_poll_interval: int = _opt(3600, "seconds between shelved-offload polls")
    reclaim_instance_interval: int = _opt(0, ">0 turns delete into soft delete, reclaimed after N s")
    sync_power_state_interval: int = _opt(600, "seconds between power-state sweeps; <0 = off")
    instance_delete_interval: int = _opt(300, "seconds between expired console-token purges")
    max_request_body_size: int = _opt(1048576, "largest accepted JSON request body, bytes")
    log_format: str = _opt("auto", "auto | json | console")
    demo_image_dir: str = _opt("", "folder of the built demo guest, registered as images on a "
                               "qemu URI; empty = <state_dir>/demo")
    default_ephemeral_format: str = _opt("", "filesystem of new ephemeral disks (ext2, ext3, "
                                         "ext4, xfs, vfat, ntfs); empty = by the image's "
                                         "os_type as Nova: linux ext4, windows ntfs, else vfat")
    default_availability_zone: str = _opt("nova", "availability zone of this node's compute "
                                          "service (Nova's name for the zone of a host in no "
                                          "aggregate)")
    cpu_allocation_ratio: float = _opt(4.0, "virtual CPUs the scheduler places per physical "
                                       "CPU (Nova's initial_cpu_allocation_ratio)")
    ram_allocation_ratio: float = _opt(1.0, "virtual RAM per physical RAM the scheduler "
                                       "places (Nova's initial_ram_allocation_ratio)")
    disk_allocation_ratio: float = _opt(1.0, "virtual disk per physical disk the scheduler "
                                        "places (Nova's initial_disk_allocation_ratio)")
    reserved_host_memory_mb: int = _opt(512, "MiB of RAM kept for the host, never placed")
    reserved_host_disk_mb: int = _opt(0, "MiB of disk kept for the host, never placed")
    reserved_host_cpus: int = _opt(0, "physical CPUs kept for the host, never placed")


@dataclass(frozen=True)
class ComputeSection:
    """``[compute]``."""

    shutdown_retry_interval: int = _opt(10, "seconds between repeated ACPI shutdown requests")


@dataclass(frozen=True)
class LibvirtSection:
    """``[libvirt]``."""

    connection_uri: str = _opt("test:///default", "libvirt URI of the hypervisor")
    virt_type: str = _opt("qemu", "domain type: qemu (TCG) or kvm")
    wait_soft_reboot_seconds: int = _opt(120, "soft reboot falls back to hard after N s")
    live_migration_uri: str = _opt("", "libvirt URI other nodes' libvirtd reach this node's "
                                   "at for a live migration; empty = connection_uri")
    live_migration_inbound_addr: str = _opt("", "address a live migration's data comes in "
                                            "on (QEMU's incoming side); empty = libvirt's "
                                            "migration_address")


@dataclass(frozen=True)
class ApiSection:
    """``[api]``."""

    enable_instance_password: bool = _opt(True, "return adminPass from create, rebuild, rescue")
    public_endpoint: str = _opt("", "base URL clients use; empty = http://<listen>")


@dataclass(frozen=True)
class QuotaSection:
    """``[quota]``: the default per-project limits; an admin overrides them
    for one project with os-quota-sets (``openstack quota set``)."""

    instances: int = _opt(10, "servers per project")
    cores: int = _opt(20, "vCPUs per project")
    ram: int = _opt(51200, "MiB of RAM per project")
    injected_files: int = _opt(5, "personality files per server (below microversion 2.57)")
    injected_file_content_bytes: int = _opt(
        10240, "bytes of one personality file's decoded contents")
    injected_file_path_bytes: int = _opt(255, "characters of one personality file's path")


@dataclass(frozen=True)
class VncSection:
    """``[vnc]``."""

    enabled: bool = _opt(True, "serve VNC consoles")
    novncproxy_base_url: str = _opt(
        "", "URL handed out for noVNC consoles; empty = http://<proxy address>/vnc_auto.html")
    vncserver_listen: str = _opt("127.0.0.1", "address guests' VNC servers listen on")
    novncproxy_listen: str = _opt(
        "", "HOST:PORT of the noVNC proxy; empty = the API's host and port + 1 (or a free port)")
    novnc_path: str = _opt(
        "", "noVNC's files; empty = .cache/novnc of the checkout, else /usr/share/novnc")
    vnc_password: str = _opt(
        "", "VNC password (at most 8 characters) set on new guests; the proxy uses it")


@dataclass(frozen=True)
class ConsoleAuthSection:
    """``[consoleauth]``."""

    token_ttl: int = _opt(600, "console token lifetime, seconds")
    enforce_session_timeout: bool = _opt(False, "close console sessions when the token expires")


@dataclass(frozen=True)
class ConsoleSection:
    """``[console]``."""

    allowed_origins: tuple[str, ...] = _list_opt("extra Origin hostnames the proxy accepts")
    idle_timeout: int = _opt(3600, "close a console session idle this long; 0 = never")


@dataclass(frozen=True)
class IdentitySection:
    """``[identity]``."""

    token_expiration: int = _opt(3600, "API token lifetime, seconds")


@dataclass(frozen=True)
class ImageCacheSection:
    """``[image_cache]``: ageing ``instances/_base``, as Nova's image cache manager."""

    manager_interval: int = _opt(2400, "seconds between sweeps of the image cache; 0 never")
    remove_unused_base_images: bool = _opt(True, "remove cached images no guest uses")
    remove_unused_original_minimum_age_seconds: int = _opt(
        86400, "how long a cached image must have gone unused before it is removed")


@dataclass(frozen=True)
class SecurityComplianceSection:
    """``[security_compliance]``: Keystone's account lockout."""

    lockout_failure_attempts: int = _opt(
        6, "failed passwords in a row that lock a user out; 0 never locks")
    lockout_duration: int = _opt(1800, "how long a locked-out user stays locked, seconds")


@dataclass(frozen=True)
class ClusterSection:
    """``[cluster]``: membership (SWIM with Lifeguard, as HashiCorp memberlist)
    and the node-to-node channel under ``/cluster/v1/`` on the API port.

    The timers default to memberlist's LAN profile scaled to half: a probe
    every 0.5 s (memberlist 1 s) so that a dead node of a small cluster is
    seen within about 3 s (see ``scripts/bench/gossip.py``)."""

    seeds: tuple[str, ...] = _list_opt("HOST:PORT API addresses of members to join; empty = "
                                       "a single node")
    key_file: str = _opt("", "the cluster key (32 bytes, mode 0600) every member shares; "
                         "empty = <state_dir>/cluster.key")
    advertise_address: str = _opt("", "HOST:PORT other members reach this node's API at; "
                                  "empty = listen")
    probe_interval: float = _opt(0.5, "seconds between failure-detection probes")
    probe_timeout: float = _opt(0.25, "seconds to wait for a direct probe's ack before "
                                "probing indirectly")
    indirect_checks: int = _opt(3, "members asked to probe a node that did not answer")
    suspicion_mult: int = _opt(4, "suspicion timeout = mult * log10(max(1, N)) * "
                               "probe_interval, at least mult * probe_interval")
    suspicion_max_timeout_mult: int = _opt(6, "Lifeguard: a suspicion starts at this many "
                                           "times the minimum and shrinks with confirmations")
    retransmit_mult: int = _opt(4, "each update is piggybacked mult * log10(N + 1) times")
    gossip_interval: float = _opt(0.2, "seconds between gossip rounds")
    gossip_nodes: int = _opt(3, "members each gossip round sends updates to")
    push_pull_interval: float = _opt(30.0, "seconds between full state syncs with a random "
                                     "member (anti-entropy); 0 = never")
    awareness_max_multiplier: int = _opt(8, "Lifeguard: a node that misses acks slows its "
                                         "probes up to this many times")
    dead_node_reclaim_time: float = _opt(3600.0, "seconds a dead or left member stays listed "
                                         "before it is forgotten")
    max_message_size: int = _opt(4194304, "largest node-to-node message accepted, bytes")
    max_clock_skew: float = _opt(30.0, "node-to-node messages older or newer than this many "
                                 "seconds are refused")
    auto_evacuate: bool = _opt(False, "evacuate the instances of a node that stays dead for "
                               "auto_evacuate_after seconds, once fence_command fenced it")
    auto_evacuate_after: float = _opt(120.0, "seconds a node must stay dead before it is "
                                      "fenced and evacuated (auto_evacuate)")
    fence_command: str = _opt("", "command that powers a dead node off (e.g. ipmitool ... "
                              "power off); {host} is replaced by its name; exit 0 = fenced. "
                              "Empty: auto_evacuate never acts")
    rejoin_wait: float = _opt(30.0, "seconds a restarting node that holds instances waits "
                              "for a member to answer before it starts anything (it must learn "
                              "which of them were evacuated meanwhile); 0 = do not wait")


@dataclass(frozen=True)
class FilterSchedulerSection:
    """``[filter_scheduler]``: Nova's filter scheduler, run by every node."""

    enabled_filters: tuple[str, ...] = field(default_factory=lambda: (
        "RetryFilter", "AvailabilityZoneFilter", "ComputeFilter", "ComputeCapabilitiesFilter",
        "ImagePropertiesFilter", "CoreFilter", "RamFilter", "DiskFilter",
        "ServerGroupAntiAffinityFilter", "ServerGroupAffinityFilter", "SameHostFilter",
        "DifferentHostFilter"), metadata={"doc": "filters every candidate host must pass, in order"})
    ram_weight_multiplier: float = _opt(1.0, "weight of free RAM; negative stacks instead of "
                                        "spreading")
    disk_weight_multiplier: float = _opt(1.0, "weight of free disk")
    cpu_weight_multiplier: float = _opt(1.0, "weight of free vCPUs")
    host_subset_size: int = _opt(1, "pick at random among this many best-weighed hosts")


@dataclass(frozen=True)
class SchedulerSection:
    """``[scheduler]``."""

    max_attempts: int = _opt(3, "hosts a boot is tried on (claim failures) before NoValidHost")


@dataclass(frozen=True)
class Config:
    """The whole configuration tree; TOML section names map to fields."""

    DEFAULT: DefaultSection = field(default_factory=DefaultSection)
    compute: ComputeSection = field(default_factory=ComputeSection)
    libvirt: LibvirtSection = field(default_factory=LibvirtSection)
    api: ApiSection = field(default_factory=ApiSection)
    quota: QuotaSection = field(default_factory=QuotaSection)
    vnc: VncSection = field(default_factory=VncSection)
    consoleauth: ConsoleAuthSection = field(default_factory=ConsoleAuthSection)
    console: ConsoleSection = field(default_factory=ConsoleSection)
    identity: IdentitySection = field(default_factory=IdentitySection)
    security_compliance: SecurityComplianceSection = field(
        default_factory=SecurityComplianceSection)
    image_cache: ImageCacheSection = field(default_factory=ImageCacheSection)
    cluster: ClusterSection = field(default_factory=ClusterSection)
    filter_scheduler: FilterSchedulerSection = field(default_factory=FilterSchedulerSection)
    scheduler: SchedulerSection = field(default_factory=SchedulerSection)

    @property
    def host(self) -> str:
        """This node's name."""
        return self.DEFAULT.host or socket.gethostname()

    @property
    def state_dir(self) -> Path:
        """The state directory as an absolute path."""
        return Path(self.DEFAULT.state_dir).resolve()

    @property
    def demo_dir(self) -> Path:
        """Where ``scripts/build-demo-guest``'s output is looked for."""
        if self.DEFAULT.demo_image_dir:
            return Path(self.DEFAULT.demo_image_dir).resolve()
        return self.state_dir / "demo"

    @property
    def listen_addr(self) -> tuple[str, int]:
        """``listen`` split into host and port."""
        return parse_listen(self.DEFAULT.listen)

    @property
    def cluster_key_path(self) -> Path:
        """The cluster key file (``[cluster] key_file``, else in the state directory)."""
        if self.cluster.key_file:
            return Path(self.cluster.key_file).resolve()
        return self.state_dir / "cluster.key"


T = TypeVar("T")


def parse_listen(value: str) -> tuple[str, int]:
    """Split ``HOST:PORT``; raise :class:`ConfigError` when it is not one."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"DEFAULT.listen: expected HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)


def _is_listen(value: str) -> bool:
    try:
        parse_listen(value)
    except ConfigError:
        return False
    return True


_VALIDATORS: dict[str, Any] = {
    "DEFAULT.log_format": lambda v: v in ("auto", "json", "console"),
    "DEFAULT.default_ephemeral_format": lambda v: v in ("", "ext2", "ext3", "ext4", "xfs",
                                                        "vfat", "ntfs"),
    "DEFAULT.max_request_body_size": lambda v: v > 0,
    "DEFAULT.instance_delete_interval": lambda v: v > 0,
    "DEFAULT.shelved_poll_interval": lambda v: v > 0,
    "DEFAULT.shutdown_timeout": lambda v: v >= 0,
    "compute.shutdown_retry_interval": lambda v: v >= 1,
    "libvirt.virt_type": lambda v: v in ("qemu", "kvm"),
    "libvirt.wait_soft_reboot_seconds": lambda v: v >= 0,
    "consoleauth.token_ttl": lambda v: v >= 0,
    "console.idle_timeout": lambda v: v >= 0,
    "vnc.novncproxy_listen": lambda v: v == "" or _is_listen(v),
    "vnc.vnc_password": lambda v: len(v) <= 8 and v.isascii(),
    "identity.token_expiration": lambda v: v > 0,
    "security_compliance.lockout_failure_attempts": lambda v: v >= 0,
    "image_cache.manager_interval": lambda v: v >= 0,
    "image_cache.remove_unused_original_minimum_age_seconds": lambda v: v >= 0,
    "security_compliance.lockout_duration": lambda v: v > 0,
    "DEFAULT.cpu_allocation_ratio": lambda v: v > 0,
    "DEFAULT.ram_allocation_ratio": lambda v: v > 0,
    "DEFAULT.disk_allocation_ratio": lambda v: v > 0,
    "DEFAULT.reserved_host_memory_mb": lambda v: v >= 0,
    "DEFAULT.reserved_host_disk_mb": lambda v: v >= 0,
    "DEFAULT.reserved_host_cpus": lambda v: v >= 0,
    "cluster.seeds": lambda v: all(_is_listen(s) for s in v),
    "cluster.advertise_address": lambda v: v == "" or _is_listen(v),
    "cluster.probe_interval": lambda v: v > 0,
    "cluster.probe_timeout": lambda v: v > 0,
    "cluster.indirect_checks": lambda v: v >= 0,
    "cluster.suspicion_mult": lambda v: v >= 1,
    "cluster.suspicion_max_timeout_mult": lambda v: v >= 1,
    "cluster.retransmit_mult": lambda v: v >= 1,
    "cluster.gossip_interval": lambda v: v > 0,
    "cluster.gossip_nodes": lambda v: v >= 1,
    "cluster.push_pull_interval": lambda v: v >= 0,
    "cluster.awareness_max_multiplier": lambda v: v >= 1,
    "cluster.dead_node_reclaim_time": lambda v: v > 0,
    "cluster.max_message_size": lambda v: v >= 65536,
    "cluster.max_clock_skew": lambda v: v > 0,
    "filter_scheduler.host_subset_size": lambda v: v >= 1,
    "scheduler.max_attempts": lambda v: v >= 1,
    "quota.instances": lambda v: v >= -1,
    "quota.cores": lambda v: v >= -1,
    "quota.ram": lambda v: v >= -1,
    "quota.injected_files": lambda v: v >= -1,
    "quota.injected_file_content_bytes": lambda v: v >= -1,
    "quota.injected_file_path_bytes": lambda v: v >= -1,
}


def _coerce(path: str, hint: Any, value: Any) -> Any:
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected a boolean, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{path}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {value!r}")
        return value
    if isinstance(hint, types.GenericAlias) and hint.__origin__ is tuple:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{path}: expected a list of strings, got {value!r}")
        return tuple(value)
    raise ConfigError(f"{path}: unsupported option type")  # pragma: no cover


def _build(cls: type[T], section: str, raw: Any) -> T:
    if not isinstance(raw, dict):
        raise ConfigError(f"{section}: expected a table, got {raw!r}")
    hints = get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for key in raw:
        if key not in known:
            raise ConfigError(f"{section}.{key}: unknown option")
    values: dict[str, Any] = {}
    for name in known & raw.keys():
        path = f"{section}.{name}"
        values[name] = _coerce(path, hints[name], raw[name])
        check = _VALIDATORS.get(path)
        if check is not None and not check(values[name]):
            raise ConfigError(f"{path}: invalid value {raw[name]!r}")
    return cls(**values)


def load(path: Path | None = None, overrides: dict[str, dict[str, Any]] | None = None) -> Config:
    """Read ``path`` (or the embedded default when None) and apply overrides.

    ``overrides`` maps section to option to value, e.g. the ``serve`` flags
    ``{"DEFAULT": {"state_dir": "/x"}}``; they pass the same validation.
    """
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = tomllib.loads(path.read_text())
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    for section, opts in (overrides or {}).items():
        raw.setdefault(section, {}).update(opts)
    hints = get_type_hints(Config)
    sections: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in hints:
            raise ConfigError(f"{key}: unknown section")
        sections[key] = _build(hints[key], key, value)
    config = Config(**sections)
    parse_listen(config.DEFAULT.listen)
    return config


def describe() -> list[tuple[str, str, Any, str]]:
    """Every option as (section, name, default, doc), for the README."""
    rows: list[tuple[str, str, Any, str]] = []
    for sec in dataclasses.fields(Config):
        section_cls = get_type_hints(Config)[sec.name]
        for opt in dataclasses.fields(section_cls):
            if opt.default is not dataclasses.MISSING:
                default = opt.default
            elif opt.default_factory is not dataclasses.MISSING:
                default = list(opt.default_factory())
            else:
                default = []
            rows.append((sec.name, opt.name, default, opt.metadata.get("doc", "")))
    return rows
