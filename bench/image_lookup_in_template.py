"""Does a model still read one cell of an image, and does it read it inside the chat template?

Gate 1 reads a cell straight from the image in stage 1's own layout (`plain`: the image, then `The <cell> cell holds`).
A stage-2 model answers inside the v1 chat template, after a system prompt and `USER:`. This probe asks the same cells
of the same unseen scenes three ways (the plain layout; inside the user turn; after `ASSISTANT:`) and prints the share
of greedy completions that name the object in that cell, for each model given: a base folder or a run's checkpoint.
Naming one of the scene's objects at random gets `any object`.

    python bench/image_lookup_in_template.py .cache/mmkit/base-small-default-… runs/lang_only/checkpoint runs/vis_only/checkpoint
"""
import argparse, json, random

from mmkit import world as W
from mmkit.model import TEMPLATES, generation_prompt, load_model
from mmkit.train import _after_article, greedy


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("models", nargs="+", help="base folders or run checkpoints")
    ap.add_argument("--n", type=int, default=100, help="unseen scenes (one cell asked of each)")
    a = ap.parse_args()
    rng = random.Random(12345)
    scenes = [W.sample_split_scene(rng, heldout=True) for _ in range(a.n)]
    asked = [rng.choice(s.objects) for s in scenes]
    cell = [f"The {s.pos(o)} cell holds" for s, o in zip(scenes, asked)]
    v1 = TEMPLATES["v1"]
    layouts = {"plain (gate 1)": [generation_prompt("", template="plain", has_image=True, answer_prefix="") + c for c in cell],
               "v1, in the user turn": [f"{v1.system}USER: <image>\n{c}" for c in cell],
               "v1, after ASSISTANT:": [f"{v1.system}USER: <image>\nDescribe the picture. ASSISTANT: {c}" for c in cell]}
    for path in a.models:
        model, processor = load_model(path)
        images = [W.render(s, processor.image_processor.crop_size["height"]) for s in scenes]
        row = {}
        for name, prompts in layouts.items():
            outs = [_after_article(x) for x in greedy(model, processor, prompts, images=images, max_new_tokens=5)]
            row[name] = round(sum(x.startswith(o.name) for x, o in zip(outs, asked)) / a.n, 3)
        row["any object"] = round(sum(1 / len(s.objects) for s in scenes) / a.n, 3)
        print(json.dumps(dict(model=path, **row)))


if __name__ == "__main__":
    main()
