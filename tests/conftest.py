"""Fixtures shared by every test folder."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from novad.app import SCHEMAS
from novad.store.db import Database


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    """The node's database in ``tmp_path``, every schema migrated, as the
    daemon opens it."""
    database = await Database.open(tmp_path / "novad.sqlite")
    await database.migrate(SCHEMAS)
    yield database
    await database.close()
