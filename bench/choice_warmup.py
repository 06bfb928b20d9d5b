"""Does a random-token warm-up teach a microcosm base to choose (match an option, then read its label)?

bench/option_match.py shows that stage 2 cannot teach the choice itself: asked `Which option says "X"?`, the base stays
near chance. The step it lacks reads the label *before* the matched option, where copying reads the token after.
This probe continues a base's language model on lettered-option episodes of random tokens, mixed half and half with its
stage-0 corpus so it keeps what it knows:

    (a) x1 (b) x2 x2' (c) x3  Q: x2 x2'? A: (b).

The options' contents are random token ids (1-2 each, 2-4 options); only the letter after the query is predictable
from the context, and only by finding the option the query repeats and reading its label. Five house styles are
trained (`(a) x`, `[A] x`, `A: x`, the first two also with the query before the options); `\\nA. x` (the layout of stage 2's and the held-out sets' options) is scored but
never trained, so its accuracy shows whether the skill carries over to a new layout.

It reports the letter accuracy per style before and after, the base's look-up and knowledge gates after, and saves the
continued base (with its base.json) to `--out`, for `python bench/option_match.py --base OUT`.

    python bench/choice_warmup.py --steps 2000 --out /tmp/choice-base [--base BASEDIR] [--corpus-share 0.5]
                                  [--styles paren bracket colon]   # the styles trained (default: all five)
"""
import argparse, json, random

import torch
from datasets import Dataset

from mmkit.train import continue_base

# a style: the option label, the query (\x00 marks where the option's content goes, \x01 where the answer follows),
# the answer's label form, and whether the query comes before the options (as in a multiple-choice question)
TRAIN_STYLES = {
    "paren": (lambda l: f" ({l.lower()})", " Q:\x00? A: (\x01", lambda l: l.lower() + ").", False),
    "bracket": (lambda l: f" [{l}]", " find\x00 -> [\x01", lambda l: l + "]", False),
    "colon": (lambda l: f" {l}:", " which is\x00?\x01", lambda l: " " + l + ".", False),
    "paren-first": (lambda l: f" ({l.lower()})", " Q:\x00?\x01 A: (", lambda l: l.lower() + ").", True),
    "bracket-first": (lambda l: f" [{l}]", " find\x00 among\x01 -> [", lambda l: l + "]", True),
}
HELD_OUT_STYLES = {
    "newline": (lambda l: f"\n{l}.", "\nWhich option says\x00?\nAnswer:\x01", lambda l: " " + l, False),
    "newline-first": (lambda l: f"\n{l}.", "Which option says\x00?\x01\nAnswer:", lambda l: " " + l, True),
}


def episode(rng, tok, content, style, n_opt=None):
    """One episode's (input ids, label mask, index of the letter token, letter id): options of random `content` ids under
    `style`'s labels, a query repeating one option (before the options or after them), then its label. Options'
    contents are masked out of the loss."""
    lab, ask, ans, first = style
    enc = lambda s: tok.encode(s, add_special_tokens=False)
    n_opt = n_opt or rng.randint(2, 4); letters = "ABCD"[:n_opt]
    draw = lambda: [[rng.choice(content) for _ in range(rng.randint(1, 2))] for _ in letters]
    opts = draw()
    while len({tuple(o) for o in opts}) < n_opt: opts = draw()
    k = rng.randrange(n_opt)
    pre, rest = ask.split("\x00"); mid, post = rest.split("\x01")
    query, after = enc(pre) + opts[k] + enc(mid), enc(post)
    ids, mask = (list(query), [1] * len(query)) if first else ([], [])
    for l, o in zip(letters, opts):
        p = enc(lab(l)); ids += p + o; mask += [1] * len(p) + [0] * len(o)
    tail = after if first else query + after
    ids += tail; mask += [1] * len(tail)
    a = enc(ans(letters[k])); letter_at = len(ids) + next(i for i, t in enumerate(a) if tok.decode([t]).strip(" ").upper().startswith(letters[k]))
    ids += a; mask += [1] * len(a)
    return ids, mask, letter_at, ids[letter_at]


def choice_blocks(tok, n, block_size, seed, styles):
    "`n` blocks of `block_size` tokens packed with episodes (labels = inputs, -100 on options' contents)."
    rng, content = random.Random(seed), content_ids(tok)
    rows, labels = [], []
    for _ in range(n):
        r, m = [], []
        while len(r) < block_size:
            ids, mask, _, _ = episode(rng, tok, content, styles[rng.choice(list(styles))]); r += ids; m += mask
        rows.append(r[:block_size]); labels.append([t if k else -100 for t, k in zip(r, m)][:block_size])
    return Dataset.from_dict({"input_ids": rows, "labels": labels, "attention_mask": [[1] * block_size] * n})


def content_ids(tok):
    "Token ids an option may hold: every non-special id that is not a letter, bracket or punctuation of the styles."
    special = set(tok.all_special_ids)
    bad = lambda s: not s.strip() or len(s.strip()) == 1 or any(c in s for c in "()[]:.?\n")
    return [i for i in range(len(tok)) if i not in special and not bad(tok.decode([i]))]


def letter_of(tok, i):
    "The option letter (A-D) token `i` writes, whatever its case or leading space, else ''."
    t = tok.decode([i]).strip(" ")
    return t.upper() if len(t) == 1 and t.upper() in "ABCD" else ""


@torch.no_grad()
def letter_accuracy(model, tok, styles, n=300, seed=999):
    """Greedy accuracy on the letter after the query, per style, on `n` fresh single episodes each, and (`/letters`) the
    accuracy when only the options' letters are compared (does the choice carry over even where the layout is new?)."""
    out, content = {}, content_ids(tok)
    model.eval()
    for name, st in styles.items():
        rng, ok, ok_l = random.Random(seed), 0, 0
        for _ in range(n):
            ids, _, at, letter = episode(rng, tok, content, st)
            x = torch.tensor([[tok.bos_token_id] + ids[:at]])
            logits = model(input_ids=x).logits[0, -1]
            ok += int(logits.argmax()) == letter
            opts = {c for c in "ABCD" if any(letter_of(tok, ids[j]) == c for j in range(at))}   # the option letters, any case or space
            cands = [i for i in range(len(tok)) if letter_of(tok, i) in opts]
            ok_l += letter_of(tok, cands[int(logits[cands].argmax())]) == letter_of(tok, letter)
        out[name] = round(ok / n, 3); out[name + "/letters"] = round(ok_l / n, 3)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", default=None)
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--corpus-share", type=float, default=0.5)
    ap.add_argument("--styles", nargs="+", default=list(TRAIN_STYLES), choices=list(TRAIN_STYLES), help="the styles trained (default: all)")
    a = ap.parse_args()
    styles = {**TRAIN_STYLES, **HELD_OUT_STYLES}
    rec = continue_base(a.base, a.out, lambda tok, n: choice_blocks(tok, n, 128, 0, {k: TRAIN_STYLES[k] for k in a.styles}),
                        steps=a.steps, name="choice_warmup", measure=lambda m, p: letter_accuracy(m, p.tokenizer, styles),
                        corpus_share=a.corpus_share, lr=a.lr, settings=dict(styles=a.styles))
    g = rec.pop("gates")
    print(json.dumps(dict(rec, **{k: g[k] for k in ("knowledge_accuracy", "lookup_accuracy", "lookup_pick_accuracy",
                                                   "lookup_pick_chance", "repeat_ratio", "heldout_perplexity")})))

if __name__ == "__main__":
    main()
