"""Does DIET earn its cost? DIET beside a TF-IDF + logistic regression baseline trained on the same data.

Both models are scored the same way, on intent macro-F1 over the intents of the test messages:

- cross-validation: stratified k folds of data/nlu (seeded); in each fold DIET is trained with the
  pipeline of config.yml (ResponseSelector and FallbackClassifier left out: neither changes DIET's
  intent, and a fallback is scored as DIET's own top intent, as `rasa test nlu` does), each fold in a
  process of its own;
- a held-out file: the model trained on all the data (the shipped model for DIET), same scoring.

The baseline is fixed in advance, not tuned on any test file: TF-IDF over character n-grams (1–4,
within words) and jieba words with the community dictionary, sublinear term frequency, and an
L2-regularised logistic regression (C=10).

    python -m bot.nlu_compare cv [--folds 3] [--fold N] [--config FILE]
                                                        # cross-validation, both models (--fold: only
                                                        # fold N, for a quick try; --config: another
                                                        # pipeline than config.yml's, same folds)
    python -m bot.nlu_compare heldout FILE [FILE …]     # both models on held-out files
    python -m bot.nlu_compare report [--folds 3] [FILE …]  # both, written to reports/nlu_compare.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import yaml

from bot import nlu_data
from bot.config import PROJECT_ROOT, rasa_env

NLU_DIR = PROJECT_ROOT / "data" / "nlu"
DICT_DIR = PROJECT_ROOT / "data" / "dict"
SEED = 42
FALLBACK = "nlu_fallback"
# Components left out of the cross-validation pipeline (they do not change DIET's intent).
CV_SKIPPED = ("ResponseSelector", "FallbackClassifier")


@dataclass(frozen=True)
class Scores:
    macro_f1: float
    per_intent: Dict[str, float]
    n: int

    def as_dict(self) -> Dict[str, object]:
        return {"macro_f1": round(self.macro_f1, 4), "n": self.n,
                "per_intent": {k: round(v, 3) for k, v in sorted(self.per_intent.items())}}


def score(truth: Sequence[str], predicted: Sequence[str]) -> Scores:
    """Intent macro-F1 over the intents that occur in ``truth`` (a prediction outside them still costs
    the true intent its recall)."""
    from sklearn.metrics import f1_score

    labels = sorted(set(truth))
    per = f1_score(truth, predicted, labels=labels, average=None, zero_division=0)
    return Scores(float(sum(per) / len(per)), dict(zip(labels, map(float, per))), len(truth))


# --- data -------------------------------------------------------------------------------------------

def plain_examples(path: Path) -> List[Tuple[str, str]]:
    """(text without entity markup, intent) for every example; retrieval intents count as their base
    intent (faq/office_hours → faq)."""
    return nlu_data.examples(path, base_intents=True)


def _folds(intents: Sequence[str], k: int) -> List[List[int]]:
    """Test indices of k stratified folds (seeded), the same for both models."""
    from sklearn.model_selection import StratifiedKFold

    splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=SEED)
    return [list(test) for _, test in splitter.split(list(intents), list(intents))]


# --- baseline ---------------------------------------------------------------------------------------

def _jieba_tokens():
    import jieba

    tokenizer = jieba.Tokenizer()
    for file in sorted(DICT_DIR.glob("*.txt")):
        tokenizer.load_userdict(str(file))
    return lambda text: [t for t in tokenizer.lcut(text) if t.strip()]


def baseline_model():
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import FeatureUnion, Pipeline

    features = FeatureUnion([
        ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 4), sublinear_tf=True)),
        ("words", TfidfVectorizer(tokenizer=_jieba_tokens(), token_pattern=None, lowercase=False,
                                  sublinear_tf=True)),
    ])
    return Pipeline([("features", features), ("lr", LogisticRegression(C=10.0, max_iter=5000))])


def baseline_predict(train: Sequence[Tuple[str, str]], texts: Sequence[str]) -> List[str]:
    model = baseline_model()
    model.fit([t for t, _ in train], [i for _, i in train])
    return list(model.predict(list(texts)))


# --- DIET -------------------------------------------------------------------------------------------

def _cv_config(target: Path, source: Optional[Path] = None) -> None:
    config = yaml.safe_load((source or PROJECT_ROOT / "config.yml").read_text(encoding="utf-8"))
    config["pipeline"] = [c for c in config["pipeline"] if c["name"] not in CV_SKIPPED]
    config["policies"] = []
    target.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")


def _write_fold_data(test_indices: Sequence[int], target: Path) -> None:
    """All of data/nlu except the fold's test examples (annotations, lookups, synonyms kept)."""
    from rasa.shared.nlu.training_data.loading import load_data
    from rasa.shared.nlu.training_data.training_data import TrainingData

    data = load_data(str(NLU_DIR))
    texts = {plain for plain, _ in (plain_examples(NLU_DIR)[i] for i in test_indices)}
    kept = [m for m in data.training_examples if nlu_data.strip_markup(m.get("text") or "") not in texts]
    fold = TrainingData(training_examples=kept, entity_synonyms=data.entity_synonyms,
                        regex_features=data.regex_features, lookup_tables=data.lookup_tables)
    target.write_text(fold.nlu_as_yaml(), encoding="utf-8")


PARSE = r"""
import asyncio, json, sys
from bot import rasa_boot
rasa_boot.install()
from rasa.core.agent import Agent
model, texts = sys.argv[1], json.load(sys.stdin)
agent = Agent.load(model)

async def parse():
    out = []
    for text in texts:
        r = await agent.parse_message(text)
        ranking = [i["name"] for i in r.get("intent_ranking") or [] if i["name"] != "nlu_fallback"]
        out.append({"served": r["intent"]["name"], "confidence": round(r["intent"].get("confidence") or 0.0, 5),
                    "top": ranking[0] if ranking else r["intent"]["name"],
                    "ranking": [[i["name"], round(i["confidence"], 5)] for i in r.get("intent_ranking", [])[:3]]})
    return out

print("\nPARSED " + json.dumps(asyncio.run(parse()), ensure_ascii=False))
"""


def parse_with_model(model: Path, texts: Sequence[str]) -> List[Dict[str, object]]:
    """Each text parsed by a trained model in a process of its own, as the server parses it."""
    result = subprocess.run([sys.executable, "-c", PARSE, str(model)], input=json.dumps(list(texts)),
                            capture_output=True, text=True, cwd=PROJECT_ROOT, env=rasa_env(), timeout=900)
    marker = [line for line in result.stdout.splitlines() if line.startswith("PARSED ")]
    if result.returncode != 0 or not marker:
        raise RuntimeError(f"parsing failed (exit {result.returncode}): {result.stderr[-2000:]}")
    return json.loads(marker[-1][len("PARSED "):])


def diet_fold_predict(test_indices: Sequence[int], texts: Sequence[str], work: Path,
                      source_config: Optional[Path] = None) -> List[str]:
    config, data, out = work / "config.yml", work / "nlu.yml", work / "models"
    _cv_config(config, source_config)
    _write_fold_data(test_indices, data)
    cmd = [sys.executable, "-m", "rasa", "train", "nlu", "--config", str(config), "--nlu", str(data),
           "--out", str(out), "--fixed-model-name", "fold"]
    result = subprocess.run(cmd, cwd=PROJECT_ROOT, env=rasa_env(), capture_output=True, text=True, timeout=1800)
    model = out / "fold.tar.gz"
    if result.returncode != 0 or not model.is_file():
        raise RuntimeError(f"fold training failed (exit {result.returncode}): {result.stderr[-2000:]}")
    return [str(p["top"]) for p in parse_with_model(model, texts)]


# --- the two comparisons ----------------------------------------------------------------------------

def cross_validate(folds: int = 3, log=print, only_fold: Optional[int] = None,
                   config: Optional[Path] = None) -> Dict[str, object]:
    """Both models on the same stratified folds; ``only_fold`` (1-based) runs one of them, ``config`` trains
    DIET with another pipeline than config.yml's."""
    examples = plain_examples(NLU_DIR)
    intents = [i for _, i in examples]
    truth: List[str] = []
    diet: List[str] = []
    base: List[str] = []
    for n, test in enumerate(_folds(intents, folds), 1):
        if only_fold is not None and n != only_fold:
            continue
        test_set = set(test)
        train = [e for j, e in enumerate(examples) if j not in test_set]
        texts = [examples[j][0] for j in test]
        truth += [examples[j][1] for j in test]
        base += baseline_predict(train, texts)
        with tempfile.TemporaryDirectory(prefix="hg-cv-") as tmp:
            diet += diet_fold_predict(test, texts, Path(tmp), config)
        log(f"cv: fold {n}/{folds} done ({len(test)} messages)")
    if not truth:
        raise ValueError(f"there is no fold {only_fold} of {folds}")
    return {"folds": folds, "only_fold": only_fold, "config": str(config or "config.yml"),
            "examples": len(examples), "diet": score(truth, diet).as_dict(),
            "baseline": score(truth, base).as_dict()}


def evaluate_heldout(files: Sequence[Path], model: Optional[Path] = None) -> Dict[str, object]:
    from bot.training import ensure_model

    model = model or ensure_model(quiet=True)
    train = plain_examples(NLU_DIR)
    per_file = [(file, plain_examples(file)) for file in files]
    all_texts = [t for _, examples in per_file for t, _ in examples]
    every = parse_with_model(model, all_texts)  # the model loads once,
    baseline_every = baseline_predict(train, all_texts)  # and the baseline is fitted once
    out: Dict[str, object] = {}
    at = 0
    for file, examples in per_file:
        texts, truth = [t for t, _ in examples], [i for _, i in examples]
        parsed, baseline = every[at:at + len(texts)], baseline_every[at:at + len(texts)]
        at += len(texts)
        diet = [str(p["top"]) for p in parsed]
        served = [str(p["served"]) for p in parsed]
        out[str(file.relative_to(PROJECT_ROOT) if file.is_relative_to(PROJECT_ROOT) else file)] = {
            "diet": score(truth, diet).as_dict(),
            "diet_served": score(truth, served).as_dict(),
            "baseline": score(truth, baseline).as_dict(),
        }
    return out


def _summary(name: str, result: Dict[str, object]) -> str:
    diet, base = result["diet"]["macro_f1"], result["baseline"]["macro_f1"]  # type: ignore[index]
    return f"{name}: DIET {diet:.3f}  baseline {base:.3f}  ({'DIET ahead' if diet > base else 'DIET NOT ahead'})"


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.nlu_compare", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    cv = sub.add_parser("cv")
    cv.add_argument("--folds", type=int, default=3)
    cv.add_argument("--fold", type=int, default=None, help="run only this fold (1-based)")
    cv.add_argument("--config", type=Path, default=None, help="pipeline to train DIET with (default config.yml)")
    held = sub.add_parser("heldout")
    held.add_argument("files", nargs="+", type=Path)
    rep = sub.add_parser("report")
    rep.add_argument("--folds", type=int, default=3)
    rep.add_argument("files", nargs="*", type=Path)
    args = parser.parse_args(argv)

    report: Dict[str, object] = {}
    if args.command in ("cv", "report"):
        only, config = getattr(args, "fold", None), getattr(args, "config", None)
        report["cross_validation"] = cross_validate(args.folds, log=lambda m: print(m, file=sys.stderr),
                                                    only_fold=only, config=config and config.resolve())
        label = f"fold {only} of {args.folds}" if only else f"{args.folds} folds"
        print(_summary(f"cross-validation ({label})", report["cross_validation"]))  # type: ignore[arg-type]
    files = list(getattr(args, "files", []) or [])
    if args.command == "report" and not files:
        files = sorted((PROJECT_ROOT / "tests" / "nlu").glob("heldout*.yml"))
    if files:
        report["heldout"] = evaluate_heldout([f.resolve() for f in files])
        for name, result in report["heldout"].items():  # type: ignore[union-attr]
            print(_summary(name, result))
    if args.command == "report":
        target = PROJECT_ROOT / "reports" / "nlu_compare.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
        print(f"written {target.relative_to(PROJECT_ROOT)}")
    else:
        print(json.dumps(report, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
