"""Run by tests/test_train.py under `torchrun --nproc_per_node 2`: stage 2 in a real 2-process gloo group.

Each rank reports the world size it saw, the modalities of the batches it trained on, and a checksum of its
parameters after training; rank 0 writes the reports to OUT/ddp_report.json.
"""
import os, sys
import torch, torch.distributed as dist
from _ddp import report_and_exit
from mmkit.train import train_stage2

out, base = sys.argv[1], sys.argv[2]
res = train_stage2("mlan_50", out, base=base, budget=48, seed=0, scale="test", size="test", epochs=1, batch_size=4,
                   logging_steps=1, save_steps=1000)
trainer = res["trainer"]
model = trainer.model.module if hasattr(trainer.model, "module") else trainer.model
flat = torch.cat([p.detach().float().flatten() for p in model.parameters()])
mine = dict(rank=dist.get_rank(), world_size=dist.get_world_size(), modalities=sorted(trainer.ledger.by),
            batches=trainer.ledger.batches, checksum=float(flat.double().sum()), first=flat[:64].tolist(),
            norm=float(flat.double().norm()))
report_and_exit(mine, os.path.join(out, "ddp_report.json"))
