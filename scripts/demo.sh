#!/usr/bin/env bash
# The main job: the lang_only experiment on the microcosm (builds the microcosm and its base first if absent).
# Usage: bash scripts/demo.sh [extra papermill -p NAME VALUE args]
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
mkdir -p runs
papermill nbs/train.ipynb runs/lang_only.ipynb -p recipe lang_only --cwd nbs "$@"
RUNS="$(python -c 'from mmkit.config import runs_dir; print(runs_dir())')"
echo "[demo] results: $RUNS/lang_only/ (metrics.json, predictions.jsonl, controls.jsonl, tokens.json, checkpoint/); executed notebook: runs/lang_only.ipynb"
echo "[demo] all runs in one table: mmkit report  (or nbs/report.ipynb)"
