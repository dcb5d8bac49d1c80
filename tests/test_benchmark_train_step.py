"""benchmarks/train_step.py at smoke size: it runs the engine's step and writes a complete JSON record.

Timings are not checked (they depend on the machine); the fields, the settings and the loss
values the shared step returns are.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import torch
from script_loader import load_script

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "train_step.py"
TINY = ["--config", "csagan", "--nf", "4", "--image-size", "32", "--batch", "2", "--steps", "1", "--warmup", "0"]


@pytest.fixture(scope="module")
def bench() -> Iterator[ModuleType]:
    before = torch.get_num_threads()
    module = load_script("benchmarks/train_step.py", "train_step_bench")
    yield module
    sys.modules.pop("train_step_bench", None)
    torch.set_num_threads(before)


def test_record_has_hardware_config_figures_and_ratio(bench: ModuleType, tmp_path: Path) -> None:
    out = tmp_path / "ts.json"
    record = bench.main([*TINY, "--channels-last", "--threads", "1", "--memory", "off", "--out", str(out)])
    assert json.loads(out.read_text()) == record
    hw = record["hardware"]
    for key in ("cpu", "cores", "torch", "torch_threads", "load_average", "device"):
        assert key in hw, key
    assert hw["torch"] == torch.__version__ and hw["torch_threads"] == 1 and hw["device"] == "cpu"
    cfg = record["config"]
    assert (cfg["name"], cfg["image_size"], cfg["nf"], cfg["d_nf"], cfg["batch"], cfg["steps"]) == (
        "csagan", 32, 4, 4, 2, 1)
    assert record["reference_setting"] == {"precision": "fp32", "channels_last": False, "compile": False,
                                           "threads": 1}
    assert record["optimised_setting"]["channels_last"] is True
    for name in ("reference", "optimised"):
        res = record["results"][name]
        assert len(res["step_s"]) == 1 and res["images_per_s"] > 0
        assert res["images_per_s"] == pytest.approx(2 / res["median_step_s"], rel=1e-2)
    ratio = record["results"]["optimised"]["images_per_s"] / record["results"]["reference"]["images_per_s"]
    assert record["ratio"] == pytest.approx(ratio, rel=1e-2)


def test_reference_and_optimised_start_from_the_same_models_and_step_the_same(bench: ModuleType) -> None:
    torch.set_num_threads(1)
    args = bench.parse_args([*TINY, "--channels-last"])
    ref = bench.build_step(args, optimised=False, device=torch.device("cpu"))
    opt = bench.build_step(args, optimised=True, device=torch.device("cpu"))
    assert ref.memory_format == torch.contiguous_format and opt.memory_format == torch.channels_last
    for a, b in zip(ref.G.state_dict().values(), opt.G.state_dict().values()):
        assert torch.equal(a, b)
    batch = bench.synthetic_batches(1, 2, 32)[0]
    assert batch.captions[0, batch.cap_lens[0]:].eq(0).all() and batch.captions[0, : batch.cap_lens[0]].ne(0).all()
    vals_ref, vals_opt = ref(batch), opt(batch)
    assert set(vals_ref) >= {"d_total", "magp", "g_total", "damsm", "kl"}
    assert all(math.isfinite(v) for v in vals_ref.values())
    for key in ("d_real", "d_fake", "d_mismatch", "g_adv", "damsm", "kl"):  # same weights and inputs, same losses
        assert vals_opt[key] == pytest.approx(vals_ref[key], rel=1e-3, abs=1e-5), key


def test_memory_probe_reports_cpu_peak(bench: ModuleType) -> None:
    torch.set_num_threads(1)
    mem = bench.memory_probe(bench.parse_args(TINY), optimised=False)
    assert mem["kind"] == "cpu_peak_rss" and mem["peak_mib"] > 0 and mem["step_mib"] >= 0


def test_bad_arguments_are_rejected(bench: ModuleType) -> None:
    with pytest.raises(SystemExit):
        bench.parse_args(["--steps", "0"])
    with pytest.raises(SystemExit):
        bench.parse_args(["--precision", "fp16", "--device", "cpu"])
