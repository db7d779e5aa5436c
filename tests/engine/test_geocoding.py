import socket
import threading
from pathlib import Path

import pytest

from engine import geocoding
from engine.geocoding import GeocodingDataMissing, Place, place_of, places_of
from engine.media.location import Coordinates


@pytest.mark.parametrize(
    ("latitude", "longitude", "label", "region", "country_code"),
    [
        (38.7223, -9.1393, "Lisbon, Portugal", "Lisbon", "PT"),
        (64.1355, -21.8954, "Reykjavík, Iceland", "Capital Region", "IS"),
        (35.6762, 139.6503, "Tokyo, Japan", "Tokyo", "JP"),
        (-1.2921, 36.8219, "Nairobi, Kenya", "Nairobi County", "KE"),
        (-22.9068, -43.1729, "Rio de Janeiro, Brazil", "Rio de Janeiro", "BR"),
        (40.7128, -74.0060, "New York City, United States", "New York", "US"),
        (51.5074, -0.1278, "London, United Kingdom", "England", "GB"),
        (37.5665, 126.9780, "Seoul, South Korea", "Seoul", "KR"),  # not "Korea, Republic of"
    ],
)
def test_a_city_is_named_as_people_name_it(
    latitude: float, longitude: float, label: str, region: str, country_code: str
) -> None:
    place = place_of(Coordinates(latitude, longitude))

    assert place is not None
    assert place.label == label
    assert (place.region, place.country_code) == (region, country_code)


def test_inside_a_city_the_district_is_the_neighbourhood_and_the_city_stays_the_city() -> None:
    # GeoNames' nearest entry to these points is a district ("Alfama", a block of Shibuya); the photo is
    # still in Lisbon, in Tokyo.
    alfama = place_of(Coordinates(38.7139, -9.1300))
    shibuya = place_of(Coordinates(35.6595, 139.7005))
    western_tokyo = place_of(Coordinates(35.7400, 139.6000))  # 15 km from Tokyo's centre, in Nerima

    assert alfama == Place("Lisbon", "Lisbon", "Portugal", "PT", neighbourhood="Alfama")
    assert shibuya is not None and shibuya.city == "Tokyo" and shibuya.neighbourhood is not None
    assert western_tokyo is not None and western_tokyo.city == "Tokyo"


def test_a_town_next_to_a_big_city_keeps_its_own_name() -> None:
    versailles = place_of(Coordinates(48.8049, 2.1204))  # 17 km from Paris
    sintra = place_of(Coordinates(38.7975, -9.3906))  # 25 km from Lisbon
    yokohama = place_of(Coordinates(35.4437, 139.6380))  # 27 km from Tokyo

    assert versailles is not None and versailles.label == "Versailles, France"
    assert sintra is not None and sintra.label == "Sintra, Portugal"
    assert yokohama is not None and yokohama.label == "Yokohama, Japan"


def test_distances_are_great_circle_distances() -> None:
    # reverse_geocode's own lookup measures in degrees: it names Selfoss (24 km) here instead of
    # Hveragerði (19 km), and east of the 180th meridian it picks Tubou, 198 km away in Fiji's Eastern
    # division, instead of Labasa, 84 km away across the meridian in the Northern one.
    iceland = place_of(Coordinates(64.15, -21.0))
    fiji = places_of([Coordinates(-16.85, -179.98)])[0]

    assert iceland is not None and iceland.city == "Hveragerði"
    assert fiji is not None and (fiji.region, fiji.country) == ("Northern", "Fiji")


def test_far_from_any_town_only_region_and_country_are_named() -> None:
    highlands = place_of(Coordinates(64.9, -18.5))  # the middle of Iceland, 60 km from any town

    assert highlands is not None
    assert (highlands.city, highlands.country) == (None, "Iceland")
    assert highlands.label == "Northeast, Iceland"


@pytest.mark.parametrize(
    ("latitude", "longitude"),
    [(30.0, -40.0), (-40.0, -120.0), (90.0, 0.0), (-90.0, 0.0), (-90.0, 123.0), (89.9, -179.9)],
    ids=[
        "mid-atlantic",
        "south-pacific",
        "north-pole",
        "south-pole",
        "south-pole-other-meridian",
        "near-pole",
    ],
)
def test_the_open_sea_and_the_poles_are_no_place(latitude: float, longitude: float) -> None:
    # The nearest town is hundreds or thousands of kilometres away: naming it would be wrong, and a search
    # for that town must not find the photo.
    assert place_of(Coordinates(latitude, longitude)) is None


def test_many_points_at_once_give_the_same_as_one_by_one() -> None:
    points = [Coordinates(38.7223, -9.1393), Coordinates(30.0, -40.0), Coordinates(35.6762, 139.6503)]

    assert places_of(points) == [place_of(p) for p in points]
    assert places_of([]) == []


def test_label_without_a_city() -> None:
    assert Place(None, None, "Kiribati", "KI").label == "Kiribati"
    assert Place("Lisbon", "Lisbon", "Portugal", "PT", neighbourhood="Alfama").label == "Lisbon, Portugal"


def test_it_loads_once_and_answers_from_many_threads_at_first_use(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(geocoding, "_loaded", None)
    built: list[object] = []
    original = geocoding._Gazetteer.__init__

    def counting_init(self: geocoding._Gazetteer, folder: str) -> None:
        built.append(self)
        original(self, folder)

    monkeypatch.setattr(geocoding._Gazetteer, "__init__", counting_init)
    start = threading.Barrier(6)
    answers: list[Place | None] = []

    def ask() -> None:
        start.wait()
        answers.append(place_of(Coordinates(64.1355, -21.8954)))

    threads = [threading.Thread(target=ask) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(built) == 1
    assert [a.label if a else None for a in answers] == ["Reykjavík, Iceland"] * 6


def test_it_needs_no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the geocoder tried to reach the network")

    monkeypatch.setattr(geocoding, "_loaded", None)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)

    place = place_of(Coordinates(-1.2921, 36.8219))

    assert place is not None and place.label == "Nairobi, Kenya"


def test_missing_data_is_a_clear_error_not_a_download(tmp_path: Path) -> None:
    with pytest.raises(GeocodingDataMissing, match="reinstall Glimpse"):
        geocoding._Gazetteer(str(tmp_path))
