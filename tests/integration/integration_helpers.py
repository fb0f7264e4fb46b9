"""The integration tier's tools: a real novad in a subprocess, on real QEMU.

The daemon runs ``python -m novad serve`` with ``connection_uri =
"qemu:///system"`` on a free port, with a state directory of its own; the
tests talk to it over HTTP with a token for its admin (from the clouds.yaml
it writes) and look at what really happened through libvirt
(``libvirt.open("qemu:///system")``), ``qemu-img`` and the guest's own
serial console (``console.log``).  Every wait is bounded polling: a test
never asserts how long something took, only that it happened.

The demo guest (``scripts/build-demo-guest``) prints ``novad-demo: booted``
once per boot, ``novad-demo: uptime <s>`` every second, and a line for the
config drive and the disks it sees.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import libvirt
import pytest
import requests
import yaml

ROOT = Path(__file__).resolve().parents[2]
QEMU_URI = "qemu:///system"
DEMO_DIR = ROOT / ".cache" / "demo-guest"
MARKER = "novad-demo: booted"
UPTIME = re.compile(r"novad-demo: uptime (\d+(?:\.\d+)?)")

# Flavors the tests create: the demo guest needs 80 MiB or more (64 loops).
SMALL = {"name": "it.small", "ram": 128, "vcpus": 1, "disk": 1, "id": "it-small"}
BIG = {"name": "it.big", "ram": 192, "vcpus": 2, "disk": 2, "id": "it-big"}
HUGE = {"name": "it.huge", "ram": 256, "vcpus": 2, "disk": 3, "id": "it-huge"}

T = TypeVar("T")


def wait_for(what: str, check: Callable[[], T | None], timeout: float = 90.0,
             interval: float = 0.5) -> T:
    """Poll ``check`` until it returns something truthy; fail naming ``what``.
    The timeout only bounds a hang."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def qemu_reachable() -> str | None:
    """None when qemu:///system answers, else why not."""
    try:
        conn = libvirt.open(QEMU_URI)
    except libvirt.libvirtError as exc:
        return str(exc)
    conn.close()
    return None


def ensure_demo_guest() -> Path:
    """Build the demo guest if needed (cached under .cache/); its folder."""
    subprocess.run([str(ROOT / "scripts" / "build-demo-guest"), "--out", str(DEMO_DIR)],
                   check=True, stdout=subprocess.DEVNULL)
    return DEMO_DIR


def config_text(state: Path, port: int, **defaults: Any) -> str:
    """novad.toml for an integration daemon: real QEMU, short timeouts."""
    default = {"state_dir": str(state), "listen": f"127.0.0.1:{port}",
               "shutdown_timeout": 10, "demo_image_dir": str(DEMO_DIR),
               "sync_power_state_interval": 60, **defaults}
    lines = ["[DEFAULT]"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in default.items()]
    lines += ["[compute]", "shutdown_retry_interval = 2",
              "[libvirt]", f'connection_uri = "{QEMU_URI}"', 'virt_type = "qemu"',
              "wait_soft_reboot_seconds = 20",
              # The console proxy (Phase 4) is not under test here; off, it
              # needs no second port.
              "[vnc]", "enabled = false",
              "[quota]", "instances = -1", "cores = -1", "ram = -1"]
    return "\n".join(lines) + "\n"


@dataclass
class Daemon:
    """A novad subprocess and an HTTP client for its admin."""

    state: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    token: str | None = None
    session: requests.Session = field(default_factory=requests.Session)
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.state.parent / f"{self.state.name}.log"

    def write_config(self, **defaults: Any) -> Path:
        path = self.state.parent / f"{self.state.name}.toml"
        path.write_text(config_text(self.state, self.port, **defaults))
        return path

    def start(self, timeout: float = 120.0) -> None:
        """Start ``novad serve`` and wait until /healthz says ready."""
        config = self.state.parent / f"{self.state.name}.toml"
        if not config.exists():
            self.write_config()
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"\n==== start {self.starts} ====\n".encode())
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "novad", "serve", "--config", str(config),
                 "--state-dir", str(self.state), "--listen", f"127.0.0.1:{self.port}"],
                stdout=log, stderr=subprocess.STDOUT, cwd=str(self.state.parent),
                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        wait_for("novad to be ready", self._ready, timeout)
        if self.token is None:
            self.login()

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"novad exited with {self.proc.returncode}:\n{self.log_tail()}")
        try:
            return requests.get(f"{self.url}/healthz", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    def kill(self) -> None:
        """SIGKILL, as a crash: guests keep running under libvirtd."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)
        self.proc = None

    def stop(self) -> None:
        """SIGTERM and wait (a clean stop)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)
        self.proc = None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    # -- HTTP ---------------------------------------------------------------

    def login(self) -> None:
        clouds = yaml.safe_load((self.state / "clouds.yaml").read_text())
        auth = clouds["clouds"]["novad"]["auth"]
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": auth["username"], "domain": {"id": "default"},
            "password": auth["password"]}}},
            "scope": {"project": {"name": auth["project_name"], "domain": {"id": "default"}}}}}
        resp = requests.post(f"{self.url}/identity/v3/auth/tokens", json=body, timeout=30)
        assert resp.status_code == 201, resp.text
        self.token = resp.headers["X-Subject-Token"]
        self.session.headers["X-Auth-Token"] = self.token

    def call(self, method: str, path: str, body: Any = None, ok: tuple[int, ...] = (),
             timeout: float = 60) -> requests.Response:
        """One API call; with ``ok``, any other status fails the test."""
        resp = self.session.request(method, f"{self.url}{path}", json=body, timeout=timeout)
        if ok and resp.status_code not in ok:
            raise AssertionError(f"{method} {path} -> {resp.status_code}: {resp.text}")
        return resp

    def server(self, uuid: str) -> dict[str, Any]:
        body: dict[str, Any] = self.call("GET", f"/compute/v2.1/servers/{uuid}",
                                         ok=(200,)).json()["server"]
        return body

    def action(self, uuid: str, body: dict[str, Any], ok: tuple[int, ...] = (202,)
               ) -> requests.Response:
        return self.call("POST", f"/compute/v2.1/servers/{uuid}/action", body, ok=ok)

    def create_flavor(self, flavor: dict[str, Any]) -> None:
        resp = self.call("POST", "/compute/v2.1/flavors", {"flavor": flavor})
        assert resp.status_code in (200, 409), resp.text

    def image_id(self, name: str) -> str:
        images = self.call("GET", f"/image/v2/images?name={name}", ok=(200,)).json()["images"]
        assert images, f"no image named {name}"
        return str(images[0]["id"])

    def create_server(self, name: str, flavor: str, image: str = "demo",
                      **extra: Any) -> str:
        body: dict[str, Any] = {"name": name, "flavorRef": flavor,
                                "imageRef": self.image_id(image) if image else "", **extra}
        if "user_data" in body:
            body["user_data"] = base64.b64encode(body["user_data"].encode()).decode()
        resp = self.call("POST", "/compute/v2.1/servers", {"server": body}, ok=(202,))
        return str(resp.json()["server"]["id"])

    def settled(self, uuid: str, timeout: float = 120.0) -> dict[str, Any]:
        """The server once its task_state is None (bounded)."""
        def check() -> dict[str, Any] | None:
            shown = self.server(uuid)
            return shown if shown.get("OS-EXT-STS:task_state") is None else None
        return wait_for(f"{uuid} to settle", check, timeout)

    def wait_status(self, uuid: str, status: str, timeout: float = 120.0) -> dict[str, Any]:
        """Settled in ``status`` (some actions, confirmResize for one, set no
        task_state, so this polls for the status too); ERROR fails at once."""
        def check() -> dict[str, Any] | None:
            shown = self.server(uuid)
            if shown["status"] == "ERROR" != status:
                raise AssertionError(f"{uuid}: wanted {status}, got ERROR "
                                     f"fault={shown.get('fault')}\n{self.log_tail()}")
            done = shown["status"] == status and shown.get("OS-EXT-STS:task_state") is None
            return shown if done else None
        try:
            return wait_for(f"{uuid} to be {status}", check, timeout)
        except AssertionError as exc:
            shown = self.server(uuid)
            raise AssertionError(f"{exc}: it is {shown['status']} "
                                 f"task={shown.get('OS-EXT-STS:task_state')}\n"
                                 f"{self.log_tail()}") from None

    def console_output(self, uuid: str) -> str:
        resp = self.action(uuid, {"os-getConsoleOutput": {"length": None}}, ok=(200,))
        return str(resp.json()["output"])

    # -- files ----------------------------------------------------------------

    def instance_dir(self, uuid: str) -> Path:
        return self.state / "instances" / uuid

    def console_log(self, uuid: str) -> str:
        try:
            return (self.instance_dir(uuid) / "console.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""


class Libvirt:
    """What the tests read from libvirt directly."""

    def __init__(self) -> None:
        self.conn = libvirt.open(QEMU_URI)

    def close(self) -> None:
        self.conn.close()

    def domain(self, uuid: str) -> Any | None:
        try:
            return self.conn.lookupByUUIDString(uuid)
        except libvirt.libvirtError:
            return None

    def state(self, uuid: str) -> int | None:
        dom = self.domain(uuid)
        if dom is None:
            return None
        try:
            return int(dom.state()[0])
        except libvirt.libvirtError:
            return None

    def xml(self, uuid: str) -> ET.Element:
        dom = self.domain(uuid)
        assert dom is not None, f"no domain for {uuid}"
        return ET.fromstring(dom.XMLDesc(0))

    def sizes(self, uuid: str) -> tuple[int, int]:
        """(vcpus, memory MiB) of the domain's XML."""
        root = self.xml(uuid)
        return int(root.findtext("vcpu", "0")), int(root.findtext("memory", "0")) // 1024

    def disk_targets(self, uuid: str) -> list[str]:
        root = self.xml(uuid)
        return sorted(t.get("dev", "") for t in root.iterfind("./devices/disk[@device='disk']/target"))

    def novad_domains(self) -> list[str]:
        return [d.UUIDString() for d in self.conn.listAllDomains(0)
                if d.name().startswith("novad-")]


def virtual_size(path: Path) -> int:
    """``qemu-img info``'s virtual size of a disk."""
    out = subprocess.run(["qemu-img", "info", "-U", "--output=json", str(path)],
                         check=True, capture_output=True, text=True).stdout
    return int(json.loads(out)["virtual-size"])


def boots(text: str) -> int:
    """How many times the guest booted, by its console log."""
    return text.count(MARKER)


def uptimes(text: str) -> list[float]:
    return [float(m) for m in UPTIME.findall(text)]


def ticking(d: Daemon, uuid: str, timeout: float = 60.0) -> float:
    """Wait for a new uptime tick after now; its value."""
    seen = len(uptimes(d.console_log(uuid)))

    def check() -> float | None:
        values = uptimes(d.console_log(uuid))
        return values[-1] if len(values) > seen else None
    return wait_for(f"{uuid} to tick", check, timeout)


def booted(d: Daemon, uuid: str, times: int = 1, timeout: float = 90.0) -> str:
    """Wait until the guest has booted ``times`` times; the log."""
    def check() -> str | None:
        text = d.console_log(uuid)
        return text if boots(text) >= times else None
    return wait_for(f"{uuid} to boot {times}x", check, timeout)


@pytest.fixture(scope="session")
def qemu() -> Iterator[Libvirt]:
    """A libvirt connection to qemu:///system, or a skip saying why not."""
    why = qemu_reachable()
    if why is not None:
        pytest.skip(f"qemu:///system is unreachable (scripts/libvirtd-up starts it): {why}")
    ensure_demo_guest()
    lv = Libvirt()
    yield lv
    lv.close()


def start_daemon(tmp: Path, **defaults: Any) -> Daemon:
    """A started daemon on ``tmp/state`` with the integration flavors."""
    d = Daemon(tmp / "state")
    d.write_config(**defaults)
    d.start()
    for flavor in (SMALL, BIG, HUGE):
        d.create_flavor(flavor)
    return d


def teardown_daemon(d: Daemon, lv: Libvirt) -> None:
    """Stop the daemon and remove whatever guests it left (a failed test's)."""
    d.stop()
    node = (d.state / "node_id").read_text().strip() if (d.state / "node_id").exists() else None
    for dom in lv.conn.listAllDomains(0):
        if not dom.name().startswith("novad-") or node is None:
            continue
        try:
            meta = dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT,
                                "https://novad.dev/xmlns/instance/1.0", 0)
        except libvirt.libvirtError:
            continue
        if f"<node>{node}</node>" in meta:
            try:
                if dom.isActive():
                    dom.destroy()
                dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
                                  | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA)
            except libvirt.libvirtError:
                pass
