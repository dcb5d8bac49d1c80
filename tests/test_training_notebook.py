"""The training chapter runs under papermill with tiny parameters and rejects unknown ones."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "09_training.ipynb"

papermill = pytest.importorskip("papermill")


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from csagan.data.toybirds import make_toybirds

    return make_toybirds(tmp_path_factory.mktemp("tb") / "tb", n_images=40, n_species=8, workers=1, progress=False)


@pytest.mark.slow
def test_papermill_run_with_tiny_parameters(tiny_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.ipynb"
    run = tmp_path / "run"
    papermill.execute_notebook(
        str(NOTEBOOK), str(out), kernel_name="python3", progress_bar=False, cwd=str(ROOT),
        parameters={"preset": "smoke", "data_dir": str(tiny_data), "out_dir": str(run), "max_steps": 2},
    )
    assert (run / "generator.pt").is_file()
    assert (run / "metrics.jsonl").is_file()


@pytest.mark.slow
def test_papermill_unknown_parameter_fails_listing_valid_names(tiny_data: Path, tmp_path: Path) -> None:
    with pytest.raises(papermill.PapermillExecutionError) as exc:
        papermill.execute_notebook(
            str(NOTEBOOK), str(tmp_path / "out.ipynb"), kernel_name="python3", progress_bar=False,
            cwd=str(ROOT), parameters={"datadir": str(tiny_data)},
        )
    message = str(exc.value)
    assert "UnknownParameterError" in message and "datadir" in message and "data_dir" in message
