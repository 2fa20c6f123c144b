#!/usr/bin/env bash
# ensure_debian_package.sh BINARY WHY PACKAGE...: install Debian's PACKAGEs with apt-get unless BINARY exists.
# Needs root (CI runs as root); a package's own service is kept from starting during the install (the project
# starts what it needs itself). Never downloads anything but Debian packages.
set -euo pipefail
binary=$1 why=$2
shift 2
if [ -x "$binary" ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "$(basename "$binary") is not installed and this is not root: run 'sudo apt-get install -y $*'" >&2
  exit 1
fi
echo "installing Debian's $* for $why…" >&2
export DEBIAN_FRONTEND=noninteractive
POLICY=/usr/sbin/policy-rc.d
if [ ! -e "$POLICY" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$POLICY"
  chmod +x "$POLICY"
  trap 'rm -f "$POLICY"' EXIT
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends "$@" >/dev/null
[ -x "$binary" ] || { echo "$* did not install $binary" >&2; exit 1; }
