"""Atomic saves, RNG capture, sharding, logging and sampling helpers of csagan.train."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from csagan.train import checkpoint as ck
from csagan.train.distributed import DistInfo, read_env, shard_batches
from csagan.train.engine import caption_grid
from csagan.train.logging import MetricsLogger, read_metrics


def test_atomic_save_round_trip_leaves_no_temp(tmp_path: Path) -> None:
    obj: dict[str, Any] = {"a": torch.arange(5), "b": [1, 2.5, "x"]}
    path = ck.atomic_save(obj, tmp_path / "c.pt")
    back = torch.load(path, weights_only=True)
    assert torch.equal(back["a"], obj["a"]) and back["b"] == obj["b"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pt"]


def test_atomic_save_failure_keeps_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = ck.atomic_save({"v": torch.tensor(1)}, tmp_path / "c.pt")

    def boom(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        ck.atomic_save({"v": torch.tensor(2)}, path)
    monkeypatch.undo()
    assert int(torch.load(path, weights_only=True)["v"]) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pt"]


def test_rng_state_round_trip_through_a_weights_only_file(tmp_path: Path) -> None:
    state = ck.capture_rng_state()
    first = (torch.rand(3), np.random.rand(3), [random.random() for _ in range(3)])
    ck.atomic_save(state, tmp_path / "rng.pt")
    ck.restore_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True))
    again = (torch.rand(3), np.random.rand(3), [random.random() for _ in range(3)])
    assert torch.equal(first[0], again[0])
    assert np.array_equal(first[1], again[1])
    assert first[2] == again[2]


def test_config_differences_lists_changed_fields() -> None:
    diffs = ck.config_differences({"a": 1, "b": [1, 2], "c": 3}, {"a": 1, "b": (1, 2), "c": 4, "d": 0}, frozenset({"d"}))
    assert diffs == ["c: 3 -> 4"]


def test_load_checkpoint_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="without --resume"):
        ck.load_checkpoint(tmp_path / "missing.pt")
    torch.save({"x": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a csagan training checkpoint"):
        ck.load_checkpoint(tmp_path / "other.pt")


def test_shard_batches_partition_the_epoch() -> None:
    order = list(range(100, 123))  # 23 items, 2 ranks × batch 3 → 3 global batches, 5 items dropped
    r0 = shard_batches(order, 3, DistInfo(0, 2, 0))
    r1 = shard_batches(order, 3, DistInfo(1, 2, 1))
    assert r0 == [[100, 101, 102], [106, 107, 108], [112, 113, 114]]
    assert r1 == [[103, 104, 105], [109, 110, 111], [115, 116, 117]]
    assert shard_batches(order, 3, DistInfo(1, 2, 1), start_batch=2) == r1[2:]
    assert shard_batches(order, 4, DistInfo()) == [order[i : i + 4] for i in range(0, 20, 4)]


def test_read_env() -> None:
    assert read_env({}) == DistInfo(0, 1, 0)
    assert read_env({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"}) == DistInfo(1, 2, 1)
    with pytest.raises(ValueError, match="RANK"):
        read_env({"RANK": "2", "WORLD_SIZE": "2"})


def test_caption_grid_layout() -> None:
    imgs = torch.zeros(3, 3, 32, 32)
    imgs[1] = 1.0
    grid = caption_grid(imgs, ["a", "b", "a long caption " * 4], cols=2)
    assert grid.width == 2 * 96 and grid.height > 2 * 96
    arr = np.asarray(grid)
    assert arr[10, 96 + 10].tolist() == [255, 255, 255]  # image 1 is white ([−1,1] → 255)
    assert arr[10, 10].tolist() == [128, 128, 128]  # image 0 is mid-grey (0 → 127.5 → 128)
    with pytest.raises(ValueError, match="captions"):
        caption_grid(imgs, ["a"])


def test_metrics_logger_writes_jsonl_and_csv_and_truncates(tmp_path: Path) -> None:
    log = MetricsLogger(tmp_path)
    for s in range(1, 5):
        log.log({"step": s, "loss": s / 2})
    log.truncate_after(2)
    log.log({"step": 3, "loss": 9.0})
    assert [r["step"] for r in read_metrics(tmp_path)] == [1, 2, 3]
    rows = (tmp_path / "metrics.csv").read_text().splitlines()
    assert rows == ["step,loss", "1,0.5", "2,1.0", "3,9.0"]
    assert json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[-1])["loss"] == 9.0


def test_disabled_logger_writes_nothing(tmp_path: Path) -> None:
    MetricsLogger(tmp_path / "r", enabled=False).log({"step": 1})
    assert not (tmp_path / "r").exists()
