"""Benchmark: how fast a training configuration *learns* — scores against images seen and CPU time.

Trains one run with the real engine (:func:`csagan.train.engine.train`, what ``csagan train`` calls)
and stops at each image count of ``--score-at``: it trains to ``N / batch_size`` steps, scores the
generator, then resumes (the engine's exact ``resume=True`` path) to the next point. Scoring is done
between training calls and is **not** counted in the training time. At each point it records:

* images seen, steps;
* training wall seconds and training CPU seconds (``time.process_time`` of this process, all of its
  threads, plus ``RUSAGE_CHILDREN`` for DataLoader workers), both summed over the training calls only
  (each call includes the engine's set-up, data loading, sample grids and checkpoint writes), and the
  engine's own step time (``wall_time`` of the checkpoint: the steps alone);
* the reproduction study's metrics (:func:`csagan.study.study_metrics` of
  :func:`csagan.evaluate.evaluate_run` with the evaluation settings of :class:`csagan.study.StudyConfig`,
  as ``tools/score_snapshots.py`` scores a generator): domain FID, domain IS, attribute accuracy,
  R-precision, plus the attribute accuracy of the same images against *other* captions (caption ``k`` of
  the test image half the split away, i.e. another species, as ``tests/test_shipped.py`` measures it).

The JSON record (``--out``) also holds the config name, preset and overrides, the resolved model and
train configs, seed, hardware (CPU model and bf16/AMX/AVX flags, cores, torch version, threads: the
helper of ``benchmarks/train_step.py``), timestamps and the load average at each session's start.
It is written atomically after every training segment and every score; rerunning the same command
(same ``--out`` and ``--work``) continues from the last point: a segment that was cut off is retrained
from the checkpoint saved at the last recorded point, so every recorded time is a measured one.

    python benchmarks/learning_speed.py --config csagan --preset toybirds-cpu --data data/toybirds \\
        --score-at 9600,19200,28800,38400,48000 --out runs/ls/csagan64.json --work runs/ls/csagan64
    python benchmarks/learning_speed.py plot runs/ls/*.json --out curve.png

Usage notes and results: benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import resource
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_step import hardware

from csagan.atomic import atomic_write_text
from csagan.plotting import learning_curves
from csagan.study import StudyConfig, other_caption_accuracy, study_metrics

FORMAT = "csagan-learning-speed"
VERSION = 1
#: The reproduction study's evaluation settings (metrics, images, passes, R-precision candidates).
STUDY = StudyConfig()
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DAMSM = ROOT / "csagan" / "assets" / "toybirds-csagan" / "damsm"
SHIPPED_RUN = ROOT / "csagan" / "assets" / "toybirds-csagan"
#: Overrides the tool sets itself (the run's length, its DAMSM and seed come from its own options).
_OWN_KEYS = ("max_steps", "epochs", "damsm_dir", "seed")
#: Load average (1 min) per usable core below which the machine is called idle at a session's start.
IDLE_LOAD_PER_CORE = 0.25


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _cpu_seconds() -> tuple[float, float]:
    """(this process's CPU seconds over all threads, reaped children's CPU seconds)."""
    ch = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time(), ch.ru_utime + ch.ru_stime


def _write(record: dict[str, Any], path: Path) -> None:
    record["updated_utc"] = _now()
    atomic_write_text(path, json.dumps(record, indent=2) + "\n")


def _copy_atomic(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


# ----------------------------------------------------------------------------- configuration


def parse_score_at(text: str) -> list[int]:
    """``"4800,9600"`` -> ``[4800, 9600]`` (positive, strictly increasing)."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"--score-at {text!r}: give image counts separated by commas, e.g. 4800,9600") from None
    if not values or any(v <= 0 for v in values) or any(b <= a for a, b in itertools.pairwise(values)):
        raise ValueError(f"--score-at {text!r}: image counts must be positive and strictly increasing")
    return values


def resolve_run(args: argparse.Namespace) -> tuple[Any, Any, list[int]]:
    """(model config, train config with max_steps = the last point, steps of each score point)."""
    from csagan.settings import parse_override
    from csagan.train.config import resolve

    for item in args.overrides:
        key = parse_override(item)[0].split(".")[-1]
        if key in _OWN_KEYS:
            raise ValueError(f"--set {item}: {key} is set by this tool (use --score-at, --damsm, --seed)")
    base = [f"damsm_dir={args.damsm}", f"seed={args.seed}", "epochs=0"]
    model_cfg, train_cfg = resolve(args.config, args.preset, [*base, *args.overrides, "max_steps=1"])
    batch = train_cfg.batch_size
    bad = [n for n in args.score_at if n % batch]
    if bad:
        raise ValueError(f"--score-at {bad}: every image count must be a multiple of the batch size {batch}")
    steps = [n // batch for n in args.score_at]
    return model_cfg, train_cfg.replace(max_steps=steps[-1]), steps


def eval_settings(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "metrics": list(args.metrics), "images": args.eval_images, "passes": args.passes, "seed": args.eval_seed,
        "rprec_candidates": args.rprec_candidates, "is_splits": args.is_splits,
        "sanity_images": args.sanity_images, "batch_size": args.eval_batch, "evaluator": str(args.evaluator),
    }  # fmt: skip


def _identity(record: dict[str, Any]) -> dict[str, Any]:
    """What must agree for a record to be continued (the length of the run may grow)."""
    train = {k: v for k, v in record["train_config"].items() if k != "max_steps"}
    return {k: record[k] for k in ("config", "preset", "overrides", "seed", "data", "damsm", "eval", "model_config")} | {
        "train_config": train}


# ----------------------------------------------------------------------------- scoring


def score(run_dir: Path, data: Path, ev: dict[str, Any], image_size: int, device: str) -> dict[str, Any]:
    """The study's metrics for the run folder's generator, plus attribute accuracy against other captions."""
    from csagan.evaluate import evaluate_run

    result = evaluate_run(
        run_dir, data, ev["metrics"], passes=ev["passes"], max_images=ev["images"], seed=ev["seed"],
        rprec_candidates=ev["rprec_candidates"], is_splits=ev["is_splits"], sanity_images=ev["sanity_images"],
        batch_size=ev["batch_size"], evaluator=ev["evaluator"], device=device, progress=False,
    )  # fmt: skip
    scores: dict[str, Any] = dict(study_metrics(result.report))
    align = result.report["metrics"].get("align")
    if align is not None:
        scores["attribute_accuracy_other"] = other_caption_accuracy(
            result, data, ev["evaluator"], image_size=image_size, seed=ev["seed"], batch_size=ev["batch_size"])
        bounds = align.get("bounds") or {}
        scores["real_own_ceiling"] = bounds.get("ceiling", {}).get("attribute_accuracy")
        scores["real_shuffled_chance"] = bounds.get("chance", {}).get("attribute_accuracy")
    scores["n_images"] = len(result.plan)
    return scores


# ----------------------------------------------------------------------------- the run


def _checkpoint_step(run_dir: Path) -> int | None:
    from csagan.train.checkpoint import load_checkpoint

    path = run_dir / "checkpoint.pt"
    return int(load_checkpoint(path)["step"]) if path.is_file() else None


def run(args: argparse.Namespace) -> dict[str, Any]:
    from csagan.train.engine import train

    if args.threads:
        torch.set_num_threads(args.threads)
    model_cfg, train_cfg, steps = resolve_run(args)
    work, out = Path(args.work), Path(args.out)
    run_dir, saved = work / "run", work / "scored"
    fresh: dict[str, Any] = {
        "format": FORMAT, "version": VERSION, "config": args.config, "preset": args.preset,
        "overrides": list(args.overrides), "seed": args.seed, "data": str(Path(args.data).resolve()),
        "damsm": str(Path(args.damsm).resolve()), "eval": eval_settings(args), "label": args.label,
        "model_config": model_cfg.to_dict(), "train_config": train_cfg.to_dict(),
        "batch_size": train_cfg.batch_size, "score_at": list(args.score_at), "work": str(work.resolve()),
        "started_utc": _now(), "finished_utc": None, "sessions": [], "points": [],
    }  # fmt: skip
    if out.is_file():
        record = json.loads(out.read_text())
        if record.get("format") != FORMAT:
            raise ValueError(f"{out} is not a {FORMAT} record; choose another --out")
        if _identity(record) != _identity(fresh):
            diff = sorted(k for k, v in _identity(fresh).items() if _identity(record).get(k) != v)
            raise ValueError(f"{out} was made with other settings ({', '.join(diff)}); use a new --out and --work")
        done = [p["steps"] for p in record["points"]]
        missed = [s for s in steps if done and s < done[-1] and s not in done]
        if missed:
            raise ValueError(f"--score-at asks for {[s * train_cfg.batch_size for s in missed]} images, before the "
                             "last recorded point; start a new --out and --work for them")
        record.update(score_at=sorted(set(record["score_at"]) | set(args.score_at)), train_config=train_cfg.to_dict(),
                      finished_utc=None, label=args.label or record.get("label"))
    else:
        if (run_dir / "checkpoint.pt").exists():
            raise FileExistsError(f"{run_dir} holds a run that {out} does not record; choose another --work")
        record = fresh
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    hw = hardware(torch.device("cpu"))
    load = hw["load_average"]
    record["sessions"].append({
        "started_utc": _now(), "hardware": hw, "threads": torch.get_num_threads(),
        "idle_threshold_load1": IDLE_LOAD_PER_CORE * cores,
        "looked_idle": None if load is None else bool(load[0] < IDLE_LOAD_PER_CORE * cores),
        "first_point": len(record["points"]),
    })  # fmt: skip
    session = len(record["sessions"]) - 1
    _write(record, out)

    by_steps = {p["steps"]: p for p in record["points"]}
    for target in steps:
        point = by_steps.get(target)
        if point is None:
            last = record["points"][-1] if record["points"] else None
            last_steps = last["steps"] if last else 0
            if last is None and run_dir.exists():
                shutil.rmtree(run_dir)  # a first segment that was cut off: this tool's own folder, start again
            elif last is not None and _checkpoint_step(run_dir) != last_steps:
                _copy_atomic(saved / f"step_{last_steps:07d}.pt", run_dir / "checkpoint.pt")  # redo the cut segment
            cfg = train_cfg.replace(max_steps=target)
            w0, (c0, k0) = time.perf_counter(), _cpu_seconds()
            train(model_cfg, cfg, args.data, run_dir, resume=last is not None, progress=args.progress)
            wall, (c1, k1) = time.perf_counter() - w0, _cpu_seconds()
            from csagan.train.checkpoint import load_checkpoint

            ckpt = load_checkpoint(run_dir / "checkpoint.pt")
            if int(ckpt["step"]) != target:
                raise RuntimeError(f"training stopped at step {ckpt['step']}, expected {target}")
            prev = last or {"train_wall_s": 0.0, "train_cpu_s": 0.0, "train_cpu_children_s": 0.0}
            point = {
                "images_seen": int(ckpt["images_seen"]), "steps": target, "session": session,
                "segment_wall_s": round(wall, 3), "segment_cpu_s": round((c1 - c0) + (k1 - k0), 3),
                "train_wall_s": round(prev["train_wall_s"] + wall, 3),
                "train_cpu_s": round(prev["train_cpu_s"] + (c1 - c0) + (k1 - k0), 3),
                "train_cpu_children_s": round(prev["train_cpu_children_s"] + (k1 - k0), 3),
                "engine_step_wall_s": round(float(ckpt["wall_time"]), 3),
                "segments": (last["segments"] if last else 0) + 1,
                "load_average_after_training": [round(x, 2) for x in os.getloadavg()],
                "trained_utc": _now(), "scores": None,
            }  # fmt: skip
            del ckpt
            _copy_atomic(run_dir / "checkpoint.pt", saved / f"step_{target:07d}.pt")
            record["points"].append(point)
            by_steps[target] = point
            _write(record, out)
            for old in saved.glob("step_*.pt"):
                if old.name != f"step_{target:07d}.pt":
                    old.unlink()
        if point["scores"] is None:
            w0, c0 = time.perf_counter(), time.process_time()
            point["scores"] = score(run_dir if target == _checkpoint_step(run_dir) else _snapshot(saved, target, run_dir),
                                    Path(args.data), record["eval"], model_cfg.image_size, train_cfg.device)
            point["score_wall_s"] = round(time.perf_counter() - w0, 3)
            point["score_cpu_s"] = round(time.process_time() - c0, 3)
            _write(record, out)
            s = point["scores"]
            print(f"{point['images_seen']} images ({target} steps): train {point['train_wall_s']:.1f} s wall, "
                  f"{point['train_cpu_s']:.1f} s CPU; domain FID {s.get('domain_fid')}, attribute acc. "
                  f"{s.get('attribute_accuracy')} (other captions {s.get('attribute_accuracy_other')})", flush=True)
            if args.plot:
                plot([out], Path(args.plot))
    record["finished_utc"] = _now()
    _write(record, out)
    return record


def _snapshot(saved: Path, target: int, run_dir: Path) -> Path:  # pragma: no cover - defensive
    raise RuntimeError(f"{run_dir}/checkpoint.pt is not at step {target} and its point is unscored; rerun")


# ----------------------------------------------------------------------------- plot


def _shipped_reference() -> list[tuple[int, dict[str, Any]]]:
    """(images seen, metrics) of the shipped run's progress.json, if present."""
    try:
        batch = json.loads((SHIPPED_RUN / "config.json").read_text())["train"]["batch_size"]
        rows = json.loads((SHIPPED_RUN / "progress.json").read_text())
    except (OSError, KeyError, ValueError):
        return []
    return [(int(r["step"]) * int(batch), r["metrics"]) for r in rows]


def plot(records: Sequence[Path], out: Path, reference: bool = True) -> Path:
    """Domain FID and attribute accuracy (own / other captions) against images, training wall and CPU minutes
    (:func:`csagan.plotting.learning_curves`)."""
    recs = [json.loads(Path(path).read_text()) for path in records]
    labels = [rec.get("label") or " ".join([rec["config"], rec["preset"] or "", *rec["overrides"]]).strip()
              for rec in recs]  # fmt: skip
    fig = learning_curves(recs, labels, x_axes=("images_seen", "train_wall_s", "train_cpu_s"),
                          reference=_shipped_reference() if reference else ())
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    return out


# ----------------------------------------------------------------------------- command line


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="csagan", help="model config (csagan, dfgan, ...)")
    p.add_argument("--preset", default="toybirds-cpu", help="train preset (toybirds-cpu, smoke, ...)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="config override as for `csagan train --set` (e.g. image_size=32, nf=8, lr_g=1e-4)")
    p.add_argument("--data", type=Path, default=ROOT / "data" / "toybirds", help="ToyBirds root")
    p.add_argument("--damsm", type=Path, default=DEFAULT_DAMSM, help="pretrained DAMSM folder")
    p.add_argument("--evaluator", type=Path, default=ROOT / "csagan" / "assets" / "evaluator_toybirds.pt")
    p.add_argument("--score-at", type=parse_score_at, required=True, metavar="N1,N2,...",
                   help="image counts at which to score (multiples of the batch size)")
    p.add_argument("--seed", type=int, default=0, help="training seed")
    p.add_argument("--out", type=Path, required=True, help="JSON record (continued when it exists)")
    p.add_argument("--work", type=Path, required=True, help="folder for the run and its scored checkpoint")
    p.add_argument("--label", default=None, help="name of this record in plots")
    p.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    p.add_argument("--plot", default=None, metavar="PNG", help="redraw the learning curve after every point")
    p.add_argument("--progress", action="store_true", help="the engine's progress bar")
    g = p.add_argument_group("evaluation (defaults: the reproduction study's settings, csagan.study.StudyConfig)")
    g.add_argument("--eval-images", type=int, default=STUDY.eval_images, help="generated images scored per point")
    g.add_argument("--metrics", type=lambda s: tuple(s.split(",")), default=STUDY.metrics)
    g.add_argument("--passes", type=int, default=STUDY.passes)
    g.add_argument("--rprec-candidates", type=int, default=STUDY.rprec_candidates)
    g.add_argument("--is-splits", type=int, default=10)
    g.add_argument("--sanity-images", type=int, default=1000, help="real images of the alignment's sanity bounds")
    g.add_argument("--eval-batch", type=int, default=50)
    g.add_argument("--eval-seed", type=int, default=0, help="seed of captions and noise (progress.json: 0)")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any] | Path:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["plot"]:
        p = argparse.ArgumentParser(prog="learning_speed.py plot", description="draw learning curves")
        p.add_argument("records", nargs="+", type=Path, help="JSON records of learning_speed.py")
        p.add_argument("--out", type=Path, required=True, help="PNG file")
        p.add_argument("--no-reference", action="store_true", help="leave out the shipped run's progress.json")
        a = p.parse_args(argv[1:])
        return plot(a.records, a.out, reference=not a.no_reference)
    return run(parse_args(argv))


if __name__ == "__main__":
    main()
