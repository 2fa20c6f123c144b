"""The trained model the slow tests share: trained once if its inputs changed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import pytest

from bot.config import PROJECT_ROOT
from bot.training import ensure_model

REPORTS = PROJECT_ROOT / "reports"


def quiet_env(**extra: str) -> Dict[str, str]:
    """Environment for Rasa subprocesses: less TensorFlow noise."""
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONWARNINGS="ignore", **extra)


def run_rasa(args: List[str], timeout: int = 900, cwd: Path = PROJECT_ROOT) -> subprocess.CompletedProcess:
    """Run `python -m rasa ARGS` and return the finished process (output captured)."""
    return subprocess.run([sys.executable, "-m", "rasa", *args], cwd=cwd, env=quiet_env(), capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="session")
def trained_model() -> Path:
    """Path of the model for the current training data, training it when needed."""
    return ensure_model(quiet=True)
