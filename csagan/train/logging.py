"""Training logs: ``metrics.jsonl`` with a CSV twin, and the tqdm progress bar.

One JSON object per log step (``step``, ``epoch``, ``images_seen``, ``wall_time``,
``images_per_s`` and every loss term), appended and flushed at once, so a killed run keeps
everything logged so far. On ``--resume`` the lines after the checkpoint's step are dropped
(:meth:`MetricsLogger.truncate_after`) so the resumed run does not log a step twice.
"""

from __future__ import annotations

import csv
import json
import math
import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm

__all__ = ["MetricsLogger", "ProgressBar", "read_metrics"]

METRICS_JSONL = "metrics.jsonl"
METRICS_CSV = "metrics.csv"


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """All records of a ``metrics.jsonl`` file (a run or DAMSM folder, or the file itself).

    Blank lines are skipped.

    Raises:
        FileNotFoundError: the file is missing; ValueError: a line is not a JSON object (its
            number is named).
    """
    p = Path(path)
    if p.is_dir():
        p = p / METRICS_JSONL
    if not p.is_file():
        raise FileNotFoundError(f"metrics file not found: {p} (written by csagan train / pretrain-damsm).")
    records = []
    for lineno, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError as exc:
            raise ValueError(f"{p}:{lineno}: not valid JSON ({exc}).") from exc
        if not isinstance(rec, dict):
            raise ValueError(f"{p}:{lineno}: expected a JSON object.")
        records.append(rec)
    return records


class MetricsLogger:
    """Append records to ``<folder>/metrics.jsonl`` and ``<folder>/metrics.csv``.

    The CSV header is the key set of the first record; later keys that are new are ignored in the
    CSV (the JSONL keeps everything). ``enabled=False`` makes every call a no-op (ranks > 0).
    """

    def __init__(self, folder: str | Path, enabled: bool = True) -> None:
        self.folder = Path(folder)
        self.enabled = enabled
        self.jsonl = self.folder / METRICS_JSONL
        self.csv = self.folder / METRICS_CSV

    def reset(self) -> None:
        """Delete both files (a fresh run in a folder whose earlier run left no checkpoint)."""
        if self.enabled:
            self.jsonl.unlink(missing_ok=True)
            self.csv.unlink(missing_ok=True)

    def truncate_after(self, step: int) -> None:
        """Drop records with ``step`` > ``step`` from both files (used when resuming).

        A torn last line (the run was killed while writing it) is dropped, with a note on stderr.
        """
        if not self.enabled or not self.jsonl.is_file():
            return
        lines = [line for line in self.jsonl.read_text(encoding="utf-8").splitlines() if line.strip()]
        if lines:
            try:
                json.loads(lines[-1])
            except ValueError:
                print(f"csagan: note: dropped the incomplete last line of {self.jsonl} (written by a killed run): "
                      f"{lines[-1][:60]!r}", file=sys.stderr)
                self.jsonl.write_text("".join(line + "\n" for line in lines[:-1]), encoding="utf-8")
        kept = [r for r in read_metrics(self.jsonl) if int(r.get("step", 0)) <= step]
        self.jsonl.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")
        if self.csv.exists():
            self.csv.unlink()
        for r in kept:
            self._write_csv(r)

    def _write_csv(self, record: dict[str, Any]) -> None:
        new = not self.csv.is_file() or self.csv.stat().st_size == 0
        if new:
            fields = list(record)
        else:
            with self.csv.open(encoding="utf-8", newline="") as fh:
                fields = next(csv.reader(fh), list(record))
        with self.csv.open("a", encoding="utf-8", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow({k: _clean(v) for k, v in record.items()})

    def log(self, record: dict[str, Any]) -> None:
        """Append one record (a flat dict of JSON-able values) to both files."""
        if not self.enabled:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        clean = {k: _clean(v) for k, v in record.items()}
        with self.jsonl.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(clean) + "\n")
            fh.flush()
        self._write_csv(clean)


class ProgressBar:
    """A tqdm bar over training steps showing images/s and the main losses (no-op when disabled)."""

    def __init__(self, total: int | None, initial: int = 0, enabled: bool = True) -> None:
        self._bar = tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True) if enabled else None

    def update(self, n: int, postfix: dict[str, float]) -> None:
        """Advance by ``n`` steps and show ``postfix`` (e.g. ``{"img/s": 30.1, "d": 1.2, "g": 0.4}``)."""
        if self._bar is None:
            return
        if postfix:
            self._bar.set_postfix({k: f"{v:.3g}" for k, v in postfix.items()}, refresh=False)
        if n:
            self._bar.update(n)

    def close(self) -> None:
        """Close the bar."""
        if self._bar is not None:
            self._bar.close()
