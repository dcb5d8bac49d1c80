"""Several runs of a study at once: ``csagan study run --jobs N``.

On a small CPU one process with every core is not the fastest way through a study: the study's
networks are small, and two processes with one thread each train more images per second in total
than one process with two threads (``benchmarks/README.md``, "Runs side by side"). :func:`run_parallel`
starts each pending (variant, seed) as its own process, ``python -m csagan study worker``, with
``threads`` torch threads (default: the cores divided by ``jobs``), at most ``jobs`` at a time, in
the study's seed-major order. A run whose inputs come from another run (``ssagan-fixed-mask`` copies
the masks of ``csagan`` of the same seed) starts only once that run's result file exists.

Everything else is the sequential study's: each worker calls :func:`csagan.study.runner.run_one`,
so results, resumption and the per-run folder lock are the same, and a killed parallel study
continues with the same command. Each worker writes its output to ``<runs>/logs/<variant>_seed<N>.log``.
Every process of a parallel study has ``csagan study`` in its command line: pause them all with
``pkill -STOP -f "csagan study"`` and resume with ``pkill -CONT -f "csagan study"``. Stopping the
study (Ctrl-C, or ``kill`` of the ``csagan study run`` process) stops its runs as well; each resumes
from its last checkpoint when the command is run again.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from csagan.study.config import StudyConfig, StudyPaths
from csagan.study.runner import finished, pending, result_path, run_one

__all__ = ["LOG_DIR", "run_parallel", "run_worker", "worker_command"]

#: Folder (inside the study's runs folder) of the workers' output.
LOG_DIR = "logs"

Task = tuple[str, int]


class _Stopped(KeyboardInterrupt):
    """SIGTERM received by a parallel study (handled like Ctrl-C: the runs are stopped too)."""


def _needs(task: Task) -> Task | None:
    variant, seed = task
    return ("csagan", seed) if variant == "ssagan-fixed-mask" else None


def worker_command(config: StudyConfig, paths: StudyPaths, task: Task, threads: int) -> list[str]:
    """The command line that runs one (variant, seed) of the study (``python -m csagan study worker``)."""
    spec = {"config": config.to_dict(), "paths": dataclasses.asdict(paths), "variant": task[0], "seed": task[1],
            "threads": threads}  # fmt: skip
    return [sys.executable, "-m", "csagan", "study", "worker", "--spec", json.dumps(spec)]


def run_worker(spec_text: str) -> Path:
    """What ``csagan study worker --spec JSON`` does: set the torch threads and run one (variant, seed)
    with :func:`csagan.study.runner.run_one` (no progress bars: the output goes to a log file).

    Raises:
        ValueError: the spec is not a worker spec of :func:`worker_command`.
    """
    try:
        spec = json.loads(spec_text)
        config, paths = StudyConfig.from_dict(spec["config"]), StudyPaths(**spec["paths"])
        variant, seed, threads = str(spec["variant"]), int(spec["seed"]), int(spec["threads"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"csagan study worker: --spec is not a worker spec ({exc}); the worker is started by "
                         "`csagan study run --jobs N`, not by hand.") from None  # fmt: skip
    torch.set_num_threads(threads)
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {variant} seed {seed}: training with {threads} thread(s)", flush=True)
    out = run_one(config, paths, variant, seed, progress=False)
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {variant} seed {seed}: done, {out}", flush=True)
    return out


def run_parallel(
    config: StudyConfig,
    paths: StudyPaths,
    jobs: int,
    threads: int | None = None,
    *,
    command: Callable[[Task], Sequence[str]] | None = None,
    poll_seconds: float = 2.0,
    verbose: bool = True,
) -> list[Path]:
    """Run every pending (variant, seed) of ``config``, ``jobs`` processes at a time; returns the result
    files of the whole selection (finished before or now), in seed-major order.

    ``threads``: torch threads per process (default ``max(1, cores // jobs)``); ``command``: the command
    of one task (default :func:`worker_command`; tests pass a stand-in); ``verbose``: print a line as each
    run starts and ends.

    Raises:
        ValueError: ``jobs`` or ``threads`` below 1.
        RuntimeError: a worker failed (the message names its log file); the running ones are let
            finish first, and the study resumes with the same command once the cause is fixed.
    """
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}.")
    cores = os.cpu_count() or 1
    threads = max(1, cores // jobs) if threads is None else threads
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}.")
    make = command or (lambda task: worker_command(config, paths, task, threads))
    say = print if verbose else (lambda *a, **k: None)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    log_dir = Path(paths.runs_dir) / LOG_DIR
    log_dir.mkdir(parents=True, exist_ok=True)
    todo = pending(config, paths)
    active: dict[Task, tuple[subprocess.Popen[bytes], Path]] = {}
    failed: list[tuple[Task, int, Path]] = []

    def ready(task: Task) -> bool:  # the run it needs (if any) is neither waiting nor running, and finished
        need = _needs(task)
        return need is None or (need not in todo and need not in active and finished(config, paths, *need))

    def stop(signum: int, frame: object) -> None:
        raise _Stopped(signum)

    previous = signal.signal(signal.SIGTERM, stop) if threading.current_thread() is threading.main_thread() else None
    try:
        while todo or active:
            if not failed:
                for task in [t for t in todo if ready(t)]:
                    if len(active) >= jobs:
                        break
                    log = log_dir / f"{task[0]}_seed{task[1]}.log"
                    with log.open("ab") as fh:
                        proc = subprocess.Popen(list(make(task)), stdout=fh, stderr=subprocess.STDOUT, env=env)
                    active[task] = (proc, log)
                    todo.remove(task)
                    say(f"{time.strftime('%H:%M:%S')} started {task[0]} seed {task[1]} (log: {log})", flush=True)
            if not active:
                if failed:
                    break
                blocked = ", ".join(f"{v} seed {s} (needs {_needs((v, s))})" for v, s in todo)
                raise RuntimeError(f"cannot start {blocked}: the run it needs has no result; run it first.")
            time.sleep(poll_seconds)
            for task, (proc, log) in list(active.items()):
                code = proc.poll()
                if code is None:
                    continue
                del active[task]
                if code != 0:
                    failed.append((task, code, log))
                say(f"{time.strftime('%H:%M:%S')} {task[0]} seed {task[1]} "
                    f"{'finished' if code == 0 else f'FAILED (exit {code}; see {log})'}", flush=True)
    except (KeyboardInterrupt, _Stopped):
        # Stopped (Ctrl-C, or `kill` of this process): stop the runs too. SIGTERM, not SIGINT, because a
        # process started in the background by a non-interactive shell ignores SIGINT; every run resumes
        # from its last checkpoint or scored budget.
        for proc, _ in active.values():
            if proc.poll() is None:
                proc.terminate()
        for proc, _ in active.values():
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
        raise
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    if failed:
        lines = "; ".join(f"{v} seed {s} exited with {code} (see {log})" for (v, s), code, log in failed)
        raise RuntimeError(f"csagan study run --jobs {jobs}: {lines}. Fix the cause and rerun the same command: "
                           "finished runs are skipped and the others resume.")  # fmt: skip
    return [result_path(paths.results_dir, v, s) for s in config.seeds for v in config.variants]
