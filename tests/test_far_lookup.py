"""bench/far_lookup.py's quiz documents: each answer is the asked object's, the fillers and cues share no phrase with
the stage-2 suffixes or the held-out templates, and the filler count is what was asked for."""
import random, re, sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]/"bench"))
import far_lookup as F
from mmkit import tasks, world as W

def test_quiz_lines_answer_the_object_asked_about_after_the_asked_fillers():
    rng = random.Random(0)
    for k in range(7):
        sc = W.sample_split_scene(rng, heldout=False)
        q, a = F.question(rng, sc, k, cues=F.CUES)
        m = re.fullmatch(r"Q: (shape|colour) at (\w+ \w+)\? (.*?)(" + "|".join(map(re.escape, F.CUES)) + ")", q)
        assert m, q
        o = next(o for o in sc.objects if sc.pos(o) == m[2])
        assert a == (o.shape if m[1] == "shape" else o.color)
        assert sum(m[3].count(f) for f in F.FILLER) == k

def test_fillers_and_cues_are_no_stage2_or_heldout_phrase():
    stage2 = tasks.SHORT_SUFFIX + tasks.MC_SUFFIX + tasks.YN_SUFFIX + tasks.GENERIC_SUFFIX + [t for ts in tasks.Q.values() for t in ts]
    held = [tasks._phrase_regex(t) for t in tasks.heldout_phrases()]
    docs = F.documents(300, 6, cues=F.CUES)
    assert len(docs) == 300 and all(" Q: " in d for d in docs)
    for d in docs:
        assert not any(h.search(d) for h in held), d
        assert not any(s in d for s in stage2), d
