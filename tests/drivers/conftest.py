"""Fixtures of the driver tests: a started driver per case, fresh specs
destroyed at teardown, a small image file.  The cases live in
``driver_cases`` (a module name no other test folder uses)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from driver_cases import CASES, DriverCase, SpecMaker

from novad.drivers.base import Driver, ImageSpec


@pytest.fixture(params=sorted(CASES))
def case(request: pytest.FixtureRequest) -> DriverCase:
    """One driver case; every contract test runs once per case."""
    return CASES[request.param]


@pytest.fixture
async def driver(case: DriverCase, tmp_path: Path) -> AsyncIterator[Driver]:
    """A started driver whose state lives under ``tmp_path``."""
    drv = case.make(tmp_path)
    await drv.start()
    try:
        yield drv
    finally:
        await drv.close()


@pytest.fixture
async def make_spec(driver: Driver, tmp_path: Path) -> AsyncIterator[SpecMaker]:
    """A :class:`SpecMaker`; every guest it named is destroyed at teardown."""
    maker = SpecMaker(tmp_path, [])
    yield maker
    for spec in maker.made:
        await driver.destroy(spec.instance_id, spec.instance_dir)


@pytest.fixture
def raw_image(tmp_path: Path) -> Iterator[ImageSpec]:
    """A small raw image file with some data in it."""
    path = tmp_path / "images" / "tiny.raw"
    path.parent.mkdir(parents=True)
    with path.open("wb") as f:
        f.write(b"novad-boot-sector".ljust(512, b"\0"))
        f.truncate(16 * 1024 * 1024)
    yield ImageSpec(image_id=f"img-{uuid.uuid4()}", path=path, disk_format="raw")
