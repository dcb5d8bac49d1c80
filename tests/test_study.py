"""Tests of csagan.study (the reproduction study's runner, table and verdicts)."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from csagan.cli import main
from csagan.sample import sample_images
from csagan.study import (
    CLAIMS,
    PAPER,
    STUDY_VARIANTS,
    StudySettings,
    judge,
    judge_claims,
    load_results,
    markdown_table,
    run_study,
    study_metrics,
    summarize,
)
from csagan.study_figures import N_CAPTIONS, load_study_figures, render_study_figures
from csagan.train.run import load_run


def _result(variant: str, seed: int, **metrics: float) -> dict:
    return {"variant": variant, "seed": seed, "metrics": metrics}


def test_summarize_is_numpy_mean_and_sample_std() -> None:
    vals = [3.0, 4.5, 7.0]
    res = [_result("csagan", s, domain_fid=v) for s, v in enumerate(vals)] + [_result("dfgan", 0, domain_fid=9.0)]
    summary = summarize(res)
    assert summary["csagan"]["domain_fid"]["mean"] == pytest.approx(np.mean(vals))
    assert summary["csagan"]["domain_fid"]["std"] == pytest.approx(np.std(vals, ddof=1))
    assert summary["csagan"]["domain_fid"]["n"] == 3
    assert summary["dfgan"]["domain_fid"] == {"mean": 9.0, "std": 0.0, "n": 1.0}


def test_summarize_skips_missing_values() -> None:
    res = [_result("csagan", 0, domain_fid=1.0, r_precision=None), _result("csagan", 1, domain_fid=3.0)]
    summary = summarize(res)  # type: ignore[arg-type]
    assert "r_precision" not in summary["csagan"] and summary["csagan"]["domain_fid"]["n"] == 2


def test_judge_rule() -> None:
    assert judge(2.0, 1.0, 2) == "reproduced"
    assert judge(-2.0, 1.0, 2) == "not reproduced"
    assert judge(0.5, 1.0, 3) == "inconclusive"
    assert judge(5.0, 0.0, 1) == "inconclusive"  # one seed: no noise estimate


def test_judge_claims_respects_each_metrics_direction() -> None:
    # csagan has the LOWER domain FID (better) and the HIGHER attribute accuracy (better)
    res = [
        _result("csagan", 0, domain_fid=10.0, attribute_accuracy=0.60),
        _result("csagan", 1, domain_fid=11.0, attribute_accuracy=0.62),
        _result("csagan-no-ssf", 0, domain_fid=20.0, attribute_accuracy=0.40),
        _result("csagan-no-ssf", 1, domain_fid=21.0, attribute_accuracy=0.42),
    ]
    verdicts = {(v.claim, v.metric): v for v in judge_claims(summarize(res))}
    fid = verdicts[("SSF helps", "domain_fid")]
    assert fid.verdict == "reproduced" and fid.difference == pytest.approx(10.0)
    assert fid.noise == pytest.approx(math.hypot(np.std([10, 11], ddof=1), np.std([20, 21], ddof=1)))
    assert verdicts[("SSF helps", "attribute_accuracy")].verdict == "reproduced"
    assert verdicts[("SSF helps", "domain_is")].verdict == "missing"
    assert verdicts[("CSA helps", "domain_fid")].verdict == "missing"
    assert len(verdicts) == len(CLAIMS) * 4


def test_claims_match_the_papers_tables() -> None:
    # every ordering CLAIMS judges holds in the paper's own CUB numbers (IS up, FID down)
    for claim in CLAIMS:
        a, b = PAPER[claim.better], PAPER[claim.worse]
        assert a["cub_is"] > b["cub_is"] and a["cub_fid"] < b["cub_fid"], claim


def test_markdown_table_lists_variants_in_study_order() -> None:
    res = [_result(v, s, domain_fid=1.0 + i + s) for i, v in enumerate(("dfgan", "csagan")) for s in (0, 1)]
    table = markdown_table(summarize(res)).splitlines()
    assert table[2].startswith("| csagan | 2 | 2.50 ± 0.71") and table[3].startswith("| dfgan | 2 | 1.50 ± 0.71")
    assert "| 5.44 | 17.04 |" in table[2]


def test_settings_are_checked(tmp_path: Path) -> None:
    base = {"data_dir": "d", "damsm_dir": "m", "runs_dir": "r", "results_dir": "x"}
    with pytest.raises(ValueError, match="unknown study variant"):
        StudySettings(**base, variants=("csagan", "stylegan"))
    with pytest.raises(ValueError, match="include 'csagan'"):
        StudySettings(**base, variants=("ssagan-fixed-mask",))
    assert StudySettings(**base).variants == STUDY_VARIANTS
    with pytest.raises(FileNotFoundError, match="make reproduce"):
        load_results(tmp_path)


@pytest.mark.slow
def test_run_study_end_to_end_and_skips_finished_runs(toy: dict[str, Path], tmp_path: Path) -> None:
    settings = StudySettings(
        data_dir=str(toy["data"]), damsm_dir=str(toy["damsm"]), runs_dir=str(tmp_path / "runs"),
        results_dir=str(tmp_path / "results"), variants=("csagan", "ssagan-fixed-mask"), seeds=(0,),
        preset="smoke", max_steps=2, batch_size=4, eval_images=8, rprec_candidates=4, metrics=("rprec",),
    )  # fmt: skip
    files = run_study(settings, progress=False)
    assert [f.name for f in files] == ["csagan_seed0.json", "ssagan-fixed-mask_seed0.json"]
    record = json.loads(files[0].read_text())
    assert record["images_seen"] == 8 and record["config"]["train"]["max_steps"] == 2
    assert record["config"]["train"]["seed"] == 0 and record["train_seconds"] > 0
    assert 0.0 <= record["metrics"]["r_precision"] <= 1.0
    assert record["metrics"]["r_precision"] == record["report"]["metrics"]["rprec"]["mean"]
    fixed = json.loads(files[1].read_text())
    assert fixed["config"]["train"]["mask_source"].endswith("csagan/seed0")
    before = [f.stat().st_mtime_ns for f in files]
    assert run_study(settings, progress=False) == files  # finished: nothing is redone
    assert [f.stat().st_mtime_ns for f in files] == before
    # A study over a subset of the variants reuses the finished files too.
    assert run_study(replace(settings, variants=("csagan",)), progress=False) == files[:1]
    assert [f.stat().st_mtime_ns for f in files] == before
    assert set(summarize(load_results(settings.results_dir))) == {"csagan", "ssagan-fixed-mask"}

    # The figures: the same captions and noise for both variants, read back within PNG rounding.
    figs_dir = tmp_path / "figures"
    assert main(["study", "figures", "--runs", settings.runs_dir, "--out", str(figs_dir),
                 "--data", str(toy["data"])]) == 0  # fmt: skip
    figs = load_study_figures(figs_dir)
    assert set(figs.samples) == {"csagan", "ssagan-fixed-mask"} and len(figs.captions) == N_CAPTIONS
    run = load_run(Path(settings.runs_dir) / "csagan" / "seed0")
    ref = sample_images(run.generator, run.text_encoder, run.vocab, figs.captions, n_per_caption=4, seed=0)
    size = run.model_config.image_size
    got = figs.samples["csagan"]
    assert got.shape == (N_CAPTIONS, 4, 3, size, size)
    assert torch.allclose(got.reshape(-1, 3, size, size), ref.images.clamp(-1, 1), atol=1.01 / 255)
    masks = figs.masks["csagan"]
    assert masks.shape == (N_CAPTIONS, len(ref.masks), 1, size, size)
    finest = torch.nn.functional.interpolate(ref.masks[-1][::4], size=(size, size), mode="nearest")
    assert torch.allclose(masks[:, -1], finest, atol=0.51 / 255)
    # ssagan-fixed-mask draws csagan's masks (frozen copies of its mask predictors) ...
    assert figs.meta["variants"]["ssagan-fixed-mask"]["masks"] == len(ref.masks)
    # ... and has no CSA, whose code measurement only csagan carries.
    assert "csa" not in figs.meta["variants"]["ssagan-fixed-mask"]
    assert 0.0 <= figs.meta["variants"]["csagan"]["csa"]["retrieval"] <= 1.0
    with pytest.raises(FileNotFoundError, match="csagan study run"):
        render_study_figures(tmp_path / "nowhere", figs_dir, toy["data"])


def test_study_metrics_reads_the_report_and_leaves_missing_ones_empty() -> None:
    report = {"metrics": {"dfid": {"fid": 12.5}, "dis": {"mean": 3, "std": 0.1}, "align": {"attribute_accuracy": 0.4}}}
    assert study_metrics(report) == {"domain_fid": 12.5, "domain_is": 3.0, "attribute_accuracy": 0.4,
                                     "r_precision": None}
