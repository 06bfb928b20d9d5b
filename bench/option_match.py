"""Can stage 2 teach a microcosm base to answer multiple choice when nothing but the choice is asked?

Stage 2 leaves every multiple-choice task at chance (docs/results.md, v2.2). This probe strips the task down to the
choice itself: each `knowledge_mc` (or `scene_mc`) record of the training pool is recast as `Which option says "X"?`
followed by its own options, X being the right option's text, so the answer is the letter in front of the option that
repeats a word of the question (no recall, no look-up). It trains stage 2 (`mmkit.train.train_stage2`, the recipe's
settings, `--epochs`) on those records alone and scores the same recasting of fresh control items (chance 25 %).

    python bench/option_match.py --epochs 20                      # the default (small) microcosm base
    python bench/option_match.py --epochs 20 --base .cache/mmkit/base-deep-default-…   # another base folder
    python bench/option_match.py --epochs 20 --as-is              # the records unchanged: the full task
"""
import argparse, json, tempfile

from mmkit import data as mdata
from mmkit.benchmarks import parse_choices
from mmkit.evaluate import control_suites, evaluate
from mmkit.model import load_model
from mmkit.tasks import LETTERS, record_answer
from mmkit.train import train_stage2


def recast(question: str, letter: str) -> str:
    "`question` with its stem replaced by `Which option says \"<the text of option letter>\"?` (options and suffix kept)."
    choices = parse_choices(question)
    return "\n".join([f'Which option says "{choices[LETTERS.index(letter)]}"?'] + question.split("\n")[-len(choices) - 1:])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--task", default="knowledge_mc", choices=["knowledge_mc", "scene_mc"])
    ap.add_argument("--epochs", type=float, default=20)
    ap.add_argument("--base", default=None, help="base folder (default: the cached microcosm base of the default size)")
    ap.add_argument("--n-control", type=int, default=60)
    ap.add_argument("--as-is", action="store_true", help="train and score the records unchanged (the full task, for comparison)")
    a = ap.parse_args()

    def fix(r):
        letter = record_answer(r["conversations"][1]["value"])
        return dict(r, conversations=[dict(r["conversations"][0], value=recast(r["conversations"][0]["value"], letter)),
                                      r["conversations"][1]])
    pool = mdata.microcosm_pools(seed=0, scale="default").filter(lambda r: r["task"] == a.task)
    if not a.as_is: pool = pool.map(fix)
    print("example:", pool[0]["conversations"])
    with tempfile.TemporaryDirectory() as out:
        res = train_stage2("lang_only", out, base=a.base, pools=pool, budget=len(pool), seed=0, epochs=a.epochs)
        model, processor = load_model(res["checkpoint"])
        items = [it if a.as_is else dict(it, question=recast(it["question"], it["answer"])) for it in control_suites(a.n_control)[a.task]]
        met, _ = evaluate(model, processor, suites={a.task: items}, progress=False)
        curve = [(round(l["epoch"], 1), l["answer_loss"]) for l in res["trainer"].state.log_history if "answer_loss" in l]
    print(json.dumps(dict(task=a.task, epochs=a.epochs, base=res["base"], examples=len(pool),
                          final_answer_loss=res["final_answer_loss"], control_accuracy=met["datasets"][a.task]["acc"],
                          chance=0.25, answer_loss_curve=curve[:: max(1, len(curve) // 8)])))


if __name__ == "__main__":
    main()
