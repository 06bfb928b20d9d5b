"""Experiment notebooks through papermill: train.ipynb makes a complete run and reuses it, a bad parameter fails in the
first cells with the kit's error and leaves no run folder, report.ipynb reports a folder of runs (one broken)."""
import json, subprocess, sys
from pathlib import Path

import papermill as pm
import pytest

ROOT = Path(__file__).resolve().parent.parent
NBS = ROOT/"nbs"
SMALL = dict(recipe="lang_only", size="test", scale="test", budget=16, eval_n=2)

def _run(nb, out, **params):
    return pm.execute_notebook(str(NBS/nb), str(out), parameters=params, kernel_name="python3", cwd=str(NBS),
                               progress_bar=False, log_output=False)

def _text(nb_path) -> str:
    nb = json.loads(Path(nb_path).read_text())
    return "".join("".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", []))

def test_notebooks_have_parameters_cells():
    for name in ["pretrain", "train", "sweep", "report"]:
        nb = json.loads((NBS/f"{name}.ipynb").read_text())
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert "parameters" in code[0]["metadata"].get("tags", []), name
        assert nb["metadata"]["kernelspec"]["name"] == "python3"

def test_train_notebook_runs_then_reuses(test_base, tmp_path):
    runs = tmp_path/"runs"
    # the README's command line, with small parameters
    cmd = [str(Path(sys.executable).with_name("papermill")), "nbs/train.ipynb", str(tmp_path/"a.ipynb"), "--cwd", "nbs",
           "-p", "runs_dir", str(runs), "-k", "python3"] + [x for k, v in SMALL.items() for x in ("-p", k, str(v))]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    run = runs/"lang_only-b16-test-test-n2"
    assert (run/"metrics.json").is_file() and (run/"checkpoint"/"model.safetensors").is_file()
    assert f"results: {run}" in _text(tmp_path/"a.ipynb")
    t0 = (run/"checkpoint"/"model.safetensors").stat().st_mtime_ns
    _run("train.ipynb", tmp_path/"b.ipynb", runs_dir=str(runs), **SMALL)
    assert "[runs] reused" in _text(tmp_path/"b.ipynb")
    assert (run/"checkpoint"/"model.safetensors").stat().st_mtime_ns == t0
    assert json.loads((run/"config.json").read_text())["compile"] is False
    from mmkit.train import cxx_compiler
    have_cxx = cxx_compiler() is not None                                   # compile=True needs a C++ compiler
    _run("train.ipynb", tmp_path/"c.ipynb", runs_dir=str(runs), force=True, compile=have_cxx, **SMALL)   # how, not what: same run
    assert "[runs] force" in _text(tmp_path/"c.ipynb") and (run/"checkpoint"/"model.safetensors").stat().st_mtime_ns != t0
    assert (run/"metrics.json").is_file()
    assert json.loads((run/"config.json").read_text())["compile"] == json.loads((run/"train.json").read_text())["compile"] == have_cxx

def test_train_notebook_bad_parameter_fails_early(tmp_path):
    runs = tmp_path/"runs"
    with pytest.raises(pm.PapermillExecutionError) as e:
        _run("train.ipynb", tmp_path/"bad.ipynb", runs_dir=str(runs), **{**SMALL, "recipe": "lang_onyl"})
    assert "unknown recipe 'lang_onyl'" in e.value.evalue and e.value.ename == "DataError"
    nb = json.loads((tmp_path/"bad.ipynb").read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    failing = [i for i, c in enumerate(code) if any(o["output_type"] == "error" for o in c.get("outputs", []))]
    assert len(failing) == 1 and failing[0] == 2                       # parameters, injected parameters, validation
    assert "check_params" in "".join(code[2]["source"])
    err = [o for o in code[2]["outputs"] if o["output_type"] == "error"][0]
    assert err["traceback"] == [f"DataError: {e.value.evalue}"]         # the one line, no traceback through the kit
    assert not runs.exists()                                            # nothing written


def test_misspelt_parameter_is_refused_by_every_experiment_notebook(tmp_path):
    """`papermill ... -p recpie lang_only` used to train the default recipe: the check cell refuses a name the
    notebook's parameters cell does not define, with the closest name, before anything runs. What the terminal shows
    ends with that one line, and the kernel's part of it is that line alone (papermill's own frames stay above it)."""
    runs = tmp_path/"runs"
    cmd = [str(Path(sys.executable).with_name("papermill")), "nbs/train.ipynb", str(tmp_path/"t.ipynb"), "--cwd", "nbs",
           "-k", "python3", "-p", "recpie", "vis_only", "-p", "runs_dir", str(runs), "-p", "size", "test", "-p", "scale", "test"]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode != 0
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert lines[-1].startswith("RunError: unknown parameter 'recpie' (did you mean 'recipe'?); this notebook's parameters: recipe, ")
    assert lines[-2] == 'Exception encountered at "In [3]":' and "Cell In[" not in r.stderr and "---->" not in r.stderr
    assert not runs.exists()
    for nb, bad, close, cell in [("sweep.ipynb", "seed", "seeds", 2), ("pretrain.ipynb", "szie", "size", 2),
                                 ("report.ipynb", "runs_dri", "runs_dir", 2)]:
        extra = {} if nb == "pretrain.ipynb" else {"runs_dir": str(runs)}
        with pytest.raises(pm.PapermillExecutionError) as e:
            _run(nb, tmp_path/nb, **{bad: "test"}, **extra)
        assert e.value.ename == "RunError" and f"unknown parameter {bad!r} (did you mean {close!r}?)" in e.value.evalue, nb
        assert e.value.exec_count == cell + 1 and e.value.traceback == [f"RunError: {e.value.evalue}"], nb
    assert not runs.exists()

def test_report_notebook(test_base, tmp_path):
    from mmkit.runs import run_experiment
    runs = tmp_path/"runs"
    for recipe in ["base", "lang_only", "vis_only"]:
        run_experiment(recipe, runs_dir=runs, size="test", scale="test", eval_n=2, budget=None if recipe == "base" else 8)
    bad = runs/"corrupt"; bad.mkdir(); (bad/"metrics.json").write_text("{")
    _run("report.ipynb", tmp_path/"report.ipynb", runs_dir=str(runs))
    out = runs/"report"
    assert {"results.md", "results.csv", "fig_per_dataset.html", "fig_score_vs_tokens.html", "fig_sweep.html"} <= {p.name for p in out.iterdir()}
    nb = json.loads((tmp_path/"report.ipynb").read_text())
    html = "".join("".join(o.get("data", {}).get("text/html", "")) for c in nb["cells"] for o in c.get("outputs", []))
    assert "lang_only" in html and "vis_only" in html and "broken" in html
    plots = [o for c in nb["cells"] for o in c.get("outputs", []) if "application/vnd.plotly.v1+json" in o.get("data", {})]
    assert len(plots) == 3

def test_pretrain_notebook_builds_a_variant_base(test_base, tmp_path):
    "pretrain.ipynb with `stage0` settings builds (and reports the gates of) its own base beside the default one."
    from mmkit.config import read_json
    _run("pretrain.ipynb", tmp_path/"p.ipynb", size="test", scale="test", stage0={"epochs": 1}, n_samples=2)
    out = _text(tmp_path/"p.ipynb")
    path = Path(out.split("base: ", 1)[1].splitlines()[0])
    assert path != Path(test_base) and (path/"base.json").is_file()
    from mmkit.train import COPY_STEPS
    assert read_json(path/"base.json")["key"]["overrides"]["stage0"] == {"copy_steps": COPY_STEPS["test"], "epochs": 1}
