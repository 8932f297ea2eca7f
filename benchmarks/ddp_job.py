"""One rank of a small DDP training job, tracked with ``wattwise.track()`` (no arguments).

Run by tests/test_distributed.py and benchmarks/bench_distributed.py, once per rank (by
``torchrun`` or with ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``,
``MASTER_PORT`` set): gloo on the loopback, an MLP on the bundled digits, each rank its
shard (``DistributedSampler``), gradients all-reduced every step. The tracker finds the run
to join in the environment (``WATTWISE_RUN_ID`` under ``wattwise run``, else the job's
rendezvous); every rank prints one JSON line: its rank, role, own record and the run's id.

    python benchmarks/ddp_job.py [--steps 60] [--kill-rank R] [--interval 0.05]

``--kill-rank R``: rank R kills itself with SIGKILL after the last step, inside its
tracked block (the others have left the last collective by then).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading

import psutil
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler

import wattwise
from wattwise.workloads import build_model, load_dataset


def _tracker_cpu_s() -> float:
    """CPU time (user + system, s) of this process's wattwise threads so far."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    return sum(
        th.user_time + th.system_time
        for th in psutil.Process().threads()
        if names.get(th.id, "").startswith("wattwise-")
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--kill-rank", type=int, default=None)
    parser.add_argument("--interval", type=float, default=0.05)
    args = parser.parse_args()

    torch.set_num_threads(1)  # a small shared machine: one thread per rank
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    data = load_dataset("digits")
    sampler = DistributedSampler(data.train, seed=0)
    loader = DataLoader(data.train, batch_size=32, sampler=sampler)
    torch.manual_seed(0)
    model = DistributedDataParallel(
        build_model("mlp", input_shape=data.input_shape, num_classes=data.num_classes)
    )
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    with wattwise.track("ddp", interval_s=args.interval) as t:
        step, epoch = 0, 0
        while step < args.steps:
            sampler.set_epoch(epoch)
            for x, y in loader:
                loss = torch.nn.functional.cross_entropy(model(x), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
                step += 1
                if step >= args.steps:
                    break
            epoch += 1
        dist.barrier()
        tracker_cpu_s, elapsed_s = _tracker_cpu_s(), getattr(t, "elapsed_s", 0.0)
        if args.kill_rank == rank:
            os.kill(os.getpid(), signal.SIGKILL)
    role = getattr(t, "role", None)
    print(
        json.dumps(
            {
                "rank": rank,
                "role": role.value if role is not None else None,
                "record": getattr(t, "run_id", None),
                "run": getattr(t, "member_of", None),
                "loss": float(loss.detach()),
                "tracker_cpu_s": tracker_cpu_s,
                "elapsed_s": elapsed_s,
            }
        ),
        flush=True,
    )
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
