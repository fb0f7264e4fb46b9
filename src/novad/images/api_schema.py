"""The JSON schemas Glance serves at ``/v2/schemas/image`` and
``/v2/schemas/images``, trimmed to what novad stores.

Clients fetch these to learn which attributes are core; everything not
listed is an extra property, always a string (``additionalProperties``).
"""

from __future__ import annotations

from typing import Any

from novad.images.model import CONTAINER_FORMATS, DISK_FORMATS, Visibility

_STATUSES = ["queued", "saving", "active", "killed", "deleted", "deactivated",
             "uploading", "importing", "pending_delete"]


def _ro(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {**schema, "readOnly": True, "description": description}


IMAGE_SCHEMA: dict[str, Any] = {
    "name": "image",
    "additionalProperties": {"type": "string"},
    "properties": {
        "id": {"type": "string", "description": "An identifier for the image",
               "pattern": "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}"
                          "-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$"},
        "name": {"type": ["null", "string"], "maxLength": 255,
                 "description": "Descriptive name for the image"},
        "status": _ro({"type": "string", "enum": _STATUSES}, "Status of the image"),
        "visibility": {"type": "string", "enum": [str(v) for v in Visibility],
                       "description": "Scope of image accessibility"},
        "protected": {"type": "boolean",
                      "description": "If true, image will not be deletable."},
        "os_hidden": {"type": "boolean",
                      "description": "If true, image will not appear in default image list "
                                     "response."},
        "checksum": _ro({"type": ["null", "string"], "maxLength": 32},
                        "md5 hash of image contents."),
        "os_hash_algo": _ro({"type": ["null", "string"], "maxLength": 64},
                            "Algorithm to calculate the os_hash_value"),
        "os_hash_value": _ro({"type": ["null", "string"], "maxLength": 128},
                             "Hexdigest of the image contents using the algorithm "
                             "specified by the os_hash_algo"),
        "owner": {"type": ["null", "string"], "maxLength": 255,
                  "description": "Owner of the image"},
        "size": _ro({"type": ["null", "integer"]}, "Size of image file in bytes"),
        "virtual_size": _ro({"type": ["null", "integer"]}, "Virtual size of image in bytes"),
        "container_format": {"type": ["null", "string"],
                             "enum": [None, *CONTAINER_FORMATS],
                             "description": "Format of the container"},
        "disk_format": {"type": ["null", "string"], "enum": [None, *DISK_FORMATS],
                        "description": "Format of the disk"},
        "created_at": _ro({"type": "string"}, "Date and time of image registration"),
        "updated_at": _ro({"type": "string"}, "Date and time of the last image modification"),
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 255},
                 "description": "List of strings related to the image"},
        "min_ram": {"type": "integer", "description": "Amount of ram (in MB) required to "
                                                      "boot image."},
        "min_disk": {"type": "integer", "description": "Amount of disk space (in GB) "
                                                       "required to boot image."},
        "self": _ro({"type": "string"}, "An image self url"),
        "file": _ro({"type": "string"}, "An image file url"),
        "schema": _ro({"type": "string"}, "An image schema url"),
        "kernel_id": {"type": ["null", "string"],
                      "description": "ID of image stored in Glance that should be used as "
                                     "the kernel when booting an AMI-style image."},
        "ramdisk_id": {"type": ["null", "string"],
                       "description": "ID of image stored in Glance that should be used as "
                                      "the ramdisk when booting an AMI-style image."},
        "instance_uuid": {"type": "string",
                          "description": "Metadata which can be used to record which "
                                         "instance this image is associated with."},
        "architecture": {"type": "string", "description": "Operating system architecture"},
        "os_distro": {"type": "string", "description": "Common name of operating system "
                                                       "distribution"},
        "os_version": {"type": "string", "description": "Operating system version"},
    },
    "links": [
        {"rel": "self", "href": "{self}"},
        {"rel": "enclosure", "href": "{file}"},
        {"rel": "describedby", "href": "{schema}"},
    ],
}
"""``GET /v2/schemas/image``."""

IMAGES_SCHEMA: dict[str, Any] = {
    "name": "images",
    "properties": {
        "images": {"type": "array", "items": IMAGE_SCHEMA},
        "schema": {"type": "string"},
        "first": {"type": "string"},
        "next": {"type": "string"},
    },
    "links": [
        {"rel": "first", "href": "{first}"},
        {"rel": "next", "href": "{next}"},
        {"rel": "describedby", "href": "{schema}"},
    ],
}
"""``GET /v2/schemas/images``."""
