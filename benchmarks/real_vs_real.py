"""Real-vs-real domain FID and domain IS of the ToyBirds test split at 32 and 64 px (as chapter 11 computes it).

The floor of the learning-speed scores at each image size: 2,000 evenly spaced test images read at that size
(the evaluator upsamples 32 px images to its 64 px input, as it does for a 32 px generator's), split in two
halves for the domain FID.

    python benchmarks/real_vs_real.py OUT.json
"""
import json
import sys

import numpy as np
import torch

from csagan.data.datasets import TextImageDataset
from csagan.evaluate import resolve_evaluator_path
from csagan.evaluator import domain_fid, domain_is, load_evaluator
from csagan.paths import default_toybirds_root

evaluator = load_evaluator(resolve_evaluator_path(None))
out = {}
for size in (32, 64):
    ds = TextImageDataset(default_toybirds_root(), "test", image_size=size, transform="eval")
    real = torch.stack([ds[int(i)].image for i in np.linspace(0, len(ds) - 1, 2000).round()])
    fid = domain_fid(evaluator, real[0::2], real[1::2])
    is_ = domain_is(evaluator, real)
    out[size] = {"real_vs_real_domain_fid": fid.fid, "real_domain_is": is_.mean}
    print(size, fid.format(), "|", is_.format(), flush=True)
with open(sys.argv[1], "w") as fh:
    json.dump(out, fh, indent=2)
