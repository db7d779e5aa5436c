"""The synthetic compositional data sets: scenes of coloured shapes, five captions each, in Karpathy's format.

Each scene holds two *groups* of identical shapes (a group is a count, a size, a colour and a shape) placed in
a spatial relation (left of, right of, above, below) on a textured background. Every caption names both groups
in full and the relation, so it describes one scene, and the captions vary in wording and order ("a large red
circle left of two small blue squares" / "two small blue squares to the right of a large red circle").

It is built to be hard for a dual encoder on purpose: scenes come in *twins* that share every word of their
captions' bag of words but differ in how the words bind — the colours, sizes, counts or shapes of the two
groups swapped, or the relation reversed. A twin always lands in the same split as its scene, so most test
images have a hard negative among the test images. Generation is deterministic in the seed.

A *style* fixes everything a set looks and reads like: its shapes, colours, sizes, counts, image size,
background, layout, relation words and caption templates. `shapes` is the set Glimpse's recipe was first
tuned on; `stickers` and `night` are drawn and written differently, to test that a training recipe carries to
sets nobody tuned it to (docs/evaluation.md).
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw


@dataclass(frozen=True)
class Style:
    """How a synthetic set looks and reads."""

    name: str
    #: Side of every image, in pixels.
    image_size: int
    #: Nouns a caption may use for each shape; plurals add "s" (or "es" after x or s).
    shapes: dict[str, tuple[str, ...]]
    colours: dict[str, tuple[int, int, int]]
    #: Radius of a shape, in pixels, by size word.
    sizes: dict[str, int]
    #: Counts a group is drawn from (repeats weight them).
    counts: tuple[int, ...]
    relation_words: dict[str, tuple[str, ...]]
    #: Caption templates over {a} {rel} {b} (the first-named group, the relation, the other) and {be} (is/are).
    templates: tuple[str, ...]
    #: "noise" (dark tinted noise), "stripes" (pale striped paper) or "gradient" (dark two-colour gradient).
    background: str
    #: "halves": each group fills its half of the image; "split": the two regions meet at a random line and
    #: each group keeps to a random band of its region.
    layout: str


COUNT_WORDS = {1: "one", 2: "two", 3: "three", 4: "four"}
RELATIONS = ("left of", "right of", "above", "below")
INVERSE = {"left of": "right of", "right of": "left of", "above": "below", "below": "above"}

SHAPES_STYLE = Style(
    name="shapes",
    image_size=64,
    shapes={
        "circle": ("circle", "disc"),
        "square": ("square", "box"),
        "triangle": ("triangle",),
        "diamond": ("diamond",),
        "cross": ("cross", "plus"),
    },
    colours={
        "red": (220, 40, 40),
        "green": (40, 170, 60),
        "blue": (50, 80, 230),
        "yellow": (235, 210, 40),
        "purple": (150, 60, 190),
        "orange": (245, 140, 30),
    },
    sizes={"small": 5, "large": 9},
    counts=(1, 1, 2, 3),
    relation_words={
        "left of": ("left of", "to the left of", "on the left of"),
        "right of": ("right of", "to the right of", "on the right of"),
        "above": ("above", "over", "on top of"),
        "below": ("below", "under", "beneath"),
    },
    templates=(
        "{a} {rel} {b}",
        "{a} {rel} {b}",
        "there {be} {a} {rel} {b}",
        "a picture of {a} {rel} {b}",
        "{a} {rel} {b} on a noisy background",
    ),
    background="noise",
    layout="halves",
)
STICKERS_STYLE = Style(
    name="stickers",
    image_size=96,
    shapes={
        "star": ("star",),
        "hexagon": ("hexagon", "hex"),
        "ring": ("ring", "hoop"),
        "arrow": ("arrow",),
        "bar": ("bar", "stripe"),
    },
    colours={
        "pink": (235, 90, 170),
        "cyan": (20, 190, 210),
        "brown": (130, 75, 30),
        "black": (25, 25, 25),
        "lime": (130, 220, 20),
        "navy": (20, 30, 120),
        "magenta": (200, 20, 200),
    },
    sizes={"tiny": 5, "medium": 8, "big": 11},
    counts=(1, 1, 2, 3, 4),
    relation_words={
        "left of": ("left of", "to the left of", "west of"),
        "right of": ("right of", "to the right of", "east of"),
        "above": ("above", "over", "north of"),
        "below": ("below", "under", "south of"),
    },
    templates=(
        "{a} {rel} {b}",
        "{a} {be} {rel} {b}",
        "{a} sitting {rel} {b}",
        "a photo of {a} {rel} {b}",
        "{a} {rel} {b} on striped paper",
    ),
    background="stripes",
    layout="split",
)
NIGHT_STYLE = Style(
    name="night",
    image_size=80,
    shapes={
        "oval": ("oval", "egg"),
        "pentagon": ("pentagon",),
        "halfmoon": ("half moon", "half disc"),
        "frame": ("frame", "outline square"),
        "wedge": ("wedge",),
    },
    colours={
        "teal": (30, 160, 150),
        "gold": (230, 190, 60),
        "violet": (170, 110, 240),
        "white": (240, 240, 240),
        "crimson": (200, 20, 60),
        "olive": (140, 150, 40),
    },
    sizes={"small": 6, "large": 10},
    counts=(1, 2, 2, 3),
    relation_words={
        "left of": ("left of", "at the left of", "to the left of"),
        "right of": ("right of", "at the right of", "to the right of"),
        "above": ("above", "higher than", "over"),
        "below": ("below", "lower than", "underneath"),
    },
    templates=(
        "{a} {rel} {b}",
        "a drawing of {a} {rel} {b}",
        "{a} drawn {rel} {b}",
        "here {be} {a} {rel} {b}",
        "{a} {rel} {b} in the dark",
    ),
    background="gradient",
    layout="split",
)
STYLES = {style.name: style for style in (SHAPES_STYLE, STICKERS_STYLE, NIGHT_STYLE)}
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


def random_scene(rng: random.Random, style: Style = SHAPES_STYLE) -> Scene:
    """A scene whose two groups differ, so that a twin can always swap something between them."""
    while True:
        a, b = (
            Group(
                rng.choice(style.counts),
                rng.choice(tuple(style.sizes)),
                rng.choice(tuple(style.colours)),
                rng.choice(tuple(style.shapes)),
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


def describe_group(group: Group, rng: random.Random, style: Style = SHAPES_STYLE) -> str:
    """'a small red circle', 'two large blue boxes', in one of a few orders of its words."""
    noun = rng.choice(style.shapes[group.shape])
    if group.count > 1:
        noun = noun + ("es" if noun.endswith(("x", "s")) else "s")
        article = COUNT_WORDS[group.count]
    else:
        article = rng.choice(("a", "one")) if rng.random() < 0.3 else "a"
    return f"{article} {group.size} {group.colour} {noun}"


def captions_for(scene: Scene, rng: random.Random, n: int = 5, style: Style = SHAPES_STYLE) -> list[str]:
    """`n` different captions of the scene, each naming both groups in full and their relation."""
    captions: list[str] = []
    for attempt in range(n * 20):
        first, second, relation = scene.a, scene.b, scene.relation
        if rng.random() < 0.5:  # the same scene said from the other group's side
            first, second, relation = second, first, INVERSE[relation]
        a = describe_group(first, rng, style)
        rel = rng.choice(style.relation_words[relation])
        b = describe_group(second, rng, style)
        template = rng.choice(style.templates)
        caption = template.format(a=a, rel=rel, b=b, be="is" if first.count == 1 else "are")
        if caption not in captions or attempt >= n * 10:
            captions.append(caption)
        if len(captions) == n:
            break
    return captions


def render(scene: Scene, rng: random.Random, style: Style = SHAPES_STYLE) -> Image.Image:
    """Draw the scene on the style's background; group a keeps to the region its relation to b names."""
    image = Image.fromarray(_background(rng, style))
    draw = ImageDraw.Draw(image)
    for group, box in zip((scene.a, scene.b), _regions(scene, rng, style), strict=True):
        colour = _jitter(style.colours[group.colour], rng)
        radius = style.sizes[group.size]
        for x, y in _positions(group.count, radius, box, rng):
            _draw_shape(draw, group.shape, x, y, radius + rng.choice((-1, 0, 0, 1)), colour)
    return image


def _regions(
    scene: Scene, rng: random.Random, style: Style
) -> tuple[tuple[int, int, int, int], tuple[int, int, int, int]]:
    """Boxes (x0, y0, x1, y1) of group a's region and group b's, on either side of a dividing line."""
    size = style.image_size
    horizontal = scene.relation in ("left of", "right of")
    if style.layout == "halves":
        cut, bands = size // 2, [(0, size), (0, size)]
    else:
        cut = round(size * rng.uniform(0.4, 0.6))
        bands = []
        for group in (scene.a, scene.b):
            # A band of at least 60 % of the other axis, and long enough to hold the group in a row.
            needed = group.count * (2 * style.sizes[group.size] + 5)
            extent = min(size, max(needed, round(size * rng.uniform(0.6, 1.0))))
            start = rng.randint(0, size - extent)
            bands.append((start, start + extent))
    first, second = (0, cut), (cut, size)
    if scene.relation in ("right of", "below"):
        first, second = second, first
    boxes = []
    for (lo, hi), (band_lo, band_hi) in zip((first, second), bands, strict=True):
        boxes.append((lo, band_lo, hi, band_hi) if horizontal else (band_lo, lo, band_hi, hi))
    return boxes[0], boxes[1]


def _background(rng: random.Random, style: Style) -> np.ndarray:
    """The style's background, dark or pale enough for every colour of the style to stand out."""
    noise = np.random.default_rng(rng.getrandbits(32))
    size = style.image_size
    if style.background == "noise":  # grey-ish noise with a random tint and brightness
        base = noise.uniform(40, 110) + noise.uniform(-15, 15, size=3)
        pixels = base + noise.normal(0, noise.uniform(6, 22), size=(size, size, 3))
    elif style.background == "stripes":  # pale paper with faint stripes at a random angle and period
        base = noise.uniform(185, 235) + noise.uniform(-12, 12, size=3)
        angle, period = noise.uniform(0, math.pi), noise.uniform(6, 16)
        y, x = np.mgrid[0:size, 0:size]
        stripes = np.sin((x * math.cos(angle) + y * math.sin(angle)) * 2 * math.pi / period)
        pixels = base + noise.uniform(6, 18) * stripes[..., None] + noise.normal(0, 4, size=(size, size, 3))
    else:  # a dark gradient between two random colours, with speckles
        start, end = noise.uniform(5, 70, size=3), noise.uniform(5, 70, size=3)
        along = np.linspace(0, 1, size)[:, None, None]
        ramp = start + (end - start) * along
        ramp = ramp if noise.random() < 0.5 else ramp.transpose(1, 0, 2)
        pixels = np.broadcast_to(ramp, (size, size, 3)) + noise.normal(0, 8, size=(size, size, 3))
    return np.clip(pixels, 0, 255).astype(np.uint8)


def _jitter(colour: tuple[int, int, int], rng: random.Random) -> tuple[int, int, int]:
    return tuple(int(min(255, max(0, c + rng.randint(-25, 25)))) for c in colour)  # type: ignore[return-value]


def _positions(
    count: int, radius: int, box: tuple[int, int, int, int], rng: random.Random
) -> list[tuple[int, int]]:
    """Centres for `count` shapes inside `box`, not overlapping (rejection sampling, then a fallback line)."""
    radius += 1
    x0, y0, x1, y1 = box[0] + radius + 1, box[1] + radius + 1, box[2] - radius - 1, box[3] - radius - 1
    # A band narrower than a shape: centre the shapes on it.
    x0, x1 = (x0, x1) if x0 <= x1 else ((x0 + x1) // 2,) * 2
    y0, y1 = (y0, y1) if y0 <= y1 else ((y0 + y1) // 2,) * 2
    for _ in range(200):
        centres = [(rng.randint(x0, x1), rng.randint(y0, y1)) for _ in range(count)]
        if all(
            (ax - bx) ** 2 + (ay - by) ** 2 >= (2 * radius + 1) ** 2
            for i, (ax, ay) in enumerate(centres)
            for bx, by in centres[i + 1 :]
        ):
            return centres
    # Several large shapes may not fit at random: stack them along the box's long side.
    long_x = (x1 - x0) >= (y1 - y0)
    steps = np.linspace(x0 if long_x else y0, x1 if long_x else y1, count).astype(int)
    middle = (y0 + y1) // 2 if long_x else (x0 + x1) // 2
    return [(int(s), middle) if long_x else (middle, int(s)) for s in steps]


def _polygon(
    x: int, y: int, radii: tuple[float, ...], turn: float = -math.pi / 2
) -> list[tuple[float, float]]:
    """Vertices at evenly spaced angles around (x, y), the i-th at radius radii[i], the first pointing up."""
    step = 2 * math.pi / len(radii)
    return [
        (x + r * math.cos(turn + i * step), y + r * math.sin(turn + i * step)) for i, r in enumerate(radii)
    ]


def _draw_shape(
    draw: ImageDraw.ImageDraw, shape: str, x: int, y: int, r: int, colour: tuple[int, int, int]
) -> None:
    thick = max(1, round(r * 0.35))
    if shape == "circle":
        draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
    elif shape == "square":
        s = round(r * 0.85)
        draw.rectangle((x - s, y - s, x + s, y + s), fill=colour)
    elif shape == "triangle":
        draw.polygon([(x, y - r), (x - r, y + r * 0.8), (x + r, y + r * 0.8)], fill=colour)
    elif shape == "diamond":
        draw.polygon([(x, y - r), (x + r, y), (x, y + r), (x - r, y)], fill=colour)
    elif shape == "cross":
        draw.rectangle((x - r, y - thick, x + r, y + thick), fill=colour)
        draw.rectangle((x - thick, y - r, x + thick, y + r), fill=colour)
    elif shape == "star":
        draw.polygon(_polygon(x, y, (r, r * 0.45) * 5), fill=colour)
    elif shape == "hexagon":
        draw.polygon(_polygon(x, y, (r,) * 6, turn=0), fill=colour)
    elif shape == "ring":
        draw.ellipse((x - r, y - r, x + r, y + r), outline=colour, width=max(2, thick))
    elif shape == "arrow":  # pointing up: a head over a shaft
        draw.polygon([(x, y - r), (x - r, y), (x + r, y)], fill=colour)
        draw.rectangle((x - thick, y, x + thick, y + r), fill=colour)
    elif shape == "bar":
        draw.rectangle((x - r, y - thick, x + r, y + thick), fill=colour)
    elif shape == "oval":
        draw.ellipse((x - r, y - r * 0.6, x + r, y + r * 0.6), fill=colour)
    elif shape == "pentagon":
        draw.polygon(_polygon(x, y, (r,) * 5), fill=colour)
    elif shape == "halfmoon":  # the upper half of a disc
        draw.pieslice((x - r, y - r * 0.5, x + r, y + r * 1.5), 180, 360, fill=colour)
    elif shape == "frame":
        draw.rectangle((x - r, y - r, x + r, y + r), outline=colour, width=max(2, thick))
    elif shape == "wedge":  # a triangle pointing down
        draw.polygon([(x - r, y - r * 0.8), (x + r, y - r * 0.8), (x, y + r)], fill=colour)
    else:
        raise ValueError(f"No drawing for the shape {shape!r}.")


def _split_sizes(images: int) -> dict[str, int]:
    held_out = min(HELD_OUT_MAX, round(images * HELD_OUT_SHARE))
    return {"train": images - 2 * held_out, "val": held_out, "test": held_out}


def write_synthetic_set(out: Path, images: int, seed: int = 0, style: str = "shapes") -> SynthReport:
    """Write `images` scenes of `style` to `out/images/` and their captions to `out/dataset.json` (Karpathy's)."""
    if images < 2:
        raise ValueError("The synthetic set needs at least 2 images.")
    look = STYLES[style]
    rng = random.Random(seed)
    (out / "images").mkdir(parents=True, exist_ok=True)
    entries: list[dict] = []
    hard_negatives = 0
    sentid = 0
    for split, count in _split_sizes(images).items():
        scenes: list[Scene] = []
        while len(scenes) < count:
            scene = random_scene(rng, look)
            scenes.append(scene)
            if len(scenes) < count and rng.random() < TWIN_SHARE:
                scenes.append(twin_of(scene, rng))
                hard_negatives += 2
        for scene in scenes:
            imgid = len(entries)
            filename = f"{imgid:06d}.png"
            # One generator per image, seeded from the set's: an image depends only on the seed and its index.
            image_rng = random.Random(rng.getrandbits(64))
            render(scene, image_rng, look).save(out / "images" / filename, compress_level=1)
            sentences = []
            for raw in captions_for(scene, image_rng, style=look):
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
    document = {"dataset": f"glimpse-{style}", "seed": seed, "images": entries}
    (out / "dataset.json").write_text(json.dumps(document, indent=1))
    splits = {split: sum(e["split"] == split for e in entries) for split in ("train", "val", "test")}
    return SynthReport(out, len(entries), splits, hard_negatives)


def _scene_json(scene: Scene) -> dict:
    group = lambda g: {"count": g.count, "size": g.size, "colour": g.colour, "shape": g.shape}  # noqa: E731
    return {"a": group(scene.a), "b": group(scene.b), "relation": scene.relation}
