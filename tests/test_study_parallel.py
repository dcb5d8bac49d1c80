"""csagan.study.parallel: several runs of a study at once (``csagan study run --jobs N``)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from csagan.cli import main
from csagan.study import (
    POINTS_FILE,
    StudyPaths,
    mask_source_dir,
    pending,
    protocol_of,
    retrained_for_masks,
    run_one,
    study_config,
)
from csagan.study.parallel import LOG_DIR, run_parallel, run_worker, worker_command
from csagan.study.runner import run_settings

# A stand-in for one run: notes when it starts and ends (with its thread setting), then writes a result
# file with the study's settings, or fails for dfgan.
_STANDIN = """
import json, os, sys, time
variant, seed, results, settings, trace = sys.argv[1:6]
with open(trace, "a") as f:
    f.write(f"start {variant} {seed} {time.time()} {os.environ['OMP_NUM_THREADS']}\\n")
deadline = time.time() + 3  # wait (a little) for a second run to be going at the same time
while time.time() < deadline:
    lines = open(trace).read().splitlines()
    if sum(x.startswith("start") for x in lines) - sum(x.startswith("end") for x in lines) >= 2:
        with open(trace, "a") as f:
            f.write(f"partner {variant} {seed} {time.time()} -\\n")
        break
    time.sleep(0.05)
if variant == "dfgan":
    sys.exit("dfgan failed on purpose")
with open(os.path.join(results, f"{variant}_seed{seed}.json"), "w") as f:
    json.dump({"settings": json.loads(settings)}, f)
with open(trace, "a") as f:
    f.write(f"end {variant} {seed} {time.time()} -\\n")
"""


def _paths(tmp_path: Path) -> StudyPaths:
    (tmp_path / "results").mkdir()
    return StudyPaths(data_dir="data", damsm_dir="damsm", runs_dir=str(tmp_path / "runs"),
                      results_dir=str(tmp_path / "results"))  # fmt: skip


def _trace(path: Path) -> tuple[dict, dict, list[str], list[tuple[str, int]]]:
    start, end, threads = {}, {}, []
    partners: list[tuple[str, int]] = []
    for line in path.read_text().splitlines():
        kind, variant, seed, t, n = line.split()
        if kind == "partner":
            partners.append((variant, int(seed)))
            continue
        (start if kind == "start" else end)[(variant, int(seed))] = float(t)
        if kind == "start":
            threads.append(n)
    return start, end, threads, partners


def test_parallel_study_keeps_the_job_limit_the_mask_dependency_and_skips_finished_runs(tmp_path: Path) -> None:
    config = study_config("smoke", ["variants=csagan,ssagan-fixed-mask,ssagan", "seeds=0,1"])
    paths = _paths(tmp_path)
    settings = json.dumps(run_settings(config, paths))
    Path(paths.results_dir, "ssagan_seed1.json").write_text(json.dumps({"settings": run_settings(config, paths)}))
    assert ("ssagan", 1) not in pending(config, paths) and len(pending(config, paths)) == 5
    trace = tmp_path / "trace.txt"

    def standin(task: tuple[str, int]) -> list[str]:
        return [sys.executable, "-c", _STANDIN, task[0], str(task[1]), paths.results_dir, settings, str(trace)]

    files = run_parallel(config, paths, jobs=2, threads=1, command=standin, poll_seconds=0.05)
    assert [f.name for f in files] == ["csagan_seed0.json", "ssagan-fixed-mask_seed0.json", "ssagan_seed0.json",
                                       "csagan_seed1.json", "ssagan-fixed-mask_seed1.json", "ssagan_seed1.json"]
    assert all(f.is_file() for f in files) and pending(config, paths) == []
    start, end, threads, partners = _trace(trace)
    assert set(start) == {("csagan", 0), ("ssagan-fixed-mask", 0), ("ssagan", 0), ("csagan", 1),
                          ("ssagan-fixed-mask", 1)}  # the finished ssagan seed 1 is not redone
    assert threads == ["1"] * 5
    for seed in (0, 1):  # the fixed-mask run starts once csagan of its seed has its result
        assert start[("ssagan-fixed-mask", seed)] >= end[("csagan", seed)]
    events = sorted([(t, +1) for t in start.values()] + [(t, -1) for t in end.values()])
    running = [sum(d for _, d in events[: i + 1]) for i in range(len(events))]
    assert max(running) <= 2  # never more than two at a time
    assert partners  # and two did run at the same time
    assert (Path(paths.runs_dir) / LOG_DIR / "csagan_seed0.log").is_file()


def test_a_finished_csagan_without_its_run_folder_is_retrained_before_the_fixed_mask_run(tmp_path: Path) -> None:
    """A clone has book/results but not runs/: ssagan-fixed-mask copies the masks of csagan's finished run folder, so
    csagan of its seed is pending again (first), and the fixed-mask run waits for that retraining, not for the old
    result file."""
    config = study_config("smoke", ["variants=ssagan-fixed-mask,csagan", "seeds=0,1"])
    paths = _paths(tmp_path)
    settings = json.dumps(run_settings(config, paths))
    for seed in (0, 1):
        Path(paths.results_dir, f"csagan_seed{seed}.json").write_text(json.dumps({"settings": json.loads(settings)}))
    protocol = protocol_of(run_settings(config, paths))
    for seed, last in ((0, config.max_steps), (1, config.max_steps - 1)):  # seed 1's run folder was cut short
        mask_source_dir(paths, seed).mkdir(parents=True)
        (mask_source_dir(paths, seed) / POINTS_FILE).write_text(json.dumps({"protocol": protocol,
                                                                            "points": [{"steps": last}]}))
    assert retrained_for_masks(config, paths) == [1]
    assert pending(config, paths) == [("ssagan-fixed-mask", 0), ("csagan", 1), ("ssagan-fixed-mask", 1)]
    trace = tmp_path / "trace.txt"

    def standin(task: tuple[str, int]) -> list[str]:
        return [sys.executable, "-c", _STANDIN, task[0], str(task[1]), paths.results_dir, settings, str(trace)]

    run_parallel(config, paths, jobs=2, threads=1, command=standin, poll_seconds=0.05)
    start, end, _, _ = _trace(trace)
    assert set(start) == {("ssagan-fixed-mask", 0), ("csagan", 1), ("ssagan-fixed-mask", 1)}
    assert start[("ssagan-fixed-mask", 1)] >= end[("csagan", 1)]
    Path(paths.results_dir, "ssagan-fixed-mask_seed1.json").unlink()
    assert retrained_for_masks(config.replace(variants=("csagan",)), paths) == []  # no fixed-mask run asked for


def test_parallel_study_reports_a_failed_run_and_finishes_the_others(tmp_path: Path) -> None:
    config = study_config("smoke", ["variants=dfgan,ssagan", "seeds=0"])
    paths = _paths(tmp_path)
    settings = json.dumps(run_settings(config, paths))
    trace = tmp_path / "trace.txt"

    def standin(task: tuple[str, int]) -> list[str]:
        return [sys.executable, "-c", _STANDIN, task[0], str(task[1]), paths.results_dir, settings, str(trace)]

    with pytest.raises(RuntimeError, match=r"dfgan seed 0 exited with 1 \(see .*dfgan_seed0.log\).*rerun the same"):
        run_parallel(config, paths, jobs=2, threads=1, command=standin, poll_seconds=0.05)
    assert Path(paths.results_dir, "ssagan_seed0.json").is_file()  # the other run finished
    assert "dfgan failed on purpose" in (Path(paths.runs_dir) / LOG_DIR / "dfgan_seed0.log").read_text()
    with pytest.raises(ValueError, match="jobs must be >= 1"):
        run_parallel(config, paths, jobs=0)


def test_worker_refuses_a_spec_it_did_not_write() -> None:
    with pytest.raises(ValueError, match="not a worker spec.*--jobs N"):
        run_worker('{"config": {}}')


@pytest.mark.slow
def test_jobs_2_from_the_command_line_equals_run_one(toy: dict[str, Path], tmp_path: Path) -> None:
    """``csagan study run --jobs 2 --threads 1`` writes what run_one writes for each (variant, seed)."""
    args = ["study", "run", "--preset", "smoke", "--variants", "csagan,dfgan", "--set", "metrics=rprec",
            "--data", str(toy["data"]), "--damsm", str(toy["damsm"]), "--no-progress"]  # fmt: skip
    assert main([*args, "--runs", str(tmp_path / "runs"), "--results", str(tmp_path / "res"),
                 "--jobs", "2", "--threads", "1"]) == 0  # fmt: skip
    config = study_config("smoke", ["variants=csagan,dfgan", "metrics=rprec"])
    ref = StudyPaths(data_dir=str(toy["data"]), damsm_dir=str(toy["damsm"]), runs_dir=str(tmp_path / "ref_runs"),
                     results_dir=str(tmp_path / "ref"))  # fmt: skip
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for variant in ("csagan", "dfgan"):
            want = json.loads(run_one(config, ref, variant, 0, progress=False).read_text())
            got = json.loads((tmp_path / "res" / f"{variant}_seed0.json").read_text())
            assert got["metrics"] == want["metrics"] and got["config"] == want["config"]
            assert got["hardware"]["torch_threads"] == 1
    finally:
        torch.set_num_threads(threads)
    assert "result:" in (tmp_path / "runs" / LOG_DIR / "dfgan_seed0.log").read_text()
    assert worker_command(config, ref, ("dfgan", 0), 1)[1:5] == ["-m", "csagan", "study", "worker"]


_SLEEPER = """
import os, sys, time
with open(sys.argv[1], "a") as f:
    f.write(f"{os.getpid()}\\n")
time.sleep(60)
"""

_PARENT = """
import sys
from csagan.study import StudyPaths, study_config
from csagan.study.parallel import run_parallel
tmp, sleeper = sys.argv[1], sys.argv[2]
config = study_config("smoke", ["variants=csagan,dfgan", "seeds=0"])
paths = StudyPaths(data_dir="d", damsm_dir="m", runs_dir=tmp + "/runs", results_dir=tmp + "/results")
run_parallel(config, paths, jobs=2, threads=1, poll_seconds=0.05,
             command=lambda task: [sys.executable, "-c", sleeper, tmp + "/pids.txt"])
"""


def test_killing_a_parallel_study_stops_its_runs(tmp_path: Path) -> None:
    """``kill`` (SIGTERM) of the study process terminates the runs it started instead of orphaning them."""
    (tmp_path / "results").mkdir()
    parent = subprocess.Popen([sys.executable, "-c", _PARENT, str(tmp_path), _SLEEPER])
    pids_file = tmp_path / "pids.txt"
    deadline = time.time() + 60
    while time.time() < deadline and len(pids_file.read_text().split() if pids_file.exists() else []) < 2:
        time.sleep(0.1)
    pids = [int(p) for p in pids_file.read_text().split()]
    assert len(pids) == 2
    parent.send_signal(signal.SIGTERM)
    assert parent.wait(timeout=60) != 0
    time.sleep(0.5)
    for pid in pids:  # the workers are gone (a zombie would still answer kill 0, but they were reaped)
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
