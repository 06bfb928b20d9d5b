"""bench/wording_variety.py: the re-worded yes/no questions keep the claim of the question they replace (checked
against the knowledge base and the passage), no wording matches a held-out template, the test wordings are kept out
of every arm, and the measurement runs on a real model."""
import re, sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]/"bench"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import wording_variety as WV
from test_verification import _fact_holds
from mmkit import data as mdata, tasks

_SAMPLE = dict(name="red circle", shape="circle", n=3, color="red", m="danger", creature="zorb")

def test_no_wording_matches_a_held_out_template_and_test_wordings_stay_out_of_every_arm():
    held = [tasks._phrase_regex(p) for p in tasks.heldout_phrases()]
    for k in WV.KINDS:
        test = set(WV.wordings(k, "frame")) | set(WV.wordings(k, "lead"))
        assert len(test) == 9 and not test & set(WV.wordings(k)) and not test & set(WV.own_wordings(k))
        for arm in ("own", "vary-12", "vary-all"):
            assert not test & set(WV.arm_wordings(arm)[k])
        assert len(WV.arm_wordings("vary-12")[k]) == len(WV.own_wordings(k)) + 12
        for w in WV.wordings(k) + sorted(test):
            text = WV._fill(w, _SAMPLE)
            assert "{" not in text and not any(r.search(text) for r in held), text
            assert not re.match(r"is there", text, re.I)       # POPE's frame stays new

def test_reworded_pools_keep_each_question_s_claim_and_answer():
    import restated_verdicts as RV
    old = RV.restated_pools(mdata.microcosm_pools(seed=0, scale="test"))
    new = WV.reworded_pools(old, WV.arm_wordings("vary-all"))
    moved = 0
    for x, y in zip(old, new):
        assert x["conversations"][1] == y["conversations"][1] and x["task"] == y["task"]
        q0, q1 = x["conversations"][0]["value"], y["conversations"][0]["value"]
        if q0 == q1: continue
        moved += 1
        kind, m = RV.parse(q0)
        assert kind in WV.KINDS and q1.startswith(q0[:m.start()]) and q1.endswith(q0[m.end():])
        yes = y["conversations"][1]["value"].endswith('A: yes".')
        claim = RV.claim_of(q0)
        if kind == "exists":                                  # the re-worded question names the same object
            assert claim[4:] in q1 and bool(re.search(rf"\b{claim[4:]}\b", q0[:m.start()])) == yes
        else: assert _fact_holds(claim) == yes
    assert moved > 10

def test_test_items_ask_the_control_claims_in_new_wordings():
    from mmkit.evaluate import control_suites
    suites = control_suites(20)
    trained, frame, lead = (WV.test_items(suites, f) for f in ("trained", "new frame", "new lead"))
    assert len(trained) == len(frame) == len(lead) > 10
    for a, b, c in zip(trained, frame, lead):
        assert a["claim"] == b["claim"] == c["claim"] and a["answer"] == b["answer"] == c["answer"]
        assert a["question"] != b["question"] != c["question"]
    assert any(q["question"].split("\n")[-1].startswith(("Is it the case", "A friend claims")) for q in lead)

def test_ask_measures_every_form_on_a_model(test_base):
    from mmkit.evaluate import control_suites
    from mmkit.model import load_model
    res = WV.ask(*load_model(test_base), control_suites(10))
    for form in ("trained", "new frame", "new lead"):
        r = res[form]
        assert 0 <= r["accuracy"] <= 100 and 0 <= r["claim"] <= 100 and r["n"] > 0 and set(r["by_kind"]) == set(WV.KINDS)

def test_heldout_claims_reads_the_pope_items_on_a_model(test_base):
    from mmkit.model import load_model
    res = WV.heldout_claims(*load_model(test_base), WV.pope_items(8, scale="test"))
    assert res["n"] == 8 and 0 <= res["claim"] <= 100 and 0 <= res["accuracy"] <= 100
