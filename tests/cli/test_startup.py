"""``novad serve`` with bad input stops with one clear line and writes nothing.

Runs the real ``novad`` entry point in a subprocess.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

NOVAD = [sys.executable, "-m", "novad"]


def serve(tmp_path: Path, config_text: str, listen: str = "127.0.0.1:0"
          ) -> subprocess.CompletedProcess[str]:
    conf = tmp_path / "novad.toml"
    conf.write_text(config_text)
    return subprocess.run([*NOVAD, "serve", "--config", str(conf), "--state-dir",
                           str(tmp_path / "state"), "--listen", listen],
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(("text", "names"), [
    ('[DEFAULT]\nshutdown_timeot = 5\n', "DEFAULT.shutdown_timeot: unknown option"),
    ('[libvirt]\nwait_soft_reboot_seconds = "soon"\n',
     "libvirt.wait_soft_reboot_seconds: expected an integer"),
    ('[nonsense]\nx = 1\n', "nonsense: unknown section"),
    ('[DEFAULT\n', "not valid TOML"),
])
def test_bad_config_stops_with_one_line_naming_the_key(tmp_path: Path, text: str,
                                                       names: str) -> None:
    result = serve(tmp_path, text)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and names in lines[0], result.stderr
    assert not (tmp_path / "state").exists()


def test_bad_listen_flag_stops_with_one_line(tmp_path: Path) -> None:
    result = serve(tmp_path, "", listen="nowhere")
    assert result.returncode != 0
    assert "DEFAULT.listen: expected HOST:PORT" in result.stderr.strip().splitlines()[0]
    assert not (tmp_path / "state").exists()


def test_unreachable_libvirt_stops_before_the_store_is_written(tmp_path: Path) -> None:
    result = serve(tmp_path, '[libvirt]\nconnection_uri = "qemu+tcp://127.0.0.1:1/system"\n')
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot start" in lines[0] and "127.0.0.1:1" in lines[0], \
        result.stderr
    assert not (tmp_path / "state").exists()
