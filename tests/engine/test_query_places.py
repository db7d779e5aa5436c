import pytest

from engine.geocoding import Place, place_of
from engine.media.location import Coordinates
from engine.search.places import PlaceIndex, PlaceLevel, find_places

# Where the photos of a test library were taken, named by the real geocoder.
PHOTO_SPOTS = {
    "lisbon": (38.7223, -9.1393),
    "alfama": (38.7139, -9.1300),
    "sintra": (38.7975, -9.3906),
    "reykjavik": (64.1355, -21.8954),
    "iceland_highlands": (64.9, -18.5),
    "tokyo": (35.6762, 139.6503),
    "nairobi": (-1.2921, 36.8219),
    "rio": (-22.9068, -43.1729),
    "new_york": (40.7128, -74.0060),
    "london": (51.5074, -0.1278),
    "reading": (51.4543, -0.9781),
    "long_beach": (33.77, -118.19),
}


@pytest.fixture(scope="module")
def library() -> dict[str, Place]:
    places = {name: place_of(Coordinates(*point)) for name, point in PHOTO_SPOTS.items()}
    assert all(places.values())
    return places  # type: ignore[return-value]


@pytest.fixture(scope="module")
def known(library: dict[str, Place]) -> set[Place]:
    return set(library.values())


NICE = Place("Nice", "Provence-Alpes-Côte d'Azur", "France", "FR")
NICE_CALIFORNIA = Place("Nice", "California", "United States", "US")


@pytest.mark.parametrize(
    ("query", "name", "level", "remainder"),
    [
        ("in Lisbon", "Lisbon", PlaceLevel.CITY, ""),
        ("Lisbon", "Lisbon", PlaceLevel.CITY, ""),
        ("from Iceland", "Iceland", PlaceLevel.COUNTRY, ""),
        ("Kenya", "Kenya", PlaceLevel.COUNTRY, ""),
        ("reykjavik", "Reykjavík", PlaceLevel.CITY, ""),
        ("REYKJAVÍK harbour", "Reykjavík", PlaceLevel.CITY, "harbour"),
        ("the cat in Tokyo", "Tokyo", PlaceLevel.CITY, "the cat"),
        ("Rio de Janeiro beach", "Rio de Janeiro", PlaceLevel.CITY, "beach"),
        ("a yellow cab in New York", "New York City", PlaceLevel.CITY, "a yellow cab"),
        ("near nyc", "New York City", PlaceLevel.CITY, ""),
        ("street market around Nairobi", "Nairobi", PlaceLevel.CITY, "street market"),
        ("tram in alfama", "Alfama", PlaceLevel.NEIGHBOURHOOD, "tram"),
        ("fog in england", "England", PlaceLevel.REGION, "fog"),
        ("at the United Kingdom", "United Kingdom", PlaceLevel.COUNTRY, ""),
        ("photos from the UK", "United Kingdom", PlaceLevel.COUNTRY, "photos"),
        ("great britain", "United Kingdom", PlaceLevel.COUNTRY, ""),
        ("USA road trip", "United States", PlaceLevel.COUNTRY, "road trip"),
        ("the U.S.", "United States", PlaceLevel.COUNTRY, ""),
        ("a cat in the US", "United States", PlaceLevel.COUNTRY, "a cat"),
        ("long beach sunset", "Long Beach", PlaceLevel.CITY, "sunset"),  # names of several words are names
    ],
)
def test_a_place_in_the_library_is_found_however_it_is_written(
    known: set[Place], query: str, name: str, level: PlaceLevel, remainder: str
) -> None:
    match = find_places(query, known)

    assert [(f.name, f.level) for f in match.found] == [(name, level)]
    assert match.remainder == remainder


def test_a_match_covers_every_place_of_the_library_at_that_level(
    known: set[Place], library: dict[str, Place]
) -> None:
    portugal = find_places("Portugal", known).found[0]
    lisbon = find_places("Lisbon", known).found[0]
    iceland = find_places("Iceland", known).found[0]

    assert portugal.places == {library["lisbon"], library["alfama"], library["sintra"]}
    # Lisbon is a city and a district (which holds Sintra): the city, the more specific, is meant.
    assert lisbon.places == {library["lisbon"], library["alfama"]}
    assert iceland.places == {library["reykjavik"], library["iceland_highlands"]}


def test_the_longest_name_wins(known: set[Place]) -> None:
    rio = Place("Rio", "Western Greece", "Greece", "GR")

    match = find_places("Rio de Janeiro", known | {rio})

    assert [f.name for f in match.found] == ["Rio de Janeiro"]


@pytest.mark.parametrize(
    "query",
    [
        "a cat in Paris",  # no photo from Paris: "Paris" is for the pictures to show
        "photos of us",  # "us", not the US
        "reading a book",  # the library has photos from Reading
        "in reading glasses",
        "a dog in nice weather",
        "is land",
        "",
    ],
)
def test_a_word_that_is_no_place_of_the_library_stays_in_the_query(known: set[Place], query: str) -> None:
    match = find_places(query, known | {NICE})

    assert match.found == []
    assert match.remainder == " ".join(query.split())


@pytest.mark.parametrize(
    ("query", "is_place", "remainder"),
    [
        ("a nice dog", False, "a nice dog"),
        ("Nice dog", False, "Nice dog"),  # the first word's capital is sentence case
        ("a dog in Nice", True, "a dog"),
        ("beach Nice", True, "beach"),
        ("dog in nice", True, "dog"),
        ("in nice, 2019", True, "2019"),
        ("in nice last summer", True, "last summer"),
        ("a dog in nice weather", False, "a dog in nice weather"),
        ("nice", True, ""),
        ("Nice, France", True, ""),
    ],
)
def test_a_place_named_like_a_common_word_must_be_said_as_a_place(
    query: str, is_place: bool, remainder: str
) -> None:
    match = find_places(query, {NICE})

    assert bool(match.found) is is_place
    assert match.remainder == remainder


def test_a_city_followed_by_its_country_is_one_place() -> None:
    both = {NICE, NICE_CALIFORNIA}

    french = find_places("beach in Nice, France", both)
    anywhere = find_places("beach in Nice", both)

    assert [(f.name, f.places) for f in french.found] == [("Nice", frozenset({NICE}))]
    assert french.remainder == "beach"
    assert anywhere.found[0].places == {NICE, NICE_CALIFORNIA}


def test_two_places_in_one_query(known: set[Place]) -> None:
    match = find_places("sunsets in Lisbon or Tokyo", known)

    assert [f.name for f in match.found] == ["Lisbon", "Tokyo"]
    assert match.remainder == "sunsets"
    assert ["sunsets in Lisbon or Tokyo"[a:b] for a, b in match.spans] == ["in Lisbon", "or Tokyo"]


def test_an_empty_library_finds_nothing() -> None:
    match = find_places("in Lisbon", set())

    assert match.found == [] and match.remainder == "in Lisbon"


def test_an_index_built_once_answers_like_find_places(known: set[Place]) -> None:
    index = PlaceIndex(known)

    for query in ("in Lisbon", "a nice dog", "photos from the UK", "tram in alfama"):
        assert index.find(query) == find_places(query, known)
