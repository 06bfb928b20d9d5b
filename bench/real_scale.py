"""Real scale on one GPU: a LLaVA-1.5-7B-shaped model through mmkit's stage 2 and evaluator, timed.

No llava-hf weights can be fetched offline, so the model has LLaVA-1.5-7B's architecture with random weights: CLIP
ViT-L/14 at 336 px (576 image tokens, features of layer -2), a 2-layer GELU projector and a Llama-2-7B language model
(32 layers, hidden 4096, MLP 11008), with the microcosm's tokenizer (so a 1.5k-token vocabulary instead of 32k: the
embedding and LM head are ~2 % of the 7B model's FLOPs). It exercises what only real scale does — 576 image tokens per
example, bf16 weights on a GPU, LoRA on a 7B language model, a 14 GB checkpoint written and read back, the batched
evaluator at real prompt lengths — and measures it. It says nothing about quality (the weights are random).

1. writes the model as a llava-hf folder (bf16 safetensors);
2. stage 2: `mmkit.train.train_stage2` on the `mlan` mix (`--budget` examples, LoRA on every linear layer of the
   language model, r=128/alpha=256 as LLaVA-1.5's LoRA recipe; batch 8 × 2 accumulation = mmkit's 16), timed by the
   Trainer's steps after `--warmup`: useful tokens/s and model FLOP/s as a fraction of this GPU's bf16 matmul peak
   (measured now: an 8192³ product). Model FLOPs count 4·N·T for the frozen 7B (forward + input gradients; LoRA
   trains no base weight) plus the LoRA matmuls, 2·N·T for the vision tower on each image, and causal attention;
   activation checkpointing's recomputation is not counted. An out-of-memory error retries with checkpointing on;
3. evaluation of the merged checkpoint in bf16: `mmkit.evaluate.generate_answers` (batched) vs a one-item-at-a-time
   `generate` loop (`bench/eval_throughput.py`'s) on the same held-out items: items/s, ratio, agreement.

    python bench/real_scale.py [--shape llava-1.5-7b|test] [--budget 512] [--eval-n 16] [--work /tmp/mmkit-real]

`--shape test` runs the same pipeline on a tiny model with the same 336-px processor (a CPU check of the script).
"""
import argparse, gc, json, os, shutil, sys, time
os.environ.setdefault("HF_HUB_OFFLINE", "1"); os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1"); os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
import torch
from transformers import AutoConfig, CLIPVisionConfig, GenerationConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from eval_throughput import best_of, one_at_a_time   # the same baseline loop as the eval bench
from train_throughput import DEV, PEAK_DTYPE, PEAK_NAME, StepClock, default_tokenizer, matmul_peak   # and the train bench's clock, tokenizer and peak
from mmkit import tasks
from mmkit.data import TokenLedger
from mmkit.evaluate import extract_answer, generate_answers, load_suites
from mmkit.model import IMAGE_TOKEN, build_tiny_llava, image_token_count, load_model, make_processor, save_model
from mmkit.train import base_path, train_stage2

LORA = dict(r=128, alpha=256, dropout=0.05, target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])

def tokenizer():
    p = base_path(size="default", scale="default")
    if (p/"tokenizer.json").is_file():
        from transformers import AutoTokenizer
        return AutoTokenizer.from_pretrained(p), f"the microcosm base's ({p.name})"
    return default_tokenizer(), "trained on the microcosm corpus"

def llava15_7b_config(tok) -> LlavaConfig:
    "LLaVA-1.5-7B's architecture (llava-hf/llava-1.5-7b-hf's config) for `tok`'s vocabulary."
    ids = dict(pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    text = LlamaConfig(vocab_size=len(tok), hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                       num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=4096, rms_norm_eps=1e-5,
                       tie_word_embeddings=False, **ids)
    vision = CLIPVisionConfig(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                              image_size=336, patch_size=14, projection_dim=768, hidden_act="quick_gelu")
    return LlavaConfig(vision_config=vision, text_config=text, image_token_index=tok.convert_tokens_to_ids(IMAGE_TOKEN),
                       projector_hidden_act="gelu", vision_feature_layer=-2, vision_feature_select_strategy="default",
                       image_seq_length=576, tie_word_embeddings=False)

def build(shape: str, tok, path):
    "Write a random model of `shape` as a llava-hf folder (bf16); returns (seconds, parameters)."
    t = time.perf_counter()
    if shape == "test":
        model, proc = build_tiny_llava(tok, "test", image_size=336, patch_size=14)
        model = model.to(PEAK_DTYPE)   # bf16, or fp32 on a CPU without native bf16
    else:
        cfg = llava15_7b_config(tok)
        with torch.device(DEV): model = LlavaForConditionalGeneration._from_config(cfg, dtype=torch.bfloat16)   # on the GPU
        model.generation_config = GenerationConfig(**{k: getattr(tok, k) for k in ("pad_token_id", "bos_token_id", "eos_token_id")})
        proc = make_processor(tok, image_size=336, patch_size=14, num_additional_image_tokens=1)
    n = sum(p.numel() for p in model.parameters())
    save_model(model, proc, path)
    del model
    if DEV == "cuda": torch.cuda.empty_cache()
    return time.perf_counter() - t, n

def model_flops(cfg, tokens: dict, n_images: int, seq_len: float, lora: dict) -> float:
    "Useful training FLOPs of a LoRA stage-2 window (see the module docstring)."
    t, v = cfg.text_config, cfg.vision_config
    T = tokens["text_tokens"] + tokens["image_tokens"] + tokens["padding_tokens"]
    h, L, inter = t.hidden_size, t.num_hidden_layers, t.intermediate_size
    n_lm = L * (4 * h * h + 3 * h * inter) + t.vocab_size * h                     # the matmuls of the language model
    n_lora = L * lora["r"] * (4 * (h + h) + 3 * (h + inter))                        # A and B of q, k, v, o, gate, up, down
    attn = 4 * 2 * L * h * seq_len * T / 2                                         # QK^T and AV, causal, fwd + input grads
    n_vit = v.num_hidden_layers * (4 * v.hidden_size ** 2 + 2 * v.hidden_size * v.intermediate_size)
    patches = (v.image_size // v.patch_size) ** 2 + 1
    proj = v.hidden_size * h + h * h
    return 4 * n_lm * T + 6 * n_lora * T + attn + 2 * n_vit * patches * n_images + 6 * proj * tokens["image_tokens"]

def stage2(base, out, a, checkpointing: bool):
    ledger = TokenLedger(); clock = StepClock(ledger, a.warmup)   # the clock reads the run's own ledger
    if DEV == "cuda": torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    res = train_stage2("mlan", out, base=str(base), budget=a.budget, epochs=1, lr=2e-4, batch_size=a.batch_size,
                       grad_accum=a.grad_accum, lora=LORA, gradient_checkpointing=checkpointing, logging_steps=1,
                       save_steps=a.save_steps or 10**9, ledger=ledger, callbacks=[clock])
    total = time.perf_counter() - t
    return res, clock, total

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shape", default="llava-1.5-7b", choices=["llava-1.5-7b", "test"])
    ap.add_argument("--budget", type=int, default=512, help="stage-2 examples of the mlan mix")
    ap.add_argument("--batch-size", type=int, default=8); ap.add_argument("--grad-accum", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=3, help="optimizer steps before the clock starts")
    ap.add_argument("--checkpointing", action="store_true", help="activation checkpointing from the start")
    ap.add_argument("--save-steps", type=int, default=0, help="Trainer checkpoints every N steps (default: none, so that "
                    "the timed window holds training steps only; mmkit's default is every quarter of the run)")
    ap.add_argument("--eval-n", type=int, default=16, help="held-out items per suite (9 suites)")
    ap.add_argument("--eval-batch-size", type=int, default=16)
    ap.add_argument("--work", default="/tmp/mmkit-real")
    ap.add_argument("--json", default=None, help="also write the figures here")
    a = ap.parse_args()
    work = os.path.abspath(a.work); shutil.rmtree(work, ignore_errors=True); os.makedirs(work)
    dev = torch.cuda.get_device_name() if DEV == "cuda" else "CPU"
    out = dict(device=dev, shape=a.shape, torch=torch.__version__)
    peak = matmul_peak(PEAK_DTYPE); out["bf16_peak_tflops"] = round(peak / 1e12, 1); out["peak_dtype"] = PEAK_NAME
    print(f"[real] {dev}: {PEAK_NAME} matmul peak {peak/1e12:.1f} TFLOP/s (measured now)")

    tok, tok_src = tokenizer()
    secs, n = build(a.shape, tok, f"{work}/base")
    out.update(build_seconds=round(secs, 1), params_billion=round(n / 1e9, 3), tokenizer=tok_src)
    print(f"[real] {a.shape}: {n/1e9:.2f}B parameters, written as llava-hf ({PEAK_NAME}) in {secs:.0f} s; tokenizer {tok_src}")

    checkpointing = a.checkpointing
    try: res, clock, total = stage2(f"{work}/base", f"{work}/run", a, checkpointing)
    except torch.OutOfMemoryError as e:
        print(f"[real] stage 2 ran out of GPU memory without activation checkpointing ({str(e).splitlines()[0][:120]}); retrying with it")
        shutil.rmtree(f"{work}/run", ignore_errors=True); torch.cuda.empty_cache(); checkpointing = True
        res, clock, total = stage2(f"{work}/base", f"{work}/run", a, checkpointing)
    mem = torch.cuda.max_memory_allocated() / 2**30 if DEV == "cuda" else None
    (t0, s), (t1, e) = clock.start, clock.end
    win = {k: e[k] - s[k] for k in ("examples", "text_tokens", "image_tokens", "padding_tokens", "processed_tokens")}
    n_img = win["image_tokens"] // 576
    cfg = AutoConfig.from_pretrained(res["checkpoint"])
    fl = model_flops(cfg, win, n_img, win["processed_tokens"] / max(1, win["examples"]), LORA)
    useful = win["text_tokens"] + win["image_tokens"]
    out["stage2"] = dict(examples=res["examples"], tokens=res["tokens"], total_seconds=round(total, 1), train_seconds=res["train_seconds"],
                         window_steps=f"{a.warmup}..end", window_seconds=round(t1 - t0, 2), window_examples=win["examples"],
                         useful_tokens_per_s=round(useful / (t1 - t0)), padding_fraction=round(win["padding_tokens"] / max(1, win["processed_tokens"]), 4),
                         model_tflops=round(fl / (t1 - t0) / 1e12, 1), frac_bf16_peak=float(f"{fl / (t1 - t0) / peak:.3g}"),
                         activation_checkpointing=checkpointing, peak_gpu_memory_gib=round(mem, 1) if mem else None,
                         final_loss=res["final_loss"], lora=LORA, batch=f"{a.batch_size} x {a.grad_accum}")
    print(f"[real] stage 2: {res['examples']} examples in {total:.0f} s (incl. loading the base, merging LoRA, writing the checkpoint); "
          f"steady state {useful/(t1-t0):,.0f} useful tokens/s, {fl/(t1-t0)/1e12:.0f} TFLOP/s = {fl/(t1-t0)/peak:.0%} of the {PEAK_NAME} peak; "
          f"padding {out['stage2']['padding_fraction']:.1%}; peak memory {mem or 0:.1f} GiB; checkpointing {checkpointing}")
    del res; gc.collect()                             # the Trainer holds the 7B model
    if DEV == "cuda": torch.cuda.empty_cache()

    t = time.perf_counter()
    model, proc = load_model(f"{work}/run/checkpoint")
    model = model.to(DEV).eval(); load_s = time.perf_counter() - t
    assert image_token_count(proc) == 576
    data = load_suites(tasks.SUITES, n=a.eval_n, seed=0, image_size=336)
    items = [it for its in data.values() for it in its]
    generate_answers(model, proc, items[:4], 4, 2, progress=False); one_at_a_time(model, proc, items[:2], 2)   # warm-up
    def batched():
        gens = generate_answers(model, proc, items, a.eval_batch_size, 8, progress=False)
        return [extract_answer(g["output"], it["answer_type"], it.get("choices")) for it, g in zip(items, gens)]
    tb, pb = best_of(2, batched)
    tl, pl = best_of(1, lambda: one_at_a_time(model, proc, items, 8))
    agree = sum(x == y for x, y in zip(pb, pl))
    out["eval"] = dict(items=len(items), with_image=sum(it["image"] is not None for it in items), load_seconds=round(load_s, 1),
                       batched_items_per_s=round(len(items) / tb, 1), loop_items_per_s=round(len(items) / tl, 2),
                       ratio=round(tl / tb, 1), agree=f"{agree}/{len(items)}", dtype=str(next(model.parameters()).dtype))
    print(f"[real] evaluation ({out['eval']['dtype']}, checkpoint read in {load_s:.0f} s): {len(items)} items, batched "
          f"{len(items)/tb:.1f} items/s vs one-at-a-time {len(items)/tl:.2f} items/s = {tl/tb:.1f}x; {agree}/{len(items)} predictions agree")
    print(json.dumps(out))
    if a.json:
        with open(a.json, "w") as f: json.dump(out, f, indent=1)
    return 0

if __name__ == "__main__":
    sys.exit(main())
