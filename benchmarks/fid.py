"""Benchmark: csagan's FID pipeline against pytorch-fid's, same images, weights and device.

Both pipelines get the same randomly initialised, test-made Inception weights (no download;
the real weights are not needed to time the network or to check that the two agree), the
same random low-resolution images (upsampled to 299 by each pipeline) and the same batch
size. Timings are interleaved (ours, theirs, ours, theirs) so that a busy machine slows
both alike. The FID between two image sets is then computed both ways and must agree to
1e-4 relative. A JSON record (hardware, versions, figures, ratio) is printed and, with
``--out``, written to a file.

    python benchmarks/fid.py --num-images 64 --size 64 --batch-size 32 --out /tmp/fid_bench.json

Requires ``pytorch-fid`` (``pip install pytorch-fid``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import sys
import time
import warnings
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import torch

from csagan.devices import cpu_name


def _pytorch_fid_features(
    model: torch.nn.Module, images: torch.Tensor, batch_size: int, device: torch.device
) -> np.ndarray:
    """pytorch-fid's own activation loop (get_activations without the image-file reading)."""
    out = np.empty((len(images), 2048), dtype=np.float32)
    start = 0
    with torch.no_grad():
        for batch in torch.split(images, batch_size):
            pred = model(batch.to(device))[0]
            out[start : start + len(batch)] = pred.squeeze(3).squeeze(2).cpu().numpy()
            start += len(batch)
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-images", type=int, default=64, help="images per pipeline, split into two sets")
    parser.add_argument("--size", type=int, default=64, help="side of the random input images")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="write the JSON record here")
    args = parser.parse_args(argv)
    if args.num_images < 4 or args.num_images % 2:
        parser.error("--num-images must be an even number >= 4")

    from pytorch_fid import fid_score as pf_score
    from pytorch_fid import inception as pf_inception

    from csagan.metrics.fid import extract_features, fid_from_features
    from csagan.metrics.inception_fid import FIDInceptionV3

    device = torch.device(args.device)
    ours = FIDInceptionV3(None, allow_random=True, seed=args.seed).to(device)
    state = {k: v.cpu() for k, v in ours.state_dict().items()}
    with mock.patch.object(pf_inception, "load_state_dict_from_url", lambda *a, **k: state):
        theirs = pf_inception.InceptionV3([3]).eval().to(device)

    gen = torch.Generator().manual_seed(args.seed)
    half = args.num_images // 2
    # Two different image sets: B is a brighter, lower-contrast version of fresh noise.
    set_a = torch.rand(half, 3, args.size, args.size, generator=gen)
    set_b = 0.25 + 0.5 * torch.rand(half, 3, args.size, args.size, generator=gen)
    warm = set_a[: min(args.batch_size, half)]

    def run_ours(images: torch.Tensor) -> Any:
        return extract_features(images, ours, batch_size=args.batch_size, device=device, progress=False)

    def run_theirs(images: torch.Tensor) -> np.ndarray:
        return _pytorch_fid_features(theirs, images, args.batch_size, device)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    run_ours(warm)
    run_theirs(warm)
    sync()
    seconds = {"ours": 0.0, "pytorch_fid": 0.0}
    feats: dict[str, list[Any]] = {"ours": [], "pytorch_fid": []}
    for images in (set_a, set_b):
        for name, fn in (("ours", run_ours), ("pytorch_fid", run_theirs)):
            t0 = time.perf_counter()
            feats[name].append(fn(images))
            sync()
            seconds[name] += time.perf_counter() - t0

    ours_a, ours_b = feats["ours"]
    pf_a, pf_b = feats["pytorch_fid"]
    max_feat_diff = float(max(np.abs(ours_a.pool - pf_a).max(), np.abs(ours_b.pool - pf_b).max()))
    t0 = time.perf_counter()
    report = fid_from_features(ours_a, ours_b)
    t_fid_ours = time.perf_counter() - t0
    with warnings.catch_warnings():  # pytorch-fid passes sqrtm's deprecated ``disp``
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        mu_a, s_a = np.mean(pf_a, axis=0), np.cov(pf_a, rowvar=False)
        mu_b, s_b = np.mean(pf_b, axis=0), np.cov(pf_b, rowvar=False)
        fid_theirs = float(pf_score.calculate_frechet_distance(mu_a, s_a, mu_b, s_b))
        t_fid_theirs = time.perf_counter() - t0
    rel = abs(report.fid - fid_theirs) / abs(fid_theirs)

    ips_ours = args.num_images / seconds["ours"]
    ips_theirs = args.num_images / seconds["pytorch_fid"]
    record: dict[str, Any] = {
        "benchmark": "fid_feature_extraction",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "hardware": {
            "device": str(device),
            "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
            "cpu_threads": torch.get_num_threads(),
            "platform": platform.platform(),
        },
        "versions": {
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "numpy": np.__version__,
        },
        "setup": {
            "num_images": args.num_images,
            "image_size": args.size,
            "batch_size": args.batch_size,
            "weights_id": ours.weights_id,
            "protocol": ours.protocol,
        },
        "images_per_second": {"ours": ips_ours, "pytorch_fid": ips_theirs},
        "ratio_ours_over_pytorch_fid": ips_ours / ips_theirs,
        "max_abs_feature_difference": max_feat_diff,
        "fid": {
            "ours": report.fid,
            "pytorch_fid": fid_theirs,
            "relative_difference": rel,
            "agree_1e-4": rel <= 1e-4,
            "ours_used_eps_offset": report.used_eps_offset,
            "ours_max_imag": report.max_imag,
            "seconds_ours": t_fid_ours,
            "seconds_pytorch_fid": t_fid_theirs,
        },
    }
    text = json.dumps(record, indent=2)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    if rel > 1e-4:
        raise SystemExit(f"FID disagreement {rel:.3g} > 1e-4 between csagan and pytorch-fid")
    return record


if __name__ == "__main__":
    main()
