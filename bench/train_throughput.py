"""Stage-2 training throughput: mmkit vs a plain baseline, side by side in one run.

mmkit:    bf16 autocast (where the CPU/GPU has it; eager attention on CPU), modality+length-grouped batches,
          text-only samples skip the vision tower (no image, no pixel_values).
baseline: `Trainer` defaults — fp32, random batches (mixed modalities, padded to the longest), and text-only samples
          given a zero image that runs through the vision tower and is then dropped, as LLaVA's
          `prepare_inputs_labels_for_multimodal` does.

Both train the same model (the cached microcosm base if built, else a random default-size LLaVA) on the same
examples of the default `mlan` mix for the same number of steps. Prints tokens/s of each, the ratio, padding fractions,
and achieved FLOP/s as a fraction of this machine's bf16 matmul peak (measured here, now: the best of three timings of
a 2048² matmul, before each round). Rates are steady-state: the clock starts after `--warmup` optimizer steps, by
default one epoch of the examples, so every batch shape has been seen once (PyTorch's oneDNN matmul kernels are
built per shape, the allocator has grown, compilation is done) on every side alike, as in most of a real run;
`total s` is the whole `train()` call, warm-up included. Each side trains its own copy of the model.

A third side, on by default where a C++ compiler is found (`--no-compile` leaves it out): mmkit's `compile=True` (the
Trainer's `torch_compile` inside `mmkit.train.compiled_training`, as `run_trainer` does: region by region, inductor,
deterministic algorithms).

This machine's speed drifts by several per cent from minute to minute (a shared 2-core VM), so the sides run in
`--rounds` rounds (default 3), one after another within each round, and each side's median round is reported with the
range. The last lines hold each mmkit side against the issue's targets (ratio to the baseline >= 2.0, >= 50 % of the
bf16 peak). About 4 minutes on 2 cores with the defaults.

`--lm HIDDEN,MLP,LAYERS,HEADS` runs the same bench on a random model whose language model has another shape (the
default vision tower and tokenizer): how the figures, the fraction of the peak above all, depend on the default model's
shape (docs/benchmarks.md).

    python bench/train_throughput.py [--examples 768] [--batch-size 16] [--warmup 48] [--steps 84] [--rounds 3]
                                     [--no-compile] [--json FILE] [--lm HIDDEN,MLP,LAYERS,HEADS]
"""
import argparse, contextlib, copy, json, math, os, statistics, tempfile, time
from pathlib import Path
os.environ.setdefault("HF_HUB_OFFLINE", "1"); os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
import torch
from transformers import LlavaForConditionalGeneration, Trainer, TrainerCallback, TrainingArguments
from mmkit import data as mdata, tasks
from mmkit.config import atomic_write_json
from mmkit.model import build_tiny_llava, llava_config, load_model, make_processor, train_tokenizer, apply_policy, image_token_count, no_cudnn_attention
from mmkit.train import VOCAB, MMTrainer, base_path, bf16_available, compiled_training, cpu_bf16_attention, cxx_compiler, tokenizer_texts

DEV = "cuda" if torch.cuda.is_available() else "cpu"   # the Trainer trains on the GPU when there is one
# The dtype training runs in, and so the matmul peak FLOP/s are measured against: bf16 where it is native (a GPU, a CPU
# with AVX-512 bf16 / AMX), else fp32 (a CPU without it emulates bf16 at a few GFLOP/s: its "peak" would take minutes
# to measure and mean nothing). The JSON keys keep their `bf16` names; `peak_dtype` says which peak they hold.
PEAK_DTYPE = torch.bfloat16 if bf16_available() else torch.float32
PEAK_NAME = "bf16" if PEAK_DTYPE == torch.bfloat16 else "fp32"

def sync():
    if DEV == "cuda": torch.cuda.synchronize()

def matmul_peak(dtype, n=None, reps=10, trials=3) -> float:
    """FLOP/s of an n×n matmul in `dtype` where training runs: the best of `trials` timings of `reps` products (a peak
    is a best case). n = 2048 on a CPU, 8192 on a GPU."""
    n = n or (8192 if DEV == "cuda" else 2048)
    a, b = torch.randn(n, n, dtype=dtype, device=DEV), torch.randn(n, n, dtype=dtype, device=DEV)
    a @ b; sync()
    best = 0.0
    for _ in range(trials):
        t = time.perf_counter()
        for _ in range(reps): a @ b
        sync(); best = max(best, 2 * n**3 * reps / (time.perf_counter() - t))
    return best

def model_flops(model, ledger_totals, n_text_tokens, n_image_samples, seq_len) -> float:
    "Approximate training FLOPs: 6·N·T for the language model (+ attention), 2·N·T forward-only for the frozen tower."
    cfg = model.config
    lm = sum(p.numel() for n, p in model.named_parameters() if "language_model" in n and "embed_tokens" not in n)
    lm += model.lm_head.weight.numel()
    vt = sum(p.numel() for n, p in model.named_parameters() if "vision_tower" in n)
    pr = sum(p.numel() for n, p in model.named_parameters() if "multi_modal_projector" in n)
    T = ledger_totals["text_tokens"] + ledger_totals["image_tokens"] + ledger_totals["padding_tokens"]
    L, d = cfg.text_config.num_hidden_layers, cfg.text_config.hidden_size
    attn = 6 * 2 * L * d * seq_len * T / 2            # QK^T and AV, causal ≈ half, fwd+bwd
    patches = (cfg.vision_config.image_size // cfg.vision_config.patch_size) ** 2 + 1
    return 6 * lm * T + attn + 2 * vt * patches * n_image_samples + 6 * pr * ledger_totals["image_tokens"]

def lm_shape(text: str) -> tuple:
    "`HIDDEN,MLP,LAYERS,HEADS` (an argparse type): four positive integers, HIDDEN divisible by HEADS."
    try: s = tuple(int(x) for x in text.split(","))
    except ValueError: s = ()
    if len(s) != 4 or min(s) < 1 or s[0] % s[3]:
        raise argparse.ArgumentTypeError(f"wants HIDDEN,MLP,LAYERS,HEADS, four positive integers, HIDDEN divisible by HEADS (got {text!r})")
    return s

def default_tokenizer():
    "The default microcosm tokenizer, trained on the texts and with the vocabulary `build_base` uses (where no base is built)."
    return train_tokenizer(tokenizer_texts(tasks.microcosm(scale="default")), vocab_size=VOCAB["default"])

def other_shape(tok, hidden, mlp, layers, heads):
    "`(model, processor)`: a random default-size LLaVA (seed 0, as `build_tiny_llava`) whose language model has another shape."
    cfg = llava_config(tok, "default")
    t = cfg.text_config
    t.hidden_size, t.intermediate_size, t.num_hidden_layers, t.num_attention_heads = hidden, mlp, layers, heads
    t.num_key_value_heads, t.head_dim = heads, hidden // heads
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = LlavaForConditionalGeneration(cfg)
    return model, make_processor(tok, cfg.vision_config.image_size, cfg.vision_config.patch_size, 1, "default")

class ZeroImageCollator(mdata.Collator):
    "LLaVA's way: every sample gets an image; text-only samples get a zero image (run through the tower, dropped)."
    def __call__(self, features):
        batch = super().__call__(features)
        size = self.processor.image_processor.crop_size["height"]
        n_txt = sum(f.get("image") is None for f in features)
        if n_txt: batch["zero_pixel_values"] = torch.zeros(n_txt, 3, size, size)
        return batch

class BaselineTrainer(Trainer):
    ledger = None
    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        counts = inputs.pop("token_counts"); self.ledger.add(counts)
        zeros = inputs.pop("zero_pixel_values", None)
        loss = super().compute_loss(model, inputs, return_outputs=False, num_items_in_batch=num_items_in_batch)
        if zeros is not None:   # the vision tower + projector run on the zero images; their output is discarded
            feats = model.get_image_features(pixel_values=zeros.to(model.device))
            feats = feats.pooler_output if hasattr(feats, "pooler_output") else feats
            feats = torch.cat(list(feats)) if isinstance(feats, (list, tuple)) else feats
            loss = loss + 0.0 * feats.float().sum()
        return loss

class StepClock(TrainerCallback):
    "Time and ledger totals at the end of optimizer step `warmup` and of the last step: the steady-state window."
    def __init__(self, ledger, warmup): self.ledger, self.warmup, self.start, self.end = ledger, warmup, None, None
    def on_step_end(self, args, state, control, **kw):
        sync(); now = (time.perf_counter(), dict(self.ledger.totals()))
        if state.global_step == self.warmup: self.start = now
        self.end = now

def run(kind, model, ds, processor, steps, batch_size, out, warmup):
    ledger = mdata.TokenLedger()
    common = dict(output_dir=out, per_device_train_batch_size=batch_size, max_steps=steps, learning_rate=1e-4,
                  report_to="none", remove_unused_columns=False, save_strategy="no", logging_steps=10**6,
                  use_cpu=DEV == "cpu", disable_tqdm=True, seed=0, dataloader_num_workers=0)
    compiled = kind == "mmkit+compile"
    with compiled_training(compiled):   # as mmkit.train.run_trainer does, around making and training the Trainer
        if kind.startswith("mmkit"):
            args = TrainingArguments(bf16=bf16_available(), torch_compile=compiled, **common)
            cpu_bf16_attention(model, args.bf16)   # as run_trainer does
            tr = MMTrainer(model=model, args=args, train_dataset=ds, data_collator=mdata.Collator(processor), group=True, ledger=ledger)
        else:
            args = TrainingArguments(**common)    # Trainer defaults: fp32, random sampler
            tr = BaselineTrainer(model=model, args=args, train_dataset=ds, data_collator=ZeroImageCollator(processor))
            tr.ledger = ledger
        clock = StepClock(ledger, warmup); tr.add_callback(clock)
        start = time.perf_counter()
        with no_cudnn_attention() if kind.startswith("mmkit") else contextlib.nullcontext(): tr.train()   # as run_trainer does
        total = time.perf_counter() - start
    (t0, a), (t1, b) = clock.start, clock.end
    return t1 - t0, {k: b[k] - a[k] for k in ("examples", "text_tokens", "image_tokens", "padding_tokens", "processed_tokens")}, \
        tr.model.config.text_config._attn_implementation, total

def side(kind, model0, ds, processor, a, peak):
    "One side's steady-state window on its own deep copy of the model, against the bf16 `peak`: the figures `main` prints."
    model = copy.deepcopy(model0); apply_policy(model, "stage2")
    with tempfile.TemporaryDirectory() as out:
        dt, t, attn, total = run(kind, model, ds, processor, a.steps, a.batch_size, out, a.warmup)
    useful = t["text_tokens"] + t["image_tokens"]
    n_img = t["image_tokens"] // image_token_count(processor)
    zero_imgs = t["examples"] - n_img if kind == "baseline" else 0
    flops = model_flops(model, t, t["text_tokens"], n_img + zero_imgs, max(1, t["processed_tokens"] // max(1, t["examples"])))
    return dict(seconds=round(dt, 2), total_seconds=round(total, 1), examples=t["examples"], useful_tokens=useful, processed_tokens=t["processed_tokens"],
                useful_tokens_per_s=round(useful / dt, 1), padding_fraction=round(t["padding_tokens"] / max(1, t["processed_tokens"]), 4),
                attention=attn, tflops=round(flops / dt / 1e12, 4), frac_bf16_peak=round(flops / dt / peak, 3))

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--examples", type=int, default=768); ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--warmup", type=int, default=None, help="optimizer steps before the clock starts (default: one epoch)")
    ap.add_argument("--steps", type=int, default=None, help="optimizer steps in all, warm-up included (default: warm-up + 36)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of all sides, one after another; the median round is reported")
    ap.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                    help="the side with mmkit's compile=True (torch.compile, region by region); default: on where a C++ compiler is found")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    ap.add_argument("--lm", type=lm_shape, default=None, metavar="HIDDEN,MLP,LAYERS,HEADS",
                    help="instead of the default model, a random one whose language model has this shape (the default "
                         "vision tower and tokenizer): what the figures would be for another default model")
    a = ap.parse_args()
    if a.compile is None: a.compile = cxx_compiler() is not None
    if a.warmup is None: a.warmup = math.ceil(a.examples / a.batch_size)
    if a.steps is None: a.steps = a.warmup + 36
    if not 0 <= a.warmup < a.steps or a.rounds < 1:
        ap.error(f"need 0 <= --warmup < --steps and --rounds >= 1 (got warm-up {a.warmup}, steps {a.steps}, rounds {a.rounds})")
    lm = a.lm
    base = base_path(size="default", scale="default")
    if (base/"base.json").is_file() and not lm: model0, processor = load_model(base); src = str(base)
    else:
        tok = default_tokenizer()
        model0, processor = other_shape(tok, *lm) if lm else build_tiny_llava(tok, "default")
        src = (f"random model, language model hidden {lm[0]}, MLP {lm[1]}, {lm[2]} layer(s), {lm[3]} head(s) (--lm)" if lm
               else "random default-size model (base not built)")
    pools = mdata.microcosm_pools(scale="default")
    mix = mdata.resolve_recipe("mlan", pools, budget=a.examples, seed=0)
    ds = mdata.encode(mix, processor, template="v1")
    kinds = ["baseline", "mmkit"] + (["mmkit+compile"] if a.compile else [])
    rounds = []   # each side trains its own deep copy: accelerate patches `forward` (autocast) of the model it prepares
    for i in range(a.rounds):
        peak = matmul_peak(PEAK_DTYPE)   # each round against the peak measured just before it
        res = {k: side(k, model0, ds, processor, a, peak) for k in kinds}
        rounds.append(dict(peak_bf16_gflops=round(peak / 1e9), sides=res))
        print(f"round {i + 1}/{a.rounds}: peak {peak / 1e9:.0f} GFLOP/s; " + ", ".join(
            f"{k} {r['useful_tokens_per_s']:.0f} tok/s {r['frac_bf16_peak']:.1%}" for k, r in res.items()), flush=True)
    peak_fp32 = matmul_peak(torch.float32)
    # each side's figures from its median round by fraction of the peak (the lower middle one for an even count); the
    # ratios to the baseline are per round, their median likewise
    med = {k: sorted((r["sides"][k]["frac_bf16_peak"], j) for j, r in enumerate(rounds))[(len(rounds) - 1) // 2][1] for k in kinds}
    res = {k: dict(rounds[med[k]]["sides"][k], peak_bf16_gflops=rounds[med[k]]["peak_bf16_gflops"]) for k in kinds}
    print(f"model: {src}\nmix: mlan, {a.examples} examples, batch {a.batch_size}, {a.steps} steps each, "
          f"timed after step {a.warmup}; {a.rounds} round(s), each side's median round shown")
    print(f"measured matmul peak here ({torch.cuda.get_device_name() if DEV == 'cuda' else 'CPU'}): {PEAK_NAME} "
          f"{'/'.join(str(r['peak_bf16_gflops']) for r in rounds)} GFLOP/s (per round), fp32 {peak_fp32/1e9:.0f} GFLOP/s")
    print(f"{'':14}{'total s':>8}{'s':>8}{'examples':>10}{'useful tok/s':>14}{'padding':>9}{'attention':>10}{'GFLOP/s':>9}{f'of {PEAK_NAME} peak':>14}{'rounds':>16}")
    for k, r in res.items():
        span = [x["sides"][k]["frac_bf16_peak"] for x in rounds]
        print(f"{k:14}{r['total_seconds']:>8}{r['seconds']:>8}{r['examples']:>10}{r['useful_tokens_per_s']:>14}{r['padding_fraction']:>9.3f}{r['attention']:>10}"
              f"{r['tflops']*1000:>9.1f}{r['frac_bf16_peak']:>14.3f}{f'{min(span):.3f}–{max(span):.3f}':>16}")
    ratios = {k: [x["sides"][k]["useful_tokens_per_s"] / x["sides"]["baseline"]["useful_tokens_per_s"] for x in rounds] for k in kinds[1:]}
    ratio = statistics.median_low(ratios["mmkit"])
    print(f"ratio (mmkit / baseline, useful tokens/s, median of rounds): {ratio:.2f}x   (target >= 2.0)")
    if "mmkit+compile" in res:
        print(f"ratio (mmkit+compile / mmkit, steady state, median of rounds): "
              f"{statistics.median_low(x['sides']['mmkit+compile']['useful_tokens_per_s'] / x['sides']['mmkit']['useful_tokens_per_s'] for x in rounds):.2f}x")
    else: print("(no mmkit+compile side: --no-compile, or no C++ compiler found)")
    for k in kinds[1:]:
        r, f = statistics.median_low(ratios[k]), res[k]["frac_bf16_peak"]
        low, n_met = min(x["sides"][k]["frac_bf16_peak"] for x in rounds), sum(x["sides"][k]["frac_bf16_peak"] >= 0.5 for x in rounds)
        print(f"targets, {k:13} ratio to baseline {r:.2f}x (>= 2.0: {'met' if r >= 2 else 'missed'}), "
              f"{f:.1%} of the {PEAK_NAME} peak in the median round (>= 50 %: {'met' if f >= 0.5 else 'missed'}; "
              f"{n_met} of {len(rounds)} rounds, lowest {low:.1%})")
    out = dict(model=src, ratio=round(ratio, 3), peak_dtype=PEAK_NAME, peak_fp32_gflops=round(peak_fp32 / 1e9), warmup=a.warmup, steps=a.steps, **res, rounds=rounds)
    print(json.dumps(out))
    if a.json: atomic_write_json(a.json, out)

if __name__ == "__main__":
    main()
