"""Benchmark: N training processes side by side (one thread each) against one process with every thread.

``csagan study run --jobs N`` trains N runs at once, each with ``cores // N`` torch threads. This script
measures whether that is worth it on the machine at hand: it times the engine's own training step
(:class:`csagan.train.step.TrainStep`, built by ``train_step.py`` from the same options, synthetic
batches) in two modes, alternately and ``--rounds`` times each, in the same run:

* **one**: one process with ``cores`` threads;
* **side by side**: ``--jobs`` processes with ``cores // jobs`` threads each.

In each mode every process builds its step, warms up, waits at a barrier, and then counts the steps it
finishes within the same ``--seconds`` window. The machine's throughput is the images of all processes
divided by the window; the record holds both throughputs, their ratio (side by side / one) per round and
the CPU model and flags. The study's 32 px protocol:

    python benchmarks/side_by_side.py --config csagan --image-size 32 --nf 16 --batch 24 --out /tmp/sbs.json

Results: benchmarks/README.md ("Runs side by side").
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing as mp
import os
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train_step

from csagan.devices import hardware_record


def _worker(step_argv: list[str], threads: int, warmup: int, seconds: float, barrier: Any, out: Any) -> None:
    torch.set_num_threads(threads)
    args = train_step.parse_args(step_argv)
    device = torch.device("cpu")
    step = train_step.build_step(args, optimised=True, device=device)
    batches = train_step.synthetic_batches(train_step.N_BATCHES, args.batch, step.mcfg.image_size, seed=args.seed)
    for i in range(warmup):
        step(batches[i % len(batches)])
    barrier.wait()
    end = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < end:
        step(batches[n % len(batches)])
        n += 1
    out.put(n)


def measure(step_argv: list[str], processes: int, threads: int, warmup: int, seconds: float) -> dict[str, Any]:
    """Steps per process and images per second of the machine, ``processes`` at once with ``threads`` each."""
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(processes), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(step_argv, threads, warmup, seconds, barrier, out))
             for _ in range(processes)]  # fmt: skip
    for p in procs:
        p.start()
    steps = [out.get() for _ in procs]
    for p in procs:
        p.join()
    batch = train_step.parse_args(step_argv).batch
    return {"processes": processes, "threads": threads, "steps": steps,
            "images_per_s": round(sum(steps) * batch / seconds, 2)}  # fmt: skip


def parse_args(argv: Sequence[str] | None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=2, help="processes side by side (default 2)")
    parser.add_argument("--seconds", type=float, default=20.0, help="timed window per mode and round")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per process first")
    parser.add_argument("--rounds", type=int, default=2, help="how often each mode is measured (alternately)")
    parser.add_argument("--out", type=Path, default=None, help="write the JSON record here")
    args, rest = parser.parse_known_args(argv)
    return args, [*rest, "--no-reference", "--memory", "off"]


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args, step_argv = parse_args(argv)
    train_step.parse_args(step_argv)  # the step options are train_step.py's: refuse unknown ones now
    cores = os.cpu_count() or 1
    if args.jobs < 2 or cores // args.jobs < 1:
        raise SystemExit(f"--jobs must be between 2 and the number of cores ({cores}).")
    started = dt.datetime.now(dt.UTC)
    rounds = []
    for _ in range(args.rounds):  # alternately, so that a load change hits both modes alike
        one = measure(step_argv, 1, cores, args.warmup, args.seconds)
        side = measure(step_argv, args.jobs, cores // args.jobs, args.warmup, args.seconds)
        rounds.append({"one": one, "side_by_side": side,
                       "ratio": round(side["images_per_s"] / one["images_per_s"], 3)})  # fmt: skip
    record = {
        "benchmark": "side_by_side",
        "date_utc": started.strftime("%Y-%m-%d %H:%M"),
        "hardware": hardware_record(torch.device("cpu")),
        "step_options": step_argv,
        "jobs": args.jobs,
        "seconds": args.seconds,
        "rounds": rounds,
        "median_ratio": round(statistics.median(r["ratio"] for r in rounds), 3),
    }
    return train_step.emit_record(record, args.out)


if __name__ == "__main__":
    main()
