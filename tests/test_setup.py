"""The two commands set up .venv idempotently: a second run does not reinstall."""
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

def test_second_setup_does_not_reinstall():
    # The test command already ran the set-up once (that is how we got here); sourcing it again must be a no-op.
    r = subprocess.run(["bash", "-c", "source scripts/_env.sh && echo PY=$(command -v python)"], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "[setup] .venv up to date" in r.stdout
    assert "installing" not in r.stdout
    assert f"PY={ROOT}/.venv/bin/python" in r.stdout

def test_ci_runs_the_readme_test_command():
    readme = (ROOT/"README.md").read_text()
    ci = (ROOT/".ci"/"run").read_text()
    assert "bash scripts/test.sh" in readme and "bash scripts/test.sh" in ci
