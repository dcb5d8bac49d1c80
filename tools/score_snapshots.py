"""Score copies of a run's generator taken during training, as the reproduction study scores a run.

Each argument is a folder with ``generator.pt``, ``config.json``, ``vocab.json`` and ``damsm/`` (what
``csagan train`` writes next to its checkpoint, copied at some step). Each is evaluated with the
study's settings (domain FID, domain IS, attribute accuracy and R-precision on 1,000 generated
images, seed 0, 100 R-precision candidates, the shipped evaluator) and one JSON list, sorted by
step, is written:

    python tools/score_snapshots.py --data data/toybirds --out csagan/assets/toybirds-csagan/progress.json \
        runs/snaps/step1000 runs/snaps/step2000 runs/csagan

This is how ``csagan/assets/toybirds-csagan/progress.json`` (the shipped run's metrics against its
training length, shown in the training chapter) was made.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from csagan.evaluate import evaluate_run
from csagan.study import StudyConfig, study_metrics
from csagan.train.run import load_run

#: The study's evaluation settings (metrics, passes, R-precision candidates), from its defaults.
STUDY = StudyConfig()


def score(run_dir: Path, data: Path, images: int, seed: int) -> dict[str, object]:
    """The study's metrics for one generator folder, evaluated as :func:`csagan.study.run` does."""
    result = evaluate_run(run_dir, data, STUDY.metrics, passes=STUDY.passes, max_images=images, seed=seed,
                          rprec_candidates=STUDY.rprec_candidates, progress=False)
    return {"step": load_run(run_dir).step, "metrics": study_metrics(result.report)}


def main(argv: list[str] | None = None) -> list[dict[str, object]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="generator folders (copies of a run folder)")
    parser.add_argument("--data", type=Path, required=True, help="ToyBirds root")
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    parser.add_argument("--images", type=int, default=STUDY.eval_images, help="generated images scored per folder")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    missing = [str(r) for r in args.runs if not (r / "generator.pt").is_file()]
    if missing:
        parser.error(f"no generator.pt in {missing}; pass folders written by `csagan train` (or copies of them)")
    rows = sorted((score(r, args.data, args.images, args.seed) for r in args.runs), key=lambda r: int(r["step"]))
    args.out.write_text(json.dumps(rows, indent=2) + "\n")
    for r in rows:
        print(r["step"], r["metrics"])
    return rows


if __name__ == "__main__":
    main()
