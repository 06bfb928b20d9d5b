"""Does more drilling of the look-up on a base that already binds some scenes close the rest? Continue the language
model of a base on the corpus's look-up drills mixed with its stage-0 corpus (`mmkit.train.continue_base`), and
measure the look-up before and after, split by whether the scene's cells share a row or column word.

The drills (`mmkit.train.bind_blocks`): `--drills any` (every scene), `distinct` (only scenes whose cells share no
word: one word finds the cell) or `shared` (only scenes whose cells share one: `top left` beside `top right`, where
the look-up must match both words). `--corpus-share` of the blocks are the base's own stage-0 corpus. The measure is
`binding_drills.lookup_by_order` on `--items` unseen scenes of 2–4 objects, each asked twice (cell first, object
first), and the look-up gate; the continued base's stage-0 gates are measured again and saved with it in `--out`.

    MMKIT_PRECISION=fp32 python bench/binding_continue.py --base .cache/mmkit/base-small-default-270143744b1a \\
        [--drills any|distinct|shared] [--steps 1500] [--corpus-share 0.5] [--items 200] [--out DIR] [--json FILE]
"""
import argparse, json
from pathlib import Path
from binding_drills import lookup_by_order
from mmkit.config import MMKitError, atomic_write_json, cache_dir
from mmkit.train import BIND_CELLS, bind_blocks, continue_base, lookup_gate, precision_used

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", default=None, help="the base to continue (default: the default microcosm base)")
    ap.add_argument("--drills", choices=BIND_CELLS, default="any")
    ap.add_argument("--steps", type=int, default=1500); ap.add_argument("--corpus-share", type=float, default=0.5)
    ap.add_argument("--lr", type=float, default=1e-3); ap.add_argument("--seed", type=int, default=5, help="the drills' stream")
    ap.add_argument("--items", type=int, default=200, help="unseen scenes for the split look-up (each asked twice)")
    ap.add_argument("--out", default=None, help="where the continued base goes (default: cache_dir()/probe-binding-…)")
    ap.add_argument("--json", default=None, help="write the settings and the measures here")
    a = ap.parse_args(argv)
    if a.items < 4: raise SystemExit(f"binding_continue: --items must be >= 4, got {a.items}")
    out = Path(a.out) if a.out else cache_dir()/f"probe-binding-{a.drills}-{a.steps}-{a.corpus_share}-s{a.seed}"
    measure = lambda m, p: dict(gate={k: v for k, v in lookup_gate(m, p).items() if k in ("lookup_accuracy", "lookup_accuracy_several")},
                                split=lookup_by_order(m, p, n=a.items))
    blocks = lambda tok, n: bind_blocks(tok, n, 128, seed=a.seed, cells=a.drills)
    try:
        r = continue_base(a.base, out, blocks, steps=a.steps, name="binding_continue", measure=measure, corpus_share=a.corpus_share,
                          lr=a.lr, settings=dict(drills=a.drills, seed=a.seed))
    except MMKitError as e: raise SystemExit(f"binding_continue: {e}")
    g = r["gates"]
    res = dict(settings={k: v for k, v in vars(a).items() if k != "json"} | dict(precision=precision_used()), out=str(out),
               before=r["before"], after=r["after"], seconds=r["seconds"], trained_steps=r["trained_steps"],
               gates={k: g.get(k) for k in ("lookup_accuracy", "knowledge_accuracy", "lookup_pick_accuracy", "presence_accuracy", "repeat_ratio")})
    print(f"[binding] {a.drills} drills, {a.steps} steps ({a.corpus_share:.0%} corpus), {r['seconds']:.0f} s: "
          f"look-up {r['before']['gate']['lookup_accuracy']:.0%} -> {r['after']['gate']['lookup_accuracy']:.0%}; "
          f"no shared word {r['before']['split']['distinct']:.0%} -> {r['after']['split']['distinct']:.0%}, "
          f"a shared word {r['before']['split']['shared']:.0%} -> {r['after']['split']['shared']:.0%}; knowledge {g['knowledge_accuracy']:.1%}")
    if a.json: atomic_write_json(Path(a.json), res)
    return res

if __name__ == "__main__":
    main()
