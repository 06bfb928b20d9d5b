"""Run by tests/test_runs.py under `torchrun --nproc_per_node 2`: a whole `run_experiment` (stage 2 + evaluation) in a
real 2-process gloo group. Each rank reports the world size, what `shard` gave it, and a digest of the evaluation rows
it got back; rank 0 writes the reports to RUNS/ddp_report.json.
"""
import hashlib, json, os, sys
import torch.distributed as dist
from _ddp import report_and_exit
from mmkit.evaluate import evaluate, shard
from mmkit.model import load_model
from mmkit.runs import run_experiment

runs, base = sys.argv[1], sys.argv[2]
run = run_experiment("lang_only", base=base, budget=16, scale="test", size="test", eval_n=3, runs_dir=runs, run_name="ddp",
                     suites=["boolq", "pope", "race"])
parts = shard(lambda ix: [(dist.get_rank(), i) for i in ix], list(range(7)))
model, proc = load_model(run/"checkpoint")
_, rows = evaluate(model, proc, suites=["boolq", "pope", "race"], n=3, seed=0, progress=False)
mine = dict(rank=dist.get_rank(), world_size=dist.get_world_size(), shard=parts, n_rows=len(rows),
            digest=hashlib.sha256(json.dumps([(r["id"], r["output"]) for r in rows]).encode()).hexdigest())
report_and_exit(mine, os.path.join(runs, "ddp_report.json"))
