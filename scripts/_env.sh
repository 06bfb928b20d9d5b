# Sourced by scripts/demo.sh and scripts/test.sh: make .venv (idempotent, fast when already set up).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False
export TOKENIZERS_PARALLELISM=false PIP_DISABLE_PIP_VERSION_CHECK=1
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv"
  "$PY" -m venv .venv
fi
# torch first: an unpinned torch resolved by pip would pull several GB of CUDA wheels.
stamp=.venv/.mmkit-installed
want=$(cat pyproject.toml | sha1sum | cut -c1-12)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "[setup] installing torch==2.13.0, then mmkit[dev] (first time: a few minutes)"
  .venv/bin/pip install -q "torch==2.13.0"
  .venv/bin/pip install -q -e ".[dev]"
  echo "$want" > "$stamp"
else
  echo "[setup] .venv up to date (delete .venv/.mmkit-installed to force a reinstall)"
fi
export PATH="$PWD/.venv/bin:$PATH"
