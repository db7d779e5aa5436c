"""The small CNN both trained models see images through: visual tokens from several feature-map resolutions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch import nn

#: Per-channel mean and spread of the pixels (ImageNet's), applied before the CNN.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class TrunkConfig:
    """Shape of the trunk. Its token grids are image_size/(2·patch) and image_size/(4·patch) a side, plus one
    pooled token."""

    image_size: int = 64
    channels: tuple[int, int, int] = (64, 96, 128)
    width: int = 128
    #: Side of the stem's non-overlapping patches, in pixels. Larger patches keep the token grids small on
    #: larger images, but learned far less on a 96 px set than 4 px patches on it scaled to 64 (evaluation.md).
    patch: int = 4

    @property
    def fine_side(self) -> int:
        return self.image_size // (2 * self.patch)

    @property
    def coarse_side(self) -> int:
        return self.image_size // (4 * self.patch)


def _block(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.GELU())


class VisualTrunk(nn.Module):
    """Image (N, 3, S, S) → tokens (N, T, width): a fine grid, a coarse grid and a global token.

    The fine grid (S/8 a side with 4 px patches) keeps each small shape in a cell of its own (what a
    caption's words must bind to); the coarse grid sees whole groups and their neighbours. Every token carries a learned embedding of its
    position and of its scale, which is what lets attention tell left from right and above from below.
    """

    def __init__(self, config: TrunkConfig) -> None:
        super().__init__()
        c1, c2, c3 = config.channels
        # One patch at once: at 64 px a 4×4 patch holds no detail worth a full-resolution layer's cost.
        patch = config.patch
        self.stem = nn.Sequential(nn.Conv2d(3, c1, patch, patch, bias=False), nn.BatchNorm2d(c1), nn.GELU())
        self.fine = nn.Sequential(_block(c1, c2, 2), _block(c2, c2, 1))
        self.coarse = nn.Sequential(_block(c2, c3, 2), _block(c3, c3, 1))
        fine_side, coarse_side = config.fine_side, config.coarse_side
        self.fine_proj = nn.Linear(c2, config.width)
        self.coarse_proj = nn.Linear(c3, config.width)
        self.global_proj = nn.Linear(c3, config.width)
        self.fine_pos = nn.Parameter(torch.randn(fine_side * fine_side, config.width) * 0.02)
        self.coarse_pos = nn.Parameter(torch.randn(coarse_side * coarse_side, config.width) * 0.02)
        self.global_pos = nn.Parameter(torch.randn(1, config.width) * 0.02)
        self.norm = nn.LayerNorm(config.width)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        fine = self.fine(self.stem(images))
        coarse = self.coarse(fine)
        fine_tokens = self.fine_proj(fine.flatten(2).transpose(1, 2)) + self.fine_pos
        coarse_tokens = self.coarse_proj(coarse.flatten(2).transpose(1, 2)) + self.coarse_pos
        global_token = self.global_proj(coarse.mean((2, 3))).unsqueeze(1) + self.global_pos
        return self.norm(torch.cat([fine_tokens, coarse_tokens, global_token], dim=1))


def image_tensor(image: Image.Image, size: int) -> torch.Tensor:
    """A decoded image → the trunk's normalised (3, size, size) float input."""
    return normalise(image_pixels(image, size))


def image_pixels(image: Image.Image, size: int) -> torch.Tensor:
    """A decoded image → (3, size, size) uint8: shorter side scaled to `size`, then the centre cropped."""
    image = image.convert("RGB")
    scale = size / min(image.size)
    if image.size != (size, size):
        resized = (max(size, round(image.width * scale)), max(size, round(image.height * scale)))
        image = image.resize(resized, Image.BICUBIC)
        left, top = (image.width - size) // 2, (image.height - size) // 2
        image = image.crop((left, top, left + size, top + size))
    return torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1)


def normalise(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 (…, 3, H, W) → float, normalised by MEAN and STD."""
    mean = torch.tensor(MEAN).view(3, 1, 1)
    std = torch.tensor(STD).view(3, 1, 1)
    return (pixels.float() / 255.0 - mean) / std
