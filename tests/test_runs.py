"""runs: run_experiment writes a complete run folder, reuses it, redoes it on force, resumes an interrupted one, and
fails cleanly (bad parameters before any folder; a failure inside leaves failed.json, never a half-written file)."""
import json
from pathlib import Path

import pytest

from mmkit.config import MMKitError
from mmkit.config import atomic_write_json
from mmkit.runs import add_controls, check_params, list_runs, newest_run, read_run, rescore, run_experiment
from mmkit.tasks import TRAIN_TASKS

SMALL = dict(size="test", scale="test", budget=16, eval_n=2)

def _mtime(run): return (run/"checkpoint"/"model.safetensors").stat().st_mtime_ns

def test_complete_run_reuse_and_force(test_base, tmp_path, capsys):
    run = run_experiment("lang_only", runs_dir=tmp_path, **SMALL)
    assert run == tmp_path/"lang_only-b16-test-test-n2"
    for f in ["config.json", "tokens.json", "loss.jsonl", "predictions.jsonl", "metrics.json", "checkpoint/config.json"]:
        assert (run/f).exists(), f
    assert not (run/"trainer").exists() and not (run/"failed.json").exists()
    assert not [p for p in run.rglob("*.tmp")]
    cfg = json.loads((run/"config.json").read_text())
    assert cfg["params"]["recipe"] == "lang_only" and cfg["params"]["budget"] == 16 and len(cfg["example_ids"]) == 16
    assert cfg["base_path"] == str(test_base) and cfg["env"]["torch"] and "git_commit" in cfg["env"]
    m = json.loads((run/"metrics.json").read_text())
    tokens = json.loads((run/"tokens.json").read_text())["totals"]
    assert m["training_tokens"] == dict(text=tokens["text_tokens"], image=0, total=tokens["text_tokens"]) and tokens["text_tokens"] > 0
    assert set(m["datasets"]) == {"boolq", "openbookqa", "race", "hellaswag", "pope", "gqa", "ai2d", "realworldqa", "scienceqa"}
    assert all(d["n"] == 2 for d in m["datasets"].values()) and 0 <= m["overall_avg"] <= 1
    assert len((run/"predictions.jsonl").read_text().splitlines()) == 18
    ctl = m["controls"]                              # training-task controls: fresh items of every stage-2 training task
    assert set(ctl["datasets"]) == set(TRAIN_TASKS) and all(d["n"] == 2 for d in ctl["datasets"].values())
    assert len((run/"controls.jsonl").read_text().splitlines()) == 2 * len(TRAIN_TASKS)
    vis = {t for t, (_, mod, _) in TRAIN_TASKS.items() if mod == "vision"}   # the vision controls again, blank images
    cb = [json.loads(l) for l in (run/"controls_blind.jsonl").read_text().splitlines()]
    assert set(m["controls_blind"]["datasets"]) == vis and len(cb) == 2 * len(vis) and all(r["blind"] for r in cb)
    # the checks: log-likelihood scoring, the vision suites with blank images, the negative control (both scorers)
    assert set(m["loglik"]["datasets"]) == set(m["datasets"]) and len((run/"loglik.jsonl").read_text().splitlines()) == 18
    blind = [json.loads(l) for l in (run/"blind.jsonl").read_text().splitlines()]
    assert set(m["blind"]["datasets"]) == {"pope", "gqa", "ai2d", "realworldqa", "scienceqa"} and all(r["blind"] for r in blind)
    bll = [json.loads(l) for l in (run/"blind_loglik.jsonl").read_text().splitlines()]      # blank images, log-likelihood too
    assert set(m["blind_loglik"]["datasets"]) == set(m["blind"]["datasets"]) and all(r["blind"] for r in bll) and len(bll) == 10
    assert set(m["negative"]) == {"generate", "loglik", "n"} and len((run/"negative.jsonl").read_text().splitlines()) == 4
    assert m["skills"] and all(k.endswith(("/language", "/vision")) for k in m["skills"])
    t0 = _mtime(run); capsys.readouterr()
    assert run_experiment("lang_only", runs_dir=tmp_path, **SMALL) == run
    assert "reused" in capsys.readouterr().out and _mtime(run) == t0          # not retrained
    run_experiment("lang_only", runs_dir=tmp_path, force=True, **SMALL)
    assert _mtime(run) != t0 and read_run(run)["status"] == "complete"
    assert newest_run("lang_only", tmp_path)["path"] == run

def test_base_recipe_evaluates_the_base(test_base, tmp_path):
    run = run_experiment("base", runs_dir=tmp_path, size="test", scale="test", eval_n=2)
    r = read_run(run)
    assert r["status"] == "complete" and r["checkpoint"] == test_base and not (run/"checkpoint").exists()
    assert r["metrics"]["training_tokens"] == dict(text=0, image=0, total=0)
    # a run made before controls existed gets them back-filled from its checkpoint, with the same figures
    m = r["metrics"]; before, blank = m.pop("controls"), m.pop("controls_blind"); atomic_write_json(run/"metrics.json", m)
    assert "controls" not in read_run(run)["metrics"]
    assert add_controls(run) == before and read_run(run)["metrics"]["controls"] == before
    assert read_run(run)["metrics"]["controls_blind"] == blank
    # rescore: stored outputs re-extracted with the current extractor, metrics recomputed, nothing else touched
    m0 = read_run(run)["metrics"]
    assert rescore(run) == {"predictions.jsonl": 0, "controls.jsonl": 0, "controls_blind.jsonl": 0, "blind.jsonl": 0}
    assert read_run(run)["metrics"] == m0
    rows = [json.loads(l) for l in (run/"predictions.jsonl").read_text().splitlines()]
    yn = next(i for i, r in enumerate(rows) if r["answer_type"] == "yesno")
    mc = next(i for i, r in enumerate(rows) if r["answer_type"] == "letter")
    rows[yn].update(output="top right", extracted="yes", correct=rows[yn]["gold"] == "yes")   # the old extractor's verdict
    choices = rows[mc].pop("choices")                        # a row written before `choices` was stored
    rows[mc].update(output=choices[1] + '".', extracted="", correct=False)
    (run/"predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert rescore(run) == {"predictions.jsonl": 2, "controls.jsonl": 0, "controls_blind.jsonl": 0, "blind.jsonl": 0}
    new = [json.loads(l) for l in (run/"predictions.jsonl").read_text().splitlines()]
    assert new[yn]["extracted"] == "" and not new[yn]["correct"]
    assert new[mc]["extracted"] == "B" and new[mc]["correct"] == (rows[mc]["gold"] == "B")   # choices read from the prompt
    m = read_run(run)["metrics"]
    for ds in (rows[yn]["dataset"], rows[mc]["dataset"]):
        assert m["datasets"][ds]["acc"] == sum(r["correct"] for r in new if r["dataset"] == ds) / m["datasets"][ds]["n"]
    assert m["controls"] == before and m["training_tokens"] == m0["training_tokens"]
    lines = (run/"predictions.jsonl").read_text().splitlines(); lines[2] = lines[2][:-1]     # a torn line
    (run/"predictions.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(MMKitError, match=r"predictions\.jsonl: line 3: invalid JSON"): rescore(run)

def test_bad_parameter_fails_before_any_folder(tmp_path):
    with pytest.raises(MMKitError, match="unknown recipe 'lang_onyl'"):
        run_experiment("lang_onyl", runs_dir=tmp_path/"runs", **SMALL)
    with pytest.raises(MMKitError, match="budget"):
        run_experiment("lang_only", runs_dir=tmp_path/"runs", **{**SMALL, "budget": -3})
    with pytest.raises(MMKitError, match="needs .* examples but the pool has only"):   # budget larger than the test pools
        run_experiment("vis_only", runs_dir=tmp_path/"runs", **{**SMALL, "budget": 100_000})
    assert not (tmp_path/"runs").exists()

def test_bad_base_fails_before_any_folder(tmp_path):
    bad = tmp_path/"not_llava"; bad.mkdir(); (bad/"config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(MMKitError):
        run_experiment("lang_only", runs_dir=tmp_path/"runs", base=str(bad), **SMALL)
    with pytest.raises(MMKitError, match="does not exist"):
        run_experiment("lang_only", runs_dir=tmp_path/"runs", base=str(tmp_path/"nowhere"), **SMALL)
    assert not (tmp_path/"runs").exists()

def test_interrupted_failed_and_broken_runs(test_base, tmp_path, capsys):
    run = run_experiment("vis_only", runs_dir=tmp_path, **SMALL)
    t0 = _mtime(run)
    (run/"metrics.json").unlink()                                    # crashed during evaluation
    assert read_run(run)["status"] == "incomplete"
    run_experiment("vis_only", runs_dir=tmp_path, **SMALL)
    assert "training already done" in capsys.readouterr().out and _mtime(run) == t0
    m = json.loads((run/"metrics.json").read_text()); assert m["training_tokens"]["image"] > 0
    # a failure inside (the checkpoint became unreadable): failed.json with the error, no metrics, no temp files
    good = (run/"checkpoint"/"config.json").read_text()
    (run/"metrics.json").unlink(); (run/"checkpoint"/"config.json").write_text("{not json")
    with pytest.raises(MMKitError, match="config.json"):
        run_experiment("vis_only", runs_dir=tmp_path, **SMALL)
    r = read_run(run)
    assert r["status"] == "incomplete" and "config.json" in r["error"] and not (run/"metrics.json").exists()
    assert not [p for p in run.rglob("*.tmp")]
    (run/"checkpoint"/"config.json").write_text(good)
    # a corrupt metrics.json: listed as broken (not crashing), repaired by evaluating again without retraining
    run_experiment("vis_only", runs_dir=tmp_path, **SMALL)
    assert not (run/"failed.json").exists()
    (run/"metrics.json").write_text('{"datasets": {"boolq": ')
    r = {x["name"]: x for x in list_runs(tmp_path)}[run.name]
    assert r["status"] == "broken" and "invalid JSON" in r["error"]
    run_experiment("vis_only", runs_dir=tmp_path, **SMALL)
    assert read_run(run)["status"] == "complete" and _mtime(run) == t0
    with pytest.raises(MMKitError, match="other parameters"):       # same folder, other parameters: refused
        run_experiment("vis_only", runs_dir=tmp_path, run_name=run.name, **{**SMALL, "budget": 8})
    cfg = json.loads((run/"config.json").read_text())                # trained on an older microcosm's base: refused too
    (run/"config.json").write_text(json.dumps({**cfg, "base_path": str(Path(cfg["base_path"]).with_name("base-test-test-0ld"))}))
    with pytest.raises(MMKitError, match="trained on the base base-test-test-0ld.*microcosm changed"):
        run_experiment("vis_only", runs_dir=tmp_path, **SMALL)
    (run/"config.json").write_text(json.dumps(cfg))
    # a runs folder moved between training and evaluation: evaluation loads the checkpoint where the run is now
    (run/"metrics.json").unlink(); (tmp_path/"moved").mkdir()
    moved = run.rename(tmp_path/"moved"/run.name); capsys.readouterr()
    run_experiment("vis_only", runs_dir=tmp_path/"moved", **SMALL)
    assert "training already done" in capsys.readouterr().out
    assert read_run(moved)["status"] == "complete" and _mtime(moved) == t0 and not run.exists()

def test_check_params_normalizes():
    p = check_params("mix:0.5", budget=8.0, lora=True, suites="pope,gqa")
    assert p["budget"] == 8 and p["lora"]["r"] > 0 and p["suites"] == ["pope", "gqa"] and check_params(**p) == p


@pytest.mark.slow
def test_two_process_run_shards_evaluation_and_matches_one_process(test_base, tmp_path):
    """`torchrun --nproc_per_node 2` runs a whole experiment: both ranks train (DDP), each scores its share of the
    held-out items, every rank gets all rows back, the main process alone writes — and the predictions equal a
    one-process evaluation of the same checkpoint."""
    import os, subprocess, sys
    from pathlib import Path
    from mmkit.evaluate import evaluate
    from mmkit.model import load_model
    root = Path(__file__).resolve().parents[1]
    runs = tmp_path/"runs"; runs.mkdir()
    # a CPU group, also on a GPU machine: there accelerate's barrier hands gloo the rank as a GPU index (seen on a
    # one-GPU H100 machine: rank 1 failed with "CUDA error: invalid device ordinal")
    env = dict(os.environ, ACCELERATE_USE_CPU="1", OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29535",
                        str(root/"tests"/"ddp_run.py"), str(runs), str(test_base)], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    rep = json.loads((runs/"ddp_report.json").read_text())
    assert [x["world_size"] for x in rep] == [2, 2] and [x["rank"] for x in rep] == [0, 1]
    assert rep[0]["shard"] == rep[1]["shard"] == [[0, 0], [0, 1], [0, 2], [0, 3], [1, 4], [1, 5], [1, 6]]
    assert rep[0]["n_rows"] == rep[1]["n_rows"] == 9 and rep[0]["digest"] == rep[1]["digest"]
    run = read_run(runs/"ddp")
    assert run["status"] == "complete" and not (runs/"ddp"/"failed.json").exists()
    assert r.stdout.count("[runs] ddp: complete") == 1                  # only the main process reports
    model, proc = load_model(runs/"ddp"/"checkpoint")
    _, ref = evaluate(model, proc, suites=["boolq", "pope", "race"], n=3, seed=0, progress=False)
    got = [json.loads(l) for l in (runs/"ddp"/"predictions.jsonl").read_text().splitlines()]
    assert [(g["id"], g["output"], g["correct"]) for g in got] == [(x["id"], x["output"], x["correct"]) for x in ref]
    assert (runs/"ddp"/"controls.jsonl").is_file() and run["metrics"]["tokens"]["examples"] >= 16
    # the command line under torchrun, with no microcosm base built: one clear error, before any run folder exists
    mmkit = Path(sys.executable).parent/"mmkit"
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29536",
                        str(mmkit), "train", "--recipe", "lang_only", "--scale", "test", "--size", "test", "--budget", "16",
                        "--runs-dir", str(tmp_path/"runs2")], env=dict(env, MMKIT_CACHE_DIR=str(tmp_path/"empty_cache")),
                       capture_output=True, text=True, timeout=600)
    assert r.returncode != 0 and "is not built, and building it takes one process: run `mmkit base --size test --scale test`" in r.stderr
    assert not (tmp_path/"runs2").exists() or not any((tmp_path/"runs2").iterdir())

def test_cli_run_on_a_llava_hf_base_folder_with_lora(tmp_path):
    """`mmkit train --recipe mlan_50 --base <llava-hf folder> --lora`: the real-scale command line, on a tiny random
    checkpoint with LLaVA-1.5's processor (336 px, 576 image tokens). Stage 2 trains on the image examples too, and
    the held-out and control images are rendered at the base's size."""
    import subprocess, sys
    from pathlib import Path
    from mmkit.model import make_llava15_fixture
    fx = make_llava15_fixture(tmp_path/"llava15")
    mmkit = str(Path(sys.executable).with_name("mmkit"))
    r = subprocess.run([mmkit, "train", "--recipe", "mlan_50", "--base", str(fx), "--lora", "--budget", "16", "--scale", "test",
                        "--epochs", "1", "--eval-n", "2", "--suites", "boolq,pope,gqa", "--runs-dir", str(tmp_path/"runs"),
                        "--run-name", "real"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    run = read_run(tmp_path/"runs"/"real")
    assert run["status"] == "complete"
    tok = json.loads((tmp_path/"runs"/"real"/"tokens.json").read_text())
    assert tok["totals"]["image_tokens"] == 576 * tok["by_modality"]["vision"]["examples"] > 0
    assert run["config"]["params"]["lora"] and run["config"]["base_path"] == str(fx)
    preds = [json.loads(l) for l in (tmp_path/"runs"/"real"/"predictions.jsonl").read_text().splitlines()]
    assert len(preds) == 6 and sum(p["has_image"] for p in preds) == 4          # pope and gqa items carry images
    ck = tmp_path/"runs"/"real"/"checkpoint"
    assert (ck/"config.json").is_file() and not (ck/"adapter_config.json").exists()   # LoRA merged: a plain llava-hf folder


def test_one_run_per_run_folder_at_a_time(test_base, tmp_path):
    """Two processes, one run name: while another process holds the run folder's lock, `mmkit train` on the same run
    fails at once with one line naming the folder and the holder's pid, and writes nothing. The holder is then killed
    (SIGKILL: no clean-up code runs) and the lock is gone with it: the next run under that name completes."""
    import os, subprocess, sys
    from pathlib import Path
    runs = tmp_path/"runs"; run = runs/"same"
    holder = subprocess.Popen([sys.executable, "-c", "import sys\nfrom mmkit.runs import run_lock\n"
                               f"with run_lock({str(run)!r}):\n    print('locked', flush=True); sys.stdin.read()"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        mmkit = str(Path(sys.executable).with_name("mmkit"))
        r = subprocess.run([mmkit, "train", "--recipe", "lang_only", "--run-name", "same", "--runs-dir", str(runs), "--size",
                            "test", "--scale", "test", "--budget", "16", "--eval-n", "2"], capture_output=True, text=True, timeout=300)
        assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr[-2000:]
        err = [l for l in r.stderr.splitlines() if l.startswith("mmkit: error:")]
        assert len(err) == 1 and str(run) in err[0] and f"pid {holder.pid}" in err[0], r.stderr[-2000:]
        assert [p.name for p in run.iterdir()] == [".lock"]                 # the refused run wrote nothing
        with pytest.raises(MMKitError, match=f"in use by another run \\(pid {holder.pid}\\)"):   # the library call
            run_experiment("lang_only", run_name="same", runs_dir=runs, **SMALL)
    finally:
        holder.kill(); holder.wait()
    run_experiment("lang_only", run_name="same", runs_dir=runs, **SMALL)
    assert read_run(run)["status"] == "complete" and not (run/"failed.json").exists()
