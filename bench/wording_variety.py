"""Does stage 2 carry a base's yes/no verdict to question wordings it never saw, if it trains on many wordings?

`bench/restated_verdicts.py` showed that stage 2 reaches the verdicts of a base continued by `bench/verification.py`
when its yes/no answers restate the claim as the base's quiz line (`The best answer is "Q: red means danger? A: yes".`):
knowledge_yn 53.6 -> 76.1 % (3 seeds), and an image's presence 63 % against 53 without the image, in the trained
wordings. In every wording it never saw (BoolQ's, POPE's) the model writes an unrelated claim. The stage-2 pools ask
each yes/no kind in three wordings (`tasks.YN`, `tasks.SCENE_YN`). This probe asks whether that is the wall: it
rewrites the stage-2 yes/no questions of four kinds (presence in a scene, a shape's corners, a colour's meaning, a
creature's look: the kinds whose verdicts form in the base) into one of many more wordings, keeps the restated
answers, and measures the verdict and the restated claim on wordings no arm ever trains on.

The wordings (`wordings`) are question frames per kind (`FRAMES`) and statements of the claim (`STATEMENTS`) put
into claim questions (`LEADS`: `Is it true that {s}?`). `TEST_FRAMES` and `TEST_LEADS` are kept out of every arm: a
new frame, and a new lead around a statement the arm has seen. No wording matches a held-out template
(`tasks.heldout_phrases`), and POPE's `Is there a ... in the ...` frame is left out of every set so that POPE's
wording stays new.

Arms (each `train_stage2` on the same base with `replay_corpus=True`, the restated answers of
`restated_verdicts.restated_pools`):
- `own`: the pools' own three wordings per kind;
- `vary-K`: each yes/no question of the four kinds in one of the own wordings or `K` more (drawn per kind, seeded);
- `vary-all`: every training wording (37-39 more per kind).

Measured on 120 fresh control items per task (`evaluate.control_suites`, 28 new tokens, the answer lead pre-filled,
the last word before the closing quote read as the verdict): in the trained wordings, and re-worded into the test
frames (`new frame`) and the test leads (`new lead`); with `claim` the share of answers whose restated quiz line is
the question's claim word for word. And the held-out POPE items as the run protocol asks them (`heldout_claims`): how
often the answer restates POPE's question as the base's presence claim about the image, and the verdict after it.

    python bench/wording_variety.py --base /tmp/verify-base --arms own vary-12 vary-all [--seeds 0 1 2] [--keep DIR]
    python bench/wording_variety.py --measure DIR/own-s0 DIR/vary-all-s0 ...   # measure kept checkpoints again

Training runs in bf16 where it runs; `MMKIT_PRECISION=fp32` trains in fp32 (`mmkit.train.bf16_available`), as the
probe of 2026-12-07 did on an fp32-built base.
"""
import argparse, json, random, re, shutil, sys, tempfile
from pathlib import Path

import datasets

from mmkit import data as mdata, tasks, world as W
from mmkit.evaluate import control_suites
from mmkit.model import generation_prompt, load_model
from mmkit.train import greedy, train_stage2

sys.path.insert(0, str(Path(__file__).resolve().parent))
import restated_verdicts as RV
import verification as V

KINDS = ("exists", "corners", "meaning", "creature")   # the yes/no kinds whose verdicts form in the verification base
FRAMES = {  # more question frames per kind; slots as in tasks.YN / tasks.SCENE_YN
    "exists": ["Can you see a {name} in the scene?", "Do you spot a {name} anywhere in the scene?",
               "Does a {name} appear in the description?", "Is any {name} present in the scene?",
               "Would someone find a {name} in this scene?", "Has the scene got a {name}?",
               "Does the description include a {name}?", "Is a {name} among the objects described?",
               "Can a {name} be spotted in this scene?", "Does this scene hold a {name}?",
               "Is one of the objects a {name}?", "Does the scene show a {name}?"],
    "corners": ["Does a {shape} come with {n} corners?", "Is the number of corners of a {shape} {n}?",
                "Would a {shape} show {n} corners?", "Do {n} corners belong to a {shape}?",
                "Is a {shape} a shape with {n} corners?", "Can a {shape} be said to have {n} corners?",
                "Does every {shape} have exactly {n} corners?", "Is {n} the corner count of a {shape}?",
                "Does a {shape} possess {n} corners?", "Would you count {n} corners on a {shape}?"],
    "meaning": ["Does {color} signal {m}?", "Is {m} what {color} means?", "Do people read {color} as {m}?",
                "Is {color} used to show {m}?", "Does {color} point to {m}?", "Is {color} a sign of {m}?",
                "Does seeing {color} make people think of {m}?", "Is {color} linked to {m}?",
                "Would {color} be taken to mean {m}?", "Does {color} carry the meaning {m}?"],
    "creature": ["Is a {color} {shape} called a {creature}?", "Would a {creature} be a {color} {shape}?",
                 "Do we call a {color} {shape} a {creature}?", "Is a {creature} shaped like a {color} {shape}?",
                 "Does the name {creature} belong to a {color} {shape}?", "Is the {creature} a {color} {shape}?",
                 "Would you call a {color} {shape} a {creature}?", "Does a {creature} have the form of a {color} {shape}?",
                 "Is a {creature} drawn as a {color} {shape}?", "Is a {color} {shape} what a {creature} is?"],
}
STATEMENTS = {  # the claim as a statement, for the claim questions of LEADS
    "exists": ["the scene contains a {name}", "a {name} is one of the objects", "the description has a {name} in it"],
    "corners": ["a {shape} has {n} corners", "there are {n} corners on a {shape}", "the corners of a {shape} number {n}"],
    "meaning": ["{color} stands for {m}", "the color {color} means {m}", "{color} is the color of {m}"],
    "creature": ["a {creature} is a {color} {shape}", "a {color} {shape} is called a {creature}",
                 "every {creature} looks like a {color} {shape}"],
}
LEADS = ["Is it true that {s}?", "Would you agree that {s}?", "Can you confirm that {s}?", "Someone says {s}. Is that right?",
         "Is the claim that {s} correct?", "Tell me whether {s}.", "Do you think {s}?", "Is it correct to say {s}?",
         "Here is a claim: {s}. Does it hold?"]
TEST_FRAMES = {  # kept out of every arm
    "exists": ["Is a {name} visible in the scene?", "Does the scene have a {name} in it?", "Do the objects include a {name}?"],
    "corners": ["Do you count {n} corners on a {shape}?", "Is a {shape} drawn with {n} corners?", "Does one find {n} corners on a {shape}?"],
    "meaning": ["Is {m} the meaning of {color}?", "Does {color} indicate {m}?", "Is {color} associated with {m}?"],
    "creature": ["Is a {creature} known to be a {color} {shape}?", "Does the word {creature} name a {color} {shape}?",
                 "Is a {creature} really a {color} {shape}?"],
}
TEST_LEADS = ["Is it the case that {s}?", "A friend claims {s}. Is the friend right?"]
_SCENE_KIND = {"exists"}

def wordings(kind: str, test: str | None = None) -> list[str]:
    """The training wordings of `kind` beyond the pools' own (frames, then every lead around every statement); `test='frame'`
    or `'lead'`: the held-back ones."""
    if test == "frame": return list(TEST_FRAMES[kind])
    if test == "lead": return [l.replace("{s}", s) for l in TEST_LEADS for s in STATEMENTS[kind]]
    return FRAMES[kind] + [l.replace("{s}", s) for l in LEADS for s in STATEMENTS[kind]]

def own_wordings(kind: str) -> list[str]:
    return list({**tasks.YN, **tasks.SCENE_YN}[kind])

def arm_wordings(arm: str, seed: int = 0) -> dict:
    "`{kind: wordings}` of an arm (`own`, `vary-K`, `vary-all`): the own wordings first."
    out = {}
    for k in KINDS:
        extra = wordings(k)
        if arm == "own": extra = []
        elif arm.startswith("vary-") and arm != "vary-all":
            extra = random.Random(f"wording-arm-{k}-{seed}").sample(extra, min(int(arm[5:]), len(extra)))
        elif arm != "vary-all": raise SystemExit(f"unknown arm {arm!r} (expected own, vary-K or vary-all)")
        out[k] = own_wordings(k) + extra
    return out

def _fill(template: str, g: dict) -> str:
    return W.fix_articles(template.format(**g))

def reword(question: str, templates: list[str], rng) -> str:
    "`question` (the pools' own wording) with its yes/no question put into one of `templates`, passage and suffix kept."
    kind, m = RV.parse(question)
    return question[:m.start()] + _fill(rng.choice(templates), m.groupdict()) + question[m.end():]

def reworded_pools(pools, by_kind: dict, seed: int = 0):
    "`pools` with every yes/no question of `KINDS` put into one of `by_kind[kind]` (uniformly); answers unchanged."
    rng, rows = random.Random(f"reword-{seed}"), []
    for r in pools:
        if r["task"] in ("knowledge_yn", "scene_yn") and (p := RV.parse(r["conversations"][0]["value"])) and p[0] in by_kind:
            q = reword(r["conversations"][0]["value"], by_kind[p[0]], rng)
            r = {**r, "conversations": [{**r["conversations"][0], "value": q}, r["conversations"][1]]}
        rows.append(r)
    return mdata.from_records_dataset(datasets.Dataset.from_list(rows, features=pools.features), "reworded yes/no pools")

def test_items(suites: dict, form: str, seed: int = 0) -> list[dict]:
    """The `knowledge_yn` and `scene_yn` control items of `KINDS`: as they are (`trained`), or re-worded into a test
    frame (`new frame`) or a test lead (`new lead`). Each item with its `kind`, `claim` and `answer`."""
    rng, out = random.Random(f"wording-test-{form}-{seed}"), []
    for suite in ("knowledge_yn", "scene_yn"):
        for it in suites[suite]:
            if not (p := RV.parse(it["question"])) or p[0] not in KINDS: continue
            q = it["question"] if form == "trained" else reword(it["question"], wordings(p[0], test=form.split()[1]), rng)
            out.append(dict(kind=p[0], question=q, claim=RV.claim_of(it["question"]), answer=it["answer"].lower()))
    return out

def ask(model, processor, suites: dict) -> dict:
    "Per form: accuracy and `yes` share (%), `claim` (% of answers restating the question's claim), per kind accuracy."
    out = {}
    for form in ("trained", "new frame", "new lead"):
        its = test_items(suites, form)
        outs = greedy(model, processor, [generation_prompt(it["question"], has_image=False) for it in its], max_new_tokens=28)
        said, gold = [RV.last_word(o) for o in outs], [it["answer"] for it in its]
        claim = [o.strip().startswith(V.line(it["claim"])) for o, it in zip(outs, its)]
        out[form] = dict(V.score(said, gold), claim=round(100 * sum(claim) / len(its), 1), n=len(its),
                         by_kind={k: v["accuracy"] for k, v in V._by_kind([it["kind"] for it in its], said, gold, KINDS).items()},
                         example=f"{its[0]['question'][-70:]} -> {outs[0][:60]}")
    return out

def pope_items(n: int | None = None, scale: str = "default"):
    "The microcosm's held-out POPE items (the first `n`), loaded once for every checkpoint `heldout_claims` measures."
    ds = tasks.microcosm(seed=0, scale=scale)["heldout"]["pope"]
    return ds.select(range(min(n, len(ds)))) if n else ds

def heldout_claims(model, processor, ds) -> dict:
    """The held-out POPE items `ds` (`pope_items`) as the run protocol asks them (the image, POPE's wording and its
    short-answer instruction, the answer lead pre-filled; 28 new tokens): `claim`, the share (%) of answers that restate
    the question's claim as the base's quiz line (`Q: any blue triangle? A:`), and the verdict read as
    `restated_verdicts.last_word` does."""
    outs = greedy(model, processor, [generation_prompt(q, has_image=True) for q in ds["question"]], images=list(ds["image"]),
                  max_new_tokens=28)
    names = [re.match(r"Is there an? (\w+ \w+) in the image", q).group(1) for q in ds["question"]]
    claim = [o.strip().startswith(V.line(f"any {k}")) for o, k in zip(outs, names)]
    return dict(V.score([RV.last_word(o) for o in outs], [a.lower() for a in ds["answer"]]), claim=round(100 * sum(claim) / len(outs), 1),
                n=len(outs), example=outs[0][:60])

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--recipe", default="lang_only")
    ap.add_argument("--arms", nargs="+", default=["own", "vary-12", "vary-all"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--controls", type=int, default=120, help="fresh control items per task")
    ap.add_argument("--base", default=None, help="base folder (default: the cached microcosm base)")
    ap.add_argument("--keep", metavar="DIR", help="keep each checkpoint as DIR/<arm>-s<seed>")
    ap.add_argument("--measure", nargs="+", metavar="CHECKPOINT", help="only measure kept checkpoints (`ask`, `heldout_claims`)")
    a = ap.parse_args()
    suites, pope = control_suites(a.controls), pope_items()
    if a.measure:
        for ck in a.measure:
            model, processor = load_model(ck)
            print(json.dumps(dict(checkpoint=ck, pope=heldout_claims(model, processor, pope), **ask(model, processor, suites))), flush=True)
        return
    pools = RV.restated_pools(mdata.microcosm_pools(seed=0))
    for seed in a.seeds:
        for arm in a.arms:
            by_kind = arm_wordings(arm, seed)
            p = pools if arm == "own" else reworded_pools(pools, by_kind, seed)
            with tempfile.TemporaryDirectory() as out:
                res = train_stage2(a.recipe, out, base=a.base, pools=p, seed=seed, replay_corpus=True)
                model, processor = load_model(res["checkpoint"])
                print(json.dumps(dict(recipe=a.recipe, seed=seed, arm=arm, wordings={k: len(v) for k, v in by_kind.items()},
                                      final_answer_loss=res["final_answer_loss"], pope=heldout_claims(model, processor, pope),
                                      **ask(model, processor, suites))), flush=True)
                if a.keep: shutil.copytree(res["checkpoint"], Path(a.keep)/f"{arm}-s{seed}", dirs_exist_ok=True)


if __name__ == "__main__":
    main()
