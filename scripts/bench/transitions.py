#!/usr/bin/env python3
"""Transitions per second through the compute service, against two baselines.

1,000 instances on libvirt's test driver; 50 concurrent workers each cycle
pause/unpause on their share.  A transition counts when its work has ended
(final compare-and-swap written).  Measured in the same run:

* **direct libvirt**: the same suspend/resume calls, straight to libvirt,
  same 50 workers on the same kind of executor, on the bench's own
  connection to the stack's URI (the driver shares none: no libvirt object
  leaves it).  The test driver keeps one in-memory state per process, so
  that connection sees the very guests the stack booted;
* **SQLite ceiling**: bare commits per second on a SQLite file with the
  store's settings (WAL, synchronous=FULL).  A transition needs at least two
  durable writes, so commits/s ÷ 2 is its ceiling.

Prints ``transitions/s=<N> ceiling=<M> ratio=<N/M>``.
Run: ``.venv/bin/python scripts/bench/transitions.py [--instances 1000] [--workers 50]``
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

# This file's name would shadow the ``transitions`` library: drop its folder.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))

import libvirt  # noqa: E402
import structlog  # noqa: E402

from compute.conftest import build_stack, close_stack, owner  # noqa: E402

URI = "test:///default"
"""The URI ``build_stack`` gives its driver: the baseline opens its own
connection there."""


def sqlite_commits_per_second(path: Path, seconds: float = 2.0) -> float:
    """Bare single-row UPDATE commits with the store's durability settings."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
    conn.executemany("INSERT INTO t(v) VALUES (?)", [("x",)] * 1000)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("UPDATE t SET v=? WHERE id=?", (str(n), n % 1000 + 1))
        conn.execute("COMMIT")
        n += 1
    elapsed = time.perf_counter() - start
    conn.close()
    return n / elapsed


async def direct_libvirt(domains: list[Any], workers: int, cycles: int) -> tuple[float, list[float]]:
    """suspend/resume straight to libvirt: transitions/s and per-call latencies."""
    loop = asyncio.get_running_loop()
    pool = ThreadPoolExecutor(max_workers=4)
    latencies: list[float] = []

    async def worker(mine: list[Any]) -> None:
        for _ in range(cycles):
            for dom in mine:
                for call in (dom.suspend, dom.resume):
                    t0 = time.perf_counter()
                    await loop.run_in_executor(pool, call)
                    latencies.append(time.perf_counter() - t0)

    start = time.perf_counter()
    await asyncio.gather(*(worker(domains[i::workers]) for i in range(workers)))
    elapsed = time.perf_counter() - start
    pool.shutdown()
    return len(latencies) / elapsed, latencies


async def through_novad(stack: Any, uuids: list[str], workers: int,
                        cycles: int) -> tuple[float, list[float]]:
    """pause/unpause through ComputeService.act, waiting for each to finish."""
    latencies: list[float] = []

    async def worker(mine: list[str]) -> None:
        for _ in range(cycles):
            for uuid in mine:
                for action in ("pause", "unpause"):
                    t0 = time.perf_counter()
                    result = await stack.compute.act(owner(), uuid, action, {})
                    assert result.done is not None
                    await result.done
                    latencies.append(time.perf_counter() - t0)

    start = time.perf_counter()
    await asyncio.gather(*(worker(uuids[i::workers]) for i in range(workers)))
    elapsed = time.perf_counter() - start
    return len(latencies) / elapsed, latencies


def pct(values: list[float], q: float) -> float:
    """The q-quantile in milliseconds."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=50)
    parser.add_argument("--cycles", type=int, default=2)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    with tempfile.TemporaryDirectory() as tmp:
        stack = await build_stack(Path(tmp) / "state")
        try:
            uuids = []
            for i in range(args.instances):
                uuids.append((await stack.boot(f"bench{i}")).uuid)
            commits = statistics.median(sqlite_commits_per_second(Path(tmp) / f"c{i}.db", 1.0)
                                        for i in range(3))
            conn = libvirt.open(URI)
            try:
                # Raises if this connection did not see the stack's guests.
                domains = [conn.lookupByUUIDString(u) for u in uuids]
                direct_rate, direct_lat = await direct_libvirt(domains, args.workers,
                                                               args.cycles)
            finally:
                conn.close()
            rate, lat = await through_novad(stack, uuids, args.workers, args.cycles)
        finally:
            await close_stack(stack)
    ceiling = commits / 2
    print(f"instances={args.instances} workers={args.workers} transitions={len(lat)}")
    print(f"direct libvirt: calls/s={direct_rate:.0f} p50={pct(direct_lat, .5):.3f}ms "
          f"p99={pct(direct_lat, .99):.3f}ms")
    print(f"sqlite (WAL, synchronous=FULL): commits/s={commits:.0f}")
    print(f"novad: transitions/s={rate:.0f} p50={pct(lat, .5):.2f}ms p99={pct(lat, .99):.2f}ms "
          f"vs direct libvirt={rate / direct_rate:.2f}")
    print(f"transitions/s={rate:.0f} ceiling={ceiling:.0f} ratio={rate / ceiling:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
