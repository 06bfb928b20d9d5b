"""Do stage-2 answers that first restate the look-up in the base's own reading form let the model read its context?

The microcosm base reads a scene in one form: `The <cell> cell holds` completes with the object there (look-up gate
94 %), but asked as a stage-2 question (`Which shape is in the bottom left?`, answer pre-filled with
`The best answer is "`) the shape at a cell is right 7-33 % of the time after `lang_only` (microcosm v2.5, 3 seeds):
the question puts the cell ten or more tokens before the answer, and the 2-layer model does not carry it there. This
probe rewrites the `scene_qa` answers of the kinds that ask about one object (colour or shape at a cell, size of a named
object) to restate it first, in the captions' own sentences:

    The top left cell holds an orange cross. The best answer is "orange".

It trains a recipe on those pools and on the unchanged pools (`mmkit.train.train_stage2` with `pools=`, so neither arm
mixes in stage-0 text), then asks the fresh `scene_qa` and `image_qa` control items two ways: with the answer lead
pre-filled (the evaluation protocol) and with the assistant turn left open, reading the first `best answer is "..."`
the model writes. `image_qa` is also asked with the image removed. Accuracy per question kind (%).

    python bench/restated_answers.py                       # lang_only, seed 0
    python bench/restated_answers.py --seeds 0 1 2
    python bench/restated_answers.py --seeds 0 1 2 --style quoted   # inside the quotes: "the top left cell holds an
                                                                     # orange cross, so orange" (the part after `, so ` is read)
    python bench/restated_answers.py --seeds 0 1 2 --style named    # "…, so its color is orange"
    python bench/restated_answers.py --lookup BASE_OR_CHECKPOINT ...   # the look-up form alone, in three contexts
"""
import argparse, collections, json, re, tempfile

import datasets

from mmkit import data as mdata, tasks, world as W
from mmkit.evaluate import control_suites, normalize_answer
from mmkit.model import generation_prompt, load_model
from mmkit.train import greedy, train_stage2

STYLES = ("sentence", "quoted", "named")

def restated_pools(seed: int = 0, style: str = "sentence"):
    """The stage-2 pools of world seed `seed` with each one-object `scene_qa` answer restating that object first; the
    generator's own question function is wrapped (it still draws the same questions) to learn which object it asked about.
    `style` "sentence": `The top left cell holds an orange cross. The best answer is "orange".`; "quoted": the
    restatement inside the quotes, so that it follows the answer lead the evaluation pre-fills:
    `The best answer is "the top left cell holds an orange cross, so orange".`; "named": the same, naming the attribute
    asked before giving it (`…, so its color is orange"`)."""
    if style not in STYLES: raise SystemExit(f"style must be one of {STYLES}, got {style!r}")
    asked, orig = [], tasks._scene_question
    def wrapped(rng, sc, kinds=("color_at", "shape_at", "where", "count", "count_color", "size")):
        q, a = orig(rng, sc, kinds)
        at = next((o for o in sc.objects if f" {sc.pos(o)}" in q and a in (o.color, o.shape)), None)
        named = next((o for o in sc.objects if o.name in q and a == o.size), None)
        asked.append(W.fix_articles(f"The {sc.pos(at)} cell holds a {at.name}.") if at else f"The {named.name} is {named.size}." if named else None)
        return q, a
    tasks._scene_question = wrapped
    try: pools = tasks.instruction_pools(seed=seed)
    finally: tasks._scene_question = orig
    it, rows = iter(asked), []
    for r in pools:
        if r["task"] in ("scene_qa", "image_qa"):            # the two tasks that ask `_scene_question`, in pool order
            restate = next(it)
            if r["task"] == "scene_qa" and restate:
                gpt = r["conversations"][1]["value"]
                a = tasks.record_answer(gpt)
                said = a if style == "quoted" else f"its {_attribute(a)} is {a}"
                gpt = f"{restate} {gpt}" if style == "sentence" else tasks.ANSWER_STYLE.format(f"{restate[0].lower()}{restate[1:-1]}, so {said}")
                r = {**r, "conversations": [r["conversations"][0], {**r["conversations"][1], "value": gpt}]}
        rows.append(r)
    return mdata.from_records_dataset(datasets.Dataset.from_list(rows, features=pools.features), "restated pools")

def _attribute(answer: str) -> str:
    "Which attribute of the restated object `answer` is: color, shape or size."
    if answer in ("small", "large"): return "size"
    return "color" if answer in W.COLORS else "shape"     # the questions' own word (tasks.Q)

_KINDS = [(kind, tasks._phrase_regex(t)) for kind, ts in tasks.Q.items() for t in ts]

def kinds_of(question: str) -> str:
    "The `tasks.Q` kind of a scene question."
    return next((kind for kind, rx in _KINDS if rx.search(question)), "?")

def ask(checkpoint, suites, lead_tokens: int = 8) -> dict:
    "Accuracy (%) per kind on `scene_qa` and `image_qa` (with the image and without), lead pre-filled and open."
    model, processor = load_model(checkpoint)
    out = {}
    for prompt, prefix in (("lead pre-filled", 'The best answer is "'), ("open", "")):
        for suite, image in (("scene_qa", False), ("image_qa", True), ("image_qa/no image", False)):
            items = suites[suite.split("/")[0]]
            prompts = [generation_prompt(it["question"], has_image=image, answer_prefix=prefix) for it in items]
            outs = greedy(model, processor, prompts, images=[it["image"] for it in items] if image else None, max_new_tokens=lead_tokens if prefix else 28)
            hit = collections.defaultdict(list)
            for it, o in zip(items, outs):
                m = re.search(r'best answer is "([^"]*)"', o) if not prefix else None
                pred = m[1] if m else (o.split('"')[0] if prefix else o)
                pred = pred.rsplit(", so ", 1)[-1]                  # the quoted style's answer
                if pred.startswith("its ") and " is " in pred: pred = pred.rsplit(" is ", 1)[1]     # the named style's
                hit[kinds_of(it["question"])].append(normalize_answer(pred) == normalize_answer(it["answer"]))
            out[f"{suite}, {prompt}"] = {k: round(100 * sum(v) / len(v)) for k, v in sorted(hit.items())}
    return out

def lookup(checkpoint, n: int = 200) -> dict:
    """The look-up gate (`mmkit.train.lookup_gate`: `<description> The <cell> cell holds`, held-out scenes) on its own,
    after the v1 chat template's system prompt and `USER:`, and after an unrelated corpus sentence: accuracy (%)."""
    from mmkit.model import TEMPLATES
    from mmkit.train import lookup_gate
    model, processor = load_model(checkpoint)
    return {where: round(100 * lookup_gate(model, processor, n=n, before=before)["lookup_accuracy"], 1)
            for where, before in (("alone", ""), ("after the system prompt", TEMPLATES["v1"].system + "USER: "),
                                  ("after other text", "The color red stands for fire. A blip is a blue square. "))}

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--recipe", default="lang_only")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--controls", type=int, default=120, help="fresh control items per task")
    ap.add_argument("--style", default="sentence", choices=STYLES, help="where the restatement goes (see restated_pools)")
    ap.add_argument("--skip-default", action="store_true", help="train only on the restated pools")
    ap.add_argument("--base", default=None, help="base folder (default: the cached microcosm base)")
    ap.add_argument("--lookup", nargs="+", metavar="CHECKPOINT", help="only measure the look-up form in these checkpoints")
    a = ap.parse_args()
    if a.lookup:
        for ck in a.lookup: print(json.dumps(dict(checkpoint=ck, **lookup(ck))))
        return
    pools, new = mdata.microcosm_pools(seed=0), restated_pools(0, a.style)
    changed = sum(x != y for x, y in zip(pools["conversations"], new["conversations"]))
    print(f"restated {changed} scene_qa answers; e.g.", next(y[1]["value"] for x, y in zip(pools["conversations"], new["conversations"]) if x != y))
    suites = control_suites(a.controls)
    for seed in a.seeds:
        for name, p in ((("default answers", pools),) if not a.skip_default else ()) + ((f"restated answers ({a.style})", new),):
            with tempfile.TemporaryDirectory() as out:
                res = train_stage2(a.recipe, out, base=a.base, pools=p, seed=seed)
                print(json.dumps(dict(recipe=a.recipe, seed=seed, pools=name, final_answer_loss=res["final_answer_loss"], **ask(res["checkpoint"], suites, 8 if a.style == "sentence" else 28))))


if __name__ == "__main__":
    main()
