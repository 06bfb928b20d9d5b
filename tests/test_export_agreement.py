"""Notebooks are the source of mmkit/: the agreement check passes on the repo and fails on an edited copy."""
import json, shutil, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT/"scripts"))
from check_export import check_export

def test_repo_notebooks_and_library_agree():
    assert check_export(ROOT) == []

def test_check_fails_when_notebook_edited_without_export(tmp_path):
    for d in ["nbs", "mmkit"]: shutil.copytree(ROOT/d, tmp_path/d, ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
    shutil.copy(ROOT/"pyproject.toml", tmp_path)
    nb_path = tmp_path/"nbs"/"00_config.ipynb"
    nb = json.loads(nb_path.read_text())
    cell = next(c for c in nb["cells"] if c["cell_type"] == "code" and "".join(c["source"]).startswith("#| export"))
    cell["source"] = "".join(cell["source"]) + "\nEDITED_WITHOUT_EXPORT = 1\n"
    nb_path.write_text(json.dumps(nb, indent=1))
    assert check_export(tmp_path) == ["mmkit/config.py"]
    r = subprocess.run([sys.executable, str(ROOT/"scripts"/"check_export.py"), str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 1 and "mmkit/config.py" in r.stdout
