"""`rasa data validate` finds nothing wrong with the domain, the training data and the stories."""

from __future__ import annotations

import re
import subprocess

from bot.config import PROJECT_ROOT
from bot.training import validate_command
from tests.helpers import quiet_env

# Rasa 3.6 merges the retrieval intent `faq` from the NLU data into a domain that
# must also list it (stories refer to it), and reports that merge as a duplicate.
KNOWN_RASA_DEFECT = "The following duplicated intents have been found across multiple domain files: faq"


def test_rasa_data_validate_reports_no_warnings() -> None:
    result = subprocess.run(validate_command(), cwd=PROJECT_ROOT, env=quiet_env(), capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    warnings = [w.strip() for w in re.findall(r"UserWarning: (.*)", output)]
    assert [w for w in warnings if w != KNOWN_RASA_DEFECT] == [], output[-4000:]
