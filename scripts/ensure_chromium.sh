#!/usr/bin/env bash
# Make sure Debian's headless-capable Chromium is installed (the Playwright browser tests in tests/browser.py drive /usr/bin/chromium).
# Installs it with apt-get when missing; needs root (CI runs as root). Never downloads a browser elsewhere.
set -euo pipefail

CHROMIUM=/usr/bin/chromium
if [ -x "$CHROMIUM" ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "chromium is not installed and this is not root: run 'sudo apt-get install -y chromium'" >&2
  exit 1
fi
echo "installing Debian's chromium for the browser tests…" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium fonts-noto-cjk >/dev/null
[ -x "$CHROMIUM" ] || { echo "chromium did not install at $CHROMIUM" >&2; exit 1; }
