"""bench/binding_drills.py as a user runs it, at the test size: the base's tokenizer and copying warm-up (cached and
reused by a second arm), blocks made only of the corpus's `bind` documents, and the look-up gate's curve."""
import json, os, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT/"bench"))
import binding_drills as B
from mmkit import tasks
from mmkit.train import bind_blocks, cell_first, distinct_words

def run(tmp_path, *args):
    return subprocess.run([sys.executable, str(ROOT/"bench"/"binding_drills.py"), "--size", "test", "--scale", "test", *args],
                          capture_output=True, text=True, timeout=600, env=dict(os.environ, MMKIT_PRECISION="fp32"))

def opens_with(ds, tok, doc) -> bool:
    "Whether the first block starts with `doc`'s tokens (`<s>` included, as `lm_blocks` packs it)."
    ids = tok(doc)["input_ids"][:128]
    return ds[0]["input_ids"][:len(ids)] == ids

def test_cell_first_drills_name_each_cell_before_its_object(test_base):
    from transformers import AutoTokenizer
    from mmkit import world as W
    tok = AutoTokenizer.from_pretrained(test_base)
    ds = bind_blocks(tok, 8, 128, seed=0, only_cell_first=True)
    rng = __import__("random").Random(1)                                        # bind_blocks' own stream for seed 0
    docs = [d for d, _ in (tasks._corpus_doc(rng, "bind") for _ in range(200))]
    kept = [d for d in docs if cell_first(d)]
    assert 0 < len(kept) < len(docs) and opens_with(ds, tok, kept[0])   # the blocks open with the first kept drill
    rng = __import__("random").Random(0)
    for _ in range(50):
        sc = W.sample_split_scene(rng, heldout=False)
        for i in range(len(W.PHRASINGS)): assert cell_first(W.describe(sc, i)) == (i in B.CELL_FIRST)

def test_distinct_cells_share_no_row_or_column_word(test_base):
    from transformers import AutoTokenizer
    assert distinct_words([(0, 0), (1, 2), (2, 1)]) and not distinct_words([(0, 0), (0, 2)]) and not distinct_words([(0, 1), (2, 1)])
    tok = AutoTokenizer.from_pretrained(test_base)
    from mmkit.train import parse_description
    ds = bind_blocks(tok, 8, 128, seed=0, cells="distinct")
    rng = __import__("random").Random(1)
    docs = [tasks._corpus_doc(rng, "bind") for _ in range(200)]
    kept = [d for d, (canon,) in docs if distinct_words(parse_description(canon))]
    assert len(ds) == 8 and 0 < len(kept) < len(docs) and opens_with(ds, tok, kept[0])

def test_bind_blocks_hold_only_bind_documents_and_the_asked_count(test_base):
    from transformers import AutoTokenizer
    from mmkit.train import base_tokenizer
    tok = AutoTokenizer.from_pretrained(test_base)
    assert base_tokenizer(tasks.microcosm(scale="test"), "test", "test").get_vocab() == tok.get_vocab()   # the base's own tokenizer
    ds = bind_blocks(tok, 12, 128, seed=0)
    assert len(ds) == 12 and all(len(x) == 128 and x == y for x, y in zip(ds["input_ids"], ds["labels"]))
    text = tok.decode(sum(ds["input_ids"], []))
    assert "cell holds" in text or " is in the " in text or "Q: " in text        # the bind drills' restating lines

def test_binding_probe_trains_drills_and_measures_the_look_up_curve(tmp_path):
    out = tmp_path/"b.json"
    r = run(tmp_path, "--steps", "4", "--every", "2", "--items", "4", "--batch-size", "4", "--json", str(out))
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(out.read_text())
    assert [c["step"] for c in res["curve"]] == [2, 4]
    assert all(0 <= c["lookup"] <= 1 and 0 <= c["pick"] <= 1 for c in res["curve"])
    assert all(0 <= c["order_cell_first"] <= 1 and 0 <= c["order_object_first"] <= 1 and 0 < c["order_random_pick"] <= 0.5 for c in res["curve"])
    assert all(c["order_distinct"] is None or 0 <= c["order_distinct"] <= 1 for c in res["curve"]) and all("order_shared" in c for c in res["curve"])
    assert res["best"] == max(c["lookup"] for c in res["curve"])
    assert res["settings"]["precision"] == "fp32" and res["settings"]["copy_steps"] == 16
    assert "after the copying warm-up (16 steps)" in r.stdout and "repeat_ratio" in r.stdout
    from mmkit.config import cache_dir
    start, = (cache_dir()/"bench-binding").glob("copy-test-test-s0-16-fp32")
    made = (start/"model"/"config.json").stat().st_mtime_ns
    again = run(tmp_path, "--steps", "4", "--every", "1", "--items", "4", "--batch-size", "4", "--lr", "3e-3", "--distinct-steps", "2", "--max-objects", "3",
                "--json", str(out))
    assert again.returncode == 0, again.stderr[-3000:]
    assert (start/"model"/"config.json").stat().st_mtime_ns == made          # the second arm starts from the cached warm-up
    assert [c["step"] for c in json.loads(out.read_text())["curve"]] == [1, 2, 3, 4]     # steps count on across the two phases
    bad = run(tmp_path, "--steps", "4", "--warmup", "4")
    assert bad.returncode == 1
    assert "0 <= --warmup < --steps" in bad.stderr
    bad = run(tmp_path, "--steps", "4", "--cell-first-steps", "1", "--distinct-steps", "1")
    assert bad.returncode == 1 and "two curricula; give one" in bad.stderr

def test_shared_drills_keep_only_scenes_whose_cells_share_a_word(test_base):
    from transformers import AutoTokenizer
    from mmkit.config import MMKitError
    from mmkit.train import parse_description
    tok = AutoTokenizer.from_pretrained(test_base)
    ds = bind_blocks(tok, 8, 128, seed=0, cells="shared")
    rng = __import__("random").Random(1)                                        # bind_blocks' own stream for seed 0
    docs = [tasks._corpus_doc(rng, "bind") for _ in range(200)]
    kept = [d for d, (canon,) in docs if not distinct_words(parse_description(canon))]
    assert len(ds) == 8 and 0 < len(kept) < len(docs) and opens_with(ds, tok, kept[0])
    import pytest
    with pytest.raises(MMKitError, match="cells must be one of any, distinct, shared, got 'shard'"): bind_blocks(tok, 8, 128, cells="shard")

def test_binding_continue_bench_continues_a_base_and_splits_the_look_up(test_base, tmp_path):
    out, res_file = tmp_path/"cont", tmp_path/"c.json"
    r = subprocess.run([sys.executable, str(ROOT/"bench"/"binding_continue.py"), "--base", str(test_base), "--drills", "shared",
                        "--steps", "4", "--items", "4", "--out", str(out), "--json", str(res_file)],
                       capture_output=True, text=True, timeout=600, env=dict(os.environ, MMKIT_PRECISION="fp32"))
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(res_file.read_text())
    for when in ("before", "after"):
        s = res[when]["split"]
        assert 0 <= res[when]["gate"]["lookup_accuracy"] <= 1 and 0 < s["random_pick"] <= 0.5
        assert all(s[k] is None or 0 <= s[k] <= 1 for k in ("distinct", "shared"))
    from mmkit.config import read_json
    info = read_json(out/"base.json")
    assert info["binding_continue"]["trained_steps"] == res["trained_steps"] == 4 and info["binding_continue"]["drills"] == "shared"
    assert info["gates"]["stage0"]["lookup_accuracy"] == res["gates"]["lookup_accuracy"]
    assert "[binding] shared drills, 4 steps" in r.stdout
    bad = subprocess.run([sys.executable, str(ROOT/"bench"/"binding_continue.py"), "--base", str(tmp_path/"nowhere"), "--steps", "4"],
                         capture_output=True, text=True, timeout=600)
    assert bad.returncode == 1 and "base checkpoint folder does not exist" in bad.stderr
