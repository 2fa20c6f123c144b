"""End-to-end fixtures: one running stack (REST and the web chat page) shared by the e2e modules."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from bot.devtools.stack import Stack, start_stack


@pytest.fixture(scope="session")
def stack(trained_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The real stack with the web chat page, started once per session; tests keep apart by unique sender ids."""
    running = start_stack(trained_model, tmp_path_factory.mktemp("stack"), webchat=True)
    yield running
    running.stop()
