#!/usr/bin/env bash
# A smoke check on a machine with a CUDA GPU (CI has none, so this is not part of the test command).
# From the repo root, with mmkit and its dependencies importable and the `mmkit` command installed (pip install -e .):
#   bash bench/gpu_smoke.sh [LOGDIR] [STEPS...]      STEPS: pytest_train pytest_rest main_job compile_job train_bench
#                                                    eval_bench real_scale (default: all)
# pytest_train / pytest_rest: the library's tests on a GPU machine, in two steps (the training and bench tests, then
#              the rest: about 5 and 7 minutes on an H100, so each fits a 10-minute call); the notebook, app, browser
#              and packaging tests need Jupyter, Gradio, Chromium and nbdev, so they are left out here (CI runs them);
# main_job:    the lang_only experiment on the microcosm through the CLI (the base is built first if absent), timed;
# compile_job: the same experiment with --compile (torch.compile region by region: Triton kernels on a GPU) into a
#              throwaway runs folder, so its scores can be set beside main_job's;
# train_bench / eval_bench: bench/train_throughput.py (with its compiled side) and bench/eval_throughput.py on the GPU;
# real_scale:  bench/real_scale.py, a LLaVA-1.5-7B-shaped model through stage 2 (LoRA) and evaluation.
# Each step's whole output goes to LOGDIR/<step>.log (STEP_TIMEOUT seconds at most, default 3600); the exit status is
# non-zero if any step failed.
set -uo pipefail
LOG=${1:-gpu-smoke}; shift || true
STEPS=${*:-pytest_train pytest_rest main_job compile_job train_bench eval_bench real_scale}
mkdir -p "$LOG"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False
export TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
python3 -c "
import torch, transformers, accelerate, peft, datasets
print('torch', torch.__version__, '| transformers', transformers.__version__, '| accelerate', accelerate.__version__,
      '| peft', peft.__version__, '| datasets', datasets.__version__)
print('GPU:', torch.cuda.get_device_name() if torch.cuda.is_available() else 'none (this is a GPU check)')
" | tee "$LOG/env.txt" || exit 1
status=0
step() {
  local name=$1; shift
  case " $STEPS " in *" $name "*) ;; *) return;; esac
  echo "== $name: $*"; local t=$SECONDS
  timeout "${STEP_TIMEOUT:-3600}" "$@" > "$LOG/$name.log" 2>&1; local rc=$?
  echo "== $name: exit $rc after $((SECONDS - t)) s"; grep -v "it/s\]\|s/it\]" "$LOG/$name.log" | tail -n 20
  [ $rc = 0 ] || status=1
}
PYTEST="python3 -m pytest -q -p no:cacheprovider -rf --tb=short --timeout 600"
step pytest_train $PYTEST tests/test_train.py tests/test_bench.py
step pytest_rest $PYTEST tests --ignore tests/test_train.py --ignore tests/test_bench.py --ignore tests/test_notebooks.py \
  --ignore tests/test_app.py --ignore tests/test_setup.py --ignore tests/test_export_agreement.py
step main_job mmkit train --recipe lang_only
RUNS2=$(mktemp -d); step compile_job mmkit train --recipe lang_only --compile --runs-dir "$RUNS2"; rm -rf "$RUNS2"
step train_bench python3 bench/train_throughput.py --compile
step eval_bench python3 bench/eval_throughput.py --repeats 3
step real_scale python3 bench/real_scale.py --json "$LOG/real_scale.json"
exit $status
