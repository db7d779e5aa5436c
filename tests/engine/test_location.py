import math
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from engine.media.images import decode_image
from engine.media.location import (
    Coordinates,
    checked_coordinates,
    location_from_exif,
    location_from_metadata,
    parse_iso6709,
    read_location,
)
from engine.media.video import FrameSampler
from tests.factory import (
    ASCII,
    DOUBLE,
    LISBON,
    RATIONAL,
    REYKJAVIK,
    SRATIONAL,
    ExifField,
    exif_bytes,
    gps_fields,
    make_bad_metadata_files,
    make_hostile_files,
    make_photo,
    make_video,
)

RIO = (-22.9068, -43.1729)
TOKYO = (35.6762, 139.6503)
EXIF_FORMATS = ("JPEG", "PNG", "WEBP", "TIFF", "HEIF")
SUFFIX = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "TIFF": "tif", "HEIF": "heic"}


def near(found: Coordinates | None, expected: tuple[float, float], tolerance: float = 1e-5) -> bool:
    return (
        found is not None
        and abs(found.latitude - expected[0]) < tolerance
        and abs(found.longitude - expected[1]) < tolerance
    )


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_bad_metadata_files(tmp_path_factory.mktemp("bad-metadata"))


@pytest.mark.parametrize("fmt", EXIF_FORMATS)
def test_a_photo_says_where_it_was_taken_in_every_format_with_exif(tmp_path: Path, fmt: str) -> None:
    path = make_photo(tmp_path / f"lisbon.{SUFFIX[fmt]}", fmt=fmt, size=(160, 120), gps=LISBON)

    assert near(decode_image(os.fsencode(path)).location, LISBON)
    assert near(read_location(os.fsencode(path), "image"), LISBON)


@pytest.mark.parametrize(
    "place", [LISBON, RIO, TOKYO, REYKJAVIK, (-90.0, 0.0), (0.5, 179.9999), (0.0, -77.5)]
)
def test_each_hemisphere_gets_its_sign_from_the_reference_letters(
    tmp_path: Path, place: tuple[float, float]
) -> None:
    path = make_photo(tmp_path / "here.jpg", size=(64, 48), gps=place)

    assert near(decode_image(os.fsencode(path)).location, place, tolerance=1e-4)


@pytest.mark.parametrize("big_endian", [False, True])
def test_exif_written_by_other_software_is_read(tmp_path: Path, big_endian: bool) -> None:
    # Decimal degrees in the degrees rational, lower-case references, big-endian TIFF: all seen in the wild.
    fields = [
        ExifField(1, ASCII, "s"),
        ExifField(2, RATIONAL, [(229068, 10000), (0, 1), (0, 1)]),
        ExifField(3, ASCII, "W"),
        ExifField(4, RATIONAL, [(431729, 10000)]),
    ]
    path = make_photo(tmp_path / "rio.jpg", size=(64, 48), exif=exif_bytes(fields, big_endian=big_endian))

    assert near(decode_image(os.fsencode(path)).location, RIO)


def test_a_photo_without_gps_has_no_location(tmp_path: Path) -> None:
    assert decode_image(os.fsencode(make_photo(tmp_path / "a.jpg", size=(64, 48)))).location is None
    assert (
        decode_image(os.fsencode(make_photo(tmp_path / "a.gif", fmt="GIF", size=(64, 48)))).location is None
    )
    assert read_location(os.fsencode(tmp_path / "a.gif"), "image") is None


def test_every_kind_of_broken_gps_is_unknown_and_the_photo_still_decodes(bad_files: dict[str, Path]) -> None:
    broken = {name: path for name, path in bad_files.items() if name.startswith("gps_")}
    assert len(broken) >= 10
    for name, path in broken.items():
        decoded = decode_image(os.fsencode(path))
        assert decoded.location is None, name
        assert decoded.taken_at is not None, f"{name}: the rest of the EXIF must still be read"
        assert read_location(os.fsencode(path), "image") is None, name


def test_the_bad_metadata_fixtures_break_only_what_they_say(bad_files: dict[str, Path]) -> None:
    # The same fixtures with a broken date carry a good position: the GPS reader is not merely failing.
    for name in ("date_year_2999", "date_month_13"):
        assert near(decode_image(os.fsencode(bad_files[name])).location, LISBON, tolerance=1e-4), name


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (gps_fields(*LISBON), LISBON),
        ([*gps_fields(*LISBON)[:3], ExifField(4, RATIONAL, [(9, 0), (8, 1), (21, 1)])], None),
        ([*gps_fields(*LISBON)[:3], ExifField(4, SRATIONAL, [(-9, 1), (8, 1), (21, 1)])], None),
        ([*gps_fields(*LISBON)[:3], ExifField(4, DOUBLE, [9.1393])], (LISBON[0], -9.1393)),
        ([*gps_fields(*LISBON)[:3], ExifField(4, DOUBLE, [math.nan])], None),
        ([*gps_fields(*LISBON)[:3], ExifField(4, RATIONAL, [(9, 1), (8, 1), (60, 1)])], None),
        ([*gps_fields(*LISBON)[:3], ExifField(4, RATIONAL, [(9, 1), (8, 1), (21, 1), (1, 1)])], None),
        (
            [
                gps_fields(*LISBON)[0],
                gps_fields(*LISBON)[1],
                ExifField(3, ASCII, "X"),
                gps_fields(*LISBON)[3],
            ],
            None,
        ),
        ([ExifField(1, ASCII, "NS"), *gps_fields(*LISBON)[1:]], None),
    ],
    ids=[
        "good",
        "zero-denominator",
        "negative",
        "one-double",
        "nan",
        "60-seconds",
        "four-parts",
        "unknown-reference",
        "two-letters",
    ],
)
def test_gps_fields_are_checked_one_by_one(
    tmp_path: Path, fields: list[ExifField], expected: tuple[float, float] | None
) -> None:
    path = make_photo(tmp_path / "gps.jpg", size=(64, 48), exif=exif_bytes(fields))
    with Image.open(path) as img:
        found = location_from_exif(img.getexif())

    assert near(found, expected, tolerance=1e-4) if expected else found is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("+64.1355-021.8954/", REYKJAVIK),
        ("+27.5916+086.5640+8850/", (27.5916, 86.564)),  # with altitude
        ("+38.7223-009.1393+010.000/", LISBON),  # Apple's form
        ("+38.7223-009.1393+25.500000/", LISBON),  # FFmpeg's rewrite of an MP4 ©xyz
        ("+38.7223-009.1393CRSWGS_84/", LISBON),
        ("-22.9068-043.1729", RIO),  # no terminator
        ("+3843.338-00908.358/", LISBON),  # degrees and minutes
        ("+384320.28-0090821.48/", LISBON),  # degrees, minutes, seconds
        (" +64.1355-021.8954/\x00", REYKJAVIK),
        ("-90.0000+180.0000/", (-90.0, 180.0)),
        ("+90.0000-180.0000/", (90.0, -180.0)),
        ("+999.0000+000.0000/", None),
        ("+91.0000-009.1393/", None),
        ("+38.7223-200.0000/", None),
        ("+3875.000-00908.358/", None),  # 75 minutes
        ("+00.0000+000.0000/", None),  # null island
        ("-32768.0000-32768.0000/", None),  # FFmpeg's rewrite of NaN
        ("+nan+nan/", None),
        ("+38.7223", None),
        ("38.7223,-9.1393", None),
        ("", None),
        ("somewhere nice", None),
    ],
)
def test_iso6709_strings(text: str, expected: tuple[float, float] | None) -> None:
    found = parse_iso6709(text)

    assert near(found, expected, tolerance=1e-4) if expected else found is None


def test_location_keys_are_found_in_any_case_and_apples_comes_first() -> None:
    assert near(location_from_metadata({"location": "+64.1355-021.8954/"}), REYKJAVIK)
    assert near(location_from_metadata({"location-eng": "+64.1355-021.8954/"}), REYKJAVIK)
    assert near(location_from_metadata({"LOCATION": "+64.1355-021.8954/"}), REYKJAVIK)
    both = {
        "location": "+64.1355-021.8954/",
        "com.apple.quicktime.location.ISO6709": "+38.7223-009.1393+010.000/",
    }
    assert near(location_from_metadata(both), LISBON)
    # A broken tag does not hide a good one.
    assert near(
        location_from_metadata(
            {"com.apple.quicktime.location.ISO6709": "+38", "location": "+64.1355-021.8954/"}
        ),
        REYKJAVIK,
    )
    assert location_from_metadata({"title": "+64.1355-021.8954/", "location": ""}) is None
    assert location_from_metadata({}) is None


@pytest.mark.parametrize(
    ("name", "tags"),
    [
        (
            "android.mp4",
            {"location": "+64.1355-021.8954/"},
        ),  # MP4 ©xyz, read back as location and location-eng
        ("iphone.mov", {"com.apple.quicktime.location.ISO6709": "+64.1355-021.8954+012.000/"}),
        ("camera.mkv", {"location": "+64.1355-021.8954/"}),  # Matroska LOCATION
        ("summit.mp4", {"location": "+27.5916+086.5640+8850/"}),
    ],
)
def test_a_video_says_where_it_was_recorded(tmp_path: Path, name: str, tags: dict[str, str]) -> None:
    expected = (27.5916, 86.564) if name.startswith("summit") else REYKJAVIK
    path = make_video(tmp_path / name, seconds=1, fps=5, size=(64, 48), metadata=tags)

    with FrameSampler().open(os.fsencode(path)) as video:
        assert near(video.info.location, expected)
    assert near(read_location(os.fsencode(path), "video"), expected)


def test_a_video_without_a_location_tag_has_none(tmp_path: Path) -> None:
    path = make_video(tmp_path / "plain.mp4", seconds=1, fps=5, size=(64, 48))

    with FrameSampler().open(os.fsencode(path)) as video:
        assert video.info.location is None
    assert read_location(os.fsencode(path), "video") is None


def test_every_kind_of_broken_video_location_is_unknown(bad_files: dict[str, Path]) -> None:
    broken = {name: path for name, path in bad_files.items() if name.startswith("video_location_")}
    assert len(broken) >= 6
    for name, path in broken.items():
        with FrameSampler().open(os.fsencode(path)) as video:
            assert video.info.location is None, name
        assert read_location(os.fsencode(path), "video") is None, name


def test_unreadable_files_have_an_unknown_location(tmp_path: Path) -> None:
    files = make_hostile_files(tmp_path / "hostile")
    for name in ("truncated_jpeg", "random_jpeg", "random_png", "empty_jpg", "text_jpg", "bomb_png"):
        assert read_location(os.fsencode(files[name]), "image") is None, name
    for name in ("truncated_mp4", "text_jpg"):
        assert read_location(os.fsencode(files[name]), "video") is None, name
    assert read_location(os.fsencode(tmp_path / "no-such.jpg"), "image") is None
    with pytest.raises(ValueError, match="kind"):
        read_location(os.fsencode(files["text_jpg"]), "audio")


@pytest.mark.parametrize(
    ("latitude", "longitude", "valid"),
    [
        (38.7, -9.1, True),
        (90, 180, True),
        (0.0, 12.5, True),  # on the equator
        (-0.2, 0.0, True),  # on the prime meridian
        (0.0, 0.0, False),
        (0.00001, -0.00001, False),
        (90.01, 0, False),
        (10, -180.5, False),
        (math.nan, 1, False),
        (math.inf, 1, False),
        ("38.7", -9.1, False),
        (True, 1, False),
        (None, 1, False),
    ],
)
def test_coordinates_are_checked(latitude: object, longitude: object, valid: bool) -> None:
    assert (checked_coordinates(latitude, longitude) is not None) is valid


def test_coordinates_refuse_to_be_off_the_earth() -> None:
    with pytest.raises(ValueError, match="not a point on Earth"):
        Coordinates(91.0, 0.0)


_field_values = st.one_of(
    st.text(max_size=12),
    st.lists(st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)), max_size=4),
    st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=4),
)


@st.composite
def _gps_field(draw: st.DrawFn) -> ExifField:
    tag = draw(st.integers(0, 6))
    value = draw(_field_values)
    if isinstance(value, str):
        return ExifField(tag, ASCII, value.encode("ascii", "replace").decode())
    if value and isinstance(value[0], tuple):
        return ExifField(
            tag, draw(st.sampled_from([RATIONAL, SRATIONAL])), [(n % 2**31, d % 2**31) for n, d in value]
        )
    return ExifField(tag, DOUBLE, value)


@pytest.mark.filterwarnings("ignore:Metadata Warning")  # PIL's note on tags with more values than EXIF allows
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_gps_field(), max_size=6, unique_by=lambda f: f.tag), st.booleans())
def test_any_gps_ifd_gives_a_valid_point_or_none(
    tmp_path: Path, fields: list[ExifField], big_endian: bool
) -> None:
    path = tmp_path / "fuzz.jpg"
    make_photo(path, size=(16, 16), exif=exif_bytes(fields, big_endian=big_endian))
    with Image.open(path) as img:
        found = location_from_exif(img.getexif())

    assert found is None or (-90 <= found.latitude <= 90 and -180 <= found.longitude <= 180)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="+-0123456789./CRSWG_ ", max_size=40) | st.text(max_size=40))
def test_any_iso6709_text_gives_a_valid_point_or_none(text: str) -> None:
    found = parse_iso6709(text)

    assert found is None or (-90 <= found.latitude <= 90 and -180 <= found.longitude <= 180)
