"""Language-model shapes side by side: mmkit's stage-2 steady state on random models of two or more shapes, interleaved.

`bench/train_throughput.py --lm` measures one shape per run; this VM's speed drifts between runs by more than some of
the differences worth knowing (two heads against four: docs/benchmarks.md). Here every shape trains in each
round, the order alternating from round to round, each on its own random model (seed 0; the default vision tower and
tokenizer) and on the same examples of the `mlan` mix, each round against the bf16 peak measured just before it. The
first shape is the reference: every other shape's tokens/s is divided by its tokens/s in the same round.

    python bench/shapes.py --lm 256,688,4,4 256,688,4,2 [--rounds 4] [--examples 768] [--batch-size 16] [--json FILE]
"""
import argparse, json, math, os, statistics, sys
from pathlib import Path
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch
from train_throughput import PEAK_DTYPE, PEAK_NAME, default_tokenizer, lm_shape, matmul_peak, other_shape, side   # the train bench's pieces
from mmkit import data as mdata
from mmkit.config import atomic_write_json

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lm", type=lm_shape, nargs="+", required=True, metavar="HIDDEN,MLP,LAYERS,HEADS",
                    help="two or more language-model shapes; the first is the reference")
    ap.add_argument("--rounds", type=int, default=4); ap.add_argument("--examples", type=int, default=768)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--warmup", type=int, default=None, help="optimizer steps before the clock starts (default: one epoch)")
    ap.add_argument("--steps", type=int, default=None, help="optimizer steps in all (default: warm-up + 36)")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    if len(a.lm) < 2 or len(set(a.lm)) != len(a.lm): ap.error("--lm wants two or more different shapes")
    if a.warmup is None: a.warmup = math.ceil(a.examples / a.batch_size)
    if a.steps is None: a.steps = a.warmup + 36
    if not 0 <= a.warmup < a.steps or a.rounds < 1: ap.error("need 0 <= --warmup < --steps and --rounds >= 1")
    tok = default_tokenizer()
    names = [",".join(map(str, s)) for s in a.lm]
    built = {n: other_shape(tok, *s) for n, s in zip(names, a.lm)}
    models, processor = {n: m for n, (m, _) in built.items()}, built[names[0]][1]   # one processor: the same tower for all
    ds = mdata.encode(mdata.resolve_recipe("mlan", mdata.microcosm_pools(scale="default"), budget=a.examples, seed=0),
                      processor, template="v1")
    rounds = []
    for i in range(a.rounds):
        peak = matmul_peak(PEAK_DTYPE)
        order = names if i % 2 == 0 else names[::-1]
        res = {n: side("mmkit", models[n], ds, processor, a, peak) for n in order}
        rounds.append(dict(peak_bf16_gflops=round(peak / 1e9), order=order, sides=res))
        print(f"round {i + 1}/{a.rounds} (peak {peak / 1e9:.0f} GFLOP/s): " + ", ".join(
            f"{n} {res[n]['useful_tokens_per_s']:.0f} tok/s {res[n]['frac_bf16_peak']:.1%}" for n in order), flush=True)
    print(f"{'HIDDEN,MLP,LAYERS,HEADS':>24}{'tok/s, median round':>21}{f'of {PEAK_NAME} peak':>14}{'to the first, per round':>40}")
    out = dict(peak_dtype=PEAK_NAME, examples=a.examples, batch_size=a.batch_size, warmup=a.warmup, steps=a.steps, shapes={}, rounds=rounds)
    for n in names:
        tps = [r["sides"][n]["useful_tokens_per_s"] for r in rounds]
        frac = [r["sides"][n]["frac_bf16_peak"] for r in rounds]
        rel = [r["sides"][n]["useful_tokens_per_s"] / r["sides"][names[0]]["useful_tokens_per_s"] for r in rounds]
        out["shapes"][n] = dict(useful_tokens_per_s=statistics.median_low(tps), frac_bf16_peak=statistics.median_low(frac),
                                to_first=[round(x, 3) for x in rel], to_first_median=round(statistics.median(rel), 3))
        print(f"{n:>24}{statistics.median_low(tps):>21.0f}{statistics.median_low(frac):>14.1%}"
              f"{' '.join(f'{x:.2f}x' for x in rel):>40}")
    print(json.dumps(out["shapes"]))
    if a.json: atomic_write_json(a.json, out)

if __name__ == "__main__":
    main()
