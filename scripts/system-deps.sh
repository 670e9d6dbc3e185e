#!/usr/bin/env bash
# Debian's Chromium drives the browser tests (Playwright cannot download its own browser here).
set -eu
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "system-deps: installing Debian chromium"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "system-deps: /usr/bin/chromium is missing and cannot be installed (need root + apt-get); browser tests will skip" >&2
  fi
fi
