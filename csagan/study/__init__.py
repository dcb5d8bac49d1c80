"""The reproduction study: CSA-GAN against its ablations and baselines (paper Tables 1, 3 and 4).

Train every variant for the same image budget and several seeds, score each run at several budgets,
write one JSON file per run, and turn those files into the table and the claim-by-claim verdicts
that the book's reproduction chapter shows.

* :mod:`csagan.study.config` — the variants, the paper's claims and numbers, and the protocol
  (:class:`StudyConfig`, its presets :data:`STUDY_PRESETS`, :func:`study_config`) and :class:`StudyPaths`.
* :mod:`csagan.study.runner` — :func:`run` (config, paths): train, snapshot and score; resumable.
* :mod:`csagan.study.parallel` — :func:`~csagan.study.parallel.run_parallel`: several runs at once,
  one process each (``csagan study run --jobs N``).
* :mod:`csagan.study.scoring` — how one generator is scored (:func:`score_run`).
* :mod:`csagan.study.verdicts` — :func:`summarize`, :func:`judge_claims`, :func:`markdown_table`,
  at the end of the runs or at any scored budget (:func:`results_at`).
* :mod:`csagan.study.figures` — the same captions and noise drawn by every variant (PNG files).
"""

from csagan.study.config import (
    CLAIMS,
    METRIC_KEYS,
    PAPER,
    STUDY_PRESETS,
    STUDY_VARIANTS,
    Claim,
    StudyConfig,
    StudyPaths,
    protocol_of,
    study_config,
)
from csagan.study.runner import (
    POINTS_FILE,
    finished,
    mask_source_dir,
    pending,
    result_path,
    retrained_for_masks,
    run,
    run_dir,
    run_folder_finished,
    run_one,
    snapshot_dir,
)
from csagan.study.scoring import CSA_CAPTIONS, first_caption_codes, other_caption_accuracy, score_run, study_metrics
from csagan.study.verdicts import (
    Verdict,
    budget_verdict_table,
    budgets,
    judge,
    judge_claims,
    load_results,
    markdown_table,
    results_at,
    summarize,
)

__all__ = [
    "CLAIMS",
    "CSA_CAPTIONS",
    "METRIC_KEYS",
    "PAPER",
    "POINTS_FILE",
    "STUDY_PRESETS",
    "STUDY_VARIANTS",
    "Claim",
    "StudyConfig",
    "StudyPaths",
    "Verdict",
    "budget_verdict_table",
    "budgets",
    "finished",
    "first_caption_codes",
    "judge",
    "judge_claims",
    "load_results",
    "markdown_table",
    "mask_source_dir",
    "other_caption_accuracy",
    "pending",
    "protocol_of",
    "result_path",
    "results_at",
    "retrained_for_masks",
    "run",
    "run_dir",
    "run_folder_finished",
    "run_one",
    "score_run",
    "snapshot_dir",
    "study_config",
    "study_metrics",
    "summarize",
]
