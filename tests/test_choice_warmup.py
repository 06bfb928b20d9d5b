"""bench/choice_warmup.py's episodes: the letter it trains and scores is the label of the option the query repeats."""
import random, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT/"bench"))
import choice_warmup as C
from mmkit import tasks
from mmkit.train import train_tokenizer


def test_choice_episodes_letter_the_option_the_query_repeats():
    tok = train_tokenizer(tasks.stage0_corpus(seed=0, n=300) + ["(a) [A] A: \nA. Which option says? Answer: find among ->"], vocab_size=600)
    content, rng = C.content_ids(tok), random.Random(0)
    assert content and not any(C.letter_of(tok, i) for i in content)
    for name, style in {**C.TRAIN_STYLES, **C.HELD_OUT_STYLES}.items():
        seen = set()
        for _ in range(40):
            ids, mask, at, letter = C.episode(rng, tok, content, style)
            assert len(ids) == len(mask) and ids[at] == letter and mask[at] == 1
            want = C.letter_of(tok, letter); seen.add(want)
            lab, first = style[0], style[3]
            label = tok.encode(lab(want), add_special_tokens=False)
            starts = [j for j in range(at - len(label) + 1) if ids[j:j + len(label)] == label]
            assert starts, (name, tok.decode(ids))
            j = starts[-1] + len(label); opt = []
            while j < at and mask[j] == 0: opt.append(ids[j]); j += 1     # the option's content: the masked ids after its label
            assert opt and any(ids[q:q + len(opt)] == opt for q in range(at) if mask[q] == 1), (name, tok.decode(ids))
        assert len(seen) >= 3, (name, seen)
    blocks = C.choice_blocks(tok, 4, 64, 0, C.TRAIN_STYLES)
    assert len(blocks) == 4 and all(len(r) == 64 for r in blocks["input_ids"]) and any(-100 in r for r in blocks["labels"])
