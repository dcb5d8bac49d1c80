"""Generate images from the test captions of a dataset and score them (``csagan evaluate``).

One job: a trained run folder (:func:`csagan.train.run.load_run`) plus a dataset root in, a
JSON-able report out: :func:`run` (:class:`EvalConfig`, :class:`EvalPaths`), or :func:`evaluate_run`
with the same settings as keyword arguments. The metrics, each computed by the function that defines it:

========  =====================================================================================
``fid``   FID, Eq. (27), on the FID Inception's pool features
          (:func:`csagan.metrics.fid.fid_from_features`), against ``.npz`` reference statistics
          (``csagan fid-stats``) or the test images themselves.
``is``    IS, Eq. (26), over ``is_splits`` splits of the same network's 1008-way unbiased
          logits (:func:`csagan.metrics.inception_score.inception_score`).
``rprec`` R-precision with the run's own DAMSM encoders
          (:func:`csagan.metrics.rprecision.r_precision`).
``align`` ToyBirds attribute accuracy with its sanity bounds
          (:func:`csagan.evaluator.evaluate_alignment`, :func:`~csagan.evaluator.sanity_bounds`).
``dfid``  Eq. (27) on the ToyBirds evaluator's features (:func:`csagan.evaluator.domain_fid`).
``dis``   Eq. (26) on the evaluator's species head (:func:`csagan.evaluator.domain_is`).
========  =====================================================================================

Protocol (DF-GAN's, which CSA-GAN follows): ``passes`` passes over the test split; in pass
``p`` every test image ``i`` gives one generated image, from one of its ``N`` captions drawn
uniformly with ``numpy.random.default_rng([seed, p])`` (:func:`caption_plan`). Noise is DF-GAN's
truncated normal (:func:`csagan.sample.truncated_noise`, ``truncation`` 0.88). The paper's
numbers use about 10 passes (~29k images on CUB); on a CPU use ``max_images`` to score a seeded
random subset of the planned images. Generated and real images are quantised to ``uint8`` as
PNG files would store them (:func:`csagan.metrics.reference.quantize_images`) and kept in
memory (3·S² bytes each: 29k images at 256 px take about 5.7 GB).

Honest labels: the report names the Inception weights file and its SHA-256, and says whether it
is the published one (``pt_inception-2015-12-05-6726825d.pth``: SHA-256 starting with
``6726825d``). With any other file (e.g. test-made random weights) the ``fid`` entry is labelled
a Fréchet distance on non-standard features, never an FID comparable with published numbers.
"""

from csagan.evaluate.config import (
    DEFAULT_EVALUATOR_NAME,
    EVAL_PRESETS,
    METRICS,
    EvalConfig,
    EvalPaths,
    default_evaluator_path,
    eval_config,
    parse_metrics,
    resolve_evaluator_path,
)
from csagan.evaluate.plan import CaptionPlan, caption_plan, generate_images
from csagan.evaluate.report import REPORT_FORMAT, EvaluationResult, format_summary
from csagan.evaluate.runner import evaluate_run, run

__all__ = [
    "DEFAULT_EVALUATOR_NAME",
    "EVAL_PRESETS",
    "METRICS",
    "REPORT_FORMAT",
    "CaptionPlan",
    "EvalConfig",
    "EvalPaths",
    "EvaluationResult",
    "caption_plan",
    "default_evaluator_path",
    "eval_config",
    "evaluate_run",
    "format_summary",
    "generate_images",
    "parse_metrics",
    "resolve_evaluator_path",
    "run",
]
