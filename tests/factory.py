"""Real media files for tests, made on the spot; the same seed gives the same pictures.

`make_photo` and `make_video` write pictures that look enough like the real thing (a sky, a sun, a horizon,
shapes, grain; motion and shots in videos) for decoders, orientation handling and scene detection to be tested
on them, with the GPS position and location tags cameras and phones write. `make_hostile_files` writes the
files a real disk throws at an indexer, `make_bad_metadata_files` readable files whose metadata is garbage;
`exif_bytes` writes any EXIF, malformed included, field by field.
"""

import contextlib
import math
import os
import random
import struct
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pillow_heif
from PIL import Image, ImageDraw, ImageFont

from engine.bench.read import font_path

pillow_heif.register_heif_opener()

Color = tuple[int, int, int]

PHOTO_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "HEIF")
_EXIF_FORMATS = {"JPEG", "PNG", "WEBP", "TIFF", "HEIF"}

# The transposition that undoes each EXIF orientation, so the stored pixels display upright once a viewer
# applies the orientation (exactly what a camera held sideways produces).
_UNDO_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}

_GPS_IFD = 0x8825
_EXIF_IFD = 0x8769

SUN_COLOR: Color = (255, 236, 170)
MARKER_COLOR: Color = (255, 255, 255)


def make_photo(
    path: Path,
    *,
    fmt: str = "JPEG",
    size: tuple[int, int] = (640, 480),
    seed: int = 0,
    color: Color | None = None,
    exif_orientation: int | None = None,
    taken_at: datetime | None = None,
    gps: tuple[float, float] | None = None,
    exif: bytes | None = None,
    text: Sequence[str] = (),
) -> Path:
    """Write a landscape photo: sky on top, a sun in the top-left corner, ground and shapes below, grain.

    `size` is the stored pixel size, as a camera writes it; with `exif_orientation` 5 to 8 a viewer shows it
    turned (height × width). Whatever the orientation, the picture a correct viewer shows is upright: sky on
    top, sun at the top left. `color` is the sky's colour (the picture's dominant one); None picks one from the
    seed. `taken_at` is written as EXIF DateTimeOriginal and DateTime, `gps` (latitude, longitude in decimal
    degrees) as the GPS IFD a phone writes (degrees, minutes, seconds as rationals, N/S and E/W references).
    `exif` is a whole EXIF block written as given (see `exif_bytes`), instead of those three. `text` lines are
    drawn on a sign in the middle of the picture, dark on light, in the machine's DejaVu font, as a shop sign or
    a label shows them (see `draw_sign`). `fmt` is one of
    PHOTO_FORMATS; GIF and BMP hold no EXIF, so asking them for any of it is a ValueError.
    """
    fmt = fmt.upper()
    if fmt not in PHOTO_FORMATS:
        raise ValueError(f"unknown photo format {fmt!r}; one of {', '.join(PHOTO_FORMATS)}")
    wants_exif = (
        exif_orientation not in (None, 1) or taken_at is not None or gps is not None or exif is not None
    )
    if wants_exif and fmt not in _EXIF_FORMATS:
        raise ValueError(f"{fmt} files cannot hold EXIF orientation, dates or GPS")
    if exif is not None and (exif_orientation is not None or taken_at is not None or gps is not None):
        raise ValueError(
            "exif is the whole EXIF block: give it alone, without exif_orientation, taken_at or gps"
        )
    turned = exif_orientation in (5, 6, 7, 8)
    shown = (size[1], size[0]) if turned else size
    picture = _landscape(shown, seed, color)
    if text:
        draw_sign(picture, text)
    if exif_orientation in _UNDO_ORIENTATION:
        picture = picture.transpose(_UNDO_ORIENTATION[exif_orientation])
    options: dict[str, object] = {}
    if exif is not None:
        options["exif"] = exif
    elif exif_orientation is not None or taken_at is not None or gps is not None:
        options["exif"] = _exif(exif_orientation, taken_at, gps).tobytes()
    if fmt == "GIF":
        picture = picture.quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    elif fmt == "JPEG":
        options["quality"] = 90
    elif fmt == "HEIF":
        options["enc_params"] = {"preset": "ultrafast"}  # x265's default preset takes seconds per photo
    path.parent.mkdir(parents=True, exist_ok=True)
    picture.save(path, fmt, **options)
    return path


def make_video(
    path: Path,
    *,
    seconds: float = 20,
    fps: int = 10,
    size: tuple[int, int] = (320, 240),
    seed: int = 0,
    scenes: int = 1,
    keyframe_interval: int | None = None,
    rotation: int = 0,
    taken_at: datetime | None = None,
    metadata: Mapping[str, str] | None = None,
    caption: tuple[str, float, float] | None = None,
) -> Path:
    """Write a video of `scenes` equally long shots, each its own colours, with a ball moving across it.

    The writer follows the suffix: .mp4, .m4v and .mov get MPEG-4 part 2 ("mp4v") and .avi MJPEG, both
    through OpenCV as many real files are made (OpenCV's MPEG-4 puts a keyframe every 12 frames and one at
    each scene cut); .mkv gets MPEG-4 and .webm VP8 through PyAV. Every frame differs from the last, shots
    differ strongly from each other, and a white marker sits at the top left of the picture a correct player
    shows. `size` is the stored frame size; `rotation` (90, 180 or 270) is how far a player turns the picture
    counterclockwise (FFmpeg's display matrix), as phones record portrait video, so 90 and 270 show height ×
    width. `keyframe_interval` (frames) asks for exactly that keyframe spacing and none at scene cuts, like a
    screen recording; `taken_at` is written as the container's creation_time (naive means UTC). `metadata`
    tags are written into the container as given, as phones write them: {"location": "+64.1355-021.8954/"}
    becomes MP4's ©xyz (Android) or Matroska's LOCATION, and keys starting "com.apple.quicktime." become
    QuickTime metadata keys (iPhone), e.g. "com.apple.quicktime.location.ISO6709". These four need H.264
    through PyAV: .mp4, .mov, .m4v or .mkv. `caption` (text, from, to seconds) is drawn on a sign on screen
    during that time, as a title card, a gate number or a subtitle shows.
    """
    suffix = path.suffix.lower()
    shown = (size[1], size[0]) if rotation % 180 else size
    if caption is not None:
        frames_shown = _captioned(_video_frames(seconds, fps, shown, seed, scenes), fps, *caption)
    else:
        frames_shown = _video_frames(seconds, fps, shown, seed, scenes)
    # Stored turned back the other way, so that the player's turn shows it upright.
    frames = (np.ascontiguousarray(np.rot90(f, k=-rotation // 90)) for f in frames_shown)
    path.parent.mkdir(parents=True, exist_ok=True)
    if keyframe_interval is not None or rotation or taken_at is not None or metadata:
        if suffix not in (".mp4", ".mov", ".m4v", ".mkv"):
            raise ValueError(
                "keyframe_interval, rotation, taken_at and metadata need .mp4, .mov, .m4v or .mkv"
            )
        _write_with_pyav(path, frames, fps, size, "libx264", keyframe_interval, rotation, taken_at, metadata)
    elif suffix in (".mp4", ".m4v", ".mov", ".avi"):
        fourcc = cv2.VideoWriter_fourcc(*("MJPG" if suffix == ".avi" else "mp4v"))
        writer = cv2.VideoWriter(str(path), fourcc, fps, size)
        if not writer.isOpened():
            raise RuntimeError(f"OpenCV cannot write {path.name}")
        for frame in frames:
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        writer.release()
    elif suffix in (".mkv", ".webm"):
        _write_with_pyav(path, frames, fps, size, "libvpx" if suffix == ".webm" else "mpeg4")
    else:
        raise ValueError(f"no video writer for {suffix!r}")
    return path


def make_hostile_files(folder: Path) -> dict[str, Path]:
    """Write, under `folder`, one of each kind of file an indexer must survive; keys name them.

    Expected outcome of scanning `folder` and decoding what the scan yields:

    - indexed: "non_utf8_name" (b"caf\\xe9.jpg", a valid photo whose name is not UTF-8; left out on file
      systems that refuse such names, macOS for one).
    - failed, a MediaError when decoded (the scan yields them): "truncated_jpeg", "truncated_mp4",
      "random_jpeg" (JPEG header, random body), "random_png", "empty_jpg" (zero bytes), "text_jpg"
      (a text file named .jpg), "bomb_png" (a tiny PNG that claims 40000×40000 pixels).
    - skipped by the scan, no error: "loop" (loop/up links to `folder`, the folder above it), "dangling"
      (dangling.jpg links to nothing; logged as a warning), "hidden_file" (.secret.jpg), "hidden_folder"
      (.cache/x.jpg), "resource_fork" (macOS ._IMG_0001.jpg), "notes" (notes.txt).
    """
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(1234)
    files: dict[str, Path] = {}

    photo = make_photo(folder / "_source.jpg", size=(320, 240))
    data = photo.read_bytes()
    photo.unlink()
    files["truncated_jpeg"] = _write(folder / "truncated.jpg", data[: len(data) // 2])
    video = make_video(folder / "_source.mp4", seconds=2)
    files["truncated_mp4"] = _write(folder / "truncated.mp4", video.read_bytes()[: video.stat().st_size // 2])
    video.unlink()
    noise = bytes(rng.getrandbits(8) for _ in range(4096))
    files["random_jpeg"] = _write(folder / "random.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + noise)
    files["random_png"] = _write(folder / "random.png", b"\x89PNG\r\n\x1a\n" + noise)
    files["empty_jpg"] = _write(folder / "empty.jpg", b"")
    files["text_jpg"] = _write(
        folder / "text.jpg", b"This is not a photo, only a text file named like one.\n"
    )
    files["bomb_png"] = _write(folder / "bomb.png", png_claiming(40000, 40000))

    files["loop"] = folder / "loop"
    files["loop"].mkdir(exist_ok=True)
    (files["loop"] / "up").symlink_to("..", target_is_directory=True)
    files["dangling"] = folder / "dangling.jpg"
    files["dangling"].symlink_to(folder / "no-such-photo.jpg")
    files["hidden_file"] = make_photo(folder / ".secret.jpg", size=(64, 48))
    files["hidden_folder"] = make_photo(folder / ".cache" / "x.jpg", size=(64, 48))
    files["resource_fork"] = _write(folder / "._IMG_0001.jpg", b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X")
    files["notes"] = _write(folder / "notes.txt", b"shopping list\n")

    non_utf8 = Path(os.fsdecode(os.path.join(os.fsencode(folder), b"caf\xe9.jpg")))
    with contextlib.suppress(OSError):  # the file system accepts only UTF-8 names
        files["non_utf8_name"] = make_photo(non_utf8, size=(320, 240), seed=7)
    return files


def png_claiming(width: int, height: int) -> bytes:
    """A well-formed, tiny PNG whose header claims `width` × `height` pixels: a decompression bomb's shape."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    pixels = zlib.compress(b"\x00" * (1 + 3 * min(width, 64)))  # one short row: a real bomb is tiny too
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


@dataclass(frozen=True)
class ExifField:
    """One raw EXIF entry: `tag`, TIFF `type` (one of the constants below) and its values.

    ASCII takes a str (written with its NUL); BYTE and UNDEFINED take bytes; SHORT and LONG ints; RATIONAL and
    SRATIONAL (numerator, denominator) pairs, written exactly, zero denominators included; DOUBLE floats.
    """

    tag: int
    type: int
    value: str | bytes | Sequence[int] | Sequence[tuple[int, int]] | Sequence[float]


BYTE, ASCII, SHORT, LONG, RATIONAL, UNDEFINED, SRATIONAL, DOUBLE = 1, 2, 3, 4, 5, 7, 10, 12
_PACKING = {BYTE: "B", SHORT: "H", LONG: "I", RATIONAL: "II", SRATIONAL: "ii", DOUBLE: "d"}


def exif_bytes(
    gps: Iterable[ExifField] = (),
    *,
    date_time_original: str | None = None,
    date_time: str | None = None,
    big_endian: bool = False,
) -> bytes:
    """An EXIF block ("Exif\\0\\0" + TIFF) holding exactly the given GPS IFD entries and date strings.

    PIL writes only well-formed values; this writes anything, so that every kind of broken metadata a real
    camera or app produces can be put in a file: pass the result as make_photo's `exif`.
    """
    order = ">" if big_endian else "<"
    exif_ifd = [ExifField(36867, ASCII, date_time_original)] if date_time_original is not None else []
    ifd0 = [ExifField(306, ASCII, date_time)] if date_time is not None else []
    gps = list(gps)
    # Sub-IFD pointers are LONGs whose values depend on where the sub-IFDs land: lay out twice.
    pointers = {_EXIF_IFD: 0, _GPS_IFD: 0}
    for _ in range(2):
        entries = [*ifd0]
        if exif_ifd:
            entries.append(ExifField(_EXIF_IFD, LONG, [pointers[_EXIF_IFD]]))
        if gps:
            entries.append(ExifField(_GPS_IFD, LONG, [pointers[_GPS_IFD]]))
        head = _ifd_bytes(entries, 8, order)
        offset = 8 + len(head)
        pointers[_EXIF_IFD] = offset
        exif_part = _ifd_bytes(exif_ifd, offset, order) if exif_ifd else b""
        pointers[_GPS_IFD] = offset + len(exif_part)
        gps_part = _ifd_bytes(gps, pointers[_GPS_IFD], order) if gps else b""
    tiff = (b"MM" if big_endian else b"II") + struct.pack(order + "HI", 42, 8) + head + exif_part + gps_part
    return b"Exif\x00\x00" + tiff


def gps_fields(latitude: float, longitude: float) -> list[ExifField]:
    """The GPS IFD entries a phone writes for a position: references, and degrees/minutes/seconds rationals."""

    def rationals(degrees: float) -> list[tuple[int, int]]:
        d, m, s = _dms(degrees)
        return [(int(d), 1), (int(m), 1), (round(s * 10000), 10000)]

    return [
        ExifField(1, ASCII, "N" if latitude >= 0 else "S"),
        ExifField(2, RATIONAL, rationals(latitude)),
        ExifField(3, ASCII, "E" if longitude >= 0 else "W"),
        ExifField(4, RATIONAL, rationals(longitude)),
    ]


LISBON = (38.7223, -9.1393)
REYKJAVIK = (64.1355, -21.8954)


def make_bad_metadata_files(folder: Path) -> dict[str, Path]:
    """Write, under `folder`, readable photos and videos whose GPS or date metadata is garbage; keys name them.

    Every file decodes and indexes normally, and for every one the location is unknown (None) when the key
    starts with "gps_" or "video_location_", the capture date unknown when it starts with "date_" or
    "video_date_"; nothing else in them is wrong. The photos are JPEGs whose EXIF holds the broken field and
    otherwise what a phone writes (a correct date where the GPS is broken, Lisbon's GPS where the date is).
    """
    folder.mkdir(parents=True, exist_ok=True)
    good = gps_fields(*LISBON)
    ref_n, lat, ref_w, lon = good
    broken_gps: dict[str, list[ExifField]] = {
        "gps_zero_denominator": [ref_n, ExifField(2, RATIONAL, [(38, 0), (43, 1), (20, 1)]), ref_w, lon],
        "gps_all_zero_denominators": [
            ref_n,
            ExifField(2, RATIONAL, [(0, 0), (0, 0), (0, 0)]),
            ref_w,
            ExifField(4, RATIONAL, [(0, 0), (0, 0), (0, 0)]),
        ],
        "gps_string_rationals": [
            ref_n,
            ExifField(2, ASCII, "38/1 43/1 20/1"),
            ref_w,
            ExifField(4, ASCII, "9,8,21"),
        ],
        "gps_latitude_999": [ref_n, ExifField(2, RATIONAL, [(999, 1), (0, 1), (0, 1)]), ref_w, lon],
        "gps_longitude_200": [ref_n, lat, ref_w, ExifField(4, RATIONAL, [(200, 1), (0, 1), (0, 1)])],
        "gps_minutes_75": [ref_n, ExifField(2, RATIONAL, [(38, 1), (75, 1), (0, 1)]), ref_w, lon],
        "gps_nan": [ref_n, ExifField(2, DOUBLE, [math.nan, 0.0, 0.0]), ref_w, lon],
        "gps_infinity": [ref_n, lat, ref_w, ExifField(4, DOUBLE, [math.inf, 0.0, 0.0])],
        "gps_negative_rational": [ref_n, ExifField(2, SRATIONAL, [(-38, 1), (43, 1), (20, 1)]), ref_w, lon],
        "gps_empty_tags": [ExifField(1, ASCII, ""), ExifField(2, RATIONAL, []), ExifField(3, ASCII, ""), lon],
        "gps_empty_ifd": [ExifField(0, BYTE, b"\x02\x02\x00\x00")],  # GPSVersionID alone: no position
        "gps_missing_references": [lat, lon],
        "gps_wrong_references": [ExifField(1, ASCII, "E"), lat, ExifField(3, ASCII, "N"), lon],
        "gps_null_island": [
            ref_n,
            ExifField(2, RATIONAL, [(0, 1), (0, 1), (0, 1)]),
            ExifField(3, ASCII, "E"),
            ExifField(4, RATIONAL, [(0, 1), (0, 1), (0, 1)]),
        ],
    }
    files: dict[str, Path] = {}
    for seed, (name, fields) in enumerate(broken_gps.items()):
        exif = exif_bytes(fields, date_time_original="2019:07:14 10:30:00", big_endian=seed % 2 == 1)
        files[name] = make_photo(folder / f"{name}.jpg", size=(160, 120), seed=seed, exif=exif)
    broken_dates = {
        "date_year_2999": "2999:07:14 10:30:00",
        "date_year_1": "0001:01:01 00:00:00",
        "date_year_1800": "1800:07:14 10:30:00",
        "date_zero": "0000:00:00 00:00:00",
        "date_month_13": "2019:13:14 10:30:00",
        "date_day_32": "2019:07:32 10:30:00",
        "date_hour_25": "2019:07:14 25:30:00",
        "date_empty": "",
        "date_garbage": "yesterday at noon",
    }
    for seed, (name, stamp) in enumerate(broken_dates.items(), start=len(broken_gps)):
        exif = exif_bytes(good, date_time_original=stamp, date_time=stamp)
        files[name] = make_photo(folder / f"{name}.jpg", size=(160, 120), seed=seed, exif=exif)
    # MP4's muxer rewrites ©xyz from the numbers it parses (and drops what it cannot parse) and keeps dates in
    # 32 bits since 1904: garbage text goes into Matroska tags or Apple's keys, which are stored as written.
    broken_video_tags = {
        "video_location_garbage": (".mkv", {"location": "somewhere nice"}),
        "video_location_nan": (".mkv", {"location": "+nan+nan/"}),
        "video_location_blank": (".mkv", {"location": "  "}),
        "video_location_999": (".mp4", {"location": "+999.0000+000.0000/"}),
        "video_location_latitude_91": (".mp4", {"location": "+91.0000-009.1393/"}),
        "video_location_longitude_200": (".mp4", {"location": "+38.7223-200.0000/"}),
        "video_location_null_island": (".mp4", {"location": "+00.0000+000.0000/"}),
        "video_location_apple_cut_short": (".mov", {"com.apple.quicktime.location.ISO6709": "+38.7223"}),
        "video_date_2999": (".mov", {"com.apple.quicktime.creationdate": "2999-07-14T10:30:00+0100"}),
        "video_date_year_1": (".mov", {"com.apple.quicktime.creationdate": "0001-01-01T00:00:00+0000"}),
        "video_date_month_13": (".mov", {"com.apple.quicktime.creationdate": "2019-13-14T10:30:00+0100"}),
        "video_date_day_32": (".mov", {"com.apple.quicktime.creationdate": "2019-07-32T10:30:00+0100"}),
        # FFmpeg writes year 2999 into Matroska's DateUTC, which overflows: "1830-06-05T11:20:53.-419103Z".
        "video_date_overflowed": (".mkv", {"creation_time": "2999-07-14T10:30:00.000000Z"}),
    }
    for seed, (name, (suffix, tags)) in enumerate(broken_video_tags.items()):
        files[name] = make_video(
            folder / f"{name}{suffix}", seconds=1, fps=5, size=(64, 48), seed=seed, metadata=tags
        )
    return files


def _ifd_bytes(entries: Sequence[ExifField], start: int, order: str) -> bytes:
    """One IFD at file offset `start`: its entries sorted by tag, no next IFD, then the values too long to inline."""
    table = struct.pack(order + "H", len(entries))
    data = b""
    data_start = start + 2 + 12 * len(entries) + 4
    for entry in sorted(entries, key=lambda e: e.tag):
        count, payload = _payload(entry, order)
        if len(payload) <= 4:
            field = payload.ljust(4, b"\x00")
        else:
            field = struct.pack(order + "I", data_start + len(data))
            data += payload + b"\x00" * (len(payload) % 2)  # values start on a word boundary
        table += struct.pack(order + "HHI", entry.tag, entry.type, count) + field
    return table + struct.pack(order + "I", 0) + data


def _payload(entry: ExifField, order: str) -> tuple[int, bytes]:
    value = entry.value
    if entry.type == ASCII:
        encoded = value.encode("ascii") + b"\x00" if isinstance(value, str) else bytes(value)  # type: ignore[arg-type]
        return len(encoded), encoded
    if entry.type in (BYTE, UNDEFINED) and isinstance(value, bytes):
        return len(value), value
    packing = _PACKING[entry.type]
    items = list(value)  # type: ignore[arg-type]
    flat = [part for item in items for part in (item if isinstance(item, tuple) else (item,))]
    return len(items), struct.pack(order + packing * len(items), *flat)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _landscape(size: tuple[int, int], seed: int, color: Color | None) -> Image.Image:
    width, height = size
    rng = np.random.default_rng(seed)
    sky = np.array(color if color is not None else (70 + rng.integers(0, 60), 130 + rng.integers(0, 60), 230))
    horizon = int(height * rng.uniform(0.55, 0.7))
    ground = np.array((40 + rng.integers(0, 50), 110 + rng.integers(0, 50), 30 + rng.integers(0, 30)))
    if color is not None:
        ground = (ground + np.array(color)) / 2  # tinted too, so that the colour dominates the whole picture
    rows = np.empty((height, 3))
    fade = np.linspace(0, 1, horizon)[:, None]
    rows[:horizon] = sky * (1 - 0.35 * fade) + 255 * 0.35 * fade  # paler towards the horizon
    rows[horizon:] = ground * np.linspace(1, 0.55, height - horizon)[:, None]  # darker towards the viewer
    pixels = np.broadcast_to(np.clip(rows, 0, 255).astype(np.uint8)[:, None, :], (height, width, 3))
    picture = Image.fromarray(np.ascontiguousarray(pixels), "RGB")

    draw = ImageDraw.Draw(picture)
    radius = max(2, min(width, height) // 9)
    sun = (width * 0.18, height * 0.18)
    draw.ellipse((sun[0] - radius, sun[1] - radius, sun[0] + radius, sun[1] + radius), fill=SUN_COLOR)
    for _ in range(int(rng.integers(3, 7))):
        left = int(rng.integers(0, max(1, width - width // 6)))
        top = int(rng.integers(horizon - height // 8, height - height // 10))
        box = (
            left,
            top,
            left + int(rng.integers(width // 12, width // 5 + 2)),
            top + int(rng.integers(4, height // 6 + 5)),
        )
        fill = tuple(int(c) for c in rng.integers(20, 235, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=fill)

    grain = rng.standard_normal((height, width, 3), dtype=np.float32) * 6
    return Image.fromarray(np.clip(np.asarray(picture) + grain, 0, 255).astype(np.uint8), "RGB")


def _exif(orientation: int | None, taken_at: datetime | None, gps: tuple[float, float] | None) -> Image.Exif:
    exif = Image.Exif()
    if orientation is not None:
        exif[274] = orientation
    if taken_at is not None:
        stamp = taken_at.strftime("%Y:%m:%d %H:%M:%S")
        exif[306] = stamp  # DateTime
        exif.get_ifd(0x8769)[36867] = stamp  # Exif IFD: DateTimeOriginal
    if gps is not None:
        latitude, longitude = gps
        exif.get_ifd(_GPS_IFD).update(
            {
                1: "N" if latitude >= 0 else "S",
                2: _dms(latitude),
                3: "E" if longitude >= 0 else "W",
                4: _dms(longitude),
            }
        )
    return exif


def _dms(degrees: float) -> tuple[float, float, float]:
    """Unsigned degrees, minutes and seconds, as cameras store a coordinate (PIL writes them as rationals)."""
    minutes, seconds = divmod(abs(degrees) * 3600, 60)
    whole, minutes = divmod(minutes, 60)
    return float(whole), float(minutes), round(seconds, 4)


def _video_frames(
    seconds: float, fps: int, size: tuple[int, int], seed: int, scenes: int
) -> Iterator[np.ndarray]:
    """RGB frames: in each shot a gradient of the shot's colours drifts and a ball crosses the picture; a white
    marker stays at the top left."""
    width, height = size
    total = round(seconds * fps)
    x = np.linspace(0, 1, width, dtype=np.float32)[None, :]
    y = np.linspace(0, 1, height, dtype=np.float32)[:, None]
    for shot in range(scenes):
        # Shots far apart in colour and brightness, as cuts between real scenes are.
        base = np.array(_hsv_to_rgb((seed * 0.37 + shot * 0.39) % 1.0, 0.8, 0.35 + 0.5 * (shot % 2)))
        rng = np.random.default_rng((seed, shot))
        texture = rng.normal(0, 8, (height // 8 + 1, width // 8 + 1, 3)).astype(np.float32)
        texture = texture.repeat(8, 0).repeat(8, 1)[:height, :width] + base.astype(np.float32) * 0.7
        ball = tuple(int(c) for c in 255 - base)
        first, end = total * shot // scenes, total * (shot + 1) // scenes
        for index in range(first, end):
            drift = np.sin(2 * np.pi * (x + y * 0.5 + index / fps * 0.1))[:, :, None] * 0.15 + 0.15
            frame = np.clip(texture + base * drift, 0, 255).astype(np.uint8)
            phase = (index - first) / max(1, end - first)
            center = (int(width * (0.1 + 0.8 * phase)), int(height * (0.5 + 0.3 * np.sin(2 * np.pi * phase))))
            cv2.circle(frame, center, max(3, min(width, height) // 8), ball, thickness=-1)
            corner, side = min(width, height) // 20, min(width, height) // 8
            cv2.rectangle(frame, (corner, corner), (corner + side, corner + side), MARKER_COLOR, thickness=-1)
            yield frame


def draw_sign(picture: Image.Image, lines: Sequence[str]) -> Image.Image:
    """Draw `lines` on a light board across the middle of `picture`, in DejaVu Sans Bold, sized to fill it."""
    draw = ImageDraw.Draw(picture)
    width, height = picture.size
    size = max(
        10, min(height // (2 * len(lines) + 2), width // (max(len(line) for line in lines) * 0.75 + 2))
    )
    font = ImageFont.truetype(str(font_path(bold=True)), int(size))
    boxes = [draw.textbbox((0, 0), line, font=font) for line in lines]
    board_w = max(b[2] - b[0] for b in boxes) + 2 * int(size)
    board_h = sum(b[3] - b[1] for b in boxes) + int(size) * (len(lines) + 1)
    left, top = (width - board_w) // 2, (height - board_h) // 2
    draw.rectangle((left, top, left + board_w, top + board_h), fill=(240, 236, 220), outline=(60, 40, 20))
    y = top + int(size) // 2
    for line, box in zip(lines, boxes, strict=True):
        draw.text(((width - (box[2] - box[0])) // 2 - box[0], y - box[1]), line, font=font, fill=(25, 25, 30))
        y += box[3] - box[1] + int(size)
    return picture


def _captioned(frames: Iterator[np.ndarray], fps: int, text: str, start_s: float, end_s: float):
    for index, frame in enumerate(frames):
        if start_s <= index / fps < end_s:
            picture = Image.fromarray(frame)
            draw_sign(picture, [text])
            frame = np.asarray(picture)
        yield frame


def _hsv_to_rgb(h: float, s: float, v: float) -> Color:
    pixel = np.uint8([[[round(h * 179), round(s * 255), round(v * 255)]]])
    r, g, b = cv2.cvtColor(pixel, cv2.COLOR_HSV2RGB)[0, 0]
    return int(r), int(g), int(b)


def _write_with_pyav(
    path: Path,
    frames: Iterable[np.ndarray],
    fps: int,
    size: tuple[int, int],
    codec: str,
    keyframe_interval: int | None = None,
    rotation: int = 0,
    taken_at: datetime | None = None,
    metadata: Mapping[str, str] | None = None,
) -> None:
    metadata = dict(metadata or {})
    # FFmpeg's MOV muxer writes QuickTime metadata keys (mdta) only when asked to, as iPhones write them.
    apple = any(key.startswith("com.apple.quicktime.") for key in metadata)
    with av.open(str(path), "w", options={"movflags": "use_metadata_tags"} if apple else {}) as container:
        stream = container.add_stream(codec, rate=Fraction(fps))
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            stream.options = {"preset": "ultrafast"}
        elif codec == "libvpx":
            stream.options = {"deadline": "realtime", "cpu-used": "8"}
        if keyframe_interval is not None:
            stream.codec_context.gop_size = keyframe_interval
            stream.options |= {
                "x264-params": f"keyint={keyframe_interval}:min-keyint={keyframe_interval}:scenecut=0"
            }
        if rotation:
            stream.set_display_rotation(rotation)
        if taken_at is not None:
            utc = taken_at.astimezone(UTC) if taken_at.tzinfo else taken_at
            container.metadata["creation_time"] = utc.strftime("%Y-%m-%dT%H:%M:%S.000000Z")
        container.metadata.update(metadata)
        for index, pixels in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
