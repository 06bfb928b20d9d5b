"""Can a microcosm base learn to carry a look-up question across the tokens between it and its answer?

The base answers the corpus's quiz line `Q: shape at top left? A:` from a description right before it 95 % of the
time (microcosm v2.5), and `lang_only` still does after stage 2 (82.5 %), yet asked in the chat template,
`Which shape is in the top left? Answer briefly. ASSISTANT: The best answer is "`, it gets 20 %: there the cell sits
ten or more tokens before the answer. This probe continues a base's language model on quiz documents whose questions
are separated from their `A:` by 0 to `--max-filler` neutral sentences (none of them a stage-2 or held-out phrase),
half and half with its stage-0 corpus, then reports the quiz accuracy at each filler length before and after, the
look-up and knowledge gates after, and saves the continued base (with its base.json) to `--out` for
`mmkit train --base OUT`.

    python bench/far_lookup.py --steps 1200 --out /tmp/far-base [--base BASEDIR] [--max-filler 4] [--cues]
                               [--scheduler warmup_stable_decay]
"""
import argparse, json, random

from mmkit import world as W
from mmkit.train import continue_base, greedy, lm_blocks

FILLER = ["Look at it again.", "Take a moment.", "Think it over.", "Read the lines once more.", "The reply comes next.",
          "Here it is.", "Then comes the reply.", "Wait a little.", "Go over it slowly.", "Now the reply."]
ASK = {"shape": ("shape at {pos}?", lambda o: o.shape), "colour": ("colour at {pos}?", lambda o: o.color)}
CUES = ["A:", "Answer:", "Reply:", "It is", "That is:", "The reply is", "So, it is"]   # `--cues`: answer openers besides `A:`

def question(rng, sc, n_filler: int, cues=("A:",)):
    "One quiz line about one object of `sc`: (text up to the answer cue, one of `cues`; answer)."
    o = rng.choice(sc.objects); kind = rng.choice(list(ASK))
    q, get = ASK[kind]
    filler = " ".join(rng.choice(FILLER) for _ in range(n_filler))
    return f"Q: {q.format(pos=sc.pos(o))} {filler + ' ' if filler else ''}{rng.choice(cues)}", get(o)

def documents(n: int, max_filler: int, seed: int = 0, cues=("A:",)) -> list[str]:
    "`n` quiz documents of training scenes: a description in a random phrasing, then 1-3 quiz lines with fillers."
    rng, out = random.Random(f"far-lookup-{seed}"), []
    for _ in range(n):
        sc = W.sample_split_scene(rng, heldout=False)
        lines = []
        for _ in range(rng.randint(1, 3)):
            q, a = question(rng, sc, rng.randint(0, max_filler), cues)
            lines.append(f"{q} {a}.")
        out.append(f"{W.describe(sc, rng.randrange(len(W.PHRASINGS)))} " + " ".join(lines))
    return out

def accuracy(model, processor, fillers, n: int = 200, seed: int = 999) -> dict:
    "Quiz accuracy (%) on held-out scenes with exactly k filler sentences, for each k in `fillers`."
    out = {}
    for k in fillers:
        rng = random.Random(f"far-eval-{seed}-{k}"); prompts, golds = [], []
        for _ in range(n):
            sc = W.sample_split_scene(rng, heldout=True)
            q, a = question(rng, sc, k)
            prompts.append(f"{W.describe(sc, rng.randrange(len(W.PHRASINGS)))} {q}"); golds.append(a)
        outs = greedy(model, processor, prompts, max_new_tokens=3)
        out[f"{k} filler"] = round(100 * sum(o.startswith(g) for o, g in zip(outs, golds)) / n, 1)
    return out

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", default=None)
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=1200)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--max-filler", type=int, default=4)
    ap.add_argument("--corpus-share", type=float, default=0.5)
    ap.add_argument("--cues", action="store_true", help="vary the answer cue (`CUES`) instead of always `A:`")
    ap.add_argument("--scheduler", default="constant_with_warmup", help="e.g. warmup_stable_decay (the lr decays to 0 over the last 15 %%)")
    a = ap.parse_args()
    fillers = sorted({0, a.max_filler // 2, a.max_filler, a.max_filler + 2})
    cues = CUES if a.cues else ("A:",)
    rec = continue_base(a.base, a.out, lambda tok, n: lm_blocks(documents(int(a.steps * 32 * 1.2), a.max_filler, cues=cues), tok, 128),
                        steps=a.steps, name="far_lookup", measure=lambda m, p: accuracy(m, p, fillers), corpus_share=a.corpus_share,
                        lr=a.lr, scheduler=a.scheduler, settings=dict(max_filler=a.max_filler, cues=a.cues))
    g = rec.pop("gates")
    print(json.dumps(dict(rec, **{k: g[k] for k in ("knowledge_accuracy", "lookup_accuracy", "repeat_ratio", "heldout_perplexity")})))

if __name__ == "__main__":
    main()
