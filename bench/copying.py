"""Can a fresh language model of mmkit's shape learn to copy from its context in a CPU budget? Three arms side by side.

The microcosm's base misses its copying and look-up gates (docs/results.md). This probe asks the question without the
microcosm: a fresh Llama language model of `SIZES[size]["text"]` (the language model inside mmkit's tiny LLaVA) is
trained on random tokens in which every segment is said twice, and the loss on the second copies (copyable by
reading the context) is compared with the loss on the first copies (unpredictable), every `--every` steps:

- `offset`: one segment of half the block, said twice: the copy always sits at the same distance, so attending to a
  fixed relative position is enough (a positional shortcut, not reading);
- `varied`: segments of 6-32 tokens, each said twice: only matching content (an induction head) predicts the copies;
- `varied+prev`: as `varied`, with a previous-token head wired in at initialisation (query/key biases that RoPE turns
  into attention peaked one position back: half an induction circuit given for free).

Two arms ask the look-up question the same way (the microcosm's look-up gate: a description, then `The <cell> cell
holds a`): episodes of 3-8 records, each a key and a value of 1-3 random tokens joined by separators (`k s v t`, or
`v s k t` in half the episodes, as a description that names the object before its cell), then a query `u k w v t` per
record in a new order. Only reading the records predicts a query's value, and even the forward order is not plain
copying (in the records `s` follows the key, in the queries `w`). The curve then also reports the greedy accuracy on
the query values' first tokens, forward and reversed episodes apart:

- `recall`: look-up episodes only;
- `varied+recall`: half the batch `varied` blocks, half look-up episodes.

`--first-varied S` trains the first S steps on `varied` blocks only (copying first, then look-up);
`--fixed-separators` uses the same four separator ids in every episode, as a template's words are; `--layers N`
changes the depth of the size's shape.

After training, the `offset` model is also scored on `varied` blocks: a copy ratio near 1 there shows that what it
learned was the distance, not the reading. Ratio = second-copy loss / first-copy loss (near 0: it copies; near 1: it
does not). Every `--every` steps the ratio is also measured on those same fixed `varied` blocks over the whole
vocabulary (`heldout`), whatever the arm trains on.

Two knobs ask whether the vocabulary is what makes copying slow: `--vocab N` draws the random tokens from N ids (the
default is the microcosm tokenizer's size), and `--warmup-vocab K --warmup-steps S` trains the first S steps on
tokens from a fixed K of those ids only (a curriculum: does a copying circuit learned on a few frequent tokens carry
over to all of them?).

    python bench/copying.py [--size default] [--steps 500] [--batch-size 32] [--block 128] [--lr 1e-3]
                            [--vocab N] [--warmup-vocab K --warmup-steps S] [--json FILE]
                            [--arms recall --first-varied S --fixed-separators --layers N]
"""
import argparse, json, os, time
from pathlib import Path
import torch
from transformers import LlamaConfig, LlamaForCausalLM
from mmkit.config import atomic_write_json
from mmkit.model import SIZES
from mmkit.train import VOCAB, bf16_available

ARMS = ("offset", "varied", "varied+prev", "recall", "varied+recall")

def recall_blocks(n: int, T: int, vocab: int, g: torch.Generator, fixed: bool = False):
    """`n` blocks of `T` random tokens made of look-up episodes: 3-8 records of a key (1-3 tokens) and a value (1-3
    tokens) joined by separators (`k s v t`, or `v s k t` in a reversed episode, as a description naming the object
    before its cell), then queries `u k w v t` for the records in a new order. `copy` marks the query values (only
    reading the records predicts them); `rev` marks those of reversed episodes; `first` marks each query value's first
    token (scored for greedy accuracy). With `fixed`, the separators are the same four ids (0-3) in every episode, as
    a template's words are."""
    r = lambda lo, hi: int(torch.randint(lo, hi + 1, (1,), generator=g))
    toks = lambda k: torch.randint(0, vocab, (k,), generator=g).tolist()
    x, copy = torch.empty(n, T, dtype=torch.long), torch.zeros(n, T, dtype=torch.bool)
    rev, first = torch.zeros(n, T, dtype=torch.bool), torch.zeros(n, T, dtype=torch.bool)
    for i in range(n):
        ids, cp, rv, fs = [], [], [], []
        while len(ids) < T:
            s, t, u, w = [0, 1, 2, 3] if fixed else toks(4); back = r(0, 1) == 1
            recs = [(toks(r(1, 3)), toks(r(1, 3))) for _ in range(r(3, 8))]
            for k, v in recs:
                seg = (v + [s] + k if back else k + [s] + v) + [t]
                ids += seg; cp += [False] * len(seg); rv += [False] * len(seg); fs += [False] * len(seg)
            for j in torch.randperm(len(recs), generator=g).tolist():
                k, v = recs[j]
                ids += [u] + k + [w] + v + [t]
                cp += [False] * (len(k) + 2) + [True] * len(v) + [False]
                rv += [False] * (len(k) + 2) + [back] * len(v) + [False]
                fs += [False] * (len(k) + 2) + [True] + [False] * len(v)
        x[i], copy[i], rev[i], first[i] = (torch.tensor(z[:T]) for z in (ids, cp, rv, fs))
    return x, copy, rev, first

def next_token_nll(model, x, bf16: bool):
    "The logits on `x` and each position's loss on the next token (batch × length-1)."
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        logits = model(input_ids=x).logits.float()
    nll = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1),
                                            reduction="none").view(x.shape[0], -1)
    return logits, nll

@torch.no_grad()
def recall_scores(model, x, copy, rev, first, bf16: bool) -> dict:
    "Greedy accuracy on query values' first tokens, and loss on all query-value tokens, forward and reversed episodes."
    logits, nll = next_token_nll(model, x, bf16)
    hit = logits[:, :-1].argmax(-1) == x[:, 1:]
    c, rv, fs = copy[:, 1:], rev[:, 1:], first[:, 1:]
    return dict(fwd_acc=round(hit[fs & ~rv].float().mean().item(), 3), rev_acc=round(hit[fs & rv].float().mean().item(), 3),
                fwd_loss=round(nll[c & ~rv].mean().item(), 3), rev_loss=round(nll[c & rv].mean().item(), 3))

def blocks(kind: str, n: int, T: int, vocab: int, g: torch.Generator):
    "`n` blocks of `T` random tokens in which segments repeat; `copy` marks the positions a second copy predicts."
    if kind == "offset":
        half = torch.randint(0, vocab, (n, T // 2), generator=g)
        x = torch.cat([half, half], 1)
        copy = torch.zeros(n, T, dtype=torch.bool); copy[:, T // 2:] = True
        return x, copy
    x, copy = torch.empty(n, T, dtype=torch.long), torch.zeros(n, T, dtype=torch.bool)
    for i in range(n):
        ids, cp = [], []
        while len(ids) < T:
            k = int(torch.randint(6, 33, (1,), generator=g)); seg = torch.randint(0, vocab, (k,), generator=g).tolist()
            ids += seg + seg; cp += [False] * k + [True] * k
        x[i], copy[i] = torch.tensor(ids[:T]), torch.tensor(cp[:T])
    return x, copy

def wire_previous_token_head(model, scale: float = 4.0):
    """Make head 0 of layer 0 attend one position back from the start: constant query/key biases which RoPE rotates so
    that their product peaks at a distance of one token."""
    hd = model.config.hidden_size // model.config.num_attention_heads
    inv = model.model.rotary_emb.inv_freq.float()      # RoPE's per-pair angle per position (biases start at zero)
    with torch.no_grad():
        a = model.model.layers[0].self_attn
        a.q_proj.bias[: hd // 2] = scale
        a.k_proj.bias[: hd // 2] = scale * torch.cos(inv); a.k_proj.bias[hd // 2: hd] = scale * torch.sin(inv)

@torch.no_grad()
def previous_token_mass(model, vocab: int, T: int = 32) -> float:
    "Mean attention weight head 0 of layer 0 puts on the previous token (random tokens)."
    x = torch.randint(0, vocab, (1, T), generator=torch.Generator().manual_seed(1))
    att = model(input_ids=x, output_attentions=True).attentions[0][0, 0]
    return float(att[torch.arange(1, T), torch.arange(0, T - 1)].mean())

def losses(model, x, copy, bf16: bool):
    "Mean loss on second-copy tokens, on first-copy tokens, and the training loss (all predicted tokens)."
    nll = next_token_nll(model, x, bf16)[1]
    c = copy[:, 1:]
    return nll[c].mean(), nll[~c].mean(), nll.mean()

def shape(a) -> dict:
    "The language model's shape: `SIZES[--size]`, with `--layers` if given."
    return {**SIZES[a.size]["text"], **({"num_hidden_layers": a.layers} if a.layers else {})}

def arm(name: str, a, vocab: int, bf16: bool) -> dict:
    s = shape(a)
    cfg = LlamaConfig(vocab_size=vocab, max_position_embeddings=max(512, a.block), num_key_value_heads=s["num_attention_heads"],
                      tie_word_embeddings=False, attention_bias=name.endswith("+prev"), **s)
    cfg._attn_implementation = "eager"                 # attention weights for the previous-token check; fast in bf16 on CPU
    torch.manual_seed(a.seed); model = LlamaForCausalLM(cfg)
    out = dict(arm=name)
    if name.endswith("+prev"):
        wire_previous_token_head(model); out["previous_token_mass_at_init"] = round(previous_token_mass(model, vocab), 3)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=0.0)
    g = torch.Generator().manual_seed(a.seed); kind = "offset" if name == "offset" else "varied"
    few = torch.randperm(vocab, generator=torch.Generator().manual_seed(a.seed + 2))[:a.warmup_vocab]   # the warm-up's ids
    ge = torch.Generator().manual_seed(a.seed + 1)
    held = {k: blocks(k, 64, a.block, vocab, ge) for k in ("offset", "varied")}   # fixed scoring blocks, all ids
    held_recall = recall_blocks(64, a.block, vocab, ge, a.fixed_separators)
    def ratio(k):
        model.eval()
        with torch.no_grad(): second, first, _ = losses(model, *held[k], bf16)
        return round(second.item() / first.item(), 3)
    curve, t0 = [], time.time()
    for step in range(1, a.steps + 1):
        for p in opt.param_groups: p["lr"] = a.lr * min(1.0, step / max(1, a.steps // 20))   # linear warm-up, then flat
        warm = step <= a.warmup_steps
        if step <= a.first_varied: x, copy = blocks("varied", a.batch_size, a.block, vocab, g)
        elif name == "recall": x, copy = recall_blocks(a.batch_size, a.block, vocab, g, a.fixed_separators)[:2]
        elif name == "varied+recall":
            h = a.batch_size // 2
            xa, ca = blocks("varied", a.batch_size - h, a.block, vocab, g); xb, cb = recall_blocks(h, a.block, vocab, g, a.fixed_separators)[:2]
            x, copy = torch.cat([xa, xb]), torch.cat([ca, cb])
        else:
            x, copy = blocks(kind, a.batch_size, a.block, a.warmup_vocab if warm else vocab, g)
            if warm: x = few[x]
        model.train(); second, first, loss = losses(model, x, copy, bf16)
        opt.zero_grad(); loss.backward(); opt.step()
        if step % a.every == 0 or step == a.steps:
            curve.append(dict(step=step, second=round(second.item(), 3), first=round(first.item(), 3),
                              ratio=round(second.item() / first.item(), 3), heldout=ratio("varied")))
            if a.recall: model.eval(); curve[-1].update(recall_scores(model, *held_recall, bf16))
            print(f"[{name}] step {step}/{a.steps}{' (warm-up ids)' if warm else ''}: second-copy loss {second.item():.3f}, "
                  f"first-copy {first.item():.3f}, ratio {curve[-1]['ratio']:.3f}, on all ids {curve[-1]['heldout']:.3f} "
                  f"({time.time() - t0:.0f} s)"
                  + (f"; look-up first-token accuracy forward {curve[-1]['fwd_acc']:.3f}, reversed {curve[-1]['rev_acc']:.3f}" if a.recall else ""),
                  flush=True)
    out.update({f"eval_{k}_ratio": ratio(k) for k in held})
    model.eval(); out["eval_recall"] = recall_scores(model, *held_recall, bf16)
    out.update(curve=curve, seconds=round(time.time() - t0, 1), tokens=a.steps * a.batch_size * a.block)
    return out

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", default="default", choices=list(SIZES)); ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--batch-size", type=int, default=32); ap.add_argument("--block", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3); ap.add_argument("--every", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0); ap.add_argument("--arms", nargs="+", default=list(ARMS[:3]), choices=ARMS,
                    help="default: the three copying arms (the look-up arms are asked for by name)")
    ap.add_argument("--vocab", type=int, default=None, help="random tokens come from this many ids (default: the tokenizer size)")
    ap.add_argument("--warmup-vocab", type=int, default=0, help="ids the first --warmup-steps steps draw from (0: off)")
    ap.add_argument("--warmup-steps", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--layers", type=int, default=None, help="override the size's number of layers")
    ap.add_argument("--first-varied", type=int, default=0, help="recall arms: train the first S steps on `varied` blocks only")
    ap.add_argument("--fixed-separators", action="store_true", help="recall arms: the same four separator ids in every episode")
    ap.add_argument("--no-recall", dest="recall", action="store_false", help="skip the look-up scores in the curve")
    a = ap.parse_args()
    if a.steps < 1 or a.every < 1 or a.batch_size < 1: ap.error("--steps, --every and --batch-size must be positive")
    if a.block < 16 or a.block % 2: ap.error("--block must be an even number of at least 16 tokens")
    vocab, bf16 = a.vocab or VOCAB.get(a.size, 1500), bf16_available()
    if vocab < 2: ap.error("--vocab must be at least 2")
    if a.warmup_steps < 0 or (a.warmup_steps > 0) != (a.warmup_vocab > 0):
        ap.error("--warmup-vocab and --warmup-steps go together, both positive")
    if a.warmup_vocab > vocab: ap.error(f"--warmup-vocab {a.warmup_vocab} is more than the vocabulary ({vocab})")
    torch.set_num_threads(os.cpu_count() or 1)
    s = shape(a)
    print(f"language model: hidden {s['hidden_size']}, MLP {s['intermediate_size']}, {s['num_hidden_layers']} layers, "
          f"{s['num_attention_heads']} heads; vocabulary {vocab}; {a.steps} steps of {a.batch_size}x{a.block} tokens; "
          f"lr {a.lr}; {'bf16 autocast' if bf16 else 'fp32'}"
          + (f"; first {a.warmup_steps} steps on {a.warmup_vocab} ids only" if a.warmup_steps else ""), flush=True)
    res = [arm(n, a, vocab, bf16) for n in a.arms]
    print(f"\n{'arm':<14}{'final ratio':>12}{'on offset blocks':>18}{'on varied blocks':>18}{'tokens':>12}{'seconds':>9}")
    for r in res:
        print(f"{r['arm']:<14}{r['curve'][-1]['ratio']:>12.3f}{r['eval_offset_ratio']:>18.3f}{r['eval_varied_ratio']:>18.3f}"
              f"{r['tokens']:>12,}{r['seconds']:>9.0f}")
    out = dict(size=a.size, vocab=vocab, steps=a.steps, batch_size=a.batch_size, block=a.block, lr=a.lr, bf16=bf16,
               warmup_vocab=a.warmup_vocab, warmup_steps=a.warmup_steps,
               arms={r["arm"]: r for r in res})
    print(json.dumps({r["arm"]: dict(final_ratio=r["curve"][-1]["ratio"], eval_offset_ratio=r["eval_offset_ratio"],
                                     eval_varied_ratio=r["eval_varied_ratio"]) for r in res}))
    if a.json: atomic_write_json(a.json, out)

if __name__ == "__main__":
    main()
