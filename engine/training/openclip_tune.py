"""Tuning an open_clip Fast preset on pictures with no captions, taught by its CoCa Slow preset.

The same recipe as engine/training/teacher_captions.py, over open_clip models:

1. CoCa writes captions for each picture: its decoder sampled token by token (top-k, a temperature) through
   CoCa's own forward pass. open_clip's `CoCa.generate` would do it but needs the `transformers` package,
   which Glimpse does not ship; this sampler needs nothing beyond open_clip.
2. The Fast model mines groups of pictures it confuses (engine/training/mining.py).
3. CoCa scores every caption against its picture's group, log p(caption | picture) (engine/models/coca.py), and
   only the captions it ranks their own picture first for are kept.
4. The CLIP model's vision tower is frozen (so every picture is embedded once, and what it knows of pictures
   is not forgotten); its text tower learns InfoNCE over batches of whole groups plus the teacher's soft term
   (engine/training/distill.py's `soft_loss`).

A tenth of the kept captions is held out; the report gives R@1 on them over all the pictures before and after.
The tuned weights are a plain open_clip state dict, what `NAME@/path/to/file.pt` loads.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.nn import functional
from tqdm import tqdm

from engine.errors import UsageError
from engine.models.coca import CocaSlowScorer
from engine.models.openclip import build
from engine.models.presets import parse_model_spec
from engine.training.distill import DistillOptions, soft_loss
from engine.training.losses import info_nce
from engine.training.mining import mine_groups
from engine.training.teacher_captions import CaptionDistillReport
from engine.training.train import TrainOptions, TrainReport, optimise

#: Captions CoCa samples per picture (repeats dropped), and their length at most in tokens: short, literal
#: captions are what its MSCOCO fine-tuning writes, and each token costs a decoder pass.
CAPTIONS_PER_PICTURE = 4
MAX_CAPTION_TOKENS = 20
TOP_K = 20
TEMPERATURE = 0.7
#: Pictures CoCa reads together.
CHUNK = 16


def tune_open_clip(
    pictures: list[Image.Image],
    fast_spec: str,
    slow_spec: str,
    out: Path,
    options: TrainOptions,
    distill: DistillOptions | None = None,
    held_out_share: float = 0.1,
) -> CaptionDistillReport:
    """Fine-tune the open_clip Fast `fast_spec` on `pictures`, taught by the CoCa `slow_spec`; write it to `out`."""
    distill = distill or DistillOptions(group=8)
    started = time.monotonic()
    rng = random.Random(options.seed)
    torch.manual_seed(options.seed)
    teacher = CocaSlowScorer.load(parse_model_spec(slow_spec), options.device)
    captions = write_captions(teacher, pictures, options.progress)
    written = sum(len(c) for c in captions)
    texts = [t for cs in captions for t in cs]
    image_of_caption = torch.tensor([i for i, cs in enumerate(captions) for _ in cs], dtype=torch.long)
    if not texts:
        raise UsageError("The Slow model wrote no captions for these pictures, so there is nothing to learn.")

    built = build(parse_model_spec(fast_spec), options.device)
    model = built.model
    with torch.inference_mode():
        image_vectors = torch.cat(
            [
                functional.normalize(
                    model.encode_image(
                        torch.stack([built.preprocess(p) for p in pictures[s : s + CHUNK]]).to(options.device)
                    ),
                    dim=-1,
                ).cpu()
                for s in range(0, len(pictures), CHUNK)
            ]
        )
    tokens = built.tokenizer(texts)

    def text_vectors() -> torch.Tensor:
        with torch.inference_mode():
            return torch.cat(
                [
                    functional.normalize(
                        model.encode_text(tokens[s : s + 256].to(options.device)), dim=-1
                    ).cpu()
                    for s in range(0, len(texts), 256)
                ]
            )

    before_texts = text_vectors()
    queries = torch.stack(
        [
            before_texts[image_of_caption == i].mean(0) if cs else image_vectors[i]
            for i, cs in enumerate(captions)
        ]
    )
    groups = mine_groups(image_vectors.numpy(), queries.numpy(), distill.group, rng)
    scores, own_column = _teacher_scores(teacher, pictures, groups, texts, image_of_caption, options.progress)
    kept = torch.nonzero((own_column >= 0) & (scores.nan_to_num(float("-inf")).argmax(1) == own_column))
    kept = kept.squeeze(1).tolist()
    held_out = sorted(rng.sample(kept, round(len(kept) * held_out_share)))
    training = [c for c in kept if c not in set(held_out)]
    preparation = time.monotonic() - started
    before = _recall_at_1(before_texts[held_out], image_vectors, image_of_caption[held_out])

    batch_groups = max(1, options.batch_size // distill.group)
    if len(groups) < batch_groups:
        raise UsageError(f"Only {len(groups)} groups of pictures were mined: it takes {batch_groups}.")
    group_of_image = torch.full((len(pictures),), -1, dtype=torch.long)
    group_of_image[groups.flatten()] = torch.arange(len(groups)).repeat_interleave(distill.group)
    training_of_image: dict[int, list[int]] = {}
    for c in training:
        training_of_image.setdefault(int(image_of_caption[c]), []).append(c)
    model.requires_grad_(True).visual.requires_grad_(False)
    model.train()
    model.visual.eval()

    def step() -> torch.Tensor:
        picked = rng.sample(range(len(groups)), batch_groups)
        images = groups[picked].flatten()
        texts_in_batch = [(rng.choice(training_of_image[int(i)]), b) for b, i in enumerate(images.tolist())
                          if int(i) in training_of_image]  # fmt: skip
        if not texts_in_batch:
            return (model.logit_scale * 0).sum()
        caption_ids = torch.tensor([c for c, _ in texts_in_batch])
        image_of_text = torch.tensor([b for _, b in texts_in_batch], device=options.device)
        vectors = functional.normalize(model.encode_text(tokens[caption_ids].to(options.device)), dim=-1)
        batch_images = image_vectors[images].to(options.device)
        scale = model.logit_scale.exp().clamp(max=100.0)
        loss = info_nce(batch_images, vectors, scale, image_of_text)
        first = image_of_text // distill.group * distill.group
        columns = first.unsqueeze(1) + torch.arange(distill.group, device=first.device)
        logits = scale * vectors @ batch_images.T
        return loss + distill.weight * soft_loss(
            logits, scores[caption_ids].to(options.device), columns, distill
        )

    if not training:
        raise UsageError(
            "The Slow model kept none of its captions (it ranked no picture first), so nothing is learned."
        )
    run = optimise(model, step, options, "tuning the Fast model's text tower")
    model.eval()
    after = _recall_at_1(text_vectors()[held_out], image_vectors, image_of_caption[held_out])
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(out.name + ".tmp")
    torch.save(model.state_dict(), temporary)
    temporary.replace(out)
    report = TrainReport.of(out, "fast", run, len(pictures), len(training), preparation)
    return CaptionDistillReport(
        len(pictures), written, len(kept), len(held_out), before, after, report, preparation
    )


def write_captions(
    teacher: CocaSlowScorer, pictures: list[Image.Image], progress: bool = True
) -> list[list[str]]:
    """CoCa's distinct sampled captions of each picture."""
    model, tokenizer, device = teacher._model, teacher._tokenizer, teacher.device
    sot, eot = tokenizer.sot_token_id, tokenizer.eot_token_id
    captions: list[list[str]] = []
    chunks = range(0, len(pictures), CHUNK)
    with torch.inference_mode():
        for start in tqdm(chunks, desc="writing captions", disable=not progress, file=sys.stderr):
            batch = torch.stack([teacher.prepare(p) for p in pictures[start : start + CHUNK]]).to(device)
            latent, embeddings = model._encode_image(batch)
            count = len(batch) * CAPTIONS_PER_PICTURE
            latent = latent.repeat_interleave(CAPTIONS_PER_PICTURE, 0)
            embeddings = embeddings.repeat_interleave(CAPTIONS_PER_PICTURE, 0)
            ids = torch.full((count, 1), sot, dtype=torch.long, device=device)
            ended = torch.zeros(count, dtype=torch.bool, device=device)
            for _ in range(MAX_CAPTION_TOKENS):
                logits = model(None, ids, image_latent=latent, image_embs=embeddings, output_labels=False)[
                    "logits"
                ]
                top, where = (logits[:, -1].float() / TEMPERATURE).topk(TOP_K, dim=-1)
                pick = where.gather(1, torch.multinomial(torch.softmax(top, -1), 1)).squeeze(1)
                pick = pick.masked_fill(ended, eot)
                ids = torch.cat([ids, pick.unsqueeze(1)], 1)
                ended |= pick == eot
                if bool(ended.all()):
                    break
            for picture in range(len(batch)):
                texts = []
                for row in ids[
                    picture * CAPTIONS_PER_PICTURE : (picture + 1) * CAPTIONS_PER_PICTURE
                ].tolist():
                    row = row[1 : row.index(eot)] if eot in row else row[1:]
                    text = tokenizer.decode(row).strip()
                    if text and text not in texts:
                        texts.append(text)
                captions.append(texts)
    return captions


def _teacher_scores(
    teacher: CocaSlowScorer,
    pictures: list[Image.Image],
    groups: torch.Tensor,
    texts: list[str],
    image_of_caption: torch.Tensor,
    progress: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """log p(caption | picture) of each caption over its picture's group (NaN: no group), and its own column."""
    size = groups.shape[1]
    scores = torch.full((len(texts), size), float("nan"))
    own_column = torch.full((len(texts),), -1, dtype=torch.long)
    for group in tqdm(groups.tolist(), desc="teacher scoring", disable=not progress, file=sys.stderr):
        visual = teacher.image_tokens([pictures[i] for i in group])
        for caption in torch.nonzero(torch.isin(image_of_caption, torch.tensor(group))).squeeze(1).tolist():
            scores[caption] = torch.from_numpy(
                np.asarray(teacher.score_tokens(texts[caption], visual))
            ).float()
            own_column[caption] = group.index(int(image_of_caption[caption]))
    return scores, own_column


def _recall_at_1(texts: torch.Tensor, images: torch.Tensor, own: torch.Tensor) -> float:
    """R@1 (percent) of the text vectors as queries over all the image vectors."""
    if len(texts) == 0:
        return 0.0
    return round(100 * float(((texts @ images.T).argmax(1) == own).float().mean()), 2)
