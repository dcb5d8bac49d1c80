"""benchmarks/profile_step.py at smoke size: it profiles the engine's step and ranks the operators."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "profile_step.py"
TINY = ["--config", "csagan", "--nf", "4", "--image-size", "32", "--batch", "2", "--steps", "1", "--warmup", "1"]


def _load() -> object:
    spec = importlib.util.spec_from_file_location("profile_step_bench", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_profile_lists_top_operators_by_self_time(tmp_path: Path) -> None:
    before = torch.get_num_threads()
    try:
        result = _load().main([*TINY, "--top", "5", "--json", str(tmp_path / "p.json")])  # type: ignore[attr-defined]
    finally:
        torch.set_num_threads(before)
        sys.modules.pop("train_step", None)
    assert json.loads((tmp_path / "p.json").read_text()) == result
    ops = result["ops"]
    assert len(ops) == 5 and result["total_self_cpu_ms_per_step"] > 0
    times = [op["self_cpu_ms_per_step"] for op in ops]
    assert times == sorted(times, reverse=True)
    assert all(0 < op["share"] <= 1 for op in ops) and sum(op["share"] for op in ops) <= 1 + 1e-9
    assert any(op["name"].startswith("aten::") for op in ops)  # the step's own operators, profiled


def test_profile_rejects_a_bad_top(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="--top must be >= 1"):
        _load().main([*TINY, "--top", "0"])  # type: ignore[attr-defined]
