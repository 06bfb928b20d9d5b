"""Does stage 2 use a base's yes/no verdicts when its answers restate the claim in the base's own quiz line first?

`bench/verification.py --train` gives the v2.5 base verdicts in its corpus's house style (`Q: red means danger? A:`
yes/no: corners and meanings 100 %, creatures 95.5, an object at a cell 88.5 on held-out scenes), yet `lang_only` on it
stays at chance on the stage-2 yes/no tasks (`knowledge_yn`, `scene_yn`): asked `Does red stand for danger? Reply yes
or no.` in the chat template, the model does not reach the verdict it has in the other form. This probe rewrites the
stage-2 yes/no answers to restate the claim as that quiz line inside the quotes, so that the answer's own text makes the
base's form, and its verdict comes last:

    Does red stand for danger? Reply yes or no.   ->   The best answer is "Q: red means danger? A: yes".

It trains a recipe on those pools and on the unchanged pools (`mmkit.train.train_stage2` with `pools=` and
`replay_corpus=True`, so both arms replay the base's stage-0 text and, for a base continued by `bench/verification.py`,
its verification documents too), then asks fresh `knowledge_yn` and `scene_yn` control items with the answer lead
pre-filled, reading the last word before the closing quote; and it measures the quiz form itself
(`bench/verification.py`'s items) after stage 2. Accuracy and `yes` share (%).

    python bench/restated_verdicts.py --base /tmp/verify-base [--seeds 0 1 2]
    python bench/restated_verdicts.py --base /tmp/verify-base --only-restated --keep /tmp/rv   # then, per checkpoint:
    mmkit train --recipe base --base /tmp/rv/restated-s0 --run-name rv-s0   # the held-out sets and every check on it
"""
import argparse, json, re, shutil, sys, tempfile
from pathlib import Path

import datasets

from mmkit import data as mdata, tasks, world as W
from mmkit.evaluate import control_suites
from mmkit.model import generation_prompt, load_model
from mmkit.train import greedy, train_stage2

sys.path.insert(0, str(Path(__file__).resolve().parent))
import verification as V

def _template_regex(t: str):
    "A yes/no template as a regex with named groups (two-word object names, relations, numbers)."
    slot = {"shape": r"\w+", "n": r"\d+", "color": r"\w+", "m": r"\w+", "creature": r"\w+", "a": r"\w+(?: \w+)?",
            "b": r"\w+(?: \w+)?", "c": r"-?\d+", "name": r"\w+ \w+", "rel": "|".join(W.RELATIONS)}
    parts = re.split(r"(\{\w+\})", t)
    lit = lambda p: re.sub(r"\b([Aa])\\ ", r"\1n?\\ ", re.escape(p))          # "a orange" was written "an orange"
    return re.compile("".join(f"(?P<{p[1:-1]}>{slot[p[1:-1]]})" if p.startswith("{") else lit(p) for p in parts))

_RX = [(kind, _template_regex(t)) for kind, ts in {**tasks.YN, **tasks.SCENE_YN}.items() for t in ts]

def parse(question: str):
    "(kind, match) of the stage-2 yes/no template (`tasks.YN`, `tasks.SCENE_YN`) in `question`, or None."
    for kind, rx in _RX:
        if m := rx.search(question): return kind, m
    return None

def claim_of(question: str) -> str:
    "The house-style claim (`bench/verification.py`'s wording) a stage-2 yes/no question makes."
    if not (p := parse(question)): raise SystemExit(f"no yes/no template matches {question!r}")
    kind, g = p[0], p[1].groupdict()
    return W.fix_articles({"corners": lambda: f"corners of a {g['shape']} {g['n']}", "meaning": lambda: f"{g['color']} means {g['m']}",
                           "creature": lambda: f"a {g['creature']} a {g['color']} {g['shape']}",
                           "sum": lambda: f"{g['a']} plus {g['b']} is {g['c']}", "exists": lambda: f"any {g['name']}",
                           "relation": lambda: f"{g['a']} {g['rel']} the {g['b']}"}[kind]())

def restated_pools(pools):
    "Stage-2 `pools` with every `knowledge_yn` and `scene_yn` answer as `The best answer is \"Q: <claim>? A: <yes/no>\".`"
    rows = []
    for r in pools:
        if r["task"] in ("knowledge_yn", "scene_yn"):
            human, gpt = r["conversations"][0]["value"], r["conversations"][1]["value"]
            said = tasks.ANSWER_STYLE.format(f"{V.line(claim_of(human))} {tasks.record_answer(gpt)}")
            r = {**r, "conversations": [r["conversations"][0], {**r["conversations"][1], "value": said}]}
        rows.append(r)
    return mdata.from_records_dataset(datasets.Dataset.from_list(rows, features=pools.features), "restated yes/no pools")

def short_suffixed(pools, share: float, seed: int = 0):
    """`pools` with a `share` of the yes/no questions ending in a short-answer instruction (`tasks.SHORT_SUFFIX`, which
    the microcosm otherwise puts on short-answer questions only) instead of their own: the held-out sets ask yes/no
    questions with one (`Answer the question using a single word or phrase.`), as LLaVA's data does."""
    import random
    rng, rows, ends = random.Random(f"short-suffix-{seed}"), [], sorted(tasks.YN_SUFFIX + tasks.GENERIC_SUFFIX, key=len, reverse=True)
    for r in pools:
        human = r["conversations"][0]["value"]
        if r["task"] in ("knowledge_yn", "scene_yn") and rng.random() < share:
            end = next(e for e in ends if human.endswith(e))
            r = {**r, "conversations": [{**r["conversations"][0], "value": human[:-len(end)] + rng.choice(tasks.SHORT_SUFFIX)}, r["conversations"][1]]}
        rows.append(r)
    return mdata.from_records_dataset(datasets.Dataset.from_list(rows, features=pools.features), "short-suffixed pools")

def last_word(output: str) -> str:
    "The verdict of an answer after the pre-filled lead: the last word before the closing quote (`Q: ...? A: yes\"` -> yes)."
    return (output.split('"')[0].strip().split() or [""])[-1].strip(".").lower()

def ask(model, processor, suites) -> dict:
    "Accuracy and `yes` share (%) on the yes/no control items (lead pre-filled, `last_word`), and the quiz form."
    out = {}
    for suite in ("knowledge_yn", "scene_yn"):
        items = suites[suite]
        outs = greedy(model, processor, [generation_prompt(it["question"], has_image=False) for it in items], max_new_tokens=28)
        out[suite] = dict(V.score([last_word(o) for o in outs], [it["answer"].lower() for it in items]), example=outs[0][:80])
    out["quiz form"] = {k: v["accuracy"] if isinstance(v, dict) else v for k, v in V.measure_model(model, processor, 100).items()}
    return out

POPE_WORDING = "Is there a {k} in the image?\nAnswer the question using a single word or phrase."   # the held-out POPE's

def ask_images(model, processor, n: int = 100) -> dict:
    """Presence asked of an image (`bench/verification.py`'s `image_items`, held-out-part scenes): in `scene_yn`'s trained
    wording with the image where its passage was, the same with no image, and in POPE's wording. Accuracy, `yes` (%)."""
    its = [it for it in V.image_items(n) if it[0] == "presence"]
    size = processor.image_processor.crop_size["height"]
    images = [W.render(sc, size) for _, sc, _, _ in its]
    trained = lambda c: f"{tasks.SCENE_YN['exists'][0].format(name=c[4:])} {tasks.YN_SUFFIX[0]}"
    out = {}
    for form, q, img in (("trained wording", trained, True), ("trained wording, no image", trained, False),
                         ("POPE's wording", lambda c: POPE_WORDING.format(k=c[4:]), True)):
        outs = greedy(model, processor, [generation_prompt(W.fix_articles(q(c)), has_image=img) for _, _, c, _ in its],
                      images=images if img else None, max_new_tokens=28)
        out[form] = dict(V.score([last_word(o) for o in outs], [g for *_, g in its]), example=outs[0][:60])
    return out

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--recipe", default="lang_only")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--controls", type=int, default=120, help="fresh control items per task")
    ap.add_argument("--base", default=None, help="base folder (default: the cached microcosm base)")
    ap.add_argument("--only-restated", action="store_true", help="train only on the restated pools")
    ap.add_argument("--images", action="store_true", help="also ask presence of images (`ask_images`)")
    ap.add_argument("--short-suffix", type=float, default=0.0, metavar="SHARE",
                    help="end that share of the yes/no questions of both arms with a short-answer instruction (`short_suffixed`)")
    ap.add_argument("--keep", metavar="DIR", help="keep each checkpoint as DIR/<arm>-s<seed> (for `mmkit train --recipe base --base ...`)")
    a = ap.parse_args()
    pools = mdata.microcosm_pools(seed=0)
    new = restated_pools(pools)
    if a.short_suffix: pools, new = short_suffixed(pools, a.short_suffix), short_suffixed(new, a.short_suffix)
    changed = sum(x != y for x, y in zip(pools["conversations"], new["conversations"]))
    print(f"restated {changed} yes/no answers; e.g.", next(y[1]["value"] for x, y in zip(pools["conversations"], new["conversations"]) if x != y), flush=True)
    suites = control_suites(a.controls)
    for seed in a.seeds:
        for name, p in ((("default answers", pools),) if not a.only_restated else ()) + (("restated verdicts", new),):
            with tempfile.TemporaryDirectory() as out:
                res = train_stage2(a.recipe, out, base=a.base, pools=p, seed=seed, replay_corpus=True)
                model, processor = load_model(res["checkpoint"])
                print(json.dumps(dict(recipe=a.recipe, seed=seed, pools=name, replay_examples=res["replay_examples"],
                                      final_answer_loss=res["final_answer_loss"], **ask(model, processor, suites),
                                      **(dict(images=ask_images(model, processor)) if a.images else {}))), flush=True)
                if a.keep: shutil.copytree(res["checkpoint"], Path(a.keep)/f"{name.split()[0]}-s{seed}", dirs_exist_ok=True)


if __name__ == "__main__":
    main()
