"""A typed face on the untyped libvirt bindings, used only inside this package.

libvirt-python ships no type information, so everything it returns is
``Any``.  The Protocols below name the handful of calls the driver makes, so
that ``Any`` stops at this module and the rest of the package is checked.
This module also holds the error-code helpers and the one mapping from
libvirt domain states to novad power states.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, Protocol, cast

import libvirt

from novad.errors import DriverError
from novad.states.enums import PowerState

DOMAIN_PREFIX: Final = "novad-"
"""Domains novad manages are named ``novad-<instance uuid>``."""

LibvirtError: type[Exception] = libvirt.libvirtError

ERR_NO_SUPPORT: Final[int] = libvirt.VIR_ERR_NO_SUPPORT
ERR_INVALID_ARG: Final[int] = libvirt.VIR_ERR_INVALID_ARG
ERR_NO_DOMAIN: Final[int] = libvirt.VIR_ERR_NO_DOMAIN
ERR_OPERATION_INVALID: Final[int] = libvirt.VIR_ERR_OPERATION_INVALID
ERR_OPERATION_UNSUPPORTED: Final[int] = libvirt.VIR_ERR_OPERATION_UNSUPPORTED
ERR_NO_DOMAIN_METADATA: Final[int] = libvirt.VIR_ERR_NO_DOMAIN_METADATA
ERR_AGENT_UNRESPONSIVE: Final[int] = libvirt.VIR_ERR_AGENT_UNRESPONSIVE
METADATA_ELEMENT: Final[int] = libvirt.VIR_DOMAIN_METADATA_ELEMENT

UNDEFINE_FLAGS: Final[int] = (
    libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
)
UNDEFINE_NVRAM: Final[int] = libvirt.VIR_DOMAIN_UNDEFINE_NVRAM
XML_INACTIVE: Final[int] = libvirt.VIR_DOMAIN_XML_INACTIVE
LIST_ACTIVE: Final[int] = libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE
EVENT_ID_LIFECYCLE: Final[int] = libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE

# Live migration: Nova's default flags for a peer-to-peer migration (the
# source libvirtd talks to the destination's itself), then the optional ones.
ERR_OPERATION_ABORTED: Final[int] = libvirt.VIR_ERR_OPERATION_ABORTED
ERR_ARGUMENT_UNSUPPORTED: Final[int] = libvirt.VIR_ERR_ARGUMENT_UNSUPPORTED
MIGRATE_FLAGS: Final[int] = (
    libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_PEER2PEER
    | libvirt.VIR_MIGRATE_PERSIST_DEST | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE
)
MIGRATE_NON_SHARED_INC: Final[int] = libvirt.VIR_MIGRATE_NON_SHARED_INC
MIGRATE_TUNNELLED: Final[int] = libvirt.VIR_MIGRATE_TUNNELLED
MIGRATE_POSTCOPY: Final[int] = libvirt.VIR_MIGRATE_POSTCOPY
MIGRATE_PARAM_URI: Final[str] = libvirt.VIR_MIGRATE_PARAM_URI
MIGRATE_PARAM_DEST_XML: Final[str] = libvirt.VIR_MIGRATE_PARAM_DEST_XML
MIGRATE_PARAM_PERSIST_XML: Final[str] = libvirt.VIR_MIGRATE_PARAM_PERSIST_XML
MIGRATE_PARAM_MIGRATE_DISKS: Final[str] = libvirt.VIR_MIGRATE_PARAM_MIGRATE_DISKS
MIGRATE_PARAM_BANDWIDTH: Final[str] = libvirt.VIR_MIGRATE_PARAM_BANDWIDTH
XML_MIGRATABLE: Final[int] = libvirt.VIR_DOMAIN_XML_MIGRATABLE
XML_SECURE: Final[int] = libvirt.VIR_DOMAIN_XML_SECURE
JOB_NONE: Final[int] = libvirt.VIR_DOMAIN_JOB_NONE
JOB_OPERATION_MIGRATION_OUT: Final[int] = libvirt.VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT

DOMAIN_NOSTATE: Final[int] = libvirt.VIR_DOMAIN_NOSTATE
DOMAIN_RUNNING: Final[int] = libvirt.VIR_DOMAIN_RUNNING
DOMAIN_BLOCKED: Final[int] = libvirt.VIR_DOMAIN_BLOCKED
DOMAIN_PAUSED: Final[int] = libvirt.VIR_DOMAIN_PAUSED
DOMAIN_SHUTDOWN: Final[int] = libvirt.VIR_DOMAIN_SHUTDOWN
DOMAIN_SHUTOFF: Final[int] = libvirt.VIR_DOMAIN_SHUTOFF
DOMAIN_CRASHED: Final[int] = libvirt.VIR_DOMAIN_CRASHED
DOMAIN_PMSUSPENDED: Final[int] = libvirt.VIR_DOMAIN_PMSUSPENDED

# libvirt's SHUTDOWN state means "shutting down"; Nova's libvirt driver maps
# it to SHUTDOWN together with SHUTOFF, and so does novad.
_POWER: Final[dict[int, PowerState]] = {
    DOMAIN_NOSTATE: PowerState.NOSTATE,
    DOMAIN_RUNNING: PowerState.RUNNING,
    DOMAIN_BLOCKED: PowerState.RUNNING,
    DOMAIN_PAUSED: PowerState.PAUSED,
    DOMAIN_SHUTDOWN: PowerState.SHUTDOWN,
    DOMAIN_SHUTOFF: PowerState.SHUTDOWN,
    DOMAIN_CRASHED: PowerState.CRASHED,
    DOMAIN_PMSUSPENDED: PowerState.SUSPENDED,
}


class VirDomain(Protocol):
    """The calls the driver makes on a ``libvirt.virDomain`` (libvirt's names)."""

    def name(self) -> str: ...
    def UUIDString(self) -> str: ...
    def ID(self) -> int: ...
    def state(self, flags: int = 0) -> list[int]: ...
    def info(self) -> list[int]: ...
    def isActive(self) -> int: ...
    def create(self) -> int: ...
    def destroy(self) -> int: ...
    def shutdown(self) -> int: ...
    def suspend(self) -> int: ...
    def resume(self) -> int: ...
    def managedSave(self, flags: int = 0) -> int: ...
    def hasManagedSaveImage(self, flags: int = 0) -> int: ...
    def managedSaveRemove(self, flags: int = 0) -> int: ...
    def undefineFlags(self, flags: int = 0) -> int: ...
    def injectNMI(self, flags: int = 0) -> int: ...
    def setUserPassword(self, user: str, password: str, flags: int = 0) -> int: ...
    def XMLDesc(self, flags: int = 0) -> str: ...
    def metadata(self, type: int, uri: str | None, flags: int = 0) -> str: ...
    def migrateToURI3(self, dconnuri: str, params: dict[str, Any], flags: int = 0) -> int: ...
    def jobStats(self, flags: int = 0) -> dict[str, Any]: ...
    def vcpus(self) -> Any: ...
    def memoryStats(self) -> dict[str, int]: ...
    def blockStats(self, path: str) -> tuple[int, int, int, int, int]: ...
    def interfaceStats(self, path: str) -> tuple[int, int, int, int, int, int, int, int]: ...
    def abortJob(self) -> int: ...
    def migrateStartPostCopy(self, flags: int = 0) -> int: ...


LifecycleCallback = Callable[[Any, VirDomain, int, int, Any], None]


class VirConnect(Protocol):
    """The calls the driver makes on a ``libvirt.virConnect``."""

    def lookupByUUIDString(self, uuid: str) -> VirDomain: ...
    def defineXML(self, xml: str) -> VirDomain: ...
    def listAllDomains(self, flags: int = 0) -> list[VirDomain]: ...
    def getInfo(self) -> list[Any]: ...
    def getType(self) -> str: ...
    def domainEventRegisterAny(
        self, dom: VirDomain | None, event_id: int, cb: LifecycleCallback, opaque: Any
    ) -> int: ...
    def domainEventDeregisterAny(self, callback_id: int) -> int: ...
    def registerCloseCallback(self, cb: Callable[[Any, int, Any], None], opaque: Any) -> int: ...
    def unregisterCloseCallback(self) -> int: ...
    def close(self) -> int: ...


def open_connection(uri: str) -> VirConnect:
    """Open a read-write connection (blocks; call it in a thread)."""
    return cast(VirConnect, libvirt.open(uri))


def error_code(exc: BaseException) -> int:
    """libvirt's error number of a ``libvirtError``; 0 for anything else."""
    if not isinstance(exc, LibvirtError):
        return 0
    code = cast(Any, exc).get_error_code()
    return int(code) if code is not None else 0


def error_message(exc: BaseException) -> str:
    """libvirt's own one-line message of a ``libvirtError``."""
    if isinstance(exc, LibvirtError):
        message = cast(Any, exc).get_error_message()
        if message:
            return str(message)
    return str(exc) or type(exc).__name__


def driver_error(exc: BaseException) -> DriverError:
    """Wrap a libvirt failure in novad's error, keeping libvirt's message."""
    return DriverError(error_message(exc))


def power_state(state: int, has_managed_save: bool) -> PowerState:
    """Map a ``virDomainState`` to novad's power state.

    A shut-off domain with a managed-save image is reported as SUSPENDED.
    Nova's libvirt driver says SHUTDOWN there; novad says SUSPENDED so that
    power-state sync can tell a suspended guest from a stopped one.
    """
    if state == DOMAIN_SHUTOFF and has_managed_save:
        return PowerState.SUSPENDED
    return _POWER.get(state, PowerState.NOSTATE)


def instance_id_of(domain_name: str) -> str | None:
    """The instance uuid of a novad domain name, or None for other domains."""
    if domain_name.startswith(DOMAIN_PREFIX):
        return domain_name[len(DOMAIN_PREFIX):]
    return None


def silence_default_error_handler() -> None:
    """Stop libvirt printing every error to stderr; errors reach us as exceptions."""
    libvirt.registerErrorHandler(_ignore_error, None)


def _ignore_error(_ctx: object, _err: object) -> None:
    """An error handler that drops the report (the exception still raises)."""
