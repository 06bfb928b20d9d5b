"""Check that `nbdev-export` would leave `mmkit/` unchanged: notebooks and library agree.

Runs the export on a copy (so the working tree is never touched) and compares every generated file.
Usage: python scripts/check_export.py [ROOT]   (exit 1 and a list of differing files if they disagree)
"""
import filecmp, shutil, subprocess, sys, tempfile
from pathlib import Path

def check_export(root) -> list[str]:
    "Names of files under mmkit/ that `nbdev-export` would change (empty list: they agree)."
    root = Path(root).resolve()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        shutil.copytree(root/"nbs", tmp/"nbs", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
        shutil.copytree(root/"mmkit", tmp/"mmkit", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy(root/"pyproject.toml", tmp/"pyproject.toml")
        exe = Path(sys.executable).with_name("nbdev-export")
        cmd = str(exe) if exe.exists() else shutil.which("nbdev-export")
        if cmd is None:
            raise SystemExit(f"check_export: nbdev-export is not installed for {sys.executable}; "
                             "run `source scripts/_env.sh` (it sets up .venv) or `bash scripts/test.sh` first")
        r = subprocess.run([cmd], cwd=tmp, capture_output=True, text=True)
        if r.returncode: raise SystemExit(f"nbdev-export failed:\n{r.stdout}{r.stderr}")
        changed = []
        for p in sorted(set((tmp/"mmkit").rglob("*.py")) | {tmp/"mmkit"/q.relative_to(root/"mmkit") for q in (root/"mmkit").rglob("*.py")}):
            rel = p.relative_to(tmp/"mmkit"); orig = root/"mmkit"/rel
            if "__pycache__" in rel.parts: continue
            if not p.exists() or not orig.exists() or not filecmp.cmp(p, orig, shallow=False): changed.append(f"mmkit/{rel}")
        return changed

if __name__ == "__main__":
    changed = check_export(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent)
    if changed:
        print("Notebooks and library disagree; run `nbdev-export` and commit nbs/ and mmkit/ together. Differs:", *changed, sep="\n  ")
        sys.exit(1)
    print("notebooks and mmkit/ agree")
