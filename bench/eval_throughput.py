"""Eval throughput: mmkit's batched evaluator vs a one-item-at-a-time `generate` loop, side by side in one run.

Both score the same microcosm held-out items (all nine suites, text-only and image items mixed) with the same prompt,
greedy decoding, token limit and stop strings. The batched path is `mmkit.evaluate.evaluate` (left padding, KV cache,
length-grouped batches); the baseline calls `model.generate` once per item. Prints items/s of each and the ratio.

Usage: python bench/eval_throughput.py [--n 8] [--batch-size 32] [--max-new-tokens 8] [--size default] [--model PATH]
Model: --model PATH (a llava-hf folder), else the cached microcosm base of --size if built, else a random tiny LLaVA.
"""
import argparse, os, sys, time

os.environ.setdefault("HF_HUB_OFFLINE", "1"); os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1"); os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch
from transformers import StoppingCriteriaList

from mmkit import tasks
from mmkit.evaluate import STOP_STRINGS, StopOnStrings, evaluate, extract_answer, load_suites
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
        enc = proc(text=[prompt], images=[it["image"]] if it["image"] is not None else None, return_tensors="pt")
        plen = enc["input_ids"].shape[1]
        out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tok.pad_token_id,
                             stopping_criteria=StoppingCriteriaList([StopOnStrings(tok, STOP_STRINGS, plen)]))
        text = tok.decode(out[0, plen:], skip_special_tokens=True)
        outs.append(extract_answer(text, it["answer_type"], it.get("choices")))
    return outs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=8, help="items per suite (9 suites)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-new-tokens", type=int, default=8)
    ap.add_argument("--size", default="default")
    ap.add_argument("--model", default=None)
    args = ap.parse_args()
    model, proc, what = get_model(args)
    model = model.float().eval()
    data = load_suites(tasks.SUITES, n=args.n, seed=0)
    items = [it for its in data.values() for it in its]
    n_img = sum(it["image"] is not None for it in items)
    print(f"[bench] model: {what}, {sum(p.numel() for p in model.parameters())/1e6:.2f}M params; torch threads {torch.get_num_threads()}")
    print(f"[bench] {len(items)} items ({n_img} with an image) from {len(data)} suites; max_new_tokens={args.max_new_tokens}")
    evaluate(model, proc, {k: v[:1] for k, v in data.items()}, batch_size=4, max_new_tokens=2, progress=False)  # warm-up

    t = time.perf_counter()
    _, preds = evaluate(model, proc, data, batch_size=args.batch_size, max_new_tokens=args.max_new_tokens, progress=False)
    t_batched = time.perf_counter() - t
    t = time.perf_counter()
    naive = one_at_a_time(model, proc, items, args.max_new_tokens)
    t_single = time.perf_counter() - t

    agree = sum(p["extracted"] == q for p, q in zip(preds, naive))
    rb, rs = len(items) / t_batched, len(items) / t_single
    print(f"{'evaluator':<34}{'seconds':>10}{'items/s':>10}")
    print(f"{'batched (batch_size=%d)' % args.batch_size:<34}{t_batched:>10.2f}{rb:>10.1f}")
    print(f"{'one-at-a-time generate loop':<34}{t_single:>10.2f}{rs:>10.1f}")
    print(f"ratio batched / one-at-a-time: {rb / rs:.1f}x (target >= 5x); predictions agree on {agree}/{len(items)} items")
    return 0


if __name__ == "__main__":
    sys.exit(main())
