"""Outlier channels planted into an open_clip model as real ViTs carry them, with its fp32 outputs unchanged.

Trained ViTs have a few channels after their LayerNorms tens of times larger than the others; random weights
never do. Scaling channel j of a block's LayerNorm (gain and bias) by s and dividing input column j of the
layer it feeds by s changes no fp32 output, yet gives the int8 tower exactly that kind of input.
"""

from __future__ import annotations

import torch
from open_clip.transformer import ResidualAttentionBlock


def outlier_channels(width: int) -> list[int]:
    """The two channels that carry the outliers in every block: the same ones throughout, as in real models."""
    return [width // 3, 2 * width // 3 + 1]


def plant_outliers(tower: torch.nn.Module, scale: float) -> torch.nn.Module:
    """Scale two channels of each residual block's ln_1 and ln_2 by `scale`, and divide the input columns of
    the layers they feed (the attention's input projection, the MLP's c_fc) by it; in place, returns `tower`."""
    with torch.no_grad():
        for block in tower.modules():
            if not isinstance(block, ResidualAttentionBlock):
                continue
            channels = outlier_channels(block.ln_1.weight.shape[0])
            for norm, weight in (
                (block.ln_1, block.attn.in_proj_weight),
                (block.ln_2, block.mlp.c_fc.weight),
            ):
                norm.weight[channels] *= scale
                norm.bias[channels] *= scale
                weight[:, channels] /= scale
    return tower
