"""Benchmark: one full training step (D step with MA-GP, G step with DAMSM and KL), optimised vs reference.

The step is the engine's own :class:`csagan.train.step.TrainStep` (the code ``csagan train`` runs):
Eq. (24)'s hinge terms + λ1·MA-GP (Eqs. 22-23) for D, then Eq. (25)'s adversarial term + λ3·DAMSM
(Eq. 12) + λ2·KL (Eq. 16) for G, with the optimiser updates. Inputs are synthetic (random images
in [−1, 1], random caption indices and lengths, random class ids) and the frozen DAMSM encoders
(:class:`csagan.text.RNNEncoder`, :class:`csagan.damsm_encoders.SmallCNNEncoder`) are randomly initialised,
so no dataset and no pretrained weights are needed. Random weights time the networks faithfully.

In one run the script builds two trainers from the same seed:

* the **reference**: the same model configuration with every switch off (fp32, contiguous memory,
  no ``torch.compile``), and
* the **optimised** setting asked for (``--precision``, ``--channels-last``, ``--compile``),

runs ``--warmup`` untimed steps of each, then times ``--steps`` steps of each *interleaved*
(reference, optimised, reference, ...) so that a busy machine slows both alike, and reports
images/s (median step time) and the ratio optimised / reference. Peak memory: on CUDA the peak
allocated memory of one step; on the CPU the growth of the peak resident set size over one
warm-up and one timed step, measured for each setting in a fresh child process
(``--memory off`` skips it). A JSON record (hardware, versions, threads, load average,
configuration, figures) is printed and, with ``--out``, written to a file.

    python benchmarks/train_step.py --config dfgan --nf 32 --batch 32 --channels-last --out /tmp/ts.json
    python benchmarks/train_step.py --config csagan --size paper --batch 40 --device cuda --compile

Goals and measured figures: benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from csagan.config import SIZES, get_model_config, list_configs
from csagan.damsm_encoders import SmallCNNEncoder
from csagan.data.datasets import TextImageBatch
from csagan.devices import hardware_record, resolve_device
from csagan.models import Discriminator, Generator
from csagan.text import RNNEncoder, freeze
from csagan.train.config import TrainConfig
from csagan.train.step import TrainStep

#: Vocabulary size and caption length of the synthetic captions (CUB-like: ~5k words, 18 tokens).
N_WORDS = 5000
WORDS_NUM = 18
#: How many distinct synthetic batches the timed steps cycle through.
N_BATCHES = 2


# ----------------------------------------------------------------------------- environment




def hardware(device: torch.device) -> dict[str, Any]:
    """CPU model, flags and cores, torch version and threads, load average, the GPU's name on CUDA."""
    return hardware_record(device)


# ----------------------------------------------------------------------------- setup


def synthetic_batches(
    n: int, batch: int, image_size: int, *, n_words: int = N_WORDS, words_num: int = WORDS_NUM, seed: int = 0
) -> list[TextImageBatch]:
    """``n`` random batches: images U[−1, 1], captions of 5..words_num random word ids padded with 0."""
    gen = torch.Generator().manual_seed(seed)
    out: list[TextImageBatch] = []
    for _ in range(n):
        images = torch.rand(batch, 3, image_size, image_size, generator=gen) * 2 - 1
        lens = torch.randint(min(5, words_num), words_num + 1, (batch,), generator=gen)
        captions = torch.randint(1, n_words, (batch, words_num), generator=gen)
        captions[torch.arange(words_num)[None, :] >= lens[:, None]] = 0
        class_ids = torch.randint(0, 200, (batch,), generator=gen)
        idx = torch.arange(batch)
        out.append(TextImageBatch(images, captions, lens, class_ids, torch.zeros_like(idx), idx,
                                  [f"synthetic_{i}" for i in range(batch)]))
    return out


def build_step(args: argparse.Namespace, *, optimised: bool, device: torch.device) -> TrainStep:
    """A :class:`TrainStep` for ``args``' configuration; ``optimised=False`` gives the reference."""
    overrides: dict[str, Any] = {}
    if args.image_size is not None:
        overrides["image_size"] = args.image_size
    if args.nf is not None:
        overrides["nf"] = args.nf
        overrides["d_nf"] = args.nf
    mcfg = get_model_config(args.config, args.size, **overrides)
    tcfg = TrainConfig(
        batch_size=args.batch,
        max_steps=1,
        device=str(device),
        precision=args.precision if optimised else "fp32",
        channels_last=bool(args.channels_last) if optimised else False,
        compile=bool(args.compile) if optimised else False,
        image_size=mcfg.image_size,
        seed=args.seed,
    )
    with torch.random.fork_rng(devices=[]):  # both settings start from the same weights
        torch.manual_seed(args.seed)
        g, d = Generator(mcfg), Discriminator(mcfg)
        text_encoder = freeze(RNNEncoder(N_WORDS, hidden=mcfg.text_dim, words_num=WORDS_NUM)).to(device)
        image_encoder = freeze(SmallCNNEncoder(image_size=mcfg.image_size, ndf=32, emb_dim=mcfg.text_dim)).to(device)
    return TrainStep(mcfg, tcfg, g, d, text_encoder, image_encoder, device,
                     gen=torch.Generator(device=device).manual_seed(args.seed))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed_step(step: TrainStep, batch: TextImageBatch, device: torch.device) -> float:
    _sync(device)
    t0 = time.perf_counter()
    step(batch)
    _sync(device)
    return time.perf_counter() - t0


def _rss_bytes() -> int:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):  # pragma: no cover - not on Linux
        return 0


def _peak_rss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) * (1 if sys.platform == "darwin" else 1024)


def memory_probe(args: argparse.Namespace, optimised: bool) -> dict[str, Any]:
    """In this (fresh) process: build one setting, run one warm-up and one step, report memory."""
    device = resolve_device(args.device)
    step = build_step(args, optimised=optimised, device=device)
    batch = synthetic_batches(1, args.batch, step.mcfg.image_size, seed=args.seed)[0]
    if device.type == "cuda":
        step(batch)
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        step(batch)
        torch.cuda.synchronize(device)
        peak = torch.cuda.max_memory_allocated(device)
        return {"kind": "cuda_max_allocated", "peak_mib": peak / 2**20, "step_mib": (peak - base) / 2**20}
    base = _rss_bytes()
    step(batch)
    step(batch)
    peak = _peak_rss_bytes()
    return {"kind": "cpu_peak_rss", "peak_mib": peak / 2**20, "step_mib": max(peak - base, 0) / 2**20}


def _probe_in_child(argv: list[str], optimised: bool) -> dict[str, Any] | None:
    cmd = [sys.executable, str(Path(__file__).resolve()), *argv, "--memory-probe", "opt" if optimised else "ref"]
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        print(f"memory probe failed ({'optimised' if optimised else 'reference'}):\n{proc.stderr[-2000:]}",
              file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- main


def _summary(times: list[float], batch: int) -> dict[str, Any]:
    med = statistics.median(times)
    return {
        "step_s": [round(t, 4) for t in times],
        "median_step_s": round(med, 4),
        "images_per_s": round(batch / med, 3),
        "images_per_s_mean_time": round(batch / statistics.fmean(times), 3),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="dfgan", choices=list_configs(), help="model config name")
    parser.add_argument("--size", default="cpu", choices=list(SIZES), help="model size preset")
    parser.add_argument("--image-size", type=int, default=None, help="override the preset's image size")
    parser.add_argument("--nf", type=int, default=None, help="override G and D width (nf = d_nf)")
    parser.add_argument("--batch", type=int, default=32, help="images per step")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per setting")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps per setting first")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"))
    parser.add_argument("--channels-last", action="store_true", help="NHWC memory format")
    parser.add_argument("--compile", action="store_true", help="torch.compile the generator")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--no-reference", action="store_true", help="time the optimised setting only")
    parser.add_argument("--memory", default="on", choices=("on", "off"), help="measure peak memory (child processes)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="write the JSON record here")
    parser.add_argument("--memory-probe", choices=("ref", "opt"), default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for name in ("batch", "steps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    if args.warmup < 0:
        parser.error(f"--warmup must be >= 0, got {args.warmup}")
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}")
    if args.precision == "fp16" and not str(args.device).startswith(("cuda", "auto")):
        parser.error("--precision fp16 needs a CUDA device (--device cuda); use bf16 or fp32 on the CPU")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    raw = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(raw)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.memory_probe is not None:
        result = memory_probe(args, optimised=args.memory_probe == "opt")
        print(json.dumps(result))
        return result

    device = resolve_device(args.device)
    started = dt.datetime.now(dt.UTC)
    hw = hardware(device)
    settings = {"optimised": True} if args.no_reference else {"reference": False, "optimised": True}
    steps = {name: build_step(args, optimised=opt, device=device) for name, opt in settings.items()}
    mcfg = steps["optimised"].mcfg
    batches = [b.to(device) for b in synthetic_batches(N_BATCHES, args.batch, mcfg.image_size, seed=args.seed)]

    warmup_s: dict[str, float] = {}
    for name, step in steps.items():
        t0 = time.perf_counter()
        for i in range(args.warmup):
            _timed_step(step, batches[i % N_BATCHES], device)
        warmup_s[name] = round(time.perf_counter() - t0, 3)
    times: dict[str, list[float]] = {name: [] for name in steps}
    for i in range(args.steps):  # interleaved: a load change hits both settings alike
        for name, step in steps.items():
            times[name].append(_timed_step(step, batches[i % N_BATCHES], device))

    results = {name: {**_summary(t, args.batch), "warmup_s": warmup_s[name]} for name, t in times.items()}
    if args.memory == "on":
        probe_argv = [a for a in raw if a != "--no-reference"]
        for name, opt in settings.items():
            results[name]["memory"] = _probe_in_child(probe_argv, opt)
    record: dict[str, Any] = {
        "benchmark": "train_step",
        "date_utc": started.strftime("%Y-%m-%d %H:%M"),
        "hardware": hw,
        "load_average_end": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "config": {
            "name": args.config,
            "size": args.size,
            "image_size": mcfg.image_size,
            "nf": mcfg.nf,
            "d_nf": mcfg.d_nf,
            "batch": args.batch,
            "steps": args.steps,
            "warmup": args.warmup,
            "seed": args.seed,
            "model": mcfg.to_dict(),
        },
        "optimised_setting": {"precision": args.precision, "channels_last": bool(args.channels_last),
                              "compile": bool(args.compile), "threads": torch.get_num_threads()},
        "reference_setting": None if args.no_reference else {
            "precision": "fp32", "channels_last": False, "compile": False, "threads": torch.get_num_threads()},
        "results": results,
        "ratio": None if args.no_reference else round(
            results["optimised"]["images_per_s"] / results["reference"]["images_per_s"], 3),
    }
    return emit_record(record, args.out)


def emit_record(record: dict[str, Any], out: Path | None) -> dict[str, Any]:
    """Print a benchmark's JSON record and, with ``out``, write it there too; returns the record."""
    text = json.dumps(record, indent=2)
    print(text)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")
    return record


if __name__ == "__main__":
    main()
