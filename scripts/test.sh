#!/usr/bin/env bash
# The test command: set up .venv if needed, then the notebook/library agreement check, pytest, and nbdev-test.
# Usage: bash scripts/test.sh [extra pytest args]
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
# Browser tests need Debian's chromium; install it when we can (root + apt), else those tests skip with a reason.
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "[setup] installing chromium (for the headless-browser test)"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || echo "[setup] chromium install failed; browser test will skip"
fi
echo "[test] notebooks and mmkit/ agree (nbdev-export on a copy)"
python scripts/check_export.py
echo "[test] nbdev-test (library notebooks)"
nbdev-test --file-re '^[0-9]' --n-workers 2
echo "[test] pytest"
python -m pytest "$@"
