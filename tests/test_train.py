"""Training stages on the real tiny LLaVA: losses fall, frozen parts stay bit-identical, resume, determinism, DDP."""
import json, re, os, shutil, signal, subprocess, sys, time
from pathlib import Path
import pytest, torch
from safetensors.torch import load_file
from mmkit.config import MMKitError
from mmkit.model import build_tiny_llava, train_tokenizer
from mmkit import tasks, data as mdata
from mmkit.train import train_stage0, train_stage1, train_stage2, lm_blocks, cxx_compiler
import mmkit.train as T

ROOT = Path(__file__).resolve().parent.parent

def _part(model, prefix):
    return {n: p.detach().cpu().clone() for n, p in model.named_parameters() if prefix in n}   # the Trainer may have moved it to a GPU

def _same(a, b): return all(torch.equal(a[k], b[k]) for k in a) and a.keys() == b.keys()

@pytest.fixture(scope="module")
def micro():
    return tasks.microcosm(scale="test")

@pytest.fixture(scope="module")
def fresh(micro):
    tok = train_tokenizer(list(micro["corpus"]) + [t["value"] for c in micro["pools"]["conversations"] for t in c], vocab_size=500)
    return tok

@torch.no_grad()
def _lm_loss(model, batch): return model(**{k: v.to(model.device) for k, v in batch.items()}).loss.item()   # after training: on the GPU if any

@pytest.fixture(scope="module")
def stage0(tmp_path_factory, micro, fresh):
    "A test-size model before and after a short stage 0 (shared by the stage-0 and stage-1 tests)."
    model, proc = build_tiny_llava(fresh, "test")
    x = torch.tensor(lm_blocks(micro["corpus"][:40], fresh, 64)["input_ids"][:8])
    before = dict(loss=_lm_loss(model, dict(input_ids=x, labels=x)), rest=_part(model, "vision_tower") | _part(model, "multi_modal_projector"))
    out = tmp_path_factory.mktemp("stage0")
    model = train_stage0(model, proc, micro["corpus"], out, block_size=64, epochs=1, max_steps=30, lr=1e-2, batch_size=16)
    return dict(model=model, proc=proc, x=x, before=before, out=out)

def test_stage0_lowers_loss_and_trains_only_the_language_model(stage0):
    model, x = stage0["model"], stage0["x"]
    assert _lm_loss(model, dict(input_ids=x, labels=x)) < stage0["before"]["loss"] - 0.5
    assert _same(stage0["before"]["rest"], _part(model, "vision_tower") | _part(model, "multi_modal_projector"))
    assert (stage0["out"]/"loss.jsonl").is_file() and not (stage0["out"]/"copy").exists()   # copy_steps=0: no warm-up

def test_stage0_copying_warm_up_runs_first_in_its_own_folder(tmp_path, fresh, micro):
    "`copy_steps=N`: N steps on `copy_blocks` before the corpus, in `out/copy`, with the copying gate measured after them."
    model, proc = build_tiny_llava(fresh, "test")
    train_stage0(model, proc, micro["corpus"][:40], tmp_path, block_size=64, max_steps=2, batch_size=8, copy_steps=10)
    log = [json.loads(l) for l in (tmp_path/"copy"/"loss.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 10 and json.loads((tmp_path/"loss.jsonl").read_text().splitlines()[-1])["step"] == 2
    gate = json.loads((tmp_path/"copy"/"gate.json").read_text())
    assert gate["repeat_first_loss"] > 0 and 0 < gate["repeat_ratio"]

def test_stage0_look_up_warm_up_follows_the_copying_one(tmp_path, fresh, micro):
    """`bind_steps=N`, `bind_shared_steps=M` (optional): N steps of look-up drills of scenes whose cells share no word, in
    `out/bind`, after the copying warm-up, then M of scenes whose cells share one, in `out/bind_shared`."""
    from mmkit.train import base_path, stage_args
    model, proc = build_tiny_llava(fresh, "test")
    train_stage0(model, proc, micro["corpus"][:40], tmp_path, block_size=64, max_steps=2, batch_size=8, copy_steps=4, bind_steps=3, bind_shared_steps=2)
    last = lambda p: json.loads(p.read_text().splitlines()[-1])["step"]
    folders = ("copy", "bind", "bind_shared", ".")
    assert [last(tmp_path/f/"loss.jsonl") for f in folders] == [4, 3, 2, 2]
    times = [(tmp_path/f/"loss.jsonl").stat().st_mtime_ns for f in folders]
    assert times == sorted(times)                                             # copying, one-word cells, shared words, the corpus
    for f in ("bind", "bind_shared"):
        gate = json.loads((tmp_path/f/"gate.json").read_text())
        assert set(gate) == {"lookup_accuracy", "lookup_accuracy_several", "lookup_pick_accuracy"} and all(0 <= v <= 1 for v in gate.values())
    assert not {"bind_steps", "bind_shared_steps"} & set(stage_args("stage0"))                  # off by default: the default key stays
    assert base_path("test", "test") != base_path("test", "test", stage0={"bind_steps": 3}) != base_path("test", "test", stage0={"bind_steps": 3, "bind_shared_steps": 2})

def test_stage1_lowers_loss_and_leaves_the_llm_bit_identical(tmp_path, micro, stage0):
    import copy
    model, proc = copy.deepcopy(stage0["model"]), stage0["proc"]
    caps = micro["captions"]
    enc = mdata.encode(caps.select(range(8)), proc, template="plain")
    batch = mdata.Collator(proc, return_counts=False)([enc[i] for i in range(8)])
    before, llm = _lm_loss(model, batch), _part(model, "language_model") | _part(model, "lm_head")
    model = train_stage1(model, proc, caps, tmp_path, epochs=2, lr=1e-2, batch_size=8)
    assert _lm_loss(model, batch) < before - 0.05
    assert _same(llm, _part(model, "language_model") | _part(model, "lm_head"))
    tokens = json.loads((tmp_path/"tokens.json").read_text())
    assert tokens["totals"]["image_tokens"] == 2 * len(caps) * 64

def test_cells_first_captions_state_the_same_objects_cell_by_cell(micro):
    "cells_first rewrites that share of canonical captions into cell sentences naming the same objects; other captions fail clearly."
    from datasets import Dataset
    caps = micro["captions"]
    allc = T.cells_first_captions(caps, 1.0)
    assert T.cells_first_captions(caps, 0.0)["conversations"] == caps["conversations"]
    for before, after in zip(caps["conversations"], allc["conversations"]):
        old, new = before[-1]["value"], after[-1]["value"]
        assert new.startswith("The ") and " cell holds a" in new and not T._OBJ.search(new)
        assert T.parse_description(new) == T.parse_description(old)          # the same objects, sizes included
        assert before[0] == after[0]
    half = T.cells_first_captions(caps, 0.5)["conversations"]
    assert 0 < sum(h != c for h, c in zip(half, caps["conversations"])) < len(caps)
    other = Dataset.from_dict(dict(conversations=[[{"from": "human", "value": "<image>"}, {"from": "gpt", "value": "A cat on a mat."}]]))
    with pytest.raises(MMKitError, match="cells_first"): T.cells_first_captions(other, 0.5)
    with pytest.raises(MMKitError, match="share must be in"): T.cells_first_captions(caps, 1.5)

def test_statements_first_captions_state_true_sentences_about_the_image_alone(micro):
    "statements_first turns that share of canonical captions into 3-6 true statements about the scene, no description first."
    import re
    from datasets import Dataset
    from mmkit import world as W
    caps = micro["captions"]
    assert T.statements_first_captions(caps, 0.0)["conversations"] == caps["conversations"]
    for before, after in zip(caps["conversations"], T.statements_first_captions(caps, 1.0)["conversations"], strict=True):
        sc = T._scene_of(before[-1]["value"].partition(". ")[0] + ".")
        new = after[-1]["value"]; said = re.findall(r"[^.]+\.", new)
        assert sc is not None and before[0] == after[0] and not T._OBJ.search(new) and 3 <= len(said) <= 6, new
        true, present = set(W.statements(sc)), {o.name for o in sc.objects}
        for t in (x.strip() for x in said):
            absent = re.fullmatch(r"There is no (\w+ \w+)\.", t)
            assert (absent[1] not in present) if absent else t in true, (t, new)
    other = Dataset.from_dict(dict(conversations=[[{"from": "human", "value": "<image>"}, {"from": "gpt", "value": "A cat on a mat."}]]))
    with pytest.raises(MMKitError, match="statements_first"): T.statements_first_captions(other, 0.5)
    assert T.stage_args("stage1", statements_first=0.2)["statements_first"] == 0.2 and "statements_first" not in T.STAGES["stage1"]


def test_text_before_image_puts_unsupervised_text_between_bos_and_the_image(micro, fresh):
    "text_before puts the start of a corpus text after <s> and before the image, unsupervised, in that share of captions."
    _, proc = build_tiny_llava(fresh, "test")
    enc = mdata.encode(micro["captions"].select(range(16)), proc, template="plain")
    img = proc.tokenizer.convert_tokens_to_ids("<image>")
    out = T.text_before_image(enc, micro["corpus"], proc.tokenizer, 1.0, seed=0)
    for a, b in zip(enc, out):
        k = b["input_ids"].index(img) - 1                          # the tokens put in
        assert 4 <= k <= 48 and b["input_ids"][0] == a["input_ids"][0] == proc.tokenizer.bos_token_id
        assert b["input_ids"][k + 1:] == a["input_ids"][1:] and b["labels"][k + 1:] == a["labels"][1:]
        assert b["labels"][1:k + 1] == [-100] * k and b["length"] == len(b["input_ids"]) == a["length"] + k
        assert b["n_text_tokens"] == a["n_text_tokens"] + k
    assert T.text_before_image(enc, micro["corpus"], proc.tokenizer, 0.0)["input_ids"] == enc["input_ids"]
    half = T.text_before_image(enc, micro["corpus"], proc.tokenizer, 0.5)["input_ids"]
    assert 0 < sum(h != e for h, e in zip(half, enc["input_ids"])) < len(enc)
    with pytest.raises(MMKitError, match="share must be in"): T.text_before_image(enc, micro["corpus"], proc.tokenizer, 1.5)
    assert T.stage_args("stage1", text_before=0.5)["text_before"] == 0.5 and "text_before" not in T.STAGES["stage1"]
    with pytest.raises(MMKitError, match="unknown setting"): T.stage_args("stage2", text_before=0.5)
    # a value of the wrong type fails here, not after stage 0 in `int('abc' * n)` or a scheduler lookup
    with pytest.raises(MMKitError, match=r"stage1: setting 'replay' must be a number \(like its default 0.0\), got 'abc'"):
        T.stage_args("stage1", replay="abc")
    with pytest.raises(MMKitError, match="setting 'text_before' must be a number"): T.stage_args("stage1", text_before="half")
    with pytest.raises(MMKitError, match="setting 'scheduler' must be str"): T.stage_args("stage0", scheduler=3)
    assert T.stage_args("stage0", epochs=2.5, lr=1)["epochs"] == 2.5 and T.stage_args("stage0", scheduler="cosine")["scheduler"] == "cosine"

def test_caption_scores_read_cells_first_captions():
    from mmkit import world as W
    sc = W.Scene((W.Obj("circle", "orange", "large", 0, 0), W.Obj("square", "blue", "small", 2, 2)))
    cap = "The bottom right cell holds a blue square. The blue square is small. The top left cell holds an orange circle."
    s = T.caption_scores([sc], [cap])
    assert s["shape"] == 1.0 and s["color"] == 1.0 and s["exact"] == 0.5 and s["count"] == 1.0   # the circle's size is not stated

def test_training_forwards_keep_no_kv_cache(tmp_path, micro, fresh):
    "transformers fills `use_cache` from the config (True); MMTrainer's loss is the same, computed without building one."
    from transformers import TrainingArguments
    from mmkit.train import MMTrainer
    model, proc = build_tiny_llava(fresh, "test")
    enc = mdata.encode(micro["captions"].select(range(4)), proc, template="plain")
    batch = mdata.Collator(proc, return_counts=False)([enc[i] for i in range(4)])
    tr = MMTrainer(model=model, args=TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none"))
    model.train()
    plain = model(**batch)
    loss, out = tr.compute_loss(model, dict(batch), return_outputs=True)
    assert plain.cache is not None and out.cache is None
    assert torch.equal(loss.detach(), plain.loss.detach())

def test_stage2_lowers_loss_and_leaves_the_vision_tower_bit_identical(tmp_path, test_base):
    res = train_stage2("mlan", tmp_path/"run", base=test_base, budget=48, scale="test", size="test", epochs=2, lr=5e-3, batch_size=8)
    base = load_file(Path(test_base)/"model.safetensors")
    tuned = load_file(Path(res["checkpoint"])/"model.safetensors")
    vis = [k for k in base if "vision_tower" in k]
    assert vis and all(torch.equal(base[k], tuned[k]) for k in vis)
    assert any(not torch.equal(base[k], tuned[k]) for k in base if "language_model" in k)
    losses = [json.loads(l)["loss"] for l in (tmp_path/"run"/"loss.jsonl").read_text().splitlines() if '"loss"' in l]
    assert losses[-1] < losses[0]
    tok = json.loads((tmp_path/"run"/"tokens.json").read_text())
    assert res["replay_examples"] > 0 and tok["by_source"]["language"]["replay"]["examples"] == 2 * res["replay_examples"]   # stage-0 text mixed in
    assert tok["totals"]["examples"] == 2 * (48 + res["replay_examples"]) and set(tok["by_modality"]) == {"language", "vision"}
    assert not (tmp_path/"run"/"trainer").exists()   # Trainer checkpoints are removed once the run is complete

def test_stage2_on_a_llava15_shaped_base_keeps_its_image_examples(tmp_path):
    """A base with LLaVA-1.5's processor (336 px, patch 14: 576 tokens per image) trains on the vision examples too.

    With a 512-token limit every vision example was dropped (a warning, then a language-only run); a limit that
    still drops them all is an error naming max_length, before any step."""
    from mmkit.model import make_llava15_fixture
    fx = make_llava15_fixture(tmp_path/"llava15")
    res = train_stage2("mlan_50", tmp_path/"run", base=fx, budget=16, scale="test", max_steps=2, batch_size=4,
                       lora=dict(r=4, alpha=8), gradient_checkpointing=True)   # the one-GPU 7B set-up, in miniature
    tok = json.loads((tmp_path/"run"/"tokens.json").read_text())
    n_vis = tok["by_modality"]["vision"]["examples"]
    assert n_vis > 0 and tok["totals"]["image_tokens"] == 576 * n_vis and tok["dropped"]["examples"] == 0
    assert res["examples"] == 16
    with pytest.raises(MMKitError, match="every vision example is longer than max_length=512"), \
            pytest.warns(UserWarning, match="longer than max_length=512"):
        train_stage2("mlan_50", tmp_path/"short", base=fx, budget=16, scale="test", max_steps=1, max_length=512)
    assert not (tmp_path/"short"/"trainer").exists()

def test_same_seed_same_losses(tmp_path, test_base):
    logs = []
    for name in "ab":
        train_stage2("mlan_50", tmp_path/name, base=test_base, budget=32, scale="test", size="test", epochs=1, batch_size=4, logging_steps=1)
        logs.append([json.loads(l).get("loss") for l in (tmp_path/name/"loss.jsonl").read_text().splitlines()])
    assert logs[0] == logs[1] and len([l for l in logs[0] if l is not None]) >= 4

def test_stage2_callbacks_see_every_step_and_count_into_the_given_ledger(tmp_path, test_base):
    "`callbacks` reach the Trainer; a `ledger` passed in is the one the run counts into (and writes as tokens.json)."
    from transformers import TrainerCallback
    ledger = mdata.TokenLedger()
    class Watch(TrainerCallback):
        def __init__(self): self.seen = []
        def on_step_end(self, args, state, control, **kw): self.seen.append((state.global_step, ledger.totals()["examples"]))
    watch = Watch()
    res = train_stage2("mlan_50", tmp_path/"run", base=test_base, budget=16, scale="test", size="test", epochs=1,
                       batch_size=4, ledger=ledger, callbacks=[watch])
    steps = res["trainer"].state.global_step
    assert steps >= 4 and [s for s, _ in watch.seen] == list(range(1, steps + 1))
    counts = [n for _, n in watch.seen]
    assert counts == sorted(counts) and counts[0] > 0 and counts[-1] == res["examples"] == 16 + res["replay_examples"]   # counted as they trained
    assert json.loads((tmp_path/"run"/"tokens.json").read_text())["totals"] == ledger.totals() == res["tokens"]
    with pytest.raises(MMKitError, match="`ledger` must be empty"):
        train_stage2("mlan_50", tmp_path/"again", base=test_base, budget=16, scale="test", size="test", ledger=ledger)
    assert not (tmp_path/"again").exists()

needs_cxx = pytest.mark.skipif(cxx_compiler() is None, reason="compile=True needs a C++ compiler (Debian: apt-get install g++)")

@needs_cxx
def test_compiled_stage2_tracks_eager(tmp_path, test_base):
    """`compile=True`: the Trainer's model has compiled regions; losses close to (not equal to) eager's; checkpoint as usual.

    Determinism by seed is checked across processes, where it broke, by the compiled case of the resume test: within
    one process two compiled runs agreed even without deterministic algorithms."""
    from accelerate.utils import has_compiled_regions
    logs, res = {}, {}
    for name, comp in [("eager", False), ("a", True)]:
        res[name] = train_stage2("mlan_50", tmp_path/name, base=test_base, budget=32, scale="test", size="test", epochs=1,
                                 batch_size=4, logging_steps=1, compile=comp)
        logs[name] = [json.loads(l)["loss"] for l in (tmp_path/name/"loss.jsonl").read_text().splitlines() if '"loss"' in l]
    assert has_compiled_regions(res["a"]["trainer"].model_wrapped) and not has_compiled_regions(res["eager"]["trainer"].model_wrapped)
    assert res["a"]["compile"] and not res["eager"]["compile"]
    assert len(logs["a"]) == len(logs["eager"]) == res["a"]["trainer"].state.global_step
    assert all(abs(x - y) < 1e-3 * abs(y) for x, y in zip(logs["a"], logs["eager"]))   # measured: 1.4e-4 at most
    e, c = (load_file(Path(res[k]["checkpoint"])/"model.safetensors") for k in ("eager", "a"))
    assert e.keys() == c.keys()                                    # no `_orig_mod.` in the saved names
    base = load_file(Path(test_base)/"model.safetensors")
    assert all(torch.equal(base[k], c[k]) for k in base if "vision_tower" in k)

def test_compile_without_a_cxx_compiler_fails_before_training(tmp_path, test_base, monkeypatch):
    monkeypatch.setenv("CXX", str(tmp_path/"no-such-c++"))
    with pytest.raises(MMKitError, match="no C\\+\\+ compiler was found"):
        train_stage2("mlan_50", tmp_path/"run", base=test_base, budget=8, scale="test", size="test", max_steps=1, compile=True)
    assert not (tmp_path/"run"/"trainer").exists() and not (tmp_path/"run"/"loss.jsonl").exists()

_RUN = """
import sys
from mmkit.train import train_stage2
train_stage2("mlan_50", sys.argv[1], base=sys.argv[2], budget=64, scale="test", size="test", epochs=2, batch_size=2,
             save_steps=4, logging_steps=1, seed=3, compile=sys.argv[3] == "compiled")
"""

@pytest.mark.parametrize("mode", ["eager", pytest.param("compiled", marks=needs_cxx)])
def test_killed_run_resumes_to_the_same_weights(tmp_path, test_base, mode):
    env = dict(os.environ)
    ref, cut = tmp_path/"ref", tmp_path/"cut"
    subprocess.run([sys.executable, "-c", _RUN, str(ref), str(test_base), mode], check=True, env=env, capture_output=True)
    p = subprocess.Popen([sys.executable, "-c", _RUN, str(cut), str(test_base), mode], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (cut/"trainer"/"checkpoint-12").is_dir() and p.poll() is None and time.time() < deadline: time.sleep(0.01)
    p.send_signal(signal.SIGKILL); p.wait()
    assert p.returncode == -signal.SIGKILL, "the run finished before it could be interrupted"
    assert not (cut/"checkpoint").exists()
    r = subprocess.run([sys.executable, "-c", _RUN, str(cut), str(test_base), mode], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "resuming from" in r.stdout
    a, b = load_file(ref/"checkpoint"/"model.safetensors"), load_file(cut/"checkpoint"/"model.safetensors")
    assert a.keys() == b.keys()
    diff = max((a[k].float() - b[k].float()).abs().max().item() for k in a)
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a), f"resumed run ends {diff:.2e} away from the unbroken one"
    ta, tb = (json.loads((d/"tokens.json").read_text()) for d in (ref, cut))
    assert ta == tb
    la = [json.loads(l)["step"] for l in (ref/"loss.jsonl").read_text().splitlines()]
    lb = [json.loads(l)["step"] for l in (cut/"loss.jsonl").read_text().splitlines()]
    assert la == lb

LAUNCHERS = {
    "torchrun": [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533"],
    "accelerate": [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(ROOT/"configs"/"cpu_2proc.yaml"),
                   "--main_process_port", "29534"],
}

@pytest.mark.slow
@pytest.mark.parametrize("launcher", list(LAUNCHERS))
def test_two_process_stage2_stays_in_sync(tmp_path, test_base, launcher):
    env = dict(os.environ, ACCELERATE_USE_CPU="1", OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")   # a CPU group, also on a GPU machine
    r = subprocess.run(LAUNCHERS[launcher] + [str(ROOT/"tests"/"ddp_stage2.py"), str(tmp_path/"ddp"), str(test_base)],
                       env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    rep = json.loads((tmp_path/"ddp"/"ddp_report.json").read_text())
    assert [x["world_size"] for x in rep] == [2, 2] and [x["rank"] for x in rep] == [0, 1]
    assert any("language" in x["modalities"] for x in rep) and any("vision" in x["modalities"] for x in rep)
    assert rep[0]["checksum"] == rep[1]["checksum"] and rep[0]["first"] == rep[1]["first"]
    tok = json.loads((tmp_path/"ddp"/"tokens.json").read_text())
    assert tok["totals"]["examples"] >= 48  # both ranks' batches counted (accelerate may repeat a batch to even out)

def test_bad_input_fails_before_training(tmp_path, test_base):
    with pytest.raises(MMKitError, match="unknown recipe|Unknown recipe|recipe"):
        train_stage2("no_such_recipe", tmp_path/"r1", base=test_base, scale="test")
    with pytest.raises(MMKitError, match="zero|budget|empty"):
        train_stage2("lang_only", tmp_path/"r2", base=test_base, budget=0, scale="test")
    (tmp_path/"file").write_text("x")
    with pytest.raises(MMKitError, match="not writable"):
        train_stage2("lang_only", tmp_path/"file"/"run", base=test_base, budget=8, scale="test")
    broken = tmp_path/"broken_base"; shutil.copytree(test_base, broken); (broken/"tokenizer.json").unlink()
    with pytest.raises(MMKitError, match="missing tokenizer.json"):
        train_stage2("lang_only", tmp_path/"r3", base=broken, budget=8, scale="test")
    for d in ("r1", "r2", "r3"): assert not (tmp_path/d/"trainer").exists()

def test_a_cached_base_of_another_shape_is_rebuilt(tmp_path, monkeypatch, capsys):
    """The base's folder is named by its size and settings; when `SIZES[size]` changes shape, the cached base (and its
    stage-0 work) is not reused as if it were the new one: it is rebuilt, with a notice."""
    from mmkit.model import SIZES
    from mmkit.train import base_shape, build_base
    monkeypatch.setenv("MMKIT_CACHE_DIR", str(tmp_path/"cache"))
    first = build_base(size="test", scale="test")
    assert base_shape(first) == SIZES["test"] and build_base(size="test", scale="test") == first
    assert "rebuilding" not in capsys.readouterr().out
    monkeypatch.setitem(SIZES, "test", {**SIZES["test"], "text": {**SIZES["test"]["text"], "hidden_size": 48, "intermediate_size": 96}})
    again = build_base(size="test", scale="test")
    assert again == first and base_shape(again)["text"]["hidden_size"] == 48 == load_json_hidden(again)
    assert "was built with another shape" in capsys.readouterr().out

def load_json_hidden(path): return json.loads((Path(path)/"config.json").read_text())["text_config"]["hidden_size"]

def test_stage_keys_cover_the_data_each_step_trains_on():
    "A changed instruction pool retrains the tokenizer (and all that follows); a changed stage-1 setting only stage 1."
    from mmkit.train import stage_keys
    m = tasks.microcosm(scale="test")
    keys = stage_keys(m, "test", "test", 0, {}, {})
    assert keys == stage_keys(dict(m), "test", "test", 0, {}, {})
    first = m["pools"][0]["conversations"]
    pools = m["pools"].map(lambda r, i: {"conversations": [{**first[0], "value": first[0]["value"] + " Please."}, first[1]]}
                           if i == 0 else {}, with_indices=True)
    changed = stage_keys({**m, "pools": pools}, "test", "test", 0, {}, {})
    assert all(changed[k] != keys[k] for k in keys)           # tokenizer texts changed: every later step is rebuilt
    s1 = stage_keys(m, "test", "test", 0, {}, {"lr": 1e-3})
    assert [k for k in keys if s1[k] != keys[k]] == ["stage1"]

def test_base_keys_name_the_arithmetic(monkeypatch):
    "An fp32 build and a bf16 build of the same settings get different folders at every training step; bf16 keys are unchanged."
    from mmkit.train import stage_keys, base_path, base_key, _overrides
    m = tasks.microcosm(scale="test")
    got = {}
    for p in ("fp32", "auto"):
        monkeypatch.setenv("MMKIT_PRECISION", p)
        got[p] = (T.bf16_available(), stage_keys(m, "test", "test", 0, {}, {}), base_path("test", "test"),
                  base_key("test", "test", 0, _overrides(size="test")))
    assert got["fp32"][0] is False and got["fp32"][3]["arith"] == "fp32"
    assert got["fp32"][1]["tokenizer"] == got["auto"][1]["tokenizer"]       # the tokenizer trains no weights
    if got["auto"][0]:                                                       # bf16 autocast runs here (emulated or not)
        assert "arith" not in got["auto"][3] and got["fp32"][2] != got["auto"][2]
        assert all(got["fp32"][1][k] != got["auto"][1][k] for k in ("stage0", "vision", "stage1"))
    else: assert got["fp32"][1:] == got["auto"][1:]

def test_cli_base_takes_stage_settings(test_base, capsys):
    "`mmkit base --stage0 KEY=VALUE`: another base folder with those settings in its key; a bad setting fails first."
    from mmkit.cli import main
    from mmkit.config import read_json
    assert main(["base", "--size", "test", "--scale", "test", "--stage0", "epochs=1", "lr=0.002"]) == 0
    out = capsys.readouterr().out
    path = Path(out.split("base: ", 1)[1].splitlines()[0])
    assert path != Path(test_base) and (path/"base.json").is_file() and "knowledge" in out
    assert "copying ratio" in out and "look-up" in out and "naming any object of the scene gets" in out
    assert read_json(path/"base.json")["key"]["overrides"]["stage0"] == {"copy_steps": T.COPY_STEPS["test"], "epochs": 1, "lr": 0.002}
    assert "after the copying warm-up" in out and "look-up warm-up" not in out
    assert main(["base", "--size", "test", "--scale", "test", "--stage0", "epochs=1", "bind_shared_steps=2"]) == 0   # a warm-up phase alone
    out = capsys.readouterr().out
    assert re.search(r"look-up \d+\.\d% \(\d+\.\d% after the shared-word look-up warm-up\) ", out) and "after the look-up warm-up" not in out
    assert main(["base", "--size", "test", "--scale", "test", "--stage0", "epochz=1"]) == 2
    assert "stage0: unknown setting 'epochz'" in capsys.readouterr().err
    assert main(["base", "--size", "test", "--scale", "test", "--stage1", "epochs"]) == 2
    assert "--stage1: expected KEY=VALUE, got 'epochs'" in capsys.readouterr().err
    assert main(["base", "--size", "test", "--scale", "test", "--stage1", "replay=abc"]) == 2
    assert "stage1: setting 'replay' must be a number" in capsys.readouterr().err


def test_base_gates_are_measured_recorded_and_checked_before_stage2(tmp_path, test_base, capsys):
    "base.json holds the copying / look-up / knowledge / caption gates; stage 2 says when the base misses them and records it."
    info = json.loads((test_base/"base.json").read_text())
    assert info["precision"] == T.precision_used() and info["precision"] in ("bf16", "bf16 (emulated)", "fp32")
    g = info["gates"]
    assert {"repeat_ratio", "lookup_accuracy", "knowledge_accuracy"} <= set(g["stage0"]) and "shape" in g["stage1"]
    g1 = g["stage1"]                                     # one cell read from the image, directly and after the model's own caption
    assert 0 <= g1["image_lookup_accuracy"] <= 1 and 0 <= g1["image_lookup_after_caption"] <= 1 and 0.25 <= g1["image_lookup_any_object"] <= 1
    assert 0 <= g1["image_lookup_in_template"] <= 1                # the same cells after the chat template's ASSISTANT:
    prompt = T.IMAGE_LAYOUTS["after ASSISTANT:"]("The top left cell holds")
    assert prompt.startswith(T.TEMPLATES["v1"].system) and prompt.endswith("ASSISTANT: The top left cell holds") and "<image>" in prompt
    assert g1["image_lookup_examples"][0]["prompt"].endswith("cell holds")
    s0 = g["stage0"]                                     # a miss's two readings: scenes that need a look-up, a position habit
    assert 0 <= s0["lookup_accuracy_several"] <= 1 and (s0["lookup_first_named"] is None or 0 <= s0["lookup_first_named"] <= 1)
    assert 0.25 <= s0["lookup_any_object"] <= 1                # 1-4 objects per scene: naming any of them is right 1/n of the time
    assert s0["lookup_other_object"] is None or 0 <= s0["lookup_other_object"] <= 1
    from mmkit.model import load_model                    # the same items after other context (`before`)
    m, p = load_model(test_base)
    plain, after = T.lookup_gate(m, p, n=8), T.lookup_gate(m, p, n=8, before="USER: ")
    assert [e["prompt"] for e in after["lookup_examples"]] == ["USER: " + e["prompt"] for e in plain["lookup_examples"]]
    cw = s0["after_copy_warmup"]                          # stage 0 opened with its copying warm-up, measured on its own
    assert cw["repeat_first_loss"] > 0 and abs(cw["repeat_ratio"] - cw["repeat_second_loss"] / cw["repeat_first_loss"]) < 1e-3
    assert info["gate_failures"] == T.gate_failures(g)
    assert 0 <= s0["presence_accuracy"] <= 1 and 0 <= s0["presence_yes_share"] <= 1 and 0 <= s0["presence_after_mention"] <= 1
    pg = T.presence_gate(m, p, n=10)                      # half the items about an object the scene has: always `yes` scores 50 %
    assert pg["presence_items"] == 10 and pg["presence_accuracy"] in [k / 10 for k in range(11)]
    assert T.gate_failures({"stage0": dict(repeat_ratio=0.1, lookup_accuracy=0.95, knowledge_accuracy=0.99, lookup_pick_accuracy=0.95,
                                           presence_accuracy=0.8),
                            "stage1": dict(shape=0.95, image_lookup_accuracy=0.95)}) == []
    assert T.gate_failures({"stage0": dict(repeat_ratio=0.5)})[0].startswith("copying: stage0.repeat_ratio = 0.5")
    res = T.train_stage2("mlan", tmp_path/"r", size="test", scale="test", budget=16, epochs=1)
    assert res["base_gate_failures"] == info["gate_failures"]
    if info["gate_failures"]: assert "misses its gates" in capsys.readouterr().out
    assert res["replay_examples"] == round(0.15 * 16 / 0.85) and res["tokens"]["examples"] == 16 + res["replay_examples"]
    log = [json.loads(l) for l in (tmp_path/"r"/"loss.jsonl").read_text().splitlines()]
    assert any("answer_loss" in l and "lead_loss" in l for l in log)           # the answer's content, apart from its fixed lead


def test_a_base_built_before_the_presence_gate_gets_it_measured_on_reuse(test_base, capsys):
    path = test_base/"base.json"; info = json.loads(path.read_text())
    old = {k: info["gates"]["stage0"].pop(k) for k in list(info["gates"]["stage0"]) if k.startswith("presence_")}
    assert old and "presence_accuracy" in old
    path.write_text(json.dumps(info))
    assert T.build_base(size="test", scale="test") == test_base
    again = json.loads(path.read_text())
    assert {k: again["gates"]["stage0"][k] for k in old} == old          # the same items, the same greedy answers
    assert again["gate_failures"] == T.gate_failures(again["gates"]) and "measured the presence gate" in capsys.readouterr().out


def test_continue_base_trains_on_the_probe_blocks_and_records_the_probe(tmp_path, test_base):
    from mmkit.model import load_model
    from mmkit.config import MMKitError
    texts = [f"Q: any red circle? A: {'yes' if i % 2 else 'no'}." for i in range(400)]
    seen = []
    rec = T.continue_base(test_base, tmp_path/"cont", lambda tok, n: T.lm_blocks(texts, tok, 32), steps=3, batch_size=4, block_size=32,
                          name="probe", measure=lambda m, p: seen.append(m.training) or len(seen), settings=dict(kind="test"),
                          replay_texts=texts[:50])
    assert (rec["before"], rec["after"], rec["steps"], rec["kind"]) == (1, 2, 3, "test") and "presence_accuracy" in rec["gates"]
    assert rec["replay_texts"] == 50 and json.loads((tmp_path/"cont"/T.REPLAY_TEXTS).read_text()) == texts[:50]
    info = json.loads((tmp_path/"cont"/"base.json").read_text())
    assert info["probe"]["from_base"] == test_base.name and info["gates"]["stage0"] == rec["gates"]
    assert info["gates"]["stage1"] == json.loads((test_base/"base.json").read_text())["gates"]["stage1"]
    (m0, _), (m1, _) = load_model(test_base), load_model(tmp_path/"cont")
    assert not _same(_part(m0, "language_model"), _part(m1, "language_model"))          # the language model moved
    assert _same(_part(m0, "vision_tower"), _part(m1, "vision_tower"))                  # the rest did not
    res = T.train_stage2("lang_only", tmp_path/"run", base=tmp_path/"cont", size="test", scale="test", budget=16, epochs=1)
    own = [i for i in res["ids"] if i.startswith("replay-own-")]                         # stage 2 replays the probe's texts too
    assert res["replay_examples"] == 3 and len(own) == 1 and sum(i.startswith("replay-") for i in res["ids"]) == 3
    from transformers import AutoTokenizer                     # a continuation longer than one pass of the corpus trains every step asked
    corpus = len(T.lm_blocks(tasks.microcosm(scale="test")["corpus"], AutoTokenizer.from_pretrained(test_base), 128))
    steps = corpus // 16 + 2                                   # 90 % of 32-block steps: more corpus blocks than one pass holds
    assert steps * 32 - int(steps * 32 * 0.1) > corpus
    long = T.continue_base(test_base, tmp_path/"long", lambda tok, n: T.lm_blocks(texts * 4, tok, 128), steps=steps, corpus_share=0.9, name="probe")
    assert (long["steps"], long["trained_steps"]) == (steps, steps)
    with pytest.raises(MMKitError, match="blocks of 32 tokens, 6 needed"):
        T.continue_base(test_base, tmp_path/"c2", lambda tok, n: T.lm_blocks(texts[:8], tok, 32), steps=3, batch_size=4, block_size=32, name="probe")
    with pytest.raises(MMKitError, match="positive int"):
        T.continue_base(test_base, tmp_path/"c3", lambda tok, n: None, steps=0, name="probe")


def test_answer_masks_split_lead_and_content():
    from mmkit.model import sample_tokenizer, encode_conversation
    tok = sample_tokenizer()
    lead, tail = T.answer_lead_ids(tok)
    e = encode_conversation([{"from": "human", "value": "Where? Answer briefly."}, {"from": "gpt", "value": 'The best answer is "top left".'}],
                            tok, n_image_tokens=0)
    labels = torch.tensor([e["labels"]])[:, 1:]
    lm, cm = T.answer_masks(labels, lead, tail)
    assert tok.decode(labels[0][lm[0]]).strip().startswith("The best answer is")
    assert tok.decode(labels[0][cm[0]]).strip() == "top left"
    other = torch.tensor([[-100, 5, 6, 7, -100]])                               # a replayed text block: in neither mask
    assert not any(m.any() for m in T.answer_masks(other, lead, tail))

def test_bf16_follows_the_precision_setting(monkeypatch):
    "auto: bf16 wherever oneDNN runs it (emulated on AVX-512 alone); native: the CPU's own instructions; fp32: never."
    bf16_available, bf16_native = T.bf16_available, T.bf16_native
    monkeypatch.setenv("MMKIT_PRECISION", "auto")
    auto = bf16_available()
    if torch.cpu._is_avx512_supported() and not torch.cuda.is_available(): assert auto
    monkeypatch.setenv("MMKIT_PRECISION", "native")
    assert bf16_available() == bf16_native() and (not bf16_native() or auto)
    if not torch.cuda.is_available():
        assert bf16_native() == (torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    assert T.precision_used() == ("bf16" if bf16_native() else "fp32")
    monkeypatch.setenv("MMKIT_PRECISION", "fp32")
    assert bf16_available() is False and T.precision_used() == "fp32"
    monkeypatch.setenv("MMKIT_PRECISION", "fp16")
    with pytest.raises(MMKitError, match="precision must be one of auto, native, fp32"): bf16_available()
