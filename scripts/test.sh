#!/usr/bin/env bash
# The test command: set up .venv if needed, then the notebook/library agreement check, pytest, and nbdev-test.
# Usage: bash scripts/test.sh [extra pytest args]
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
# Browser tests need Debian's chromium, compiled-training tests a C++ compiler (g++, for PyTorch's inductor); install
# what is missing when we can (root + apt), else those tests skip with a reason.
missing=""
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
command -v "${CXX:-g++}" >/dev/null 2>&1 || missing="$missing g++"
if [ -n "$missing" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "[setup] installing$missing (headless-browser and compiled-training tests)"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null) || echo "[setup] installing$missing failed; those tests will skip"
fi
# bf16 only where the CPU has bf16 instructions, fp32 elsewhere: the tests' tiny models gate nothing, and on a 2-core
# Xeon that emulates bf16 (AVX-512 without bf16) the command took 14:22 this way against 17:13 (mmkit.train.bf16_available).
export MMKIT_PRECISION="${MMKIT_PRECISION:-native}"
echo "[test] notebooks and mmkit/ agree (nbdev-export on a copy)"
python scripts/check_export.py
echo "[test] nbdev-test (library notebooks)"
nbdev-test --file-re '^[0-9]' --n-workers 2
echo "[test] pytest"
python -m pytest "$@"
