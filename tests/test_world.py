"World: scenes, rendering, descriptions, the held-out split, knowledge; bad input raises MMKitError."
import random
import numpy as np
import pytest
from mmkit.config import MMKitError
from mmkit.world import (SHAPES, COLORS, OBJECT_SIZES, RGB, PHRASINGS, FACT_PHRASINGS, CREATURES, Obj, Scene, sample_scene,
                         render, png_bytes, describe, is_heldout, sample_split_scene, fact, all_facts)


def test_sampling_is_deterministic_and_valid():
    a = [sample_scene(random.Random(7)) for _ in range(3)]
    assert a[0] == a[1] == a[2]
    r = random.Random(0)
    scenes = [sample_scene(r) for _ in range(500)]
    assert {len(s.objects) for s in scenes} == {1, 2, 3, 4}
    for s in scenes:
        assert len({(o.row, o.col) for o in s.objects}) == len(s.objects)
        assert len({o.name for o in s.objects}) == len(s.objects)
        assert Scene.from_json(s.to_json()) == s
    assert len({describe(s) for s in scenes}) > 400


def test_render_deterministic_crisp_and_unambiguous():
    s = sample_scene(3, n_objects=4)
    assert png_bytes(render(s)) == png_bytes(render(s))
    assert render(s, 96).size == (96, 96)
    masks = {}
    for sh in SHAPES:
        for sz in OBJECT_SIZES:
            for co in COLORS:
                im = np.asarray(render(Scene((Obj(sh, co, sz, 2, 0),))))
                m = (im != 255).any(-1)
                assert set(map(tuple, im[m])) == {RGB[co]}          # saturated, no blending
                assert m[:22, :].sum() == 0 and m[:, 22:].sum() == 0  # stays in its cell (bottom left)
            masks[sh, sz] = m
    for sz in OBJECT_SIZES:
        for i, a in enumerate(SHAPES):
            for b in SHAPES[i + 1:]:
                assert (masks[a, sz] ^ masks[b, sz]).sum() >= 20, (a, b, sz)


def test_descriptions():
    s = Scene((Obj("triangle", "orange", "small", 2, 2), Obj("circle", "red", "large", 0, 0)))
    assert describe(s) == "a large red circle at top left; a small orange triangle at bottom right."
    alts = [describe(s, k) for k in range(len(PHRASINGS))]
    assert len(set(alts)) == len(PHRASINGS) >= 5
    assert all("red" in t and "circle" in t and "orange triangle" in t for t in alts)
    assert "a orange" not in " ".join(alts).lower()


def test_heldout_split_is_structural():
    r = random.Random(1)
    scenes = [sample_scene(r) for _ in range(3000)]
    frac = np.mean([is_heldout(s) for s in scenes])
    assert 0.10 < frac < 0.20
    ones = {describe(sample_scene(r, 1)) for _ in range(3000)}
    assert 0.08 < np.mean([is_heldout(Scene((Obj(*_parse(d)),))) for d in ones]) < 0.25
    assert all(is_heldout(sample_split_scene(r, True)) for _ in range(50))
    assert not any(is_heldout(sample_split_scene(r, False)) for _ in range(50))


def _parse(d):
    size, color, shape, _, row, col = d.rstrip(".").split()[1:]
    return shape, color, size, ["top", "middle", "bottom"].index(row), ["left", "center", "right"].index(col)


def test_knowledge():
    for kind, ps in FACT_PHRASINGS.items(): assert len(ps) >= 4, kind
    assert fact("corners", "triangle") == "A triangle has 3 corners."
    assert fact("creatures", "fent") == "A fent is an orange circle."
    assert len(set(CREATURES.values())) == len(CREATURES)
    facts = all_facts()
    assert len(facts) == len(set(facts))


@pytest.mark.parametrize("bad", [
    lambda: sample_scene(0, n_objects=5, grid=2),       # grid too small for the object count
    lambda: sample_scene(0, n_objects=10),
    lambda: sample_scene(0, n_objects=-1),
    lambda: sample_scene(0, grid=0),
    lambda: Obj("hexagon", "red", "small", 0, 0),        # unknown shape
    lambda: Obj("circle", "pink", "small", 0, 0),
    lambda: Obj("circle", "red", "huge", 0, 0),
    lambda: Obj("circle", "red", "small", -1, 0),        # negative position
    lambda: Scene((Obj("circle", "red", "small", 3, 0),)),
    lambda: render(sample_scene(0), image_size=-64),     # negative size
    lambda: render(sample_scene(0), image_size=0),
    lambda: describe(sample_scene(0), phrasing=99),
    lambda: fact("corners", "hexagon"),
])
def test_bad_input_raises_mmkit_error(bad):
    with pytest.raises(MMKitError) as e: bad()
    assert "\n" not in str(e.value)
