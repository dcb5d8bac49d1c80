"""The reproduction study's committed results (book/results): complete, consistent and readable."""

from __future__ import annotations

from pathlib import Path

import pytest

from csagan.paths import repo_results_dir
from csagan.study import STUDY_VARIANTS, judge_claims, load_results, summarize
from csagan.study_figures import load_study_figures


def test_every_variant_has_at_least_two_seeds_with_one_budget() -> None:
    results = load_results(repo_results_dir())
    seeds = {v: sorted(r["seed"] for r in results if r["variant"] == v) for v in STUDY_VARIANTS}
    assert all(len(s) >= 2 for s in seeds.values()), seeds
    assert len({r["images_seen"] for r in results}) == 1
    assert all(r["images_seen"] == r["settings"]["max_steps"] * r["settings"]["batch_size"] for r in results)
    assert all(r["config"]["model"]["name"] == r["variant"] for r in results)


def test_results_summarize_and_judge() -> None:
    verdicts = judge_claims(summarize(load_results(repo_results_dir())))
    assert verdicts and all(v.verdict != "missing" for v in verdicts)


def test_figures_cover_every_variant() -> None:
    figs = load_study_figures(repo_results_dir() / "figures")
    assert set(figs.samples) == set(STUDY_VARIANTS)
    assert all(s.shape[:2] == (len(figs.captions), figs.meta["n_per_caption"]) for s in figs.samples.values())


def test_results_dir_outside_a_clone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="book/results"):
        repo_results_dir()
