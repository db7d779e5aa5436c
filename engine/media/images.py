"""Decoding an untrusted photo into a small upright RGB picture, with its true size and capture date."""

import os
import re
import warnings
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pillow_heif
from PIL import Image, ImageOps

from engine.errors import MediaError
from engine.media.location import Coordinates, location_from_exif
from engine.media.scanner import unreadable

MAX_PIXELS = 200_000_000

pillow_heif.register_heif_opener()

# PIL only warns between its limit and twice the limit, and raises above; a warning would let a 300-megapixel
# bomb through, so it is made an error for the whole process (a catch_warnings block would not be thread-safe,
# and decoding runs in worker threads). decode_image also checks the size itself, which holds even where a test
# runner or an embedding application has reset the warning filters.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
warnings.filterwarnings("error", category=Image.DecompressionBombWarning)
_LIMIT_MP = MAX_PIXELS // 1_000_000

_EXIF_IFD = 0x8769
_DATE_TIME_ORIGINAL = 36867
_DATE_TIME = 306
_ORIENTATION = 274
_ROTATED_ORIENTATIONS = {5, 6, 7, 8}  # those that swap width and height
_EXIF_DATE = re.compile(r"\s*(\d{4})[:-](\d{2})[:-](\d{2})[ T](\d{2}):(\d{2}):(\d{2})")
_ALPHA_MODES = {"RGBA", "RGBa", "LA", "La", "PA"}
# No photograph is older than the first one (Niépce, 1826 or 1827); a clock set past next year is wrong.
FIRST_PHOTOGRAPH_YEAR = 1826


@dataclass
class DecodedImage:
    """A photo ready for the models: `image` is RGB and upright, its shorter side about `min_side`.

    `width` and `height` are the photo's full size as a viewer shows it (after EXIF orientation), not the
    size of `image`; `taken_at` is the camera's local capture time from EXIF, None when absent, garbled or
    impossible; `location` is where it was taken (EXIF GPS), None when absent or malformed.
    """

    image: Image.Image
    width: int
    height: int
    taken_at: datetime | None
    location: Coordinates | None = None


def decode_image(path: bytes, min_side: int = 448) -> DecodedImage:
    """Decode the photo at `path`; every way an untrusted file can fail becomes a MediaError."""
    try:
        # The file object is ours to close; PIL needs no closing once load() has read the picture.
        with open(path, "rb") as f:
            img = Image.open(f)
            full_width, full_height = img.size
            if full_width * full_height > MAX_PIXELS:
                raise MediaError(
                    f"image too large: {full_width}×{full_height} pixels is over the {_LIMIT_MP}-megapixel limit"
                )
            # A JPEG decoder can scale by 1/2, 1/4 or 1/8 while decoding, several times faster than decoding
            # the full picture and shrinking it; draft picks the strongest scale that keeps both sides >= min_side.
            img.draft("RGB", (min_side, min_side))
            img.load()
            exif = img.getexif()
            # Read after load: TIFF applies its orientation while loading and then drops the tag.
            if exif.get(_ORIENTATION) in _ROTATED_ORIENTATIONS:
                full_width, full_height = full_height, full_width
            taken_at = _exif_datetime(exif)
            location = location_from_exif(exif)
            ImageOps.exif_transpose(img, in_place=True)
            image = _shrink(_to_rgb(img), min_side)
    except MediaError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise MediaError(_too_large(str(e))) from None
    except Image.UnidentifiedImageError:
        reason = "the file is empty" if _is_empty(path) else "the file is in no image format Glimpse knows"
        raise MediaError(f"not a readable image: {reason}") from None
    except OSError as e:
        # PIL reports damaged data as OSError without an errno; with one, the file itself could not be read.
        raise (unreadable(e) if e.errno else MediaError(f"not a readable image: {_describe(e)}")) from None
    except MemoryError:
        raise MediaError("image too large: not enough memory to decode it") from None
    except Exception as e:  # a hostile file can make PIL's plugins raise almost anything
        raise MediaError(f"not a readable image: {_describe(e)}") from None
    return DecodedImage(
        image=image, width=full_width, height=full_height, taken_at=taken_at, location=location
    )


def _is_empty(path: bytes) -> bool:
    try:
        return os.stat(path).st_size == 0
    except OSError:
        return False


def plausible_capture_time(moment: datetime) -> bool:
    """Whether a photo or video can have been taken at `moment`: after the first photograph, before next year's end.

    A camera whose clock was never set, or a file written by broken software, says year 1, 1904, 2999;
    such a date is unknown rather than a match for a date query.
    """
    return FIRST_PHOTOGRAPH_YEAR <= moment.year <= datetime.now().year + 1


def _exif_datetime(exif: Image.Exif) -> datetime | None:
    """DateTimeOriginal (when the shutter fired) if present, else DateTime (often the last edit)."""
    for value in (exif.get_ifd(_EXIF_IFD).get(_DATE_TIME_ORIGINAL), exif.get(_DATE_TIME)):
        if isinstance(value, bytes):
            value = value.decode("ascii", errors="replace")
        match = _EXIF_DATE.match(value) if isinstance(value, str) else None
        if match:
            try:
                moment = datetime(*(int(part) for part in match.groups()))
            except (
                ValueError
            ):  # month 13, hour 25, or "0000:00:00 00:00:00" from a camera whose clock is unset
                continue
            if plausible_capture_time(moment):
                return moment
    return None


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode == "RGB" and "transparency" not in img.info:
        return img
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        return _to_8bit(np.asarray(img)).convert("RGB")
    if img.mode in _ALPHA_MODES or "transparency" in img.info:
        # Transparent areas are shown on white, as a file browser does; black would be a different picture.
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def _to_8bit(pixels: np.ndarray) -> Image.Image:
    """Scale a 16- or 32-bit greyscale picture into 0..255 by the range its values suggest (8 or 16 bit)."""
    values = pixels.astype(np.float32)
    top = float(values.max(initial=0.0))
    scale = 255.0 if top <= 255 else 65535.0 if top <= 65535 else top
    return Image.fromarray(np.clip(values * (255.0 / scale), 0, 255).astype(np.uint8), "L")


def model_size(width: float, height: float, min_side: int) -> tuple[int, int]:
    """The size a picture of `width` × `height` shrinks to: shorter side `min_side`, never enlarged.

    The longer side is rounded down, as torchvision's Resize(min_side) in open_clip's preprocessing does, so
    that a frame shrunk here passes through that Resize unchanged: rounding to nearest made 4000×3000 into
    299×224 where open_clip wants 298×224, and its own bicubic resize of the extra column shifted every
    pixel by a fraction, the largest difference between Glimpse's vectors and open_clip's (see
    test_images: the photo's vector matches open_clip's own preprocessing of the full-size photo).
    """
    if min(width, height) <= min_side:
        return max(1, round(width)), max(1, round(height))
    if width <= height:
        return min_side, max(1, int(min_side * height / width))
    return max(1, int(min_side * width / height)), min_side


def _shrink(img: Image.Image, min_side: int) -> Image.Image:
    size = model_size(img.width, img.height, min_side)
    if size == img.size:
        return img
    # Bicubic as open_clip resizes, from the JPEG draft; PIL's filter widens with the scale (antialiased).
    return img.resize(size, Image.Resampling.BICUBIC)


def _too_large(pil_message: str) -> str:
    pixels = re.search(r"\((\d+) pixels\)", pil_message)
    size = f"{int(pixels.group(1)) // 1_000_000} megapixels" if pixels else "its size"
    return f"image too large: {size} is over the {_LIMIT_MP}-megapixel limit"


def _describe(error: Exception) -> str:
    """PIL's own one-line reason, lower-cased to sit after a colon; the exception's type if it gave none."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text[0].lower() + text[1:].rstrip(".")
