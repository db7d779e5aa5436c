"""Readers for captioned retrieval sets: Karpathy-format image sets and VATEX-style video sets.

**Karpathy format** (Flickr30K, COCO, and `glimpse dataset synth`): a JSON file, `dataset.json` or
`dataset_<name>.json`, holding `{"images": [{"filename", "split", "sentences": [{"raw": ...}, ...], ...}]}`,
with an optional `filepath` sub-folder per image (COCO's `train2014`/`val2014`). Splits are `train`, `val`,
`test`, and `restval` (read as train). Images are looked up under the folder given with `--images DIR`, else
next to the JSON file: `<root>/<filepath>/<filename>`, `<root>/images/<filename>`,
`<root>/flickr30k-images/<filename>`, `<root>/<filename>`, the first that exists.

**VATEX-style video format**: a folder holding `captions.json` and the videos. `captions.json` is a list of
VATEX's own entries, each `{"videoID": "Ptf_2VRj-V0_000122_000132", "enCap": ["a man ...", ...]}`, plus an
optional `"split"` (`train`, `val` or `test`; entries without one are test). A video is the file named
`<videoID>` with any video extension (.mp4, .webm, .mkv, .mov, .avi) under `--images DIR`, else under
`<root>/videos/`, else `<root>/`. A video's frames are sampled as the library samples them (`FrameSampler`:
about one every 2 s, plus scene cuts), and a video scores as its best frame.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from PIL import Image

from engine.errors import UsageError
from engine.media.video import FrameSampler

Split = Literal["train", "val", "test", "all"]
VIDEO_EXTENSIONS = (".mp4", ".webm", ".mkv", ".mov", ".avi")
#: Images and frames are kept no larger than this on their shorter side: every model here reads at most 448 px.
MAX_SIDE = 448


@dataclass(frozen=True)
class Item:
    """One image or video of a set, with its captions."""

    path: Path
    kind: Literal["image", "video"]
    split: str
    captions: tuple[str, ...]


@dataclass(frozen=True)
class Query:
    """A caption used as a query; `item` is the index of the item it describes."""

    text: str
    item: int


@dataclass(frozen=True)
class RetrievalSet:
    """Items with captions; a caption's own item is the one right answer to it."""

    name: str
    items: tuple[Item, ...]
    kind: Literal["image", "video"] = "image"

    def split(self, split: Split) -> RetrievalSet:
        """The items of one split (`all`: every item)."""
        items = self.items if split == "all" else tuple(i for i in self.items if i.split == split)
        if not items:
            raise UsageError(f"The data set {self.name} has no {split} items.")
        return RetrievalSet(self.name, items, self.kind)

    def queries(self) -> list[Query]:
        """Every caption of every item, in order."""
        return [Query(text, index) for index, item in enumerate(self.items) for text in item.captions]


def load_dataset(path: Path, media_dir: Path | None = None) -> RetrievalSet:
    """Read a Karpathy-format image set or a VATEX-style video set (see the module's docstring)."""
    if path.is_file():
        return _karpathy(path, media_dir)
    if not path.is_dir():
        raise UsageError(f"The data set {path} does not exist.")
    if (path / "captions.json").is_file():
        return _vatex(path, media_dir)
    found = sorted(path.glob("dataset*.json"))
    if not found:
        raise UsageError(
            f"{path} holds neither a Karpathy dataset.json (or dataset_<name>.json) nor a VATEX captions.json."
        )
    return _karpathy(found[0], media_dir)


def load_frames(item: Item) -> list[Image.Image]:
    """The RGB frames an item is scored by: the image itself, or the video's frames sampled as the library does."""
    if item.kind == "image":
        with Image.open(item.path) as image:
            return [_shrunk(image.convert("RGB"))]
    with FrameSampler(min_side=MAX_SIDE).open(os.fsencode(item.path)) as video:
        return [frame.image for frame in video.frames()]


def _karpathy(json_path: Path, media_dir: Path | None) -> RetrievalSet:
    document = _read_json(json_path)
    entries = document.get("images") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise UsageError(f"{json_path} is not in Karpathy's format: it has no 'images' list.")
    root = json_path.parent
    bases = [media_dir] if media_dir is not None else [root, root / "images", root / "flickr30k-images"]
    items: list[Item] = []
    missing: list[Path] = []
    for entry in entries:
        candidates = [base / entry.get("filepath", "") / entry["filename"] for base in bases]
        candidates += [base / entry["filename"] for base in bases]
        path = next((c for c in candidates if c.is_file()), None)
        if path is None:
            missing.append(candidates[0])
            continue
        split = "train" if entry.get("split") == "restval" else entry.get("split", "test")
        captions = tuple(s["raw"].strip() for s in entry.get("sentences", ()) if s.get("raw", "").strip())
        items.append(Item(path, "image", split, captions))
    if missing:
        raise UsageError(
            f"{len(missing)} of the {len(entries)} images of {json_path} are missing (the first: {missing[0]}); "
            "point --images at the folder that holds them."
        )
    return RetrievalSet(str(document.get("dataset", json_path.stem)), tuple(items), "image")


def _vatex(root: Path, media_dir: Path | None) -> RetrievalSet:
    entries = _read_json(root / "captions.json")
    if not isinstance(entries, list):
        raise UsageError(f"{root / 'captions.json'} must hold a list of {{videoID, enCap}} entries.")
    bases = [media_dir] if media_dir is not None else [root / "videos", root]
    items: list[Item] = []
    for entry in entries:
        video_id = entry["videoID"]
        path = next(
            (
                base / (video_id + ext)
                for base in bases
                for ext in VIDEO_EXTENSIONS
                if (base / (video_id + ext)).is_file()
            ),
            None,
        )
        if path is None:
            raise UsageError(
                f"No video file for {video_id} under {bases[0]}; point --images at the videos' folder."
            )
        captions = tuple(c.strip() for c in entry.get("enCap", ()) if c.strip())
        items.append(Item(path, "video", entry.get("split", "test"), captions))
    return RetrievalSet(root.name, tuple(items), "video")


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise UsageError(f"Cannot read the data set file {path}: {error}.") from error


def _shrunk(image: Image.Image) -> Image.Image:
    if min(image.size) <= MAX_SIDE:
        return image
    scale = MAX_SIDE / min(image.size)
    return image.resize((round(image.width * scale), round(image.height * scale)), Image.BICUBIC)
