"""Killed at any instant (indexing, re-embedding with another model, watching), Glimpse loses nothing committed,
resumes without duplicates, and ends as an uninterrupted run would."""

from __future__ import annotations

import itertools
import os
import random
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest

from engine import Library
from tests.e2e.conftest import GLIMPSE, glimpse, wait_for
from tests.factory import make_photo, make_video

QUERIES = ["a red car", "a dog on the beach", "fireworks"]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}
VECTORS = "SELECT count(*) FROM vectors"
#: A run's progress through both of its passes: vectors embedded, then files whose words were read.
EMBEDDED_OR_READ = "SELECT (SELECT count(*) FROM vectors) + (SELECT count(read_at) FROM media)"
UNREAD = "SELECT count(*) FROM media WHERE status = 'indexed' AND read_at IS NULL"
PENDING = "SELECT count(*) FROM media WHERE status = 'pending'"
#: Vectors of the model the re-embedding test switches to (in whichever precision it runs here), and of any other.
VECTORS_OF_TINY_TEST = "SELECT count(*) FROM vectors JOIN models ON models.id = model_id WHERE key IN ('tiny-test', 'tiny-test+int8')"
VECTORS_OF_OTHERS = (
    "SELECT count(*) FROM vectors JOIN models ON models.id = model_id "
    "WHERE key NOT IN ('tiny-test', 'tiny-test+int8')"
)


#: Scores may differ by float rounding: a batch of another size takes other matrix kernels, and vectors are
#: stored as float16, so a resumed run's vectors can differ from a clean run's in the last bit.
ROUNDING = 2e-3


def assert_same_results(got: list, expected: list) -> None:
    """The same files with the same scores, in the same order but for near-ties."""
    want = {path: score for path, score, _ in expected}
    assert {path for path, _, _ in got} == set(want)
    for path, score, _ in got:
        assert abs(score - want[path]) <= ROUNDING, path
    scores_in_got_order = [want[path] for path, _, _ in got]
    assert all(a >= b - 2 * ROUNDING for a, b in itertools.pairwise(scores_in_got_order))


def snapshot(library: Path) -> dict:
    """What a user can observe of a library: totals, consistency, and search results.

    Read through the engine in this process: each `glimpse search` would spend seconds loading torch and models.
    """
    with Library.open(library) as reader:
        status = reader.status().to_json()
        status.pop("library")
        searches = {
            q: [(r.path, r.score, r.timestamp) for r in reader.search(q, limit=50).all] for q in QUERIES
        }
        return {"status": status, "consistent": reader.check().consistent, "searches": searches}


def assert_same_library(got: dict, expected: dict) -> None:
    assert (got["status"], got["consistent"]) == (expected["status"], True)
    for query, results in got["searches"].items():
        assert_same_results(results, expected["searches"][query])


def kill_repeatedly(
    argv: list,
    tries: int,
    moment: Callable[[subprocess.Popen], object],
    after_kill: Callable[[], object] = lambda: None,
) -> int:
    """Run `argv` and SIGKILL it once `moment(process)` returns, `tries` times or until a run finishes first;
    returns the number of kills."""
    kills = 0
    for _ in range(tries):
        process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
        moment(process)
        if process.poll() is not None:
            break  # it finished before we struck: everything is done
        process.send_signal(signal.SIGKILL)
        process.wait()
        kills += 1
        after_kill()
    return kills


def random_moment(
    process: subprocess.Popen, rng: random.Random, seconds: float, library: Path, progress_sql: str
) -> None:
    """Wait for a moment to kill a writer: a random time within `seconds` or, every other time on average, the
    first sign of its progress (the number `progress_sql` counts in the catalogue changes). A run commits its
    files within hundredths of a second, which a random time would hardly ever hit."""
    if rng.random() < 0.5:
        time.sleep(rng.uniform(0.0, seconds))
        return
    before = count(library, progress_sql)
    wait_for(lambda: process.poll() is not None or count(library, progress_sql) != before, 60, every=0.01)


def count(library: Path, sql: str) -> int:
    """One number from the catalogue, read directly: cheap enough to poll a writer every hundredth of a second."""
    path = library / "catalogue.sqlite"
    if not path.exists():
        return 0
    db = sqlite3.connect(path)
    try:
        return db.execute(sql).fetchone()[0]
    except sqlite3.OperationalError:  # the first run is creating the tables
        return 0
    finally:
        db.close()


def make_media(folder: Path, photos: int, videos: int) -> None:
    for seed in range(photos):
        make_photo(folder / f"photo-{seed:02d}.jpg", size=(1600, 1200), seed=seed)
    for seed in range(videos):
        make_video(folder / f"clip-{seed}.mp4", seconds=16, seed=seed)


@pytest.mark.slow
def test_random_kills_lose_nothing_and_match_a_clean_run(tmp_path):
    media = tmp_path / "media"
    make_media(media, photos=30, videos=3)

    clean = tmp_path / "clean"
    started = time.monotonic()
    assert glimpse("index", media, "--model", "tiny-test", library=clean).code == 0
    lasted = time.monotonic() - started  # how long an uninterrupted run takes on this machine, now
    expected = snapshot(clean)

    killed = tmp_path / "killed"
    argv = [GLIMPSE, "index", media, "--model", "tiny-test", "--library", killed]
    # Kill anywhere from start-up (imports, model: a few seconds) to the end of the run.
    moment = partial(
        random_moment, rng=random.Random(7), seconds=lasted, library=killed, progress_sql=EMBEDDED_OR_READ
    )
    assert kill_repeatedly(argv, tries=8, moment=moment) >= 5
    final = glimpse("index", "--json", library=killed)
    assert final.code == 0, final.stderr
    assert final.json()["failed"] == 0
    assert_same_library(snapshot(killed), expected)


@pytest.mark.slow
def test_random_kills_while_re_embedding_with_another_model_match_a_clean_run(tmp_path):
    media = tmp_path / "media"
    make_media(media, photos=20, videos=2)

    clean = tmp_path / "clean"
    started = time.monotonic()
    assert glimpse("index", media, "--model", "tiny-test", "--no-read-text", library=clean).code == 0
    lasted = time.monotonic() - started  # re-embedding does the same work: kill within that time
    assert glimpse("index", library=clean).code == 0  # the words, which re-embedding leaves as they were read
    expected = snapshot(clean)

    killed = tmp_path / "killed"
    assert glimpse("index", media, "--model", "shapes", library=killed).code == 0

    halfway = 0

    def count_halfway() -> None:
        """Some files re-embedded, the others still with the old model's vectors."""
        nonlocal halfway
        with Library.open(killed) as reader:
            status = reader.status()
        halfway += status.model == "tiny-test" and status.frames > 0 and status.pending > 0

    argv = [GLIMPSE, "index", "--model", "tiny-test", "--library", killed]
    moment = partial(
        random_moment, rng=random.Random(3), seconds=lasted, library=killed, progress_sql=VECTORS_OF_TINY_TEST
    )
    assert kill_repeatedly(argv, tries=10, moment=moment, after_kill=count_halfway) >= 5
    assert halfway >= 2
    final = glimpse("index", "--model", "tiny-test", "--json", library=killed)
    assert final.code == 0, final.stderr
    assert final.json()["failed"] == 0
    assert_same_library(snapshot(killed), expected)
    assert count(killed, VECTORS_OF_OTHERS) == 0  # nothing of the old model is left to mix with the new one


def edit_watched_folder(media: Path, round_: int) -> None:
    """A person's edits while Glimpse watches: new photos and a video, a photo rewritten, and one of the
    previous round's new photos deleted and another moved to a sub-folder."""
    for i in range(3):
        make_photo(media / f"new-{round_}-{i}.jpg", seed=100 + 10 * round_ + i)
    make_video(media / f"clip-{round_}.mp4", seconds=4, seed=round_)
    make_photo(media / f"photo-{round_:02d}.jpg", seed=200 + round_)
    if round_:
        (media / f"new-{round_ - 1}-0.jpg").unlink()
        (media / "moved").mkdir(exist_ok=True)
        (media / f"new-{round_ - 1}-1.jpg").rename(media / "moved" / f"new-{round_ - 1}-1.jpg")


def start_watching(library: Path, log: Path) -> subprocess.Popen:
    """`glimpse watch`, once it has caught up with the folders and follows them."""
    with open(log, "wb") as stderr:
        process = subprocess.Popen(
            [GLIMPSE, "watch", "--library", library], stdout=subprocess.DEVNULL, stderr=stderr, env=ENV
        )
    if not wait_for(lambda: b"watching" in log.read_bytes()):
        process.kill()
        raise AssertionError(log.read_text())
    return process


@pytest.mark.slow
def test_random_kills_while_watching_lose_nothing_and_match_a_clean_run(tmp_path):
    media = tmp_path / "media"
    make_media(media, photos=5, videos=0)
    watched = tmp_path / "watched"
    assert glimpse("index", media, "--model", "tiny-test", library=watched).code == 0

    rng = random.Random(2)
    halfway = 0
    for round_ in range(4):
        process = start_watching(watched, tmp_path / f"watch-{round_}.log")
        try:
            edit_watched_folder(media, round_)
            # The update starts after a second without events: strike before, during or after it.
            random_moment(process, rng, 4.0, watched, PENDING)
        finally:
            process.kill()  # SIGKILL
            process.wait()
        halfway += count(watched, PENDING) > 0  # it had recorded what changed, not embedded it all
    assert halfway >= 2

    process = start_watching(watched, tmp_path / "watch-last.log")  # the next start catches up
    assert wait_for(
        lambda: count(watched, UNREAD) == 0, 120
    )  # and reads the words of what it added, meanwhile
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0

    clean = tmp_path / "clean"
    assert glimpse("index", media, "--model", "tiny-test", library=clean).code == 0
    assert_same_library(snapshot(watched), snapshot(clean))


@pytest.mark.slow
def test_searching_while_another_process_indexes_sees_consistent_results(tmp_path):
    media = tmp_path / "media"
    make_photo(media / "first.jpg")
    library = tmp_path / "library"
    assert glimpse("index", media, "--model", "tiny-test", library=library).code == 0
    for seed in range(30):
        make_photo(media / f"photo-{seed:02d}.jpg", size=(2000, 1500), seed=seed)
    seen: list[int] = []
    with Library.open(library) as reader:
        assert len(reader.search("a photo", rerank=0).all) == 1  # the reader is warm before the writer starts
        argv = [GLIMPSE, "index", "--library", library]
        process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
        try:
            while process.poll() is None:
                results = reader.search("a photo", limit=100, rerank=0).all
                paths = [r.path for r in results]
                assert len(paths) == len(set(paths))  # one result per file, never a duplicate
                assert all(p.exists() for p in paths)
                assert not seen or len(paths) >= seen[-1]  # what was searchable stays searchable
                seen.append(len(paths))
            assert process.wait() == 0
            assert len(reader.search("a photo", limit=100, rerank=0).all) == 31
        finally:
            process.kill()
    assert len(set(seen)) > 1, seen  # the reader saw the library grow while the writer worked
