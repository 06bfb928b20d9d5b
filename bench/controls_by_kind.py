"""Does a model read the image when asked in a trained wording? The image_qa controls per question kind, with and without the picture.

`mmkit controls` scores fresh items of every stage-2 training task, and the vision ones again with blank images. This
probe splits the `image_qa` controls by the kind of question (`mmkit.tasks.Q`: colour at a cell, shape at a cell,
count, count of a colour, size) and prints, per model, the accuracy with the image and with a blank one. A recipe that
never trained on images (`lang_only`) answers these questions in the wording `scene_qa` asks of text passages; where
it beats its blank-image figure, it reads the picture. `--scene-kinds` also asks, of an image, the language tasks'
questions that no vision task asks (`scene_qa`'s where-is, `scene_yn`'s is-there and relation questions, same
wordings and answers; 60 fresh training-part scenes each): the skills the held-out vision sets need beyond image_qa's.

    python bench/controls_by_kind.py runs/lang_only/checkpoint runs/mlan/checkpoint runs/vis_only/checkpoint
    python bench/controls_by_kind.py --scene-kinds runs/lang_only/checkpoint
"""
import argparse, collections, json, random

from mmkit import tasks, world
from mmkit.evaluate import control_suites, evaluate
from mmkit.model import load_model
from mmkit.tasks import Q


def kind_of(question: str) -> str:
    "The `Q` kind whose wording `question` uses (`tasks._phrase_regex`, the template matcher of the leakage check)."
    return next((kind for kind, wordings in Q.items() for w in wordings if tasks._phrase_regex(w).search(question)), "other")


def scene_items(n: int = 60, seed: int = 7) -> list[dict]:
    "`scene_qa`'s where-is and `scene_yn`'s is-there / relation questions, asked of the scene's image instead of its description."
    rng, out = random.Random(f"scene-kinds-{seed}"), []
    for i in range(n):                                                       # where is the <object>? (short answer)
        sc = world.sample_split_scene(rng, False)
        q, a = tasks._scene_question(rng, sc, ("where",))
        out.append(dict(kind="where", question=f"{q} {rng.choice(tasks.SHORT_SUFFIX)}", answer=a, answer_type="short", scene=sc))
    for i in range(n):                                                       # is there a <colour> <shape>? (balanced yes/no)
        sc = world.sample_split_scene(rng, False); want = i % 2 == 0
        present = sorted({(o.color, o.shape) for o in sc.objects})
        co, sh = rng.choice(present) if want else rng.choice([(c, s) for c in world.COLORS for s in world.SHAPES if (c, s) not in present])
        q = tasks._fill(rng, tasks.SCENE_YN["exists"], name=f"{co} {sh}")
        out.append(dict(kind="exists", question=f"{q} {rng.choice(tasks.YN_SUFFIX)}", answer="yes" if want else "no", answer_type="yesno", scene=sc))
    pairs = lambda s: [(a, b) for a in s.objects for b in s.objects if world.relation(s, a, b)]
    for i in range(n):                                                       # is the <a> <relation> the <b>? (balanced yes/no)
        sc = world.sample_split_scene(rng, False, min_objects=2, where=lambda s: bool(pairs(s))); want = i % 2 == 0
        a, b = rng.choice(pairs(sc)); rel = world.relation(sc, a, b)
        if not want: rel = rng.choice([r for r in tasks.RELATIONS if r != rel])
        q = tasks._fill(rng, tasks.SCENE_YN["relation"], a=a.name, b=b.name, rel=rel)
        out.append(dict(kind="relation", question=f"{q} {rng.choice(tasks.YN_SUFFIX)}", answer="yes" if want else "no", answer_type="yesno", scene=sc))
    return [dict(id=f"scene-{i}", dataset="image_qa", image=world.render(it.pop("scene"), 64), choices=None,
                 **dict(it, question=world.fix_articles(it["question"]))) for i, it in enumerate(out)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("models", nargs="+", help="run checkpoints or base folders")
    ap.add_argument("--n", type=int, default=120, help="image_qa control items")
    ap.add_argument("--scene-kinds", action="store_true", help="also ask the where-is / is-there / relation questions of images")
    a = ap.parse_args()
    items = control_suites(a.n)["image_qa"]
    kinds = [kind_of(it["question"]) for it in items]
    if a.scene_kinds:
        extra = scene_items()
        items, kinds = items + [{k: v for k, v in it.items() if k != "kind"} for it in extra], kinds + [it["kind"] for it in extra]
    for path in a.models:
        model, processor = load_model(path)
        row = {}
        for blind in (False, True):
            _, rows = evaluate(model, processor, suites={"image_qa": items}, blind=blind, progress=False)
            hits = collections.defaultdict(list)
            for k, r in zip(kinds, rows): hits[k].append(r["correct"])
            row["blank" if blind else "image"] = {k: round(100 * sum(v) / len(v), 1) for k, v in sorted(hits.items())}
        row["items"] = dict(sorted(collections.Counter(kinds).items()))
        print(json.dumps(dict(model=path, **row)))


if __name__ == "__main__":
    main()
