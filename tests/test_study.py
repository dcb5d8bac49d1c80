"""Tests of csagan.study (the reproduction study's runner, table and verdicts)."""

from __future__ import annotations

import json
import math
import re
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
    POINTS_FILE,
    STUDY_PRESETS,
    STUDY_VARIANTS,
    StudyConfig,
    StudyPaths,
    budgets,
    judge,
    judge_claims,
    load_results,
    markdown_table,
    protocol_of,
    results_at,
    run,
    snapshot_dir,
    study_config,
    study_metrics,
    summarize,
)
from csagan.study.figures import N_CAPTIONS, load_study_figures, render_study_figures
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


def test_config_is_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown study variant"):
        StudyConfig(variants=("csagan", "stylegan"))
    with pytest.raises(ValueError, match="include 'csagan'"):
        StudyConfig(variants=("ssagan-fixed-mask",))
    with pytest.raises(ValueError, match="snapshot_steps"):
        StudyConfig(max_steps=10, snapshot_steps=(5, 3))
    with pytest.raises(ValueError, match="snapshot_steps"):
        StudyConfig(max_steps=10, snapshot_steps=(10,))
    with pytest.raises(ValueError, match="sets max_steps itself"):
        StudyConfig(overrides=("max_steps=3",))
    with pytest.raises(TypeError, match="StudyConfig.max_steps"):
        StudyConfig(max_steps="600")  # type: ignore[arg-type]
    assert StudyConfig().variants == STUDY_VARIANTS
    with pytest.raises(FileNotFoundError, match="make reproduce"):
        load_results(tmp_path)


def test_study_config_resolves_presets_and_overrides() -> None:
    assert study_config("early") == STUDY_PRESETS["early"]
    early = study_config("early")
    assert (early.max_steps, early.batch_size, early.seeds, early.score_steps) == (600, 16, (0, 1), (600,))
    cfg = study_config("trained", ["seeds=0", "variants=csagan,dfgan", "max_steps=5000", "eval_images=500"])
    assert cfg.seeds == (0,) and cfg.variants == ("csagan", "dfgan") and cfg.max_steps == 5000
    assert cfg.score_steps[-1] == 5000 and cfg.images_per_run == 5000 * cfg.batch_size
    assert study_config("early", ["variants=dfgan"]).variants == ("dfgan",)
    with pytest.raises(ValueError, match="unknown study preset 'toybirds-cpu'"):
        study_config("toybirds-cpu")
    with pytest.raises(ValueError, match="unknown study setting"):
        study_config("early", ["steps=3"])


def test_protocol_reads_results_of_the_earlier_format() -> None:
    old = {"data_dir": "d", "damsm_dir": "m", "runs_dir": "r", "results_dir": "x", "variants": ["csagan"],
           "seeds": [0, 1], "preset": "toybirds-cpu", "max_steps": 600, "batch_size": 16, "eval_images": 1000,
           "passes": 1, "rprec_candidates": 100, "metrics": ["dfid", "dis", "align", "rprec"], "evaluator": None,
           "overrides": []}  # fmt: skip
    paths = StudyPaths(data_dir="d", damsm_dir="m", runs_dir="elsewhere", results_dir="y")
    new = {**study_config("early", ["seeds=0,1,2"]).to_dict(), **vars(paths)}
    assert protocol_of(old) == protocol_of(new)
    assert protocol_of(old) != protocol_of({**new, "max_steps": 601})


def _point(images: int, fid: float) -> dict:
    return {"images_seen": images, "metrics": {"domain_fid": fid}}


def test_results_at_an_earlier_budget() -> None:
    res = [
        {"variant": "csagan", "seed": s, "images_seen": 30, "metrics": {"domain_fid": 1.0 + s},
         "points": [_point(10, 9.0 + s), _point(20, 5.0 + s), _point(30, 1.0 + s)]}
        for s in (0, 1)
    ] + [{"variant": "dfgan", "seed": 0, "images_seen": 30, "metrics": {"domain_fid": 2.0},
          "points": [_point(10, 8.0), _point(30, 2.0)]}]  # fmt: skip
    assert budgets(res) == [10, 30]
    early = summarize(results_at(res, 10))
    assert early["csagan"]["domain_fid"]["mean"] == 9.5 and early["dfgan"]["domain_fid"]["mean"] == 8.0
    assert summarize(results_at(res, 30)) == summarize(res)
    with pytest.raises(ValueError, match="dfgan seed 0 has no point at 20 images"):
        results_at(res, 20)
    assert budgets([{"variant": "x", "seed": 0, "images_seen": 9600, "metrics": {}}]) == [9600]


def test_budget_verdict_table_has_a_letter_and_sign_per_metric_and_budget() -> None:
    from csagan.study import budget_verdict_table
    from csagan.study.config import Claim

    def res(variant: str, seed: int, fids: tuple[float, float]) -> dict:
        pts = [{"images_seen": n, "metrics": {"domain_fid": f, "domain_is": 1.0, "attribute_accuracy": 0.5,
                                               "r_precision": 0.1}} for n, f in zip((10, 20), fids)]  # fmt: skip
        return {"variant": variant, "seed": seed, "images_seen": 20, "metrics": pts[-1]["metrics"], "points": pts}

    # a: FID 100 then 50 (seeds 99/101, 49/51); b: 90 then 80 (89/91, 79/81). At 10 images b is better by 10
    # (> noise 2): not reproduced; at 20 images a is better by 30: reproduced. Equal metrics: inconclusive, 0.
    results = [res("a", s, (100.0 + d, 50.0 + d)) for s, d in ((0, -1.0), (1, 1.0))]
    results += [res("b", s, (90.0 + d, 80.0 + d)) for s, d in ((0, -1.0), (1, 1.0))]
    table = budget_verdict_table(results, claims=[Claim("a beats b", "a", "b", "T")])
    assert table.splitlines() == ["| claim | 10 images | 20 images |", "|---|---|---|",
                                  "| a beats b | N− i0 i0 i0 | R+ i0 i0 i0 |"]  # fmt: skip
    with pytest.raises(ValueError, match="no scored budget"):
        budget_verdict_table([])


@pytest.mark.slow
def test_run_study_end_to_end_and_skips_finished_runs(toy: dict[str, Path], tmp_path: Path) -> None:
    config = study_config("smoke", ["variants=csagan,ssagan-fixed-mask", "metrics=rprec,align"])
    paths = StudyPaths(data_dir=str(toy["data"]), damsm_dir=str(toy["damsm"]), runs_dir=str(tmp_path / "runs"),
                       results_dir=str(tmp_path / "results"))  # fmt: skip
    files = run(config, paths, progress=False)
    assert [f.name for f in files] == ["csagan_seed0.json", "ssagan-fixed-mask_seed0.json"]
    record = json.loads(files[0].read_text())
    assert record["images_seen"] == 16 and record["config"]["train"]["max_steps"] == 4
    assert record["config"]["train"]["seed"] == 0 and record["train_seconds"] > 0
    assert record["train_cpu_seconds"] > 0 and record["hardware"]["cpu_flags"] is not None
    assert 0.0 <= record["metrics"]["r_precision"] <= 1.0
    assert record["metrics"]["r_precision"] == record["report"]["metrics"]["rprec"]["mean"]
    # scored at the snapshot and at the end, an fp16 generator kept at each, the last point = the result
    assert [p["steps"] for p in record["points"]] == [2, 4] and record["points"][-1]["metrics"] == record["metrics"]
    assert record["points"][0]["train_cpu_seconds"] < record["points"][1]["train_cpu_seconds"]
    run_dir = Path(paths.runs_dir) / "csagan" / "seed0"
    for step in (2, 4):
        snap = load_run(snapshot_dir(run_dir, step))
        assert snap.step == step and next(snap.generator.parameters()).dtype == torch.float32
    # the own-caption / other-caption accuracies and the CSA code measurement come with every point
    for p in record["points"]:
        assert 0 <= p["metrics"]["attribute_accuracy_other"] <= 1 and 0 <= p["metrics"]["csa_retrieval"] <= 1
    fixed = json.loads(files[1].read_text())
    assert fixed["config"]["train"]["mask_source"].endswith("csagan/seed0")
    assert "csa_retrieval" not in fixed["metrics"]
    before = [f.stat().st_mtime_ns for f in files]
    assert run(config, paths, progress=False) == files  # finished: nothing is redone
    assert [f.stat().st_mtime_ns for f in files] == before
    # A study over a subset of the variants reuses the finished files too.
    assert run(config.replace(variants=("csagan",)), paths, progress=False) == files[:1]
    assert [f.stat().st_mtime_ns for f in files] == before
    assert set(summarize(load_results(paths.results_dir))) == {"csagan", "ssagan-fixed-mask"}
    # A run folder made under another protocol is refused, not continued.
    with pytest.raises(ValueError, match="other settings"):
        run(config.replace(variants=("csagan",), eval_images=9), replace(paths, results_dir=str(tmp_path / "r2")),
            progress=False)

    # The figures: the same captions and noise for both variants, read back within PNG rounding.
    figs_dir = tmp_path / "figures"
    assert main(["study", "figures", "--runs", paths.runs_dir, "--out", str(figs_dir),
                 "--data", str(toy["data"])]) == 0  # fmt: skip
    figs = load_study_figures(figs_dir)
    assert set(figs.samples) == {"csagan", "ssagan-fixed-mask"} and len(figs.captions) == N_CAPTIONS
    run_ = load_run(Path(paths.runs_dir) / "csagan" / "seed0")
    ref = sample_images(run_.generator, run_.text_encoder, run_.vocab, figs.captions, n_per_caption=4, seed=0)
    size = run_.model_config.image_size
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
    # --results draws only the runs with a result file: a run folder still training is left out
    only = tmp_path / "figures_finished"
    (Path(paths.results_dir) / "ssagan-fixed-mask_seed0.json").rename(tmp_path / "moved.json")
    assert main(["study", "figures", "--runs", paths.runs_dir, "--out", str(only), "--data", str(toy["data"]),
                 "--results", paths.results_dir]) == 0  # fmt: skip
    assert set(load_study_figures(only).samples) == {"csagan"}


@pytest.mark.slow
def test_run_resumes_after_a_kill_between_points(toy: dict[str, Path], tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A study killed after its first scored point continues from it: the point is kept, not retrained."""
    from csagan.study import runner

    config = study_config("smoke", ["variants=dfgan", "metrics=rprec"])
    paths = StudyPaths(data_dir=str(toy["data"]), damsm_dir=str(toy["damsm"]), runs_dir=str(tmp_path / "runs"),
                       results_dir=str(tmp_path / "results"))  # fmt: skip
    real_export = runner.export_run
    calls: list[int] = []

    def export_then_die(run_dir: Path, out: Path, half: bool = True) -> Path:
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # killed after training the second segment, before its copy
        return real_export(run_dir, out, half=half)

    monkeypatch.setattr(runner, "export_run", export_then_die)
    with pytest.raises(KeyboardInterrupt):
        run(config, paths, progress=False)
    run_dir = Path(paths.runs_dir) / "dfgan" / "seed0"
    first = json.loads((run_dir / POINTS_FILE).read_text())["points"]
    assert [p["steps"] for p in first] == [2]
    monkeypatch.setattr(runner, "export_run", real_export)
    (out,) = run(config, paths, progress=False)
    record = json.loads(out.read_text())
    assert record["points"][0] == first[0] and [p["steps"] for p in record["points"]] == [2, 4]


def test_study_cli_names_the_new_preset_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["study", "run", "--data", "d", "--damsm", "m", "--runs", "r", "--results", "x"]
    with pytest.raises(SystemExit, match="give it with --train-preset"):
        main([*args, "--preset", "toybirds-cpu"])
    assert main(["config", "show-study", "--preset", "trained", "--set", "seeds=0"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["name"] == "trained" and shown["seeds"] == [0]


def test_study_metrics_reads_the_report_and_leaves_missing_ones_empty() -> None:
    report = {"metrics": {"dfid": {"fid": 12.5}, "dis": {"mean": 3, "std": 0.1}, "align": {"attribute_accuracy": 0.4}}}
    assert study_metrics(report) == {"domain_fid": 12.5, "domain_is": 3.0, "attribute_accuracy": 0.4,
                                     "r_precision": None}


def test_figures_in_a_clone_without_run_folders_keep_the_committed_ones(tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """A clone has book/results (result files and figures) but not runs/: `study figures` keeps the figures and says
    how to redraw them, and refuses clearly where there are no figures to keep."""
    import shutil

    from csagan.paths import repo_results_dir

    figs = tmp_path / "figures"
    shutil.copytree(repo_results_dir() / "figures", figs)
    before = {p.name: p.read_bytes() for p in figs.iterdir()}
    results = tmp_path / "results"
    results.mkdir()
    for v in load_study_figures(figs).samples:
        (results / f"{v}_seed0.json").write_text("{}")
    args = ["study", "figures", "--runs", str(tmp_path / "runs"), "--data", str(tmp_path / "data"),
            "--results", str(results)]  # fmt: skip
    assert main([*args, "--out", str(figs)]) == 0
    said = capsys.readouterr().out
    assert "are kept as they are" in said and "--seeds 0" in said
    assert {p.name: p.read_bytes() for p in figs.iterdir()} == before
    assert main([*args, "--out", str(tmp_path / "empty")]) != 0
    assert re.search(r"run folders are not under .*has no figures of \['csagan'", capsys.readouterr().err)
