"""ToyBirds attribute evaluator: exact text-image alignment metrics (complements Eqs. (26)-(27)).

FID (Eq. 27) and IS (Eq. 26) measure image distributions; they cannot tell whether an image
shows what its caption says. ToyBirds (:mod:`csagan.data.toybirds`) knows every image's
attributes and, for every caption, which attributes it mentions (``attributes.jsonl``). A
small CNN trained to read those attributes back from images (:class:`AttributeEvaluator`)
then measures alignment exactly:

* **attribute accuracy** - mean over images of the share of the attributes its caption
  mentions that the classifier predicts with the mentioned value (:func:`evaluate_alignment`);
  also per attribute and pooled over all mentions;
* **sanity bounds** - the same metric on real held-out images with their own captions (the
  ceiling the classifier allows) and with captions of other images (chance level), printed
  with every report (:func:`sanity_bounds`);
* **domain FID** - Eq. (27) on the evaluator's penultimate features (:func:`domain_fid`,
  reusing :func:`csagan.metrics.fid.frechet_distance`);
* **domain IS** - Eq. (26) on the evaluator's species head (:func:`domain_is`, reusing
  :func:`csagan.metrics.inception_score.inception_score`).

The package has three layers, one job per module:

* **model** - :mod:`~csagan.evaluator.model` (the network, :class:`AttributeEvaluator`) and
  :mod:`~csagan.evaluator.weights_io` (its weights file: :func:`save_evaluator`,
  :func:`load_evaluator`);
* **training** - :mod:`~csagan.evaluator.training` (:func:`train_evaluator` on a ToyBirds
  dataset's train split, optionally with :func:`render_random_birds`; the choice of training
  data is documented there);
* **metrics** - :mod:`~csagan.evaluator.alignment` (attribute accuracy and its sanity bounds)
  and :mod:`~csagan.evaluator.domain` (domain FID and IS).

Images everywhere are float tensors ``[N, 3, H, W]`` in ``[-1, 1]`` (the csagan convention;
``uint8`` tensors are converted), resized to the evaluator's ``image_size`` when needed.
"""

from csagan.evaluator.alignment import (
    AlignmentReport,
    SanityBounds,
    alignment_from_predictions,
    caption_mentions,
    evaluate_alignment,
    sanity_bounds,
)
from csagan.evaluator.domain import DomainFIDReport, DomainISReport, domain_fid, domain_is
from csagan.evaluator.model import AttributeEvaluator, EvaluatorOutput, EvaluatorPredictions
from csagan.evaluator.training import eval_view, render_random_birds, train_evaluator
from csagan.evaluator.weights_io import EVALUATOR_FORMAT, TRAIN_COMMAND, load_evaluator, save_evaluator

__all__ = [
    "EVALUATOR_FORMAT",
    "TRAIN_COMMAND",
    "AlignmentReport",
    "AttributeEvaluator",
    "DomainFIDReport",
    "DomainISReport",
    "EvaluatorOutput",
    "EvaluatorPredictions",
    "SanityBounds",
    "alignment_from_predictions",
    "caption_mentions",
    "domain_fid",
    "domain_is",
    "eval_view",
    "evaluate_alignment",
    "load_evaluator",
    "render_random_birds",
    "sanity_bounds",
    "save_evaluator",
    "train_evaluator",
]
