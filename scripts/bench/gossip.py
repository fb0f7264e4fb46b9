#!/usr/bin/env python3
"""Membership (SWIM with Lifeguard) on the discrete-event simulator.

For each cluster size, over ``--seeds`` independent runs of memberlist's LAN
timers (probe 1 s, so one protocol period is one second):

* **detection**: a member is crashed; seconds (and periods) until every live
  member marks it dead, p50 and p99, beside memberlist's suspicion timeout
  ``suspicion_mult * max(1, log10(N)) * probe_interval``, which is the floor
  of any detection time (ratio = ours / formula);
* **join dissemination**: gossip rounds (and periods) until every member
  sees a new member alive, against SWIM's ``2 * log2(N)`` periods;
* **load**: messages sent per member per period in steady state;
* **false positives**: live members declared dead anywhere during
  ``--loss-seconds`` of 10% random message loss.

Everything runs in simulated time: the figures do not depend on the
machine.  The last line is the figure line, for the largest size:
``gossip detection_p50=<s> detection_p99=<s> ratio=<p99 / formula>``.

Run: ``.venv/bin/python scripts/bench/gossip.py [--sizes 10,50,100] [--seeds 5]``;
``--small`` is a quick run (10 members, one seed) for smoke tests.

``--real N`` then starts N real daemons on loopback (libvirt's test driver,
the daemon's own ``[cluster]`` defaults: probe 0.5 s) and, ``--real-kills``
times, SIGKILLs one and polls every other member's list (signed
``/cluster/v1/members`` requests, every 50 ms) until all of them call it
dead; the killed node is restarted and rejoins before the next round.
Printed: ``real N=<n> detection_p50=<s> detection_p99=<s> formula=<s>
ratio=<p99 / formula>``, the formula being memberlist's suspicion timeout
at the daemon's probe interval.
"""

from __future__ import annotations

import argparse
import math
import signal
import subprocess
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from novad.cluster.membership import GossipConfig  # noqa: E402
from novad.cluster.sim import (Simulation, measure_failure, measure_join,  # noqa: E402
                               messages_per_node_period)
from novad.cluster.suspicion import suspicion_timeout  # noqa: E402

LAN = GossipConfig.lan()


@dataclass
class SizeResult:
    """Samples for one cluster size."""

    n: int
    detection: list[float] = field(default_factory=list)
    first_suspect: list[float] = field(default_factory=list)
    join: list[float] = field(default_factory=list)
    load: list[float] = field(default_factory=list)
    false_positives: int = 0
    refutations: int = 0
    loss_seconds: float = 0.0
    runs: int = 0


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def victims(n: int, count: int) -> list[str]:
    """Members to crash, spread over the cluster (never the seed n000)."""
    return [f"n{1 + (i * 37) % (n - 1):03d}" for i in range(count)]


def run_size(n: int, seeds: int, kills: int, joins: int, loss_seconds: float,
             loss_seeds: int) -> SizeResult:
    """Every measurement for ``n`` members."""
    result = SizeResult(n, loss_seconds=loss_seconds, runs=loss_seeds)
    for seed in range(seeds):
        sim = Simulation(LAN, seed=seed)
        sim.bootstrap(n)
        sim.run_for(30.0)
        result.load.append(messages_per_node_period(sim, 60.0))
        for j in range(joins):
            result.join.append(measure_join(sim, f"late{j}", "n000"))
            sim.run_for(2.0)
        for victim in victims(n, kills):
            times = measure_failure(sim, victim)
            result.detection.append(times.all_dead)
            result.first_suspect.append(times.first_suspect)
            sim.run_for(2.0)
    if loss_seconds > 0:
        for seed in range(loss_seeds):
            sim = Simulation(LAN, seed=1000 + seed)
            sim.bootstrap(n)
            sim.loss = 0.10
            before = {n.name: n.membership.local_member.incarnation for n in sim.live()}
            sim.run_for(loss_seconds)
            result.false_positives += len(sim.false_positives)
            # each incarnation bump of a live member refuted a false suspicion
            result.refutations += sum(n.membership.local_member.incarnation - before[n.name]
                                      for n in sim.live())
    return result


def report(r: SizeResult) -> None:
    """The lines for one size."""
    period, rounds = LAN.probe_interval, LAN.gossip_interval
    formula = suspicion_timeout(LAN.suspicion_mult, r.n, LAN.probe_interval)
    p50, p99 = pct(r.detection, 0.5), pct(r.detection, 0.99)
    bound = 2 * math.log2(r.n)
    print(f"N={r.n:<4d} detection by all: p50={p50:.2f}s ({p50 / period:.1f} periods) "
          f"p99={p99:.2f}s ({p99 / period:.1f} periods); first suspicion "
          f"p50={pct(r.first_suspect, 0.5):.2f}s; memberlist suspicion timeout "
          f"{formula:.2f}s: ratio p50 {p50 / formula:.2f}, p99 {p99 / formula:.2f}")
    j50, j99 = pct(r.join, 0.5), pct(r.join, 0.99)
    print(f"       join reaches all: p50={j50 / rounds:.1f} gossip rounds "
          f"({j50 / period:.2f} periods) p99={j99 / rounds:.1f} rounds "
          f"({j99 / period:.2f} periods); SWIM bound 2*log2(N)={bound:.1f} periods: "
          f"ratio p99 {j99 / period / bound:.2f}")
    print(f"       messages per member per period: {statistics.mean(r.load):.3f} "
          f"(runs {min(r.load):.3f}..{max(r.load):.3f})")
    if r.loss_seconds:
        print(f"       10% loss for {r.loss_seconds:.0f}s x {r.runs} runs: false positives="
              f"{r.false_positives} (a live member marked dead by one observer), false "
              f"suspicions refuted={r.refutations}")


def _free_port() -> int:
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Daemon:
    """One ``novad serve`` on loopback, clustered through ``seed``."""

    def __init__(self, root: Path, name: str, key: Path, seed: str | None) -> None:
        self.name, self.port = name, _free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.root = root / name
        self.root.mkdir(parents=True)
        seeds = f'seeds = ["{seed}"]\n' if seed else ""
        self.conf = self.root / "novad.toml"
        self.conf.write_text(
            f'[DEFAULT]\nhost = "{name}"\nstate_dir = "{self.root / "state"}"\n'
            f'listen = "{self.address}"\nlog_format = "json"\n'
            f'[cluster]\nkey_file = "{key}"\n{seeds}[vnc]\nenabled = false\n')
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "novad", "serve", "--config",
                                      str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)


async def _states(client: Any, daemon: _Daemon) -> dict[str, str]:
    from novad.cluster.http import PeerError
    try:
        answer = await client.post(daemon.address, "/cluster/v1/members", {}, timeout=2.0)
    except PeerError:
        return {}
    return {m["name"]: m["state"] for m in answer["members"]}


async def _until(check: Any, timeout: float, what: str) -> None:
    import asyncio
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise SystemExit(f"gossip --real: {what} not reached in {timeout:.0f} s")
        await asyncio.sleep(0.05)


async def real_processes(n: int, kills: int) -> list[float]:
    """Seconds from SIGKILL until every other member calls the node dead."""
    import tempfile

    from novad.cluster.auth import MessageAuth, init_key
    from novad.cluster.http import ClusterClient
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        key = root / "cluster.key"
        init_key(key)
        first = _Daemon(root, "r1", key, None)
        daemons = [first] + [_Daemon(root, f"r{i}", key, first.address) for i in range(2, n + 1)]
        client = ClusterClient(MessageAuth(key.read_bytes(), "bench"))
        await client.start()
        samples: list[float] = []
        try:
            for d in daemons:
                d.start()

            async def converged() -> bool:
                views = [await _states(client, d) for d in daemons]
                return all(list(v.values()).count("alive") == n for v in views)
            await _until(converged, 120, "all members alive everywhere")
            for k in range(kills):
                victim = daemons[1 + k % (n - 1)]
                others = [d for d in daemons if d is not victim]
                victim.kill()
                killed = time.monotonic()

                async def all_dead() -> bool:
                    views = [await _states(client, d) for d in others]
                    return all(v.get(victim.name) == "dead" for v in views)
                await _until(all_dead, 60, f"{victim.name} dead everywhere")
                samples.append(time.monotonic() - killed)
                victim.start()
                await _until(converged, 120, f"{victim.name} back")
        finally:
            await client.close()
            for d in daemons:
                d.stop()
        return samples


def main() -> None:
    """Simulated figures for each size, then the figure line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,50,100", help="cluster sizes, comma-separated")
    parser.add_argument("--seeds", type=int, default=5, help="independent runs per size")
    parser.add_argument("--kills", type=int, default=3, help="crashes measured per run")
    parser.add_argument("--joins", type=int, default=2, help="joins measured per run")
    parser.add_argument("--loss-seconds", type=float, default=600.0,
                        help="simulated seconds of 10%% loss per run (0 = skip)")
    parser.add_argument("--loss-seeds", type=int, default=2,
                        help="runs of the loss test per size (the slowest part)")
    parser.add_argument("--real", type=int, default=0, metavar="N",
                        help="also measure detection on N real daemons (0 = skip)")
    parser.add_argument("--real-kills", type=int, default=5,
                        help="SIGKILLs measured on the real daemons")
    parser.add_argument("--small", action="store_true",
                        help="10 members, one seed, one minute of loss (smoke tests)")
    args = parser.parse_args()
    if args.small:
        args.sizes, args.seeds, args.loss_seconds, args.loss_seeds = "10", 1, 60.0, 1
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if not sizes or min(sizes) < 3 or args.seeds < 1:
        parser.error("sizes must be at least 3 and seeds at least 1")
    print(f"memberlist LAN timers: probe {LAN.probe_interval}s (= 1 period), "
          f"timeout {LAN.probe_timeout}s, gossip {LAN.gossip_interval}s to "
          f"{LAN.gossip_nodes}, suspicion mult {LAN.suspicion_mult} "
          f"(max x{LAN.suspicion_max_timeout_mult}); seeds={args.seeds}")
    started = time.perf_counter()
    results = [run_size(n, args.seeds, args.kills, args.joins, args.loss_seconds,
                        args.loss_seeds) for n in sizes]
    for result in results:
        report(result)
    last = results[-1]
    formula = suspicion_timeout(LAN.suspicion_mult, last.n, LAN.probe_interval)
    p50, p99 = pct(last.detection, 0.5), pct(last.detection, 0.99)
    print(f"(simulated; {time.perf_counter() - started:.1f}s of wall time)")
    print(f"gossip N={last.n} detection_p50={p50:.2f}s detection_p99={p99:.2f}s "
          f"formula={formula:.2f}s ratio={p99 / formula:.2f}")
    if args.real:
        if args.real < 3 or args.real_kills < 1:
            parser.error("--real needs at least 3 daemons and one kill")
        import asyncio

        from novad.config import ClusterSection
        ours = GossipConfig.from_section(ClusterSection())
        samples = asyncio.run(real_processes(args.real, args.real_kills))
        formula = suspicion_timeout(ours.suspicion_mult, args.real, ours.probe_interval)
        p50, p99 = pct(samples, 0.5), pct(samples, 0.99)
        print(f"real processes: {len(samples)} SIGKILLs, every other member saw it dead after "
              + ", ".join(f"{x:.2f}" for x in samples) + " s")
        print(f"real N={args.real} detection_p50={p50:.2f}s detection_p99={p99:.2f}s "
              f"formula={formula:.2f}s ratio={p99 / formula:.2f}")


if __name__ == "__main__":
    main()
