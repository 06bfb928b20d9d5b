"""mmkit.data: loaders + validation on real-layout fixtures, recipes, encoding counts, ledger == estimate, batching."""
import json, time, warnings
from collections import Counter

import numpy as np
import pyarrow as pa, pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

from mmkit.data import (DataError, RECIPES, TokenLedger, Collator, ModalityLengthGroupedSampler, describe_recipe, encode,
                        estimate_tokens, get_recipe, load_flan, load_llava_json, load_mlan, make_dataloader,
                        microcosm_pools, resolve_recipe)
from mmkit.model import make_processor, sample_tokenizer, train_tokenizer, build_tiny_llava

SYSTEM = ("A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, "
          "detailed, and polite answers to the user's questions. ")
IMAGE_SIZE, PATCH = 64, 8


@pytest.fixture(scope="module")
def processor():
    return make_processor(sample_tokenizer(), image_size=IMAGE_SIZE, patch_size=PATCH)


@pytest.fixture(scope="module")
def test_pools():
    return microcosm_pools(seed=0, scale="test")


def _png(path, size, color):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)


def _turns(*pairs):
    return [t for q, a in pairs for t in ({"from": "human", "value": q}, {"from": "gpt", "value": a})]


RECORDS = [
    {"id": "000000033471", "image": "coco/train2017/000000033471.png",
     "conversations": _turns(("<image>\nWhat is the color of the circle?", "Red."))},
    {"id": "multi_img", "image": "gqa/images/2354786.png",   # <image> after the question, three turns
     "conversations": _turns(("Which shape is in the top left?\n<image>", "A triangle."),
                             ("And how many corners does it have?", "3"), ("Is it large?", "No, it is small."))},
    {"id": "text_only", "conversations": _turns(("What is 12 + 7?", "19"))},
    {"id": "text_multi", "conversations": _turns(("A zorb is a red circle. What color is a zorb?", "red"),
                                                 ("How many corners does a square have?", "4"))},
]


@pytest.fixture
def llava_dir(tmp_path):
    _png(tmp_path/"images/coco/train2017/000000033471.png", (90, 60), (220, 20, 20))
    _png(tmp_path/"images/gqa/images/2354786.png", (40, 120), (20, 220, 20))
    (tmp_path/"llava_v1_5_mix665k.json").write_text(json.dumps(RECORDS, indent=1))
    return tmp_path


def _write(tmp_path, name, records):
    p = tmp_path/name
    p.write_text(json.dumps(records))
    return p


# ---------------------------------------------------------------- loaders and per-sample counts

def test_llava_fixture_token_counts_match_independent_count(llava_dir, processor):
    ds = load_llava_json(llava_dir/"llava_v1_5_mix665k.json", image_root=llava_dir/"images")
    assert ds.column_names == ["id", "image", "conversations", "task", "modality", "source"]
    assert ds["modality"] == ["vision", "vision", "language", "language"]
    assert ds["task"] == ["coco", "gqa", "text", "text"] and set(ds["source"]) == {"llava_v1_5_mix665k"}
    assert ds[2]["image"] is None and ds[0]["image"].size == (90, 60)

    enc = encode(ds, processor)
    tok = processor.tokenizer
    image_tokens = (IMAGE_SIZE // PATCH) ** 2          # CLS dropped ("default" feature select strategy)
    for rec, row in zip(RECORDS, enc):
        # independent count: render Vicuna v1 by hand, tokenize the whole string once
        turns = [(c["value"], d["value"]) for c, d in zip(rec["conversations"][::2], rec["conversations"][1::2])]
        text = SYSTEM
        for i, (q, a) in enumerate(turns):
            if i == 0 and "<image>" in q: q = "<image>\n" + q.replace("<image>", "").strip()
            text += f"USER: {q} ASSISTANT: {a}</s>"
        ids = tok(text)["input_ids"]                       # <s> prepended; <image> is one special token
        has_image = "image" in rec
        assert row["id"] == rec["id"] and row["has_image"] == has_image
        assert row["n_image_tokens"] == image_tokens * has_image
        assert row["n_text_tokens"] == len(ids) - has_image
        assert row["length"] == len(ids) - has_image + image_tokens * has_image == len(row["input_ids"])
        sup = sum(len(tok(f" {a}</s>", add_special_tokens=False)["input_ids"]) for _, a in turns)
        assert row["n_supervised"] == sup

    batch = Collator(processor)(list(enc))
    assert batch["pixel_values"].shape == (2, 3, IMAGE_SIZE, IMAGE_SIZE)
    L = max(enc["length"])
    assert batch["input_ids"].shape == batch["labels"].shape == batch["attention_mask"].shape == (4, L)
    for i, row in enumerate(enc):
        n = row["length"]
        assert batch["attention_mask"][i].sum() == n
        assert (batch["labels"][i, n:] == -100).all() and (batch["input_ids"][i, n:] == tok.pad_token_id).all()
        assert batch["input_ids"][i, :n].tolist() == row["input_ids"]
    c = batch["token_counts"]["by"]
    assert c["vision"]["llava_v1_5_mix665k"]["image_tokens"] == 2 * image_tokens
    assert c["language"]["llava_v1_5_mix665k"]["padding_tokens"] == sum(L - n for n in enc["length"][2:])


def test_image_root_from_settings(llava_dir, monkeypatch):
    monkeypatch.setenv("MMKIT_LLAVA_IMAGE_ROOT", str(llava_dir/"images"))
    ds = load_llava_json(llava_dir/"llava_v1_5_mix665k.json")
    assert ds[1]["image"].size == (40, 120)


def test_mlan_release_files(llava_dir, monkeypatch):
    lang = [r for r in RECORDS if "image" not in r]
    p = _write(llava_dir, "mlan_language.json", lang)
    ds = load_mlan(p)
    assert set(ds["modality"]) == {"language"} and set(ds["source"]) == {"mlan"}
    monkeypatch.setenv("MMKIT_MLAN_JSON", str(llava_dir/"llava_v1_5_mix665k.json"))
    mixed = load_mlan(image_root=llava_dir/"images")
    assert Counter(mixed["modality"]) == {"vision": 2, "language": 2}


def test_flan_loaders(tmp_path):
    rows = [{"inputs": "Is fire hot? Answer yes or no.", "targets": "yes", "task_name": "boolq_template_1"},
            {"inputs": "Premise: ... Does it follow?", "targets": "no"}]
    (tmp_path/"flan.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    (tmp_path/"flan.json").write_text(json.dumps(rows))
    pq.write_table(pa.table({"instruction": ["Give the sum.", "Name a color."], "input": ["2 and 3", ""],
                             "output": ["5", "red"]}), tmp_path/"alpaca.parquet")
    for name in ("flan.jsonl", "flan.json"):
        ds = load_flan(tmp_path/name)
        assert len(ds) == 2 and set(ds["modality"]) == {"language"} and ds[0]["image"] is None
        assert ds["task"] == ["boolq_template_1", "flan"] and ds[0]["conversations"][1] == {"from": "gpt", "value": "yes"}
    al = load_flan(tmp_path/"alpaca.parquet", source="alpaca")
    assert [c[0]["value"] for c in al["conversations"]] == ["Give the sum.\n\n2 and 3", "Name a color."]
    assert al["source"] == ["alpaca", "alpaca"] and al["id"] == ["alpaca-0", "alpaca-1"]


def test_flan_hub_id_offline_is_fast_and_clear(monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    t = time.time()
    with pytest.raises(DataError, match="Muennighoff/flan.*offline"):
        load_flan("Muennighoff/flan")
    assert time.time() - t < 5


def test_microcosm_pools_same_schema(test_pools):
    assert test_pools.column_names == ["id", "image", "conversations", "task", "modality", "source"]
    assert test_pools["source"] == test_pools["task"]
    first = {m: test_pools[test_pools["modality"].index(m)] for m in ("language", "vision")}
    assert first["language"]["image"] is None and first["vision"]["image"] is not None


# ---------------------------------------------------------------- bad input: one clear error each

def _one_line(excinfo, *needles):
    msg = str(excinfo.value)
    assert "\n" not in msg
    for n in needles: assert n in msg, (n, msg)


@pytest.mark.parametrize("record, needles", [
    ({"id": "r_missing", "image": "coco/none.png", "conversations": _turns(("<image>\nq", "a"))}, ["image file not found", "none.png"]),
    ({"id": "r_noimgtok", "image": "coco/train2017/000000033471.png", "conversations": _turns(("q", "a"))}, ["0 '<image>'", "1 image"]),
    ({"id": "r_twoimgtok", "image": "coco/train2017/000000033471.png", "conversations": _turns(("<image> <image> q", "a"))}, ["2 '<image>'"]),
    ({"id": "r_textimgtok", "conversations": _turns(("<image>\nq", "a"))}, ["1 '<image>'", "0 image"]),
    ({"id": "r_empty", "conversations": []}, ["empty"]),
    ({"id": "r_noconv"}, ["empty or missing"]),
    ({"id": "r_unpaired", "conversations": [{"from": "human", "value": "q"}]}, ["unpaired"]),
    ({"id": "r_gptfirst", "conversations": [{"from": "gpt", "value": "a"}, {"from": "human", "value": "q"}]}, ["unpaired", "turn 0"]),
    ({"id": "r_twohuman", "conversations": [{"from": "human", "value": "q"}, {"from": "human", "value": "q"},
                                            {"from": "gpt", "value": "a"}]}, ["unpaired", "turn 1"]),
    ({"id": "r_role", "conversations": [{"from": "human", "value": "q"}, {"from": "bot", "value": "a"}]}, ["unknown role 'bot'"]),
    # empty or whitespace-only prompts and answers are refused, as load_flan refuses them (one shared check)
    ({"id": "r_empty_answer", "conversations": _turns(("q", ""))}, ["empty or non-text answer (turn 1)"]),
    ({"id": "r_blank_answer", "image": "coco/train2017/000000033471.png",
      "conversations": _turns(("<image>\nq", " \n\t"))}, ["empty or non-text answer (turn 1)"]),
    ({"id": "r_blank_prompt", "conversations": _turns(("q", "a"), ("   ", "b"))}, ["empty or non-text prompt (turn 2)"]),
    # control-token text is refused (not silently turned into the control token)
    ({"id": "r_eos", "conversations": _turns(("q", "yes</s>"))}, ["answer (turn 1)", "'</s>'", "as text"]),
    ({"id": "r_pad", "conversations": _turns(("<pad>fill q", "a"))}, ["prompt (turn 0)", "'<pad>'"]),
    ({"id": "r_bos", "conversations": _turns(("q", "a"), ("next <s> q", "b"))}, ["prompt (turn 2)", "'<s>'"]),
    ({"id": "r_unk", "conversations": _turns(("q", "<unk>"))}, ["answer (turn 1)", "'<unk>'"]),
])
def test_bad_llava_records(llava_dir, record, needles):
    p = _write(llava_dir, "bad.json", [RECORDS[2], record])
    with pytest.raises(DataError) as e:
        load_llava_json(p, image_root=llava_dir/"images")
    _one_line(e, "bad.json", repr(record["id"]), *needles)


def test_bad_json_files(tmp_path):
    good = json.dumps(RECORDS[2:])
    (tmp_path/"latin1.json").write_bytes(good.replace("19", "19 \u00e9").encode("latin-1"))
    with pytest.raises(DataError) as e: load_llava_json(tmp_path/"latin1.json")
    _one_line(e, "latin1.json", "not UTF-8", "byte")
    (tmp_path/"trunc.json").write_text(good[:len(good) - 30])
    with pytest.raises(DataError) as e: load_llava_json(tmp_path/"trunc.json")
    _one_line(e, "trunc.json", "truncated JSON", "last complete record: 'text_only'")
    (tmp_path/"trunc.jsonl").write_text('{"inputs": "q", "targets": "a"}\n{"inputs": "q2", "tar')
    with pytest.raises(DataError) as e: load_flan(tmp_path/"trunc.jsonl")
    _one_line(e, "trunc.jsonl", "line 2")
    (tmp_path/"cols.jsonl").write_text('{"id": "x1", "question": "q", "answer": "a"}')
    with pytest.raises(DataError) as e: load_flan(tmp_path/"cols.jsonl")
    _one_line(e, "cols.jsonl", "'x1'", "inputs")
    (tmp_path/"empty_target.jsonl").write_text('{"id": "x2", "inputs": "q", "targets": ""}')
    with pytest.raises(DataError) as e: load_flan(tmp_path/"empty_target.jsonl")
    _one_line(e, "empty_target.jsonl", "'x2'", "empty")


def test_bad_recipes(test_pools):
    with pytest.raises(DataError, match="unknown recipe 'mlan_99'"): resolve_recipe("mlan_99", test_pools, 10)
    for p in ("1.2", "-0.1", "nan"):
        with pytest.raises(DataError, match=r"outside \[0, 1\]"): resolve_recipe(f"mix:{p}", test_pools, 10)
    n_lang = Counter(test_pools["modality"])["language"]
    with pytest.raises(DataError) as e: resolve_recipe("lang_only", test_pools, n_lang + 1)
    _one_line(e, "'lang_only'", f"needs {n_lang + 1}", f"only {n_lang}", f"lower the budget to at most {n_lang}")
    r = resolve_recipe("lang_only", test_pools, n_lang + 5, allow_repeat=True)
    assert len(r) == n_lang + 5 and set(r["modality"]) == {"language"} and len(set(r["id"])) == n_lang


# ---------------------------------------------------------------- recipes

def test_recipe_registry_and_mix(test_pools):
    assert {"base", "lang_only", "vis_only", "llava_like", "mlan", "mlan_50"} <= set(RECIPES)
    assert get_recipe("llava_like").language_fraction == pytest.approx(0.06)
    for budget in (40, 57, 88):
        a = resolve_recipe("mix:0.875", test_pools, budget, seed=0)
        assert len(a) == budget and a["modality"].count("language") == round(0.875 * budget)
        assert resolve_recipe("mix:0.875", test_pools, budget, seed=0)["id"] == a["id"]
        assert resolve_recipe("mix:0.875", test_pools, budget, seed=1)["id"] != a["id"]
    assert resolve_recipe("mlan", test_pools, 64)["id"] == resolve_recipe("mix:0.875", test_pools, 64)["id"]
    n_lang = len(set(test_pools.filter(lambda r: r["modality"] == "language")["source"]))
    srcs = Counter(resolve_recipe("lang_only", test_pools, 10 * n_lang)["source"])
    assert sorted(srcs.values()) == [10] * n_lang                            # spread evenly over sources
    assert len(resolve_recipe("base", test_pools, 50)) == 0


def test_describe_recipe_real_scale(capsys):
    out = describe_recipe("mlan", budget=80000, scale="real")
    printed = capsys.readouterr().out
    assert "70,000 language + 10,000 vision" in printed and "576 image tokens" in printed
    t = out["tokens"]
    assert t["vision"]["image_tokens"] == 10000 * 576 and t["language"]["image_tokens"] == 0
    assert t["total"]["processed_tokens"] == t["language"]["processed_tokens"] + t["vision"]["processed_tokens"]
    assert t["vs_vis_only"] < 0.5


# ---------------------------------------------------------------- ledger == estimate, batching

@pytest.mark.parametrize("group, num_replicas", [(True, 1), (False, 1), (True, 2)])
def test_ledger_after_one_epoch_equals_estimate(test_pools, processor, tmp_path, group, num_replicas):
    raw = resolve_recipe("mlan", test_pools, 64, seed=3)
    max_length = int(np.percentile(encode(raw, processor)["length"], 95))  # a few samples get dropped
    ledger = TokenLedger()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        enc = encode(raw, processor, max_length=max_length, ledger=ledger)
        est = estimate_tokens(raw, processor, max_length=max_length, batch_size=5, seed=3, group=group, num_replicas=num_replicas)
    assert 0 < len(ledger.dropped) == 64 - len(enc) and all(d["length"] > max_length for d in ledger.dropped)
    steps = set()
    for rank in range(num_replicas):
        dl = make_dataloader(enc, processor, batch_size=5, seed=3, group=group, num_replicas=num_replicas, rank=rank)
        steps.add(len(dl))
        for batch in dl:
            ledger.add_batch(batch)
            assert "token_counts" not in batch
            assert ("pixel_values" in batch) == bool((batch["input_ids"] == processor.image_token_id).any())
    assert len(steps) == 1                                                   # every rank runs the same number of steps
    ledger.save(tmp_path/"tokens.json")
    assert json.loads((tmp_path/"tokens.json").read_text()) == est.to_dict() == ledger.to_dict()
    assert est.totals()["examples"] >= len(enc)


def test_grouped_sampler_padding_on_default_mlan_mix():
    from mmkit.tasks import microcosm
    tok = train_tokenizer(microcosm()["corpus"], vocab_size=2000)
    proc = make_processor(tok)
    enc = encode(resolve_recipe("mlan", microcosm_pools(), budget=None, seed=0), proc)
    assert len(enc) == 4000
    on = estimate_tokens(enc, proc, batch_size=16, seed=0, group=True).totals()
    off = estimate_tokens(enc, proc, batch_size=16, seed=0, group=False).totals()
    print(f"padding with grouping {on['padding_fraction']:.2%}, without {off['padding_fraction']:.2%}")
    assert on["padding_fraction"] < 0.10 < off["padding_fraction"]
    s = ModalityLengthGroupedSampler.from_dataset(enc, 16, seed=0)
    mods = enc["modality"]
    assert all(len({mods[i] for i in b}) == 1 for b in s)


def test_sampler_distributed_and_epochs():
    lengths = np.random.default_rng(0).integers(5, 200, 103)
    mods = ["language"] * 80 + ["vision"] * 23
    for R in (2, 3, 4):
        per_rank = [list(ModalityLengthGroupedSampler(lengths, mods, 4, seed=0, num_replicas=R, rank=r)) for r in range(R)]
        assert len({len(b) for b in per_rank}) == 1
        assert {i for b in per_rank for batch in b for i in batch} == set(range(103))
        dropped = [list(ModalityLengthGroupedSampler(lengths, mods, 4, num_replicas=R, rank=r, drop_last=True)) for r in range(R)]
        assert len({len(b) for b in dropped}) == 1
    s = ModalityLengthGroupedSampler(lengths, mods, 4, seed=0)
    e0 = list(s); s.set_epoch(1); e1 = list(s)
    assert e0 != e1 and sorted(map(sorted, e0)) != sorted(map(sorted, e1))


def test_mixed_and_text_only_batches_run_through_llava(llava_dir, processor):
    """The text-only policy end to end: a mixed batch (pixel_values only for image samples) and a text-only batch."""
    model, proc = build_tiny_llava(processor.tokenizer, size="test", image_size=IMAGE_SIZE, patch_size=PATCH)
    enc = encode(load_llava_json(llava_dir/"llava_v1_5_mix665k.json", image_root=llava_dir/"images"), proc)
    collate = Collator(proc)
    mixed = collate([enc[2], enc[0], enc[3], enc[1]]); mixed.pop("token_counts")
    assert mixed["pixel_values"].shape[0] == 2
    text = collate([enc[2], enc[3]]); text.pop("token_counts")
    assert "pixel_values" not in text
    for batch in (mixed, text):
        out = model(**batch)
        assert torch.isfinite(out.loss)
    out = model(**text); out.loss.backward()
    assert all(p.grad is None for p in model.model.multi_modal_projector.parameters())  # why DDP needs find_unused_parameters


@pytest.mark.parametrize("R", [2, 3])
def test_accelerate_sharding_matches_num_replicas(R):
    """Through accelerate's real BatchSamplerShard (what Trainer + accelerator.prepare does with R processes), each
    process gets exactly the batches of our `num_replicas=R, rank=r` slicing — so estimate_tokens(num_replicas=R) holds."""
    from accelerate.data_loader import BatchSamplerShard
    lengths = np.random.default_rng(1).integers(5, 200, 101)
    mods = ["language"] * 77 + ["vision"] * 24
    for seed in range(6):                # with a `batch_size` attribute, seeds 1, 4, 5 would lose samples at R=2
        s = ModalityLengthGroupedSampler(lengths, mods, 4, seed=seed)
        assert any(len(b) < 4 for b in s)                                    # short batches in the stream
        for r in range(R):
            shard = list(BatchSamplerShard(s, num_processes=R, process_index=r, split_batches=False, even_batches=True))
            assert shard == list(ModalityLengthGroupedSampler(lengths, mods, 4, seed=seed, num_replicas=R, rank=r))
            assert all(len({mods[i] for i in b}) == 1 for b in shard)


def test_encode_stage1_records_without_source(processor):
    from mmkit.tasks import stage1_captions
    caps = stage1_captions(seed=0, n=4)
    enc = encode(caps, processor, template="plain")
    assert set(enc["modality"]) == {"vision"} and all(enc["source"]) and enc["n_image_tokens"] == [64] * 4
    est = estimate_tokens(enc, processor, batch_size=2)
    assert est.totals()["image_tokens"] == 4 * 64


# ---------------------------------------------------------------- adversarial inputs (issue 22)

def _jpeg_bytes(size=(120, 90)):
    import io
    buf = io.BytesIO(); Image.effect_noise(size, 60).convert("RGB").save(buf, "JPEG", quality=90)
    return buf.getvalue()


@pytest.mark.parametrize("kind", ["truncated_jpeg", "random_bytes", "zero_bytes"])
def test_broken_images_fail_at_load_naming_file_record_and_image(llava_dir, kind):
    import os
    jpg = _jpeg_bytes()
    data = {"truncated_jpeg": jpg[:len(jpg) * 2 // 3], "random_bytes": os.urandom(2048), "zero_bytes": b""}[kind]
    (llava_dir/"images"/"coco"/"bad.jpg").write_bytes(data)
    rec = {"id": f"r_{kind}", "image": "coco/bad.jpg", "conversations": _turns(("<image>\nWhat is it?", "A cat."))}
    p = _write(llava_dir, "broken.json", [RECORDS[0], RECORDS[2], rec])
    with pytest.raises(DataError) as e:
        load_llava_json(p, image_root=llava_dir/"images")
    _one_line(e, "broken.json", f"'r_{kind}'", str(llava_dir/"images"/"coco"/"bad.jpg"), "broken image")
    with pytest.raises(DataError) as e:                                   # MLAN files go through the same loader
        load_mlan(p, image_root=llava_dir/"images")
    _one_line(e, "broken.json", f"'r_{kind}'", "bad.jpg")
    (llava_dir/"images"/"coco"/"bad.jpg").write_bytes(jpg)               # the intact file loads
    assert load_llava_json(p, image_root=llava_dir/"images")[2]["image"].size == (120, 90)


def test_broken_image_bytes_in_a_records_dataset(test_pools):
    "An unreadable image inside a `datasets` Image column (the microcosm pools' layout) is caught when validating it."
    from datasets import Image as DImage
    from mmkit.data import from_records_dataset
    vis = test_pools.filter(lambda m: m == "vision", input_columns="modality").select(range(3)).remove_columns("source")
    raw = vis.cast_column("image", DImage(decode=False))
    bad_id = raw[1]["id"]
    png = raw[1]["image"]["bytes"]
    broken = raw.map(lambda r, i: {"image": {"bytes": png[:len(png) // 2] if i == 1 else r["image"]["bytes"], "path": None}},
                     with_indices=True).cast_column("image", DImage())
    with pytest.raises(DataError) as e:
        from_records_dataset(broken, "pools.arrow")
    _one_line(e, "pools.arrow", repr(bad_id), "broken image")
    assert len(from_records_dataset(vis, "pools.arrow")) == 3


def test_special_tokens_of_the_tokenizer_are_refused_at_encode(llava_dir):
    "Loaders refuse the kit's control tokens; `encode` also refuses any other special token of the actual tokenizer."
    tok = sample_tokenizer()
    tok.add_special_tokens({"additional_special_tokens": ["<|im_end|>"]})
    proc = make_processor(tok, image_size=IMAGE_SIZE, patch_size=PATCH)
    rec = {"id": "chatml", "conversations": _turns(("Say hi.", "hi<|im_end|>"))}
    ds = load_llava_json(_write(llava_dir, "chatml.json", [RECORDS[2], rec]))   # not a kit token: the loader lets it by
    with pytest.raises(DataError) as e:
        encode(ds, proc)
    _one_line(e, "'chatml'", "chatml", "'<|im_end|>'", "answer (turn 1)")
    enc = encode(load_llava_json(llava_dir/"llava_v1_5_mix665k.json", image_root=llava_dir/"images"), proc)
    assert enc["n_image_tokens"][0] == (IMAGE_SIZE // PATCH) ** 2           # <image> is a special token but belongs


def test_flan_columns_empty_files_and_made_up_ids(tmp_path):
    (tmp_path/"cols.json").write_text(json.dumps({"inputs": ["a?", "b?", "c?"], "targets": ["1", "2"]}))
    with pytest.raises(DataError) as e: load_flan(tmp_path/"cols.json")
    _one_line(e, "cols.json", "unequal length", "inputs: 3", "targets: 2")
    (tmp_path/"cols.json").write_text(json.dumps({"inputs": ["a?", "b?"], "targets": ["1", "2"]}))
    assert [c[1]["value"] for c in load_flan(tmp_path/"cols.json")["conversations"]] == ["1", "2"]
    for name, text in [("empty.json", "[]"), ("empty.jsonl", "\n"), ("emptycols.json", '{"inputs": [], "targets": []}')]:
        (tmp_path/name).write_text(text)
        with pytest.raises(DataError) as e: load_flan(tmp_path/name)
        _one_line(e, name, "0 records")
    (tmp_path/"empty.json").write_text("[]")
    with pytest.raises(DataError) as e: load_llava_json(tmp_path/"empty.json")
    _one_line(e, "empty.json", "0 records")
    # a folder of shards whose records carry no id: made-up ids count across the whole load, and never take an id the
    # data wrote, so "duplicate id" only ever names ids the data wrote twice
    shards = tmp_path/"flan_shards"; shards.mkdir()
    rows = lambda *ids: "\n".join(json.dumps({**({"id": i} if i else {}), "inputs": f"q {n}", "targets": "a"}) for n, i in enumerate(ids))
    (shards/"part-00000.jsonl").write_text(rows(None, None))
    (shards/"part-00001.jsonl").write_text(rows(None, "flan_shards-0"))
    assert load_flan(shards)["id"] == ["flan_shards-0-auto", "flan_shards-1", "flan_shards-2", "flan_shards-0"]
    (shards/"part-00002.jsonl").write_text(rows("flan_shards-0"))
    with pytest.raises(DataError) as e: load_flan(shards)
    _one_line(e, "part-00002.jsonl", "'flan_shards-0'", "duplicate id")
    (tmp_path/"noid.json").write_text(json.dumps([RECORDS[2], {k: v for k, v in RECORDS[3].items() if k != "id"}, {**RECORDS[3], "id": "noid-1"}]))
    assert load_llava_json(tmp_path/"noid.json")["id"] == ["text_only", "noid-1-auto", "noid-1"]


def test_budget_hint_names_a_budget_that_works(test_pools):
    "The too-large-budget error names what a run can do (a lower budget, and how low), and that budget works."
    import re
    for recipe in ("mlan", "vis_only", "mix:0.3"):
        with pytest.raises(DataError) as e: resolve_recipe(recipe, test_pools, 100_000)
        _one_line(e, repr(recipe), "lower the budget to at most")
        assert "allow_repeat" not in str(e.value)
        top = int(re.search(r"at most (\d+)", str(e.value)).group(1))
        assert len(resolve_recipe(recipe, test_pools, top)) == top
        with pytest.raises(DataError): resolve_recipe(recipe, test_pools, top + 1)
