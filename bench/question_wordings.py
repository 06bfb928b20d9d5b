"""Do more wordings of the scene questions in stage 2 carry language-only tuning's image reading to the held-out sets?

`lang_only` answers questions about an image in the wordings stage 2 taught it on text passages (the colour at a
named cell: 44 % against 18 % with a blank image, microcosm v2.5), but not the held-out sets' new wordings. This probe
rewrites half of the scene questions of the stage-2 pools (`scene_qa`, `scene_mc`, `image_qa`, the kinds of
`mmkit.tasks.Q`) into one of `EXTRA` more wordings per kind, none of them a held-out template
(`mmkit.tasks.heldout_phrases` is checked on every rewritten record), trains a recipe on them with the recipe's
settings (`mmkit.train.train_stage2`), and scores the held-out vision sets under log-likelihood with their images
and with blank ones, per skill, next to the same for the unchanged pools.

    python bench/question_wordings.py                  # lang_only, seed 0: rewritten pools vs. the default pools
    python bench/question_wordings.py --share 1.0 --recipe mlan
"""
import argparse, json, random, re, tempfile

from mmkit import data as mdata, tasks
from mmkit.evaluate import evaluate
from mmkit.model import load_model
from mmkit.train import train_stage2

EXTRA = {  # more wordings of each kind of scene question; placeholders as in tasks.Q
    "color_at": ["Which colour has the {pos} one?", "Say the color of what sits at the {pos}.", "At the {pos}, which color is there?",
                 "Give the color at the {pos}.", "What color shows at the {pos}?", "Tell me which color the {pos} shape is."],
    "shape_at": ["Which form sits at the {pos}?", "Say the shape of what is at the {pos}.", "At the {pos}, which shape is there?",
                 "Give the shape at the {pos}.", "What shape shows at the {pos}?", "Tell me which shape is at the {pos}."],
    "where": ["Which cell holds the {name}?", "Say where the {name} sits.", "The {name} is in which cell?",
              "Give the place of the {name}.", "Where does the {name} sit?", "Point out the cell of the {name}."],
    "count": ["How many objects can be seen?", "Say how many shapes there are.", "Give the number of objects.",
              "How many objects does it have?", "Count every shape.", "What is the total number of objects?"],
    "count_color": ["How many {color} shapes can be seen?", "Say how many objects are {color}.", "Give the number of {color} objects.",
                    "Count every {color} shape.", "How many of the objects are {color}?", "What is the total of {color} shapes?"],
    "size": ["Say the size of the {name}.", "Is the {name} large or small?", "Give the size of the {name}.",
             "What is the size of the {name}?", "How large is the {name}?", "The {name} is of which size?"],
}

def _patterns():
    "(kind, compiled template) for every `tasks.Q` wording, slots as named groups."
    out = []
    for kind, ts in tasks.Q.items():
        for t in ts:
            rx = re.escape(t)
            for slot in ("pos", "name", "color"): rx = rx.replace(re.escape("{" + slot + "}"), f"(?P<{slot}>[a-z ]+?)")
            out.append((kind, re.compile(rx)))
    return out

def rewrite(pools, share: float, seed: int = 0):
    "`pools` with `share` of the questions of a `tasks.Q` kind reworded into `EXTRA`; every record still free of held-out phrases."
    rng, pats = random.Random(f"wordings-{seed}"), _patterns()
    held = [tasks._phrase_regex(t) for t in tasks.heldout_phrases()]
    def one(conv):
        text = conv[0]["value"]
        for kind, rx in pats:
            m = rx.search(text)
            if m and rng.random() < share:
                text = text[:m.start()] + rng.choice(EXTRA[kind]).format(**m.groupdict()) + text[m.end():]
                break
        if any(h.search(text) for h in held): raise SystemExit(f"a rewritten record matches a held-out phrase: {text!r}")
        return dict(conversations=[dict(conv[0], value=text)] + conv[1:])
    return pools.map(one, input_columns=["conversations"], load_from_cache_file=False, desc="rewording")

def scores(checkpoint) -> dict:
    "Held-out vision log-likelihood with images and blank, per dataset and per skill (%)."
    model, processor = load_model(checkpoint)
    out = {}
    for blind in (False, True):
        met, _ = evaluate(model, processor, suites=tasks.VISION_SUITES, scorer="loglik", blind=blind, progress=False)
        key = "blank" if blind else "image"
        out[key] = dict(vision_avg=round(100 * met["vision_avg"], 1),
                        **{k: round(100 * v["acc"], 1) for k, v in met["datasets"].items()},
                        **{k: round(100 * v["acc"], 1) for k, v in met["skills"].items()})
    return out

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--recipe", default="lang_only")
    ap.add_argument("--share", type=float, default=0.5, help="share of the scene questions reworded")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--base", default=None, help="base folder (default: the cached microcosm base)")
    a = ap.parse_args()
    pools = mdata.microcosm_pools(seed=0, scale="default")
    new = rewrite(pools, a.share, a.seed)
    changed = sum(x != y for x, y in zip(pools["conversations"], new["conversations"]))
    print(f"reworded {changed} of {len(pools)} records; e.g.", next(y[0]["value"] for x, y in zip(pools["conversations"], new["conversations"]) if x != y))
    row = dict(recipe=a.recipe, seed=a.seed, share=a.share, reworded=changed)
    for name, p in (("default pools", pools), ("reworded pools", new)):
        with tempfile.TemporaryDirectory() as out:
            res = train_stage2(a.recipe, out, base=a.base, pools=p, seed=a.seed)
            row[name] = dict(final_answer_loss=res["final_answer_loss"], **scores(res["checkpoint"]))
    print(json.dumps(row))


if __name__ == "__main__":
    main()
