"""The trained model carries the community dictionary and uses it wherever it is loaded."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.helpers import quiet_env

pytestmark = pytest.mark.slow

PROBE = """
import json, sys, jieba
words = ["吉利花园", "消防柜", "防风门", "邻里互助"]
before = {w: jieba.lcut(w) for w in words}
from rasa.core.agent import Agent
agent = Agent.load(sys.argv[1])
after = {w: jieba.lcut(w) for w in words}
print(json.dumps({"before": before, "after": after}, ensure_ascii=False))
"""


def test_model_loaded_elsewhere_uses_the_community_dictionary(trained_model, tmp_path) -> None:
    # Run in an empty folder so data/dict cannot be found on disk: only the model carries it.
    result = subprocess.run([sys.executable, "-c", PROBE, str(trained_model)], cwd=tmp_path, env=quiet_env(),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    for word, tokens in found["after"].items():
        assert tokens == [word], f"{word} is split as {tokens} after loading the model"
    assert any(len(tokens) > 1 for tokens in found["before"].values()), "jieba alone already knew every word"
