"""Where a photo or video was taken: GPS coordinates from EXIF and from video container metadata, and the
`Place` they name (engine/geocoding.py finds it offline).

Every value read here is untrusted. A tag that is missing, malformed or impossible (zero denominators, strings
where numbers belong, latitude 999, NaN, a missing N/S/E/W reference, the 0,0 "null island" that broken phones
write) makes the location unknown (None); nothing in this module raises on bad data.
"""

import logging
import math
import numbers
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pillow_heif
from PIL import Image

if TYPE_CHECKING:
    import av.container

log = logging.getLogger(__name__)

# HEIC photos carry their GPS in EXIF like JPEGs do (registering twice, as images.py also does, is harmless).
pillow_heif.register_heif_opener()

_GPS_IFD = 0x8825
_LATITUDE_REF, _LATITUDE, _LONGITUDE_REF, _LONGITUDE = 1, 2, 3, 4
# Phones without a fix write exactly 0,0; no real library has photos taken on that buoy in the Gulf of Guinea.
_NULL_ISLAND_DEGREES = 1e-4

# ISO 6709 as QuickTime, MP4 (©xyz, 3GPP loci) and Matroska carry it: "+64.1355-021.8954/",
# "+27.5916+086.5640+8850/", "+38.7223-009.1393+010.000CRSWGS_84/". The number of digits before the decimal
# point says the form: degrees (±DD, ±DDD), degrees and minutes (±DDMM, ±DDDMM) or with seconds (±DDMMSS).
_ISO6709 = re.compile(
    r"""
    (?P<lat_sign>[+-])(?P<lat>\d{2}(?:\d{2}(?:\d{2})?)?)(?P<lat_fraction>\.\d+)?
    (?P<lon_sign>[+-])(?P<lon>\d{3}(?:\d{2}(?:\d{2})?)?)(?P<lon_fraction>\.\d+)?
    (?:[+-]\d+(?:\.\d+)?)?          # altitude in metres, not used
    (?:CRS[A-Za-z0-9_:.-]+)?/?      # coordinate reference system, then the terminator
    """,
    re.VERBOSE,
)
# Container keys holding ISO 6709, most precise first. FFmpeg reports MP4's ©xyz both as "location" and with its
# language ("location-eng"), Matroska's tag as "LOCATION", Apple's mdta key under its own name.
_APPLE_LOCATION = "com.apple.quicktime.location.iso6709"
_LOCATION = "location"


@dataclass(frozen=True)
class Coordinates:
    """A point on Earth in decimal degrees (WGS 84): latitude -90..90 (north positive), longitude -180..180."""

    latitude: float
    longitude: float

    def __post_init__(self) -> None:
        if not (-90 <= self.latitude <= 90 and -180 <= self.longitude <= 180):
            raise ValueError(f"not a point on Earth: latitude {self.latitude}, longitude {self.longitude}")


def checked_coordinates(latitude: object, longitude: object) -> Coordinates | None:
    """Coordinates from two untrusted values, or None unless both are finite, in range and not 0,0."""
    if not (_is_number(latitude) and _is_number(longitude)):
        return None
    lat, lon = float(latitude), float(longitude)  # type: ignore[arg-type]  # _is_number checked them
    if not (math.isfinite(lat) and math.isfinite(lon) and abs(lat) <= 90 and abs(lon) <= 180):
        return None
    if abs(lat) < _NULL_ISLAND_DEGREES and abs(lon) < _NULL_ISLAND_DEGREES:
        return None
    return Coordinates(lat, lon)


def location_from_exif(exif: Image.Exif) -> Coordinates | None:
    """The GPS position in a photo's EXIF (its GPS IFD), or None when absent or malformed."""
    try:
        gps = exif.get_ifd(_GPS_IFD)
    except Exception as error:  # a damaged IFD pointer can make PIL's parser raise almost anything
        log.debug("unreadable GPS IFD: %s", error)
        return None
    if not gps:
        return None
    latitude = _exif_degrees(gps.get(_LATITUDE), gps.get(_LATITUDE_REF), "NS", 90)
    longitude = _exif_degrees(gps.get(_LONGITUDE), gps.get(_LONGITUDE_REF), "EW", 180)
    if latitude is None or longitude is None:
        return None
    return checked_coordinates(latitude, longitude)


def parse_iso6709(text: str) -> Coordinates | None:
    """The point in an ISO 6709 string ("+64.1355-021.8954/", altitude and CRS allowed), or None."""
    match = _ISO6709.fullmatch(text.strip().strip("\x00").strip())
    if match is None:
        return None
    latitude = _iso6709_degrees(match["lat_sign"], match["lat"], match["lat_fraction"], 2)
    longitude = _iso6709_degrees(match["lon_sign"], match["lon"], match["lon_fraction"], 3)
    if latitude is None or longitude is None:
        return None
    return checked_coordinates(latitude, longitude)


def location_from_metadata(metadata: Mapping[str, str]) -> Coordinates | None:
    """The recording position in a video's container or stream metadata (as PyAV gives it), or None.

    Reads Apple's `com.apple.quicktime.location.ISO6709`, then `location` (MP4 ©xyz and 3GPP loci, Matroska
    LOCATION; FFmpeg also names MP4's `location-eng`), keys in any case.
    """
    by_key: dict[str, list[str]] = {}
    for key, value in metadata.items():
        if isinstance(key, str) and isinstance(value, str):
            by_key.setdefault(_location_key(key.lower()), []).append(value)
    for key in (_APPLE_LOCATION, _LOCATION):
        for value in by_key.get(key, ()):
            if (found := parse_iso6709(value)) is not None:
                return found
    return None


def read_location(path: bytes, kind: str) -> Coordinates | None:
    """Where the photo (`kind` "image") or video ("video") at `path` was taken, or None.

    For files indexed before coordinates were read; while indexing, decode_image and FrameSampler.open give
    the same at no extra cost. Any failure, an unreadable file included, is None: the location is unknown.
    Like decoding, it parses untrusted data in native libraries, so run it where a crash is contained.
    """
    try:
        if kind == "image":
            return _photo_location(path)
        if kind == "video":
            return _video_location(path)
    except Exception as error:  # unknown is the contract for every way an untrusted file can fail
        log.debug("no location read from %r: %s", path, error)
        return None
    raise ValueError(f"kind must be 'image' or 'video', not {kind!r}")


def _photo_location(path: bytes) -> Coordinates | None:
    with open(path, "rb") as f, Image.open(f) as img:
        # Reading EXIF decodes no pixels, except PNG whose eXIf chunk may follow the picture data: a bomb's
        # claimed size is refused first (PIL's own limit, which images.py tightens).
        if Image.MAX_IMAGE_PIXELS and img.width * img.height > Image.MAX_IMAGE_PIXELS:
            return None
        return location_from_exif(img.getexif())


def location_from_container(container: "av.container.InputContainer") -> Coordinates | None:
    """The recording position in an open video's metadata: the container's, else any stream's."""
    found = location_from_metadata(container.metadata)
    for stream in container.streams:
        found = found or location_from_metadata(stream.metadata)
    return found


def _video_location(path: bytes) -> Coordinates | None:
    import av  # here, not at the top: photo decoding imports this module and needs no FFmpeg

    with av.open(os.fsdecode(path), metadata_errors="replace") as container:
        return location_from_container(container)


def _location_key(key: str) -> str:
    """MP4's language-tagged copies ("location-eng") read as the plain key."""
    return _LOCATION if key.startswith(_LOCATION + "-") else key


def _is_number(value: object) -> bool:
    # bool is an int to Python but never a coordinate; PIL's IFDRational is a numbers.Rational.
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _exif_degrees(value: object, ref: object, letters: str, limit: float) -> float | None:
    """Signed decimal degrees from an EXIF (degrees, minutes, seconds) triple and its reference letter.

    EXIF 2.3 makes the reference tag mandatory with the coordinate and defines only N/S (E/W): without it the
    hemisphere is unknown, and so is the point. Rationals are unsigned in the standard; a negative part, a zero
    denominator (PIL reads it as NaN) or minutes or seconds of 60 or more are malformed.
    """
    if isinstance(ref, bytes):
        ref = ref.decode("ascii", errors="replace")
    if not isinstance(ref, str):
        return None
    ref = ref.strip("\x00 ").upper()
    if len(ref) != 1 or ref not in letters:
        return None
    parts = value if isinstance(value, tuple | list) else (value,)
    if not 1 <= len(parts) <= 3 or not all(_is_number(part) for part in parts):
        return None
    degrees, minutes, seconds = (*(float(part) for part in parts), 0.0, 0.0)[:3]
    if not all(math.isfinite(x) and x >= 0 for x in (degrees, minutes, seconds)):
        return None
    if minutes >= 60 or seconds >= 60:
        return None
    total = degrees + minutes / 60 + seconds / 3600
    if total > limit:
        return None
    return -total if ref == letters[1] else total


def _iso6709_degrees(sign: str, digits: str, fraction: str | None, degree_digits: int) -> float | None:
    """Decimal degrees from one ISO 6709 coordinate: ±D, ±DMM or ±DMMSS (D being `degree_digits` digits),
    the decimal fraction belonging to the last unit written."""
    degrees, rest = float(digits[:degree_digits]), digits[degree_digits:]
    last = float("0" + fraction) if fraction else 0.0
    minutes = seconds = 0.0
    if not rest:
        degrees += last
    elif len(rest) == 2:
        minutes = float(rest) + last
    else:
        minutes, seconds = float(rest[:2]), float(rest[2:]) + last
    if minutes >= 60 or seconds >= 60:
        return None
    value = degrees + minutes / 60 + seconds / 3600
    return -value if sign == "-" else value


@dataclass(frozen=True)
class Place:
    """A named place: `city` (None far from every town), `region` (state, province; None where GeoNames has
    none), `country` as people write it, `country_code` (ISO 3166 alpha-2) and, inside a city, the district
    (`neighbourhood`) nearest to the point, when it is close."""

    city: str | None
    region: str | None
    country: str
    country_code: str
    neighbourhood: str | None = None

    @property
    def label(self) -> str:
        """What a person reads: "Lisbon, Portugal"; "Capital Region, Iceland" when no town is near."""
        return f"{self.city or self.region}, {self.country}" if self.city or self.region else self.country
