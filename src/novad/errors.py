"""The one error hierarchy of novad.

Every error a caller can see derives from :class:`NovadError` and carries its
HTTP status; one middleware renders it in the Compute API's error shape
(``{"conflictingRequest": {"code": 409, "message": ...}}``).  Handlers never
build HTTP errors themselves.

    NovadError                          500 computeFault
    ├── Invalid                         400 badRequest
    │   ├── ValidationFailed            400  (JSON schema)
    │   ├── MalformedBody               400
    │   ├── NoSuchAction                400
    │   ├── ComputeServiceInUse         400  (evacuate while host up)
    │   ├── UnsupportedRescueDevice     400  (hw_rescue_device Nova refuses)
    │   ├── UnsupportedRescueBus        400  (hw_rescue_bus Nova refuses)
    │   └── MigrationNotFinished        400  (confirm/revert without migration)
    ├── NotAuthenticated                401 unauthorized
    ├── Forbidden                       403 forbidden
    │   └── OverQuota                   403
    │       └── OnsetFileLimitExceeded  403  (personality: too many files)
    │           ├── OnsetFilePathLimitExceeded     403
    │           └── OnsetFileContentLimitExceeded  403
    ├── NotFound                        404 itemNotFound
    │   ├── InstanceNotFound
    │   ├── FlavorNotFound
    │   └── ImageNotFound
    ├── MethodNotAllowed                405 badMethod
    ├── NotAcceptable                   406 computeFault (unsupported microversion, as Nova)
    ├── Conflict                        409 conflictingRequest
    │   ├── InstanceInvalidState        409  "Cannot '<action>' instance <id> while it is in <attr> <state>"
    │   │   └── InstanceIsLocked        409  "Instance <uuid> is locked"
    │   ├── UnexpectedTaskState         409  (lost compare-and-swap)
    │   ├── InstanceNotReady            409
    │   ├── ServiceUnavailableForInstance 409
    │   └── ClaimFailed                 409  (the chosen node has no room: try the next)
    ├── Gone                            410 computeFault (an API Nova removed)
    ├── BodyTooLarge                    413 overLimit
    ├── UnsupportedMediaType            415 badMediaType
    ├── NotImplementedByDriver          501 notImplemented
    ├── NoValidHost                     (internal; ends an operation, never reaches HTTP)
    └── DriverError                     500 (hypervisor failure; recorded as a fault)
"""

from __future__ import annotations

from typing import Any, ClassVar

_KEYS: dict[int, str] = {
    400: "badRequest",
    401: "unauthorized",
    403: "forbidden",
    404: "itemNotFound",
    405: "badMethod",
    409: "conflictingRequest",
    413: "overLimit",
    415: "badMediaType",
    429: "overLimit",
    501: "notImplemented",
    503: "serviceUnavailable",
}


def body_key(status: int) -> str:
    """The Compute API's error-body key for an HTTP status."""
    return _KEYS.get(status, "computeFault")


class NovadError(Exception):
    """Root of every error novad reports; carries an HTTP status."""

    status: ClassVar[int] = 500
    default_message: ClassVar[str] = "An unexpected error occurred."

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)

    def body(self) -> dict[str, Any]:
        """The error in Nova's JSON error-body shape."""
        return {body_key(self.status): {"code": self.status, "message": self.message}}


class Invalid(NovadError):
    """The request is malformed or not acceptable as it stands."""

    status = 400
    default_message = "Bad request."


class ValidationFailed(Invalid):
    """A request body does not match its JSON schema."""


class MalformedBody(Invalid):
    """A request body that is not parseable JSON."""

    default_message = "Malformed request body"


class NoSuchAction(Invalid):
    """``POST /servers/{id}/action`` with an unknown action key."""

    def __init__(self, action: str) -> None:
        super().__init__(f"There is no such action: {action}")


class ComputeServiceInUse(Invalid):
    """Evacuate refused: the instance's compute host is still up."""

    def __init__(self, host: str) -> None:
        super().__init__(f"Compute service of {host} is still in use.")


class UnsupportedRescueDevice(Invalid):
    """A rescue image's ``hw_rescue_device`` is not a device rescue can attach."""

    def __init__(self, device: str) -> None:
        super().__init__(f"Requested rescue device '{device}' is not supported")


class UnsupportedRescueBus(Invalid):
    """A rescue image's ``hw_rescue_bus`` is not a bus this hypervisor has
    (or cannot carry the rescue device asked for)."""

    def __init__(self, bus: str, reason: str = "by the libvirt virt driver") -> None:
        super().__init__(f"Requested rescue bus '{bus}' is not supported {reason}")


class MigrationNotFinished(Invalid):
    """Confirm or revert asked for with no finished migration."""

    def __init__(self, instance_id: str) -> None:
        super().__init__(f"Instance has not been resized. (instance {instance_id})")


class NotAuthenticated(NovadError):
    """Missing, invalid or expired credentials."""

    status = 401
    default_message = "The request you have made requires authentication."


class Forbidden(NovadError):
    """The caller's roles do not allow this."""

    status = 403
    default_message = "Policy doesn't allow this operation to be performed."


class OverQuota(Forbidden):
    """A project quota would be exceeded."""


class OnsetFileLimitExceeded(OverQuota):
    """More personality files than the project's ``injected_files`` quota."""

    default_message = "Personality file limit exceeded"


class OnsetFilePathLimitExceeded(OnsetFileLimitExceeded):
    """A personality file path longer than ``injected_file_path_bytes``."""

    def __init__(self, allowed: int) -> None:
        super().__init__(f"Personality file path exceeds maximum {allowed}")


class OnsetFileContentLimitExceeded(OnsetFileLimitExceeded):
    """Decoded personality contents longer than ``injected_file_content_bytes``."""

    def __init__(self, allowed: int) -> None:
        super().__init__(f"Personality file content exceeds maximum {allowed}")


class NotFound(NovadError):
    """The resource does not exist or is not visible to the caller."""

    status = 404
    default_message = "Not found."


class InstanceNotFound(NotFound):
    """No such instance visible to the caller."""

    def __init__(self, instance_id: str) -> None:
        super().__init__(f"Instance {instance_id} could not be found.")


class FlavorNotFound(NotFound):
    """No such flavor."""

    def __init__(self, flavor_id: str) -> None:
        super().__init__(f"Flavor {flavor_id} could not be found.")


class ImageNotFound(NotFound):
    """No such image."""

    def __init__(self, image_id: str, message: str | None = None) -> None:
        super().__init__(message or f"Image {image_id} could not be found.")


class MethodNotAllowed(NovadError):
    """The route exists but not for this HTTP method."""

    status = 405
    default_message = "The method is not allowed for this resource."


class NotAcceptable(NovadError):
    """An API microversion outside the supported range."""

    status = 406
    default_message = "Version not supported."


class Gone(NovadError):
    """An API Nova removed with the service behind it (nova-network's):
    410 at every microversion, in webob's words as Nova sends them."""

    status = 410
    default_message = "This resource is no longer available.  No forwarding address is given."


class Conflict(NovadError):
    """The request conflicts with the resource's current state."""

    status = 409
    default_message = "Conflict."


class InstanceInvalidState(Conflict):
    """An action's guard refused the instance's current state."""

    def __init__(self, action: str, instance_id: str, attr: str, state: object) -> None:
        self.action, self.instance_id, self.attr, self.state = action, instance_id, attr, state
        super().__init__(
            f"Cannot '{action}' instance {instance_id} while it is in {attr} {state}"
        )


class InstanceIsLocked(InstanceInvalidState):
    """The instance is locked and the caller is not an admin."""

    def __init__(self, action: str, instance_id: str) -> None:
        Conflict.__init__(self, f"Instance {instance_id} is locked")
        self.action, self.instance_id, self.attr, self.state = action, instance_id, "locked", True


class UnexpectedTaskState(Conflict):
    """A compare-and-swap found a state other than the expected one."""

    def __init__(self, instance_id: str, expected: object, actual: object) -> None:
        self.instance_id, self.expected, self.actual = instance_id, expected, actual
        super().__init__(
            f"Conflict updating instance {instance_id}. Expected: {expected}. Actual: {actual}"
        )


class InstanceNotReady(Conflict):
    """The instance has no host yet."""

    def __init__(self, instance_id: str) -> None:
        super().__init__(f"Instance {instance_id} is not ready")


class ServiceUnavailableForInstance(Conflict):
    """The compute service the action needs is down."""


class ClaimFailed(Conflict):
    """The node the scheduler chose cannot fit the server after all."""


class GuestAgentNotEnabled(Conflict):
    """changePassword on a guest whose image does not enable the QEMU guest agent."""

    default_message = "QEMU guest agent is not enabled"


class PasswordSetFailed(Conflict):
    """changePassword failed; the reason never carries the password."""

    def __init__(self, instance_id: str, reason: str) -> None:
        super().__init__(f"Failed to set admin password on {instance_id} because {reason}")


class BodyTooLarge(NovadError):
    """The request body exceeds ``max_request_body_size``."""

    status = 413
    default_message = "Request is too large."


class UnsupportedMediaType(NovadError):
    """A request body that is not JSON where JSON is required."""

    status = 415
    default_message = "Unsupported Content-Type"


class NotImplementedByDriver(NovadError):
    """The hypervisor driver cannot do this."""

    status = 501
    default_message = "Action not supported by the hypervisor."


class NoValidHost(NovadError):
    """The scheduler found no host; ends an operation without an error state.

    The message stays Nova's; ``detail`` (and ``filter_name``, the filter
    that removed the last hosts) says why, for logs and the fault's
    details, which only admins see."""

    default_message = "No valid host was found. There are not enough hosts available."

    def __init__(self, message: str | None = None, *, filter_name: str | None = None,
                 detail: str | None = None) -> None:
        super().__init__(message)
        self.filter_name = filter_name
        if detail is None and filter_name is not None:
            detail = f"Filter {filter_name} returned 0 hosts"
        self.detail = detail

    def __str__(self) -> str:
        return self.message if self.detail is None else f"{self.message} ({self.detail})"


class DriverError(NovadError):
    """The hypervisor failed an operation."""

    default_message = "The hypervisor failed the operation."


class InstanceFaultRollback(NovadError):
    """A driver failure before the guest was touched: roll back, not ERROR."""
