"""Retrain and gate (DESIGN.md story 9): a candidate model is compared with the running one on the same held-out
files and test stories, and may replace it only if it is no worse.

    python -m bot model retrain [--against MODEL]          # validate, train, evaluate both, report, gate
    python -m bot model gate CANDIDATE [--against MODEL]   # the evaluation and the gate for a trained model

Without --against the candidate is compared with the model deployed now (bot/services/models.py); the verdict
and the figures are kept in the registry, where `python -m bot model deploy` (bot/deploy.py) requires a pass.

The report (`reports/retrain/<candidate>/report.json`, with `confusion.png`) holds, per held-out file, the
intent macro-F1 and per-intent F1 of both models, the messages whose prediction changed, and the candidate's
test-story result. The gate refuses when macro-F1 drops by more than `MAX_DROP` on any held-out file or when any
test story fails. Training and evaluation each run in processes of their own, never in the console or the Rasa
server.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Sequence, Tuple

from bot import nlu_data
from bot.config import PROJECT_ROOT, rasa_env
from bot.nlu_compare import parse_with_model, score

if TYPE_CHECKING:
    from bot.config import Settings

HELDOUT_FILES = tuple(sorted((PROJECT_ROOT / "tests" / "nlu").glob("heldout*.yml")))
STORIES = PROJECT_ROOT / "tests" / "stories"
REPORTS = PROJECT_ROOT / "reports" / "retrain"
PREDICTIONS = REPORTS / ".predictions"  # each model's answers on the held-out texts, by model digest
MAX_DROP = 0.01  # one point of intent macro-F1


@dataclass
class FileResult:
    file: str
    before: float
    after: float
    per_intent_before: Dict[str, float]
    per_intent_after: Dict[str, float]
    changed: List[Dict[str, str]]
    truth: List[str] = field(default_factory=list)
    predicted: List[str] = field(default_factory=list)  # the candidate's

    @property
    def drop(self) -> float:
        return self.before - self.after


@dataclass
class Verdict:
    passed: bool
    reasons: List[str] = field(default_factory=list)


def verdict(files: Sequence[FileResult], stories_failed: int, stories_error: str = "") -> Verdict:
    """Whether the candidate may be deployed, and if not, every reason why."""
    reasons = [f"{f.file}: intent macro-F1 {f.before:.3f} → {f.after:.3f} (−{f.drop * 100:.1f} 点，超过 "
               f"{MAX_DROP * 100:.0f} 点)" for f in files if f.drop > MAX_DROP + 1e-9]
    if stories_failed:
        reasons.append(f"测试对话有 {stories_failed} 个没通过")
    if stories_error:
        reasons.append(f"测试对话没能运行：{stories_error}")
    return Verdict(not reasons, reasons)


def served_intents(model: Path, texts: Sequence[str], cache: Optional[Path] = None) -> List[str]:
    """What `model` serves for each text (the fallback counts as a miss), parsed in a process of its own. With
    `cache`, a model's answers on the same texts are kept by the model's digest: the deployed model was the
    candidate of its own gate, so its answers are usually known already."""
    import hashlib

    from bot.services.models import file_sha256

    key = None
    if cache is not None:
        texts_hash = hashlib.sha256(json.dumps(list(texts), ensure_ascii=False).encode("utf-8")).hexdigest()
        key = cache / f"{file_sha256(model)[:24]}-{texts_hash[:24]}.json"
        if key.is_file():
            return json.loads(key.read_text(encoding="utf-8"))
    served = [str(p["served"]) for p in parse_with_model(model, texts)]
    if key is not None:
        key.parent.mkdir(parents=True, exist_ok=True)
        tmp = key.with_suffix(".tmp")
        tmp.write_text(json.dumps(served, ensure_ascii=False), encoding="utf-8")
        tmp.replace(key)
    return served


def compare_file(file: Path, examples: Sequence[Tuple[str, str]], before: Sequence[str],
                 after: Sequence[str]) -> FileResult:
    """Both models' answers on one held-out file, scored."""
    texts, truth = [t for t, _ in examples], [i for _, i in examples]
    s_before, s_after = score(truth, list(before)), score(truth, list(after))
    changed = [{"text": t, "expected": e, "before": b, "after": a}
               for t, e, b, a in zip(texts, truth, before, after) if a != b]
    name = str(file.relative_to(PROJECT_ROOT)) if file.is_relative_to(PROJECT_ROOT) else str(file)
    return FileResult(name, s_before.macro_f1, s_after.macro_f1, s_before.per_intent, s_after.per_intent, changed,
                      truth, list(after))


def run_stories(model: Path, out: Path, stories: Path = STORIES) -> Tuple[int, str]:
    """(failed stories, error) for the test stories on `model` (`rasa test core` in its own process, with the
    server's corrections of Rasa: the model loads without Rasa's training step, bot/rasa_boot.py)."""
    from bot.runner import rasa_command

    result = subprocess.run(rasa_command("test", "core", "--model", str(model), "--stories", str(stories),
                                         "--out", str(out)), cwd=PROJECT_ROOT, env=rasa_env(),
                            capture_output=True, text=True, timeout=1800)
    failed_file = out / "failed_test_stories.yml"
    if result.returncode != 0:
        return 0, f"exit {result.returncode}: {result.stderr[-500:]}"
    text = failed_file.read_text(encoding="utf-8") if failed_file.is_file() else ""
    return sum(1 for line in text.splitlines() if line.startswith("- story:")), ""


def confusion_png(truth: Sequence[str], predicted: Sequence[str], target: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    labels = sorted(set(truth) | set(predicted))
    fig, ax = plt.subplots(figsize=(11, 11))
    ConfusionMatrixDisplay.from_predictions(truth, predicted, labels=labels, ax=ax, xticks_rotation="vertical",
                                            colorbar=False)
    fig.tight_layout()
    fig.savefig(target, dpi=80)
    plt.close(fig)


def gate(candidate: Path, current: Path, files: Sequence[Path] = HELDOUT_FILES, stories: Path = STORIES,
         out_dir: Optional[Path] = None, log: Callable[[str], None] = print) -> Dict[str, object]:
    """Evaluate the candidate beside the current model and write the report; returns it."""
    out = out_dir or REPORTS / candidate.name.replace(".tar.gz", "")
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    per_file = [(file, nlu_data.examples(file, base_intents=True)) for file in files]
    texts = [t for _, examples in per_file for t, _ in examples]
    log("gate: both models on the held-out files, the candidate on the test stories …")
    # Three processes at once (each mostly loads a model): the candidate's answers, the current model's (often
    # cached), and the test stories.
    with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
        after_job = pool.submit(served_intents, candidate, texts, PREDICTIONS)
        before_job = pool.submit(served_intents, current, texts, PREDICTIONS) if current != candidate else after_job
        stories_job = pool.submit(run_stories, candidate, out / "stories", stories)
        before, after = before_job.result(), after_job.result()
        failed, error = stories_job.result()
    results, at = [], 0
    for file, examples in per_file:
        results.append(compare_file(file, examples, before[at:at + len(examples)], after[at:at + len(examples)]))
        at += len(examples)
    decided = verdict(results, failed, error)
    truth = [t for r in results for t in r.truth]
    predicted = [p for r in results for p in r.predicted]
    if truth:
        confusion_png(truth, predicted, out / "confusion.png")
    report = {
        "candidate": candidate.name, "current": current.name, "passed": decided.passed, "reasons": decided.reasons,
        "max_drop": MAX_DROP, "stories_failed": failed, "stories_error": error or None,
        "files": [{"file": r.file, "macro_f1_before": round(r.before, 4), "macro_f1_after": round(r.after, 4),
                   "per_intent": {i: {"before": round(r.per_intent_before.get(i, 0.0), 3),
                                      "after": round(r.per_intent_after.get(i, 0.0), 3)}
                                  for i in sorted(set(r.per_intent_before) | set(r.per_intent_after))},
                   "changed": r.changed} for r in results],
        "confusion_matrix": "confusion.png" if truth else None,
        "evaluation_seconds": round(time.monotonic() - started, 1),
    }
    (out / "report.json").write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    return report


def _validate(root: Path = PROJECT_ROOT) -> None:
    from bot.training import validate_command

    result = subprocess.run(validate_command(), cwd=root, env=rasa_env(), capture_output=True, text=True,
                            timeout=600)
    if result.returncode != 0:
        raise SystemExit(f"retrain: the training data does not validate:\n{(result.stdout + result.stderr)[-3000:]}")


class Progress:
    """The steps of a retrain as JSON lines in a file (the console's retrain page reads it) and on stderr."""

    def __init__(self, path: Optional[Path]) -> None:
        self.path = path
        self.started = time.monotonic()

    def __call__(self, step: str, **data: object) -> None:
        line = {"step": step, "elapsed_s": round(time.monotonic() - self.started, 1), **data}
        print(f"retrain: {step} ({line['elapsed_s']:.0f} s)", file=sys.stderr, flush=True)
        if self.path is not None:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(line, ensure_ascii=False) + "\n")


def _summary(report: Dict[str, object]) -> str:
    lines = [f"gate: {'通过' if report['passed'] else '不通过'}（候选 {report['candidate']}，对比 {report['current']}）"]
    for f in report["files"]:  # type: ignore[union-attr]
        lines.append(f"  {f['file']}: macro-F1 {f['macro_f1_before']:.3f} → {f['macro_f1_after']:.3f}，"
                     f"{len(f['changed'])} 句预测变了")
    lines.append(f"  测试对话没通过：{report['stories_failed']}")
    lines.extend(f"  原因：{r}" for r in report["reasons"])  # type: ignore[union-attr]
    return "\n".join(lines)


def _registry(settings: "Settings"):  # noqa: ANN202 - a sessionmaker
    from bot.store.db import make_engine, make_session_factory

    return make_session_factory(make_engine(settings.database_url))


def _against(settings: "Settings", given: Optional[Path]) -> Path:
    """The model to compare with: the one given, else the one deployed now (the registry)."""
    if given is not None:
        return given
    from bot.services import models

    current = models.deployed(_registry(settings))
    if current is None:
        raise SystemExit("retrain: no model is deployed yet; start the assistant once (make run) or give --against")
    return Path(current.model.path)


def main(argv: Optional[List[str]] = None, settings: Optional["Settings"] = None) -> int:
    import tempfile

    from bot.config import Settings
    from bot.services import models
    from bot.training import ensure_model, training_root

    settings = settings or Settings.from_env()
    parser = argparse.ArgumentParser(prog="python -m bot model", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    re_ = sub.add_parser("retrain", help="validate, train, evaluate beside the deployed model, gate")
    re_.add_argument("--against", type=Path, default=None, help="the model to compare with (default: the deployed one)")
    re_.add_argument("--as", dest="staff", default=None, help="the staff key recorded as having asked for it")
    re_.add_argument("--progress", type=Path, default=None, help="append each step to this file as JSON lines")
    g = sub.add_parser("gate", help="evaluate a trained candidate beside the deployed model")
    g.add_argument("candidate", type=Path)
    g.add_argument("--against", type=Path, default=None, help="the model to compare with (default: the deployed one)")
    b = sub.add_parser("bench", help="time a retrain from scratch on the shipped data, its gate and a hot swap")
    b.add_argument("--against", type=Path, default=None, help="the model to compare with (default: the current one)")
    args = parser.parse_args(argv)
    if args.command == "bench":
        return _bench(args.against)
    progress = Progress(getattr(args, "progress", None))
    against = _against(settings, args.against)
    for model in filter(None, (against, getattr(args, "candidate", None))):
        if not model.is_file():
            print(f"retrain: no model at {model}", file=sys.stderr)
            return 2
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="hg-train-") as scratch:
        if args.command == "retrain":
            root = training_root(settings.reviewed_dir, Path(scratch))
            progress("validating")
            _validate(root)
            progress("training")
            candidate = ensure_model(root, models_dir=PROJECT_ROOT / "models", quiet=True)
        else:
            candidate = args.candidate
    trained = time.monotonic()
    progress("gating", candidate=candidate.name)
    out = REPORTS / candidate.name.replace(".tar.gz", "")
    report = gate(candidate.resolve(), against.resolve(), out_dir=out, log=lambda m: print(m, file=sys.stderr))
    factory = _registry(settings)
    actor = getattr(args, "staff", None) or "retrain"
    version = models.register(factory, candidate, actor=actor)
    compared = models.register(factory, against, actor=actor)
    models.record_gate(factory, version.id, compared.id, report, out)
    progress("done", version=version.id, passed=report["passed"], reasons=report["reasons"])
    print(_summary(report))
    print(f"retrain: {trained - started:.0f} s validating and training, {time.monotonic() - trained:.0f} s "
          f"evaluating; report in {out.relative_to(PROJECT_ROOT)}/; registered as v{version.id}")
    if report["passed"]:
        print(f"上线 / deploy:  python -m bot model deploy {candidate} --as ADMIN_KEY")
    return 0 if report["passed"] else 1


def swap_figures(current: Path, candidate: Path, workdir: Path) -> Dict[str, object]:
    """Start a stack serving `current`, deploy `candidate` and roll it back under steady traffic; how long each
    swap took, the slowest request and the failed ones during it."""
    from bot import deploy
    from bot.devtools.stack import start_stack
    from bot.devtools.traffic import Traffic
    from bot.services import models
    from bot.store.db import make_engine, make_session_factory

    stack = start_stack(current, workdir)
    try:
        factory = make_session_factory(make_engine(stack.settings.database_url))
        v_current = models.deployed(factory).model
        v_new = models.register(factory, candidate, actor="bench")
        models.record_gate(factory, v_new.id, v_current.id, {"passed": True, "files": [], "stories_failed": 0,
                                                             "reasons": []})
        figures: Dict[str, object] = {"rasa_workers": stack.settings.rasa_workers}
        for name, change in (("deploy", lambda: models.deploy(factory, v_new.id, staff_key="admin")),
                             ("rollback", lambda: models.rollback(factory, "admin"))):
            with Traffic(stack, prefix=f"bench-{name}") as traffic:
                time.sleep(2)
                started = time.monotonic()
                deploy.switch(factory, stack.settings, change, log=lambda m: print(m, file=sys.stderr))
                took = time.monotonic() - started
                time.sleep(2)
            figures[name] = {"swap_s": round(took, 1), "requests": len(traffic.latencies),
                             "failed": len(traffic.failures), "slowest_request_s": round(traffic.slowest, 2)}
        return figures
    finally:
        stack.stop()


def _bench(against: Optional[Path]) -> int:
    """`make bench-retrain`: validation and training from scratch into a scratch folder, the gate, then the hot
    swap of the candidate on a running stack (and back)."""
    import tempfile

    from bot.training import ensure_model

    current = (against or ensure_model(quiet=True)).resolve()
    with tempfile.TemporaryDirectory(prefix="hg-retrain-") as tmp:
        started = time.monotonic()
        _validate()
        validated = time.monotonic()
        candidate = ensure_model(models_dir=Path(tmp), quiet=True)
        trained = time.monotonic()
        report = gate(candidate, current, out_dir=REPORTS / "bench", log=lambda m: print(m, file=sys.stderr))
        done = time.monotonic()
        swap = swap_figures(current, candidate, Path(tmp) / "stack")
    figures = {"validate_s": round(validated - started, 1), "train_s": round(trained - validated, 1),
               "gate_s": round(done - trained, 1), "retrain_total_s": round(done - started, 1),
               "target_total_s": 300, "passed": report["passed"], "reasons": report["reasons"], "swap": swap}
    print(json.dumps(figures, ensure_ascii=False, indent=2))
    print(f"retrain ≤ 5 min: {'met' if figures['retrain_total_s'] <= 300 else 'NOT met'}")
    slowest = max(swap[k]["slowest_request_s"] for k in ("deploy", "rollback"))  # type: ignore[index]
    failed = sum(swap[k]["failed"] for k in ("deploy", "rollback"))  # type: ignore[index]
    print(f"swap: {failed} failed requests, slowest {slowest:.2f} s (target 0 and ≤ 2 s): "
          f"{'met' if failed == 0 and slowest <= 2 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
