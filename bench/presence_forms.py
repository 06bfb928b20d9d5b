"""Does a model tell whether a described scene holds an object, and does it still when the object is named elsewhere?

In microcosm v2.5 (and before) the corpus's presence quiz lines (`Q: any red circle? A: no.`) asked about a random colour and
shape, so nine in ten said `no`, and the base answered `no` to everything (50 % on balanced items). A stage-2 presence
question (`Does the scene contain a red circle?`) names the object itself, so a model that answers from "is the
name anywhere before?" says `yes` to everything there. This script asks `--n` balanced items on held-out scenes in
five forms and prints the accuracy and the share of `yes` per form, one JSON line per checkpoint (a base folder or a
run's checkpoint):

- `quiz`: the description, then `Q: any red circle? A:` (the corpus's line; the base's `presence` gate);
- `quiz after the system prompt`: the same after the chat template's system prompt and `USER: Here is a scene.`;
- `quiz after a mention`: `A question names the red circle.` between them (a sentence no training text uses);
- `chat question, quiz in the answer`: the stage-2 question in the chat template, then the quiz line after the
  pre-filled answer lead: the question's own mention of the object is the trap;
- `chat question`: the stage-2 question and the answer lead alone, as the evaluation asks it.

    python bench/presence_forms.py [CHECKPOINT ...]   # default: the cached microcosm base

`--train STEPS --out DIR` first continues the base (`mmkit.train.continue_base`) on fresh presence documents (a
description, then one to three balanced quiz lines `Q: any red circle? A: yes.`), half and half with its stage-0
corpus, and measures the forms before and after; `--pool N` draws only N documents and repeats them, as a stage-0
corpus repeats its documents every epoch; `--mentions S` puts a sentence naming the asked object before a share S of
the quiz lines (`Look for the red circle.`), so that a mention alone is not taken for presence.

    python bench/presence_forms.py --train 1200 --out /tmp/presence-base [--pool 2400] [--mentions 0.5] [--base BASEDIR]
"""
import argparse, json, random

from mmkit import world as W
from mmkit.model import TEMPLATES, load_model
from mmkit.train import continue_base, greedy, lm_blocks, presence_items, resolve_base

SCENE_Q = "Does the scene contain a {k}? Reply yes or no."        # tasks.SCENE_YN["exists"][0] + one of tasks.YN_SUFFIX
LEAD = 'ASSISTANT: The best answer is "'

def forms() -> dict:
    "Form name -> function (description, object) -> prompt."
    chat = lambda d, k: f"{TEMPLATES['v1'].system}USER: Here is a scene. {d}\n{SCENE_Q.format(k=k)} {LEAD}"
    return {"quiz": lambda d, k: f"{d}\nQ: any {k}? A:",
            "quiz after the system prompt": lambda d, k: f"{TEMPLATES['v1'].system}USER: Here is a scene. {d}\nQ: any {k}? A:",
            "quiz after a mention": lambda d, k: f"{d}\nA question names the {k}. Q: any {k}? A:",
            "chat question, quiz in the answer": lambda d, k: f"{chat(d, k)}any {k}? A:",
            "chat question": chat}

MENTIONS = ["Look for the {k}.", "Think of the {k}.", "This is about the {k}.", "Someone asks about the {k}.", "Check the {k}."]

def documents(n: int, pool: int | None = None, seed: int = 0, mentions: float = 0.0) -> list[str]:
    """`n` presence documents on training scenes: a description in a random phrasing, then 1-3 balanced quiz lines;
    with `pool`, `pool` of them repeated; with `mentions`, that share of the lines after a sentence naming their object
    (`MENTIONS`, none of them the forms' own `A question names the ...`)."""
    rng, out = random.Random(f"presence-docs-{seed}"), []
    for _ in range(pool or n):
        sc = W.sample_split_scene(rng, heldout=False)
        present, lines = sorted({(o.color, o.shape) for o in sc.objects}), []
        for _ in range(rng.randint(1, 3)):
            there = rng.random() < 0.5
            co, sh = rng.choice(present) if there else rng.choice([(c, s) for c in W.COLORS for s in W.SHAPES if (c, s) not in present])
            said = f"{rng.choice(MENTIONS).format(k=f'{co} {sh}')} " if mentions and rng.random() < mentions else ""
            lines.append(f"{said}Q: any {co} {sh}? A: {'yes' if there else 'no'}.")
        out.append(f"{W.describe(sc, rng.randrange(len(W.PHRASINGS)))}\n" + " ".join(lines))
    return (out * -(-n // len(out)))[:n]

def measure(checkpoint, n: int = 300) -> dict:
    "Accuracy and `yes` share (%) per form, for the model at `checkpoint`."
    return measure_model(*load_model(checkpoint), n)

def measure_model(model, processor, n: int = 300) -> dict:
    "The same for a loaded model: `n` items of `mmkit.train.presence_items` (seed 5), greedy, the first word read."
    its, out = presence_items(n, seed=5), {}
    for name, f in forms().items():
        outs = greedy(model, processor, [W.fix_articles(f(d, k)) for d, k, _ in its], max_new_tokens=3)
        said = [o.strip(' "').split(" ")[0].strip(".\"") for o in outs]
        out[name] = dict(accuracy=round(100 * sum(s == g for s, (_, _, g) in zip(said, its)) / n, 1),
                         yes=round(100 * said.count("yes") / n, 1))
    return out

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoints", nargs="*")
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--train", type=int, metavar="STEPS", help="continue the base first, for STEPS steps (with --out)")
    ap.add_argument("--out", help="where the continued base goes")
    ap.add_argument("--pool", type=int, default=None, help="distinct presence documents (default: fresh ones throughout)")
    ap.add_argument("--base", default=None, help="the base to continue (default: the cached microcosm base)")
    ap.add_argument("--mentions", type=float, default=0.0, help="share of quiz lines after a sentence naming their object")
    a = ap.parse_args()
    if a.train:
        if not a.out: ap.error("--train needs --out")
        rec = continue_base(a.base, a.out, lambda tok, n: lm_blocks(documents(int(a.train * 32 * 1.5), a.pool, mentions=a.mentions), tok, 128),
                            steps=a.train, name="presence_warmup", measure=lambda m, p: measure_model(m, p, a.n),
                            scheduler="warmup_stable_decay", settings=dict(pool=a.pool, mentions=a.mentions))
        g = rec.pop("gates")
        print(json.dumps(dict(rec, **{k: g[k] for k in ("presence_accuracy", "presence_after_mention", "knowledge_accuracy",
                                                       "lookup_accuracy", "repeat_ratio")})))
        return
    for ck in a.checkpoints or [resolve_base(None)]:
        print(json.dumps(dict(checkpoint=str(ck), **measure(ck, a.n))), flush=True)


if __name__ == "__main__":
    main()
