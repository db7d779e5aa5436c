"""Killed at any instant, `glimpse index` loses nothing committed and resumes without duplicates."""

from __future__ import annotations

import itertools
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import GLIMPSE, glimpse
from tests.factory import make_photo, make_video

QUERIES = ["a red car", "a dog on the beach", "fireworks"]


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
    """What a user can observe of a library: totals, consistency, and search results."""
    status = glimpse("status", "--json", library=library).json()
    status.pop("library")
    check = glimpse("check", "--json", library=library)
    searches = {
        q: [
            (r["path"], r["score"], r["timestamp"])
            for r in glimpse("search", q, "--limit", "50", "--json", library=library).json()
        ]
        for q in QUERIES
    }
    return {"status": status, "consistent": check.code == 0, "searches": searches}


@pytest.mark.slow
def test_random_kills_lose_nothing_and_match_a_clean_run(tmp_path):
    media = tmp_path / "media"
    for seed in range(30):
        make_photo(media / f"photo-{seed:02d}.jpg", size=(1600, 1200), seed=seed)
    for seed in range(3):
        make_video(media / f"clip-{seed}.mp4", seconds=16, seed=seed)

    clean = tmp_path / "clean"
    assert glimpse("index", media, "--model", "tiny-test", library=clean).code == 0
    expected = snapshot(clean)

    killed = tmp_path / "killed"
    rng = random.Random(7)
    kills = 0
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    argv = [GLIMPSE, "index", media, "--model", "tiny-test", "--library", killed]
    for _ in range(12):
        process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        # Start-up (imports, model) takes a few seconds; kill anywhere from before it to the end of the run.
        time.sleep(rng.uniform(1.0, 9.0))
        if process.poll() is not None:
            break  # it finished before we struck: everything is indexed
        process.send_signal(signal.SIGKILL)
        process.wait()
        kills += 1
    assert kills >= 5
    final = glimpse("index", "--json", library=killed)
    assert final.code == 0, final.stderr
    assert final.json()["failed"] == 0
    got = snapshot(killed)
    assert (got["status"], got["consistent"]) == (expected["status"], True)
    for query, results in got["searches"].items():
        assert_same_results(results, expected["searches"][query])


@pytest.mark.slow
def test_searching_while_another_process_indexes_sees_consistent_results(tmp_path):
    from engine import Library

    media = tmp_path / "media"
    make_photo(media / "first.jpg")
    library = tmp_path / "library"
    assert glimpse("index", media, "--model", "tiny-test", library=library).code == 0
    for seed in range(30):
        make_photo(media / f"photo-{seed:02d}.jpg", size=(2000, 1500), seed=seed)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    seen: list[int] = []
    with Library.open(library) as reader:
        assert len(reader.search("a photo", rerank=0)) == 1  # the reader is warm before the writer starts
        argv = [GLIMPSE, "index", "--library", library]
        process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        try:
            while process.poll() is None:
                results = reader.search("a photo", limit=100, rerank=0)
                paths = [r.path for r in results]
                assert len(paths) == len(set(paths))  # one result per file, never a duplicate
                assert all(p.exists() for p in paths)
                assert not seen or len(paths) >= seen[-1]  # what was searchable stays searchable
                seen.append(len(paths))
            assert process.wait() == 0
            assert len(reader.search("a photo", limit=100, rerank=0)) == 31
        finally:
            process.kill()
    assert len(set(seen)) > 1, seen  # the reader saw the library grow while the writer worked
