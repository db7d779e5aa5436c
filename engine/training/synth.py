"""The synthetic compositional data set: scenes of coloured shapes, five captions each, in Karpathy's format.

Each scene holds two *groups* of identical shapes (a group is a count, a size, a colour and a shape) placed in
a spatial relation (left of, right of, above, below) on a noisy background. Every caption names both groups in
full and the relation, so it describes one scene, and the captions vary in wording and order ("a large red
circle left of two small blue squares" / "two small blue squares to the right of a large red circle").

It is built to be hard for a dual encoder on purpose: scenes come in *twins* that share every word of their
captions' bag of words but differ in how the words bind — the colours, sizes, counts or shapes of the two
groups swapped, or the relation reversed. A twin always lands in the same split as its scene, so most test
images have a hard negative among the test images. Generation is deterministic in the seed.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

#: Side of every generated image, in pixels: small enough to train on a CPU, large enough for three shapes a side.
IMAGE_SIZE = 64
SHAPES = ("circle", "square", "triangle", "diamond", "cross")
#: Nouns a caption may use for each shape; the first is the plural stem used with counts.
SHAPE_WORDS = {
    "circle": ("circle", "disc"),
    "square": ("square", "box"),
    "triangle": ("triangle",),
    "diamond": ("diamond",),
    "cross": ("cross", "plus"),
}
COLOURS = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (50, 80, 230),
    "yellow": (235, 210, 40),
    "purple": (150, 60, 190),
    "orange": (245, 140, 30),
}
#: Radius of a shape, in pixels, by size word.
SIZES = {"small": 5, "large": 9}
COUNT_WORDS = {1: "one", 2: "two", 3: "three"}
RELATIONS = ("left of", "right of", "above", "below")
INVERSE = {"left of": "right of", "right of": "left of", "above": "below", "below": "above"}
RELATION_WORDS = {
    "left of": ("left of", "to the left of", "on the left of"),
    "right of": ("right of", "to the right of", "on the right of"),
    "above": ("above", "over", "on top of"),
    "below": ("below", "under", "beneath"),
}
#: Share of scenes generated together with a twin (the rest stand alone).
TWIN_SHARE = 0.8
#: Share of the images (each at most 1,000) that go to the test split and to the val split.
HELD_OUT_SHARE = 0.1
HELD_OUT_MAX = 1000


@dataclass(frozen=True)
class Group:
    """`count` identical shapes of one size and colour."""

    count: int
    size: str
    colour: str
    shape: str


@dataclass(frozen=True)
class Scene:
    """Group `a` stands in `relation` to group `b` (for instance a left of b)."""

    a: Group
    b: Group
    relation: str


@dataclass(frozen=True)
class SynthReport:
    """What `write_synthetic_set` wrote."""

    root: Path
    images: int
    splits: dict[str, int]
    hard_negatives: int


def random_scene(rng: random.Random) -> Scene:
    """A scene whose two groups differ, so that a twin can always swap something between them."""
    while True:
        a, b = (
            Group(
                rng.choice((1, 1, 2, 3)),
                rng.choice(tuple(SIZES)),
                rng.choice(tuple(COLOURS)),
                rng.choice(SHAPES),
            )
            for _ in range(2)
        )
        if a.colour != b.colour or a.shape != b.shape:
            return Scene(a, b, rng.choice(RELATIONS))


def twin_of(scene: Scene, rng: random.Random) -> Scene:
    """The hard negative of `scene`: the same words, bound differently (one attribute swapped, or the relation)."""
    a, b = scene.a, scene.b
    swaps = [
        field for field in ("colour", "shape", "size", "count") if getattr(a, field) != getattr(b, field)
    ]
    choice = rng.choice([*swaps, "relation"])
    if choice == "relation":
        return replace(scene, relation=INVERSE[scene.relation])
    return replace(
        scene, a=replace(a, **{choice: getattr(b, choice)}), b=replace(b, **{choice: getattr(a, choice)})
    )


def describe_group(group: Group, rng: random.Random) -> str:
    """'a small red circle', 'two large blue boxes', in one of a few orders of its words."""
    noun = rng.choice(SHAPE_WORDS[group.shape])
    if group.count > 1:
        noun = noun + ("es" if noun.endswith(("x", "s")) else "s")
        article = COUNT_WORDS[group.count]
    else:
        article = rng.choice(("a", "one")) if rng.random() < 0.3 else "a"
    return f"{article} {group.size} {group.colour} {noun}"


def captions_for(scene: Scene, rng: random.Random, n: int = 5) -> list[str]:
    """`n` different captions of the scene, each naming both groups in full and their relation."""
    captions: list[str] = []
    for attempt in range(n * 20):
        first, second, relation = scene.a, scene.b, scene.relation
        if rng.random() < 0.5:  # the same scene said from the other group's side
            first, second, relation = second, first, INVERSE[relation]
        words = f"{describe_group(first, rng)} {rng.choice(RELATION_WORDS[relation])} {describe_group(second, rng)}"
        there = "there is {}" if first.count == 1 else "there are {}"
        template = rng.choice(("{}", "{}", there, "a picture of {}", "{} on a noisy background"))
        caption = template.format(words)
        if caption not in captions or attempt >= n * 10:
            captions.append(caption)
        if len(captions) == n:
            break
    return captions


def render(scene: Scene, rng: random.Random) -> Image.Image:
    """Draw the scene on a noisy, tinted background; group a occupies the half its relation to b names."""
    image = Image.fromarray(_background(rng))
    draw = ImageDraw.Draw(image)
    half = IMAGE_SIZE // 2
    # Boxes (x0, y0, x1, y1) of the two halves: a's half first.
    left, right = (0, 0, half, IMAGE_SIZE), (half, 0, IMAGE_SIZE, IMAGE_SIZE)
    top, bottom = (0, 0, IMAGE_SIZE, half), (0, half, IMAGE_SIZE, IMAGE_SIZE)
    boxes = {
        "left of": (left, right),
        "right of": (right, left),
        "above": (top, bottom),
        "below": (bottom, top),
    }[scene.relation]
    for group, box in zip((scene.a, scene.b), boxes, strict=True):
        colour = _jitter(COLOURS[group.colour], rng)
        for x, y in _positions(group, box, rng):
            _draw_shape(draw, group.shape, x, y, SIZES[group.size] + rng.choice((-1, 0, 0, 1)), colour)
    return image


def _background(rng: random.Random) -> np.ndarray:
    """Grey-ish noise with a random tint and brightness, dark enough for every colour to stand out."""
    noise = np.random.default_rng(rng.getrandbits(32))
    base = noise.uniform(40, 110) + noise.uniform(-15, 15, size=3)
    pixels = base + noise.normal(0, noise.uniform(6, 22), size=(IMAGE_SIZE, IMAGE_SIZE, 3))
    return np.clip(pixels, 0, 255).astype(np.uint8)


def _jitter(colour: tuple[int, int, int], rng: random.Random) -> tuple[int, int, int]:
    return tuple(int(min(255, max(0, c + rng.randint(-25, 25)))) for c in colour)  # type: ignore[return-value]


def _positions(group: Group, box: tuple[int, int, int, int], rng: random.Random) -> list[tuple[int, int]]:
    """Centres for the group's shapes inside `box`, not overlapping (rejection sampling, then a fallback line)."""
    radius = SIZES[group.size] + 1
    x0, y0, x1, y1 = box[0] + radius + 1, box[1] + radius + 1, box[2] - radius - 1, box[3] - radius - 1
    for _ in range(200):
        centres = [(rng.randint(x0, x1), rng.randint(y0, y1)) for _ in range(group.count)]
        if all(
            (ax - bx) ** 2 + (ay - by) ** 2 >= (2 * radius + 1) ** 2
            for i, (ax, ay) in enumerate(centres)
            for bx, by in centres[i + 1 :]
        ):
            return centres
    # Three large shapes may not fit at random: stack them along the box's long side.
    long_x = (x1 - x0) >= (y1 - y0)
    steps = np.linspace(x0 if long_x else y0, x1 if long_x else y1, group.count).astype(int)
    middle = (y0 + y1) // 2 if long_x else (x0 + x1) // 2
    return [(int(s), middle) if long_x else (middle, int(s)) for s in steps]


def _draw_shape(
    draw: ImageDraw.ImageDraw, shape: str, x: int, y: int, r: int, colour: tuple[int, int, int]
) -> None:
    if shape == "circle":
        draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
    elif shape == "square":
        s = round(r * 0.85)
        draw.rectangle((x - s, y - s, x + s, y + s), fill=colour)
    elif shape == "triangle":
        draw.polygon([(x, y - r), (x - r, y + r * 0.8), (x + r, y + r * 0.8)], fill=colour)
    elif shape == "diamond":
        draw.polygon([(x, y - r), (x + r, y), (x, y + r), (x - r, y)], fill=colour)
    else:  # cross
        t = max(1, round(r * 0.35))
        draw.rectangle((x - r, y - t, x + r, y + t), fill=colour)
        draw.rectangle((x - t, y - r, x + t, y + r), fill=colour)


def _split_sizes(images: int) -> dict[str, int]:
    held_out = min(HELD_OUT_MAX, round(images * HELD_OUT_SHARE))
    return {"train": images - 2 * held_out, "val": held_out, "test": held_out}


def write_synthetic_set(out: Path, images: int, seed: int = 0) -> SynthReport:
    """Write `images` scenes to `out/images/` and their captions to `out/dataset.json` (Karpathy's format)."""
    if images < 2:
        raise ValueError("The synthetic set needs at least 2 images.")
    rng = random.Random(seed)
    (out / "images").mkdir(parents=True, exist_ok=True)
    entries: list[dict] = []
    hard_negatives = 0
    sentid = 0
    for split, count in _split_sizes(images).items():
        scenes: list[Scene] = []
        while len(scenes) < count:
            scene = random_scene(rng)
            scenes.append(scene)
            if len(scenes) < count and rng.random() < TWIN_SHARE:
                scenes.append(twin_of(scene, rng))
                hard_negatives += 2
        for scene in scenes:
            imgid = len(entries)
            filename = f"{imgid:06d}.png"
            # One generator per image, seeded from the set's: an image depends only on the seed and its index.
            image_rng = random.Random(rng.getrandbits(64))
            render(scene, image_rng).save(out / "images" / filename, compress_level=1)
            sentences = []
            for raw in captions_for(scene, image_rng):
                sentences.append({"raw": raw, "tokens": raw.split(), "imgid": imgid, "sentid": sentid})
                sentid += 1
            entries.append(
                {
                    "filename": filename,
                    "filepath": "images",
                    "imgid": imgid,
                    "split": split,
                    "sentids": [s["sentid"] for s in sentences],
                    "sentences": sentences,
                    "scene": _scene_json(scene),
                }
            )
    document = {"dataset": "glimpse-shapes", "seed": seed, "images": entries}
    (out / "dataset.json").write_text(json.dumps(document, indent=1))
    splits = {split: sum(e["split"] == split for e in entries) for split in ("train", "val", "test")}
    return SynthReport(out, len(entries), splits, hard_negatives)


def _scene_json(scene: Scene) -> dict:
    group = lambda g: {"count": g.count, "size": g.size, "colour": g.colour, "shape": g.shape}  # noqa: E731
    return {"a": group(scene.a), "b": group(scene.b), "relation": scene.relation}
