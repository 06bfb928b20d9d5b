"""report + CLI: `mmkit train` with small parameters makes a run, `mmkit report` writes the table and figures from a
folder of small runs; a corrupt metrics.json is listed as broken, not crashing the report."""
import json, os, subprocess, sys
from pathlib import Path

import pandas as pd
import pytest

from mmkit import report
from mmkit.evaluate import chance_levels
from mmkit.runs import run_experiment

SMALL = dict(size="test", scale="test", budget=16, eval_n=2)
MMKIT = str(Path(sys.executable).with_name("mmkit"))

@pytest.fixture(scope="module")
def runs3(tmp_path_factory, test_base):
    "A runs folder with 3 small complete runs (base, lang_only via the CLI, mix:0.5) and one broken run."
    root = tmp_path_factory.mktemp("runs")
    r = subprocess.run([MMKIT, "train", "--recipe", "lang_only", "--size", "test", "--scale", "test", "--budget", "16",
                        "--eval-n", "2", "--runs-dir", str(root)], capture_output=True, text=True, env=os.environ, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "lang_only-b16-test-test-n2: language" in r.stdout and (root/"lang_only-b16-test-test-n2"/"metrics.json").is_file()
    run_experiment("base", runs_dir=root, size="test", scale="test", eval_n=2)
    run_experiment("mix:0.5", runs_dir=root, **SMALL)
    broken = root/"broken-run"; broken.mkdir()
    (broken/"config.json").write_text(json.dumps(dict(params=dict(recipe="vis_only", seed=0))))
    (broken/"metrics.json").write_text('{"datasets": {"pope": {"acc": 0.')
    return root

def test_results_frame_and_table(runs3):
    df = report.results_frame(runs3)
    assert sorted(df.recipe) == ["base", "lang_only", "mix:0.5"]
    row = df.set_index("recipe").loc["mix:0.5"]
    assert row.tokens_text > 0 and row.tokens_image > 0 and row.tokens_total == row.tokens_text + row.tokens_image
    t = report.results_table(df)
    assert list(t.index) == ["base", "lang_only", "mix:0.5"] and t.loc["base", "image tokens"] == "0"
    assert {"boolq", "scienceqa", "language avg", "vision avg", "overall avg", "text tokens", "image tokens"} <= set(t.columns)
    tc = report.results_table(df, chance_levels(n=8))          # the chance row: uniform guess among valid answers
    assert list(tc.index)[-1] == "chance" and tc.loc["chance", "pope"] == "50.0" and tc.loc["chance", "gqa"] == "0.0"
    ct = report.controls_table(df)                            # every run scored the training-task controls
    assert list(ct.index) == ["base", "lang_only", "mix:0.5"] and {"scene_qa", "image_qa", "language avg"} <= set(ct.columns)
    assert ct.loc["lang_only", "image_qa, blank images"] != "–"                # the vision controls with blank images

def test_answer_forms_split_each_score_into_answered_and_accuracy_when_answered(runs3):
    forms = report.answer_forms(runs3)
    assert set(forms.run) == {r.name for r in runs3.iterdir() if r.name != "broken-run"}
    for _, f in forms.iterrows():                             # acc = answered × accuracy-when-answered, from the real runs
        m = json.loads((runs3/f.run/"metrics.json").read_text())["datasets"][f.dataset]
        assert f.n == m["n"] and 0 <= f.answered <= 1
        assert abs(m["acc"] - f.answered * (0 if f.answered == 0 else f.acc_answered)) < 1e-9, (f.run, f.dataset)
    t = report.answer_form_table(report.results_frame(runs3), forms)
    assert list(t.index) == ["base", "lang_only", "mix:0.5"] and all(" · " in t.loc["base", s] for s in ("boolq", "pope"))

def test_sweep_figure_plots_every_fraction_and_its_axis_covers_the_error_bars_and_chance(runs3):
    df = report.results_frame(runs3)
    chance = chance_levels(n=8)
    fig = report.fig_sweep(df, chance=chance)
    lines = {t.name: t for t in fig.data}
    assert set(lines) == {"language average", "vision average", "overall average"}
    assert list(lines["vision average"].x) == [50.0, 100.0]          # mix:0.5 and lang_only; the base is a line, not a point
    top = max([y + (e or 0) for t in fig.data for y, e in zip(t.y, t.error_y.array)] + [chance["language_avg"], chance["vision_avg"]])
    lo, hi = fig.layout.yaxis.range
    assert lo == 0 and top <= hi <= max(0.5, top + 0.1)              # fits the data: not a fixed 0-1 axis
    notes = {a.text: a for a in fig.layout.annotations}
    assert set(notes) >= {"base (vision)", "base (language)", "chance (vision)", "chance (language)"}
    assert all(notes[k].yanchor == "bottom" for k in ("base (vision)", "base (language)"))   # above the near-zero base lines, not on the ticks

def test_cli_report_writes_table_and_figures(runs3, tmp_path):
    out = tmp_path/"rep"
    r = subprocess.run([MMKIT, "report", "--runs-dir", str(runs3), "--out", str(out)], capture_output=True, text=True, timeout=120,
                       cwd=runs3.parent)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "damaged run broken-run (left out)" in r.stdout
    for f in ["results.md", "results.csv", "runs.csv", "fig_per_dataset.html", "fig_score_vs_tokens.html", "fig_sweep.html", "plotly.min.js"]:
        assert (out/f).is_file() and (out/f).stat().st_size > 0, f
    md = (out/"results.md").read_text()
    assert "| lang_only |" in md and "| broken-run | vis_only | 0 | broken |" in md
    assert f"under `{runs3.name}/`" in md and f"under `{runs3}" not in md       # relative to where it ran: no machine's path
    assert list(pd.read_csv(out/"results.csv", index_col=0).index) == ["base", "lang_only", "mix:0.5", "chance"]
    assert "## Answer form" in md and list(pd.read_csv(out/"answer_forms.csv", index_col=0).index) == ["base", "lang_only", "mix:0.5"]
    assert "## Training-task controls" in md and list(pd.read_csv(out/"controls.csv", index_col=0).index) == ["base", "lang_only", "mix:0.5"]
    assert "mix:0.5" in (out/"fig_sweep.html").read_text()

def test_cli_errors_are_one_line(tmp_path):
    r = subprocess.run([MMKIT, "train", "--recipe", "nope", "--runs-dir", str(tmp_path/"runs")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.startswith("mmkit: error:") and "unknown recipe 'nope'" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path/"runs").exists()
    r = subprocess.run([MMKIT, "runs", "--runs-dir", str(tmp_path), "--json"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and json.loads(r.stdout) == []
    r = subprocess.run([MMKIT, "report", "--runs-dir", str(tmp_path/"misspelt")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.startswith("mmkit: error:") and "runs folder" in r.stderr and "does not exist" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path/"misspelt").exists()


def test_report_with_damaged_runs_reports_the_intact_ones(runs3, tmp_path):
    """One run with a torn predictions.jsonl line, one whose metrics.json is not JSON, one whose metrics hold a score
    of the wrong type: `mmkit report` still writes the report of the intact run and names each damaged one (printed,
    in results.md, in write_report's `damaged`)."""
    import shutil
    root = tmp_path/"runs"; shutil.copytree(runs3, root, ignore=shutil.ignore_patterns("checkpoint"))
    preds = root/"lang_only-b16-test-test-n2"/"predictions.jsonl"
    lines = preds.read_text().splitlines(); lines[3] = lines[3][:25]
    preds.write_text("\n".join(lines) + "\n")
    base = next(p for p in root.iterdir() if p.name.startswith("base"))
    m = json.loads((base/"metrics.json").read_text()); m["language_avg"] = "n/a"; (base/"metrics.json").write_text(json.dumps(m))
    out = tmp_path/"rep"
    r = subprocess.run([MMKIT, "report", "--runs-dir", str(root), "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"damaged run lang_only-b16-test-test-n2 (left out): {preds}: line 4: invalid JSON" in r.stdout
    assert f"damaged run {base.name} (left out): " in r.stdout and "language_avg is 'n/a'" in r.stdout
    assert "damaged run broken-run (left out)" in r.stdout
    assert list(pd.read_csv(out/"results.csv", index_col=0).index) == ["mix:0.5", "chance"]
    md = (out/"results.md").read_text()
    assert "## Damaged runs" in md and "3 damaged run(s) left out" in md
    for name in ("lang_only-b16-test-test-n2", base.name, "broken-run"): assert f"- `{name}`: " in md
    rep = report.write_report(tmp_path/"rep2", runs_dir=root)
    assert set(rep["damaged"]) == {"lang_only-b16-test-test-n2", base.name, "broken-run"}
    assert list(rep["frame"].run) == [p.name for p in root.iterdir() if p.name.startswith("mix")]


def test_checks_and_skills_tables_and_the_readme_block(runs3, tmp_path):
    df = report.results_frame(runs3)
    ck = report.checks_table(df, chance_levels(n=8), 0.25)
    assert list(ck.index) == ["base", "lang_only", "mix:0.5", "chance"] and ck.loc["chance", "negative (loglik)"] == "25.0"
    assert {"vision (loglik)", "vision, blind images", "negative (generate)"} <= set(ck.columns)
    assert "vision, blind images (loglik)" in ck.columns
    sk = report.skills_table(df)
    assert "exists/vision" in sk.columns and list(sk.index) == ["base", "lang_only", "mix:0.5"]
    ll, bl = report.skills_table(df, "llskill_"), report.skills_table(df, "blindllskill_")   # per skill under log-likelihood, and blind
    assert "exists/vision" in ll.columns and "exists/vision" in bl.columns and set(bl.columns) <= set(ll.columns)   # blind: the vision suites' items only
    readme = tmp_path/"README.md"
    readme.write_text("# x\nbefore\n<!-- results:begin -->\nold\n<!-- results:end -->\nafter\n")
    rep = report.write_report(tmp_path/"rep", runs_dir=runs3, readme=readme)
    text = readme.read_text()
    assert "old" not in text and text.startswith("# x\nbefore\n") and text.endswith("after\n") and "| lang_only |" in text
    assert rep["paths"]["readme"] == readme and (tmp_path/"rep"/"checks.csv").is_file()
    readme.write_text("no markers")
    with pytest.raises(Exception, match="results:begin"): report.update_readme(readme, "x")
