"""`glimpse bench index | query | video` print the JSON documents docs/benchmarks.md is built from."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from engine import Library, bench
from engine.bench import common, index, query, video
from tests.factory import make_video


def run(command: click.Command, *args: str) -> dict:
    result = CliRunner().invoke(command, [*args, "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_the_commands_join_the_bench_group() -> None:
    assert {"rerank", "index", "query", "video"} <= set(bench.bench.commands)


@pytest.mark.slow  # a library, decode worker processes and a model: ~10 s
def test_bench_index_reports_throughput_against_the_fp32_tower(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(common, "PHOTO_SIZE", (640, 480))  # the shape, not the speed, is tested
    result = run(index.command, "--model", "tiny-test", "--images", "3")
    assert set(result) == {
        "images_per_second",
        "model_only_per_second",
        "ratio",
        "decode_ms_p50",
        "device",
        "precision",
    }
    assert result["images_per_second"] > 0 and result["model_only_per_second"] > 0
    assert result["device"] == "cpu" and result["precision"] in ("int8", "fp32")


@pytest.mark.slow  # the search is timed in a fresh process, as an app would run it: ~10 s
def test_bench_query_builds_its_library_once_and_times_the_search_path(tmp_path: Path) -> None:
    args = ("--frames", "300", "--cache", str(tmp_path), "--model", "tiny-test", "--queries", "3")
    result = run(query.command, *args)
    assert set(result) == {
        "end_to_end_ms_p50",
        "end_to_end_ms_p95",
        "text_ms_p50",
        "ann_ms_p50",
        "brute_force_ms_p50",
        "recall_at_10",
        "open_ms",
        "rss_mb",
        "index_bytes_per_frame",
        "remembered_ms_p95",
        *(f"{case}_ms_p50" for case in query.REMEMBERED),
    }
    assert result["recall_at_10"] >= 0.9  # 300 frames: the graph search is all but exact
    with Library.open(tmp_path / "frames-300") as library:  # the library has places, dates and read text
        place = next(iter(library.catalogue.places().values()))
        there = library.search(f"photos from {place.country}", limit=100).all
        assert there and all(r.place == place.label for r in there)
        signs = library.search('"shop"', limit=100).all
        assert signs and all(r.text.startswith("SHOP") and "text" in r.matched for r in signs)
        assert all(r.taken.startswith("2019-07") for r in library.search("July 2019", limit=100).all)
    assert 0 < result["index_bytes_per_frame"] < 1500
    built = (tmp_path / "frames-300" / "built.json").stat().st_mtime_ns
    query.build_library(tmp_path / "frames-300", 300, "tiny-test")
    assert (tmp_path / "frames-300" / "built.json").stat().st_mtime_ns == built  # reused, not rebuilt


def test_bench_video_reports_the_realtime_factor(tmp_path: Path) -> None:
    clip = make_video(tmp_path / "clip.mp4", seconds=6)
    result = run(video.command, str(clip), "--runs", "1")
    assert set(result) == {"realtime_factor", "frames", "seconds"}
    assert result["frames"] >= 3 and result["realtime_factor"] > 0
