"""bench/described_scenes.py: the text form is the held-out item with its scene's description in place of the image;
the trained-wording form asks the same thing in stage 2's own wordings, with answers true of the scene; and the script
scores every form on a real model."""
import json, re, subprocess, sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]/"bench"))
import described_scenes as D
from mmkit import tasks, world as W
from mmkit.evaluate import load_suites

ROOT = Path(__file__).resolve().parents[1]

def _items(n=12):
    return load_suites(tasks.VISION_SUITES, n=n, image_size=32)

def test_text_form_keeps_the_question_and_puts_the_scene_in_words():
    for name, its in _items().items():
        text = D.described(its)
        assert len(text) == sum(it.get("image") is not None for it in its)          # ScienceQA's text half has no scene
        for it, t in zip([i for i in its if i.get("image") is not None], text):
            assert t["image"] is None and t["question"].endswith("\n" + it["question"])
            assert (t["answer"], t["choices"]) == (it["answer"], it["choices"])
            sc = W.Scene.from_json(it["scene"])
            passage = t["question"].split("\n")[0]
            assert any(passage == intro.format(d=W.describe(sc, k)) for intro in tasks.PASSAGE_INTRO for k in range(len(W.PHRASINGS)))

def test_trained_wording_answers_are_true_and_worded_as_stage_2():
    held = set(tasks.heldout_phrases())
    kinds = set()
    for name, its in _items(24).items():
        text, image = D.trained_wording(its)
        assert len(text) == len(image) and all(t["image"] is None for t in text) and all(i["image"] is not None for i in image)
        for t, i in zip(text, image):
            assert t["question"].endswith("\n" + i["question"]) and t["answer"] == i["answer"]
            sc, q, a, kind = W.Scene.from_json(i["scene"]), i["question"], i["answer"], i["skill"]
            kinds.add(kind)
            assert not any(tasks._phrase_regex(h).search(q) for h in held), q
            templates = tasks.SCENE_YN[kind] if kind in tasks.SCENE_YN else tasks.Q[kind]
            plain = re.sub(r"\b([Aa])n orange\b", r"\1 orange", q)                # the templates say 'a {name}'
            assert any(tasks._phrase_regex(w).search(plain) for w in templates), q
            objs = {o.name: o for o in sc.objects}
            if kind == "shape_at":
                pos = re.search(r"(top|middle|bottom) (left|center|right)", q).group(0)
                assert a == next(o.shape for o in sc.objects if sc.pos(o) == pos)
            elif kind == "where": assert a == sc.pos(objs[next(n for n in objs if n in q)])
            elif kind == "count": assert a == str(len(sc.objects))
            elif kind == "count_color":
                co = next(c for c in W.COLORS if c in q); assert a == str(sum(o.color == co for o in sc.objects))
            elif kind == "exists":
                assert (a == "yes") == any(o.name in q for o in sc.objects)
            else:
                x, y = [n for n in sorted(objs, key=q.find) if n in q]
                rel = next(r for r in W.RELATIONS if f" {r} " in q)
                assert (a == "yes") == (W.relation(sc, objs[x], objs[y]) == rel), q
    assert kinds == {"shape_at", "where", "count", "count_color", "exists", "relation"}

def test_own_caption_keeps_the_description_part():
    sc = W.Scene.from_json(_items(4)["gqa"][0]["scene"])
    cap = W.describe(sc) + " " + " ".join(W.statements(sc)[:2])
    assert D.first_sentence(cap) == W.describe(sc)
    assert D.first_sentence("a red circle at top left") == "a red circle at top left."

def test_scores_every_form_on_a_model(test_base, tmp_path):
    out = tmp_path/"forms.jsonl"
    r = subprocess.run([sys.executable, "bench/described_scenes.py", str(test_base), "--n", "4", "--scorers", "loglik",
                        "--trained-wording", "--own-caption", "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    lines = [json.loads(l) for l in out.read_text().splitlines()]
    assert [(l["scorer"], l["form"]) for l in lines] == ([("loglik", f) for f in D.FORMS] + [("generate", f) for f in D.TRAINED_FORMS]
                                                         + [("loglik", "own caption")])
    with_scene = sum(it.get("image") is not None for its in _items(4).values() for it in its)
    assert lines[-1]["caption"]["scenes"] == with_scene and 0 <= lines[-1]["caption"]["exact"] <= 1
    for l in lines:
        assert 0 <= l["avg"] <= 100 and l["skills"] and all(0 <= v <= 100 for v in l["skills"].values())
