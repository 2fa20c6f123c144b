#!/usr/bin/env bash
# Create .venv with Python 3.10 and the exact pins of requirements.lock.
# Re-running with nothing changed returns in about a second.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/find_python.sh

if ! PY=$(find_python); then
  cat >&2 <<'MSG'
setup: Python 3.10 not found. Rasa 3.6.21 needs Python 3.8-3.10; this project pins 3.10.
  Looked for: $HG_PYTHON, python3.10 on PATH, ~/.pyenv/versions/3.10.*/bin/python3.10
  Install one of: `pyenv install 3.10`, or Debian/Ubuntu `apt-get install python3.10 python3.10-venv`,
  then run `make setup` again (or set HG_PYTHON=/path/to/python3.10).
MSG
  exit 1
fi

STAMP=.venv/.hg-installed
WANT="$(cat requirements.lock | sha256sum | cut -d' ' -f1) $("$PY" -c 'import sys; print(sys.version.split()[0])')"
if [ -x .venv/bin/python ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
  echo "setup: .venv is up to date (Python $("$PY" -V 2>&1 | cut -d' ' -f2))"
  exit 0
fi

echo "setup: creating .venv with $PY"
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 10) else 1)'; then
  rm -rf .venv
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check pip==24.0 2> >(grep -v "is ignored: it is neither" >&2)
echo "setup: installing pinned requirements (first run takes a few minutes)"
# pip warns once per package about find-links folders this machine lacks; keep real errors.
.venv/bin/pip install --quiet --disable-pip-version-check -r requirements.lock 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
.venv/bin/pip check
echo "$WANT" > "$STAMP"
echo "setup: done"
