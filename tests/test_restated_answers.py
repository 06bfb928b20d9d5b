"""bench/restated_answers.py's pools: only one-object scene_qa answers change, each restates an object the passage
describes and that the answer is about, and the answer itself stays as it was."""
import re, sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]/"bench"))
import restated_answers as R
from mmkit import tasks, world as W

@pytest.fixture(scope="module")
def old():
    "The unchanged pools, generated once for the module."
    return tasks.instruction_pools(seed=0)

def test_restated_pools_restate_the_object_asked_about(old):
    new = R.restated_pools(0)
    assert len(old) == len(new)
    changed = [(o, n) for o, n in zip(old, new) if o["conversations"] != n["conversations"]]
    assert 300 < len(changed) < 800                                  # about half of the 800 scene_qa records
    for o, n in changed:
        assert o["task"] == n["task"] == "scene_qa" and o["conversations"][0] == n["conversations"][0]
        was, now = o["conversations"][1]["value"], n["conversations"][1]["value"]
        restate, answer = now[: -len(was) - 1], tasks.record_answer(was)
        assert now.endswith(" " + was)
        passage = o["conversations"][0]["value"].split("\n")[0]
        m = re.fullmatch(r"The (\w+ \w+) cell holds an? (\w+) (\w+)\.", restate) or re.fullmatch(r"The (\w+) (\w+) is (small|large)\.", restate)
        assert m, restate
        if "cell holds" in restate:
            assert answer in (m[2], m[3]) and m[1] in o["conversations"][0]["value"]
            assert f"{m[2]} {m[3]}" in passage
        else:
            assert answer == m[3] and f"{m[1]} {m[2]}" in passage

@pytest.mark.parametrize("style", ["quoted", "named"])
def test_quoted_styles_put_the_restatement_inside_the_answer_before_the_answer(old, style):
    new = R.restated_pools(0, style)
    changed = [(o, n) for o, n in zip(old, new) if o["conversations"] != n["conversations"]]
    assert 300 < len(changed) < 800 and all(o["task"] == "scene_qa" for o, _ in changed)
    for o, n in changed:
        said = tasks.record_answer(n["conversations"][1]["value"])       # still in tasks.ANSWER_STYLE
        restate, _, answer = said.rpartition(", so ")
        gold = tasks.record_answer(o["conversations"][1]["value"])
        if style == "named":
            attribute = "size" if gold in ("small", "large") else "color" if gold in W.COLORS else "shape"
            assert answer == f"its {attribute} is {gold}"
            assert attribute == "size" or attribute in o["conversations"][0]["value"].split("\n")[-1]   # the word the question asks with
        else: assert answer == gold
        assert re.fullmatch(r"the (\w+ \w+) cell holds an? \w+ \w+|the \w+ \w+ is (small|large)", restate), restate
