"""`glimpse bench read`: photos per second of the reading pass, against rapidocr's own default call.

It writes a folder of 12-megapixel photos (the visual benchmark's photo-like pictures), a fifth of them with
text drawn on them in the machine's DejaVu fonts: a shop sign, a price list, a receipt, a screenshot-like panel
or a number plate. Then, taking turns run by run so that a drift in the machine's load touches both, it times

- Glimpse's reading: a ReadPool reading the folder's files, decoding included, as indexing reads them;
- the reference: `RapidOCR()(path)` on each file, rapidocr's documented default call, in its own process.

and compares the words each found on the photos with text (case-folded words of three or more letters) with the
words drawn there. Both run in child processes: onnxruntime cannot be loaded into this one after the vector index
(engine/reading/pool.py says why). Each reads one photo,
untimed, before the timed runs.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import click
import numpy as np

from engine.bench.common import PHOTO_SIZE, emit, photo_folder
from engine.reading.ocr import ReadSettings
from engine.reading.pool import ReadPool, process_cpu_seconds, worker_context

#: Where Debian and most Linux distributions keep the DejaVu fonts.
FONT_DIRS = (
    Path("/usr/share/fonts/truetype/dejavu"),
    Path("/usr/share/fonts/dejavu"),
    Path("/usr/share/fonts/TTF"),
)
#: One photo in this many has text on it.
TEXT_EVERY = 5
#: Words the generated text is made of: what signs, menus, receipts and screens say.
WORDS = [
    "bakery",
    "coffee",
    "station",
    "platform",
    "exit",
    "gate",
    "museum",
    "garden",
    "street",
    "avenue",
    "market",
    "pharmacy",
    "hotel",
    "bridge",
    "harbour",
    "library",
    "castle",
    "ticket",
    "window",
    "kitchen",
    "studio",
    "office",
    "parking",
    "river",
    "beach",
    "church",
    "theatre",
    "cinema",
    "school",
    "bank",
    "post",
    "police",
    "taxi",
    "airport",
    "north",
    "south",
    "east",
    "west",
    "open",
    "closed",
    "daily",
    "fresh",
    "bread",
    "cheese",
    "pizza",
    "pasta",
    "salad",
    "soup",
    "juice",
    "water",
    "beer",
    "wine",
    "milk",
    "sugar",
    "honey",
    "lemon",
    "orange",
    "apple",
    "banana",
    "cherry",
    "grape",
    "melon",
    "peach",
    "tomato",
    "potato",
    "onion",
    "garlic",
    "pepper",
    "salt",
    "butter",
    "cream",
    "cake",
    "tea",
    "espresso",
    "latte",
    "mocha",
    "breakfast",
    "lunch",
    "dinner",
    "menu",
    "special",
    "price",
    "total",
    "change",
    "cash",
    "card",
    "visa",
    "thank",
    "you",
    "welcome",
    "please",
    "push",
    "pull",
    "entrance",
    "toilets",
    "floor",
    "level",
    "room",
    "suite",
    "lobby",
    "password",
    "network",
    "wireless",
    "router",
    "guest",
    "admin",
    "settings",
    "battery",
    "signal",
    "update",
    "download",
    "upload",
]
_PLATE_LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"


def words(texts: Iterable[str]) -> set[str]:
    """The case-folded words of three or more letters or digits, with at least one letter, in `texts`."""
    found = set()
    for text in texts:
        for token in re.findall(r"[^\W_]{3,}", text):
            if not token.isdigit():
                found.add(token.casefold())
    return found


def font_path(bold: bool = False, mono: bool = False) -> Path:
    """A DejaVu font file of this machine."""
    name = "DejaVuSansMono" if mono else "DejaVuSans"
    name += "-Bold.ttf" if bold else ".ttf"
    for folder in FONT_DIRS:
        if (folder / name).is_file():
            return folder / name
    raise click.ClickException(f"the DejaVu fonts are not installed ({name}); install fonts-dejavu-core")


def draw_text(picture, seed: int, kind: str | None = None, scale: float = 1.0):
    """Draw one block of text of `kind` (sign, menu, receipt, screen, plate; by seed when None) on a copy of
    the PIL `picture`, slightly turned, somewhere inside it; returns the copy and the lines drawn. `scale`
    multiplies the font size (1.0: the sizes a 12-megapixel photo shows them at)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    kinds = ("sign", "menu", "receipt", "screen", "plate")
    kind = kind or kinds[seed % len(kinds)]
    if kind not in kinds:
        raise ValueError(f"unknown kind of text {kind!r}; one of {', '.join(kinds)}")
    size_at = {
        "sign": (120, 260),
        "menu": (60, 100),
        "receipt": (28, 50),
        "screen": (30, 56),
        "plate": (110, 170),
    }
    low, high = size_at[kind]
    size = max(8, round(int(rng.integers(low, high + 1)) * scale * picture.width / PHOTO_SIZE[0]))
    if kind == "sign":
        lines = [_phrase(rng, int(rng.integers(1, 3))).upper() for _ in range(int(rng.integers(1, 3)))]
        layer = _board(rng, lines, size, bold=True)
    elif kind == "menu":
        lines = [f"{_phrase(rng, 1).capitalize()} {_price(rng)}" for _ in range(int(rng.integers(4, 7)))]
        layer = _board(rng, lines, size, bold=False)
    elif kind == "receipt":
        lines = [f"{_phrase(rng, 2).upper():<22}{_price(rng):>7}" for _ in range(int(rng.integers(8, 14)))]
        lines.append(f"{'TOTAL':<22}{_price(rng):>7}")
        layer = _paper(lines, size)
    elif kind == "screen":
        lines = [_phrase(rng, int(rng.integers(3, 6))).capitalize() for _ in range(int(rng.integers(5, 9)))]
        layer = _screen(rng, lines, size)
    else:
        letters = list(_PLATE_LETTERS)
        lines = [f"{''.join(rng.choice(letters, 2))}{rng.integers(10, 99)} {''.join(rng.choice(letters, 3))}"]
        layer = _board(rng, lines, size, bold=True, plate=True)
    layer = layer.rotate(float(rng.uniform(-5, 5)), resample=Image.Resampling.BICUBIC, expand=True)
    x = int(rng.integers(0, max(1, picture.width - layer.width)))
    y = int(rng.integers(0, max(1, picture.height - layer.height)))
    drawn = picture.copy()
    drawn.paste(layer, (x, y), layer)
    return drawn, lines


def _phrase(rng: np.random.Generator, count: int) -> str:
    return " ".join(str(rng.choice(WORDS)) for _ in range(count))


def _price(rng: np.random.Generator) -> str:
    return f"{rng.integers(1, 40)}.{rng.integers(0, 100):02d}"


def _board(rng: np.random.Generator, lines: list[str], size: int, *, bold: bool, plate: bool = False):
    """A sign: lines on a rounded board, dark on light or light on dark (a plate: black on yellow or white)."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(str(font_path(bold=bold, mono=plate)), size)
    width = int(max(font.getlength(line) for line in lines) + size * 1.2)
    height = int(len(lines) * size * 1.35 + size * 0.8)
    if plate:
        board, ink = ((250, 205, 30) if rng.random() < 0.5 else (245, 245, 245)), (15, 15, 15)
    elif rng.random() < 0.5:
        board, ink = (
            tuple(int(c) for c in rng.integers(10, 80, 3)),
            tuple(int(c) for c in rng.integers(220, 256, 3)),
        )
    else:
        board, ink = (
            tuple(int(c) for c in rng.integers(200, 256, 3)),
            tuple(int(c) for c in rng.integers(0, 60, 3)),
        )
    layer = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    draw.rounded_rectangle((0, 0, width - 1, height - 1), radius=max(1, size // 4), fill=(*board, 255))
    for i, line in enumerate(lines):
        draw.text((size * 0.6, size * 0.4 + i * size * 1.35), line, font=font, fill=(*ink, 255))
    return layer


def _paper(lines: list[str], size: int):
    """A till receipt: monospaced lines on off-white paper."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(str(font_path(mono=True)), size)
    width = int(max(font.getlength(line) for line in lines) + size * 2)
    height = int(len(lines) * size * 1.4 + size * 2)
    layer = Image.new("RGBA", (width, height), (245, 243, 235, 255))
    draw = ImageDraw.Draw(layer)
    for i, line in enumerate(lines):
        draw.text((size, size + i * size * 1.4), line, font=font, fill=(40, 40, 45, 255))
    return layer


def _screen(rng: np.random.Generator, lines: list[str], size: int):
    """A screenshot-like panel: a coloured title bar over lines of text, light or dark theme."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(str(font_path()), size)
    width = int(max(font.getlength(line) for line in lines) + size * 2)
    height = int(len(lines) * size * 1.6 + size * 3)
    dark = rng.random() < 0.5
    background, ink = ((30, 32, 38), (230, 230, 230)) if dark else ((250, 250, 252), (20, 20, 30))
    layer = Image.new("RGBA", (width, height), (*background, 255))
    draw = ImageDraw.Draw(layer)
    draw.rectangle((0, 0, width, int(size * 1.5)), fill=(60, 110, 200, 255))
    for i, line in enumerate(lines):
        draw.text((size, size * 2.2 + i * size * 1.6), line, font=font, fill=(*ink, 255))
    return layer


def text_photo_folder(folder: Path, count: int, size: tuple[int, int] = PHOTO_SIZE) -> dict[str, list[str]]:
    """`count` JPEG photos in `folder`, one in TEXT_EVERY with text drawn on it; returns {name: lines drawn}
    for those. The others are the visual benchmark's photo-like pictures, as they are."""
    from PIL import Image

    plain = photo_folder(folder.parent / f"{folder.name}-plain", count)
    folder.mkdir(parents=True)
    written: dict[str, list[str]] = {}
    for i, source in enumerate(sorted(plain.iterdir())):
        target = folder / source.name
        if i % TEXT_EVERY and size == PHOTO_SIZE:
            source.rename(target)  # as the visual benchmark made it
            continue
        with Image.open(source) as opened:
            picture = opened.convert("RGB")
        if size != PHOTO_SIZE:
            picture = picture.resize(size, Image.Resampling.BILINEAR)
        if i % TEXT_EVERY == 0:
            picture, written[target.name] = draw_text(picture, seed=i // TEXT_EVERY)
        picture.save(target, quality=90)
    shutil.rmtree(plain, ignore_errors=True)
    return written


@click.command("read")
@click.option(
    "--photos", type=click.IntRange(5, 10_000), default=25, show_default=True, help="Photos generated."
)
@click.option("--runs", type=click.IntRange(1, 20), default=3, show_default=True, help="Median over runs.")
@click.option(
    "--workers", type=click.IntRange(1, 16), default=1, show_default=True, help="Reading processes."
)
@click.option(
    "--nice",
    type=click.IntRange(0, 19),
    default=0,
    show_default=True,
    help="The readers' niceness (indexing uses 19; 0 times them at the reference's priority).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
def command(photos: int, runs: int, workers: int, nice: int, as_json: bool) -> None:
    """Read generated 12 MP photos (a fifth with text) through the reading pass; compare with rapidocr."""
    emit(time_read(photos, runs=runs, workers=workers, nice=nice), as_json)


def time_read(
    photos: int = 25,
    *,
    runs: int = 3,
    workers: int = 1,
    nice: int = 0,
    size: tuple[int, int] = PHOTO_SIZE,
    settings: ReadSettings | None = None,
) -> dict[str, Any]:
    """Photos per second of ReadPool and of `RapidOCR()(path)` on the same generated folder, taking turns run
    by run, and the words each found on the photos with text, compared with the words drawn there.

    The pool's workers run at niceness `nice` (the reference at this process's): indexing runs them at 19,
    which on a busy machine decides who gets the processor, not how fast either reads."""

    settings = settings or ReadSettings()
    work = Path(tempfile.mkdtemp(prefix="glimpse-bench-read-"))
    reference = _Reference(worker_context())
    try:
        written = text_photo_folder(work / "photos", photos, size)
        paths = sorted(os.fsencode(path) for path in (work / "photos").iterdir())
        with ReadPool(workers=workers, settings=settings, nice=nice) as pool:
            started = time.perf_counter()
            pool.start()
            start_s = time.perf_counter() - started
            pool.read(paths[0])  # first-call allocations, for both readers, untimed
            reference.read(paths[:1])
            ours_s, reference_s, ours_cpu, reference_cpu = [], [], [], []
            for run in range(runs):
                # Taking turns, and each going first in every other run, so that load drift touches both.
                for turn in (0, 1) if run % 2 == 0 else (1, 0):
                    started = time.perf_counter()
                    if turn == 0:
                        cpu = pool.cpu_seconds()
                        results = pool.read_many(paths)
                        ours_s.append(time.perf_counter() - started)
                        ours_cpu.append(pool.cpu_seconds() - cpu)
                    else:
                        cpu = reference.cpu_seconds()
                        reference_texts = reference.read(paths)
                        reference_s.append(time.perf_counter() - started)
                        reference_cpu.append(reference.cpu_seconds() - cpu)
                click.echo(
                    f"run {run + 1}/{runs}: Glimpse {ours_s[-1]:.1f} s, rapidocr {reference_s[-1]:.1f} s",
                    err=True,
                )
    finally:
        reference.close()
        shutil.rmtree(work, ignore_errors=True)
    names = [os.fsdecode(os.path.basename(path)) for path in paths]
    ours = {
        n: words(line.text for line in r.lines) for n, r in zip(names, results, strict=True) if n in written
    }
    theirs = {n: words(texts or ()) for n, texts in zip(names, reference_texts, strict=True) if n in written}
    truth = {n: words(lines) for n, lines in written.items()}
    lost = sorted({w for n in truth for w in (theirs[n] & truth[n]) - ours[n]})
    rate, reference_rate = photos / statistics.median(ours_s), photos / statistics.median(reference_s)
    return {
        "photos": photos,
        "photos_with_text": len(written),
        "size": f"{size[0]}x{size[1]}",
        "runs": runs,
        "workers": workers,
        "threads_per_worker": settings.threads,
        "nice": nice,
        "photos_per_second": round(rate, 3),
        "reference_photos_per_second": round(reference_rate, 3),
        "ratio": round(rate / reference_rate, 2),
        # Processor time per photo does not depend on what else the machine runs, as wall-clock time does.
        "cpu_seconds_per_photo": round(statistics.median(ours_cpu) / photos, 3),
        "reference_cpu_seconds_per_photo": round(statistics.median(reference_cpu) / photos, 3),
        "cpu_ratio": round(statistics.median(reference_cpu) / max(statistics.median(ours_cpu), 1e-9), 2),
        "seconds_per_run": [round(s, 2) for s in ours_s],
        "reference_seconds_per_run": [round(s, 2) for s in reference_s],
        "start_seconds": round(start_s, 2),
        "words_written": sum(len(w) for w in truth.values()),
        "words_found": sum(len(ours[n] & truth[n]) for n in truth),
        "reference_words_found": sum(len(theirs[n] & truth[n]) for n in truth),
        "words_lost": len(lost),
        "lost": lost,
        "misreads": sum(len(ours[n] - truth[n]) for n in truth),
        "reference_misreads": sum(len(theirs[n] - truth[n]) for n in truth),
        "errors": sum(1 for r in results if r.error),
    }


class _Reference:
    """rapidocr's default call, in a child process of its own (started as the reading workers are)."""

    def __init__(self, context) -> None:
        self._connection, child = context.Pipe()
        self._process = context.Process(target=_reference_serve, args=(child,), daemon=True)
        self._process.start()
        child.close()

    def read(self, paths: Sequence[bytes]) -> list[list[str] | None]:
        """The texts rapidocr found in each file (None where it raised)."""
        self._connection.send(list(paths))
        while not self._connection.poll(1.0):
            if not self._process.is_alive():
                raise click.ClickException(
                    f"rapidocr's reference process died (exit code {self._process.exitcode})"
                )
        return self._connection.recv()

    def cpu_seconds(self) -> float:
        """Processor time the reference process has used so far."""
        return process_cpu_seconds(self._process.pid) or 0.0

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._connection.send(None)
        self._process.join(5)
        if self._process.is_alive():
            self._process.kill()
        self._connection.close()


def _reference_serve(connection) -> None:
    import logging

    from rapidocr import RapidOCR

    engine = RapidOCR()  # the documented default
    logging.getLogger("RapidOCR").setLevel(logging.ERROR)  # its progress messages only; reading is the same
    # A benchmark interrupted (Ctrl+C) leaves this process without a parent: it ends quietly.
    with contextlib.suppress(EOFError, BrokenPipeError, ConnectionResetError, KeyboardInterrupt):
        while (paths := connection.recv()) is not None:
            texts: list[list[str] | None] = []
            for path in paths:
                try:
                    texts.append(list(engine(os.fsdecode(path)).txts or ()))
                except Exception:  # the reference's failures are counted as finding nothing
                    texts.append(None)
            connection.send(texts)
