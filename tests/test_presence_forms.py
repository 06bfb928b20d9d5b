"""bench/presence_forms.py: its items are true and balanced, its chat form is a stage-2 presence question, its mention
sentence is one no training text uses, and it measures every form on a real model."""
import re, sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]/"bench"))
import presence_forms as P
from mmkit import tasks
from mmkit.train import presence_items

def test_items_are_balanced_and_true_and_the_chat_form_is_stage_2s():
    its = presence_items(60)
    assert [g for _, _, g in its] == ["yes", "no"] * 30
    for d, k, g in its:
        co, sh = k.split()
        assert (g == "yes") == bool(re.search(rf"\b{co} {sh}\b", d)), (d, k)   # every phrasing says "<colour> <shape>"
    q = P.SCENE_Q.split("? ")
    assert q[0] + "?" == tasks.SCENE_YN["exists"][0].format(name="{k}") and q[1] in tasks.YN_SUFFIX
    mention = P.forms()["quiz after a mention"]("D.", "red circle")
    said = mention.split("D.\n", 1)[1].split(" Q:")[0]
    assert said not in " ".join(tasks.stage0_corpus(seed=0, n=2000))
    chat = P.forms()["chat question, quiz in the answer"]("D.", "red circle")
    assert chat.count("red circle") == 2 and re.search(r'The best answer is "any red circle\? A:$', chat)

def test_measures_every_form_on_a_model(test_base):
    out = P.measure(test_base, n=8)
    assert set(out) == set(P.forms())
    assert all(0 <= v["accuracy"] <= 100 and 0 <= v["yes"] <= 100 for v in out.values())


def test_training_documents_answer_truly_and_a_pool_repeats():
    docs = P.documents(40)
    assert len(set(docs)) == 40
    said = []
    for d in docs:
        desc, lines = d.split("\n")
        for co, sh, a in re.findall(r"Q: any (\w+) (\w+)\? A: (yes|no)\.", lines):
            assert (a == "yes") == bool(re.search(rf"\b{co} {sh}\b", desc)), d
            said.append(a)
    assert 0.3 < said.count("yes") / len(said) < 0.7
    pooled = P.documents(10, pool=4)
    assert len(pooled) == 10 and len(set(pooled)) == 4 and pooled[:4] == pooled[4:8]

def test_mention_sentences_name_the_asked_object_and_are_not_the_forms_own():
    docs = P.documents(30, mentions=1.0)
    pairs = [m for d in docs for m in re.findall(r"(?:Look for|Think of|This is about|Someone asks about|Check) the (\w+ \w+)\. Q: any (\w+ \w+)\?", d)]
    assert len(pairs) == sum(d.count("Q: any") for d in docs) and all(a == b for a, b in pairs)
    assert not any("A question names" in d for d in docs)
    assert P.documents(20) == P.documents(20, mentions=0.0)               # no mentions: the same documents as before the option
