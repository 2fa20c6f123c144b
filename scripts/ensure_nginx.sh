#!/usr/bin/env bash
# Make sure Debian's nginx is installed (production mode puts it in front of the Rasa and action-server replicas).
# Installs it with apt-get when missing; needs root (CI runs as root). nginx is started by the project itself,
# in the foreground with its own configuration: the package's own service is kept from starting.
set -euo pipefail

if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "nginx is not installed and this is not root: run 'sudo apt-get install -y nginx'" >&2
  exit 1
fi
echo "installing Debian's nginx for production mode…" >&2
export DEBIAN_FRONTEND=noninteractive
# Keep the package's service from starting on port 80 during the install.
POLICY=/usr/sbin/policy-rc.d
if [ ! -e "$POLICY" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$POLICY"
  chmod +x "$POLICY"
  trap 'rm -f "$POLICY"' EXIT
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends nginx-light >/dev/null 2>&1 || \
  apt-get install -y -qq --no-install-recommends nginx >/dev/null
[ -x /usr/sbin/nginx ] || { echo "nginx did not install at /usr/sbin/nginx" >&2; exit 1; }
