"""Eval throughput: mmkit's batched evaluator vs a one-item-at-a-time `generate` loop, side by side in one run.

Both score the same microcosm held-out items (all nine suites, text-only and image items mixed) with the same prompt,
greedy decoding, token limit and stop strings. The batched path is `mmkit.evaluate.evaluate` (left padding, KV cache,
length-grouped batches, the prompts' shared prefix computed once); the baseline calls `model.generate` once per item.
Each is timed in fp32 (the model as saved) and, on a CPU with native bf16 or a GPU, with the model cast to bf16; the
batched fp32 path also without the shared prefix. Prints items/s, the ratios to the fp32 loop, and how many
predictions agree with it. Each timing is the best of `--repeats`.

Usage: python bench/eval_throughput.py [--n 16] [--batch-size 16] [--max-new-tokens 8] [--repeats 2] [--size default] [--model PATH]
Model: --model PATH (a llava-hf folder), else the cached microcosm base of --size if built, else a random tiny LLaVA.
"""
import argparse, copy, os, sys, time

os.environ.setdefault("HF_HUB_OFFLINE", "1"); os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1"); os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch
from transformers import StoppingCriteriaList

from mmkit import tasks
from mmkit.evaluate import STOP_STRINGS, StopOnStrings, evaluate, extract_answer, generate_answers, load_suites
from mmkit.model import build_tiny_llava, generation_prompt, load_model, train_tokenizer


def get_model(args):
    if args.model: return load_model(args.model) + (f"checkpoint {args.model}",)
    try:
        from mmkit.train import base_path
        p = base_path(args.size)
        if (p/"base.json").is_file(): return load_model(p) + (f"cached microcosm base {p.name}",)
    except Exception as e:  # noqa: BLE001 - the bench still runs on a random model
        print(f"[bench] no cached base ({type(e).__name__}: {e}); using a random model")
    texts = tasks.stage0_corpus(seed=0, n=2000) + [r["question"] for s in tasks.SUITES for r in tasks.heldout(s, n=50)]
    tok = train_tokenizer(texts, vocab_size=1500)
    model, proc = build_tiny_llava(tok, size=args.size, seed=0)
    return model, proc, f"random tiny LLaVA (size={args.size})"


@torch.no_grad()
def one_at_a_time(model, proc, items, max_new_tokens):
    "The naive loop: one `generate` call per item, same prompt, greedy decoding and stop strings."
    tok, outs = proc.tokenizer, []
    for it in items:
        prompt = generation_prompt(it["question"], has_image=it["image"] is not None)
        enc = proc(text=[prompt], images=[it["image"]] if it["image"] is not None else None, return_tensors="pt").to(model.device)
        plen = enc["input_ids"].shape[1]
        out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tok.pad_token_id,
                             stopping_criteria=StoppingCriteriaList([StopOnStrings(tok, STOP_STRINGS, plen)]))
        text = tok.decode(out[0, plen:], skip_special_tokens=True)
        outs.append(extract_answer(text, it["answer_type"], it.get("choices")))
    return outs


def best_of(k, f):
    "(seconds of the fastest of `k` calls, the last call's result)"
    best = float("inf")
    for _ in range(k):
        t = time.perf_counter(); r = f(); best = min(best, time.perf_counter() - t)
    return best, r


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=16, help="items per suite (9 suites)")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-new-tokens", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=2, help="time each side this many times, keep the best")
    ap.add_argument("--size", default="default")
    ap.add_argument("--model", default=None)
    ap.add_argument("--no-bf16", action="store_true", help="skip the bf16 rows")
    args = ap.parse_args()
    from mmkit.train import bf16_available
    model, proc, what = get_model(args)
    model = model.float().to("cuda" if torch.cuda.is_available() else "cpu").eval()   # on a GPU when there is one
    data = load_suites(tasks.SUITES, n=args.n, seed=0)
    items = [it for its in data.values() for it in its]
    n_img = sum(it["image"] is not None for it in items)
    where = torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU, torch threads {torch.get_num_threads()}"
    print(f"[bench] model: {what}, {sum(p.numel() for p in model.parameters())/1e6:.2f}M params; {where}")
    print(f"[bench] {len(items)} items ({n_img} with an image) from {len(data)} suites; max_new_tokens={args.max_new_tokens}; "
          f"best of {args.repeats}")
    models = [("fp32", model)]
    if not args.no_bf16 and bf16_available(): models.append(("bf16", copy.deepcopy(model).to(torch.bfloat16)))
    elif not args.no_bf16: print("[bench] no native bf16 here: fp32 rows only")

    rows = []   # (label, dtype, seconds, extracted answers)
    for name, m in models:
        evaluate(m, proc, {k: v[:1] for k, v in data.items()}, batch_size=4, max_new_tokens=2, progress=False)  # warm-up
        one_at_a_time(m, proc, items[:2], 2)
        variants = [("batched, shared prefix", True)] + ([("batched, no shared prefix", False)] if name == "fp32" else [])
        for label, share in variants:
            def run_batched():
                gens = generate_answers(m, proc, items, args.batch_size, args.max_new_tokens, progress=False, share_prefix=share)
                return [extract_answer(g["output"], it["answer_type"], it.get("choices")) for it, g in zip(items, gens)]
            t, preds = best_of(args.repeats, run_batched)
            rows.append((f"{label} (batch_size={args.batch_size})", name, t, preds))
        t, preds = best_of(args.repeats, lambda: one_at_a_time(m, proc, items, args.max_new_tokens))
        rows.append(("one-at-a-time generate loop", name, t, preds))

    ref = next(r for r in rows if r[0].startswith("one-at-a-time") and r[1] == "fp32")
    loop = {r[1]: r for r in rows if r[0].startswith("one-at-a-time")}
    print(f"{'evaluator':<44}{'dtype':>6}{'seconds':>9}{'items/s':>9}{'vs fp32 loop':>14}{'vs loop, same dtype':>21}{'agree w/ fp32 loop':>20}")
    for label, name, t, preds in rows:
        agree = sum(p == q for p, q in zip(preds, ref[3]))
        print(f"{label:<44}{name:>6}{t:>9.2f}{len(items) / t:>9.1f}{ref[2] / t:>13.1f}x{loop[name][2] / t:>20.1f}x"
              f"{agree:>13}/{len(items)}")
    best = min((r for r in rows if r[0].startswith("batched, shared")), key=lambda r: r[2])
    print(f"ratio batched / one-at-a-time: {ref[2] / best[2]:.1f}x with {best[1]} (target >= 5x); "
          f"fp32 batched / fp32 loop: {ref[2] / rows[0][2]:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
