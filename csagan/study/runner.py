"""Running a study: train every (variant, seed) of a :class:`~csagan.study.config.StudyConfig`, score
it at each of its budgets, and write one result file per run.

:func:`run` is resumable at every level. A finished result file with the same protocol is skipped; a
run folder with a checkpoint continues (:func:`csagan.train.engine.train` with ``resume=True``, which
loses at most the last checkpoint interval); a run is trained in segments that end at each scored
step, and every scored point is written to ``<run>/study_points.json`` at once, so a killed study
continues with the same call and redoes neither a segment nor a score that was finished. At each
scored step an fp16 copy of the generator is kept in ``<run>/snapshots/step<NNNNNN>`` (what the
chapters draw from at each budget).

Times: ``train_seconds`` is the wall time of the training segments and ``train_cpu_seconds`` their CPU
time (all threads of this process; a paused process, ``kill -STOP``, does not accumulate it), both
as measured by the calls that finished a segment: a call killed mid-segment is not counted, and its
steps up to the last checkpoint are not redone. ``engine_seconds`` is the engine's own wall time of
all steps (kept in the checkpoint, so it spans kills), without set-up, sample grids and checkpoints.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from csagan.atomic import atomic_write_text
from csagan.devices import hardware_record
from csagan.study.config import StudyConfig, StudyPaths, protocol_of
from csagan.study.scoring import score_run
from csagan.train.checkpoint import load_checkpoint
from csagan.train.config import resolve, run_config_json
from csagan.train.engine import train
from csagan.train.run import export_run

__all__ = ["POINTS_FILE", "REPORT_FILE", "finished", "mask_source_dir", "pending", "result_path", "retrained_for_masks",
           "run", "run_dir", "run_folder_finished", "run_one", "run_settings", "snapshot_dir"]

#: The per-run progress file: every scored point, written as soon as it is scored.
POINTS_FILE = "study_points.json"
#: The evaluation report of the run's last point (the result file's ``report``).
REPORT_FILE = "study_report.json"


def result_path(results_dir: str | Path, variant: str, seed: int) -> Path:
    """Where the result of (variant, seed) is written."""
    return Path(results_dir) / f"{variant}_seed{seed}.json"


def run_dir(runs_dir: str | Path, variant: str, seed: int) -> Path:
    """The run folder of (variant, seed) under a study's ``runs_dir``."""
    return Path(runs_dir) / variant / f"seed{seed}"


def snapshot_dir(run_dir: str | Path, step: int) -> Path:
    """Where the fp16 copy of a run's generator at ``step`` is kept."""
    return Path(run_dir) / "snapshots" / f"step{step:06d}"


def run_settings(config: StudyConfig, paths: StudyPaths) -> dict[str, Any]:
    """What a result file records as ``settings``: the study's fields and its paths."""
    return {**config.to_dict(), **{k: v for k, v in vars(paths).items()}}


def _load_points(run_dir: Path, protocol: dict[str, Any]) -> list[dict[str, Any]]:
    path = run_dir / POINTS_FILE
    if not path.is_file():
        return []
    state = json.loads(path.read_text())
    if state.get("protocol") != protocol:
        raise ValueError(
            f"{run_dir} holds a study run made with other settings (see its {POINTS_FILE}); point --runs at "
            "another folder, or delete this run folder to retrain it."
        )
    return list(state["points"])


def _save_points(run_dir: Path, protocol: dict[str, Any], points: list[dict[str, Any]]) -> None:
    atomic_write_text(run_dir / POINTS_FILE, json.dumps({"protocol": protocol, "points": points}, indent=2) + "\n")


def _checkpoint_step(run_dir: Path) -> int:
    path = run_dir / "checkpoint.pt"
    return int(load_checkpoint(path)["step"]) if path.is_file() else 0


def run_one(config: StudyConfig, paths: StudyPaths, variant: str, seed: int, *, progress: bool = True) -> Path:
    """Train, snapshot and score one (variant, seed) and write its result file (module docstring)."""
    folder = run_dir(paths.runs_dir, variant, seed)
    overrides = [f"damsm_dir={paths.damsm_dir}", f"seed={seed}", f"max_steps={config.max_steps}",
                 f"batch_size={config.batch_size}", "epochs=0", *config.overrides]  # fmt: skip
    if variant == "ssagan-fixed-mask":
        overrides.append(f"mask_source={mask_source_dir(paths, seed)}")
    model_cfg, train_cfg = resolve(variant, config.train_preset, overrides)
    protocol = protocol_of(run_settings(config, paths))
    points = _load_points(folder, protocol)
    done = {int(p["steps"]) for p in points}
    for target in config.score_steps:
        if target in done:
            continue
        at = _checkpoint_step(folder)
        if at > target:
            raise RuntimeError(
                f"{folder}: its checkpoint is at step {at}, past the unscored point at step {target} "
                f"({POINTS_FILE} was lost or edited); delete the run folder to retrain it."
            )
        hardware = hardware_record(train_cfg.device)  # with the load average as the segment starts
        wall0, cpu0 = time.perf_counter(), time.process_time()
        train(model_cfg, train_cfg.replace(max_steps=target), paths.data_dir, folder,
              resume=(folder / "checkpoint.pt").is_file(), progress=progress)  # fmt: skip
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        engine_seconds = float(load_checkpoint(folder / "checkpoint.pt")["wall_time"])
        snap = snapshot_dir(folder, target)
        if snap.exists():
            shutil.rmtree(snap)  # a copy cut off by a kill: make it again
        export_run(folder, snap, half=True)
        eval0 = time.perf_counter()
        metrics, report = score_run(folder, paths.data_dir, config, seed=seed, evaluator=paths.evaluator,
                                    device=train_cfg.device, progress=progress)  # fmt: skip
        if target == config.max_steps:
            atomic_write_text(folder / REPORT_FILE, json.dumps(report, indent=2, default=str) + "\n")
        prev = points[-1] if points else {"train_seconds": 0.0, "train_cpu_seconds": 0.0}
        points.append({
            "steps": target, "images_seen": target * config.batch_size,
            "train_seconds": round(prev["train_seconds"] + wall, 1),
            "train_cpu_seconds": round(prev["train_cpu_seconds"] + cpu, 1),
            "engine_seconds": round(engine_seconds, 1),
            "eval_seconds": round(time.perf_counter() - eval0, 1), "hardware": hardware, "metrics": metrics,
        })  # fmt: skip
        _save_points(folder, protocol, points)
    last = points[-1]
    record = {
        "variant": variant,
        "seed": seed,
        "settings": run_settings(config, paths),
        "config": json.loads(run_config_json(model_cfg, train_cfg)),
        "images_seen": config.images_per_run,
        "train_seconds": last["train_seconds"],
        "train_cpu_seconds": last["train_cpu_seconds"],
        "eval_seconds": last["eval_seconds"],
        "hardware": last["hardware"],
        "metrics": last["metrics"],
        "points": points,
        "report": json.loads((folder / REPORT_FILE).read_text()),
    }
    out = result_path(paths.results_dir, variant, seed)
    atomic_write_text(out, json.dumps(record, indent=2, default=str) + "\n")
    return out


def finished(config: StudyConfig, paths: StudyPaths, variant: str, seed: int) -> bool:
    """Whether (variant, seed) has a result file of this study's protocol (:func:`protocol_of`; the
    selection of variants and seeds and the preset's name may differ)."""
    out = result_path(paths.results_dir, variant, seed)
    if not out.is_file():
        return False
    return protocol_of(json.loads(out.read_text()).get("settings", {})) == protocol_of(run_settings(config, paths))


def mask_source_dir(paths: StudyPaths, seed: int) -> Path:
    """The ``csagan`` run folder whose mask predictors ``ssagan-fixed-mask`` of ``seed`` copies."""
    return run_dir(paths.runs_dir, "csagan", seed)


def run_folder_finished(config: StudyConfig, paths: StudyPaths, variant: str, seed: int) -> bool:
    """Whether the run folder of (variant, seed) holds a finished run of this study's protocol: its
    ``study_points.json`` has the last scored point (a folder cut short, or made with other settings,
    does not count)."""
    path = run_dir(paths.runs_dir, variant, seed) / POINTS_FILE
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    if state.get("protocol") != protocol_of(run_settings(config, paths)):
        return False
    return any(int(p.get("steps", -1)) == config.max_steps for p in state.get("points", []))


def retrained_for_masks(config: StudyConfig, paths: StudyPaths) -> list[int]:
    """The seeds whose ``csagan`` run is trained again although its result file is finished: the
    ``ssagan-fixed-mask`` run of the seed is pending and copies its mask predictors from the ``csagan``
    run folder (:func:`mask_source_dir`), which holds no finished run (:func:`run_folder_finished`), e.g.
    in a clone that has ``book/results`` but not the ``runs/`` folder. Retraining it with the same
    protocol rewrites its result file, so that the masks the fixed-mask run copies are those of the
    ``csagan`` result it is compared with."""
    if "ssagan-fixed-mask" not in config.variants:
        return []
    return [s for s in config.seeds
            if finished(config, paths, "csagan", s) and not finished(config, paths, "ssagan-fixed-mask", s)
            and not run_folder_finished(config, paths, "csagan", s)]  # fmt: skip


def pending(config: StudyConfig, paths: StudyPaths) -> list[tuple[str, int]]:
    """The (variant, seed) pairs to train: those without a result of this protocol, and ``csagan`` of each
    seed of :func:`retrained_for_masks`; seed-major, and within a seed ``csagan`` first (the fixed-mask
    run of the seed needs it)."""
    again = set(retrained_for_masks(config, paths))
    todo = [(v, s) for s in config.seeds for v in config.variants
            if not finished(config, paths, v, s) or (v == "csagan" and s in again)]  # fmt: skip
    order = {s: i for i, s in enumerate(config.seeds)}
    return sorted(todo, key=lambda t: (order[t[1]], t[0] != "csagan"))


def run(config: StudyConfig, paths: StudyPaths, *, progress: bool = True) -> list[Path]:
    """Train and score every (variant, seed) of ``config``, seed by seed; returns the result files.

    A (variant, seed) that is :func:`finished` is skipped (but see :func:`retrained_for_masks`). Several
    runs at once: :func:`csagan.study.parallel.run_parallel`.
    """
    for variant, seed in pending(config, paths):  # seed-major: a study cut short has all variants of its first seeds
        run_one(config, paths, variant, seed, progress=progress)
    return [result_path(paths.results_dir, v, s) for s in config.seeds for v in config.variants]
