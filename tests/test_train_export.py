"""Tests of csagan.train.run.export_run (the fp16 copy of a run folder that the project ships)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from csagan.sample import sample_images
from csagan.train.run import export_run, load_run

pytestmark = pytest.mark.usefixtures("single_thread")


def _draw(run_dir: Path) -> torch.Tensor:
    run = load_run(run_dir)
    return sample_images(run.generator, run.text_encoder, run.vocab, ["this bird has a red crown"],
                         n_per_caption=2, seed=0).images


def test_export_loads_and_samples_like_the_run(csagan_run: Path, tmp_path: Path) -> None:
    out = export_run(csagan_run, tmp_path / "export")
    state = torch.load(out / "generator.pt", weights_only=True)["state_dict"]
    assert all(v.dtype == torch.float16 for v in state.values() if v.is_floating_point())
    assert not (out / "checkpoint.pt").exists()
    original, exported = _draw(csagan_run), _draw(out)
    assert original.shape == exported.shape
    # fp16 weights: the images agree to fp16 rounding, not bit for bit
    assert torch.allclose(original, exported, atol=2e-2)


def test_export_keeps_fp32_when_asked(csagan_run: Path, tmp_path: Path) -> None:
    out = export_run(csagan_run, tmp_path / "export32", half=False)
    assert torch.equal(_draw(csagan_run), _draw(out))


def test_export_refuses_incomplete_or_same_folder(csagan_run: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="run folder not found"):
        export_run(tmp_path / "missing", tmp_path / "x")
    with pytest.raises(ValueError, match="run folder itself"):
        export_run(csagan_run, csagan_run)
