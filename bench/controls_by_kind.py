"""Does a model read the image when asked in a trained wording? The image_qa controls per question kind, with and without the picture.

`mmkit controls` scores fresh items of every stage-2 training task, and the vision ones again with blank images. This
probe splits the `image_qa` controls by the kind of question (`mmkit.tasks.Q`: colour at a cell, shape at a cell,
count, count of a colour, size) and prints, per model, the accuracy with the image and with a blank one. A recipe that
never trained on images (`lang_only`) answers these questions in the wording `scene_qa` asks of text passages; where
it beats its blank-image figure, it reads the picture.

    python bench/controls_by_kind.py runs/lang_only/checkpoint runs/mlan/checkpoint runs/vis_only/checkpoint
"""
import argparse, collections, json, re

from mmkit.evaluate import control_suites, evaluate
from mmkit.model import load_model
from mmkit.tasks import Q


def kind_of(question: str) -> str:
    "The `Q` kind whose wording `question` uses."
    for kind, wordings in Q.items():
        for w in wordings:
            if re.search(re.sub(r"\\\{\w+\\\}", ".+", re.escape(w)), question): return kind
    return "other"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("models", nargs="+", help="run checkpoints or base folders")
    ap.add_argument("--n", type=int, default=120, help="image_qa control items")
    a = ap.parse_args()
    items = control_suites(a.n)["image_qa"]
    kinds = [kind_of(it["question"]) for it in items]
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
