import os, shutil, tempfile, atexit
# Nothing in the test suite touches the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Tests never write into the repo's runs/ or .cache/: one scratch cache + runs dir for the whole session.
_SCRATCH = tempfile.mkdtemp(prefix="mmkit-tests-")
os.environ["MMKIT_CACHE_DIR"] = os.path.join(_SCRATCH, "cache")
os.environ["MMKIT_RUNS_DIR"] = os.path.join(_SCRATCH, "runs")
atexit.register(shutil.rmtree, _SCRATCH, ignore_errors=True)

import pytest

@pytest.fixture(scope="session")
def test_base():
    "The microcosm base at the `test` size on the `test` scale (built once per session, ~10 s)."
    from mmkit.train import build_base
    return build_base(size="test", scale="test")
