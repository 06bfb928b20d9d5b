"""Does binding (naming the object in a given cell of a described scene) form from the corpus's own look-up drills, and
what decides when? A curve of the look-up gate over steps of drills only, from the base's own copying warm-up.

The default base's look-up gate sits on a knife edge: the v2.5 schedule built in bf16 passes it (94 %), the same
schedule in fp32 misses it (59 %; docs/results.md). This probe isolates the step where binding forms (or does not):

1. the tokenizer and model the default base starts from (`mmkit.train.base_tokenizer`, shared with the base; a fresh
   `build_tiny_llava` of `--size`, seed `--seed`);
2. the base's copying warm-up (`mmkit.train.copy_warmup` with stage 0's settings, `COPY_STEPS[size]` steps),
   cached under `cache_dir()/bench-binding/` per size, seed and precision, so several drill arms share one start;
3. `--steps` steps of blocks made only of the corpus's `bind` documents (a training scene of 2-4 objects in one of
   the six phrasings, then each object looked up once: `mmkit.train.bind_blocks`, which stage 0's optional look-up
   warm-up `bind_steps` also drills), at a flat `--lr` after a `--warmup`-step ramp, with `--weight-decay`;
4. every `--every` steps the base's look-up gate (`mmkit.train.lookup_gate`: 100 unseen scenes, `The <cell> cell
   holds`; a random pick among the scene's objects gets `lookup_any_object`, 56.75 %) and its pick-one form, and the
   same question on scenes of two or more objects described cell first (`In the top left there is …`: a forward
   look-up, key then value) and object first (`a large red circle at top left`: the value before its key); the
   random-token look-up of `bench/copying.py` formed forward first (99 %) and reversed later (18 % after 1,000
   steps, 99 % after 2,250) (`lookup_by_order`).

`--cell-first-steps S` trains the first S steps on drills described cell first only (the forward look-up first,
then every phrasing). `--distinct` drills only scenes whose cells share no row or column word (`top left` and
`bottom right`, not `top left` and `top right`), where one word of a cell's name finds it: is a two-word key what
the look-up cannot match? The curve reports the look-up on such scenes (`distinct`) and on the others (`shared`).
`--distinct-steps S` drills such scenes for the first S steps, then every scene (a curriculum). Since no four cells
and few triples of cells share no word, `--distinct` drills are mostly two-object scenes: `--max-objects 2` drills
two-object scenes of both kinds, to tell "one-word keys" from "fewer objects".

The arithmetic is the `precision` setting's (`MMKIT_PRECISION=fp32` / `auto`): run the same arm under both to compare.

    MMKIT_PRECISION=fp32 python bench/binding_drills.py [--size small] [--seed 0] [--steps 2500] [--every 250]
                                                         [--lr 1e-3] [--warmup 0] [--weight-decay 0] [--json FILE]
                                                         [--cell-first-steps S | --distinct-steps S] [--distinct]
                                                         [--max-objects N]
"""
import argparse, json, random, shutil, time
from pathlib import Path
from transformers import TrainerCallback, default_data_collator
from mmkit import tasks
from mmkit.config import MMKitError, atomic_write_json, cache_dir
from mmkit.model import apply_policy, build_tiny_llava, load_model, save_model
from mmkit.train import (COPY_STEPS, base_tokenizer, bind_blocks, copy_warmup, distinct_words, lookup_gate,
                         precision_used, repeat_gate, run_trainer, stage_args)

def copied_start(size: str, scale: str, seed: int, copy_steps: int):
    "A fresh model of `size` after the base's copying warm-up (cached per size, scale, seed, steps and precision)."
    tok = base_tokenizer(tasks.microcosm(seed=seed, scale=scale), size, scale)
    ck = cache_dir()/"bench-binding"/f"copy-{size}-{scale}-s{seed}-{copy_steps}-{precision_used().split()[0]}"
    if (ck/"model"/"config.json").is_file(): return load_model(ck/"model")
    model, processor = build_tiny_llava(tok, size, image_size=64, patch_size=8, seed=seed)
    a = stage_args("stage0", seed=seed); apply_policy(model, a["policy"])         # as `train_stage0` starts
    copy_warmup(model, tok, ck, copy_steps, **{**a, "lr": a["copy_lr"]})
    save_model(model, processor, ck/"model")
    return model, processor

CELL_FIRST = (2, 5)   # the `world.PHRASINGS` that name a cell before its object (`In the top left there is …`, `At the top left: …`)

def lookup_by_order(model, processor, n: int = 60, seed: int = 4321) -> dict:
    """The look-up gate's question (`The <cell> cell holds`) on `n` unseen scenes of two or more objects described
    cell first (`CELL_FIRST`) and the same scenes described object first: the two accuracies, and a random pick's;
    and, over both, the accuracy on scenes whose cells share no row or column word (`distinct`) and on the others."""
    from mmkit import world as W
    from mmkit.train import _after_article, greedy
    rng, items = random.Random(seed), []
    for _ in range(n):
        sc = W.sample_split_scene(rng, heldout=True, min_objects=2); o = rng.choice(sc.objects)
        items.append((sc, o, rng.choice(CELL_FIRST), rng.choice([i for i in range(len(W.PHRASINGS)) if i not in CELL_FIRST])))
    acc, hits = {}, []
    for name, k in (("cell_first", 2), ("object_first", 3)):
        outs = greedy(model, processor, [f"{W.describe(it[0], it[k])} The {it[0].pos(it[1])} cell holds" for it in items], max_new_tokens=5)
        hits += [(_after_article(x).startswith(it[1].name), distinct_words((o.row, o.col) for o in it[0].objects)) for x, it in zip(outs, items)]
        acc[name] = round(sum(h for h, _ in hits[-n:]) / n, 4)
    share = lambda xs: round(sum(xs) / len(xs), 4) if xs else None
    return dict(**acc, random_pick=round(sum(1 / len(it[0].objects) for it in items) / n, 4),
                distinct=share([h for h, d in hits if d]), shared=share([h for h, d in hits if not d]))

class Curve(TrainerCallback):
    "The look-up gate every `every` steps, printed and kept."
    def __init__(self, processor, every: int, n: int, t0: float):
        self.processor, self.every, self.n, self.t0, self.rows, self.offset = processor, every, n, t0, [], 0
    def on_step_end(self, args, state, control, model=None, **kw):
        if state.global_step % self.every: return
        g = lookup_gate(model, self.processor, n=self.n); o = lookup_by_order(model, self.processor, n=max(4, self.n * 3 // 5)); model.train()
        row = dict(step=state.global_step + self.offset, seconds=round(time.time() - self.t0), lookup=g["lookup_accuracy"],
                   several=g["lookup_accuracy_several"], first_named=g["lookup_first_named"], pick=g["lookup_pick_accuracy"],
                   **{f"order_{k}": v for k, v in o.items()})
        self.rows.append(row); print(json.dumps(row), flush=True)

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="small"); ap.add_argument("--scale", default="default"); ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=2500); ap.add_argument("--every", type=int, default=250)
    ap.add_argument("--lr", type=float, default=1e-3); ap.add_argument("--warmup", type=int, default=0)
    ap.add_argument("--weight-decay", type=float, default=0.0); ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--copy-steps", type=int, default=None, help="the copying warm-up's steps (default: COPY_STEPS[size])")
    ap.add_argument("--items", type=int, default=100, help="look-up gate items per measurement (the gate's own 100)")
    ap.add_argument("--distinct", action="store_true", help="drill only scenes whose cells share no row or column word")
    ap.add_argument("--distinct-steps", type=int, default=0,
                    help="train the first S of --steps on scenes whose cells share no word, then every scene (a curriculum)")
    ap.add_argument("--max-objects", type=int, default=4, help="drill only scenes of at most this many objects (2-4)")
    ap.add_argument("--cell-first-steps", type=int, default=0,
                    help="train the first S of --steps on drills described cell first only (a forward look-up first)")
    ap.add_argument("--json", default=None, help="write the settings and the curve here")
    a = ap.parse_args(argv)
    if a.steps < 1 or a.every < 1 or not 0 <= a.warmup < a.steps or not 0 <= a.cell_first_steps < a.steps or not 0 <= a.distinct_steps < a.steps:
        raise SystemExit(f"binding_drills: need --steps >= 1, --every >= 1, 0 <= --warmup < --steps, 0 <= --cell-first-steps "
                         f"< --steps and 0 <= --distinct-steps < --steps (got {a.steps}, {a.every}, {a.warmup}, {a.cell_first_steps}, "
                         f"{a.distinct_steps})")
    if a.cell_first_steps and a.distinct_steps: raise SystemExit("binding_drills: --cell-first-steps and --distinct-steps are two curricula; give one")
    if not 2 <= a.max_objects <= 4: raise SystemExit(f"binding_drills: --max-objects must be 2, 3 or 4 (a bind scene has 2-4 objects), got {a.max_objects}")
    copy_steps = a.copy_steps if a.copy_steps is not None else COPY_STEPS.get(a.size, 0)
    t0 = time.time()
    try: model, processor = copied_start(a.size, a.scale, a.seed, copy_steps)
    except MMKitError as e: raise SystemExit(f"binding_drills: {e}")
    print(f"[binding] {precision_used()}; after the copying warm-up ({copy_steps} steps): {repeat_gate(model, processor.tokenizer)}", flush=True)
    curve = Curve(processor, a.every, a.items, t0)
    work = cache_dir()/"bench-binding"/"drills"
    cells = "distinct" if a.distinct else "any"
    phases = ([("cell-first drills", a.cell_first_steps, dict(only_cell_first=True, cells=cells))] if a.cell_first_steps else []) + \
             ([("distinct-word drills", a.distinct_steps, dict(cells="distinct"))] if a.distinct_steps else []) + \
             [("bind drills", a.steps - a.cell_first_steps - a.distinct_steps, dict(cells=cells))]
    for i, (stage, steps, only) in enumerate(phases):          # one flat lr across phases; the ramp only at the start
        ds = bind_blocks(processor.tokenizer, steps * a.batch_size, 128, a.seed + 1000 * i, max_objects=a.max_objects, **only)
        run_trainer(model, ds, default_data_collator, work/stage.split()[0], stage=stage, group=None, lr=a.lr, epochs=1,
                    batch_size=a.batch_size, max_steps=steps, warmup_ratio=a.warmup / steps if i == 0 else 0.0,
                    scheduler="constant_with_warmup", weight_decay=a.weight_decay, seed=a.seed, resume=False, save_steps=steps,
                    callbacks=[curve])
        curve.offset += steps
    shutil.rmtree(work, ignore_errors=True)                  # the drilled model is not kept: the curve is the result
    out = dict(settings={k: v for k, v in vars(a).items() if k != "json"} | dict(copy_steps=copy_steps, precision=precision_used()),
               curve=curve.rows, best=max((r["lookup"] for r in curve.rows), default=None), seconds=round(time.time() - t0))
    print(f"[binding] best look-up {out['best']} over {len(curve.rows)} measurements, {out['seconds']} s")
    if a.json: atomic_write_json(Path(a.json), out)
    return out

if __name__ == "__main__":
    main()
