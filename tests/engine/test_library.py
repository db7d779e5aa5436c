"""The Library facade in-process (tiny-test model): folders, moves, exclusions, model switches, readers."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch

from engine import Library
from engine.errors import LibraryError, UsageError
from engine.models import load_fast
from tests.factory import make_photo, make_video


@pytest.fixture
def media(tmp_path: Path) -> Path:
    root = tmp_path / "media"
    for seed in range(3):
        make_photo(root / "a" / f"a{seed}.jpg", seed=seed)
        make_photo(root / "b" / f"b{seed}.png", fmt="PNG", seed=10 + seed)
    return root


@pytest.fixture
def writer(tmp_path: Path):
    with Library.open(tmp_path / "library", writable=True) as library:
        yield library


def names(results) -> set[str]:
    """The file names of every result, those past the relevance cutoff included."""
    return {Path(r.path).name for r in results.all}


def test_move_between_watched_folders_keeps_vectors(writer, media):
    writer.index([media / "a", media / "b"], model="tiny-test")
    shutil.move(media / "a" / "a0.jpg", media / "b" / "from-a.jpg")
    report = writer.index()
    assert (report.moved, report.removed, report.new, report.frames) == (1, 0, 0, 0)
    assert "from-a.jpg" in names(writer.search("anything", limit=50))


def test_excluded_subfolder_leaves_the_library(writer, media):
    writer.index([media], model="tiny-test")
    assert writer.status().images == 6
    writer.exclude_folder(media / "b")
    report = writer.index()
    assert report.removed == 3
    assert names(writer.search("anything", limit=50)) == {"a0.jpg", "a1.jpg", "a2.jpg"}


def test_unplugged_folder_is_kept_unavailable_and_comes_back(writer, media, tmp_path):
    writer.index([media / "a"], model="tiny-test")
    unplugged = tmp_path / "unplugged"
    (media / "a").rename(unplugged)
    report = writer.index()
    assert report.unavailable == 3 and report.removed == 0
    assert writer.search("anything").all == []
    assert writer.status().unavailable == 3
    unplugged.rename(media / "a")
    report = writer.index()
    assert report.frames == 0 and report.skipped == 3
    assert len(writer.search("anything").all) == 3


def test_switching_model_re_embeds_and_never_mixes_vectors(writer, media, tmp_path):
    writer.index([media / "a"], model="tiny-test")
    weights = tmp_path / "other.pt"
    with torch.no_grad():
        model = load_fast("tiny-test", "cpu")._model  # the open_clip module behind the preset
        torch.save({k: v + 0.01 for k, v in model.state_dict().items()}, weights)
    notices: list[str] = []
    report = writer.index(model=f"tiny-test@{weights}", notice=notices.append)
    assert report.updated == 3 and report.images == 3 and report.frames == 3
    assert notices and "re-embedded" in notices[0]
    status = writer.status()
    assert status.frames == 3 and status.pending == 0  # the old model's vectors are gone
    assert writer.check().consistent


def test_one_precision_per_library_a_change_re_embeds_and_never_mixes(writer, media, monkeypatch):
    from engine.models import PRECISION_ENV

    monkeypatch.setenv(PRECISION_ENV, "int8")
    writer.index([media / "a"], model="tiny-test", read_text=False)
    assert writer.status().precision == "int8" and writer.current_model().space.key == "tiny-test+int8"
    monkeypatch.setenv(PRECISION_ENV, "fp32")  # say, the int8 check failed on another computer
    notices: list[str] = []
    report = writer.index(notice=notices.append, read_text=False)
    assert report.updated == 3 and report.images == 3
    assert notices and "made in int8" in notices[0] and "re-embedded" in notices[0]
    status = writer.status()
    assert status.precision == "fp32" and status.frames == 3 and status.pending == 0
    assert writer.check().consistent


def test_a_reader_sees_new_files_without_reopening(tmp_path, media):
    library_dir = tmp_path / "library"
    with Library.open(library_dir, writable=True) as writer:
        writer.index([media / "a"], model="tiny-test")
        with Library.open(library_dir) as reader:
            assert len(reader.search("anything", limit=50).all) == 3
            writer.index([media / "b"])  # commits and saves a new checkpoint
            assert len(reader.search("anything", limit=50).all) == 6
            (media / "b" / "b0.png").unlink()
            writer.index()
            assert "b0.png" not in names(reader.search("anything", limit=50))


def test_video_result_carries_its_best_moment_and_segments(writer, tmp_path):
    folder = tmp_path / "videos"
    make_video(folder / "clip.mp4", seconds=12, seed=4)
    writer.index([folder], model="tiny-test")
    [result] = writer.search("anything").all
    assert result.kind == "video" and 0 <= result.timestamp <= 12
    assert result.segments and all(start <= end for start, end in result.segments)
    assert any(start <= result.timestamp <= end for start, end in result.segments)


def test_readers_cannot_write_and_folders_must_exist(tmp_path, media):
    with Library.open(tmp_path / "library") as reader, pytest.raises(LibraryError):
        reader.add_folder(media)
    with Library.open(tmp_path / "library", writable=True) as writer, pytest.raises(UsageError):
        writer.add_folder(tmp_path / "nowhere")


def test_search_before_any_index_says_what_to_do(tmp_path):
    with Library.open(tmp_path / "library") as reader, pytest.raises(UsageError, match="glimpse index"):
        reader.search("a dog")


@pytest.fixture
def read_only_mount(tmp_path):
    """A folder that becomes a read-only file system (needs root and mount rights; skipped without them)."""
    import shutil as sh
    import subprocess

    mount = tmp_path / "ro"
    mount.mkdir()
    if (
        not sh.which("mount")
        or subprocess.run(["mount", "-t", "tmpfs", "none", mount], capture_output=True).returncode
    ):
        pytest.skip("cannot mount a file system here (needs root)")
    yield mount
    subprocess.run(["umount", "-l", mount], capture_output=True)


def test_a_library_on_a_read_only_disk_is_still_searched(tmp_path, media, read_only_mount):
    import subprocess

    with Library.open(read_only_mount / "library", writable=True) as writer:
        writer.index([media / "a"], model="tiny-test")
        expected = names(writer.search("anything", rerank=0))
    assert subprocess.run(["mount", "-o", "remount,ro", read_only_mount], capture_output=True).returncode == 0
    with Library.open(read_only_mount / "library") as reader:
        assert names(reader.search("anything", rerank=0)) == expected
        assert reader.status().images == 3
    with pytest.raises(LibraryError, match="read-only"):
        Library.open(read_only_mount / "library", writable=True)


def test_extremely_long_names_and_deep_paths_are_indexed(writer, tmp_path):
    folder = tmp_path / "deep"
    deep = folder
    while len(bytes(deep)) < 3000:  # deeper than many tools cope with, within the OS's 4096-byte limit
        deep = deep / ("d" * 200)
    deep.mkdir(parents=True)
    long_name = "é" * 120 + ".jpg"  # 244 bytes of UTF-8: near the 255-byte limit of a file name
    make_photo(deep / long_name)
    report = writer.index([folder], model="tiny-test")
    assert (report.images, report.failed) == (1, 0)
    [result] = writer.search("anything", folder=folder).all
    assert result.path == deep / long_name


def test_date_range_type_and_folder_filter_search_and_similar(writer, tmp_path):
    import datetime as dt

    folder = tmp_path / "dated"
    make_photo(folder / "2023.jpg", taken_at=dt.datetime(2023, 6, 1, 12, 0), seed=1)
    make_photo(folder / "2024-first.jpg", taken_at=dt.datetime(2024, 1, 1, 0, 0), seed=2)
    make_photo(folder / "2024-last.jpg", taken_at=dt.datetime(2024, 12, 31, 23, 59), seed=3)
    undated = make_photo(folder / "undated.jpg", seed=4)  # its file date stands in: 2020
    os.utime(undated, (dt.datetime(2020, 3, 3).timestamp(),) * 2)
    make_video(folder / "clip.mp4", seconds=4, seed=5)
    writer.index([folder], model="tiny-test")

    year = {"taken_from": dt.date(2024, 1, 1), "taken_to": dt.date(2024, 12, 31)}
    assert names(writer.search("anything", limit=50, **year)) == {"2024-first.jpg", "2024-last.jpg"}
    assert names(writer.search("anything", limit=50, taken_to=dt.date(2020, 12, 31))) == {"undated.jpg"}
    similar = writer.similar(folder / "2023.jpg", limit=50, **year)
    assert names(similar) == {"2024-first.jpg", "2024-last.jpg"}
    assert names(writer.similar(folder / "2023.jpg", kind="video")) == {"clip.mp4"}
    with pytest.raises(UsageError):
        writer.search("anything", taken_from=dt.date(2025, 1, 1), taken_to=dt.date(2024, 1, 1))


def test_an_unexpected_failure_is_one_line_on_the_terminal_and_its_trace_in_the_log(tmp_path, capsys):
    from engine.commandline import handles_errors

    @handles_errors
    def command():
        with Library.open(tmp_path / "library", writable=True):
            raise ValueError("a bug")

    with pytest.raises(SystemExit) as exited:
        command()
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "glimpse: unexpected error (ValueError: a bug); details are in the library's log"
    ]
    logged = (tmp_path / "library" / "glimpse.log").read_text()
    assert "Traceback" in logged and "ValueError: a bug" in logged
