"""benchmarks/side_by_side.py at smoke size: both modes run in the same call and the ratio is theirs.

Timings are not checked (they depend on the machine); the record's fields and arithmetic are.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "side_by_side.py"


@pytest.mark.slow
@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="side by side needs 2 cores")
def test_side_by_side_measures_both_modes_in_one_run(tmp_path: Path) -> None:
    out = tmp_path / "sbs.json"
    cmd = [sys.executable, str(SCRIPT), "--jobs", "2", "--seconds", "0.5", "--rounds", "1", "--warmup", "1",
           "--config", "dfgan", "--nf", "4", "--image-size", "32", "--batch", "2", "--out", str(out)]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    rec = json.loads(out.read_text())
    (r,) = rec["rounds"]
    cores = os.cpu_count() or 1
    assert (r["one"]["processes"], r["one"]["threads"]) == (1, cores)
    assert (r["side_by_side"]["processes"], r["side_by_side"]["threads"]) == (2, cores // 2)
    assert len(r["side_by_side"]["steps"]) == 2 and all(n >= 1 for n in r["side_by_side"]["steps"])
    assert r["one"]["images_per_s"] == round(sum(r["one"]["steps"]) * 2 / 0.5, 2)
    assert r["ratio"] == round(r["side_by_side"]["images_per_s"] / r["one"]["images_per_s"], 3)
    assert rec["median_ratio"] == r["ratio"] and rec["hardware"]["cpu_flags"] is not None
    assert "--no-reference" in rec["step_options"]


def test_side_by_side_refuses_unknown_step_options() -> None:
    proc = subprocess.run([sys.executable, str(SCRIPT), "--no-such-option"], check=False, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode != 0 and "--no-such-option" in proc.stderr
