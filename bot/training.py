"""Training the Rasa model only when its inputs changed, and finding the newest model."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path
from typing import Iterable, List, Optional

from bot.config import PROJECT_ROOT, rasa_env

# Everything a trained model depends on. data/community is database content, not training data.
TRAINING_INPUTS = ("config.yml", "domain.yml", "data/nlu", "data/stories", "data/dict")
TRAINING_DATA = ("data/nlu", "data/stories")
MODEL_PREFIX = "hg-"


def validate_command() -> List[str]:
    """`rasa data validate` on the training data, the domain and config.yml, failing on warnings (`make validate`,
    the retrain command and its test all run this one)."""
    return [sys.executable, "-m", "rasa", "data", "validate", "--data", *TRAINING_DATA, "--domain", "domain.yml",
            "--config", "config.yml", "--fail-on-warnings"]


def training_root(reviewed_dir: Path, scratch: Path, root: Path = PROJECT_ROOT) -> Path:
    """The folder to train from: `root` itself when the reviewed labels are kept inside its data/nlu (the
    default), else a copy of its training inputs in `scratch` with the reviewed files added under
    data/nlu/reviewed_elsewhere/ (HG_REVIEWED_DIR pointing outside the repository)."""
    import shutil

    nlu = (root / "data" / "nlu").resolve()
    if reviewed_dir.resolve().is_relative_to(nlu):
        return root
    for name in TRAINING_INPUTS:
        source, target = root / name, scratch / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
        elif source.is_file():
            shutil.copyfile(source, target)
    extra = scratch / "data" / "nlu" / "reviewed_elsewhere"
    extra.mkdir(parents=True, exist_ok=True)
    for file in sorted(reviewed_dir.glob("*.yml")) if reviewed_dir.is_dir() else []:
        shutil.copyfile(file, extra / file.name)
    return scratch


def _files(root: Path, inputs: Iterable[str]) -> List[Path]:
    found: List[Path] = []
    for name in inputs:
        path = root / name
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts))
    return found


def fingerprint(root: Path = PROJECT_ROOT) -> str:
    """A hash of every training input's path and content."""
    digest = hashlib.sha256()
    for path in _files(root, TRAINING_INPUTS):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def model_path(root: Path = PROJECT_ROOT, models_dir: Optional[Path] = None) -> Path:
    """Where the model for the current inputs lives (it may not exist yet)."""
    return (models_dir or root / "models") / f"{MODEL_PREFIX}{fingerprint(root)}.tar.gz"


def ensure_model(root: Path = PROJECT_ROOT, models_dir: Optional[Path] = None, quiet: bool = False) -> Path:
    """Train a model unless one for the current inputs exists; returns its path."""
    target = model_path(root, models_dir)
    if target.is_file():
        if not quiet:
            print(f"model: up to date ({target.relative_to(root) if target.is_relative_to(root) else target})")
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    print(f"model: training data or config changed, training {target.name} (a few minutes)…", flush=True)
    cmd = [sys.executable, "-m", "rasa", "train", "--config", "config.yml", "--domain", "domain.yml",
           "--data", *TRAINING_DATA, "--out", str(target.parent), "--fixed-model-name", target.name[:-7],
           # Rasa's cache does not see jieba dictionary edits; our fingerprint does, so train from scratch.
           "--force"]
    env = rasa_env()
    result = subprocess.run(cmd, cwd=root, env=env)
    if result.returncode != 0 or not target.is_file():
        raise SystemExit(f"model: training failed (exit {result.returncode})")
    print(f"model: trained {target.name}", flush=True)
    return target
