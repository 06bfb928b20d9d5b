"""The real-scale bench, run as a user runs it, at its tiny shape (the same pipeline as the 7B run on a GPU:
LLaVA-1.5's 336-px processor, LoRA on every linear layer of the language model, merge, a checkpoint written and read
back in bf16 (fp32 on a CPU without native bf16), the batched evaluator against the one-at-a-time loop)."""
import json, os, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

def test_real_scale_bench_runs_its_pipeline_at_the_tiny_shape(tmp_path):
    out = tmp_path/"real.json"
    r = subprocess.run([sys.executable, str(ROOT/"bench"/"real_scale.py"), "--shape", "test", "--budget", "48", "--eval-n", "2",
                        "--work", str(tmp_path/"work"), "--json", str(out)], capture_output=True, text=True, timeout=600,
                       env=dict(os.environ, MMKIT_RUNS_DIR=str(tmp_path/"runs")))
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(out.read_text())
    s2, ev = res["stage2"], res["eval"]
    assert s2["examples"] == 48 and s2["tokens"]["image_tokens"] > 0 and s2["tokens"]["image_tokens"] % 576 == 0
    assert s2["window_examples"] > 0 and s2["useful_tokens_per_s"] > 0 and s2["frac_bf16_peak"] > 0
    assert s2["lora"]["r"] == 128 and len(s2["lora"]["target_modules"]) == 7
    from mmkit.train import bf16_available          # bf16 where native; a CPU without it runs (and measures its peak in) fp32
    assert res["peak_dtype"] == ("bf16" if bf16_available() else "fp32")
    assert ev["items"] == 9 * 2 and 0 < ev["with_image"] < ev["items"] and ev["dtype"] == ("torch.bfloat16" if bf16_available() else "torch.float32")
    agree, n = map(int, ev["agree"].split("/"))
    assert n == ev["items"] and agree >= n - 2          # bf16: batch-size-dependent outputs may differ on an item or two
    assert (tmp_path/"work"/"run"/"checkpoint"/"config.json").is_file()
    assert "[real] stage 2:" in r.stdout and "[real] evaluation" in r.stdout

def test_train_throughput_bench_runs_every_side_and_reports_the_targets(tmp_path):
    """`bench/train_throughput.py` as a user runs it, at a tiny budget (2 rounds of 4 steps, a random default-size
    model where the base is not built): every side trains, and the printed targets lines and the JSON agree."""
    from mmkit.train import cxx_compiler
    out = tmp_path/"train.json"
    r = subprocess.run([sys.executable, str(ROOT/"bench"/"train_throughput.py"), "--examples", "48", "--batch-size", "8",
                        "--warmup", "2", "--steps", "4", "--rounds", "2", "--json", str(out)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(out.read_text())
    kinds = ["baseline", "mmkit"] + (["mmkit+compile"] if cxx_compiler() else [])
    assert [k for k in res if k in ("baseline", "mmkit", "mmkit+compile")] == kinds and len(res["rounds"]) == 2
    for k in kinds:   # 2 timed steps of up to 8 examples (grouped batches at a modality's end can be smaller)
        s = res[k]
        assert 0 < s["examples"] <= 2 * 8 and s["useful_tokens"] > 0 and s["useful_tokens_per_s"] > 0 and s["frac_bf16_peak"] > 0
        assert s["frac_bf16_peak"] in [x["sides"][k]["frac_bf16_peak"] for x in res["rounds"]]   # the median round's figure
    assert res["mmkit"]["padding_fraction"] <= res["baseline"]["padding_fraction"]   # grouped batches pad less
    for k in kinds[1:]:
        line = next(l for l in r.stdout.splitlines() if l.startswith(f"targets, {k} "))
        assert f"{res[k]['frac_bf16_peak']:.1%} of the {res['peak_dtype']} peak" in line and "of 2 rounds" in line

def test_train_throughput_bench_takes_another_language_model_shape(tmp_path):
    "`--lm HIDDEN,MLP,LAYERS,HEADS`: the same bench on a random model of another shape; a malformed shape is refused."
    out, bench = tmp_path/"lm.json", str(ROOT/"bench"/"train_throughput.py")
    r = subprocess.run([sys.executable, bench, "--lm", "64,128,1,2", "--no-compile", "--examples", "16", "--batch-size", "8",
                        "--warmup", "1", "--steps", "2", "--rounds", "1", "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(out.read_text())
    assert "hidden 64, MLP 128, 1 layer(s), 2 head(s)" in res["model"] and res["model"] in r.stdout
    assert res["mmkit"]["useful_tokens_per_s"] > 0 and "mmkit+compile" not in res
    bad = subprocess.run([sys.executable, bench, "--lm", "65,128,1,2"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "HIDDEN divisible by HEADS (got '65,128,1,2')" in bad.stderr

def test_shapes_bench_interleaves_the_shapes_against_the_first(tmp_path):
    "`bench/shapes.py`: every shape trains in every round, the order alternating; ratios are to the first shape's round."
    out = tmp_path/"shapes.json"
    r = subprocess.run([sys.executable, str(ROOT/"bench"/"shapes.py"), "--lm", "64,128,1,2", "32,64,2,2", "--rounds", "2",
                        "--examples", "16", "--batch-size", "8", "--warmup", "1", "--steps", "2", "--json", str(out)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(out.read_text())
    assert list(res["shapes"]) == ["64,128,1,2", "32,64,2,2"] and [x["order"] for x in res["rounds"]] == [
        ["64,128,1,2", "32,64,2,2"], ["32,64,2,2", "64,128,1,2"]]
    first, other = res["shapes"].values()
    assert first["to_first"] == [1.0, 1.0] and first["to_first_median"] == 1.0
    assert other["to_first"] == [round(x["sides"]["32,64,2,2"]["useful_tokens_per_s"] / x["sides"]["64,128,1,2"]["useful_tokens_per_s"], 3)
                                 for x in res["rounds"]]
    # > 0 only: the fraction divides two timings, and a peak measured while another process loads the CPU can come out
    # below what training reached (a fraction over 1 under load, seen on 2026-12-07); no timing is asserted
    assert all(x["sides"][n]["frac_bf16_peak"] > 0 for x in res["rounds"] for n in res["shapes"])
    same = subprocess.run([sys.executable, str(ROOT/"bench"/"shapes.py"), "--lm", "64,128,1,2", "64,128,1,2"],
                          capture_output=True, text=True, timeout=120)
    assert same.returncode == 2 and "two or more different shapes" in same.stderr

def test_copying_probe_trains_every_arm_and_scores_each_on_both_block_kinds(tmp_path):
    "`bench/copying.py` at a tiny budget: each arm trains and is scored on offset and varied blocks; the wired head attends back."
    out = tmp_path/"copying.json"
    r = subprocess.run([sys.executable, str(ROOT/"bench"/"copying.py"), "--size", "test", "--steps", "4", "--every", "2",
                        "--batch-size", "4", "--block", "32", "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(out.read_text())
    assert list(res["arms"]) == ["offset", "varied", "varied+prev"] and res["block"] == 32
    for a in res["arms"].values():
        assert [c["step"] for c in a["curve"]] == [2, 4] and a["tokens"] == 4 * 4 * 32
        assert all(c["second"] > 0 and c["first"] > 0 and c["ratio"] == round(c["second"] / c["first"], 3) for c in a["curve"])
        assert a["eval_offset_ratio"] > 0 and a["eval_varied_ratio"] > 0
    assert res["arms"]["varied+prev"]["previous_token_mass_at_init"] > 0.5     # uniform over 32 positions would be ~0.13
    assert "final ratio" in r.stdout and "varied+prev" in r.stdout
    for a in res["arms"].values():   # the curve's all-ids ratio is scored on the blocks the final varied score uses
        assert all(0 < c["heldout"] for c in a["curve"]) and a["curve"][-1]["heldout"] == a["eval_varied_ratio"]
    bad = subprocess.run([sys.executable, str(ROOT/"bench"/"copying.py"), "--block", "15"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "--block must be an even number" in bad.stderr

def test_copying_probe_warm_up_trains_on_a_few_ids_then_all(tmp_path):
    "`--vocab` and `--warmup-vocab/--warmup-steps`: the warm-up steps are flagged, later ones are not; a lone flag is refused."
    out = tmp_path/"warm.json"
    r = subprocess.run([sys.executable, str(ROOT/"bench"/"copying.py"), "--size", "test", "--arms", "varied", "--vocab", "50",
                        "--warmup-vocab", "8", "--warmup-steps", "2", "--steps", "4", "--every", "1", "--batch-size", "2",
                        "--block", "32", "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(out.read_text())
    assert (res["vocab"], res["warmup_vocab"], res["warmup_steps"]) == (50, 8, 2) and list(res["arms"]) == ["varied"]
    assert [("(warm-up ids)" in l) for l in r.stdout.splitlines() if l.startswith("[varied] step")] == [True, True, False, False]
    bad = subprocess.run([sys.executable, str(ROOT/"bench"/"copying.py"), "--warmup-vocab", "8"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "go together" in bad.stderr

def test_copying_probe_look_up_arms_score_forward_and_reversed_episodes(tmp_path):
    "The look-up arms: every query value is a span its block states earlier; both arms train, with curves of look-up accuracy."
    import importlib.util, torch
    spec = importlib.util.spec_from_file_location("copying", ROOT/"bench"/"copying.py"); cp = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cp)
    for fixed in (False, True):
        x, copy, rev, first = cp.recall_blocks(6, 96, 500, torch.Generator().manual_seed(0), fixed)
        assert x.shape == copy.shape == (6, 96) and not (rev & ~copy).any() and not (first & ~copy).any() and rev.any() and (copy & ~rev).any()
        for row, c, f in zip(x.tolist(), copy.tolist(), first.tolist()):
            starts = [i for i, v in enumerate(f) if v]
            assert starts and all(not c[i - 1] for i in starts)
            for i in starts:
                j = i
                while j < len(c) and c[j] and (j == i or not f[j]): j += 1
                span = row[i:j]
                assert any(row[k:k + len(span)] == span for k in range(i - len(span))), (row, i, span)
    out = tmp_path/"recall.json"
    r = subprocess.run([sys.executable, str(ROOT/"bench"/"copying.py"), "--size", "test", "--layers", "1", "--arms", "recall",
                        "varied+recall", "--first-varied", "2", "--fixed-separators", "--steps", "4", "--every", "2",
                        "--batch-size", "4", "--block", "64", "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(out.read_text())
    assert list(res["arms"]) == ["recall", "varied+recall"] and "1 layers" in r.stdout and "look-up first-token accuracy" in r.stdout
    for a in res["arms"].values():
        assert all(0 <= c[k] <= 1 for c in a["curve"] for k in ("fwd_acc", "rev_acc")) and a["eval_recall"]["rev_loss"] > 0
