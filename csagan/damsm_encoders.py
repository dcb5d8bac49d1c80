"""DAMSM's image encoders (paper Eq. 4): images to region features and a global image code.

Both share one interface, ``forward(images [B,3,S,S] in [-1,1]) -> (regions [B, D, h, w],
global [B, D])``: :class:`InceptionEncoder` (AttnGAN's frozen ImageNet Inception-v3 with the
trainable projections W, W̄ of Eq. 4; :func:`load_attngan_image_encoder` reads AttnGAN's released
file) and :class:`SmallCNNEncoder` (a small, fully trainable CNN for CPU runs). The losses that use
them are in :mod:`csagan.damsm`.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "IMAGENET_INCEPTION_FILE",
    "IMAGENET_INCEPTION_URL",
    "INCEPTION_LAYERS",
    "InceptionEncoder",
    "SmallCNNEncoder",
    "load_attngan_image_encoder",
]


def _check_images(images: Tensor) -> None:
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(
            f"images must have shape [B, 3, S, S] with values in [-1, 1], got {tuple(images.shape)}."
        )


INCEPTION_LAYERS: tuple[str, ...] = (
    "Conv2d_1a_3x3",
    "Conv2d_2a_3x3",
    "Conv2d_2b_3x3",
    "Conv2d_3b_1x1",
    "Conv2d_4a_3x3",
    "Mixed_5b",
    "Mixed_5c",
    "Mixed_5d",
    "Mixed_6a",
    "Mixed_6b",
    "Mixed_6c",
    "Mixed_6d",
    "Mixed_6e",
    "Mixed_7a",
    "Mixed_7b",
    "Mixed_7c",
)

IMAGENET_INCEPTION_FILE = "inception_v3_google-0cc3c7bd.pth"
IMAGENET_INCEPTION_URL = f"https://download.pytorch.org/models/{IMAGENET_INCEPTION_FILE}"


def _fill_batchnorm_counters(state: dict[str, Tensor], module: nn.Module) -> dict[str, Tensor]:
    """Add ``num_batches_tracked`` entries that files saved by old PyTorch (<0.4.1) lack."""
    state = dict(state)
    for key in module.state_dict():
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = torch.tensor(0, dtype=torch.long)
    return state


class InceptionEncoder(nn.Module):
    """AttnGAN's DAMSM image encoder (Eq. 4): frozen Inception-v3 plus trainable W and W̄.

    Local features f are Mixed_6e's output (768×17×17, n = 289 regions), the global feature f̄
    is Mixed_7c's output average-pooled to 2048. ``emb_features`` (1×1 conv, no bias) is W and
    ``emb_cnn_code`` (linear) is W̄; both start uniform in ±0.1 and are the only trainable
    parameters. The Inception layers are attributes under their torchvision names, so the state
    dict has AttnGAN's ``image_encoder200.pth`` layout and loads with ``strict=True``.

    Input: images in [-1, 1], any size, bilinearly resized to 299×299 (``align_corners=False``).
    Like AttnGAN, no ImageNet mean/std normalisation is applied: Google's Inception-v3 weights
    (torchvision's ``inception_v3_google``) were trained on inputs in [-1, 1] — torchvision's
    ``transform_input=True`` exists to map ImageNet-normalised tensors back to that range.
    The frozen backbone always runs in eval mode (BatchNorm uses its running statistics), also
    after ``.train()``; AttnGAN's pretraining script put it in train mode, which we do not copy.
    Gradients flow through the backbone to the images (needed for the generator's L_DAMSM).
    """

    Conv2d_1a_3x3: nn.Module
    Conv2d_2a_3x3: nn.Module
    Conv2d_2b_3x3: nn.Module
    Conv2d_3b_1x1: nn.Module
    Conv2d_4a_3x3: nn.Module
    Mixed_5b: nn.Module
    Mixed_5c: nn.Module
    Mixed_5d: nn.Module
    Mixed_6a: nn.Module
    Mixed_6b: nn.Module
    Mixed_6c: nn.Module
    Mixed_6d: nn.Module
    Mixed_6e: nn.Module
    Mixed_7a: nn.Module
    Mixed_7b: nn.Module
    Mixed_7c: nn.Module

    def __init__(self, emb_dim: int = 256, input_size: int = 299) -> None:
        super().__init__()
        from torchvision.models import inception_v3

        if emb_dim < 1:
            raise ValueError(f"emb_dim must be >= 1, got {emb_dim}.")
        if input_size < 75:
            raise ValueError(f"input_size must be >= 75 (Inception-v3's minimum), got {input_size}.")
        self.emb_dim = emb_dim
        self.input_size = input_size
        net = inception_v3(weights=None, aux_logits=False, init_weights=False)
        for name in INCEPTION_LAYERS:
            setattr(self, name, getattr(net, name))
        self.emb_features = nn.Conv2d(768, emb_dim, kernel_size=1, bias=False)
        self.emb_cnn_code = nn.Linear(2048, emb_dim)
        nn.init.uniform_(self.emb_features.weight, -0.1, 0.1)
        nn.init.uniform_(self.emb_cnn_code.weight, -0.1, 0.1)
        for param in self.backbone_parameters():
            param.requires_grad_(False)
        self.train()  # the module's default mode; the backbone is put in eval mode by train()

    def backbone_modules(self) -> list[nn.Module]:
        """The frozen Inception layers, in order."""
        return [getattr(self, name) for name in INCEPTION_LAYERS]

    def backbone_parameters(self) -> list[nn.Parameter]:
        """Parameters of the frozen Inception layers."""
        return [p for m in self.backbone_modules() for p in m.parameters()]

    def train(self, mode: bool = True) -> InceptionEncoder:
        """Set the projections' mode; the frozen backbone stays in eval mode."""
        super().train(mode)
        for module in self.backbone_modules():
            module.eval()
        return self

    def backbone_features(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """Inception features of Eq. (4): ``(f [B, 768, 17, 17], f̄ [B, 2048])`` at 299 px input."""
        _check_images(images)
        x = F.interpolate(
            images, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False
        )
        x = self.Conv2d_1a_3x3(x)
        x = self.Conv2d_2a_3x3(x)
        x = self.Conv2d_2b_3x3(x)
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_3b_1x1(x)
        x = self.Conv2d_4a_3x3(x)
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for name in INCEPTION_LAYERS[5:13]:  # Mixed_5b … Mixed_6e
            x = getattr(self, name)(x)
        local = x
        for name in INCEPTION_LAYERS[13:]:  # Mixed_7a … Mixed_7c
            x = getattr(self, name)(x)
        global_feat = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return local, global_feat

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """``images`` [B, 3, S, S] in [-1, 1] → ``(regions v [B, D, 17, 17], global v̄ [B, D])``, Eq. (4)."""
        local, global_feat = self.backbone_features(images)
        return self.emb_features(local), self.emb_cnn_code(global_feat)

    @classmethod
    def from_imagenet(cls, path: str | Path, emb_dim: int = 256) -> InceptionEncoder:
        """Build an encoder whose backbone holds ImageNet weights read from a local file.

        ``path`` is torchvision's ``inception_v3_google-0cc3c7bd.pth`` or any torchvision
        ``inception_v3`` state dict; ``fc.*`` and ``AuxLogits.*`` are ignored. Nothing is
        downloaded. The projections keep their random initialisation.

        Raises:
            FileNotFoundError: ``path`` does not exist.
            ValueError: the file lacks Inception layers or their shapes differ.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"ImageNet Inception-v3 weights not found: {path}. Download torchvision's "
                f"{IMAGENET_INCEPTION_FILE} from {IMAGENET_INCEPTION_URL} on a machine with internet "
                f"(torch.hub keeps it in {Path(torch.hub.get_dir()) / 'checkpoints'}) and pass its path."
            )
        state = torch.load(path, weights_only=True, map_location="cpu")
        if not isinstance(state, dict):
            raise ValueError(f"{path} does not hold a state dict (found {type(state).__name__}).")
        state = {k.removeprefix("module."): v for k, v in state.items()}
        model = cls(emb_dim=emb_dim)
        wanted = {k for k in model.state_dict() if k.split(".")[0] in INCEPTION_LAYERS}
        backbone = _fill_batchnorm_counters(
            {k: v for k, v in state.items() if k in wanted}, model
        )
        missing = sorted(wanted - set(backbone))
        if missing:
            raise ValueError(
                f"{path} is not a torchvision Inception-v3 state dict: {len(missing)} backbone keys "
                f"are missing, e.g. {missing[:3]}. Use {IMAGENET_INCEPTION_FILE}."
            )
        own = model.state_dict()
        bad = [k for k in backbone if backbone[k].shape != own[k].shape]
        if bad:
            raise ValueError(f"{path}: tensor shapes differ from Inception-v3 for {bad[:3]}.")
        model.load_state_dict(backbone, strict=False)
        return model


def load_attngan_image_encoder(path: str | Path) -> InceptionEncoder:
    """Load AttnGAN's ``image_encoder200.pth``-format state dict into an :class:`InceptionEncoder`.

    The embedding size D is read from ``emb_cnn_code.weight``; the load is strict (besides
    BatchNorm ``num_batches_tracked`` counters that files from old PyTorch lack). Returned in
    eval mode on the CPU.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file is not such a state dict.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"Image encoder weights not found: {path}. Use AttnGAN's pretrained DAMSM image encoder "
            "`image_encoder200.pth` (CUB) or `image_encoder100.pth` (COCO), released with AttnGAN and "
            "DF-GAN as DAMSMencoders, or train one with `csagan pretrain-damsm`."
        )
    state = torch.load(path, weights_only=True, map_location="cpu")
    if not isinstance(state, dict) or "emb_cnn_code.weight" not in state:
        raise ValueError(
            f"{path} is not an AttnGAN image-encoder state dict (no 'emb_cnn_code.weight' key)."
        )
    model = InceptionEncoder(emb_dim=int(state["emb_cnn_code.weight"].shape[0]))
    model.load_state_dict(_fill_batchnorm_counters(state, model), strict=True)
    return model.eval()


def _down(in_ch: int, out_ch: int, norm: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(in_ch, out_ch, 4, 2, 1, bias=not norm)]
    if norm:
        layers.append(nn.BatchNorm2d(out_ch))
    layers.append(nn.LeakyReLU(0.2, inplace=True))
    return nn.Sequential(*layers)


class SmallCNNEncoder(nn.Module):
    """A small, fully trainable image encoder for CPU runs, with the DAMSM encoder interface.

    Three stride-2 conv stages give region features at ``image_size / 8`` (8×8 = 64 regions for
    64 px), projected by ``emb_features`` (1×1 conv, W of Eq. 4); a fourth stage, global average
    pooling and ``emb_cnn_code`` (linear, W̄) give the global code. Inputs of another size are
    bilinearly resized to ``image_size``.
    """

    def __init__(self, image_size: int = 64, ndf: int = 32, emb_dim: int = 256) -> None:
        super().__init__()
        if image_size < 16 or image_size % 16 != 0:
            raise ValueError(f"image_size must be a multiple of 16 and >= 16, got {image_size}.")
        if ndf < 1 or emb_dim < 1:
            raise ValueError(f"ndf and emb_dim must be >= 1, got ndf={ndf}, emb_dim={emb_dim}.")
        self.image_size = image_size
        self.emb_dim = emb_dim
        self.features = nn.Sequential(
            _down(3, ndf, norm=False), _down(ndf, 2 * ndf), _down(2 * ndf, 4 * ndf)
        )
        self.code = _down(4 * ndf, 8 * ndf)
        self.emb_features = nn.Conv2d(4 * ndf, emb_dim, kernel_size=1, bias=False)
        self.emb_cnn_code = nn.Linear(8 * ndf, emb_dim)
        nn.init.uniform_(self.emb_features.weight, -0.1, 0.1)
        nn.init.uniform_(self.emb_cnn_code.weight, -0.1, 0.1)

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """``images`` [B, 3, S, S] in [-1, 1] → ``(regions [B, D, S/8, S/8], global [B, D])``."""
        _check_images(images)
        if images.shape[-2:] != (self.image_size, self.image_size):
            images = F.interpolate(
                images, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False
            )
        x = self.features(images)
        regions = self.emb_features(x)
        code = F.adaptive_avg_pool2d(self.code(x), 1).flatten(1)
        return regions, self.emb_cnn_code(code)
