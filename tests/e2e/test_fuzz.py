"""Fuzz every route of ``/openapi.json`` with an admin token: no 5xx, ever.

Two generators, each bounded per operation:

* **schemathesis** (operations with a request schema): positive and
  negative cases from the schema itself;
* **a hypothesis fuzzer** (every operation): random JSON bodies whose keys
  are often names the APIs know (``server``, ``flavorRef``, ``os-stop`` ...),
  JSON-patch lists, raw bytes under assorted content types, random query
  strings, and path parameters that are real ids, random UUIDs or garbage.

Real ids come from the ``seeded`` fixture (a server, an image, a key pair,
a flavor with an extra spec, an instance action, and a throwaway identity
project/user/role), so the fuzz reaches past "not found" into the handlers.
Every request carries a valid admin token.  Failures are collected rather
than raised, so hypothesis does not shrink them and one bad route does not
hide another; the test fails listing each (method, route, status) once,
with the request that caused it.

Runs are deterministic (``derandomize``); ``NOVAD_FUZZ_RANDOM=1`` draws new
inputs each run.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import pytest
import pytest_asyncio
import requests
from e2e_helpers import Daemon, make_disk
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

schemathesis = pytest.importorskip("schemathesis")

pytestmark = [pytest.mark.asyncio(loop_scope="module")]

MAX_EXAMPLES = 20
"""Examples per operation and generator."""

REQUEST_TIMEOUT = 30.0
"""Seconds one request may take; a timeout counts as a failure (a hang)."""

KNOWN_KEYS = [
    # compute bodies
    "server", "servers", "flavor", "keypair", "metadata", "meta", "extra_specs", "name",
    "flavorRef", "imageRef", "min_count", "max_count", "key_name", "networks", "user_data",
    "block_device_mapping_v2", "source_type", "destination_type", "boot_index", "uuid",
    "adminPass", "availability_zone", "config_drive", "return_reservation_id", "type",
    "ram", "vcpus", "disk", "id", "swap", "OS-FLV-EXT-DATA:ephemeral", "rxtx_factor",
    "os-flavor-access:is_public", "public_key", "length", "backup_type", "rotation",
    "host", "force", "block_migration", "onSharedStorage", "tenant", "rescue_image_ref",
    "addTenantAccess", "removeTenantAccess",
    # server actions
    "os-stop", "os-start", "pause", "unpause", "suspend", "resume", "reboot", "resize",
    "confirmResize", "revertResize", "shelve", "shelveOffload", "unshelve", "lock",
    "unlock", "rescue", "unrescue", "createImage", "createBackup", "rebuild", "evacuate",
    "migrate", "os-migrateLive", "forceDelete", "restore", "os-resetState",
    "os-getConsoleOutput", "os-getVNCConsole", "changePassword", "trigger_crash_dump",
    "state",
    # identity bodies
    "auth", "identity", "methods", "password", "token", "user", "scope", "project",
    "domain", "role", "enabled", "description", "default_project_id", "original_password",
    "unscoped", "system",
    # image bodies
    "disk_format", "container_format", "visibility", "protected", "min_ram", "min_disk",
    "tags", "os_hidden", "op", "path", "value",
]
"""Keys the APIs read, mixed into generated objects so bodies get past the
first ``KeyError`` check and into the handlers."""

QUERY_KEYS = ["name", "status", "limit", "marker", "all_tenants", "deleted", "changes-since",
              "is_public", "id", "visibility", "sort_key", "sort_dir", "sort", "tenant_id",
              "project_id", "host", "minDisk", "minRam", "user_id", "domain_id", "enabled",
              "owner", "member_status", "tag", "os_hidden", "nocatalog", "allow_expired",
              "include_names", "scope.project.id", "role.id", "user.id", "effective",
              "hypervisor_hostname_pattern", "image", "flavor", "ip", "reservation_id"]

CONTENT_TYPES = ["application/json", "application/openstack-images-v2.1-json-patch",
                 "application/octet-stream", "text/plain", "application/x-www-form-urlencoded",
                 "application/json; charset=latin-1", "multipart/form-data; boundary=x", ""]

_scalars = (st.none() | st.booleans() | st.integers(-2**63, 2**64)
            | st.floats(allow_nan=False, allow_infinity=False)
            | st.text(max_size=30) | st.sampled_from(["", "0", "1", "true", "None",
                                                     "SOFT", "HARD", "auto", "none",
                                                     "public", "qcow2", "bare", "novnc"]))
_keys = st.sampled_from(KNOWN_KEYS) | st.text(max_size=12)
JSON = st.recursive(_scalars, lambda children: st.lists(children, max_size=4)
                    | st.dictionaries(_keys, children, max_size=5), max_leaves=15)
"""Any JSON value, biased towards objects with keys the APIs know."""

JSON_PATCH = st.lists(st.fixed_dictionaries(
    {"op": st.sampled_from(["add", "replace", "remove", "move", "copy", "test"]) | st.text(),
     "path": st.sampled_from(["/name", "/visibility", "/min_ram", "/min_disk", "/tags",
                              "/tags/-", "/protected", "/os_hidden", "/status", "/id",
                              "/foo", "/disk_format", "/", ""]) | st.text()},
    optional={"value": JSON, "from": st.text()}), max_size=4)
"""Glance's JSON-patch bodies."""


@dataclass(frozen=True)
class Sent:
    """What was sent, for the failure report."""

    method: str
    url: str
    content_type: str | None
    body: Any


@dataclass
class Findings:
    """5xx answers and errors, one per (method, route, status)."""

    failures: dict[tuple[str, str, str], str] = field(default_factory=dict)
    requests: int = 0
    statuses: dict[int, int] = field(default_factory=dict)

    def check(self, method: str, route: str, sent: Sent, status: int, text: str) -> None:
        """Record ``status`` unless it is below 500 (or a clean 501, see below)."""
        self.requests += 1
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if status < 500 and "Traceback" not in text:
            return
        # 501 is allowed only as Nova's "not implemented" answer (for example
        # a console this node does not serve): a documented refusal, not a crash.
        if status == 501 and _is_clean_not_implemented(text):
            return
        key = (method.upper(), route, str(status))
        self.failures.setdefault(key, f"{sent} -> {status} {text[:300]}")

    def error(self, method: str, route: str, sent: Sent, exc: Exception) -> None:
        """A request that got no answer (timeout, reset connection)."""
        self.requests += 1
        key = (method.upper(), route, type(exc).__name__)
        self.failures.setdefault(key, f"{sent} -> {exc!r}")

    def report(self) -> str:
        return "\n".join(f"{m} {r} -> {s}:\n    {d}" for (m, r, s), d in
                         sorted(self.failures.items()))


def _is_clean_not_implemented(text: str) -> bool:
    try:
        body = json.loads(text)
    except ValueError:
        return False
    return isinstance(body, dict) and isinstance(body.get("notImplemented"), dict) \
        and body["notImplemented"].get("code") == 501


@dataclass
class Seeds:
    """Real ids per path-parameter name, split by what may be mutated."""

    any_method: dict[str, list[str]]
    read_only: dict[str, list[str]]

    def for_param(self, name: str, method: str) -> list[str]:
        values = list(self.any_method.get(name, []))
        if method.upper() in ("GET", "HEAD"):
            values += self.read_only.get(name, [])
        return values


async def _ok(novad: Daemon, method: str, path: str, token: str, body: Any = None,
              expect: tuple[int, ...] = (200, 201, 202, 204)) -> Any:
    status, answer = await novad.call(method, path, token, json_body=body)
    assert status in expect, (method, path, status, answer)
    return answer


async def _seed(novad: Daemon, token: str) -> Seeds:
    """Real resources for the fuzz to hit, created through the HTTP APIs."""
    compute, identity = "/compute/v2.1", "/identity/v3"
    path, disk_format = make_disk(novad.home, "fuzz.img")
    image = await _ok(novad, "POST", "/image/v2/images", token,
                      {"name": "fuzz-img", "disk_format": disk_format,
                       "container_format": "bare", "visibility": "public"})
    status, _ = await novad.call("PUT", f"/image/v2/images/{image['id']}/file", token,
                                 data=path.read_bytes(),
                                 headers={"Content-Type": "application/octet-stream"})
    assert status == 204
    flavor = (await _ok(novad, "POST", f"{compute}/flavors", token, {"flavor": {
        "name": "fuzz-f", "ram": 64, "vcpus": 1, "disk": 1}}))["flavor"]
    await _ok(novad, "POST", f"{compute}/flavors/{flavor['id']}/os-extra_specs", token,
              {"extra_specs": {"k1": "v1"}})
    await _ok(novad, "POST", f"{compute}/os-keypairs", token, {"keypair": {"name": "fk"}})
    server = (await _ok(novad, "POST", f"{compute}/servers", token, {"server": {
        "name": "fuzz-vm", "flavorRef": "42", "imageRef": image["id"], "networks": [],
        "metadata": {"k1": "v1"}}}))["server"]
    deadline = time.monotonic() + 60
    while (await _ok(novad, "GET", f"{compute}/servers/{server['id']}", token)
           )["server"]["status"] != "ACTIVE":
        assert time.monotonic() < deadline, "the fuzz server never became ACTIVE"
        await asyncio.sleep(0.2)
    actions = (await _ok(novad, "GET", f"{compute}/servers/{server['id']}/os-instance-actions",
                         token))["instanceActions"]
    project = (await _ok(novad, "POST", f"{identity}/projects", token,
                         {"project": {"name": "fuzz-p"}}))["project"]
    user = (await _ok(novad, "POST", f"{identity}/users", token, {"user": {
        "name": "fuzz-u", "password": "pw", "default_project_id": project["id"]}}))["user"]
    role = (await _ok(novad, "POST", f"{identity}/roles", token,
                      {"role": {"name": "fuzz-r"}}))["role"]
    me = (await _ok(novad, "GET", f"{identity}/users?name=admin", token))["users"][0]
    admin_project = (await _ok(novad, "GET", f"{identity}/projects?name=admin", token)
                     )["projects"][0]
    builtin_roles = [r["id"] for r in (await _ok(novad, "GET", f"{identity}/roles", token)
                                       )["roles"] if r["name"] != "fuzz-r"]
    return Seeds(
        any_method={
            "server_id": [server["id"]], "image_id": [image["id"]],
            "flavor_id": [flavor["id"], "42"], "name": ["fk"], "key": ["k1"],
            "request_id": [a["request_id"] for a in actions], "hypervisor_id": ["1"],
            "tag": ["t1"], "project_id": [project["id"]], "user_id": [user["id"]],
            "role_id": [role["id"]], "domain_id": ["default"]},
        # The admin's own user, project and roles are offered to reads only:
        # a fuzzed PATCH/DELETE/PUT on them would disable the admin or revoke
        # the token this fuzz runs with, and every later request would be a
        # 401 that tests nothing.  The fuzz-owned identity rows above take
        # the writes instead.
        read_only={"user_id": [me["id"]], "project_id": [admin_project["id"]],
                   "role_id": builtin_roles})


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def seeded(novad: Daemon) -> AsyncIterator[tuple[str, Seeds, dict[str, Any]]]:
    """(admin token, real ids, the OpenAPI document)."""
    token = await novad.token()
    seeds = await _seed(novad, token)
    status, document = await novad.call("GET", "/openapi.json", None)
    assert status == 200
    yield token, seeds, document


def _path_param(seeds: Seeds, name: str, method: str) -> st.SearchStrategy[str]:
    real = seeds.for_param(name, method)
    garbage = st.text(min_size=1, max_size=40).filter(lambda s: s not in (".", ".."))
    uuids = st.uuids().map(str)
    return (st.sampled_from(real) | uuids | garbage) if real else (uuids | garbage)


@st.composite
def _raw_request(draw: st.DrawFn, method: str, route: str, names: list[str], seeds: Seeds
                 ) -> tuple[str, dict[str, str], dict[str, str], bytes | None, str | None]:
    """(path, query, headers, body, content type) for one route."""
    path = route
    for name in names:
        value = draw(_path_param(seeds, name, method))
        path = path.replace("{" + name + "}", quote(value, safe=""))
    query = draw(st.dictionaries(st.sampled_from(QUERY_KEYS) | st.text(min_size=1, max_size=10),
                                 st.text(max_size=20) | st.integers().map(str), max_size=4))
    headers: dict[str, str] = {}
    if draw(st.booleans()):
        # Random subject tokens only: the admin token is never offered to
        # DELETE /auth/tokens, which would revoke it mid-run.
        headers["X-Subject-Token"] = draw(st.text(alphabet=st.characters(
            min_codepoint=33, max_codepoint=126), max_size=60))
    kind = draw(st.sampled_from(["none", "json", "json", "one-key", "patch", "bytes"]))
    if kind == "none":
        return path, query, headers, None, None
    # JSON half the time, so bodies get past the content-type check.
    ctype = draw(st.just("application/json") | st.sampled_from(CONTENT_TYPES))
    if kind == "json":
        body = json.dumps(draw(JSON)).encode()
    elif kind == "one-key":
        # The shape of a server action, a Keystone request or a Nova create.
        body = json.dumps(draw(st.dictionaries(st.sampled_from(KNOWN_KEYS), JSON,
                                               min_size=1, max_size=1))).encode()
        ctype = "application/json"
    elif kind == "patch":
        body = json.dumps(draw(JSON_PATCH)).encode()
        ctype = "application/openstack-images-v2.1-json-patch"
    else:
        body = draw(st.binary(max_size=256))
    return path, query, headers, body, ctype


FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES, deadline=None, database=None,
    phases=[Phase.explicit, Phase.generate],  # findings are collected, not shrunk
    suppress_health_check=list(HealthCheck),
    derandomize=os.environ.get("NOVAD_FUZZ_RANDOM") != "1")


def _fuzz_raw(base: str, token: str, seeds: Seeds, method: str, route: str,
              names: list[str], findings: Findings, session: requests.Session) -> None:
    @FUZZ_SETTINGS
    @given(_raw_request(method, route, names, seeds))
    def run(req: tuple[str, dict[str, str], dict[str, str], bytes | None, str | None]) -> None:
        path, query, headers, body, ctype = req
        hdrs = {"X-Auth-Token": token, **headers}
        if ctype is not None:
            hdrs["Content-Type"] = ctype
        sent = Sent(method, base + path + (f"?{urlencode(query)}" if query else ""), ctype,
                    body[:200] if body else None)
        try:
            resp = session.request(method.upper(), base + path, params=query, data=body,
                                   headers=hdrs, timeout=REQUEST_TIMEOUT,
                                   allow_redirects=False)
        except requests.RequestException as exc:
            findings.error(method, route, sent, exc)
            return
        findings.check(method, route, sent, resp.status_code, resp.text)

    run()


def _fuzz_schema(base: str, token: str, seeds: Seeds, operation: Any, findings: Findings,
                 session: requests.Session) -> None:
    method, route = operation.method, operation.path
    names = [p.name for p in operation.path_parameters]
    strategies = []
    # The token is fixed in the case itself: otherwise schemathesis fills
    # the X-Auth-Token security scheme with its own random value.
    auth = {"X-Auth-Token": token}
    for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
        strategies.append(operation.as_strategy(generation_mode=mode, headers=auth))
        real = {n: seeds.for_param(n, method) for n in names}
        if names and all(real.values()):
            strategies.append(operation.as_strategy(
                generation_mode=mode, headers=auth,
                path_parameters={n: v[0] for n, v in real.items()}))

    @FUZZ_SETTINGS
    @given(st.one_of(strategies))
    def run(case: Any) -> None:
        sent = Sent(method, base + case.formatted_path, case.media_type, case.body)
        try:
            resp = case.call(base_url=base, session=session, headers={"X-Auth-Token": token},
                             timeout=REQUEST_TIMEOUT, allow_redirects=False)
        except requests.RequestException as exc:
            findings.error(method, route, sent, exc)
            return
        findings.check(method, route, sent, resp.status_code, resp.text)

    run()


def fuzz(base: str, token: str, seeds: Seeds, document: dict[str, Any],
         wanted: Callable[[str], bool]) -> Findings:
    """Fuzz every operation whose path ``wanted`` accepts.  Blocks (run it in a thread)."""
    findings = Findings()
    schema = schemathesis.openapi.from_dict(document)
    operations = [r.ok() for r in schema.get_all_operations()]
    # DELETEs last: a fuzzed DELETE of a seeded resource would turn every
    # later request on it into a 404 that reaches no handler.
    operations.sort(key=lambda op: op.method.upper() == "DELETE")
    with requests.Session() as session:
        for operation in operations:
            if not wanted(operation.path):
                continue
            names = [p.name for p in operation.path_parameters]
            _fuzz_raw(base, token, seeds, operation.method, operation.path, names, findings,
                      session)
            if operation.body:
                _fuzz_schema(base, token, seeds, operation, findings, session)
    return findings


def _compute(path: str) -> bool:
    return path.startswith(("/compute", "/v2.1"))


def _image(path: str) -> bool:
    return path.startswith("/image")


def _identity_and_rest(path: str) -> bool:
    # Identity, plus the node-wide routes (/healthz, /openapi.json), so that
    # every route of the document is fuzzed by exactly one test.
    return not _compute(path) and not _image(path)


@pytest.mark.parametrize("wanted", [_compute, _image, _identity_and_rest],
                         ids=["compute", "image", "identity"])
async def test_no_5xx(novad: Daemon, seeded: tuple[str, Seeds, dict[str, Any]],
                      wanted: Callable[[str], bool]) -> None:
    token, seeds, document = seeded
    findings = await asyncio.to_thread(fuzz, novad.url, token, seeds, document, wanted)
    assert findings.requests > 0
    assert not findings.failures, \
        f"{len(findings.failures)} kinds of 5xx in {findings.requests} requests " \
        f"(statuses {sorted(findings.statuses.items())}):\n" + findings.report()
    # The token still works: the fuzz did not lock itself out and proved nothing.
    status, _ = await novad.call("GET", "/compute/v2.1/servers", token)
    assert status == 200


@pytest.mark.asyncio(loop_scope="module")
async def test_every_route_is_fuzzed(seeded: tuple[str, Seeds, dict[str, Any]]) -> None:
    _, _, document = seeded
    for path in document["paths"]:
        assert sum(f(path) for f in (_compute, _image, _identity_and_rest)) == 1, path
