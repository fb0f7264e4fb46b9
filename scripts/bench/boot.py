#!/usr/bin/env python3
"""Boot and stop/start of a real QEMU guest: through novad's API versus libvirt directly.

A real daemon (``python -m novad serve``, ``qemu:///system``, the demo
guest of ``scripts/build-demo-guest``) runs in its own process on a free
port.  Two phases, each alternating novad and direct, the side that goes
first changing every round:

* **boot** (``--rounds``, 60 a side): novad, ``POST /servers`` until
  ``GET /servers/{id}`` says ACTIVE (polled every 10 ms); direct,
  ``defineXML`` + ``create()`` of the same XML novad generated
  (``<instance_dir>/libvirt.xml`` with a new name, uuid, root disk overlay
  and console log).  Each guest is deleted as soon as it counts as started.
* **stop/start** (``--cycles``, 30 a side): one booted guest a side.  novad
  ``os-stop`` until SHUTOFF then ``os-start`` until ACTIVE; direct,
  ``shutdown()`` (ACPI, re-sent every 2 s as novad does) until shut off,
  then ``create()``.  Between cycles each guest boots again (its marker and
  a tick in console.log, untimed), so that its acpid hears the next press.

Prints every sample, the medians and the ratios novad/direct, each ratio
with a 95% bootstrap interval (each side's samples resampled), so a run
shows its own precision.  Many samples rather than the five the issue
names: single QEMU start-ups vary by about ±40 ms under TCG, which moves
the ratio of two 5-sample medians by about ±0.09 from run to run -- more
than novad adds.  Booting without waiting for the guest makes a boot
sample cost about a second, so 60 a side take a minute.
Run: ``.venv/bin/python scripts/bench/boot.py`` (needs ``scripts/libvirtd-up``).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

# scripts/bench/transitions.py would shadow the ``transitions`` library.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import libvirt  # noqa: E402
import yaml  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
URI = "qemu:///system"
POLL = 0.01
MARKER = "novad-demo: booted"
FLAVOR = {"name": "bench.small", "ram": 128, "vcpus": 1, "disk": 1, "id": "bench-small"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def until(what: str, check: Callable[[], bool], timeout: float = 120.0,
          interval: float = POLL) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: timed out waiting for {what}")
        time.sleep(interval)


class Reply(NamedTuple):
    """An API answer, read whole."""

    status_code: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Novad:
    """The daemon under test and an admin session on its API."""

    def __init__(self, work: Path) -> None:
        self.state = work / "state"
        self.port = free_port()
        config = work / "novad.toml"
        config.write_text("\n".join([
            "[DEFAULT]", f'demo_image_dir = "{ROOT / ".cache" / "demo-guest"}"',
            "[compute]", "shutdown_retry_interval = 2",
            "[libvirt]", f'connection_uri = "{URI}"', 'virt_type = "qemu"',
            "[vnc]", "enabled = false"]) + "\n")
        self.log = (work / "novad.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "novad", "serve", "--config", str(config),
             "--state-dir", str(self.state), "--listen", f"127.0.0.1:{self.port}"],
            stdout=self.log, stderr=subprocess.STDOUT)
        until("novad to be ready", self._ready, 120, 0.2)
        self.http = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        self.headers = {"Content-Type": "application/json"}
        auth = yaml.safe_load((self.state / "clouds.yaml").read_text())["clouds"]["novad"]["auth"]
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": auth["username"], "domain": {"id": "default"},
            "password": auth["password"]}}},
            "scope": {"project": {"name": auth["project_name"], "domain": {"id": "default"}}}}}
        self.headers["X-Auth-Token"] = self.call(
            "POST", "/identity/v3/auth/tokens", body).headers["X-Subject-Token"]
        self.call("POST", "/compute/v2.1/flavors", {"flavor": FLAVOR})
        images = self.call("GET", "/image/v2/images?name=demo").json()["images"]
        if not images:
            raise SystemExit("bench: no demo image (run scripts/build-demo-guest)")
        self.image = images[0]["id"]

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise SystemExit("bench: novad exited; see its log")
        probe = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
        try:
            probe.request("GET", "/healthz")
            return probe.getresponse().status == 200
        except OSError:
            return False
        finally:
            probe.close()

    def call(self, method: str, path: str, body: Any = None) -> Reply:
        """One request on the kept-alive connection.  ``http.client`` rather
        than ``requests``: a status poll then costs the client about a fifth
        of the CPU (0.16 ms against 0.78 ms here), CPU that a poll every
        10 ms would otherwise take from the QEMU start being timed.  No
        retry: the bench is never idle for long enough (aiohttp keeps a
        connection 75 s) for the server to close it, and a repeated POST
        could start a second action."""
        data = None if body is None else json.dumps(body).encode()
        self.http.request(method, path, body=data, headers=self.headers)
        resp = self.http.getresponse()
        return Reply(resp.status, dict(resp.getheaders()), resp.read())

    def status(self, server: str) -> str:
        shown = self.call("GET", f"/compute/v2.1/servers/{server}").json()["server"]
        return str(shown["status"]) if shown.get("OS-EXT-STS:task_state") is None else "BUSY"

    def boot(self, name: str) -> tuple[str, float]:
        start = time.perf_counter()
        resp = self.call("POST", "/compute/v2.1/servers", {"server": {
            "name": name, "flavorRef": FLAVOR["id"], "imageRef": self.image}})
        server = str(resp.json()["server"]["id"])
        until(f"{name} ACTIVE", lambda: self.status(server) == "ACTIVE")
        return server, time.perf_counter() - start

    def stop_start(self, server: str) -> float:
        start = time.perf_counter()
        self.call("POST", f"/compute/v2.1/servers/{server}/action", {"os-stop": None})
        until("SHUTOFF", lambda: self.status(server) == "SHUTOFF")
        self.call("POST", f"/compute/v2.1/servers/{server}/action", {"os-start": None})
        until("ACTIVE", lambda: self.status(server) == "ACTIVE")
        return time.perf_counter() - start

    def console(self, server: str) -> Path:
        return self.state / "instances" / server / "console.log"

    def delete(self, server: str) -> None:
        self.call("DELETE", f"/compute/v2.1/servers/{server}")
        until("delete", lambda: self.call("GET", f"/compute/v2.1/servers/{server}")
              .status_code == 404, 120, 0.02)

    def delete_all(self) -> None:
        """Delete whatever servers are left (after a failed round)."""
        servers = self.call("GET", "/compute/v2.1/servers").json().get("servers", [])
        for server in servers:
            self.delete(server["id"])

    def close(self) -> None:
        self.http.close()
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(60)
        self.log.close()


class Direct:
    """The same guests, defined and started with libvirt-python alone."""

    def __init__(self, template: str, work: Path) -> None:
        libvirt.registerErrorHandler(lambda _ctx, _err: None, None)  # errors raise anyway
        self.conn = libvirt.open(URI)
        self.template = template
        self.work = work
        self.made: list[Any] = []

    def xml_for(self, name: str) -> tuple[str, Path]:
        """The template with a new name, uuid, root disk overlay and console log."""
        root = ET.fromstring(self.template)
        root.find("name").text = name  # type: ignore[union-attr]
        root.find("uuid").text = str(uuid.uuid4())  # type: ignore[union-attr]
        metadata = root.find("metadata")
        if metadata is not None:
            root.remove(metadata)  # not novad's guest: no novad:node tag
        folder = self.work / name
        folder.mkdir()
        for disk in root.iterfind("./devices/disk[@device='disk']"):
            source = disk.find("source")
            assert source is not None
            info = json.loads(subprocess.run(
                ["qemu-img", "info", "-U", "--output=json", source.get("file", "")],
                check=True, capture_output=True, text=True).stdout)
            overlay = folder / "disk"
            subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b",
                            info["backing-filename"], str(overlay),
                            str(info["virtual-size"])], check=True)
            source.set("file", str(overlay))
        log = folder / "console.log"
        for source in root.iterfind("./devices/*[@type='file']/source"):
            if source.get("path"):
                source.set("path", str(log))
        return ET.tostring(root, encoding="unicode"), log

    def boot(self, xml: str) -> tuple[Any, float]:
        start = time.perf_counter()
        dom = self.conn.defineXML(xml)
        dom.create()
        elapsed = time.perf_counter() - start
        self.made.append(dom)
        return dom, elapsed

    def stop_start(self, dom: Any) -> float:
        start = time.perf_counter()
        dom.shutdown()
        next_press = time.monotonic() + 2
        while dom.state()[0] != libvirt.VIR_DOMAIN_SHUTOFF:
            if time.monotonic() > next_press:
                try:
                    dom.shutdown()
                except libvirt.libvirtError:
                    pass  # it went down meanwhile
                next_press = time.monotonic() + 2
            time.sleep(POLL)
        dom.create()
        return time.perf_counter() - start

    def remove(self, dom: Any) -> None:
        if dom in self.made:
            self.made.remove(dom)
        try:
            if dom.isActive():
                dom.destroy()
            dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE)
        except libvirt.libvirtError:
            pass  # already gone

    def close(self) -> None:
        for dom in list(self.made):
            self.remove(dom)
        self.conn.close()


def ratio_interval(ours: list[float], theirs: list[float], draws: int = 2000
                   ) -> tuple[float, float]:
    """A 95% bootstrap interval for median(ours) / median(theirs)."""
    rng = random.Random(0)
    ratios = sorted(
        statistics.median(rng.choices(ours, k=len(ours)))
        / statistics.median(rng.choices(theirs, k=len(theirs))) for _ in range(draws))
    return ratios[int(0.025 * draws)], ratios[int(0.975 * draws) - 1]


def booted(log: Path, times: int = 1) -> bool:
    """The guest booted ``times`` times and ticked since (so its acpid runs
    and an ACPI shutdown is not lost)."""
    try:
        text = log.read_text(errors="replace")
    except FileNotFoundError:
        return False
    return text.count(MARKER) >= times and "uptime" in text.rsplit(MARKER, 1)[-1]


def turns(n: int) -> tuple[str, str]:
    """Who goes first in round ``n``: novad, then direct, in turn."""
    return ("novad", "direct") if n % 2 == 0 else ("direct", "novad")


def bench_boots(novad: Novad, direct: Direct, rounds: int) -> dict[str, list[float]]:
    """Boot-to-ACTIVE, each guest removed once it counts as started."""
    times: dict[str, list[float]] = {"novad": [], "direct": []}
    for n in range(rounds):
        for who in turns(n):
            if who == "novad":
                server, took = novad.boot(f"bench-{n}")
                novad.delete(server)
            else:
                xml, _ = direct.xml_for(f"bench-direct-{os.getpid()}-{n}")
                dom, took = direct.boot(xml)
                direct.remove(dom)
            times[who].append(took)
            print(f"boot  {n + 1:3} {who:6}: {took * 1000:5.0f} ms", flush=True)
    return times


def bench_stop_starts(novad: Novad, direct: Direct, cycles: int) -> dict[str, list[float]]:
    """Stop/start of one booted guest a side, each cycle waiting until it has
    booted again (untimed)."""
    server, _ = novad.boot("bench-cycle")
    xml, log = direct.xml_for(f"bench-direct-{os.getpid()}-cycle")
    dom, _ = direct.boot(xml)
    until("the guests to boot", lambda: booted(novad.console(server)) and booted(log), 120, 0.1)
    times: dict[str, list[float]] = {"novad": [], "direct": []}
    for n in range(cycles):
        for who in turns(n):
            if who == "novad":
                took = novad.stop_start(server)
                until("the guest to boot again",
                      lambda: booted(novad.console(server), n + 2), 120, 0.1)
            else:
                took = direct.stop_start(dom)
                until("the guest to boot again", lambda: booted(log, n + 2), 120, 0.1)
            times[who].append(took)
            print(f"cycle {n + 1:3} {who:6}: {took * 1000:5.0f} ms", flush=True)
    novad.delete(server)
    direct.remove(dom)
    return times


def report(label: str, times: dict[str, list[float]]) -> None:
    ours, theirs = statistics.median(times["novad"]), statistics.median(times["direct"])
    low, high = ratio_interval(times["novad"], times["direct"])
    print(f"{label}: novad median={ours * 1000:.0f}ms direct libvirt median="
          f"{theirs * 1000:.0f}ms ratio={ours / theirs:.2f} "
          f"(95% interval {low:.2f}-{high:.2f}, {len(times['novad'])} a side)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=60, help="boots a side")
    parser.add_argument("--cycles", type=int, default=30, help="stop/starts a side")
    args = parser.parse_args()
    subprocess.run([str(ROOT / "scripts" / "build-demo-guest")], check=True,
                   stdout=subprocess.DEVNULL)
    work = Path(tempfile.mkdtemp(prefix="novad-bench-boot-"))
    novad = Novad(work)
    direct: Direct | None = None
    try:
        template_server, _ = novad.boot("bench-template")  # warms the image cache
        template = (novad.state / "instances" / template_server / "libvirt.xml").read_text()
        # Stopped, so that it takes no CPU from the guests measured.
        until("the template to boot", lambda: booted(novad.console(template_server)), 120, 0.1)
        novad.call("POST", f"/compute/v2.1/servers/{template_server}/action", {"os-stop": None})
        until("the template to stop", lambda: novad.status(template_server) == "SHUTOFF")
        (work / "direct").mkdir()
        direct = Direct(template, work / "direct")
        boots = bench_boots(novad, direct, args.rounds)
        cycles = bench_stop_starts(novad, direct, args.cycles)
        novad.delete(template_server)
        report("boot-to-ACTIVE", boots)
        report("stop/start", cycles)
    finally:
        if direct is not None:
            direct.close()
        novad.delete_all()
        novad.close()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
