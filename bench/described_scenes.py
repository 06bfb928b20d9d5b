"""Is the held-out vision gap the image or the question? The held-out vision items asked with the scene as text.

Every held-out vision item that shows a scene (POPE, GQA, AI2D, RealWorldQA and ScienceQA's image half) is asked three
ways, its question and options unchanged: with its image (`image`, what a run scores), with a blank image (`blank`,
the run's blind control), and with no image but the scene's description in front of the question, as stage 2's
scene tasks give it (`text`: one of `tasks.PASSAGE_INTRO` around `world.describe` in a random phrasing). A model that
answers the `text` form but not the `image` form has the question skill and lacks the step from image tokens to it;
one at chance on both lacks the held-out question itself, whatever the modality.

`--trained-wording` asks the same scenes the same thing again in stage 2's own wordings (`tasks.Q` short questions for
shape at a cell, where-is, count and count of a colour; `tasks.SCENE_YN` for is-there and relations, balanced yes/no),
as a text passage (`text·trained`), with the image (`image·trained`) and with a blank image (`blank·trained`), all
generated and read as the run protocol reads them. That splits what fails into the wording and the modality.

`--own-caption` adds a two-step form, `own caption`: the model first captions each image in stage 1's own layout
(`mmkit.train.IMAGE_LAYOUTS["plain"]`, greedy, as the stage-1 gate does), and the first sentence of that caption (the
description part) then stands where the true description stood in the `text` form, with no image. It is not the run
protocol: it asks how much of the text form a model reaches from the image when it reads the image in the one form
stage 1 taught. The captions' per-object accuracy against the true scenes is printed with it (`caption`).

    python bench/described_scenes.py runs/lang_only/checkpoint runs/mlan/checkpoint --scorers loglik generate
"""
import argparse, json, random

from mmkit import tasks, world as W
from mmkit.evaluate import evaluate, load_suites
from mmkit.model import load_model
from mmkit.train import caption_scores

FORMS = ("image", "blank", "text")
TRAINED_FORMS = ("text·trained", "image·trained", "blank·trained")


def first_sentence(caption: str) -> str:
    "The description part of a stage-1 caption: everything before its first statement."
    return caption.strip().split(". ")[0].rstrip(".") + "."


def own_caption(model, processor, items, seed=0):
    """The items with a scene, the image dropped and the model's own caption of it (first sentence) put before the
    question as `described` puts the true description; and `(scenes, captions)` for `caption_scores`."""
    from mmkit.train import IMAGE_LAYOUTS, greedy
    its = [it for it in items if it.get("image") is not None and it.get("scene")]
    caps = greedy(model, processor, [IMAGE_LAYOUTS["plain"]("")] * len(its), images=[it["image"] for it in its], max_new_tokens=72)
    rng, out = random.Random(f"own-caption-{seed}"), []
    for it, cap in zip(its, caps):
        out.append(dict(it, image=None, question=f"{rng.choice(tasks.PASSAGE_INTRO).format(d=first_sentence(cap))}\n{it['question']}"))
    return out, ([W.Scene.from_json(it["scene"]) for it in its], [first_sentence(c) for c in caps])


def trained_wording(items, seed=0):
    """The items' scenes and asked things in stage 2's own wordings: `(text items, image items)`, the same questions
    and answers, the first with the description as a passage and no image, the second with the item's image."""
    rng, text, image = random.Random(f"trained-wording-{seed}"), [], []
    for i, it in enumerate(items):
        if it.get("image") is None or not it.get("scene"): continue
        sc, spec = W.Scene.from_json(it["scene"]), json.loads(it["spec"])
        by_name = {o.name: o for o in sc.objects}
        kind = spec["kind"]
        if kind == "shape_at":
            o = next(o for o in sc.objects if sc.pos(o) == spec["pos"])
            q, a, at = tasks._fill(rng, tasks.Q["shape_at"], pos=spec["pos"]), o.shape, "short"
        elif kind == "where":
            q, a, at = tasks._fill(rng, tasks.Q["where"], name=spec["name"]), sc.pos(by_name[spec["name"]]), "short"
        elif kind == "count":
            q, a, at = tasks._fill(rng, tasks.Q["count"]), str(len(sc.objects)), "short"
        elif kind == "count_color":
            q = tasks._fill(rng, tasks.Q["count_color"], color=spec["color"])
            a, at = str(sum(o.color == spec["color"] for o in sc.objects)), "short"
        elif kind == "exists":
            q, a, at = tasks._fill(rng, tasks.SCENE_YN["exists"], name=f"{spec['color']} {spec['shape']}"), it["answer"], "yesno"
        elif kind == "relation":
            x, y = by_name[spec["a"]], by_name[spec["b"]]; rel = W.relation(sc, x, y); want = i % 2 == 0
            if not want: rel = rng.choice([r for r in W.RELATIONS if r != rel])
            q, a, at = tasks._fill(rng, tasks.SCENE_YN["relation"], a=x.name, b=y.name, rel=rel), "yes" if want else "no", "yesno"
        else: continue
        q = W.fix_articles(f"{q} {rng.choice(tasks.SHORT_SUFFIX if at == 'short' else tasks.YN_SUFFIX)}")
        base = dict(it, answer=a, answer_type=at, choices=[], skill=kind)
        text.append(dict(base, image=None, question=f"{tasks._passage(rng, sc)}\n{q}"))
        image.append(dict(base, question=q))
    return text, image


def described(items, seed=0):
    "The items with a scene, the image dropped and the scene's description put before the question (stage 2's passage)."
    rng, out = random.Random(f"described-{seed}"), []
    for it in items:
        if it.get("image") is None or not it.get("scene"): continue
        sc = W.Scene.from_json(it["scene"])
        out.append(dict(it, image=None, question=f"{tasks._passage(rng, sc)}\n{it['question']}"))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("models", nargs="+", help="base folders or run checkpoints")
    ap.add_argument("--n", type=int, default=None, help="items per held-out set (default: the run protocol's)")
    ap.add_argument("--scorers", nargs="+", default=["loglik", "generate"], choices=["loglik", "generate"])
    ap.add_argument("--forms", nargs="*", default=list(FORMS), choices=FORMS, help="which of the held-out-wording forms to score")
    ap.add_argument("--trained-wording", action="store_true", help="also ask the scenes in stage 2's own wordings (generated)")
    ap.add_argument("--own-caption", action="store_true", help="also the two-step form: the model's own caption, then the question")
    ap.add_argument("--only-trained", action="store_true", help="only the trained-wording forms")
    ap.add_argument("--out", default=None, help="write one JSON line per model, form and scorer here as well")
    a = ap.parse_args()
    held = {}                                                     # the held-out sets, built once per image size
    for path in a.models:
        model, processor = load_model(path)
        size = processor.image_processor.crop_size["height"]
        if size not in held:
            data = load_suites(tasks.VISION_SUITES, n=a.n, image_size=size)
            held[size] = {k: [it for it in v if it.get("image") is not None] for k, v in data.items()}
        with_scene = held[size]
        forms = {form: {k: described(v) for k, v in with_scene.items()} if form == "text" else with_scene
                 for form in ([] if a.only_trained else a.forms)}
        if a.trained_wording or a.only_trained:
            pairs = {k: trained_wording(v) for k, v in with_scene.items()}
            forms.update({"text·trained": {k: p[0] for k, p in pairs.items() if p[0]},
                          "image·trained": {k: p[1] for k, p in pairs.items() if p[1]}})
            forms["blank·trained"] = forms["image·trained"]
        if a.own_caption:
            forms["own caption"], scenes, caps = {}, [], []
            for k, v in with_scene.items():
                forms["own caption"][k], (sc, cp) = own_caption(model, processor, v); scenes += sc; caps += cp
            captions = caption_scores(scenes, caps)
        runs = [(scorer, form) for scorer in a.scorers for form in FORMS if form in forms]
        runs += [("generate", form) for form in TRAINED_FORMS if form in forms]
        runs += [(scorer, "own caption") for scorer in a.scorers if "own caption" in forms]
        for scorer, form in runs:
            m, rows = evaluate(model, processor, forms[form], scorer=scorer, blind=form.startswith("blank"),
                               require_images=form == "image" or form.startswith(("image·", "blank")), progress=False)
            acc = {k: round(100 * v["acc"], 1) for k, v in m["datasets"].items()}
            skills = {}
            for r in rows: skills.setdefault(r["skill"], []).append(r["correct"])
            line = dict(model=path, scorer=scorer, form=form, avg=round(sum(acc.values()) / len(acc), 1), **acc,
                        skills={k: round(100 * sum(v) / len(v), 1) for k, v in sorted(skills.items())})
            if form == "own caption": line["caption"] = captions
            print(json.dumps(line), flush=True)
            if a.out:
                with open(a.out, "a") as f: f.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    main()
