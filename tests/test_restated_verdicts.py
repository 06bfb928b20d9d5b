"""bench/restated_verdicts.py: every stage-2 yes/no question gets the claim it makes, in `bench/verification.py`'s
wording (knowledge claims checked against the knowledge base, presence claims against the passage), and the restated
pools change those answers only."""
import re, sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]/"bench"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import restated_verdicts as R
from test_verification import _fact_holds
from mmkit import tasks

def test_every_yes_no_question_gets_its_claim():
    pools = tasks.instruction_pools(seed=0, n_per_task=60)
    seen = set()
    for r in pools:
        if r["task"] not in ("knowledge_yn", "scene_yn"): continue
        human, yes = r["conversations"][0]["value"], tasks.record_answer(r["conversations"][1]["value"]) == "yes"
        c = R.claim_of(human); seen.add(c.split()[0])
        if r["task"] == "knowledge_yn": assert _fact_holds(c) == yes, (human, c)
        elif c.startswith("any "):
            passage = human.rsplit("\n", 1)[0]
            assert bool(re.search(rf"\b{c[4:]}\b", passage)) == yes, (human, c)
        else:
            a, b = re.fullmatch(r"(\w+ \w+) (?:left of|right of|above|below) the (\w+ \w+)", c).groups()
            assert a in human and b in human
    assert {"any", "corners"} <= seen

def test_restated_pools_change_the_yes_no_answers_only():
    from mmkit import data as mdata
    old = mdata.microcosm_pools(seed=0, scale="test")
    new = R.restated_pools(old)
    assert len(old) == len(new)
    for x, y in zip(old, new):
        assert x["conversations"][0] == y["conversations"][0]
        if x["task"] in ("knowledge_yn", "scene_yn"):
            v = y["conversations"][1]["value"]
            assert re.fullmatch(r'The best answer is "Q: [^"?]+\? A: (yes|no)"\.', v), v
            assert v.endswith(f'A: {tasks.record_answer(x["conversations"][1]["value"])}".')
        else: assert x["conversations"] == y["conversations"]

def test_short_suffixed_pools_swap_only_the_yes_no_instruction():
    from mmkit import data as mdata
    old = mdata.microcosm_pools(seed=0, scale="test")
    new = R.short_suffixed(old, 1.0)
    ends = tasks.YN_SUFFIX + tasks.GENERIC_SUFFIX
    for x, y in zip(old, new):
        q0, q1 = x["conversations"][0]["value"], y["conversations"][0]["value"]
        if x["task"] in ("knowledge_yn", "scene_yn"):
            end = next(e for e in sorted(ends, key=len, reverse=True) if q0.endswith(e))
            short = next(s for s in tasks.SHORT_SUFFIX if q1.endswith(s))
            assert q0[:-len(end)] == q1[:-len(short)] and x["conversations"][1] == y["conversations"][1]
        else: assert x["conversations"] == y["conversations"]
    assert list(R.short_suffixed(old, 0.0)["conversations"]) == list(old["conversations"])
