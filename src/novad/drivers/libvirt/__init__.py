"""The libvirt driver (``LibvirtDriver``): novad's real hypervisor driver.

Modules: ``driver`` (the Driver contract on libvirt), ``xml`` (pure domain
XML generation), ``disks`` (instance directory files and qemu-img),
``events`` (libvirt's event loop and the lifecycle-event bridge), ``virt``
(a typed face on the untyped bindings).
"""

from novad.drivers.libvirt.driver import LibvirtDriver

__all__ = ["LibvirtDriver"]
