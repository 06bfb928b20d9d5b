"""bench/verification.py: every claim it writes is true or false as labelled (checked here against the scene and the
knowledge base independently), its items and documents are balanced, and it measures every kind on a real model."""
import random, re, sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]/"bench"))
import verification as V
from mmkit import world as W

def _holds(sc, claim: str) -> bool:
    "Whether a scene claim holds in `sc`, decided from the scene's objects."
    by_name = {o.name: o for o in sc.objects}
    if m := re.fullmatch(r"any (\w+ \w+)", claim): return m[1] in by_name
    if m := re.fullmatch(r"(\w+ \w+) at (\w+ \w+)", claim): return m[1] in by_name and sc.pos(by_name[m[1]]) == m[2]
    m = re.fullmatch(r"(\w+ \w+) (left of|right of|above|below) the (\w+ \w+)", claim)
    return W.relation(sc, by_name[m[1]], by_name[m[3]]) == m[2]

def _fact_holds(claim: str) -> bool:
    if m := re.fullmatch(r"corners of a (\w+) (\d+)", claim): return W.CORNERS[m[1]] == int(m[2])
    if m := re.fullmatch(r"(\w+) means (\w+)", claim): return W.MEANINGS[m[1]] == m[2]
    if m := re.fullmatch(r"an? (\w+) an? (\w+) (\w+)", claim): return W.CREATURES[m[1]] == (m[2], m[3])
    m = re.fullmatch(r"(\d+) plus (\d+) is (\d+)", claim)
    return int(m[1]) + int(m[2]) == int(m[3])

def test_scene_and_fact_claims_are_true_or_false_as_asked():
    rng = random.Random(0)
    for i in range(600):
        sc = W.sample_split_scene(rng, heldout=False, min_objects=2); true = i % 2 == 0
        for kind in V.SCENE_KINDS:
            c = V._scene_claim(rng, sc, kind, true)
            if c is not None: assert _holds(sc, c) == true, (sc.to_json(), kind, c, true)
        for kind in V.FACT_KINDS:
            c = V._fact_claim(rng, kind, true)
            assert _fact_holds(c) == true, (kind, c, true)
    assert V.line("any red circle", True) == "Q: any red circle? A: yes." and V.line("any red circle") == "Q: any red circle? A:"

def test_items_and_documents_are_balanced():
    its = V.items(20)
    assert [k for k, _, _ in its] == [k for k in V.SCENE_KINDS + V.FACT_KINDS for _ in range(20)]
    assert all([g for k, _, g in its if k == kind] == ["yes", "no"] * 10 for kind in V.SCENE_KINDS + V.FACT_KINDS)
    assert all(p.endswith("? A:") for _, p, _ in its)
    docs = V.documents(300)
    answers = re.findall(r"\? A: (yes|no)\.", " ".join(docs))
    assert len(docs) == 300 and 0.4 < answers.count("yes") / len(answers) < 0.6
    scene_docs = [d for d in docs if "\n" in d]
    assert 150 < len(scene_docs) < 250 and all(not d.startswith("Q:") for d in scene_docs)

def test_measures_every_kind_on_a_model(test_base):
    from mmkit.model import load_model
    out = V.measure_model(*load_model(test_base), n=4)
    assert set(out) == set(V.SCENE_KINDS + V.FACT_KINDS) | {"scene", "facts"}
    assert all(0 <= out[k]["accuracy"] <= 100 and 0 <= out[k]["yes"] <= 100 for k in V.SCENE_KINDS + V.FACT_KINDS)


def test_image_claim_captions_state_true_claims_about_their_own_image():
    caps = V.image_claim_captions(40, image_size=32)
    assert len(caps) == 40 and set(caps["task"]) == {"caption"}
    said = []
    for r in caps:
        assert r["conversations"][0]["value"] == "<image>" and r["image"].size == (32, 32)    # decoded by the Image feature
        said += re.findall(r"\? A: (yes|no)\.", r["conversations"][1]["value"])
    assert 0.3 < said.count("yes") / len(said) < 0.7
    its = V.image_items(6)
    assert [k for k, *_ in its] == [k for k in V.SCENE_KINDS for _ in range(6)]
    assert all(_holds(sc, c) == (g == "yes") for _, sc, c, g in its)

def test_image_train_continues_stage_1_and_keeps_the_replay_texts(tmp_path, test_base):
    import json
    from mmkit import train as T
    from mmkit.train import REPLAY_TEXTS, continue_base, lm_blocks
    src = tmp_path/"src"
    continue_base(test_base, src, lambda tok, n: lm_blocks(V.documents(200), tok, 32), steps=2, batch_size=4, block_size=32,
                  name="verification_warmup", replay_texts=V.documents(20, seed=1))
    rec = V.image_train(src, tmp_path/"img", n=16, measure_n=2)
    assert rec["records"] == 16 and set(rec["after"]["images"]) == {"image", "own caption", "image and description"}
    info = json.loads((tmp_path/"img"/"base.json").read_text())
    assert info["image_verification"]["from_base"] == "src" and info["gates"]["stage1"] == rec["stage1_gates"]
    assert info["gate_failures"] == T.gate_failures(info["gates"]) and "presence_accuracy" in info["gates"]["stage0"]
    assert json.loads((tmp_path/"img"/REPLAY_TEXTS).read_text()) == V.documents(20, seed=1)
