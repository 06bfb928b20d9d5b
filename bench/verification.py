"""Can the base check a claim against its context or its knowledge (a yes/no verdict), and does stage 2 then learn yes/no?

On microcosm v2.5 the base knows its facts (knowledge_qa 93 %, knowledge_mc 87 % after `lang_only`), yet the yes/no
controls stay at chance for every recipe (knowledge_yn 45-62 %, scene_yn 47-60 %): asked `Is a zorb a red circle?`,
a model must recall the fact and *compare* it with the claim, and the stage-0 corpus never asks for that comparison
(its only yes/no lines were presence lines, nine in ten `no`). This script writes balanced verification lines in the
corpus's house style, continues the base on them (half and half with its own corpus, `mmkit.train.continue_base`), and
measures verdicts in that style on items it never trained on:

- `presence`: a description, then `Q: any red circle? A: yes.` (an object it has, or a colour and shape it lacks);
- `cell`: `Q: red circle at top left? A: no.` (the object at its own cell, or a scene object at another object's cell,
  or another colour and shape at an object's cell: a mention of the object alone does not decide it);
- `relation`: `Q: red circle above the blue square? A: no.` (two objects of the scene that share a row or a column);
- `corners`, `meanings`, `creatures`, `sums`: no context, `Q: a zorb a red circle? A: yes.`, `Q: 3 plus 4 is 8? A: no.`

Scene items are on held-out-part scenes; the sums' triples are drawn fresh (49 sums, up to four wrong values each).

    python bench/verification.py [CHECKPOINT ...]                      # measure (default: the cached microcosm base)
    python bench/verification.py --train 1200 --out /tmp/verify-base   # continue the base first, measure before/after
    python bench/verification.py --images CHECKPOINT ...                # the scene kinds asked of the image instead
    python bench/verification.py --image-train 8000 --base /tmp/verify-base --out /tmp/verify-img
                                  # continue stage 1 on images followed by claims about them (`image_train`)

Then `mmkit train --recipe lang_only --base /tmp/verify-base --seed S` shows whether the stage-2 yes/no controls
(`knowledge_yn`, `scene_yn`) and the held-out yes/no sets (BoolQ, POPE) move. The continued base keeps `REPLAY_DOCS`
fresh documents of its own (`replay_texts.json`): stage 2 draws half its replayed text from them, so that it does not
erase the verdicts (`--no-replay` leaves them out, as the first measurements of this script did).
"""
import argparse, json, random

from mmkit import world as W
from mmkit.train import continue_base, greedy, lm_blocks, resolve_base

SCENE_KINDS = ("presence", "cell", "relation")
FACT_KINDS = ("corners", "meanings", "creatures", "sums")
REPLAY_DOCS = 5000      # fresh documents the continued base keeps for stage 2 to replay (`mmkit.train.REPLAY_TEXTS`)

def _scene_claim(rng, sc, kind: str, true: bool) -> str | None:
    "A claim of `kind` about `sc`, true or false as asked (None when the scene cannot make one)."
    names = {o.name for o in sc.objects}
    if kind == "presence":
        present = sorted({(o.color, o.shape) for o in sc.objects})
        co, sh = rng.choice(present) if true else rng.choice([(c, s) for c in W.COLORS for s in W.SHAPES if (c, s) not in present])
        return f"any {co} {sh}"
    if kind == "cell":
        o = rng.choice(sc.objects)
        if true: return f"{o.name} at {sc.pos(o)}"
        others = [x for x in sc.objects if x is not o]
        if others and rng.random() < 0.5: return f"{o.name} at {sc.pos(rng.choice(others))}"     # named, but elsewhere
        return f"{rng.choice([f'{c} {s}' for c in W.COLORS for s in W.SHAPES if f'{c} {s}' not in names])} at {sc.pos(o)}"
    pairs = [(a, b) for a in sc.objects for b in sc.objects if W.relation(sc, a, b)]
    if not pairs: return None
    a, b = rng.choice(pairs); rel = W.relation(sc, a, b)
    if not true: rel = rng.choice([r for r in W.RELATIONS if r != rel])
    return f"{a.name} {rel} the {b.name}"

def _fact_claim(rng, kind: str, true: bool) -> str:
    if kind == "corners":
        sh = rng.choice(W.SHAPES); n = W.CORNERS[sh] if true else rng.choice([v for v in sorted(set(W.CORNERS.values())) if v != W.CORNERS[sh]])
        return f"corners of a {sh} {n}"
    if kind == "meanings":
        co = rng.choice(W.COLORS); m = W.MEANINGS[co] if true else rng.choice([v for v in W.MEANINGS.values() if v != W.MEANINGS[co]])
        return f"{co} means {m}"
    if kind == "creatures":
        cr = rng.choice(list(W.CREATURES)); co, sh = W.CREATURES[cr]
        if not true: co, sh = rng.choice([(c, s) for c in W.COLORS for s in W.SHAPES if (c, s) != (co, sh)])
        return f"a {cr} a {co} {sh}"
    a, b = rng.randint(0, W.ARITH_MAX), rng.randint(0, W.ARITH_MAX)
    c = a + b if true else a + b + rng.choice([v for v in (-2, -1, 1, 2) if a + b + v >= 0])
    return f"{a} plus {b} is {c}"

def line(claim: str, true: bool | None = None) -> str:
    "The house-style verification line (`Q: <claim>? A: yes.`); with `true=None`, the prompt up to `A:`."
    return f"Q: {claim}? A:" + ("" if true is None else f" {'yes' if true else 'no'}.")

def _scene_lines(rng, sc) -> list[str]:
    "1-3 balanced verification lines about `sc` (a training document's, or an image's in `image_claim_captions`)."
    return [line(c, t) for t in (rng.random() < 0.5 for _ in range(rng.randint(1, 3)))
            if (c := _scene_claim(rng, sc, rng.choice(SCENE_KINDS), t))]

def documents(n: int, seed: int = 0) -> list[str]:
    """`n` training documents: two in three a training-part scene's description in a random phrasing and 1-3 balanced
    scene claims, one in three 1-3 balanced claims about the knowledge base (no fact stated beside them)."""
    rng, out = random.Random(f"verify-docs-{seed}"), []
    while len(out) < n:
        if rng.random() < 2 / 3:
            sc = W.sample_split_scene(rng, heldout=False, min_objects=2)
            if ls := _scene_lines(rng, sc): out.append(W.fix_articles(f"{W.describe(sc, rng.randrange(len(W.PHRASINGS)))}\n" + " ".join(ls)))
        else:
            out.append(W.fix_articles(" ".join(line(_fact_claim(rng, k, t), t) for k, t in
                                               ((rng.choice(FACT_KINDS), rng.random() < 0.5) for _ in range(rng.randint(1, 3))))))
    return out

def items(n: int = 200, seed: int = 5) -> list[tuple[str, str, str]]:
    "(kind, prompt, gold `yes`/`no`): `n` per kind, balanced, scene kinds on held-out-part scenes."
    rng, out = random.Random(f"verify-items-{seed}"), []
    for kind in SCENE_KINDS + FACT_KINDS:
        i = 0
        while i < n:
            true = i % 2 == 0
            if kind in SCENE_KINDS:
                sc = W.sample_split_scene(rng, heldout=True, min_objects=2)
                c = _scene_claim(rng, sc, kind, true)
                if c is None: continue
                p = f"{W.describe(sc, rng.randrange(len(W.PHRASINGS)))}\n{line(c)}"
            else: p = line(_fact_claim(rng, kind, true))
            out.append((kind, W.fix_articles(p), "yes" if true else "no")); i += 1
    return out

def image_items(n: int = 200, seed: int = 6) -> list[tuple]:
    "(kind, scene, claim, gold) for the scene kinds: `n` per kind, balanced, on held-out-part scenes (asked of their images)."
    rng, out = random.Random(f"verify-image-items-{seed}"), []
    for kind in SCENE_KINDS:
        i = 0
        while i < n:
            true = i % 2 == 0
            sc = W.sample_split_scene(rng, heldout=True, min_objects=2)
            c = _scene_claim(rng, sc, kind, true)
            if c is None: continue
            out.append((kind, sc, W.fix_articles(c), "yes" if true else "no")); i += 1
    return out

def first_word(output: str) -> str:
    "The verdict of a quiz-line completion: its first word (`yes`, `no`, or whatever else the model wrote)."
    return output.strip(' "').split(" ")[0].strip(".")

def score(said: list[str], gold: list[str]) -> dict:
    "Accuracy and the share of `yes` (%) of verdicts `said` against `gold`."
    return dict(accuracy=round(100 * sum(s == g for s, g in zip(said, gold)) / len(gold), 1),
                yes=round(100 * said.count("yes") / len(gold), 1))

def _by_kind(kinds: list[str], said: list[str], gold: list[str], order) -> dict:
    return {k: score([s for s, x in zip(said, kinds) if x == k], [g for g, x in zip(gold, kinds) if x == k]) for k in order}

def measure_images(model, processor, n: int = 200) -> dict:
    """The scene kinds asked of the image instead of a description, in stage 1's layout (the image, then the quiz line:
    `image`), after the model's own caption of it (`own caption`), and after the scene's true description with the
    image before it (`image and description`, the text form's ceiling with the image present). Per kind: accuracy and
    `yes` share (%)."""
    from mmkit.train import IMAGE_LAYOUTS
    its = image_items(n)
    size = processor.image_processor.crop_size["height"]
    images = [W.render(sc, size) for _, sc, _, _ in its]
    plain = IMAGE_LAYOUTS["plain"]("")
    caps = greedy(model, processor, [plain] * len(its), images=images, max_new_tokens=72)
    forms = {"image": [f"{plain}{line(c)}" for _, _, c, _ in its],
             "own caption": [f"{plain}{cap.strip()}\n{line(c)}" for cap, (_, _, c, _) in zip(caps, its)],
             "image and description": [f"{plain}{W.describe(sc, 0)}\n{line(c)}" for _, sc, c, _ in its]}
    kinds, gold = [k for k, *_ in its], [g for *_, g in its]
    return {form: _by_kind(kinds, [first_word(o) for o in greedy(model, processor, prompts, images=images, max_new_tokens=2)],
                           gold, SCENE_KINDS) for form, prompts in forms.items()}

def image_claim_captions(n: int, seed: int = 0, image_size: int = 64):
    """`n` stage-1 records of training-part scenes whose text is 1-3 balanced verification lines about the image alone
    (human `<image>`, gpt `Q: red circle at top left? A: no. ...`): the verdicts asked of image tokens, as the corpus
    asks them of a description."""
    import datasets
    from mmkit import tasks
    rng, rows = random.Random(f"verify-image-captions-{seed}"), []
    while len(rows) < n:
        sc = W.sample_split_scene(rng, heldout=False, min_objects=2)
        if ls := _scene_lines(rng, sc): rows.append(dict(id=f"verify-image-{seed}-{len(rows):06d}", image=tasks._img(sc, image_size),
                                conversations=[{"from": "human", "value": "<image>"}, {"from": "gpt", "value": W.fix_articles(" ".join(ls))}],
                                task="caption", modality="vision"))
    return datasets.Dataset.from_list(rows, features=tasks._training_features())

def image_train(base, out, n: int, captions_share: float = 0.5, replay: float = 0.5, measure_n: int = 100) -> dict:
    """Continue the base's stage 1 (`mmkit.train.train_stage1`, its `stage1_lm` policy: language model and projector) for
    one epoch on `n` records of `image_claim_captions`, mixed with `captions_share` as many of its own stage-1 captions
    and `replay` as many blocks of its corpus and, for a base from `--train`, its verification documents; save it to
    `out` (with the source's `replay_texts.json`), and return the record with `measure_images` and the text verdicts before
    and after. The stage-0 and stage-1 gates are measured again (this continuation trains the language model too)."""
    import shutil, time
    from datasets import concatenate_datasets
    from mmkit import tasks
    from mmkit.config import atomic_write_json, read_json
    from mmkit.model import load_model, save_model
    from mmkit.train import MICROCOSM_STAGE1, REPLAY_TEXTS, gate0, gate1, gate_failures, train_stage1
    from pathlib import Path
    base, out = Path(resolve_base(base)), Path(out)
    model, processor = load_model(base)
    size = processor.image_processor.crop_size["height"]
    before = dict(images=measure_images(model, processor, measure_n), text=measure_model(model, processor, measure_n))
    info = read_json(base/"base.json")
    m = tasks.microcosm(seed=info.get("seed", 0), scale=info.get("scale", "default"))
    own = read_json(base/REPLAY_TEXTS) if (base/REPLAY_TEXTS).is_file() else []
    caps = concatenate_datasets([image_claim_captions(n, image_size=size),
                                 tasks.stage1_captions(seed=1, n=int(n * captions_share), image_size=size)]).shuffle(seed=0)
    texts = list(m["corpus"]) + own
    work = out.with_name(out.name + ".work"); shutil.rmtree(work, ignore_errors=True)
    t = time.time()
    model = train_stage1(model, processor, caps, work, replay_texts=texts, policy=MICROCOSM_STAGE1["policy"], lr=1e-3, epochs=1,
                         replay=replay, cells_first=0.0, text_before=0.0)
    secs = round(time.time() - t, 1)
    model.eval()
    after = dict(images=measure_images(model, processor, measure_n), text=measure_model(model, processor, measure_n))
    g1 = {k: v for k, v in gate1(model, processor).items() if not k.endswith("examples")}
    save_model(model, processor, out)
    if own: atomic_write_json(out/REPLAY_TEXTS, own)
    info["gates"].update(stage0=gate0(model, processor, tasks.stage0_corpus(seed=7919, n=400)), stage1=g1)   # both stages' models moved
    info["gate_failures"] = gate_failures(info["gates"])
    info["image_verification"] = rec = dict(from_base=base.name, records=n, captions_share=captions_share, replay=replay, seconds=secs,
                                            before=before, after=after)
    atomic_write_json(out/"base.json", info)
    shutil.rmtree(work, ignore_errors=True)
    return dict(rec, stage1_gates=g1)

def measure_model(model, processor, n: int = 200) -> dict:
    "Per kind: accuracy and `yes` share (%), greedy, the first word read; `scene` and `facts` average their kinds."
    its = items(n)
    said = [first_word(o) for o in greedy(model, processor, [p for _, p, _ in its], max_new_tokens=2)]
    res = _by_kind([k for k, _, _ in its], said, [g for _, _, g in its], SCENE_KINDS + FACT_KINDS)
    for group, ks in (("scene", SCENE_KINDS), ("facts", FACT_KINDS)):
        res[group] = round(sum(res[k]["accuracy"] for k in ks) / len(ks), 1)
    return res

def main():
    from mmkit.model import load_model
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoints", nargs="*")
    ap.add_argument("--n", type=int, default=200, help="items per kind")
    ap.add_argument("--train", type=int, metavar="STEPS", help="continue the base first, for STEPS steps (with --out)")
    ap.add_argument("--out", help="where the continued base goes")
    ap.add_argument("--base", default=None, help="the base to continue (default: the cached microcosm base)")
    ap.add_argument("--no-replay", action="store_true", help="keep no documents for stage 2 to replay")
    ap.add_argument("--images", action="store_true", help="ask the scene kinds of the image instead (`measure_images`)")
    ap.add_argument("--image-train", type=int, metavar="N", help="continue the base's stage 1 on N image-claim records (with --out)")
    a = ap.parse_args()
    if a.image_train:
        if not a.out: ap.error("--image-train needs --out")
        print(json.dumps(image_train(a.base, a.out, a.image_train)))
        return
    if a.train:
        if not a.out: ap.error("--train needs --out")
        rec = continue_base(a.base, a.out, lambda tok, n: lm_blocks(documents(int(a.train * 32 * 2.5)), tok, 128),
                            steps=a.train, name="verification_warmup", measure=lambda m, p: measure_model(m, p, a.n),
                            scheduler="warmup_stable_decay", replay_texts=None if a.no_replay else documents(REPLAY_DOCS, seed=1))
        g = rec.pop("gates")
        print(json.dumps(dict(rec, **{k: g[k] for k in ("presence_accuracy", "presence_after_mention", "knowledge_accuracy",
                                                       "lookup_accuracy", "repeat_ratio")})))
        return
    for ck in a.checkpoints or [resolve_base(None)]:
        f = measure_images if a.images else measure_model
        print(json.dumps(dict(checkpoint=str(ck), **f(*load_model(ck), a.n))), flush=True)


if __name__ == "__main__":
    main()
