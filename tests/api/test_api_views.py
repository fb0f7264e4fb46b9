"""The 2.1 server view, from real store records (pure functions, no HTTP)."""

from __future__ import annotations

import hashlib

from api_helpers import ADMIN, MEMBER

from novad.api.compute.views import Links, action_view, fault_view, iso_micro, iso_z, server_detail
from novad.states.enums import PowerState, TaskState, VmState
from novad.store.models import ActionRecord, FaultRecord, Flavor, Instance

LINKS = Links("http://node:8774", "/compute")
FLAVOR = Flavor(id="1", name="m1.tiny", vcpus=1, memory_mb=512, root_gb=1)


def instance(**changes: object) -> Instance:
    base = Instance(uuid="11111111-2222-3333-4444-555555555555", name="vm", project_id="p1",
                    user_id="u1", host="node-1", flavor=FLAVOR, image_ref="img-1",
                    vm_state=VmState.ACTIVE, task_state=None, power_state=PowerState.RUNNING,
                    created_at="2026-11-21T10:00:00.123456",
                    launched_at="2026-11-21T10:00:05.000001")
    return base.replace(**changes)


def test_active_server_for_its_owner() -> None:
    body = server_detail(instance(), LINKS, MEMBER)
    assert body["status"] == "ACTIVE" and body["progress"] == 0
    assert body["hostId"] == hashlib.sha224(b"p1node-1").hexdigest()
    assert body["image"] == {"id": "img-1", "links": [
        {"rel": "bookmark", "href": "http://node:8774/compute/images/img-1"}]}
    assert body["flavor"] == {"id": "1", "links": [
        {"rel": "bookmark", "href": "http://node:8774/compute/flavors/1"}]}
    assert body["links"][0]["href"] == \
        "http://node:8774/compute/v2.1/servers/11111111-2222-3333-4444-555555555555"
    assert (body["created"], body["updated"]) == ("2026-11-21T10:00:00Z",
                                                  "2026-11-21T10:00:00Z")
    assert body["OS-SRV-USG:launched_at"] == "2026-11-21T10:00:05.000001"
    assert body["OS-SRV-USG:terminated_at"] is None
    assert (body["OS-EXT-STS:vm_state"], body["OS-EXT-STS:task_state"],
            body["OS-EXT-STS:power_state"]) == ("active", None, 1)
    assert body["config_drive"] == "" and body["addresses"] == {}
    assert "locked" not in body and "fault" not in body
    assert not any(key.startswith("OS-EXT-SRV-ATTR") for key in body)


def test_admin_attributes_and_task_states() -> None:
    body = server_detail(instance(task_state=TaskState.POWERING_OFF, config_drive=True),
                         LINKS, ADMIN)
    assert body["status"] == "ACTIVE"
    assert body["OS-EXT-STS:task_state"] == "powering-off"
    assert body["OS-EXT-SRV-ATTR:host"] == "node-1"
    assert body["OS-EXT-SRV-ATTR:hypervisor_hostname"] == "node-1"
    assert body["config_drive"] == "True"
    stopped = server_detail(instance(vm_state=VmState.STOPPED, host=""), LINKS, ADMIN)
    assert stopped["status"] == "SHUTOFF" and "progress" not in stopped
    assert stopped["hostId"] == "" and stopped["OS-EXT-SRV-ATTR:host"] is None


def test_no_image_is_an_empty_string() -> None:
    assert server_detail(instance(image_ref=""), LINKS, MEMBER)["image"] == ""


def test_fault_only_in_error_or_deleted_and_details_hidden_for_500() -> None:
    fault = FaultRecord(code=500, message="boom", details="Traceback ...", host="node-1",
                        created_at="2026-11-21T10:01:00.5")
    assert "fault" not in server_detail(instance(), LINKS, MEMBER, fault)
    body = server_detail(instance(vm_state=VmState.ERROR), LINKS, MEMBER, fault)
    assert body["status"] == "ERROR"
    assert body["fault"] == {"code": 500, "created": "2026-11-21T10:01:00Z", "message": "boom"}
    assert server_detail(instance(vm_state=VmState.ERROR), LINKS, ADMIN,
                         fault)["fault"]["details"] == "Traceback ..."
    conflict = FaultRecord(409, "busy", "why", "node-1", "2026-11-21T10:01:00")
    assert fault_view(conflict, MEMBER)["details"] == "why"
    deleted = server_detail(instance(deleted=True), LINKS, MEMBER, fault)
    assert deleted["status"] == "DELETED" and "fault" in deleted


def test_times() -> None:
    assert iso_z("2026-11-21T10:00:00.999999") == "2026-11-21T10:00:00Z"
    assert iso_z("2026-11-21T12:00:00+02:00") == "2026-11-21T10:00:00Z"
    assert iso_micro("2026-11-21T10:00:00") == "2026-11-21T10:00:00.000000"
    assert iso_z(None) is None and iso_micro("") is None


def test_action_view_has_the_2_1_keys() -> None:
    record = ActionRecord(action="stop", instance_uuid="i", request_id="req-1", user_id="u",
                          project_id="p", start_time="2026-11-21T10:00:00.1",
                          finish_time="2026-11-21T10:00:01", message=None,
                          updated_at="2026-11-21T10:00:01")
    assert action_view(record) == {"action": "stop", "instance_uuid": "i",
                                   "request_id": "req-1", "user_id": "u", "project_id": "p",
                                   "start_time": "2026-11-21T10:00:00.100000",
                                   "message": None}
