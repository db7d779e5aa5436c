"""Thumbnails cached on disk in the library: photos, video moments, changed files, the size bound."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image

from engine import Library
from engine.decoding import CRASH_MARKER_ENV
from engine.errors import MediaError
from engine.media.video import frame_at
from engine.thumbnails import ThumbnailCache
from tests.factory import make_photo, make_video


@pytest.fixture
def caches():
    """Makes ThumbnailCaches and stops their decode workers after the test."""
    made: list[ThumbnailCache] = []

    def make(folder: Path, **options) -> ThumbnailCache:
        made.append(ThumbnailCache(folder, **options))
        return made[-1]

    yield make
    for cache in made:
        cache.close()


def test_photo_thumbnail_is_made_once_and_reused(tmp_path: Path) -> None:
    photo = make_photo(tmp_path / "p.jpg", size=(640, 480), color=(200, 30, 30))
    with Library.open(tmp_path / "library") as library:
        cache = Library.thumbnail_cache(library.folder)
    cache.close()
    first = cache.get(photo, side=100)
    assert first.is_relative_to(tmp_path / "library" / "thumbnails")
    with Image.open(first) as image:
        assert image.height == 100 and image.width == 133
    stamp = first.stat().st_mtime_ns
    assert cache.get(photo, side=100) == first and first.stat().st_mtime_ns >= stamp  # no decoding needed


def test_a_changed_file_gets_a_new_thumbnail(tmp_path: Path, caches) -> None:
    cache = caches(tmp_path / "thumbnails")
    photo = make_photo(tmp_path / "p.jpg", size=(320, 240), seed=1)
    before = cache.get(photo, side=64)
    make_photo(photo, size=(320, 240), seed=2)
    os.utime(photo, ns=(1, 1))
    assert cache.get(photo, side=64) != before


def test_video_thumbnail_shows_the_moment_asked_for(tmp_path: Path, caches) -> None:
    video = make_video(tmp_path / "v.mp4", seconds=6, scenes=3)
    colours = [frame_at(os.fsencode(video), t, 64).resize((1, 1)).getpixel((0, 0)) for t in (1.0, 3.0, 5.0)]
    assert len(set(colours)) == 3  # three shots, three different pictures
    cache = caches(tmp_path / "thumbnails")
    assert cache.get(video, seconds=1.0, side=64) != cache.get(video, seconds=5.0, side=64)


def test_unreadable_files_raise_media_error(tmp_path: Path, caches) -> None:
    cache = caches(tmp_path / "thumbnails")
    (tmp_path / "bad.jpg").write_bytes(b"not a photo")
    with pytest.raises(MediaError):
        cache.get(tmp_path / "bad.jpg")
    with pytest.raises(MediaError):
        cache.get(tmp_path / "missing.jpg")


def test_cache_stays_within_its_budget_dropping_the_least_recent(tmp_path: Path, caches) -> None:
    photos = [make_photo(tmp_path / f"p{i}.jpg", size=(320, 240), seed=i) for i in range(6)]
    cache = caches(tmp_path / "thumbnails", max_bytes=10**9)
    made = [cache.get(p, side=120) for p in photos]
    one = made[0].stat().st_size
    os.utime(made[0], (1, 1))  # the least recently used
    removed = cache.trim(max_bytes=cache.size_bytes() - one // 2)
    assert removed == 1 and not made[0].exists() and all(m.exists() for m in made[1:])


def test_a_file_that_crashes_the_decoder_costs_its_thumbnail_only(
    tmp_path: Path, caches, monkeypatch
) -> None:
    monkeypatch.setenv(CRASH_MARKER_ENV, "crashme")  # the decode worker segfaults on this file
    bad = make_photo(tmp_path / "crashme.jpg", size=(320, 240))
    good = make_photo(tmp_path / "fine.jpg", size=(320, 240))
    cache = caches(tmp_path / "thumbnails")
    with pytest.raises(MediaError):
        cache.get(bad, side=64)
    assert cache.get(good, side=64).exists()
