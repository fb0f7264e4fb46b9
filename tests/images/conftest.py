"""Fixtures of the image tests; the helpers live in ``images_helpers`` so test
modules can import them by a name no other test folder uses."""

from images_helpers import api, images_dir, service

__all__ = ["api", "images_dir", "service"]
