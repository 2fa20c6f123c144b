"""Reading Rasa NLU YAML files as plain examples: the one reader for the comparison, the tests and the tools.

An example's text comes back without its entity markup ("[吉利花园](estate)" → "吉利花园"); a folder is
read recursively, as Rasa reads it (data/nlu/reviewed/ included).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, List, Tuple

import yaml

_MARKUP = re.compile(r"\[([^\]]*)\](?:\([^)]*\)|\{[^}]*\})")


def strip_markup(text: str) -> str:
    """A training example's text without entity annotations."""
    return _MARKUP.sub(r"\1", text).strip()


def nlu_files(path: Path) -> List[Path]:
    return [path] if path.is_file() else sorted(path.rglob("*.yml"))


def examples(path: Path, base_intents: bool = False) -> List[Tuple[str, str]]:
    """(text, intent) for every example of a file or folder, in file order. With ``base_intents`` a
    retrieval intent counts as its base intent (faq/office_hours → faq)."""
    out: List[Tuple[str, str]] = []
    for file in nlu_files(path):
        for block in (yaml.safe_load(file.read_text(encoding="utf-8")) or {}).get("nlu", []) or []:
            if "intent" not in block:
                continue
            intent = block["intent"].split("/")[0] if base_intents else block["intent"]
            for line in str(block.get("examples", "")).splitlines():
                if line.strip().startswith("- "):
                    out.append((strip_markup(line.strip()[2:]), intent))
    return out


def examples_by_intent(path: Path) -> Dict[str, List[str]]:
    """Example texts per intent (retrieval intents kept whole: faq/office_hours)."""
    found: Dict[str, List[str]] = {}
    for text, intent in examples(path):
        found.setdefault(intent, []).append(text)
    return found


def norm(text: str) -> str:
    """A message with whitespace, punctuation and case removed, for exact-match comparisons."""
    return re.sub(r"[\s\W_]+", "", text).lower()
