"Tasks: determinism, schemas, the independent answer checker, answer balance, leakage checks, LLaVA export round trip."
import collections, json
import numpy as np
import pytest
from PIL import Image
import datasets
from mmkit.config import MMKitError
from mmkit.world import describe, sample_split_scene, is_heldout, Scene
from mmkit import tasks as T


@pytest.fixture(scope="module")
def micro(tmp_path_factory):
    import os
    old = os.environ.get("MMKIT_CACHE_DIR")
    os.environ["MMKIT_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    try: yield T.microcosm(0, "test")
    finally:
        if old is None: os.environ.pop("MMKIT_CACHE_DIR", None)
        else: os.environ["MMKIT_CACHE_DIR"] = old


@pytest.fixture(scope="module")
def full_heldout():
    return {n: T.heldout(n, seed=0) for n in T.SUITES}


def test_same_seed_byte_identical_different_seed_differs():
    d = T.dataset_digest
    assert d(T.instruction_pools(0, 6)) == d(T.instruction_pools(0, 6)) != d(T.instruction_pools(1, 6))
    assert d(T.stage1_captions(0, 10)) == d(T.stage1_captions(0, 10)) != d(T.stage1_captions(1, 10))
    for n in T.SUITES:
        assert d(T.heldout(n, 0, 16)) == d(T.heldout(n, 0, 16)) != d(T.heldout(n, 1, 16)), n
    assert T.stage0_corpus(0, 100) == T.stage0_corpus(0, 100) != T.stage0_corpus(1, 100)


def test_microcosm_cache_and_schemas(micro):
    again = T.microcosm(0, "test")
    assert again["path"] == micro["path"] and (micro["path"]/"meta.json").is_file()
    assert T.dataset_digest(again["pools"]) == T.dataset_digest(micro["pools"])
    fresh = T.microcosm(0, "test", cache=False)
    assert T.dataset_digest(fresh["pools"]) == T.dataset_digest(micro["pools"]) and fresh["corpus"] == micro["corpus"]
    for key in ("captions", "pools"):
        ds = micro[key]
        assert ds.column_names == ["id", "image", "conversations", "task", "modality"]
        assert isinstance(ds.features["image"], datasets.Image)
        for r in ds:
            h = r["conversations"][0]["value"]
            assert [t["from"] for t in r["conversations"]] == ["human", "gpt"]
            assert (r["image"] is not None) == (r["modality"] == "vision") == h.startswith("<image>")
            assert h.count("<image>") == (r["image"] is not None)
    assert set(micro["pools"]["task"]) == set(T.TRAIN_TASKS)
    assert not any(s in d for d in micro["corpus"] for s in ("USER", "ASSISTANT", "<image>", "###"))
    for n, ds in micro["heldout"].items():
        assert {"id", "dataset", "image", "question", "choices", "answer", "answer_type"} <= set(ds.column_names)
        assert len(ds) == 48 and len(set(ds["id"])) == 48


def test_multiple_choice_answers_name_the_right_option_then_its_letter():
    from mmkit.benchmarks import parse_choices
    pools = T.instruction_pools(0, 8)
    mc = [r for r in pools if r["task"].endswith("_mc")]
    assert {r["task"] for r in mc} == {"scene_mc", "knowledge_mc", "image_knowledge_mc"}
    for r in pools:
        human, gpt = (t["value"] for t in r["conversations"])
        letter = T.record_answer(gpt)
        if r["task"].endswith("_mc"):
            choices = parse_choices(human.replace("<image>", "").strip())
            assert gpt == T.MC_ANSWER_STYLE.format(choices[T.LETTERS.index(letter)], letter), gpt
        else: assert gpt == T.ANSWER_STYLE.format(letter)
    assert collections.Counter(T.record_answer(r["conversations"][1]["value"]) for r in mc) == {L: 6 for L in "ABCD"}
    with pytest.raises(MMKitError, match="neither"): T.record_answer("B")


def test_bind_documents_look_up_every_object_of_their_scene_correctly():
    import random, re
    pat = (r"The ([a-z]+ [a-z]+) cell holds an? (\w+) (\w+)\.|The (\w+) (\w+) is in the ([a-z]+ [a-z]+) cell\."
           r"|Q: (colour|shape) at ([a-z]+ [a-z]+)\? (?:A: (\w+)|((?:\([a-d]\) \w+ )+)A: (\w+) \(([a-d])\))\.")
    picks = 0
    for i in range(60):
        doc, (canon,) = T._corpus_doc(random.Random(i), "bind")
        where = {m[3]: (m[1], m[2]) for m in re.finditer(r"a (?:small|large) (\w+) (\w+) at ([a-z]+ [a-z]+)", canon)}
        assert len(where) >= 2, canon                                                # several objects: the cell must decide
        asks = re.findall(pat, doc)
        assert len(asks) == len(where), doc                                          # each object looked up once
        for a in asks:
            if a[0]: assert where[a[0]] == (a[1], a[2]), doc
            elif a[3]: assert where[a[5]] == (a[3], a[4]), doc
            else:                                                                    # a quiz line, plain or pick-one
                said = a[8] or dict(re.findall(r"\(([a-d])\) (\w+)", a[9]))[a[11]]
                assert not a[9] or said == a[10], doc                                # pick-one: the option named, then its letter
                assert where[a[7]][a[6] == "shape"] == said, doc
                picks += bool(a[9])
    assert picks > 0


def test_pick_one_quiz_lines_letter_the_right_option():
    import re
    from mmkit.world import CORNERS, MEANINGS, CREATURES, fix_articles
    truth = [(r"corners of an? (\w+)", lambda m: str(CORNERS[m[1]])), (r"meaning of (\w+)", lambda m: MEANINGS[m[1]]),
             (r"what is an? (\w+)", lambda m: fix_articles("a {} {}".format(*CREATURES[m[1]]))), (r"(\d+) plus (\d+)", lambda m: str(int(m[1]) + int(m[2])))]
    seen, letters = set(), set()
    for q, opts, said, letter in re.findall(r"Q: ([^?]+)\? ((?:\([a-d]\) [^()]+? )+)A: ([^()]+) \(([a-d])\)\.", " ".join(T.stage0_corpus(seed=0, n=3000))):
        options = dict(re.findall(r"\(([a-d])\) ([^()]+?) (?=\(|$)", opts))
        assert 3 <= len(options) <= 4 and len(set(options.values())) == len(options), opts
        assert options[letter] == said, (q, opts, said, letter)          # the option named, then its letter
        letters.add(letter)
        for i, (rx, right) in enumerate(truth):
            if m := re.fullmatch(rx, q):
                assert options[letter] == right(m), (q, opts, letter); seen.add(i)
    assert seen == {0, 1, 2, 3} and letters == set("abcd")


def test_default_sizes():
    assert T.SCALES["default"]["heldout"] == 240 and 12_000 <= T.SCALES["default"]["captions"] <= 20_000
    lang = sum(n for g, m, n in T.TRAIN_TASKS.values() if m == "language")
    vis = sum(n for g, m, n in T.TRAIN_TASKS.values() if m == "vision")
    assert lang >= 4000 and vis >= 4000                                       # a lang_only / vis_only run of the default budget fits


def test_every_heldout_answer_checks(full_heldout):
    for n, ds in full_heldout.items():
        assert len(ds) == T.HELDOUT_N
        assert T.check_heldout(ds) == [], n
    bad = full_heldout["gqa"].to_list()[0]; bad["answer"] = "nonsense"
    assert T.check_item(bad) != bad["answer"]


def test_answer_balance_and_formats(full_heldout):
    for n, ds in full_heldout.items():
        types = set(ds["answer_type"]); assert len(types) == 1, n
        t = types.pop()
        if t == "short": continue
        cnt = collections.Counter(ds["answer"])
        keys = ["yes", "no"] if t == "yesno" else [T.LETTERS[i] for i in range(len(ds[0]["choices"]))]
        assert set(cnt) == set(keys), (n, cnt)
        for k in keys: assert abs(cnt[k] / len(ds) - 1 / len(keys)) <= 0.05, (n, cnt)
        for r in ds:
            if t == "letter":
                assert r["question"].endswith(T.INSTR["letter"])
                assert "\n".join(f"{L}. {c}" for L, c in zip("ABCD", r["choices"])) in r["question"]
            else: assert r["choices"] == []
    pope = full_heldout["pope"]
    for c in T.POPE_CATEGORIES:
        sub = [a for a, k in zip(pope["answer"], pope["category"]) if k == c]
        assert len(sub) == 80 and sub.count("yes") == 40
    sq = full_heldout["scienceqa"]
    assert sum(i is None for i in sq["image"]) == len(sq) // 2
    for n in T.VISION_SUITES:
        if n != "scienceqa": assert all(i is not None for i in full_heldout[n]["image"])
    for n in T.LANGUAGE_SUITES: assert all(i is None for i in full_heldout[n]["image"])
    assert all(describe(Scene.from_json(s)) and is_heldout(Scene.from_json(s)) for s in full_heldout["pope"]["scene"])


def test_leakage_clean_and_planted_leaks_caught(micro):
    assert T.check_leakage(micro) == []
    r = micro["heldout"]["boolq"][0]
    ho = describe(Scene.from_json(r["scene"]))
    rec = lambda text: T._record("planted-0", "scene_qa", "language", text, "red")
    # 1. a held-out scene in a training text
    m = dict(micro, pools=datasets.concatenate_datasets([micro["pools"], T._to_dataset([rec(f"Scene: {ho}\nWhat?")], T._training_features())]))
    assert any("held-out scene" in p for p in T.check_leakage(m))
    # 2. a held-out instruction phrasing in the corpus
    m = dict(micro, corpus=list(micro["corpus"]) + ["Going by the passage, is the red circle small? " + T.INSTR["letter"]])
    probs = T.check_leakage(m)
    assert any("phrasing" in p and "option's letter" in p for p in probs) and any("Going by the passage" in p for p in probs)
    # 3. a held-out scene recorded in the training-scene ledger (e.g. used in a non-canonical phrasing)
    ledger = micro["train_scenes"].to_dict()
    for k, v in [("source", "pools"), ("id", "planted-1"), ("scene", ho)]: ledger[k].append(v)
    m = dict(micro, train_scenes=datasets.Dataset.from_dict(ledger))
    assert any("planted-1" in p for p in T.check_leakage(m))
    # 4. a held-out item whose scene is a training scene
    ho_ds = micro["heldout"]["pope"].to_list()
    ho_ds[0]["scene"] = sample_split_scene(0, False).to_json()
    m = dict(micro, heldout={**micro["heldout"], "pope": datasets.Dataset.from_list(ho_ds, features=micro["heldout"]["pope"].features)})
    assert any("uses a training scene" in p for p in T.check_leakage(m))


def _read_llava(path):
    "Minimal reader used when mmkit.data is not there: LLaVA JSON -> rows with PIL images."
    recs = json.loads(path.read_text())
    return [dict(r, image=Image.open(path.parent/r["image"]).convert("RGB") if "image" in r else None) for r in recs]


def test_export_llava_round_trip(micro, tmp_path):
    ds = datasets.concatenate_datasets([micro["pools"], micro["captions"].select(range(5))])
    path = T.export_llava(ds, tmp_path/"out")
    raw = json.loads(path.read_text())
    assert len(raw) == len(ds)
    for r in raw:
        assert set(r) >= {"id", "conversations"}
        if "image" in r: assert r["image"].startswith("images/") and (path.parent/r["image"]).is_file()
    try:
        from mmkit.data import load_llava_json
        back = load_llava_json(path)
        rows = [dict(zip(back.column_names, v)) for v in zip(*[back[c] for c in back.column_names])]
    except ImportError:
        rows = _read_llava(path)
    assert len(rows) == len(ds)
    for a, b in zip(ds, rows):
        assert (a["id"], a["conversations"], a["task"], a["modality"]) == (b["id"], b["conversations"], b["task"], b["modality"])
        if a["image"] is None: assert b["image"] is None
        else:
            im = b["image"] if isinstance(b["image"], Image.Image) else Image.open(b["image"]["path"] if isinstance(b["image"], dict) else b["image"])
            assert np.array_equal(np.asarray(a["image"].convert("RGB")), np.asarray(im.convert("RGB")))


@pytest.mark.parametrize("bad", [
    lambda: T.heldout("mmlu"), lambda: T.heldout("pope", n=0), lambda: T.heldout("pope", n=-3),
    lambda: T.instruction_pools(0, n_per_task=-1), lambda: T.stage1_captions(0, n=0), lambda: T.stage0_corpus(0, n=-5),
    lambda: T.microcosm(0, "huge"), lambda: T.stage1_captions(0, n=2, image_size=-1),
])
def test_bad_input(bad):
    with pytest.raises(MMKitError): bad()


def test_v2_corpus_needs_context_and_heldout_items_reuse_trained_skills():
    docs, kinds = T.stage0_corpus(0, 2000, kinds=True)
    assert sum(k in T.CONTEXT_KINDS for k in kinds) / len(kinds) >= 0.3           # documents that need their context
    rep = [d for d, k in zip(docs, kinds) if k == "repeat"]
    assert rep and all(d[:len(d) // 2 - 1] in d[len(d) // 2:] for d in rep)        # a sequence, said twice
    corpus = " ".join(docs)
    for concept in ("left of", "right of", "above", "below", "top row", "objects in all", "There is no"):
        assert concept in corpus, concept                                          # every concept a held-out item uses is stated
    for cap in (r[1]["value"] for r in T.stage1_captions(0, 20)["conversations"]):
        canon, rest = cap.split(". ", 1)                                            # canonical description, then statements
        assert canon.startswith("a ") and rest.startswith(("The ", "There ")), cap
    trained = {"count", "size", "color_at", "creature_color", "creature_shape", "story_who", "story_color", "story_where",
               "creature", "corners", "meaning", "sum", "exists", "where", "count_color", "relation", "shape_at"}
    for name in [*T.SUITES, T.NEGATIVE_SUITE]:
        ds = T.heldout(name, n=24)
        assert all(ds["skill"]) and T.check_heldout(ds) == [], name
        assert set(ds["skill"]) <= (trained if name != T.NEGATIVE_SUITE else {"none"}), (name, set(ds["skill"]))
    neg = T.heldout(T.NEGATIVE_SUITE, n=40)
    assert collections.Counter(neg["answer"]) == {L: 10 for L in "ABCD"}             # the hidden rank is balanced over letters
    assert not any(w in corpus for w in ("heavi", "oldest"))                           # the negative control's concepts: nowhere


def test_statements_restate_the_scene_truthfully():
    from mmkit.world import Obj, statements, relation
    sc = Scene((Obj("circle", "red", "small", 0, 0), Obj("square", "blue", "large", 2, 0)))
    st = statements(sc)
    assert "The red circle is above the blue square." in st and "The blue square is below the red circle." in st
    assert "The blue square is large." in st and "The bottom row has one object." in st
    assert relation(sc, *sc.objects) == "above"
