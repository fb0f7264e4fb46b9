"""The daemon's garbage-collector settings (``novad.app.settle_gc``)."""

from __future__ import annotations

import subprocess
import sys


def test_settle_gc_freezes_startup_objects_and_raises_thresholds() -> None:
    """Run in a child: the settings are process-wide and would change pytest's."""
    code = ("import gc; from novad.app import GC_THRESHOLDS, settle_gc; settle_gc(); "
            "print(gc.get_threshold() == GC_THRESHOLDS, gc.get_freeze_count() > 1000)")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True).stdout.split()
    assert out == ["True", "True"]
