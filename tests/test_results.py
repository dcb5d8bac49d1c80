"""The reproduction study's committed results: the trained study (``book/results``) and the early-training
study (``book/results/early``): complete, consistent and readable."""

from __future__ import annotations

from pathlib import Path

import pytest

from csagan.paths import repo_results_dir
from csagan.study import (
    STUDY_PRESETS,
    STUDY_VARIANTS,
    budgets,
    judge_claims,
    load_results,
    protocol_of,
    results_at,
    summarize,
)
from csagan.study.figures import load_study_figures


def _trained() -> list[dict]:
    folder = repo_results_dir()
    return load_results(folder) if any(folder.glob("*_seed*.json")) else []


def test_early_study_is_complete_with_one_budget() -> None:
    results = load_results(repo_results_dir() / "early")
    seeds = {v: sorted(r["seed"] for r in results if r["variant"] == v) for v in STUDY_VARIANTS}
    assert all(s == list(STUDY_PRESETS["early"].seeds) for s in seeds.values()), seeds
    assert {r["images_seen"] for r in results} == {STUDY_PRESETS["early"].images_per_run}
    assert all(r["config"]["model"]["name"] == r["variant"] for r in results)
    assert len({str(protocol_of(r["settings"])) for r in results}) == 1


def test_early_results_summarize_and_judge() -> None:
    verdicts = judge_claims(summarize(load_results(repo_results_dir() / "early")))
    assert verdicts and all(v.verdict != "missing" for v in verdicts)


def test_early_figures_cover_every_variant() -> None:
    figs = load_study_figures(repo_results_dir() / "early" / "figures")
    assert set(figs.samples) == set(STUDY_VARIANTS)
    assert all(s.shape[:2] == (len(figs.captions), figs.meta["n_per_caption"]) for s in figs.samples.values())


def test_trained_results_follow_the_trained_protocol() -> None:
    """Every committed result of the trained study: the preset's protocol, scored at each of its budgets."""
    preset = STUDY_PRESETS["trained"]
    results = _trained()
    for r in results:
        assert r["settings"]["name"] == "trained" and r["variant"] in preset.variants and r["seed"] in preset.seeds
        assert protocol_of(r["settings"]) == protocol_of({**r["settings"], **preset.to_dict()})
        assert [p["steps"] for p in r["points"]] == list(preset.score_steps)
        assert r["points"][-1]["metrics"] == r["metrics"] and r["images_seen"] == preset.images_per_run
        assert r["config"]["model"]["image_size"] == 32 and r["config"]["model"]["name"] == r["variant"]
        assert r["hardware"]["cpu"] and r["train_cpu_seconds"] > 0
    if results:
        assert budgets(results) == [s * preset.batch_size for s in preset.score_steps]
        for images in budgets(results):
            assert summarize(results_at(results, images))


def test_trained_study_is_complete() -> None:
    """All 8 variants × 3 seeds (the study resumes with `make reproduce-trained`; skipped while it runs)."""
    preset = STUDY_PRESETS["trained"]
    done = {(r["variant"], r["seed"]) for r in _trained()}
    wanted = {(v, s) for v in preset.variants for s in preset.seeds}
    assert done <= wanted
    if done != wanted:
        pytest.skip(f"the trained study is in progress: {len(done)} of {len(wanted)} runs committed")
    verdicts = judge_claims(summarize(_trained()))
    assert all(v.verdict != "missing" for v in verdicts)
    figs = load_study_figures(repo_results_dir() / "figures")
    assert set(figs.samples) == set(STUDY_VARIANTS)


def test_results_dir_outside_a_clone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="book/results"):
        repo_results_dir()
