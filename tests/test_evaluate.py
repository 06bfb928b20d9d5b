"""evaluate: extractor table, batched == one-at-a-time, loglik == direct computation, chance level, results files, bad input."""
import copy, json, math

import pytest
import torch
from scipy import stats

from mmkit import tasks
from mmkit.config import MMKitError
from mmkit.evaluate import (_encode, _prompt, aggregate_seeds, cut_at_stop, evaluate, extract_answer, generate_answers, is_correct,
                            load_suites, loglik_options, loglik_scores, normalize_answer, shared_prefix)
from mmkit.model import build_tiny_llava, generation_prompt, sample_tokenizer

C4 = ["red circle", "blue square", "green triangle", "yellow cross"]
N3 = ["12", "0", "4"]

# (raw model output, answer_type, choices, expected extraction)
TABLE = [
    # letters, bare and decorated
    ("B", "letter", C4, "B"), ('B"', "letter", C4, "B"), ("b", "letter", C4, "B"), ("(C)", "letter", C4, "C"),
    ("(c) green triangle", "letter", C4, "C"), ("D.", "letter", C4, "D"), ("A) red circle", "letter", C4, "A"),
    ("B: blue square", "letter", C4, "B"), ("C - green triangle", "letter", C4, "C"), ("[D]", "letter", C4, "D"),
    ("Option B", "letter", C4, "B"), ("option (d)", "letter", C4, "D"), ("Answer: C", "letter", C4, "C"),
    ("The answer is A.", "letter", C4, "A"), ('The best answer is "D".', "letter", C4, "D"),
    ('"B"', "letter", C4, "B"), ("  C  ", "letter", C4, "C"), ('A". It is red.', "letter", C4, "A"),
    ("B\nBecause the square is blue.", "letter", C4, "B"), ("I think it is C", "letter", C4, "C"),
    # option text instead of a letter
    ("blue square", "letter", C4, "B"), ("Yellow Cross.", "letter", C4, "D"), ("a red circle", "letter", C4, "A"),
    ("the green triangle is correct", "letter", C4, "C"), ("green tri", "letter", C4, "C"),
    ("4", "letter", N3, "C"), ("four", "letter", N3, "C"), ("12", "letter", N3, "A"),
    # nothing usable / out of range
    ("", "letter", C4, ""), ("E", "letter", C4, ""), ("purple star", "letter", C4, ""), ("D", "letter", N3, ""),
    ("A cat sat on the mat", "letter", C4, ""), ("</s>", "letter", C4, ""),
    # yes / no variants
    ("yes", "yesno", None, "yes"), ("Yes", "yesno", None, "yes"), ("YES.", "yesno", None, "yes"),
    ('yes"', "yesno", None, "yes"), ("Yes, there is a cat.", "yesno", None, "yes"), ("no", "yesno", None, "no"),
    ("No.", "yesno", None, "no"), ("nope", "yesno", None, "no"), ("There is no cat in the image", "yesno", None, "no"),
    ("It is not there", "yesno", None, "no"), ("true", "yesno", None, "yes"), ("False", "yesno", None, "no"),
    ('The best answer is "yes"', "yesno", None, "yes"), ("maybe", "yesno", None, ""), ("", "yesno", None, ""),
    ("top right", "yesno", None, ""), ("It is at the bottom right.", "yesno", None, ""),     # a direction, not a yes
    ("Right, it is red.", "yesno", None, "yes"), ("No, it is on the right", "yesno", None, "no"),
    # verdict words: first word decides; later, only when no yes/no word is there
    ("The correct answer is no.", "yesno", None, "no"), ("That is correct.", "yesno", None, "yes"),
    ("Correct, there is not a cat.", "yesno", None, "yes"), ("It is not correct", "yesno", None, "no"),
    ("Wrong, it is yes only for red.", "yesno", None, "no"), ("The statement is false", "yesno", None, "no"),
    ("the true answer is yes", "yesno", None, "yes"),
    # short answers, normalized
    ("Red", "short", None, "red"), ("red.", "short", None, "red"), ("The red ball", "short", None, "red ball"),
    ("two", "short", None, "2"), ("3.5", "short", None, "3.5"), ('blue" and more', "short", None, "blue"),
    ("Yes, it is", "short", None, "yes"), ("", "short", None, ""), ("  Top   Left ", "short", None, "top left"),
]


def test_extractor_table():
    assert len(TABLE) >= 40
    bad = [(raw, at, want, extract_answer(raw, at, ch)) for raw, at, ch, want in TABLE if extract_answer(raw, at, ch) != want]
    assert not bad, bad


def test_exact_match_uses_canonical_gold():
    assert is_correct("B", "b", "letter") and is_correct("yes", "Yes", "yesno") and is_correct("2", "two", "short")
    assert not is_correct("", "", "short") and normalize_answer("The Cat!") == "cat"
    assert cut_at_stop('B". more') == "B" and cut_at_stop("no stop") == "no stop"


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    tok = sample_tokenizer()
    model, proc = build_tiny_llava(tok, size="test", seed=0)
    return model.float().eval(), proc


@pytest.fixture(scope="module")
def mixed():
    "Four items from each of the nine microcosm suites: text-only and image items mixed."
    return load_suites(tasks.SUITES, n=4, seed=0)


def test_batched_equals_one_at_a_time(tiny, mixed):
    model, proc = tiny
    items = [it for its in mixed.values() for it in its]
    assert any(it["image"] is None for it in items) and any(it["image"] is not None for it in items)
    prompts = [generation_prompt(it["question"], has_image=it["image"] is not None) for it in items]
    prefix = shared_prefix(proc, prompts)                    # the system prompt: computed once, its KV cache reused
    assert len(prefix) >= 10 and proc.tokenizer.decode(prefix, skip_special_tokens=True).startswith("A chat between")
    batched = generate_answers(model, proc, items, batch_size=7, max_new_tokens=6, progress=False)
    single = generate_answers(model, proc, items, batch_size=1, max_new_tokens=6, progress=False)
    unshared = generate_answers(model, proc, items, batch_size=7, max_new_tokens=6, progress=False, share_prefix=False)
    assert [b["output"] for b in batched] == [s["output"] for s in single] == [u["output"] for u in unshared]
    # and both equal a plain per-item `generate` with no padding and no stopping criterion, cut at the stop string
    tok = proc.tokenizer
    for it, b in list(zip(items, batched))[::5]:
        prompt = generation_prompt(it["question"], has_image=it["image"] is not None)
        enc = proc(text=[prompt], images=[it["image"]] if it["image"] is not None else None, return_tensors="pt")
        out = model.generate(**enc, max_new_tokens=6, do_sample=False, pad_token_id=tok.pad_token_id)
        text = tok.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)
        assert cut_at_stop(text) == cut_at_stop(b["output"]), (it["id"], text, b["output"])
    # full evaluate: identical predictions rows whatever the batch size
    suites = {k: mixed[k] for k in ["boolq", "race", "pope", "gqa", "ai2d"]}
    m8, p8 = evaluate(model, proc, suites, batch_size=8, max_new_tokens=6, progress=False)
    m1, p1 = evaluate(model, proc, suites, batch_size=1, max_new_tokens=6, progress=False)
    assert p8 == p1 and m8["datasets"] == m1["datasets"]


def test_loglik_matches_direct_per_choice_computation(tiny, mixed):
    model, proc = tiny
    tok = proc.tokenizer
    items = mixed["openbookqa"][:2] + mixed["ai2d"][:2] + mixed["pope"][:2] + mixed["boolq"][:1]
    got = loglik_scores(model, proc, items, batch_size=6, progress=False)
    for it, scores in zip(items, got):
        ctx = generation_prompt(it["question"], has_image=it["image"] is not None)
        opts = loglik_options(it)
        assert len(scores) == len(opts)
        for o, s in zip(opts, scores):
            n_cont = len(tok(ctx + o)["input_ids"]) - len(tok(ctx)["input_ids"])
            enc = proc(text=[ctx + o], images=[it["image"]] if it["image"] is not None else None, return_tensors="pt")
            with torch.no_grad(): logp = torch.log_softmax(model(**enc).logits[0].float(), -1)
            ids = enc["input_ids"][0]; T = len(ids)
            direct = sum(float(logp[t - 1, ids[t]]) for t in range(T - n_cont, T))
            assert abs(direct - s) < 1e-4, (it["id"], o, direct, s)
    unshared = loglik_scores(model, proc, items, batch_size=6, progress=False, share_prefix=False)
    assert all(abs(a - b) < 1e-4 for x, y in zip(got, unshared) for a, b in zip(x, y))


def test_shared_prefix_stops_before_images_and_leaves_every_prompt_a_token(tiny):
    _, proc = tiny
    tok = proc.tokenizer
    a, b = generation_prompt("Is it red?", has_image=True), generation_prompt("Is it blue?", has_image=True)
    pre = shared_prefix(proc, [a, b])
    img = proc.image_token_id
    assert img not in pre and tok(a)["input_ids"][len(pre)] == img       # cut right before the image token
    t = generation_prompt("Is it red?", has_image=False)
    assert shared_prefix(proc, [t]) == [] and shared_prefix(proc, [t, t]) == tok(t)["input_ids"][:-1]


def test_bf16_model_scores_with_lowp_eager_attention_and_keeps_its_setting(tiny, mixed):
    """A bf16 model on a CPU is scored with `mmkit_lowp_eager` attention (eager attention, softmax in bf16): same logits
    as transformers' eager attention (whose softmax runs in fp32), same generations; SDPA is put back afterwards."""
    model, proc = tiny
    m16 = copy.deepcopy(model).to(torch.bfloat16)
    items = mixed["boolq"][:3] + mixed["pope"][:3] + mixed["race"][:2]
    enc = _encode(proc, [_prompt(it, "v1") for it in items], [it["image"] for it in items if it["image"] is not None],
                  "cpu", torch.bfloat16)
    real = enc["attention_mask"].bool()
    assert not real.all()                                                    # left padding is exercised
    logits = {}
    with torch.no_grad():
        for impl in ("eager", "mmkit_lowp_eager"):
            m16.set_attn_implementation(impl); logits[impl] = m16(**enc).logits.float()[real]
    assert (logits["eager"] - logits["mmkit_lowp_eager"]).abs().max().item() <= 1 / 64
    assert torch.equal(logits["eager"].argmax(-1), logits["mmkit_lowp_eager"].argmax(-1))

    m16.set_attn_implementation("eager")
    ref = generate_answers(m16, proc, items, batch_size=4, max_new_tokens=4, progress=False)
    m16.set_attn_implementation("sdpa")
    seen = []
    hook = m16.model.language_model.layers[0].self_attn.register_forward_pre_hook(
        lambda mod, args: seen.append(mod.config._attn_implementation))
    outs = generate_answers(m16, proc, items, batch_size=4, max_new_tokens=4, progress=False)
    hook.remove()
    assert set(seen) == {"mmkit_lowp_eager"}
    assert [o["output"] for o in outs] == [o["output"] for o in ref]
    assert m16.config._attn_implementation == "sdpa" and m16.config.vision_config._attn_implementation == "sdpa"
    scores = loglik_scores(m16, proc, items, batch_size=4, progress=False)
    assert all(len(s) == 2 or len(s) == len(it["choices"]) for s, it in zip(scores, items))
    assert all(math.isfinite(v) for s in scores for v in s)
    assert m16.config._attn_implementation == "sdpa"


def test_untrained_model_scores_at_chance_on_letter_sets(tiny):
    """A random model cannot know the answers. Scoring the option *letters* by log-likelihood, its accuracy must fall
    inside the binomial 99 % band around chance (1/k per item, pooled over the six letter sets, 180 items): a gold answer
    leaking into prompts, ordering or scoring would push it out. Scoring option *texts*, a random model has length
    preferences unrelated to the gold, so only the upper bound is asserted; likewise for the generative scorer."""
    model, proc = tiny
    letter_sets = [s for s in tasks.SUITES if tasks.heldout(s, n=1)[0]["answer_type"] == "letter"]
    assert len(letter_sets) >= 4
    data = load_suites(letter_sets, n=30, seed=1)
    items = [it for its in data.values() for it in its]
    n = len(items)
    p0 = sum(1 / len(it["choices"]) for it in items) / n
    lo, hi = stats.binom.interval(0.99, n, p0)
    _, p = evaluate(model, proc, data, batch_size=32, scorer="loglik", loglik_target="letter", progress=False)
    k = sum(r["correct"] for r in p)
    assert lo <= k <= hi, (k, n, p0, lo, hi)
    _, pt = evaluate(model, proc, data, batch_size=32, scorer="loglik", progress=False)
    assert sum(r["correct"] for r in pt) <= hi
    _, pg = evaluate(model, proc, data, batch_size=32, max_new_tokens=4, progress=False)
    assert sum(r["correct"] for r in pg) <= hi


def test_results_files_and_summary(tiny, mixed, tmp_path):
    model, proc = tiny
    suites = {k: mixed[k] for k in ["boolq", "openbookqa", "pope", "gqa"]}
    metrics, preds = evaluate(model, proc, suites, batch_size=8, max_new_tokens=4, out_dir=tmp_path, progress=False)
    rows = [json.loads(l) for l in (tmp_path/"predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 16 and rows == json.loads(json.dumps(preds))
    for r in rows: assert {"id", "dataset", "prompt", "output", "extracted", "gold", "correct"} <= set(r)
    saved = json.loads((tmp_path/"metrics.json").read_text())
    assert saved == json.loads(json.dumps(metrics))
    assert set(saved["datasets"]) == set(suites)
    assert {"precision", "recall", "f1", "yes_ratio", "by_category"} <= set(saved["datasets"]["pope"])
    lang = [saved["datasets"][k]["acc"] for k in ["boolq", "openbookqa"]]
    vis = [saved["datasets"][k]["acc"] for k in ["pope", "gqa"]]
    assert math.isclose(saved["language_avg"], sum(lang) / 2) and math.isclose(saved["vision_avg"], sum(vis) / 2)
    assert math.isclose(saved["overall_avg"], sum(lang + vis) / 4)
    # loglik: short-answer GQA falls back to generation
    ml, pl = evaluate(model, proc, suites, batch_size=8, scorer="loglik", max_new_tokens=4, progress=False)
    assert {r["scorer"] for r in pl if r["dataset"] == "gqa"} == {"generate"}
    assert {r["scorer"] for r in pl if r["dataset"] != "gqa"} == {"loglik"} and "acc_norm" in ml["datasets"]["openbookqa"]


def test_aggregate_seeds_t_interval():
    ms = [dict(overall_avg=v, language_avg=v / 2, datasets=dict(pope=dict(acc=v, f1=1 - v, n=5))) for v in (0.4, 0.5, 0.7, 0.6)]
    agg = aggregate_seeds(ms)
    vals = [0.4, 0.5, 0.7, 0.6]
    m, s = sum(vals) / 4, stats.tstd(vals)
    h = stats.t.ppf(0.975, 3) * s / 2
    o = agg["overall_avg"]
    assert agg["n_seeds"] == 4 and math.isclose(o["mean"], m) and math.isclose(o["ci95"], h) and math.isclose(o["lo"], m - h)
    assert math.isclose(agg["datasets"]["pope"]["f1"]["mean"], 1 - m) and "n" not in agg["datasets"]["pope"]
    one = aggregate_seeds(ms[:1])
    assert one["overall_avg"]["ci95"] is None
    with pytest.raises(MMKitError): aggregate_seeds([])


def test_bad_input_names_dataset_and_item(tiny, mixed):
    model, proc = tiny
    it = dict(mixed["ai2d"][0])
    with pytest.raises(MMKitError, match=rf"^ai2d: item '{it['id']}': gold answer 'F' is not among its choices"):
        evaluate(model, proc, {"ai2d": [dict(it, answer="F")]}, progress=False)
    with pytest.raises(MMKitError, match=rf"^ai2d: item '{it['id']}': image is missing"):
        evaluate(model, proc, {"ai2d": [dict(it, image=None)]}, progress=False)
    with pytest.raises(MMKitError, match=r"^pope: dataset is empty"):
        evaluate(model, proc, {"pope": []}, progress=False)
    with pytest.raises(MMKitError, match=r"^gqa: item 'x7': bad image"):
        evaluate(model, proc, {"gqa": [dict(mixed["gqa"][0], id="x7", image=b"not an image")]}, progress=False)
    with pytest.raises(MMKitError, match="scorer"):
        evaluate(model, proc, {"ai2d": [it]}, scorer="beam", progress=False)
