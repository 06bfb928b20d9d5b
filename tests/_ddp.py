"""Shared by the scripts that tests run under `torchrun` (ddp_stage2.py, ddp_run.py)."""
import json, os, sys
import torch.distributed as dist

def report_and_exit(mine: dict, path) -> None:
    """Gather every rank's `mine`, write the list to `path` on rank 0, then leave the group cleanly and skip the
    interpreter's teardown: a process whose gloo/accelerate threads are still being destroyed at exit can abort
    ("terminate called without an active exception", exit -6) after all the work is done and reported. Any failure
    before this point raises and still exits non-zero."""
    allr = [None] * dist.get_world_size()
    dist.all_gather_object(allr, mine)
    if dist.get_rank() == 0:
        with open(path, "w") as f: json.dump(allr, f)
    dist.barrier()
    dist.destroy_process_group()
    sys.stdout.flush(); sys.stderr.flush()
    os._exit(0)
