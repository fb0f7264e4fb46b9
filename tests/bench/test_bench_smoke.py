"""Every benchmark under ``scripts/bench/`` runs, once, at a small size.

Each bench runs as a real subprocess (``python scripts/bench/<name>``, this
venv's interpreter) and must exit 0 and print its figure lines.  No timing
is asserted: at these sizes the figures mean nothing, only that the bench
still gets to them.  A new bench needs an entry in :data:`SMOKES`;
:func:`test_every_bench_has_a_smoke_entry` fails until it has one.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import libvirt
import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH_DIR = ROOT / "scripts" / "bench"
QEMU_URI = "qemu:///system"

N = r"-?\d+(?:\.\d+)?"
"""A printed figure (some, such as an added latency, can be negative)."""
RATIO = rf"(?:{N}|n/a)"


@dataclass(frozen=True)
class Smoke:
    """How to run one bench small, and the lines it must print (regexes,
    each matched against a whole line of its standard output)."""

    args: tuple[str, ...]
    figures: tuple[str, ...]
    needs_qemu_system: bool = False
    """It drives real guests on ``qemu:///system`` (the integration tier)."""
    needs_qemu_binary: bool = False
    """It starts ``qemu-system-x86_64`` itself."""
    timeout: float = 600.0
    """Only bounds a hang; nothing is asserted about how long a run takes."""


SMOKES: dict[str, Smoke] = {
    "scripts/bench/api.py": Smoke(
        ("--servers", "8", "--clients", "4", "--listed", "16", "--cycles", "1",
         "--paced", "0.5", "--paced-actions", "16", "--forwarded", "4"),
        (rf"service layer \(in-process, no HTTP\): completed actions/s={N}",
         rf"http: completed actions/s={N} \(ratio to service {N}\) "
         rf"accept p50={N}ms p99={N}ms",
         rf"http floor \(bare aiohttp, 202 only\): accept p50={N}ms p99={N}ms; "
         rf"novad/floor p50 {N}x p99 {N}x",
         rf"http paced at {N}/s \({N}% of the closed loop; achieved {N}/s\): "
         rf"accept p50={N}ms p99={N}ms",
         rf"GET /servers/detail with 16 servers: p50={N}ms p99={N}ms",
         rf"microversion 2\.{N} against 2\.1 \(same daemon, same servers; actions {N} "
         rf"rounds in turn, lists alternating\): actions/s {N} vs "
         rf"{N} \(ratio {N}\); accept p50 ratio {N}, p99 ratio {N}; list p50 ratio {N}, "
         rf"p99 ratio {N}",
         rf"forwarded to the owner \(4 servers, 2-node cluster\): direct {N}/s "
         rf"p50={N}ms p99={N}ms; forwarded {N}/s p50={N}ms p99={N}ms; "
         rf"forwarded/direct latency ratio={N} \(p99 {N}\), throughput ratio={N}")),
    "scripts/bench/gossip.py": Smoke(
        ("--small", "--real", "3", "--real-kills", "1"),
        (rf"gossip N=10 detection_p50={N}s detection_p99={N}s formula={N}s ratio={N}",
         rf"real N=3 detection_p50={N}s detection_p99={N}s formula={N}s ratio={N}")),
    "scripts/bench/boot.py": Smoke(
        ("--rounds", "1", "--cycles", "1"),
        (rf"boot-to-ACTIVE: novad median={N}ms direct libvirt median={N}ms "
         rf"ratio={N} \(95% interval {N}-{N}, 1 a side\)",
         rf"stop/start: novad median={N}ms direct libvirt median={N}ms "
         rf"ratio={N} \(95% interval {N}-{N}, 1 a side\)"),
        needs_qemu_system=True),
    "scripts/bench/console.py": Smoke(
        ("--rounds", "1", "--guest-updates", "2", "--replay-updates", "10",
         "--small-updates", "10", "--echo-mib", "8"),
        tuple(rf"{w}\s+throughput: novad/websockify {RATIO}x, novad/direct {RATIO}"
              for w in ("guest", "replay", "echo"))
        + tuple(rf"{w}\s+added latency p50 \(16x16\): novad {N} us, websockify {N} us"
                for w in ("guest", "replay")),
        needs_qemu_binary=True),
    "scripts/bench/migrate.py": Smoke(
        ("--gib", "0.05", "--runs", "1"),
        (rf"plain copy \(aiohttp PUT over loopback, fsynced\): median={N} s/GiB \({N} MB/s\) "
         rf"over 1 runs; CPU {N} s/GiB \(client \+ server\)",
         rf"cold migration \(202 to VERIFY_RESIZE\): median={N} s/GiB \({N} MB/s\) "
         rf"over 1 runs; CPU {N} s/GiB \(both daemons\)",
         rf"migrate ratio={N}")),
    "scripts/bench/transitions.py": Smoke(
        ("--instances", "20", "--workers", "5", "--cycles", "1"),
        (rf"direct libvirt: calls/s={N} p50={N}ms p99={N}ms",
         rf"novad: transitions/s={N} p50={N}ms p99={N}ms vs direct libvirt={N}",
         rf"transitions/s={N} ceiling={N} ratio={N}")),
}


def _require(smoke: Smoke) -> None:
    """Skip, saying why, when the host lacks what the bench drives (as the
    integration and console tiers do); anything else is the bench's to fail."""
    if smoke.needs_qemu_binary and shutil.which("qemu-system-x86_64") is None:
        pytest.skip("qemu-system-x86_64 is not installed (scripts/setup installs it)")
    if smoke.needs_qemu_system:
        try:
            libvirt.open(QEMU_URI).close()
        except libvirt.libvirtError as exc:
            pytest.skip(f"{QEMU_URI} is unreachable (scripts/libvirtd-up starts it): {exc}")


def test_every_bench_has_a_smoke_entry() -> None:
    benches = sorted(str(path.relative_to(ROOT)) for path in BENCH_DIR.glob("*.py"))
    assert benches == sorted(SMOKES), (
        "each scripts/bench/*.py needs an entry in SMOKES (and each entry a bench)")


@pytest.mark.parametrize("name", [
    pytest.param(name, id=Path(name).stem,
                 marks=[pytest.mark.integration] if smoke.needs_qemu_system else [])
    for name, smoke in sorted(SMOKES.items())])
def test_bench_runs_small(name: str) -> None:
    smoke = SMOKES[name]
    _require(smoke)
    done = subprocess.run([sys.executable, str(ROOT / name), *smoke.args], cwd=ROOT,
                          capture_output=True, text=True, timeout=smoke.timeout)
    said = f"stdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}"
    assert done.returncode == 0, f"{name} exited {done.returncode}\n{said}"
    for figure in smoke.figures:
        assert re.search(rf"^{figure}$", done.stdout, re.MULTILINE), \
            f"{name} printed no line matching {figure!r}\n{said}"
