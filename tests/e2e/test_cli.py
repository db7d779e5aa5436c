"""The `glimpse` command on a folder of real photos, videos and hostile files (tiny-test model, offline)."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest

from engine.decoding import CRASH_MARKER_ENV
from engine.lock import WriterLock
from tests.e2e.conftest import glimpse
from tests.factory import make_hostile_files, make_photo, make_video

PHOTO_FORMATS = {
    "jpg": "JPEG",
    "png": "PNG",
    "webp": "WEBP",
    "gif": "GIF",
    "bmp": "BMP",
    "tiff": "TIFF",
    "heic": "HEIF",
}
RESULT_KEYS = {"rank", "path", "kind", "score", "fast_score", "slow_score", "timestamp"}


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """Photos in every format, two videos, and every kind of hostile file."""
    root = tmp_path_factory.mktemp("media")
    for seed, (ext, fmt) in enumerate(PHOTO_FORMATS.items()):
        make_photo(root / "photos" / f"photo-{ext}.{ext}", fmt=fmt, seed=seed)
    make_photo(root / "photos" / "nested" / "deeper" / "portrait.jpg", exif_orientation=6, seed=20)
    make_video(root / "videos" / "holiday.mp4", seconds=20, seed=1)
    make_video(root / "videos" / "party.avi", seconds=6, seed=2)
    make_hostile_files(root / "hostile")
    return root


@pytest.fixture(scope="module")
def indexed(tmp_path_factory, folder):
    """A library that indexed `folder` once; the first run's report."""
    library = tmp_path_factory.mktemp("lib") / "library"
    run = glimpse("index", folder, "--model", "tiny-test", "--json", library=library)
    assert run.code == 0, run.stderr
    return library, run.json()


def test_first_index_counts_every_file(indexed):
    _, report = indexed
    # 8 photos + the valid photo with a non-UTF-8 name; 2 videos; hostile files fail, hidden ones are skipped.
    assert report["images"] == 9
    assert report["videos"] == 2
    assert report["frames"] >= 9 + 5 + 2  # a 20 s clip gives at least 5 frames
    # truncated jpg and mp4, random bytes behind JPEG and PNG headers, empty, text named .jpg, 40000x40000 PNG
    assert report["failed"] == 7
    assert report["new"] == 9 + 2 + 7
    assert report["removed"] == 0
    assert set(report) >= {
        "images",
        "videos",
        "frames",
        "new",
        "updated",
        "removed",
        "failed",
        "skipped",
        "seconds",
    }


def test_status_and_check_after_indexing(indexed):
    library, report = indexed
    status = glimpse("status", "--json", library=library).json()
    assert status["model"] == "tiny-test"
    assert (status["images"], status["videos"], status["failed"], status["pending"]) == (9, 2, 7, 0)
    assert status["frames"] == report["frames"]
    assert status["media"] == 18
    check = glimpse("check", "--json", library=library)
    assert check.code == 0 and check.json() == {"consistent": True, "problems": [], "repaired": []}


def test_search_json_shape_and_video_moments(indexed):
    library, _ = indexed
    run = glimpse(
        "search", "a birthday cake", "--limit", "50", "--no-rerank", "--all", "--json", library=library
    )
    assert run.code == 0, run.stderr
    results = run.json()
    assert len(results) == 11  # one entry per file, failed files never appear
    assert [r["rank"] for r in results] == list(range(1, 12))
    assert all(set(r) >= RESULT_KEYS for r in results)
    assert [r["score"] for r in results] == sorted((r["score"] for r in results), reverse=True)
    videos = [r for r in results if r["kind"] == "video"]
    assert len(videos) == 2 and all(r["timestamp"] is not None and r["timestamp"] >= 0 for r in videos)
    assert all(r["timestamp"] is None and r["slow_score"] is None for r in results if r["kind"] == "image")


def test_search_filters_by_type_and_folder(indexed, folder):
    library, _ = indexed
    videos = glimpse("search", "people dancing", "--type", "video", "--json", library=library).json()
    assert {r["kind"] for r in videos} == {"video"} and len(videos) == 2
    nested = glimpse(
        "search", "a face", "--folder", folder / "photos" / "nested", "--json", library=library
    ).json()
    assert [Path(r["path"]).name for r in nested] == ["portrait.jpg"]


def test_non_utf8_file_name_is_found_byte_exact(indexed):
    library, _ = indexed
    results = glimpse("search", "coffee", "--limit", "50", "--all", "--json", library=library).json()
    raw = {os.fsencode(r["path"]) for r in results}
    assert any(p.endswith(b"caf\xe9.jpg") for p in raw)


def test_reindexing_an_unchanged_folder_embeds_nothing(tmp_path, folder):
    library = tmp_path / "library"
    assert glimpse("index", folder, "--model", "tiny-test", library=library).code == 0
    again = glimpse("index", "--json", library=library).json()
    assert (again["new"], again["updated"], again["frames"], again["images"], again["videos"]) == (
        0,
        0,
        0,
        0,
        0,
    )
    assert again["skipped"] == 18  # the failed files are not retried until they change


def test_rename_keeps_vectors_and_delete_leaves_search(tmp_path):
    media = tmp_path / "media"
    for seed in range(4):
        make_photo(media / f"p{seed}.jpg", seed=seed)
    make_video(media / "clip.mp4", seconds=6, seed=3)
    library = tmp_path / "library"
    assert glimpse("index", media, "--model", "tiny-test", library=library).code == 0

    (media / "p0.jpg").rename(media / "renamed.jpg")
    (media / "clip.mp4").rename(media / "moved-clip.mp4")
    (media / "p1.jpg").unlink()
    report = glimpse("index", "--json", library=library).json()
    assert report["moved"] == 2 and report["frames"] == 0  # nothing re-embedded
    assert report["removed"] == 1 and report["new"] == 0

    names = {Path(r["path"]).name for r in glimpse("search", "a photo", "--json", library=library).json()}
    assert names == {"renamed.jpg", "moved-clip.mp4", "p2.jpg", "p3.jpg"}
    assert glimpse("check", library=library).code == 0


def test_changed_file_is_re_embedded(tmp_path):
    media = tmp_path / "media"
    photo = make_photo(media / "a.jpg", seed=0)
    library = tmp_path / "library"
    glimpse("index", media, "--model", "tiny-test", library=library)
    make_photo(photo, seed=99)
    os.utime(photo, ns=(1, 1))  # a different mtime, whatever the clock
    report = glimpse("index", "--json", library=library).json()
    assert (report["updated"], report["images"], report["frames"]) == (1, 1, 1)


def test_similar_puts_an_identical_copy_first(tmp_path):
    media = tmp_path / "media"
    for seed in range(6):
        make_photo(media / f"p{seed}.jpg", seed=seed)
    shutil.copy(media / "p3.jpg", media / "copy-of-p3.jpg")
    library = tmp_path / "library"
    glimpse("index", media, "--model", "tiny-test", library=library)
    results = glimpse("similar", media / "p3.jpg", "--json", library=library).json()
    assert Path(results[0]["path"]).name == "copy-of-p3.jpg"
    assert all(Path(r["path"]).name != "p3.jpg" for r in results)


def test_second_writer_gets_one_clear_line(tmp_path):
    media = tmp_path / "media"
    make_photo(media / "a.jpg")
    library = tmp_path / "library"
    library.mkdir()
    with WriterLock(library):
        run = glimpse("index", media, "--model", "tiny-test", library=library)
        reader = glimpse("status", "--json", library=library)
    assert run.code == 1
    assert run.stderr.strip().count("\n") == 0 and "pid" in run.stderr and "being changed" in run.stderr
    assert reader.code == 0  # readers are never blocked


def test_folders_add_remove(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    make_photo(a / "x.jpg")
    make_photo(b / "y.jpg", seed=1)
    library = tmp_path / "library"
    assert glimpse("add", a, b, library=library).code == 0
    assert glimpse("folders", "--json", library=library).json()["folders"] == [str(a), str(b)]
    assert glimpse("index", "--model", "tiny-test", library=library).code == 0
    assert glimpse("remove", a, library=library).code == 0
    names = [Path(r["path"]).name for r in glimpse("search", "x", "--json", library=library).json()]
    assert names == ["y.jpg"]


def test_library_from_environment_variable(tmp_path):
    media = tmp_path / "media"
    make_photo(media / "a.jpg")
    library = tmp_path / "from-env"
    run = glimpse("index", media, "--model", "tiny-test", "--json", env={"GLIMPSE_LIBRARY": str(library)})
    assert run.code == 0 and (library / "catalogue.sqlite").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("search", "   "), "type a few words"),
        (("index", "--model", "no-such-model"), "Unknown model"),
        (("search", "x", "--limit", "0"), "limit"),
        (("frobnicate",), "No such command"),
    ],
)
def test_usage_errors_exit_2_with_one_clear_line(tmp_path, args, message):
    media = tmp_path / "media"
    make_photo(media / "a.jpg")
    library = tmp_path / "library"
    glimpse("add", media, library=library)
    run = glimpse(*args, library=library)
    assert run.code == 2
    assert message in run.stderr
    assert "Traceback" not in run.stderr


def test_offline_pretrained_model_says_what_is_missing(tmp_path):
    with socket.socket() as s:  # a closed loopback port: the hub is unreachable, instantly
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    media = tmp_path / "media"
    make_photo(media / "a.jpg")
    env = {"HF_HUB_OFFLINE": "0", "HF_ENDPOINT": f"http://127.0.0.1:{port}", "HF_HOME": str(tmp_path / "hf")}
    run = glimpse("index", media, "--model", "vit-b-32", library=tmp_path / "library", env=env)
    assert run.code == 1
    assert "open_clip_pytorch_model.bin" in run.stderr and "@" in run.stderr
    assert "Traceback" not in run.stderr and run.stderr.strip().count("\n") == 0


def test_a_crashing_decoder_fails_one_file_and_the_run_goes_on(tmp_path):
    media = tmp_path / "media"
    for seed in range(3):
        make_photo(media / f"p{seed}.jpg", seed=seed)
    make_photo(media / "boom.jpg", seed=9)
    library = tmp_path / "library"
    run = glimpse(
        "index", media, "--model", "tiny-test", "--json", library=library, env={CRASH_MARKER_ENV: "boom"}
    )
    assert run.code == 0, run.stderr
    report = run.json()
    assert (report["images"], report["failed"]) == (3, 1)
    assert glimpse("check", library=library).code == 0


def test_search_reranks_the_shortlist_by_default(indexed):
    library, _ = indexed
    results = glimpse(
        "search", "a birthday cake", "--limit", "12", "--rerank", "4", "--json", library=library
    ).json()
    assert [r["slow_score"] is not None for r in results] == [True] * 4 + [False] * (len(results) - 4)
    default = glimpse("search", "a birthday cake", "--json", library=library).json()
    assert all(r["slow_score"] is not None for r in default[:4])
    contradiction = glimpse("search", "cake", "--rerank", "4", "--no-rerank", library=library)
    assert contradiction.code == 2
