# Sourced by setup.sh and lock.sh: prints a Python 3.10 interpreter or fails.
find_python() {
  local candidate
  for candidate in "${HG_PYTHON:-}" "$(command -v python3.10 2>/dev/null || true)" \
                   $(ls -d "$HOME"/.pyenv/versions/3.10.*/bin/python3.10 2>/dev/null | sort -V -r); do
    [ -n "$candidate" ] || continue
    if "$candidate" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 10) else 1)' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  return 1
}
