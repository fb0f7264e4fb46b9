"""A guest's diagnostics read from libvirt (blocking; the driver runs it in
its thread pool).

Each reading is one libvirt call; a call the hypervisor does not support
(or a device it will not report on) leaves its counters None rather than
failing the whole reading, as Nova's libvirt driver does.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import TypeVar

from novad.drivers.base import CpuReading, DiskReading, GuestDiagnostics, NicReading
from novad.drivers.libvirt import virt
from novad.drivers.libvirt.virt import LibvirtError, VirDomain

_T = TypeVar("_T")


def _maybe(fn: Callable[[], _T]) -> _T | None:
    try:
        return fn()
    except LibvirtError:
        return None


def read(dom: VirDomain) -> GuestDiagnostics:
    """Every reading of ``dom`` (blocks: a handful of libvirt calls)."""
    state, max_kib, used_kib, num_cpus, _ = dom.info()
    saved = state == virt.DOMAIN_SHUTOFF and bool(dom.hasManagedSaveImage(0))
    tree = ET.fromstring(dom.XMLDesc(0))
    return GuestDiagnostics(
        power_state=virt.power_state(state, saved), memory_max_kib=max_kib,
        memory_used_kib=used_kib, cpus=_cpus(dom, num_cpus), nics=_nics(dom, tree),
        disks=_disks(dom, tree), memory_stats=_maybe(dom.memoryStats) or {})


def _cpus(dom: VirDomain, count: int) -> tuple[CpuReading, ...]:
    vcpus = _maybe(dom.vcpus)
    if vcpus is None:  # a stopped guest has no vCPU threads to read
        return tuple(CpuReading(i) for i in range(count))
    return tuple(CpuReading(int(number), int(cpu_time), None)
                 for number, _state, cpu_time, _host_cpu in vcpus[0])


def _nics(dom: VirDomain, tree: ET.Element) -> tuple[NicReading, ...]:
    found = []
    for nic in tree.findall("./devices/interface"):
        target = nic.find("target")
        device = "" if target is None else target.get("dev", "")
        mac = nic.find("mac")
        stats = _maybe(lambda: dom.interfaceStats(device)) if device else None
        counters = stats if stats is not None else (None,) * 8
        rx_bytes, rx_packets, rx_errs, rx_drop, tx_bytes, tx_packets, tx_errs, tx_drop = counters
        found.append(NicReading(
            device, None if mac is None else mac.get("address"), rx_octets=rx_bytes,
            rx_errors=rx_errs, rx_drop=rx_drop, rx_packets=rx_packets, tx_octets=tx_bytes,
            tx_errors=tx_errs, tx_drop=tx_drop, tx_packets=tx_packets))
    return tuple(found)


def _disks(dom: VirDomain, tree: ET.Element) -> tuple[DiskReading, ...]:
    found = []
    for disk in tree.findall("./devices/disk"):
        target = disk.find("target")
        device = "" if target is None else target.get("dev", "")
        stats = _maybe(lambda: dom.blockStats(device)) if device else None
        rd_req, rd_bytes, wr_req, wr_bytes, errs = stats if stats is not None else (None,) * 5
        found.append(DiskReading(device, read_bytes=rd_bytes, read_requests=rd_req,
                                 write_bytes=wr_bytes, write_requests=wr_req,
                                 errors_count=errs))
    return tuple(found)
