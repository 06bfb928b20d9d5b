"""The Gradio app end to end: a real `python app.py` server, real `gradio_client` calls, a real headless Chromium."""
import json, os, shutil, socket, subprocess, sys, threading, time, urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "tests" / "artifacts"
PROMPTS = ["What is in the image?", "What color is the circle?", "How many shapes are there?", "Is there a red square?"]
MAX_NEW = 8


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]


def _write_run(runs: Path, name: str, recipe: str, seed: int, tok):
    "A run folder as the run store writes it: config.json, tokens.json, checkpoint/, metrics.json (last)."
    from mmkit.config import atomic_write_json
    from mmkit.model import build_tiny_llava, save_model
    from mmkit import tasks
    d = runs / name
    save_model(*build_tiny_llava(tok, "test", seed=seed), d / "checkpoint")
    atomic_write_json(d / "config.json", {"params": {"recipe": recipe, "seed": 0, "budget": 100, "scale": "test"}})
    tokens = dict(examples=100, text_tokens=5000 * seed, image_tokens=6400 * (seed % 2), padding_tokens=0,
                  supervised_tokens=800, processed_tokens=5000 * seed + 6400 * (seed % 2))
    atomic_write_json(d / "tokens.json", {"totals": tokens})
    ds = {n: {"accuracy": round(0.1 * ((seed + i) % 9), 2), "n": 10} for i, n in enumerate(tasks.SUITES)}
    lang = sum(ds[n]["accuracy"] for n in tasks.LANGUAGE_SUITES) / 4
    vis = sum(ds[n]["accuracy"] for n in tasks.VISION_SUITES) / 5
    atomic_write_json(d / "metrics.json", {"datasets": ds, "language_avg": lang, "vision_avg": vis,
                                           "overall_avg": (4 * lang + 5 * vis) / 9, "tokens": tokens, "recipe": recipe,
                                           "training_tokens": {"text": tokens["text_tokens"], "image": tokens["image_tokens"],
                                                               "total": tokens["processed_tokens"]},
                                           "params": {"recipe": recipe, "seed": 0, "budget": 100, "scale": "test"}})
    return d / "checkpoint"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    "A cache with a (tiny, random) microcosm base and runs/ with a lang_only and a vis_only run."
    from mmkit.model import build_tiny_llava, sample_tokenizer, save_model
    d = tmp_path_factory.mktemp("app")
    env = dict(os.environ, MMKIT_RUNS_DIR=str(d / "runs"), MMKIT_CACHE_DIR=str(d / "cache"), GRADIO_ANALYTICS_ENABLED="False",
               HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MMKIT_CACHE_DIR", env["MMKIT_CACHE_DIR"]); mp.setenv("MMKIT_RUNS_DIR", env["MMKIT_RUNS_DIR"])
        from mmkit.train import base_path
        base = base_path()
    tok = sample_tokenizer()
    save_model(*build_tiny_llava(tok, "test", seed=0), base)
    models = {"base": str(base),
              "lang": str(_write_run(d / "runs", "lang_only-s0", "lang_only", 1, tok)),
              "vis": str(_write_run(d / "runs", "vis_only-s0", "vis_only", 2, tok))}
    from mmkit.world import render, sample_scene
    import random
    img = d / "scene.png"; render(sample_scene(random.Random(7))).save(img)
    (d / "notes.txt").write_text("this is not an image\n")
    return dict(dir=d, env=env, models=models, image=img, text_file=d / "notes.txt")


@pytest.fixture(scope="module")
def server(site):
    "`python app.py --port P` as its own process; stopped by its PID at the end."
    port = _free_port()
    log = open(site["dir"] / "server.log", "w")
    t0 = time.time()
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=ROOT, env=site["env"],
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"app exited with {proc.returncode}: {(site['dir'] / 'server.log').read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(url + "config", timeout=2) as r:
                    if r.status == 200: break
            except OSError: pass
            if time.time() - t0 > 120: raise AssertionError("app did not come up in 120 s")
            time.sleep(0.5)
        print(f"app up in {time.time() - t0:.1f} s")
        yield dict(url=url, proc=proc, port=port, log=site["dir"] / "server.log")
    finally:
        os.kill(proc.pid, 15)
        try: proc.wait(timeout=20)
        except subprocess.TimeoutExpired: os.kill(proc.pid, 9); proc.wait()
        log.close()


@pytest.fixture(scope="module")
def client(server):
    from gradio_client import Client
    return Client(server["url"], verbose=False)


@pytest.fixture(scope="module")
def direct(site):
    "Answers from mmkit directly (no app): greedy generate on the v1 prompt, per (model, prompt)."
    import torch
    from mmkit.model import generation_prompt, load_image, load_model
    img = load_image(site["image"])
    out = {}
    for k, path in site["models"].items():
        m, p = load_model(path); m.eval()
        for q in PROMPTS:
            enc = p(text=[generation_prompt(q, has_image=True, answer_prefix="")], images=[img], return_tensors="pt")
            with torch.no_grad():
                g = m.generate(**enc, max_new_tokens=MAX_NEW, do_sample=False, num_beams=1, pad_token_id=p.tokenizer.pad_token_id)
            out[k, q] = p.tokenizer.decode(g[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    return out


def _compare(client, site, prompt, image="scene", models=None, n_cols=3):
    from gradio_client import handle_file
    m = site["models"]
    ids = (models or [m["base"], m["lang"], m["vis"]]) + [None] * (4 - len(models or [1, 2, 3]))
    img = None if image is None else handle_file(str(site["image"] if image == "scene" else image))
    return client.predict(img, prompt, MAX_NEW, True, 0.7, "", n_cols, *ids, [], [], [], [], api_name="/compare")


def test_defaults_and_choices(site):
    "The columns default to the base, the newest lang_only run and the newest vis_only run."
    from mmkit import app
    with pytest.MonkeyPatch.context() as mp:
        for k in ("MMKIT_CACHE_DIR", "MMKIT_RUNS_DIR"): mp.setenv(k, site["env"][k])
        d = app.default_models()
        ch = app.checkpoint_choices()
    m = site["models"]
    assert d[:3] == [m["base"], m["lang"], m["vis"]] and d[3] is None
    assert ch[0] == ("base (microcosm)", m["base"])                       # then the runs, newest first
    assert sorted(lbl.split(" ")[0] for lbl, _ in ch[1:]) == ["lang_only", "vis_only"]


def test_compare_matches_direct_generation(client, site, direct):
    out = _compare(client, site, PROMPTS[0])
    results, chats = out[-1], out[:4]
    assert [r["column"] for r in results] == [1, 2, 3]
    for r, k, chat in zip(results, ["base", "lang", "vis"], chats):
        assert r["error"] is None and r["answer"] == direct[k, PROMPTS[0]]
        assert r["prompt_tokens"] > r["image_tokens"] == 64 and 0 < r["generated_tokens"] <= MAX_NEW and r["latency_s"] > 0
        assert chat[-2]["role"] == "user" and chat[-1]["role"] == "assistant"
    # the endpoint streams: several partial updates before the final one
    from gradio_client import handle_file
    job = client.submit(handle_file(str(site["image"])), PROMPTS[0], MAX_NEW, True, 0.7, "", 3, *ids3(site), None, [], [], [], [],
                        api_name="/compare")
    final = job.result(timeout=120)
    assert len(job.outputs()) > 3 and [r["answer"] for r in final[-1]] == [r["answer"] for r in results]
    # a second turn: each column continues its own chat (Vicuna v1, multi-turn), like a direct generate on that prompt
    from gradio_client import handle_file
    m = site["models"]
    out2 = client.predict(handle_file(str(site["image"])), PROMPTS[1], MAX_NEW, True, 0.7, "", 3, m["base"], m["lang"], m["vis"], None,
                          *chats[:3], [], api_name="/compare")
    for r, r1, k in zip(out2[-1], results, ["base", "lang", "vis"]):
        from mmkit.model import TEMPLATES
        t = TEMPLATES["v1"]
        prompt = (f"{t.system}USER: <image>\n{PROMPTS[0]} ASSISTANT: {r1['answer']}</s>USER: {PROMPTS[1]} ASSISTANT:")
        assert r["error"] is None and r["answer"] == _direct_answer(m[k], prompt, site["image"])
        assert r["prompt_tokens"] > r1["prompt_tokens"]
    assert [len(c) for c in out2[:3]] == [4, 4, 4]


def ids3(site):
    return [site["models"][k] for k in ("base", "lang", "vis")]


def _direct_answer(path, prompt, image):
    import torch
    from mmkit.model import load_image, load_model
    model, p = load_model(path)
    enc = p(text=[prompt], images=[load_image(image)], return_tensors="pt")
    with torch.no_grad():
        g = model.eval().generate(**enc, max_new_tokens=MAX_NEW, do_sample=False, num_beams=1, pad_token_id=p.tokenizer.pad_token_id)
    return p.tokenizer.decode(g[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)


def test_heldout_matches_evaluate(client, site):
    from mmkit import evaluate
    from mmkit.model import load_model
    m = site["models"]
    for name, idx in [("pope", 2), ("openbookqa", 5)]:
        out = client.predict(name, idx, 3, m["base"], m["lang"], m["vis"], None, api_name="/heldout")
        info = out[-1]
        item = evaluate.load_suites([name])[name][idx]
        assert (info["id"], info["answer"], info["question"]) == (item["id"], item["answer"], item["question"])
        assert info["has_image"] == (item.get("image") is not None)
        for r, k in zip(info["models"], ["base", "lang", "vis"]):
            model, proc = load_model(m[k])
            ref = evaluate.evaluate(model, proc, suites={name: [item]}, batch_size=1, progress=False)[1][0]
            assert r["error"] is None and (r["output"], r["extracted"], r["correct"]) == (ref["output"], ref["extracted"], ref["correct"])
        marks = [row[-1] for row in out[5]["data"]]
        assert marks == ["✓" if r["correct"] else "✗" for r in info["models"]]


def test_twenty_concurrent_requests(client, site, direct):
    t0 = time.time()
    with ThreadPoolExecutor(20) as ex:
        futs = [ex.submit(_compare, client, site, PROMPTS[i % len(PROMPTS)]) for i in range(20)]
        outs = [f.result(timeout=300) for f in futs]
    print(f"20 concurrent compare requests in {time.time() - t0:.1f} s")
    for i, out in enumerate(outs):
        q = PROMPTS[i % len(PROMPTS)]
        assert [r["answer"] for r in out[-1]] == [direct[k, q] for k in ("base", "lang", "vis")]


def test_bad_inputs_stay_in_their_column(client, site, server, direct):
    m = site["models"]
    # a prompt that needs an image, without one
    res = _compare(client, site, "<image> What color is the circle?", image=None)[-1]
    assert all("no image" in r["error"] for r in res)
    # a text question without an image is fine (language-only questions)
    res = _compare(client, site, "Is a zorb red?", image=None)[-1]
    assert all(r["error"] is None and r["answer"] is not None for r in res)
    # a non-image upload
    out = _compare(client, site, PROMPTS[0], image=site["text_file"])
    assert all("not a usable image" in r["error"] and "notes.txt" in r["error"] for r in out[-1])
    assert all(s.startswith("⚠️") for s in out[4:7])
    # an empty prompt
    assert all("empty prompt" in r["error"] for r in _compare(client, site, "   ")[-1])
    # a checkpoint that does not exist: its column says so, the others answer
    missing = str(site["dir"] / "runs" / "nope" / "checkpoint")
    res = _compare(client, site, PROMPTS[0], models=[m["base"], missing, m["vis"]])[-1]
    assert "no such model folder" in res[1]["error"] and res[1]["answer"] is None
    assert (res[0]["answer"], res[2]["answer"]) == (direct["base", PROMPTS[0]], direct["vis", PROMPTS[0]])
    # a held-out request with a broken column
    info = client.predict("gqa", 0, 2, m["base"], missing, None, None, api_name="/heldout")[-1]
    assert info["models"][0]["error"] is None and "no such model folder" in info["models"][1]["error"]
    assert server["proc"].poll() is None   # still serving


def test_scores_use_report(client, site):
    "The Scores tab draws the selected runs with mmkit.report's figures."
    from mmkit import report, runs
    out = client.predict(["lang_only-s0", "vis_only-s0"], api_name="/scores")
    table, fig1, fig2, msg = out
    assert msg.startswith("2 run") and sorted(table["data"][i][0] for i in range(2)) == ["lang_only-s0", "vis_only-s0"]
    df = report.results_frame([r for r in runs.list_runs(site["dir"] / "runs")])
    want1, want2 = report.fig_per_dataset(df), report.fig_score_vs_tokens(df)
    got1, got2 = (json.loads(f["plot"]) for f in (fig1, fig2))
    assert got1["layout"]["title"]["text"] == want1.layout.title.text and len(got1["data"]) == len(want1.data)
    assert len(got2["data"]) == len(want2.data)
    assert "No scored runs" in client.predict([], api_name="/scores")[-1]


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (scripts/test.sh installs it with apt-get when run as root)")
def test_browser_renders_three_columns(server, tmp_path):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "app.png"
    common = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
              "--disable-component-update", "--no-first-run", "--virtual-time-budget=5000", "--window-size=1400,1000"]
    dom = subprocess.run(common + [f"--user-data-dir={tmp_path / 'dom'}", "--dump-dom", server["url"]],
                         capture_output=True, text=True, timeout=120).stdout
    (ARTIFACTS / "app.dom.html").write_text(dom)
    for label in ["Model 1", "Model 2", "Model 3", "Column 1", "Column 2", "Column 3", "Compare", "Held-out", "Scores"]:
        assert label in dom, f"{label!r} not in the rendered DOM"
    subprocess.run(common + [f"--user-data-dir={tmp_path / 'shot'}", f"--screenshot={shot}", server["url"]],
                   capture_output=True, timeout=120, check=True)
    from PIL import Image, ImageStat
    im = Image.open(shot).convert("L")
    assert im.size == (1400, 1000)
    stat = ImageStat.Stat(im)
    assert stat.stddev[0] > 10, f"screenshot looks blank (stddev {stat.stddev[0]:.1f})"
    # many distinct grey levels: text and widgets, not a spinner on a blank page
    assert len([c for c in im.histogram() if c > 50]) > 20


def test_model_cache_keeps_at_most_max_models_and_never_drops_one_in_use(site):
    "Real checkpoints through `load_model`: the least recently used model goes first, a model whose lock is held stays."
    from mmkit.app import ModelCache
    from mmkit.model import load_model
    loads = []
    def loader(k): loads.append(k); return load_model(k)
    a, b, c = ids3(site)
    cache = ModelCache(loader, max_models=2)
    for m in (a, b, c): cache.get(m)
    assert len(cache) == 2 and a not in cache and b in cache and c in cache
    cache.get(b)                                             # b becomes the most recently used
    cache.get(a)                                             # reload a: c (least recently used) goes
    assert a in cache and b in cache and c not in cache and len(loads) == 4
    with cache.lock(b):                                      # a column is generating with b, the least recently used
        t = threading.Thread(target=cache.get, args=(c,)); t.start(); t.join()
    assert b in cache and c in cache and a not in cache      # so a went instead
    model, proc = cache.get(c)
    assert not model.training and proc.tokenizer is not None and len(loads) == 5
