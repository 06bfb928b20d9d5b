"""Real-benchmark adapters, offline: a few fixture rows per benchmark in that dataset's real HF column layout.

Layouts (checked against the hub dataset cards / lmms-eval task code):
  ehovy/race[high]                article, question, options, answer (letter), example_id
  allenai/openbookqa[main]        id, question_stem, choices{text,label}, answerKey
  google/boolq                    question, answer (bool), passage
  Rowan/hellaswag                 ind, activity_label, ctx_a, ctx_b, ctx, endings, source_id, split, split_type, label (str)
  lmms-lab/RealWorldQA            image, question (options + instruction inline), answer
  lmms-lab/ai2d                   question, options, answer (string index), image
  lmms-lab/POPE                   id, question_id, question, answer, image_source, image, category
  lmms-lab/GQA testdev_balanced_instructions (id, imageId, question, answer, fullAnswer, isBalanced, ...)
               + testdev_balanced_images (id, image)
  derek-thomas/ScienceQA          image, question, choices, answer (int), hint, task, grade, subject, topic, category, skill, lecture, solution
"""
import io, json
from pathlib import Path

import datasets
import pytest
import yaml
from PIL import Image

from mmkit.benchmarks import (BENCHMARKS, LETTER_INSTRUCTION, SHORT_INSTRUCTION, YESNO_INSTRUCTION, BenchmarkError,
                              check_items, load_benchmark)
from mmkit.config import MMKitError


def png(color="red", size=(8, 6)):
    b = io.BytesIO(); Image.new("RGB", size, color).save(b, format="PNG"); return b.getvalue()


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows)); return path


def write_parquet(path, rows, image_cols=("image",)):
    "Parquet as the hub stores it: image columns with the datasets.Image feature ({bytes, path} structs)."
    ds = datasets.Dataset.from_list(rows)
    for c in image_cols:
        if c in ds.column_names: ds = ds.cast_column(c, datasets.Image())
    ds.to_parquet(str(path)); return path


RACE = [dict(example_id="high19432.txt", article="Tom went to the market early. He bought apples and bread.",
             question="What did Tom buy?", options=["Milk", "Apples and bread", "Fish", "Nothing"], answer="B"),
        dict(example_id="high19432.txt", article="Tom went to the market early. He bought apples and bread.",
             question="When did Tom go?", options=["Early", "Late", "At noon", "Never"], answer="A")]
OBQA = [dict(id="8-376", question_stem="Frilled sharks and angler fish live far beneath the surface of the ocean, which is why they are known as",
             choices=dict(text=["Deep sea animals", "fish", "Long Sea Fish", "Far Sea Animals"], label=list("ABCD")), answerKey="A"),
        dict(id="8-347", question_stem="Gas can fill any container it is given, and liquid",
             choices=dict(text=["is standard weight and size", "is the opposite of variable", "only needs a few", "uses what it needs"], label=list("ABCD")), answerKey="D")]
BOOLQ = [dict(question="do iran and afghanistan speak the same language", answer=True,
              passage="Persian language -- Persian is a Western Iranian language spoken in Iran and Afghanistan."),
         dict(question="is windows movie maker part of windows essentials", answer=False,
              passage="Windows Movie Maker is a discontinued video editing software by Microsoft.")]
HELLASWAG = [dict(ind=24, activity_label="Roof shingle removal",
                  ctx_a="A man is sitting on a roof.", ctx_b="he", ctx="A man is sitting on a roof. he",
                  endings=["is using wrap to wrap a pair of skis.", "is ripping level tiles off.",
                           "is holding a rubik's cube.", "starts pulling up roofing on a roof."],
                  source_id="activitynet~v_-JhWjGDPHMY", split="val", split_type="indomain", label="3"),
             dict(ind=92, activity_label="Clean and jerk", ctx_a="A lady walks to a barbell. She bends down and grabs the pole.",
                  ctx_b="the lady", ctx="A lady walks to a barbell. She bends down and grabs the pole. the lady",
                  endings=["swings and lands in her arms.", "pulls the barbell forward.", "pulls a rope attached to the barbell.",
                           "stands and lifts the weight over her head."],
                  source_id="activitynet~v_-lJS58hyo1c", split="val", split_type="zeroshot", label="3")]
RWQA = [dict(image=png("blue"), question="In which direction is the front wheel of the car on the right side facing?\n\nA. Left\nB. Straight\nC. Right\n\nPlease answer directly with only the letter of the correct option and nothing else.", answer="C"),
        dict(image=png("green"), question="How many lanes are on this road?\nPlease answer directly with a single word or number.", answer="2"),
        dict(image=png("gray"), question="Is it safe to turn left here?\nPlease answer directly with a single word or number.", answer="No")]
AI2D = [dict(question="which of these define dairy item", options=["c", "D", "b", "a"], answer="1", image=png("white")),
        dict(question="What stage is labeled E?", options=["egg", "larva", "pupa", "adult"], answer="3", image=png("yellow"))]
POPE = [dict(id="0", question_id="1", question="Is there a snowboard in the image?", answer="yes",
             image_source="COCO_val2014_000000310196", image=png("white"), category="adversarial"),
        dict(id="1", question_id="2", question="Is there a car in the image?", answer="no",
             image_source="COCO_val2014_000000310196", image=png("white"), category="random")]
GQA = [dict(id="201307251", imageId="n15740", question="Is the plate on the left side?", answer="no",
            fullAnswer="No, the plate is on the right of the image.", isBalanced=True, semanticStr="select: plate->verify hposition: left"),
       dict(id="20846359", imageId="n356822", question="What is the color of the shirt?", answer="white",
            fullAnswer="The shirt is white.", isBalanced=True, semanticStr="select: shirt->query: color")]
GQA_IMAGES = [dict(id="n15740", image=png("brown")), dict(id="n356822", image=png("white"))]
SQA = [dict(image=png("orange"), question="Which of these states is farthest north?", choices=["West Virginia", "Louisiana", "Arizona", "Oklahoma"],
            answer=0, hint="", task="closed choice", grade="grade2", subject="social science", topic="geography",
            category="Geography", skill="Read a map: cardinal directions", lecture="Maps have four cardinal directions.", solution="West Virginia."),
       dict(image=None, question="Which tense does the sentence use?\nMona will print her name with care.", choices=["present tense", "future tense", "past tense"],
            answer=1, hint="", task="closed choice", grade="grade3", subject="language science", topic="verbs",
            category="Verb tense", skill="Is the sentence in the past, present, or future tense?", lecture="", solution=""),
       dict(image=png("purple"), question="Identify the question that Tom's experiment can best answer.", choices=["Does A?", "Does B?"],
            answer=1, hint="The passage below describes an experiment.\n\nTom put ice in two cups.", task="closed choice", grade="grade8",
            subject="natural science", topic="science-and-engineering-practices", category="Designing experiments",
            skill="Identify the experimental question", lecture="Experiments can be designed.", solution="")]


@pytest.fixture
def copies(tmp_path):
    "Local copies of all nine, in the file kinds the hub ships them in."
    d = {}
    d["race"] = write_parquet(tmp_path/"race.parquet", RACE)
    d["openbookqa"] = write_jsonl(tmp_path/"obqa.jsonl", OBQA)
    d["boolq"] = write_jsonl(tmp_path/"boolq.jsonl", BOOLQ)
    (tmp_path/"hs").mkdir(); d["hellaswag"] = tmp_path/"hs"; write_jsonl(tmp_path/"hs"/"hellaswag_val.jsonl", HELLASWAG)
    d["realworldqa"] = write_parquet(tmp_path/"rwqa.parquet", RWQA)
    d["ai2d"] = write_parquet(tmp_path/"ai2d.parquet", AI2D)
    d["pope"] = write_parquet(tmp_path/"pope.parquet", POPE)
    d["gqa"] = write_parquet(tmp_path/"gqa_instr.parquet", GQA)
    d["gqa_images"] = write_parquet(tmp_path/"gqa_images.parquet", GQA_IMAGES)
    d["scienceqa"] = write_parquet(tmp_path/"sqa.parquet", SQA)
    return d


def load(name, copies, **kw):
    if name == "gqa": kw.setdefault("images", copies["gqa_images"])
    return load_benchmark(name, copies[name], **kw)


@pytest.mark.parametrize("name", list(BENCHMARKS))
def test_every_adapter_maps_fixture_rows_to_valid_items(name, copies):
    items = load(name, copies)
    check_items(items, name, require_image=BENCHMARKS[name]["modality"] == "vision")
    assert len({it["id"] for it in items}) == len(items)
    for it in items:
        assert it["dataset"] == name
        assert set(it) >= {"id", "dataset", "image", "question", "choices", "answer", "answer_type"}
        if BENCHMARKS[name]["modality"] == "vision": assert isinstance(it["image"], Image.Image) and it["image"].mode == "RGB"
        else: assert it["image"] is None
        if it["answer_type"] == "letter":
            for i, c in enumerate(it["choices"]): assert f"{'ABCD'[i]}. {c}" in it["question"]
            assert it["question"].endswith(LETTER_INSTRUCTION)


def test_gold_answers_and_prompts_per_benchmark(copies):
    race = load("race", copies)
    assert [x["answer"] for x in race] == ["B", "A"] and race[0]["choices"][1] == "Apples and bread"
    assert race[0]["question"].startswith("Tom went to the market") and race[0]["id"] != race[1]["id"]
    obqa = load("openbookqa", copies)
    assert [x["answer"] for x in obqa] == ["A", "D"] and obqa[0]["id"] == "8-376"
    bq = load("boolq", copies)
    assert [x["answer"] for x in bq] == ["yes", "no"] and bq[0]["answer_type"] == "yesno" and bq[0]["choices"] == []
    assert "Question: Do iran and afghanistan speak the same language?" in bq[0]["question"] and bq[0]["question"].endswith(YESNO_INSTRUCTION)
    hs = load("hellaswag", copies)
    assert [x["answer"] for x in hs] == ["D", "D"] and hs[0]["question"].startswith("Roof shingle removal: A man is sitting on a roof. He")
    rw = load("realworldqa", copies)
    assert rw[0]["answer_type"] == "letter" and rw[0]["choices"] == ["Left", "Straight", "Right"] and rw[0]["answer"] == "C"
    assert "Please answer directly" not in rw[0]["question"]
    assert rw[1]["answer_type"] == "short" and rw[1]["choices"] == [] and rw[1]["question"].endswith(SHORT_INSTRUCTION)
    ai = load("ai2d", copies)
    assert [x["answer"] for x in ai] == ["B", "D"]
    pope = load("pope", copies)
    assert [x["answer"] for x in pope] == ["yes", "no"] and [x["category"] for x in pope] == ["adversarial", "random"]
    assert pope[0]["id"] == "pope-1"
    gqa = load("gqa", copies)
    assert [x["answer"] for x in gqa] == ["no", "white"] and gqa[0]["image"].getpixel((0, 0)) == (165, 42, 42)
    sqa = load("scienceqa", copies)
    assert len(sqa) == 2 and [x["answer"] for x in sqa] == ["A", "B"]           # image subset: the text-only row is dropped
    assert sqa[1]["question"].startswith("Context: The passage below")
    sqa_all = load("scienceqa", copies, subset="all")
    assert len(sqa_all) == 3 and sqa_all[1]["image"] is None


def test_paper_compat_prompts_peek_at_gold_only_when_asked(copies):
    default = load("gqa", copies)
    assert all(x["question"].endswith(SHORT_INSTRUCTION) for x in default)
    paper = load("gqa", copies, paper_compat=True)
    assert paper[0]["question"].endswith(YESNO_INSTRUCTION) and paper[1]["question"].endswith(SHORT_INSTRUCTION)
    assert paper[0]["prompt_style"] == "paper" and default[0]["prompt_style"] == "default"
    rw_default, rw_paper = load("realworldqa", copies), load("realworldqa", copies, paper_compat=True)
    assert rw_default[2]["question"].endswith(SHORT_INSTRUCTION) and rw_paper[2]["question"].endswith(YESNO_INSTRUCTION)
    assert "number" in rw_paper[1]["question"] and "number" not in rw_default[1]["question"]


def test_gqa_images_from_a_folder(copies, tmp_path):
    folder = tmp_path/"gqa_imgs"; folder.mkdir()
    for r in GQA_IMAGES: (folder/f"{r['id']}.png").write_bytes(r["image"])
    items = load_benchmark("gqa", copies["gqa"], images=folder)
    assert all(isinstance(x["image"], Image.Image) for x in items)


def test_sampling_n_is_seeded_and_keeps_order(copies):
    a = load("scienceqa", copies, subset="all", n=2, seed=1)
    b = load("scienceqa", copies, subset="all", n=2, seed=1)
    assert [x["id"] for x in a] == [x["id"] for x in b] and len(a) == 2


def test_json_copy_with_relative_image_paths(tmp_path):
    (tmp_path/"imgs").mkdir(); (tmp_path/"imgs"/"a.png").write_bytes(png("red"))
    rows = [dict(AI2D[0], image="imgs/a.png")]
    write_jsonl(tmp_path/"ai2d.jsonl", rows)
    items = load_benchmark("ai2d", tmp_path/"ai2d.jsonl")
    assert items[0]["image"].getpixel((0, 0)) == (255, 0, 0)


def test_bad_inputs_raise_one_line_errors_naming_dataset_and_item(tmp_path):
    write_parquet(tmp_path/"ai2d.parquet", [dict(AI2D[0], answer="7")])
    with pytest.raises(MMKitError, match=r"^ai2d: item 'ai2d-0': gold answer 'H' is not among its choices"):
        load_benchmark("ai2d", tmp_path/"ai2d.parquet")
    write_parquet(tmp_path/"pope.parquet", [POPE[0], dict(POPE[1], image=None)])
    with pytest.raises(MMKitError, match=r"^pope: item 'pope-2': image is missing"):
        load_benchmark("pope", tmp_path/"pope.parquet")
    write_parquet(tmp_path/"gqa.parquet", GQA)
    with pytest.raises(MMKitError, match=r"gqa: item 'gqa-201307251'"):
        load_benchmark("gqa", tmp_path/"gqa.parquet", images={"n356822": png()})
    (tmp_path/"empty").mkdir(); write_jsonl(tmp_path/"empty"/"boolq.jsonl", [dict(BOOLQ[0])])
    with pytest.raises(MMKitError, match=r"^scienceqa: dataset is empty"):
        write_parquet(tmp_path/"sqa.parquet", [SQA[1]]); load_benchmark("scienceqa", tmp_path/"sqa.parquet")
    with pytest.raises(MMKitError, match=r"openbookqa: row 0 .*expected column layout"):
        load_benchmark("openbookqa", tmp_path/"empty"/"boolq.jsonl")
    with pytest.raises(MMKitError, match="not found"):
        load_benchmark("race", tmp_path/"missing.parquet")
    with pytest.raises(MMKitError, match="unknown benchmark"):
        load_benchmark("mmlu", tmp_path)
    for e in [BenchmarkError("x")]: assert isinstance(e, ValueError)


def test_export_lm_eval_writes_parseable_tasks_over_local_json(tmp_path):
    "lm-eval is not installed: check the YAML parses, points at existing files, and the docs carry the right fields."
    from mmkit import tasks
    from mmkit.benchmarks import export_lm_eval
    from mmkit.model import generation_prompt
    paths = export_lm_eval(tmp_path/"lm", n=5)
    assert [p.name for p in paths] == [f"mmkit_{s}.yaml" for s in tasks.LANGUAGE_SUITES]
    group = yaml.safe_load((tmp_path/"lm"/"_mmkit.yaml").read_text())
    assert group["group"] == "mmkit" and group["task"] == [f"mmkit_{s}" for s in tasks.LANGUAGE_SUITES]
    for s, p in zip(tasks.LANGUAGE_SUITES, paths):
        cfg = yaml.safe_load(p.read_text())
        assert cfg["task"] == f"mmkit_{s}" and cfg["output_type"] == "multiple_choice" and cfg["dataset_path"] == "json"
        assert cfg["doc_to_text"] == "{{query}}" and cfg["doc_to_choice"] == "choices" and cfg["doc_to_target"] == "gold"
        assert cfg["target_delimiter"] == "" and {m["metric"] for m in cfg["metric_list"]} == {"acc", "acc_norm"}
        data = Path(cfg["dataset_kwargs"]["data_files"][cfg["test_split"]])
        assert data.is_absolute() and data.is_file()
        docs = [json.loads(l) for l in data.read_text().splitlines()]
        items = list(tasks.heldout(s, n=5))
        assert len(docs) == 5 == cfg["metadata"]["n_docs"]
        for d, it in zip(docs, items):
            assert d["id"] == it["id"] and d["query"] == generation_prompt(it["question"], has_image=False)
            assert d["query"].endswith('The best answer is "')
            if it["answer_type"] == "letter": assert d["choices"] == it["choices"] and "ABCDEFGH"[d["gold"]] == it["answer"]
            else: assert d["choices"] == ["yes", "no"] and d["choices"][d["gold"]] == it["answer"]
    # real-benchmark items can be exported too; image items and short answers are refused with a clear error
    export_lm_eval(tmp_path/"lm2", items={"boolq": [dict(id="b1", dataset="boolq", image=None, question="Q?", choices=[],
                                                       answer="no", answer_type="yesno")]})
    assert yaml.safe_load((tmp_path/"lm2"/"mmkit_boolq.yaml").read_text())["task"] == "mmkit_boolq"
    with pytest.raises(MMKitError, match=r"gqa: item 'g1': short-answer"):
        export_lm_eval(tmp_path/"lm3", items={"gqa": [dict(id="g1", dataset="gqa", image=None, question="Q?", choices=[],
                                                         answer="red", answer_type="short")]})
