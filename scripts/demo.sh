#!/usr/bin/env bash
# The main job: the lang_only experiment on the microcosm.
# Usage: bash scripts/demo.sh [extra papermill args, e.g. -p seed 1]
#
# Step 1 builds the microcosm data and base with `mmkit base` (once; cached afterwards), so its progress bars show in
# the terminal. Step 2 runs nbs/train.ipynb with papermill, which finds that base cached: stage 2, evaluation, the run
# folder. The base step takes `size` and `scale` from -p/-r NAME VALUE arguments, so it builds the base the notebook
# will use; with `-p base PATH_OR_HUB_ID` (or a default_base setting other than "microcosm") it builds nothing.
# Parameters given only in a -f/-y YAML file are not seen by step 1: the notebook then builds its own base, silently.
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"

# The parameters the base depends on, as papermill will get them; a misspelt parameter name stops here, before the
# base build, rather than after it.
params=$(python - "$@" <<'EOF'
import shlex, sys
from papermill.inspection import inspect_notebook
known, got, a, i = list(inspect_notebook("nbs/train.ipynb")), {}, sys.argv[1:], 0
while i < len(a):
    if a[i] in ("-p", "--parameters", "-r", "--parameters_raw") and i + 1 < len(a):
        name, value = a[i + 1], a[i + 2] if i + 2 < len(a) else ""
        if name not in known:
            sys.exit(f"[demo] unknown parameter {name!r}: nbs/train.ipynb takes {', '.join(known)}")
        got[name] = "" if value == "None" else value
        i += 3
    else: i += 1
for k in ("size", "scale", "base"): print(f"{k}={shlex.quote(got.get(k, ''))}")
EOF
)
eval "$params"
if [ -z "$base" ]; then base="$(python -c 'from mmkit.config import settings; print(settings()["default_base"])')"; fi

if [ "$base" = microcosm ]; then
  echo "[demo] step 1/2: the microcosm data and base (mmkit base${size:+ --size $size}${scale:+ --scale $scale}):" \
       "stage 0 language model, vision pretraining, stage 1 alignment; built once (about 20 min on 2 CPU cores), then cached"
  mmkit base ${size:+--size "$size"} ${scale:+--scale "$scale"}
else
  echo "[demo] step 1/2: base $base (not the microcosm's: nothing to build)"
fi
echo "[demo] step 2/2: stage 2 on lang_only and evaluation on the nine held-out datasets (papermill nbs/train.ipynb)"
RUNS="$(python -c 'from mmkit.config import runs_dir; print(runs_dir())')"
mkdir -p "$RUNS"
papermill nbs/train.ipynb "$RUNS/lang_only.ipynb" -p recipe lang_only --cwd nbs "$@"
echo "[demo] results: $RUNS/lang_only/ (metrics.json, predictions.jsonl, controls.jsonl, tokens.json, checkpoint/); executed notebook: $RUNS/lang_only.ipynb"
echo "[demo] all runs in one table: mmkit report  (or nbs/report.ipynb)"
