#!/usr/bin/env bash
# Make sure Debian's headless-capable Chromium is installed (the Playwright browser tests in tests/browser.py drive /usr/bin/chromium).
# Installs it with apt-get when missing; needs root (CI runs as root). Never downloads a browser elsewhere.
exec bash "$(dirname "$0")/ensure_debian_package.sh" /usr/bin/chromium "the browser tests" chromium fonts-noto-cjk
