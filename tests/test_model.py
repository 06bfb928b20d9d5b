"Integration tests of mmkit.model on real transformers LLaVA objects (tiny sizes, CPU)."
import io, os, subprocess, sys

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoProcessor, AutoTokenizer, LlavaForConditionalGeneration

from mmkit.config import MMKitError
from mmkit.model import (IMAGE_TOKEN, POLICIES, SIZES, TEMPLATES, BadImageError, ModelLoadError, TemplateMismatchError,
                         apply_policy, build_tiny_llava, encode_conversation, generation_prompt, image_token_count,
                         load_image, load_model, make_llava15_fixture, merge_lora, param_counts,
                         render_segments, sample_tokenizer, save_model, train_tokenizer)


@pytest.fixture(scope="module")
def tok(): return sample_tokenizer()

@pytest.fixture(scope="module")
def tiny(tok): return build_tiny_llava(tok, "test", seed=0)

@pytest.fixture(scope="module")
def img():
    return Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))

@pytest.fixture(scope="module")
def batch(tiny, img):
    _, proc = tiny
    return proc(images=img, text=generation_prompt("What color is the circle?"), return_tensors="pt")

@pytest.fixture(scope="module")
def llava15(tmp_path_factory): return make_llava15_fixture(tmp_path_factory.mktemp("fx") / "llava15")


def _logits(model, batch):
    model.eval()
    with torch.no_grad(): return model(**batch).logits


# --- tokenizer -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["bpe", "word"])
def test_tokenizer_roundtrip(tmp_path, kind):
    t = train_tokenizer(["a red circle is at the top left.", "USER: what? ASSISTANT: 12 + 7 = 19</s>"] * 5,
                        vocab_size=200, kind=kind)
    for s in ["<pad>", "<s>", "</s>", "<unk>", IMAGE_TOKEN]: assert t.convert_tokens_to_ids(s) != t.unk_token_id or s == "<unk>"
    t.save_pretrained(tmp_path)
    t2 = AutoTokenizer.from_pretrained(tmp_path)
    text = "USER: <image>\nwhat is 12 + 7? ASSISTANT: 19</s>"
    assert t2(text)["input_ids"] == t(text)["input_ids"]
    assert t2.decode(t2(text)["input_ids"], skip_special_tokens=False).startswith("<s>")


def test_quoted_words_are_spelled_as_in_running_text(tmp_path):
    """A quoted answer and a line's first word use the same word tokens as the corpus's running text, and an answer
    letter the same token as the option label starting its line, also after a save and reload."""
    t = train_tokenizer(["a red circle is at the top left. 12 plus 7 is 19."] * 5, vocab_size=200)
    t.save_pretrained(tmp_path); t2 = AutoTokenizer.from_pretrained(tmp_path)
    for tk in (t, t2):
        running = tk.tokenize("is at the top left. plus 7")
        quoted = tk.tokenize('The best answer is "top left". "7"')
        assert quoted[quoted.index('"') + 1:quoted.index('"') + 3] == running[3:5] == ["▁top", "▁left"]
        assert quoted[-3:-1] == running[-2:] == ["▁", "7"]
        label, answer = tk.tokenize('top?\nB. left'), tk.tokenize('is "B".')     # an option's label is its answer letter
        assert label[label.index("\n") + 1:label.index(".")] == answer[answer.index('"') + 1:-2] == tk.tokenize("left B")[len(tk.tokenize("left")):]
        line = tk.tokenize("top.\nleft")                                          # a line's first word is the running text's
        assert line[line.index("\n") + 1] == "▁left"
        prompt = tk('The best answer is "', add_special_tokens=False)["input_ids"]    # the prefill is a prefix
        assert tk('The best answer is "top left".', add_special_tokens=False)["input_ids"][:len(prompt)] == prompt


# --- model: forward, backward, generate, save/reload, pipeline --------------------------------------------------------
def test_forward_backward_generate(tiny, batch):
    model, proc = tiny
    model.train()
    out = model(**batch, labels=batch["input_ids"])
    out.loss.backward()
    assert torch.isfinite(out.loss) and model.model.multi_modal_projector.linear_1.weight.grad is not None
    model.zero_grad(); model.eval()
    g_cache = model.generate(**batch, max_new_tokens=8, do_sample=False, use_cache=True)
    g_nocache = model.generate(**batch, max_new_tokens=8, do_sample=False, use_cache=False)
    assert g_cache.shape[1] > batch["input_ids"].shape[1]
    assert torch.equal(g_cache, g_nocache)


def test_sizes_build(tok):
    assert {"test", "default"} <= set(SIZES)
    m, _ = build_tiny_llava(tok, "default")
    assert m.config.text_config.hidden_size == 256 and m.config.image_token_index == tok.convert_tokens_to_ids(IMAGE_TOKEN)
    assert m.config.vision_feature_layer == -1 and m.config.projector_hidden_act == "gelu"
    assert m.generation_config.eos_token_id == tok.eos_token_id and m.generation_config.pad_token_id == tok.pad_token_id
    with pytest.raises(MMKitError): build_tiny_llava(tok, "huge")


def test_save_reload_plain_and_pipeline(tmp_path, tiny, batch, img):
    model, proc = tiny
    d = save_model(model, proc, tmp_path / "ckpt")
    files = {p.name for p in d.iterdir()}
    assert "model.safetensors" in files and not any(f.endswith((".bin", ".pt")) for f in files)
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]  # no temp folder left behind
    plain = LlavaForConditionalGeneration.from_pretrained(d)
    # the PIL backend, as `load_model` asks for: where torchvision is installed (GPU machines), AutoProcessor would pick
    # its torchvision backend, whose resize gives slightly different pixel values (seen on an H100 machine)
    p2 = AutoProcessor.from_pretrained(d, backend="pil")
    b2 = p2(images=img, text=generation_prompt("What color is the circle?"), return_tensors="pt")
    assert torch.equal(b2["input_ids"], batch["input_ids"]) and torch.equal(b2["pixel_values"], batch["pixel_values"])
    assert torch.equal(_logits(plain, b2), _logits(model, batch))
    m3, p3 = load_model(d)
    assert torch.equal(_logits(m3, batch), _logits(model, batch))
    assert load_model(d, dtype="bfloat16")[0].dtype == torch.bfloat16
    save_model(m3, p3, d)  # overwrite in place works
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]

    from transformers import pipeline
    pipe = pipeline("image-text-to-text", model=str(d))
    out = pipe(images=img, text=generation_prompt("What color is the circle?"), max_new_tokens=4)
    assert isinstance(out[0]["generated_text"], str) and len(out[0]["generated_text"]) > 0


def test_chat_template_agrees_with_generation_prompt(tiny):
    _, proc = tiny
    msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What color?"}]}]
    assert proc.apply_chat_template(msgs, add_generation_prompt=True) == generation_prompt("What color?", answer_prefix="")


# --- image token counts ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("image_size,patch_size,expected", [(64, 8, 64), (48, 16, 9), (336, 14, 576)])
def test_image_token_count(tok, llava15, image_size, patch_size, expected):
    if image_size == 336:
        model, proc = load_model(llava15)
    else:
        model, proc = build_tiny_llava(tok, "test", image_size=image_size, patch_size=patch_size)
    assert image_token_count(proc) == expected
    im = Image.fromarray(np.full((200, 150, 3), 128, np.uint8))  # not square: resize + crop to the tower's size
    b = proc(images=im, text=generation_prompt("Q?"), return_tensors="pt")
    assert (b["input_ids"] == model.config.image_token_index).sum().item() == expected
    with torch.no_grad():
        feats = model.get_image_features(pixel_values=b["pixel_values"]).pooler_output
        assert feats[0].shape[0] == expected
        assert model(**b).logits.shape[1] == b["input_ids"].shape[1]


# --- masking -----------------------------------------------------------------------------------------------------------
def test_labels_multi_turn_token_by_token(tok):
    conv = [{"from": "human", "value": "<image>\nWhat color is the circle?"}, {"from": "gpt", "value": "Red."},
            {"from": "human", "value": "How many corners does it have?"}, {"from": "gpt", "value": "It has 0 corners."},
            {"from": "human", "value": "Is it large?"}, {"from": "gpt", "value": "yes"}]
    n_img = 7
    enc = encode_conversation(conv, tok, "v1", n_image_tokens=n_img, record_id="multi")
    ids, labels = enc["input_ids"], enc["labels"]
    t = lambda s: tok(s, add_special_tokens=False)["input_ids"]
    img_id = tok.convert_tokens_to_ids(IMAGE_TOKEN)
    sys_ = TEMPLATES["v1"].system
    expected = [(tok.bos_token_id, False)]
    for tid in t(sys_ + "USER: <image>\nWhat color is the circle? ASSISTANT:"):
        expected += [(tid, False)] * (n_img if tid == img_id else 1)
    expected += [(i, True) for i in t(" Red.</s>")]
    expected += [(i, False) for i in t("USER: How many corners does it have? ASSISTANT:")]
    expected += [(i, True) for i in t(" It has 0 corners.</s>")]
    expected += [(i, False) for i in t("USER: Is it large? ASSISTANT:")]
    expected += [(i, True) for i in t(" yes</s>")]
    assert len(ids) == len(labels) == len(expected)
    for k, ((eid, sup), i, l) in enumerate(zip(expected, ids, labels)):
        assert i == eid, k
        assert l == (eid if sup else -100), k
    assert ids.count(img_id) == n_img
    answers = tok.decode([i for i, l in zip(ids, labels) if l != -100])
    assert answers.split("</s>")[:3] == [" Red.", " It has 0 corners.", " yes"]
    # whole-text agreement: the ids are exactly the tokenizer's ids for the rendered text (image expanded)
    whole = [tok.bos_token_id] + t("".join(s for s, _ in render_segments(conv)))
    assert [i for i in ids if i != img_id] == [i for i in whole if i != img_id]


def test_plain_template(tok):
    conv = [{"from": "human", "value": "Describe.\n<image>"}, {"from": "gpt", "value": "A large red circle."}]
    enc = encode_conversation(conv, tok, "plain", n_image_tokens=64, record_id="cap0")
    sup = [l for l in enc["labels"] if l != -100]
    assert enc["labels"][:65] == [-100] * 65 and enc["input_ids"][1:65] == [tok.convert_tokens_to_ids(IMAGE_TOKEN)] * 64
    assert tok.decode(sup) == "A large red circle.</s>" and len(enc["input_ids"]) == 65 + len(sup)


def test_template_mismatch_names_record():
    from tokenizers import Tokenizer, models, trainers
    from transformers import PreTrainedTokenizerFast
    # BPE with no pre-tokenizer: merges run across spaces, so "ASSISTANT:" + " yes" fuse into one token
    text = "USER: is it red? ASSISTANT: yes</s>"
    raw = Tokenizer(models.BPE(unk_token="<unk>"))
    raw.train_from_iterator([text[:-4]] * 50, trainers.BpeTrainer(vocab_size=400, special_tokens=["<unk>", "<pad>", "<s>", "</s>", "<image>"], show_progress=False))
    bad = PreTrainedTokenizerFast(tokenizer_object=raw, unk_token="<unk>", pad_token="<pad>", bos_token="<s>", eos_token="</s>")
    conv = [{"from": "human", "value": "is it red?"}, {"from": "gpt", "value": "yes"}]
    with pytest.raises(TemplateMismatchError, match="rec-42") as e:
        encode_conversation(conv, bad, "v1", record_id="rec-42")
    assert "\n" not in str(e.value) and isinstance(e.value, MMKitError)


def test_encode_errors(tok):
    with pytest.raises(MMKitError, match="r7"):
        encode_conversation([{"from": "human", "value": "hi"}], tok, record_id="r7")  # no answer turn
    with pytest.raises(MMKitError, match="r8"):
        encode_conversation([{"from": "gpt", "value": "hi"}, {"from": "human", "value": "x"}], tok, record_id="r8")
    with pytest.raises(MMKitError, match="n_image_tokens"):
        encode_conversation([{"from": "human", "value": "<image>\nQ"}, {"from": "gpt", "value": "A"}], tok, record_id="r9")
    with pytest.raises(MMKitError, match="unknown template"):
        encode_conversation([{"from": "human", "value": "Q"}, {"from": "gpt", "value": "A"}], tok, template="v9")


def test_all_masked_raises():
    t = sample_tokenizer()
    t.eos_token = None  # no eos to supervise, and an empty caption: nothing left to learn from
    with pytest.raises(MMKitError, match="no supervised token"):
        encode_conversation([{"from": "human", "value": "<image>"}, {"from": "gpt", "value": ""}], t, "plain",
                            n_image_tokens=4, record_id="empty")


def test_generation_prompt_prefix(tok):
    gp = generation_prompt("What color is the circle?")
    assert gp.endswith('ASSISTANT: The best answer is "')
    assert generation_prompt("Q?", answer_prefix="").endswith("ASSISTANT:")
    assert IMAGE_TOKEN not in generation_prompt("Q?", has_image=False)
    full = encode_conversation([{"from": "human", "value": "<image>\nWhat color is the circle?"},
                                {"from": "gpt", "value": 'The best answer is "red"'}], tok, n_image_tokens=1)["input_ids"]
    assert full[:len(tok(gp)["input_ids"])] == tok(gp)["input_ids"]


# --- policies and LoRA ---------------------------------------------------------------------------------------------------
def test_policies(tok):
    m, _ = build_tiny_llava(tok, "test")
    expect = {"stage0": (True, False, False), "stage1": (False, True, True), "stage2": (True, True, False)}
    for stage, (lm, pj, vt) in expect.items():
        pc = param_counts(apply_policy(m, stage))
        for part, on in zip(["language_model", "projector", "vision_tower"], (lm, pj, vt)):
            assert pc[part]["trainable"] == (pc[part]["total"] if on else 0), (stage, part)
    assert set(expect) <= set(POLICIES)
    with pytest.raises(MMKitError): apply_policy(m, "stage9")
    with pytest.raises(MMKitError): apply_policy(m, "stage1", lora=dict(r=4))


def _perturb_lora(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n: p.copy_(torch.randn(p.shape, generator=g) * 0.05)


def test_lora_language_model_only_save_merge_reload(tmp_path, tok, batch):
    base, proc = build_tiny_llava(tok, "test", seed=1)
    lm = apply_policy(base, "stage2", lora=dict(r=4, alpha=8, dropout=0.0, target_modules=["q_proj", "v_proj"]))
    lora_modules = [n for n, _ in lm.named_modules() if n.endswith(("lora_A", "lora_B"))]
    assert lora_modules and all("language_model" in n and "vision_tower" not in n for n in lora_modules)
    assert not any("vision_tower" in n and "lora" in n for n, _ in lm.named_modules())
    assert all(not p.requires_grad for n, p in lm.named_parameters() if "vision_tower" in n)
    assert any(p.requires_grad for n, p in lm.named_parameters() if "multi_modal_projector" in n)
    _perturb_lora(lm)
    ref = _logits(lm, batch)
    d = save_model(lm, proc, tmp_path / "lora")
    assert (d / "adapter_config.json").is_file() and (d / "base_model" / "model.safetensors").is_file()
    lm2, _ = load_model(d)
    assert torch.allclose(_logits(lm2, batch), ref, atol=1e-6)
    merged = merge_lora(lm2)
    assert type(merged) is LlavaForConditionalGeneration
    dm = save_model(merged, proc, tmp_path / "merged")
    assert not (dm / "adapter_config.json").exists()
    plain = LlavaForConditionalGeneration.from_pretrained(dm)
    assert not any("lora" in k for k in plain.state_dict())
    assert torch.allclose(_logits(plain, batch), ref, atol=1e-5)


def test_lora_run_on_llava15_fixture(tmp_path, llava15):
    model, proc = load_model(llava15)
    lm = apply_policy(model, "stage2", lora=dict(r=4, alpha=8, dropout=0.0))
    im = Image.fromarray(np.random.default_rng(1).integers(0, 255, (336, 336, 3), dtype=np.uint8))
    conv = [{"from": "human", "value": "<image>\nWhat color is the circle?"}, {"from": "gpt", "value": "Red."}]
    enc = encode_conversation(conv, proc.tokenizer, "v1", n_image_tokens=image_token_count(proc), record_id="fx0")
    assert image_token_count(proc) == 576 and len(enc["input_ids"]) > 576
    b = dict(input_ids=torch.tensor([enc["input_ids"]]), labels=torch.tensor([enc["labels"]]),
             pixel_values=proc.image_processor(im, return_tensors="pt")["pixel_values"])
    opt = torch.optim.AdamW([p for p in lm.parameters() if p.requires_grad], lr=1e-2)
    lm.train()
    for _ in range(2):
        loss = lm(**b).loss; loss.backward(); opt.step(); opt.zero_grad()
    assert torch.isfinite(loss)
    eval_b = {k: v for k, v in b.items() if k != "labels"}
    ref = _logits(lm, eval_b)
    d = save_model(lm, proc, tmp_path / "lora")
    lm2, p2 = load_model(d)
    assert torch.allclose(_logits(lm2, eval_b), ref, atol=1e-5)
    dm = save_model(merge_lora(lm2), p2, tmp_path / "merged")
    plain = LlavaForConditionalGeneration.from_pretrained(dm)
    assert torch.allclose(_logits(plain, eval_b), ref, atol=1e-5)
    assert image_token_count(AutoProcessor.from_pretrained(dm)) == 576


# --- bad input ---------------------------------------------------------------------------------------------------------
def _one_line(excinfo, *words):
    msg = str(excinfo.value)
    assert isinstance(excinfo.value, MMKitError) and "\n" not in msg, msg
    for w in words: assert str(w) in msg, msg


def test_bad_model_inputs(tmp_path, tiny):
    with pytest.raises(ModelLoadError) as e: load_model(tmp_path / "nope")
    _one_line(e, "nope")
    d = save_model(*tiny, tmp_path / "c")
    (d / "config.json").write_text("{not json")
    with pytest.raises(ModelLoadError) as e: load_model(d)
    _one_line(e, "config.json")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError) as e: load_model(tmp_path / "empty")
    _one_line(e, "config.json")


def test_offline_hub_id_fails_fast():
    # a fresh process with HF_HUB_OFFLINE=1, like a user's shell
    code = ("from mmkit.model import load_model, ModelLoadError\n"
            "try: load_model('no-such-org/no-such-llava-model')\n"
            "except ModelLoadError as e: print('ERR', e)\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    lines = [l for l in r.stdout.splitlines() if l.startswith("ERR")]
    assert len(lines) == 1 and "no-such-org/no-such-llava-model" in lines[0] and "HF_HUB_OFFLINE" in lines[0], r.stdout + r.stderr


def test_bad_images(tmp_path, img):
    p = tmp_path / "notes.png"; p.write_text("this is text, not a png")
    with pytest.raises(BadImageError) as e: load_image(p)
    _one_line(e, "notes.png")
    z = tmp_path / "zero.jpg"; z.write_bytes(b"")
    with pytest.raises(BadImageError) as e: load_image(z)
    _one_line(e, "zero.jpg")
    with pytest.raises(BadImageError) as e: load_image(tmp_path / "missing.png")
    _one_line(e, "missing.png")
    with pytest.raises(BadImageError) as e: load_image(np.zeros((0, 5, 3), np.uint8))
    _one_line(e, "zero-size")
    # good inputs: path, bytes, datasets dict, PIL (any mode), numpy float
    good = tmp_path / "ok.png"; img.save(good)
    buf = io.BytesIO(); img.convert("L").save(buf, format="PNG")
    for x in [good, str(good), good.read_bytes(), {"bytes": good.read_bytes(), "path": None}, img.convert("RGBA"),
              np.asarray(img) / 255.0, buf.getvalue()]:
        out = load_image(x)
        assert out.mode == "RGB" and out.size == (64, 64)


def test_sixteen_bit_and_exif_rotated_images(tmp_path):
    "16-bit PNGs are scaled to 8 bits (not clipped to white); EXIF-rotated JPEGs come out as a viewer shows them."
    from PIL import Image
    grey = (np.arange(6 * 8).reshape(6, 8) * 257 * 5).astype(np.uint16)          # 0 .. 60395 = 8-bit 0 .. 235
    p = tmp_path / "grey16.png"; Image.fromarray(grey).save(p)
    assert Image.open(p).mode in ("I;16", "I")
    for x in (p, p.read_bytes(), Image.open(p), Image.open(p).convert("I"), grey):
        out = np.asarray(load_image(x))
        assert out.shape == (6, 8, 3) and (out[..., 0] == np.arange(48).reshape(6, 8) * 5).all(), type(x)
    wide = Image.new("RGB", (40, 20), (255, 0, 0)); wide.paste((0, 0, 255), (20, 0, 40, 20))   # left red, right blue
    for orientation, size, red_at, blue_at in [(6, (20, 40), (10, 5), (10, 34)),       # rotate 90° cw to display
                                               (3, (40, 20), (34, 10), (5, 10)),       # upside down
                                               (1, (40, 20), (5, 10), (34, 10))]:      # as stored
        ex = Image.Exif(); ex[0x0112] = orientation
        f = tmp_path / f"o{orientation}.jpg"; wide.save(f, exif=ex, quality=95)
        out = load_image(f)
        assert out.size == size, orientation
        r, g, b = out.getpixel(red_at); assert r > 200 and b < 60, (orientation, out.getpixel(red_at))
        r, g, b = out.getpixel(blue_at); assert b > 200 and r < 60, (orientation, out.getpixel(blue_at))


def test_import_is_light():
    code = "import sys, mmkit.model; print(sorted(m for m in ('peft', 'gradio', 'datasets') if m in sys.modules))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.stdout.strip() == "[]", r.stdout + r.stderr


def test_llama_style_tokenizer_uses_prefix_check():
    "A SentencePiece-style tokenizer prepends '▁' to every encoded string: pieces never agree one by one, prefixes do."
    from tokenizers import pre_tokenizers, decoders
    t = sample_tokenizer()
    seq = [pre_tokenizers.Split("\n", behavior="isolated"),
           pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=True),
           pre_tokenizers.Punctuation(), pre_tokenizers.Digits(individual_digits=True)]
    t.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence(seq)
    t.backend_tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first", split=True)
    conv = [{"from": "human", "value": "What color?"}, {"from": "gpt", "value": "Red."},
            {"from": "human", "value": "Shape?"}, {"from": "gpt", "value": "A circle."}]
    pieces = [t(s, add_special_tokens=False)["input_ids"] for s, _ in render_segments(conv)]
    whole = t("".join(s for s, _ in render_segments(conv)), add_special_tokens=False)["input_ids"]
    assert sum(pieces, []) != whole  # the fast path cannot be used
    enc = encode_conversation(conv, t, record_id="llama-like")
    assert enc["input_ids"] == [t.bos_token_id] + whole
    answers = t.decode([i for i, l in zip(enc["input_ids"], enc["labels"]) if l != -100]).split("</s>")[:2]
    assert [a.strip() for a in answers] == ["Red.", "A circle."]
