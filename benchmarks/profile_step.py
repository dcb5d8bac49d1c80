"""Where one training step spends its time: a torch.profiler table of the operators.

Builds the same :class:`csagan.train.step.TrainStep` as ``benchmarks/train_step.py`` (synthetic
batches, random frozen encoders), runs ``--warmup`` untimed steps, then profiles ``--steps`` steps
and prints the operators sorted by their own (self) CPU time, with each one's share of the total.
Use it to find what to optimise before measuring the gain with ``train_step.py``:

    python benchmarks/profile_step.py --config csagan --nf 16 --batch 32 --precision bf16 --channels-last
    python benchmarks/profile_step.py --config csagan --nf 16 --batch 32 --json /tmp/profile.json

The table is a diagnosis, not a benchmark figure: the profiler adds overhead to every operator.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_step import build_step, parse_args, synthetic_batches


def profile_step(args: argparse.Namespace, top: int) -> dict[str, Any]:
    """Profile ``args.steps`` steps of the optimised setting; returns the ``top`` operators."""
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    step = build_step(args, optimised=True, device=device)
    batches = synthetic_batches(args.warmup + args.steps, args.batch, step.mcfg.image_size, seed=args.seed)
    for b in batches[: args.warmup]:
        step(b)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        for b in batches[args.warmup :]:
            step(b)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    rows = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:top]
    return {
        "config": args.config,
        "nf": step.mcfg.nf,
        "batch": args.batch,
        "precision": args.precision,
        "channels_last": bool(args.channels_last),
        "steps": args.steps,
        "total_self_cpu_ms_per_step": total / 1000 / args.steps,
        "ops": [
            {
                "name": e.key,
                "calls_per_step": e.count / args.steps,
                "self_cpu_ms_per_step": e.self_cpu_time_total / 1000 / args.steps,
                "share": e.self_cpu_time_total / total if total else 0.0,
            }
            for e in rows
        ],
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argparse.ArgumentParser(add_help=False)
    extra.add_argument("--top", type=int, default=25, help="operators to list")
    extra.add_argument("--json", type=Path, default=None, help="also write the table as JSON here")
    known, rest = extra.parse_known_args(argv)
    if known.top < 1:
        raise SystemExit(f"--top must be >= 1, got {known.top}")
    args = parse_args(rest + ["--memory", "off", "--no-reference"])
    result = profile_step(args, known.top)
    print(f"{result['config']} nf {result['nf']} batch {result['batch']} {result['precision']}"
          f"{' channels-last' if result['channels_last'] else ''}: "
          f"{result['total_self_cpu_ms_per_step']:.0f} ms of operator time per step")
    print(f"{'operator':<48} {'calls':>7} {'ms/step':>9} {'share':>7}")
    for op in result["ops"]:
        print(f"{op['name'][:48]:<48} {op['calls_per_step']:>7.0f} {op['self_cpu_ms_per_step']:>9.1f} "
              f"{100 * op['share']:>6.1f}%")
    if known.json is not None:
        known.json.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
