"""Fine-tuning pretrained open_clip presets on a captioned set: CLIP with InfoNCE, CoCa with its captioning loss.

Meant for a GPU and a real set (Flickr30K, COCO in Karpathy's format). The result is written as a plain
open_clip state dict, which is exactly what a preset's local-file source reads: search and evaluate with it as
`--model NAME@/path/to/out.pt` (for a CoCa Slow preset, pair it with a Fast model in `glimpse eval` through
`--model`, or use it where a Slow spec is named).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import torch
from open_clip.loss import CoCaLoss
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from engine.errors import UsageError
from engine.models.openclip import OpenClipModel, build
from engine.models.presets import parse_model_spec
from engine.training.datasets import Item, RetrievalSet, load_frames
from engine.training.losses import info_nce
from engine.training.train import TrainOptions, TrainReport, optimise

#: A sensible learning rate for fine-tuning pretrained weights (a from-scratch rate would wreck them).
FINETUNE_LEARNING_RATE = 1e-5


class _Pairs(Dataset):
    """(image tensor, token ids) for one random caption of each training item; decoded in loader workers."""

    def __init__(self, items: list[Item], built: OpenClipModel, seed: int) -> None:
        self.items = items
        self.built = built
        self.rng = random.Random(seed)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        item = self.items[index]
        image: Image.Image = load_frames(item)[0]
        caption = self.rng.choice(item.captions)
        return self.built.preprocess(image), self.built.tokenizer([caption])[0]


def finetune_open_clip(
    dataset: RetrievalSet, out: Path, spec: str, role: Literal["fast", "slow"], options: TrainOptions
) -> TrainReport:
    """Fine-tune the open_clip preset `spec` (a `role` model) on the set's train split; write its weights."""
    model_spec = parse_model_spec(spec)
    if model_spec.preset.kind != role:
        raise UsageError(f"{model_spec.preset.name} is not a {role} preset: name one with `glimpse models`.")
    torch.manual_seed(options.seed)
    built = build(model_spec, options.device)
    model = built.model.train().requires_grad_(True)
    items = [item for item in dataset.split("train").items if item.captions]
    loader = DataLoader(
        _Pairs(items, built, options.seed),
        batch_size=options.batch_size,
        shuffle=True,
        drop_last=True,
        num_workers=min(8, torch.get_num_threads()),
        generator=torch.Generator().manual_seed(options.seed),
    )
    if len(loader) == 0:
        raise UsageError(
            f"The train split has fewer than {options.batch_size} captioned items: lower --batch-size."
        )
    batches = _forever(loader)
    captioning = role == "slow"
    # CoCa's MSCOCO fine-tuning recipe: the captioning loss alone, since its score is log p(text | image).
    coca_loss = CoCaLoss(caption_loss_weight=1.0, clip_loss_weight=0.0)

    def step() -> torch.Tensor:
        images, tokens = (t.to(options.device, non_blocking=True) for t in next(batches))
        if captioning:
            output = model(images, tokens)
            _, caption = coca_loss(
                output["image_features"],
                output["text_features"],
                output["logits"],
                output["labels"],
                output["logit_scale"],
            )
            return caption
        image_vectors = torch.nn.functional.normalize(model.encode_image(images), dim=-1)
        text_vectors = torch.nn.functional.normalize(model.encode_text(tokens), dim=-1)
        return info_nce(image_vectors, text_vectors, model.logit_scale.exp().clamp(max=100.0))

    run = optimise(model, step, options, f"fine-tuning {model_spec.preset.name}")
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(out.name + ".tmp")
    torch.save(model.state_dict(), temporary)
    temporary.replace(out)
    return TrainReport.of(out, model_spec.preset.kind, run, len(items), len(items))


def _forever(loader: DataLoader) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    while True:
        yield from loader
