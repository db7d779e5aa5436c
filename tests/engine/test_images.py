import contextlib
import os
import time
import warnings
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from engine.errors import MediaError
from engine.media.images import MAX_PIXELS, decode_image
from tests.factory import (
    PHOTO_FORMATS,
    SUN_COLOR,
    make_bad_metadata_files,
    make_hostile_files,
    make_photo,
    png_claiming,
)

TAKEN = datetime(2019, 7, 14, 16, 30, 5)


def decode(path: Path, min_side: int = 448):
    return decode_image(os.fsencode(path), min_side=min_side)


def sun_position(image: Image.Image) -> tuple[float, float]:
    """Where the sun is, as fractions of width and height: it shows whether the photo is upright."""
    pixels = np.asarray(image).astype(int)
    near = np.abs(pixels - np.array(SUN_COLOR)).sum(axis=2) < 60
    ys, xs = np.nonzero(near)
    assert len(xs) > 0, "no sun in the picture"
    return xs.mean() / image.width, ys.mean() / image.height


def assert_upright(image: Image.Image) -> None:
    x, y = sun_position(image)
    assert x < 0.35 and y < 0.35, f"sun at ({x:.2f}, {y:.2f}): the picture is turned or mirrored"
    top, bottom = np.asarray(image)[: image.height // 4], np.asarray(image)[-image.height // 4 :]
    assert top.mean() > bottom.mean() + 40, "sky is not on top"


@pytest.mark.parametrize("fmt", PHOTO_FORMATS)
def test_every_format_decodes_upright_rgb_at_the_requested_size(tmp_path: Path, fmt: str) -> None:
    path = make_photo(tmp_path / f"photo.{fmt.lower()}", fmt=fmt, size=(960, 640))

    decoded = decode(path)

    assert decoded.image.mode == "RGB"
    assert (decoded.width, decoded.height) == (960, 640)
    assert decoded.image.size == (672, 448)
    assert_upright(decoded.image)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied(tmp_path: Path, orientation: int) -> None:
    path = make_photo(tmp_path / "camera.jpg", size=(900, 600), exif_orientation=orientation)

    decoded = decode(path, min_side=300)

    turned = orientation >= 5
    assert (decoded.width, decoded.height) == ((600, 900) if turned else (900, 600))
    assert decoded.image.size == ((300, 450) if turned else (450, 300))
    assert_upright(decoded.image)


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "TIFF", "HEIF"])
def test_a_photo_taken_in_portrait_comes_out_portrait_in_every_exif_format(tmp_path: Path, fmt: str) -> None:
    path = make_photo(
        tmp_path / f"p.{fmt.lower()}", fmt=fmt, size=(640, 480), exif_orientation=6, taken_at=TAKEN
    )

    decoded = decode(path, min_side=240)

    assert (decoded.width, decoded.height) == (480, 640)
    assert decoded.image.height > decoded.image.width
    assert_upright(decoded.image)
    assert decoded.taken_at == TAKEN


def test_capture_date_prefers_date_time_original(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[306] = "2024:01:01 10:00:00"  # DateTime: when the file was last edited
    exif.get_ifd(0x8769)[36867] = "2019:07:14 16:30:05"  # DateTimeOriginal: when the shutter fired
    path = tmp_path / "edited.jpg"
    Image.new("RGB", (64, 48), "gray").save(path, exif=exif)

    assert decode(path).taken_at == TAKEN


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("2019:07:14 16:30:05", TAKEN),
        ("2019-07-14 16:30:05\x00", TAKEN),
        ("0000:00:00 00:00:00", None),  # a camera whose clock was never set
        ("    :  :     :  :  ", None),
        ("2019:13:45 99:99:99", None),
        ("yesterday", None),
    ],
)
def test_capture_date_falls_back_to_date_time_and_survives_garbage(
    tmp_path: Path, stamp: str, expected: datetime | None
) -> None:
    exif = Image.Exif()
    exif[306] = stamp
    path = tmp_path / "old.jpg"
    Image.new("RGB", (64, 48), "gray").save(path, exif=exif)

    assert decode(path).taken_at == expected


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("2999:07:14 16:30:05", None),
        (f"{datetime.now().year + 2}:01:01 00:00:00", None),  # later than next year
        (f"{datetime.now().year + 1}:12:31 23:59:59", datetime(datetime.now().year + 1, 12, 31, 23, 59, 59)),
        ("0001:01:01 00:00:00", None),
        ("1825:12:31 23:59:59", None),  # before the first photograph
        ("1826:01:01 00:00:00", datetime(1826, 1, 1)),
        ("1901:05:06 07:08:09", datetime(1901, 5, 6, 7, 8, 9)),  # a scanned print keeps its date
        ("2019:13:14 16:30:05", None),
        ("2019:07:32 16:30:05", None),
        ("2019:02:29 16:30:05", None),  # not a leap year
        ("2019:07:14 25:30:05", None),
        ("2019:07:14 16:61:05", None),
    ],
)
def test_impossible_capture_dates_are_unknown(tmp_path: Path, stamp: str, expected: datetime | None) -> None:
    exif = Image.Exif()
    exif.get_ifd(0x8769)[36867] = stamp
    path = tmp_path / "dated.jpg"
    Image.new("RGB", (64, 48), "gray").save(path, exif=exif)

    assert decode(path).taken_at == expected


def test_an_impossible_shutter_time_falls_back_to_the_file_time(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif.get_ifd(0x8769)[36867] = "2999:07:14 16:30:05"
    exif[306] = "2019:07:14 16:30:05"
    path = tmp_path / "dated.jpg"
    Image.new("RGB", (64, 48), "gray").save(path, exif=exif)

    assert decode(path).taken_at == TAKEN


def test_every_photo_with_a_broken_date_decodes_with_no_date(tmp_path: Path) -> None:
    files = make_bad_metadata_files(tmp_path)
    dated = {name: path for name, path in files.items() if name.startswith("date_")}
    assert len(dated) >= 8
    for name, path in dated.items():
        decoded = decode(path)
        assert decoded.taken_at is None, name
        assert decoded.location is not None, f"{name}: the rest of the EXIF must still be read"


def test_no_exif_means_no_capture_date(tmp_path: Path) -> None:
    assert decode(make_photo(tmp_path / "plain.png", fmt="PNG")).taken_at is None


def test_small_pictures_are_never_enlarged(tmp_path: Path) -> None:
    decoded = decode(make_photo(tmp_path / "icon.png", fmt="PNG", size=(300, 120)))

    assert decoded.image.size == (300, 120)


def test_a_large_jpeg_comes_out_small_with_its_full_size_reported(tmp_path: Path) -> None:
    path = make_photo(tmp_path / "big.jpg", size=(2400, 1800), exif_orientation=8)

    decoded = decode(path)  # decoded at 1/4 scale by the JPEG decoder, then shrunk the rest of the way

    assert (decoded.width, decoded.height) == (1800, 2400)
    assert decoded.image.size == (448, 597)
    assert_upright(decoded.image)


def save(image: Image.Image, path: Path, **options: object) -> Path:
    image.save(path, **options)
    return path


def test_transparent_areas_are_shown_on_white(tmp_path: Path) -> None:
    rgba = Image.new("RGBA", (80, 60), (0, 0, 0, 0))
    rgba.paste((200, 0, 0, 255), (0, 0, 40, 60))
    palette = rgba.convert("P")  # keeps the transparent index in info["transparency"]
    for path in (
        save(rgba, tmp_path / "rgba.png"),
        save(palette, tmp_path / "palette.png", transparency=palette.info.get("transparency", 0)),
        save(rgba.convert("LA"), tmp_path / "la.png"),
        save(rgba, tmp_path / "rgba.webp", lossless=True),
    ):
        image = decode(path).image
        assert image.mode == "RGB"
        assert image.getpixel((70, 30)) == (255, 255, 255), path.name
        assert image.getpixel((10, 30))[1] < 80, path.name


def test_uncommon_colour_modes_become_sensible_rgb(tmp_path: Path) -> None:
    gradient = np.tile(np.linspace(0, 65535, 100, dtype=np.uint16), (50, 1))
    sixteen_bit = save(Image.fromarray(gradient), tmp_path / "scan16.png")
    cmyk = save(Image.new("CMYK", (100, 50), (0, 255, 255, 0)), tmp_path / "print.jpg")
    bilevel = save(Image.new("1", (100, 50), 1), tmp_path / "fax.tif")

    sixteen = np.asarray(decode(sixteen_bit).image)
    assert sixteen[0, 0].tolist() == [0, 0, 0] and sixteen[0, -1].tolist() == [255, 255, 255]
    assert 100 < sixteen[0, 50, 0] < 160  # a gradient, not clipped to white
    red, green, blue = decode(cmyk).image.getpixel((50, 25))
    assert red > 200 and green < 60 and blue < 60
    assert decode(bilevel).image.getpixel((0, 0)) == (255, 255, 255)


def test_an_animated_gif_gives_its_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (60, 40), color) for color in ("red", "blue", "green")]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)

    assert decode(path).image.getpixel((30, 20)) == (255, 0, 0)


@pytest.mark.parametrize(("width", "height"), [(40000, 40000), (15000, 15000), (100_000, 5_000)])
@pytest.mark.parametrize("warning", ["error", "ignore"])  # as Glimpse sets it, and as after a filter reset
def test_decompression_bombs_are_refused_at_once(
    tmp_path: Path, width: int, height: int, warning: str
) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(png_claiming(width, height))  # a few dozen bytes claiming up to 1.6 gigapixels
    assert path.stat().st_size < 200 and width * height > MAX_PIXELS

    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter(warning, Image.DecompressionBombWarning)
        with pytest.raises(
            MediaError, match=r"^image too large: [\d×]+ (megapixels|pixels) is over the 200-megapix"
        ):
            decode(path)
    assert time.perf_counter() - started < 0.5  # refused from the header, nothing was allocated


def test_every_hostile_image_is_a_clear_media_error(tmp_path: Path) -> None:
    files = make_hostile_files(tmp_path)
    expected = {
        "truncated_jpeg": "not a readable image: image file is truncated",
        "random_jpeg": "not a readable image:",
        "random_png": "not a readable image:",
        "empty_jpg": "not a readable image: the file is empty",
        "text_jpg": "not a readable image: the file is in no image format Glimpse knows",
        "bomb_png": "image too large: 1600 megapixels is over the 200-megapixel limit",
    }
    for key, message in expected.items():
        with pytest.raises(MediaError) as failure:
            decode(files[key])
        text = str(failure.value)
        assert text.startswith(message), f"{key}: {text}"
        assert "\n" not in text and "Errno" not in text and str(tmp_path) not in text, f"{key}: {text}"
    if "non_utf8_name" in files:
        assert decode(files["non_utf8_name"]).image.size == (320, 240)


def test_a_missing_file_is_a_media_error(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match=r"^file not found: it was moved or deleted$"):
        decode(tmp_path / "gone.jpg")


HEADERS = [
    b"",
    b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
    b"\x89PNG\r\n\x1a\n",
    b"GIF89a",
    b"BM",
    b"II*\x00",
    b"RIFF",
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(header=st.sampled_from(HEADERS), body=st.binary(max_size=2000))
def test_random_bytes_never_raise_anything_but_media_error(
    tmp_path: Path, header: bytes, body: bytes
) -> None:
    path = tmp_path / "fuzz.jpg"
    path.write_bytes(header + body)
    try:
        decoded = decode(path)
    except MediaError as e:
        assert str(e) and "\n" not in str(e)
    else:
        assert decoded.image.mode == "RGB"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_photo_cut_or_damaged_anywhere_is_decoded_or_a_media_error(
    tmp_path: Path, data: st.DataObject
) -> None:
    fmt = data.draw(st.sampled_from(["JPEG", "PNG", "WEBP", "GIF", "TIFF", "HEIF"]))
    original = make_photo(tmp_path / f"whole.{fmt.lower()}", fmt=fmt, size=(96, 64)).read_bytes()
    cut = data.draw(st.integers(0, len(original)))
    damaged = bytearray(original[:cut])
    for _ in range(data.draw(st.integers(0, 3))):
        if damaged:
            damaged[data.draw(st.integers(0, len(damaged) - 1))] ^= 0xFF
    path = tmp_path / f"damaged.{fmt.lower()}"
    path.write_bytes(bytes(damaged))
    with contextlib.suppress(MediaError):
        decode(path)


def test_test_photos_are_reproducible_and_take_the_asked_colour(tmp_path: Path) -> None:
    first = make_photo(tmp_path / "a.png", fmt="PNG", seed=5, color=(200, 30, 30))
    again = make_photo(tmp_path / "b.png", fmt="PNG", seed=5, color=(200, 30, 30))
    other = make_photo(tmp_path / "c.png", fmt="PNG", seed=6, color=(200, 30, 30))

    assert first.read_bytes() == again.read_bytes() != other.read_bytes()
    red, green, blue = decode(first).image.resize((1, 1), Image.Resampling.BOX).getpixel((0, 0))
    assert red > green + 60 and red > blue + 60


@pytest.mark.parametrize(
    ("size", "orientation"),
    [((4000, 3000), None), ((3000, 4000), None), ((1000, 333), None), ((2400, 1800), 6)],
)
def test_a_shrunk_photo_passes_open_clips_resize_unchanged(
    tmp_path: Path, size: tuple[int, int], orientation: int | None
) -> None:
    # open_clip's preprocessing resizes the shorter side to the model's size (bicubic); a picture already at
    # that size is not resampled again, so Glimpse's one bicubic resize is the only one.
    from torchvision.transforms import InterpolationMode, Resize

    path = make_photo(tmp_path / "big.jpg", size=size, exif_orientation=orientation)
    decoded = decode(path, min_side=224)

    assert min(decoded.image.size) == 224
    assert Resize(224, InterpolationMode.BICUBIC)(decoded.image).size == decoded.image.size


@pytest.mark.slow
def test_a_photos_vector_matches_open_clips_own_preprocessing_of_the_full_photo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Measured on eight 12-megapixel photos with vit-b-32@random (fp32): 1 - cosine was 8.9e-5 on average
    # (1.5e-4 at worst) when the shrink rounded the long side and resized bilinearly, 7e-6 (1.4e-5) now;
    # two different photos are 3.5e-2 apart.
    import torch

    from engine.models import load_fast, loader
    from engine.models.openclip import PRECISION_ENV

    monkeypatch.setenv(PRECISION_ENV, "fp32")  # int8's own rounding would blur what is measured
    loader.clear_cache()
    encoder = load_fast("vit-b-32@random", "cpu")
    paths = [make_photo(tmp_path / f"{seed}.jpg", size=(4000, 3000), seed=seed) for seed in range(3)]
    with contextlib.ExitStack() as stack:
        full = [stack.enter_context(Image.open(p)).convert("RGB") for p in paths]
        reference = encoder.embed_prepared(torch.stack([encoder.prepare(image) for image in full]))
    shrunk = [decode(p, min_side=encoder.image_size).image for p in paths]
    glimpse = encoder.embed_prepared(torch.stack([encoder.prepare(image) for image in shrunk]))
    loader.clear_cache()  # the next user of this preset gets the default precision

    assert (1 - (reference * glimpse).sum(axis=1)).max() < 3e-5
