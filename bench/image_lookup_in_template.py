"""Does a model still read one cell of an image, and does it read it inside the chat template?

Gate 1 reads a cell straight from the image in stage 1's own layout (`plain`: the image, then `The <cell> cell holds`)
and, since v2.4, after the chat template's `ASSISTANT:` (`image_lookup_in_template`). This probe asks the same cells of
the same unseen scenes (`mmkit.train.cell_questions`) in every layout of `mmkit.train.IMAGE_LAYOUTS` and prints the
share of greedy completions that name the object in that cell, for each model given: a base folder or a run's
checkpoint (a stage-2 model, whose gates nobody measured). Naming one of the scene's objects at random gets `any object`.
`quiz line, plain` asks the same cell's colour as the stage-0 corpus's quiz line (`Q: colour at top left? A:`) after
the image, what stage 1's `quiz` captions train (v2.5).

    python bench/image_lookup_in_template.py .cache/mmkit/base-small-default-… runs/lang_only/checkpoint runs/vis_only/checkpoint
"""
import argparse, json

from mmkit import world as W
from mmkit.model import load_model
from mmkit.train import IMAGE_LAYOUTS, cell_questions, greedy, named_cells


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("models", nargs="+", help="base folders or run checkpoints")
    ap.add_argument("--n", type=int, default=100, help="unseen scenes (one cell asked of each)")
    a = ap.parse_args()
    scenes, asked, cells = cell_questions(a.n)
    for path in a.models:
        model, processor = load_model(path)
        images = [W.render(s, processor.image_processor.crop_size["height"]) for s in scenes]
        hit = lambda outs: round(sum(x.startswith(o.name) for x, o in zip(outs, asked)) / a.n, 3)
        row = {name: hit(named_cells(model, processor, [put(c) for c in cells], images)) for name, put in IMAGE_LAYOUTS.items()}
        quiz = [IMAGE_LAYOUTS["plain"](f"Q: colour at {s.pos(o)}? A:") for s, o in zip(scenes, asked)]   # the corpus's quiz line
        said = greedy(model, processor, quiz, images=images, max_new_tokens=3)
        row["quiz line, plain"] = round(sum(x.strip().startswith(o.color) for x, o in zip(said, asked)) / a.n, 3)
        row["any object"] = round(sum(1 / len(s.objects) for s in scenes) / a.n, 3)
        row["any object's colour"] = round(sum(sum(x.color == o.color for x in s.objects) / len(s.objects) for s, o in zip(scenes, asked)) / a.n, 3)
        print(json.dumps(dict(model=path, **row)))


if __name__ == "__main__":
    main()
