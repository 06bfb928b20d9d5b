"""Does a model tell whether a described scene holds an object, and does it still when the object is named elsewhere?

Up to microcosm v2.5 the corpus's presence quiz lines (`Q: any red circle? A: no.`) asked about a random colour and
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
"""
import argparse, json

from mmkit import world as W
from mmkit.model import TEMPLATES, load_model
from mmkit.train import greedy, presence_items, resolve_base

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

def measure(checkpoint, n: int = 300) -> dict:
    "Accuracy and `yes` share (%) per form."
    model, processor = load_model(checkpoint)
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
    a = ap.parse_args()
    for ck in a.checkpoints or [resolve_base(None)]:
        print(json.dumps(dict(checkpoint=str(ck), **measure(ck, a.n))), flush=True)


if __name__ == "__main__":
    main()
