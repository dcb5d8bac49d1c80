"""The Inception-v3 networks used for FID (Eq. 27) and IS (Eq. 26).

Two *protocols* are offered; every number computed with them carries the protocol name
and a ``weights_id`` string so that results from different networks are never mixed up.

``protocol="standard"`` (use this for numbers comparable with the literature)
    The TensorFlow 2015 Inception graph that the original FID/IS code used, as ported to
    PyTorch by pytorch-fid (weights file ``pt_inception-2015-12-05-6726825d.pth``). Its
    layout is torchvision's ``Inception3`` with 1008 classes and four patched block types:

    * ``Mixed_5b``–``Mixed_5d`` (:class:`FIDInceptionA`), ``Mixed_6b``–``Mixed_6e``
      (:class:`FIDInceptionC`) and ``Mixed_7b`` (:class:`FIDInceptionE1`) average-pool
      their pool branch with ``count_include_pad=False`` (TF's ``SAME`` average pool);
    * ``Mixed_7c`` (:class:`FIDInceptionE2`) max-pools its pool branch.

    The state-dict keys and shapes are those of pytorch-fid's ``fid_inception_v3()``.

``protocol="dfgan"`` (non-standard, clearly labelled)
    DF-GAN's evaluation code feeds images to torchvision's *ImageNet* Inception-v3
    (weights file ``inception_v3_google-0cc3c7bd.pth``, 1000 classes, unpatched blocks,
    no ``transform_input``). Its FIDs are **not comparable** with pytorch-fid's.

Pre-processing (both protocols): images in ``[0, 1]`` (or ``[-1, 1]`` with
``input_range="symmetric"``, or ``uint8``) are resized bilinearly to 299×299
(``align_corners=False``; DF-GAN's ``transforms.Resize`` additionally anti-aliases when
shrinking, which the ``dfgan`` protocol mirrors). The standard protocol then maps them to
``[-1, 1]`` by ``2x − 1`` (pytorch-fid); the ``dfgan`` protocol maps ``[0, 1]`` per channel by
``x·(std/0.5) + (mean − 0.5)/0.5`` with ImageNet's mean and std, as DF-GAN's ``models/inception.py``
does with its default ``normalize_input=True``.

Outputs (:meth:`FIDInceptionV3.features`): the 2048-d global-average-pool features (FID),
and the class logits. Two logit conventions exist:

* ``logits_unbiased`` = ``pool @ W^T`` — the fully connected layer **without its bias**.
  This is what the original TF Inception Score code (``softmax/logits/MatMul``) and
  torch-fidelity (``logits_unbiased``, its IS default) use; it is our IS default.
* ``logits`` = ``pool @ W^T + b`` — the full FC output (torch-fidelity's ``logits``).

pytorch-fid itself computes no IS and exposes no logits.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.inception import Inception3, InceptionA, InceptionC, InceptionE

from csagan.safe_load import load_torch_file

Protocol = Literal["standard", "dfgan"]

#: ImageNet channel mean and standard deviation (torchvision), used by DF-GAN's input mapping.
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
InputRange = Literal["unit", "symmetric"]

FID_WEIGHTS_FILENAME = "pt_inception-2015-12-05-6726825d.pth"
FID_WEIGHTS_URL = "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/" + FID_WEIGHTS_FILENAME
DFGAN_WEIGHTS_FILENAME = "inception_v3_google-0cc3c7bd.pth"
DFGAN_WEIGHTS_URL = "https://download.pytorch.org/models/" + DFGAN_WEIGHTS_FILENAME
FID_WEIGHTS_ENV = "CSAGAN_FID_WEIGHTS"
DFGAN_WEIGHTS_ENV = "CSAGAN_DFGAN_INCEPTION_WEIGHTS"
RANDOM_WEIGHTS_ID = "random (test only)"
INCEPTION_SIZE = 299

_PROTOCOLS: dict[str, tuple[str, str, str, int]] = {
    # protocol: (file name, env var, download URL, number of classes)
    "standard": (FID_WEIGHTS_FILENAME, FID_WEIGHTS_ENV, FID_WEIGHTS_URL, 1008),
    "dfgan": (DFGAN_WEIGHTS_FILENAME, DFGAN_WEIGHTS_ENV, DFGAN_WEIGHTS_URL, 1000),
}


class InceptionOutputs(NamedTuple):
    """What :meth:`FIDInceptionV3.features` returns (all float32, one row per image)."""

    pool: Tensor
    """(N, 2048) global-average-pool features: the FID features of Eq. (27)."""
    logits_unbiased: Tensor
    """(N, C) ``pool @ W^T`` (no FC bias): the IS logits of Eq. (26), TF/torch-fidelity style."""
    logits: Tensor
    """(N, C) ``pool @ W^T + b``: the full FC output."""


# --------------------------------------------------------------------------------------
# Patched blocks of the TF 2015 graph (the forward passes differ only in the pool branch)
# --------------------------------------------------------------------------------------
def _avg_pool_same(x: Tensor) -> Tensor:
    """3×3 stride-1 average pool that ignores padding (TF ``SAME`` semantics)."""
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class FIDInceptionA(InceptionA):
    """``Mixed_5b``–``Mixed_5d`` of the TF graph: pool branch averages without the padding."""

    def forward(self, x: Tensor) -> Tensor:
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(_avg_pool_same(x))
        return torch.cat([b1, b5, b3, bp], dim=1)


class FIDInceptionC(InceptionC):
    """``Mixed_6b``–``Mixed_6e`` of the TF graph: pool branch averages without the padding."""

    def forward(self, x: Tensor) -> Tensor:
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d = self.branch7x7dbl_1(x)
        d = self.branch7x7dbl_3(self.branch7x7dbl_2(d))
        d = self.branch7x7dbl_5(self.branch7x7dbl_4(d))
        bp = self.branch_pool(_avg_pool_same(x))
        return torch.cat([b1, b7, d, bp], dim=1)


class _FIDInceptionE(InceptionE):
    """Shared branches of ``Mixed_7b``/``Mixed_7c``; subclasses choose the pool branch."""

    def _pool(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        b1 = self.branch1x1(x)
        t = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(t), self.branch3x3_2b(t)], dim=1)
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d)], dim=1)
        bp = self.branch_pool(self._pool(x))
        return torch.cat([b1, b3, bd, bp], dim=1)


class FIDInceptionE1(_FIDInceptionE):
    """``Mixed_7b`` of the TF graph: pool branch averages without the padding."""

    def _pool(self, x: Tensor) -> Tensor:
        return _avg_pool_same(x)


class FIDInceptionE2(_FIDInceptionE):
    """``Mixed_7c`` of the TF graph: the pool branch is a 3×3 stride-1 *max* pool."""

    def _pool(self, x: Tensor) -> Tensor:
        return F.max_pool2d(x, kernel_size=3, stride=1, padding=1)


# --------------------------------------------------------------------------------------
# Weights: finding, hashing, loading
# --------------------------------------------------------------------------------------
def default_weights_locations(protocol: Protocol = "standard") -> list[Path]:
    """Places searched (in order) when no weights path is given: the env var, then the hub cache."""
    filename, env, _, _ = _protocol_info(protocol)
    places: list[Path] = []
    if os.environ.get(env):
        places.append(Path(os.environ[env]).expanduser())
    places.append(Path(torch.hub.get_dir()) / "checkpoints" / filename)
    return places


def resolve_weights_path(weights: str | os.PathLike[str] | None, protocol: Protocol = "standard") -> Path:
    """Return the Inception weights file for ``protocol``.

    Args:
        weights: an explicit file; ``None`` searches ``$CSAGAN_FID_WEIGHTS`` (or
            ``$CSAGAN_DFGAN_INCEPTION_WEIGHTS`` for ``dfgan``) and then
            ``torch.hub.get_dir()/checkpoints/<file name>``.
        protocol: ``"standard"`` or ``"dfgan"``.

    Raises:
        FileNotFoundError: naming the file, every place searched and where to get it.
    """
    filename, env, url, _ = _protocol_info(protocol)
    places = [Path(weights).expanduser()] if weights is not None else default_weights_locations(protocol)
    for place in places:
        if place.is_file():
            return place
    searched = "\n  ".join(str(p) for p in places)
    source = (
        "the pytorch-fid GitHub release 'fid_weights'"
        if protocol == "standard"
        else "torchvision's ImageNet Inception-v3 weights"
    )
    raise FileNotFoundError(
        f"Inception weights file {filename!r} (protocol={protocol!r}) not found. Searched:\n  {searched}\n"
        f"Download it once ({source}) from {url} and either pass its path, set ${env} to it, "
        f"or put it in {Path(torch.hub.get_dir()) / 'checkpoints'}. "
        "This project never substitutes random weights for missing ones."
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def published_hash_prefix(protocol: str = "standard") -> str:
    """The SHA-256 prefix in the protocol's published file name (``"6726825d"`` for ``standard``)."""
    return _protocol_info(protocol)[0].rsplit("-", 1)[-1].split(".")[0]


def _protocol_info(protocol: str) -> tuple[str, str, str, int]:
    if protocol not in _PROTOCOLS:
        raise ValueError(f"protocol must be one of {sorted(_PROTOCOLS)}, got {protocol!r}")
    return _PROTOCOLS[protocol]


# --------------------------------------------------------------------------------------
# The network
# --------------------------------------------------------------------------------------
class FIDInceptionV3(Inception3):
    """Inception-v3 feature extractor for FID (Eq. 27) and IS (Eq. 26).

    Subclasses torchvision's :class:`~torchvision.models.inception.Inception3` so that the
    state-dict keys are exactly those of the weight files (``Conv2d_1a_3x3.conv.weight``,
    …, ``fc.bias``). The model is frozen and in eval mode.

    Args:
        weights: path of the weights file, ``"auto"`` to search the default places
            (:func:`default_weights_locations`), or ``None`` for random weights, which
            additionally requires ``allow_random=True`` (tests only; labelled
            ``weights_id == "random (test only)"``).
        protocol: ``"standard"`` (pytorch-fid's TF-2015 network) or ``"dfgan"``
            (torchvision ImageNet network, DF-GAN's non-standard FID).
        allow_random: permit ``weights=None``.
        input_range: ``"unit"`` for images in [0, 1], ``"symmetric"`` for [−1, 1];
            ``uint8`` images are always read as 0..255.
        seed: seed of the random initialisation (only with ``weights=None``).
        check_range: raise if float inputs leave the declared range (by > 1e-3).

    Raises:
        FileNotFoundError: weights requested but not found (see :func:`resolve_weights_path`).
        ValueError: bad protocol/input range, random weights without ``allow_random``, or a
            weights file whose keys/shapes do not match the protocol's network.
    """

    def __init__(
        self,
        weights: str | os.PathLike[str] | None = "auto",
        *,
        protocol: Protocol = "standard",
        allow_random: bool = False,
        input_range: InputRange = "unit",
        seed: int = 0,
        check_range: bool = True,
    ) -> None:
        num_classes = _protocol_info(protocol)[3]
        if input_range not in ("unit", "symmetric"):
            raise ValueError(f"input_range must be 'unit' ([0,1]) or 'symmetric' ([-1,1]), got {input_range!r}")
        super().__init__(num_classes=num_classes, aux_logits=False, transform_input=False, init_weights=False)
        if protocol == "standard":
            self.Mixed_5b = FIDInceptionA(192, pool_features=32)
            self.Mixed_5c = FIDInceptionA(256, pool_features=64)
            self.Mixed_5d = FIDInceptionA(288, pool_features=64)
            self.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
            self.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
            self.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
            self.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
            self.Mixed_7b = FIDInceptionE1(1280)
            self.Mixed_7c = FIDInceptionE2(2048)
        self.protocol: str = protocol
        self.input_range: str = input_range
        self.check_range = check_range
        self.weights_path: Path | None
        if weights is None:
            if not allow_random:
                raise ValueError(
                    "weights=None would give a randomly initialised Inception whose FID/IS are "
                    "meaningless; pass a weights file (or 'auto'), or allow_random=True in tests only"
                )
            randomize_inception_(self, torch.Generator().manual_seed(seed))
            self.weights_path = None
            self.weights_sha256: str | None = None
            self.weights_id: str = RANDOM_WEIGHTS_ID
        else:
            path = resolve_weights_path(None if weights == "auto" else weights, protocol)
            self.load_weights_file(path)
        self.eval()
        self.requires_grad_(False)

    # -- weights -----------------------------------------------------------------------
    def load_weights_file(self, path: str | os.PathLike[str]) -> None:
        """Load a weights file (``torch.load(weights_only=True)``) and set ``weights_id``."""
        path = Path(path)
        filename = _protocol_info(self.protocol)[0]
        fix = f"pass the Inception state dict {filename!r} (pytorch-fid's release) as --fid-weights"
        state = load_torch_file(path, what="an Inception weights file", fix=fix)
        if not isinstance(state, dict):
            raise ValueError(f"{path} does not hold a state dict (it holds a {type(state).__name__}); {fix}")
        state = {k: v for k, v in state.items() if not k.startswith("AuxLogits.")}
        own = self.state_dict()
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        bad_shape = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
        if missing or unexpected or bad_shape:
            raise ValueError(
                f"{path} is not a {self.protocol!r}-protocol Inception state dict (expected {filename!r}): "
                f"missing {missing[:3]}, unexpected {unexpected[:3]}, wrong shape {bad_shape[:3]}"
            )
        self.load_state_dict(state)
        digest = _sha256(path)
        expected_prefix = published_hash_prefix(self.protocol)
        if path.name == filename and not digest.startswith(expected_prefix):
            warnings.warn(
                f"{path} has sha256 {digest[:12]}…, not the published {expected_prefix}…: the file "
                "is corrupt or different, so its FIDs are not comparable with published ones",
                stacklevel=2,
            )
        self.weights_path = path
        self.weights_sha256 = digest
        self.weights_id = f"{path.name} sha256:{digest[:12]}"

    @property
    def is_published_weights(self) -> bool:
        """True when the loaded file is the published one of this protocol: its SHA-256 starts
        with the hash in the published file name (``6726825d`` for pytorch-fid's
        ``pt_inception-2015-12-05-6726825d.pth``; torch hub's naming rule). False for random
        weights and for any other file, whatever its name."""
        return self.weights_sha256 is not None and self.weights_sha256.startswith(
            published_hash_prefix(self.protocol)
        )

    def weights_info(self) -> dict[str, object]:
        """What produced this network's numbers, for reports (JSON-able).

        Keys: ``protocol``, ``weights_path``, ``weights_id``, ``sha256``, ``published_file``
        (the protocol's published file name), ``is_published_weights`` and a one-line ``label``
        that says whether FIDs from this network are comparable with published ones.
        """
        filename = _protocol_info(self.protocol)[0]
        if self.is_published_weights:
            label = (
                f"standard FID Inception ({filename})"
                if self.protocol == "standard"
                else f"DF-GAN protocol: torchvision ImageNet Inception ({filename}); "
                "NOT comparable with pytorch-fid FIDs"
            )
        else:
            what = "random test weights" if self.weights_sha256 is None else f"{self.weights_id}"
            label = (
                f"NON-STANDARD weights ({what}, not {filename}): a Fréchet distance on these features "
                "is not an FID comparable with published numbers"
            )
        return {
            "protocol": self.protocol,
            "weights_path": None if self.weights_path is None else str(self.weights_path),
            "weights_id": self.weights_id,
            "sha256": self.weights_sha256,
            "published_file": filename,
            "is_published_weights": self.is_published_weights,
            "label": label,
        }

    # -- forward -----------------------------------------------------------------------
    def preprocess(self, images: Tensor) -> Tensor:
        """Map images to the network input: resize to 299² (bilinear), then the protocol's value map."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must have shape (N, 3, H, W), got {tuple(images.shape)}")
        if images.dtype == torch.uint8:
            x = images.float() / 255.0
            lo = 0.0
        elif images.is_floating_point():
            x = images.float()
            lo = 0.0 if self.input_range == "unit" else -1.0
            if self.check_range and x.numel() > 0:
                mn, mx = torch.aminmax(x)
                if float(mn) < lo - 1e-3 or float(mx) > 1.0 + 1e-3:
                    raise ValueError(
                        f"image values span [{float(mn):.3f}, {float(mx):.3f}] but input_range="
                        f"{self.input_range!r} expects [{lo:g}, 1]; pass input_range='symmetric' for "
                        "[-1, 1] images or rescale them"
                    )
        else:
            raise ValueError(f"images must be float or uint8, got {images.dtype}")
        if x.shape[-2:] != (INCEPTION_SIZE, INCEPTION_SIZE):
            x = F.interpolate(
                x,
                size=(INCEPTION_SIZE, INCEPTION_SIZE),
                mode="bilinear",
                align_corners=False,
                antialias=self.protocol == "dfgan",
            )
        if self.protocol == "dfgan":
            # DF-GAN's models/inception.py (normalize_input=True): [0, 1] -> x·(std/0.5) + (mean−0.5)/0.5
            # per channel, torchvision's transform_input written for [0, 1] images.
            unit = x if lo == 0.0 else (x + 1.0) / 2.0
            mean = torch.tensor(IMAGENET_MEAN, dtype=unit.dtype, device=unit.device).view(1, 3, 1, 1)
            std = torch.tensor(IMAGENET_STD, dtype=unit.dtype, device=unit.device).view(1, 3, 1, 1)
            return unit * (std / 0.5) + (mean - 0.5) / 0.5
        if lo == 0.0:
            x = 2.0 * x - 1.0
        return x

    def pool_features(self, x: Tensor) -> Tensor:
        """(N, 3, 299, 299) network input in [−1, 1] → (N, 2048) pool features."""
        x = self.Conv2d_1a_3x3(x)
        x = self.Conv2d_2a_3x3(x)
        x = self.Conv2d_2b_3x3(x)
        x = self.maxpool1(x)
        x = self.Conv2d_3b_1x1(x)
        x = self.Conv2d_4a_3x3(x)
        x = self.maxpool2(x)
        x = self.Mixed_5b(x)
        x = self.Mixed_5c(x)
        x = self.Mixed_5d(x)
        x = self.Mixed_6a(x)
        x = self.Mixed_6b(x)
        x = self.Mixed_6c(x)
        x = self.Mixed_6d(x)
        x = self.Mixed_6e(x)
        x = self.Mixed_7a(x)
        x = self.Mixed_7b(x)
        x = self.Mixed_7c(x)
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)

    def features(self, images: Tensor) -> InceptionOutputs:
        """Images → :class:`InceptionOutputs` (pool features and both logit conventions)."""
        pool = self.pool_features(self.preprocess(images)).float()
        unbiased = pool @ self.fc.weight.float().t()
        return InceptionOutputs(pool, unbiased, unbiased + self.fc.bias.float())

    def forward(self, images: Tensor) -> Tensor:  # type: ignore[override]
        """Images → (N, 2048) pool features (the FID features)."""
        return self.pool_features(self.preprocess(images))


def randomize_inception_(model: nn.Module, generator: torch.Generator) -> nn.Module:
    """Fill ``model`` with random but numerically tame weights (tests only).

    Convolutions get He-normal weights; batch-norm scales, shifts and running statistics
    are drawn near identity so that activations neither explode nor vanish over ~90 layers.
    Uses only ``generator`` (no global RNG).
    """
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Conv2d):
                fan_in = module.in_channels * module.kernel_size[0] * module.kernel_size[1]
                module.weight.normal_(0.0, (2.0 / fan_in) ** 0.5, generator=generator)
            elif isinstance(module, nn.BatchNorm2d):
                assert module.running_mean is not None and module.running_var is not None
                module.weight.uniform_(0.75, 1.25, generator=generator)
                module.bias.normal_(0.0, 0.1, generator=generator)
                module.running_mean.normal_(0.0, 0.1, generator=generator)
                module.running_var.uniform_(0.75, 1.25, generator=generator)
            elif isinstance(module, nn.Linear):
                module.weight.normal_(0.0, module.in_features**-0.5, generator=generator)
                if module.bias is not None:
                    module.bias.normal_(0.0, 0.1, generator=generator)
    return model
