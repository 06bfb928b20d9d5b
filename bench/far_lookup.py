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
import argparse, json, random, shutil, time
from pathlib import Path

from datasets import Dataset, concatenate_datasets
from transformers import default_data_collator

from mmkit import tasks, world as W
from mmkit.config import atomic_write_json
from mmkit.model import apply_policy, load_model, save_model
from mmkit.train import gate0, greedy, lm_blocks, resolve_base, run_trainer

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
    base = Path(resolve_base(a.base)); out = Path(a.out)
    model, processor = load_model(base); tok = processor.tokenizer
    fillers = sorted({0, a.max_filler // 2, a.max_filler, a.max_filler + 2})
    before = accuracy(model, processor, fillers)
    print("before:", before, flush=True)
    bs, block = 32, 128
    m = tasks.microcosm(seed=0, scale="default")
    quiz = lm_blocks(documents(int(a.steps * bs * 1.2), a.max_filler, cues=CUES if a.cues else ("A:",)), tok, block).shuffle(seed=0)
    n_quiz = min(len(quiz), int(a.steps * bs * (1 - a.corpus_share)))
    ds = quiz.select(range(n_quiz))
    if a.corpus_share > 0:
        corp = lm_blocks(m["corpus"], tok, block).shuffle(seed=0)
        ds = concatenate_datasets([ds, corp.select(range(min(len(corp), a.steps * bs - n_quiz)))]).shuffle(seed=0)
    apply_policy(model, "stage0")
    t = time.time()
    work = out.with_name(out.name + ".work"); shutil.rmtree(work, ignore_errors=True)
    run_trainer(model, ds, default_data_collator, work, stage="far look-up", group=None, lr=a.lr, epochs=1, batch_size=bs,
                warmup_ratio=0.06, scheduler=a.scheduler)
    secs = round(time.time() - t, 1)
    after = accuracy(model, processor, fillers)
    print("after:", after, flush=True)
    g = gate0(model, processor, [t for t in tasks.stage0_corpus(seed=7919, n=400)])
    save_model(model, processor, out)
    info = json.loads((base/"base.json").read_text()); info["gates"]["stage0"] = g
    info["far_lookup"] = dict(from_base=base.name, gates_remeasured="stage0 only (vision and stage 1: the source base's)", steps=a.steps,
                              lr=a.lr, max_filler=a.max_filler, cues=a.cues, scheduler=a.scheduler, corpus_share=a.corpus_share, seconds=secs, quiz_before=before, quiz_after=after)
    atomic_write_json(out/"base.json", info)
    shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(dict(info["far_lookup"], **{k: g[k] for k in ("knowledge_accuracy", "lookup_accuracy", "repeat_ratio", "heldout_perplexity")})))


if __name__ == "__main__":
    main()
