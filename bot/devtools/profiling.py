"""Sampling profiles of our running servers with py-spy, for the benchmarks (`--profile NAME`).

`Recording` attaches py-spy to a process of the stack for the duration of a `with` block and writes the raw
collapsed stacks under `reports/profiles/`; `summary` turns them into the shares that matter: per function, the
fraction of samples in which it is on the stack (inclusive) and on top (self). py-spy comes from the lock
(requirements.lock) and needs ptrace rights on the process (root, or kernel.yama.ptrace_scope=0).
"""

from __future__ import annotations

import collections
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

from bot.config import PROJECT_ROOT

PROFILES = PROJECT_ROOT / "reports" / "profiles"


def py_spy() -> Path:
    """The py-spy executable of this venv."""
    exe = Path(sys.executable).with_name("py-spy")
    if not exe.is_file():
        raise RuntimeError(f"py-spy is not installed in {exe.parent} (it is in requirements.lock: run make setup)")
    return exe


class Recording:
    """py-spy recording one process (and its subprocesses) at `rate` Hz while the block runs."""

    def __init__(self, pid: int, name: str, rate: int = 50) -> None:
        PROFILES.mkdir(parents=True, exist_ok=True)
        self.path = PROFILES / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.txt"
        self.cmd = [str(py_spy()), "record", "--pid", str(pid), "--rate", str(rate), "--format", "raw",
                    "--subprocesses", "--nonblocking", "--output", str(self.path)]
        self.proc: Optional[subprocess.Popen] = None

    def __enter__(self) -> "Recording":
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(1.0)  # attaching takes a moment; samples before that would be lost anyway
        if self.proc.poll() is not None:
            raise RuntimeError("py-spy could not attach: " + (self.proc.stderr.read() or b"").decode(errors="replace"))
        return self

    def __exit__(self, *_exc: object) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def summary(path: Path, top: int = 15) -> Dict[str, object]:
    """Samples, and the functions most often on the stack (inclusive share; frames on nearly every stack are
    left out) and on top of it (self share)."""
    inclusive: Dict[str, int] = collections.Counter()
    own: Dict[str, int] = collections.Counter()
    total = 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [f for f in stack.split(";") if f and not f.startswith("process ") and not f.startswith("thread ")]
        total += n
        if frames:
            own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n

    # Frames on (nearly) every stack (runpy, the server's main loop) say nothing about where the time goes.
    everywhere = {frame for frame, n in inclusive.items() if total and n >= 0.95 * total}

    def share(counter: Dict[str, int]) -> List[List[object]]:
        ranked = sorted(((f, n) for f, n in counter.items() if f not in everywhere), key=lambda kv: -kv[1])[:top]
        return [[round(100.0 * n / total, 1), frame] for frame, n in ranked] if total else []

    return {"file": str(path), "samples": total, "inclusive_pct": share(inclusive), "self_pct": share(own)}
