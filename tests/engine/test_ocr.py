"""Reading the words in photos and video frames, with the real PP-OCR models, through the reading pool.

The models never load in this (pytest's) process: it has imported the vector index, and onnxruntime loaded
after usearch crashes (engine/reading/pool.py). Whatever reads runs in the pool's workers, or in a process of
`worker_context()`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from engine.bench.common import photo_folder
from engine.bench.read import font_path, words
from engine.reading import ReadPool, ReadSettings, TextReader
from engine.reading.pool import worker_context
from tests.factory import make_photo

PRICES = ["Espresso 1.20", "Cappuccino 2.40", "Croissant 1.80"]


def draw_board(picture: Image.Image, lines: list[str], at: tuple[int, int], size: int, *, mono: bool = False):
    """Dark lines on a light board at `at`; returns the board's (x0, y0, x1, y1)."""
    font = ImageFont.truetype(str(font_path(bold=not mono, mono=mono)), size)
    width = int(max(font.getlength(line) for line in lines) + size)
    height = int(len(lines) * size * 1.3 + size * 0.6)
    x, y = at
    draw = ImageDraw.Draw(picture)
    draw.rectangle((x, y, x + width, y + height), fill=(245, 240, 225))
    for i, line in enumerate(lines):
        draw.text((x + size * 0.5, y + size * 0.3 + i * size * 1.3), line, font=font, fill=(25, 20, 20))
    return x, y, x + width, y + height


def shop_front(path: Path, size=(3000, 2250)) -> dict[str, tuple[int, int, int, int]]:
    """A landscape photo with a shop sign, a price list and a number plate; returns where each is."""
    make_photo(path, size=size, seed=3)
    with Image.open(path) as opened:
        picture = opened.convert("RGB")
    boards = {
        "sign": draw_board(picture, ["CAFÉ LUNA"], (300, 250), 170),
        "prices": draw_board(picture, PRICES, (1700, 900), 70),
        "plate": draw_board(picture, ["RE16 TGK"], (600, 1700), 120, mono=True),
    }
    picture.save(path, quality=92)
    return boards


def texts(result) -> list[str]:
    return [line.text for line in result.lines]


def centre(box) -> tuple[float, float]:
    xs, ys = zip(*box, strict=True)
    return sum(xs) / len(xs), sum(ys) / len(ys)


def inside(point, board, slack=0) -> bool:
    x, y = point
    return board[0] - slack <= x <= board[2] + slack and board[1] - slack <= y <= board[3] + slack


@pytest.fixture(scope="module")
def pool():
    # Normal priority: at the lowest, on a busy test machine, a read waits for every other process.
    with ReadPool(workers=1, nice=0) as pool:
        yield pool


def test_a_sign_a_price_list_and_a_plate_are_read_where_they_are(pool, tmp_path):
    photo = tmp_path / "shop.jpg"
    boards = shop_front(photo)
    result = pool.read(photo)
    assert result.error is None and (result.width, result.height) == (3000, 2250)
    found = texts(result)
    assert "CAFÉ LUNA" in found and "RE16 TGK" in found
    assert {"espresso", "cappuccino", "croissant"} <= words(found)
    # Boxes are in the photo's own full-size pixels, though it was read from a half-size decode.
    lines = {line.text: line for line in result.lines}
    assert inside(centre(lines["CAFÉ LUNA"].box), boards["sign"])
    assert inside(centre(lines["RE16 TGK"].box), boards["plate"])
    assert all(0 < line.confidence <= 1 for line in result.lines)


def test_a_photo_without_text_yields_no_lines(pool, tmp_path):
    result = pool.read(make_photo(tmp_path / "landscape.jpg", size=(3000, 2250), seed=5))
    assert result.error is None and result.lines == ()


def probe_regions(path: str) -> int | None:
    """How many regions the probe sends the detector to (run in a process of `worker_context()`)."""
    import cv2

    from engine.media.images import decode_image

    reader = TextReader()
    pixels = np.asarray(decode_image(os.fsencode(path), reader.settings.photo_side).image)
    return len(reader._probe(cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)))


def read_together_and_apart(paths: list[str]) -> tuple[list, list]:
    """The lines of pictures read in one call, and one call each (in a process of `worker_context()`)."""
    reader = TextReader(ReadSettings(batch_lines=4))
    pictures = [np.asarray(Image.open(path).convert("RGB")) for path in paths]
    return reader.read(pictures), [reader.read([picture])[0] for picture in pictures]


def test_the_probe_skips_a_photo_without_text_and_sends_the_detector_only_where_text_is(tmp_path):
    plain = photo_folder(tmp_path / "plain", 1) / "photo-000000.jpg"  # the benchmark's photo-like picture
    shop = tmp_path / "shop.jpg"
    shop_front(shop)
    with worker_context().Pool(1) as process:
        assert process.apply(probe_regions, (str(plain),)) == 0
        assert 1 <= process.apply(probe_regions, (str(shop),)) <= 3


def test_lines_of_several_pictures_recognised_together_read_as_apart(tmp_path):
    paths = []
    for i, lines in enumerate((["OPEN DAILY"], PRICES, ["PLATFORM 9", "EXIT"])):
        picture = Image.new("RGB", (900, 500), (90, 120, 160))
        draw_board(picture, lines, (60, 60), 60)
        picture.save(tmp_path / f"{i}.png")
        paths.append(str(tmp_path / f"{i}.png"))
    with worker_context().Pool(1) as process:
        together, apart = process.apply(read_together_and_apart, (paths,))
    # The same lines in the same places; a batch pads its lines to its widest, which nudges confidences.
    assert [[(line.text, line.box) for line in lines] for lines in together] == [
        [(line.text, line.box) for line in lines] for lines in apart
    ]
    confidences = [
        (a.confidence, b.confidence)
        for x, y in zip(together, apart, strict=True)
        for a, b in zip(x, y, strict=True)
    ]
    assert all(abs(a - b) < 0.01 for a, b in confidences)
    assert words(line.text for line in together[1]) >= {"espresso", "cappuccino", "croissant"}


def test_a_photo_turned_by_its_exif_orientation_is_read_upright(pool, tmp_path):
    shown = Image.new("RGB", (1600, 1200), (70, 110, 60))
    board = draw_board(shown, ["RUA AUGUSTA"], (200, 300), 120)
    photo = tmp_path / "portrait.jpg"
    exif = Image.Exif()
    exif[274] = 6  # the viewer turns the stored picture 90° clockwise
    shown.transpose(Image.Transpose.ROTATE_90).save(photo, exif=exif.tobytes(), quality=92)
    result = pool.read(photo)
    assert (result.width, result.height) == (1600, 1200)
    line = next(line for line in result.lines if line.text == "RUA AUGUSTA")
    (x0, y0), (x1, _), _, (_, y3) = line.box
    assert x1 - x0 > 3 * (y3 - y0) > 0  # a horizontal line, left to right, in the upright picture
    assert inside(centre(line.box), board)


def test_a_video_frame_is_read_from_its_pixels(pool):
    frame = Image.new("RGB", (1280, 720), (20, 30, 60))
    board = draw_board(frame, ["GATE 23 BOARDING"], (340, 560), 48)
    result = pool.read(np.asarray(frame), label="departures.mp4 at 12.0 s")
    assert result.error is None and (result.width, result.height) == (1280, 720)
    assert texts(result) == ["GATE 23 BOARDING"]
    assert inside(centre(result.lines[0].box), board)


def test_pool_reads_from_several_threads(pool, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    frames = []
    for word in ("NORTH", "SOUTH", "EAST", "WEST"):
        frame = Image.new("RGB", (640, 360), (200, 200, 200))
        draw_board(frame, [word], (100, 100), 60)
        frames.append((word, np.asarray(frame)))
    with ThreadPoolExecutor(4) as threads:
        results = list(threads.map(lambda item: (item[0], pool.read(item[1])), frames))
    assert all(texts(result) == [word] for word, result in results)
