"""benchmarks/learning_speed.py at smoke size: trains in segments, scores each point, resumes, plots.

Timings and scores are not checked against values (they depend on the machine and on 4 training
steps); the record's structure, the step bookkeeping across segments and resumption are.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import torch
from script_loader import load_script

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "learning_speed.py"

pytestmark = pytest.mark.slow
BATCH = 2


@pytest.fixture(scope="module")
def bench() -> Iterator[ModuleType]:
    before = torch.get_num_threads()
    module = load_script("benchmarks/learning_speed.py", "learning_speed_bench")
    yield module
    sys.modules.pop("learning_speed_bench", None)
    torch.set_num_threads(before)


def _args(toy: dict[str, Path], tmp: Path, score_at: str) -> list[str]:
    return [
        "--config", "csagan", "--preset", "smoke", "--data", str(toy["data"]), "--damsm", str(toy["damsm"]),
        "--score-at", score_at, "--out", str(tmp / "ls.json"), "--work", str(tmp / "work"), "--threads", "1",
        "--eval-images", "8", "--passes", "1", "--metrics", "dfid,align", "--sanity-images", "8",
        "--eval-batch", "8", "--is-splits", "2", "--set", f"batch_size={BATCH}",
    ]  # fmt: skip


def test_points_are_trained_scored_and_continued(bench: ModuleType, toy: dict[str, Path], tmp_path: Path) -> None:
    batch = BATCH
    record = bench.main(_args(toy, tmp_path, f"{batch},{2 * batch}"))
    assert json.loads((tmp_path / "ls.json").read_text()) == record
    assert [p["steps"] for p in record["points"]] == [1, 2]
    assert [p["images_seen"] for p in record["points"]] == [batch, 2 * batch]
    first, second = record["points"]
    assert second["train_wall_s"] > first["train_wall_s"] > 0 and second["segments"] == 2
    assert second["train_cpu_s"] >= first["train_cpu_s"]
    for p in record["points"]:
        s = p["scores"]
        assert s["n_images"] == 8 and s["domain_fid"] > 0
        assert 0.0 <= s["attribute_accuracy"] <= 1.0 and 0.0 <= s["attribute_accuracy_other"] <= 1.0
    assert record["finished_utc"] and record["sessions"][0]["hardware"]["torch"] == torch.__version__
    # The same command with one more point continues the record instead of starting again.
    again = bench.main(_args(toy, tmp_path, f"{batch},{2 * batch},{3 * batch}"))
    assert [p["steps"] for p in again["points"]] == [1, 2, 3]
    assert again["points"][:2] == record["points"] and len(again["sessions"]) == 2
    png = bench.main(["plot", str(tmp_path / "ls.json"), "--out", str(tmp_path / "curve.png"), "--no-reference"])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_refuses_other_settings_and_bad_points(bench: ModuleType, toy: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="strictly increasing"):
        bench.parse_score_at("20,10")
    with pytest.raises(ValueError, match="set by this tool"):
        bench.resolve_run(bench.parse_args([*_args(toy, tmp_path, "1"), "--set", "max_steps=5"]))
    batch = BATCH
    with pytest.raises(ValueError, match="multiple of the batch size 2"):
        bench.resolve_run(bench.parse_args(_args(toy, tmp_path, "3")))
    bench.main(_args(toy, tmp_path, str(batch)))
    with pytest.raises(ValueError, match="other settings"):
        bench.main([*_args(toy, tmp_path, str(2 * batch)), "--seed", "1"])
