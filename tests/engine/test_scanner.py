import logging
import os
from pathlib import Path

import pytest

from engine.errors import MediaError
from engine.media.scanner import FoundFile, MediaKind, fingerprint, kind_of, scan
from tests.factory import make_hostile_files


def touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def names(found: list[FoundFile], root: Path) -> list[bytes]:
    return [os.path.relpath(f.path, os.fsencode(root)) for f in found]


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        (b"IMG_0001.JPG", MediaKind.IMAGE),
        (b"scan.Tiff", MediaKind.IMAGE),
        (b"a.jpe", MediaKind.IMAGE),
        (b"iphone.HEIC", MediaKind.IMAGE),
        (b"/x/y/clip.MOV", MediaKind.VIDEO),
        (b"screen.webm", MediaKind.VIDEO),
        (b"notes.txt", None),
        (b"raw.CR2", None),
        (b"jpg", None),
        (b"archive.jpg.zip", None),
    ],
)
def test_kind_is_judged_by_extension_in_any_case(name: bytes, kind: MediaKind | None) -> None:
    assert kind_of(name) == kind


def test_scan_finds_photos_and_videos_recursively_in_name_order(tmp_path: Path) -> None:
    touch(tmp_path / "b.jpg")
    touch(tmp_path / "a" / "z.mp4", b"video bytes")
    touch(tmp_path / "a" / "deeper" / "c.PNG")
    touch(tmp_path / "c.heic")
    touch(tmp_path / "readme.md")

    found = list(scan(os.fsencode(tmp_path)))

    assert names(found, tmp_path) == [b"a/deeper/c.PNG", b"a/z.mp4", b"b.jpg", b"c.heic"]
    video = found[1]
    stat = os.stat(video.path)
    assert video == FoundFile(path=video.path, kind=MediaKind.VIDEO, size=11, mtime_ns=stat.st_mtime_ns)
    assert all(os.path.isabs(f.path) for f in found)


def test_scan_survives_every_hostile_file_and_skips_what_is_not_media(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    files = make_hostile_files(tmp_path)

    with caplog.at_level(logging.WARNING, logger="engine.media.scanner"):
        found = list(scan(os.fsencode(tmp_path)))

    expected = {"truncated_jpeg", "truncated_mp4", "random_jpeg", "random_png", "empty_jpg", "text_jpg"}
    expected |= {"bomb_png", "non_utf8_name"} & files.keys()
    assert sorted(f.path for f in found) == sorted(os.fsencode(files[key]) for key in expected)
    assert "dangling.jpg" in caplog.text


def test_a_name_that_is_not_utf8_comes_back_byte_exact(tmp_path: Path) -> None:
    root = os.fsencode(tmp_path)
    try:
        with open(os.path.join(root, b"caf\xe9 \xff.jpg"), "wb") as f:
            f.write(b"photo")
    except OSError:
        pytest.skip("this file system accepts only UTF-8 names")

    [found] = scan(root)

    assert found.path == os.path.join(root, b"caf\xe9 \xff.jpg")
    with open(found.path, "rb") as f:
        assert f.read() == b"photo"


def test_hidden_entries_and_macos_resource_forks_are_skipped(tmp_path: Path) -> None:
    touch(tmp_path / ".hidden.jpg")
    touch(tmp_path / "._IMG_0001.JPG")
    touch(tmp_path / ".thumbnails" / "t.jpg")
    touch(tmp_path / "Photos" / ".DS_Store")
    touch(tmp_path / "Photos" / "IMG_0001.JPG")

    assert names(list(scan(os.fsencode(tmp_path))), tmp_path) == [b"Photos/IMG_0001.JPG"]


def test_links_are_followed_but_each_folder_is_scanned_once(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    touch(outside / "far.jpg")
    library = tmp_path / "library"
    touch(library / "own.jpg")
    (library / "a-link").symlink_to(outside, target_is_directory=True)
    (library / "b-same-link").symlink_to(outside, target_is_directory=True)
    (library / "linked.png").symlink_to(outside / "far.jpg")
    (library / "loop").symlink_to(library, target_is_directory=True)

    found = list(scan(os.fsencode(library)))

    # The path the user sees, through the link, not the file's real location.
    assert names(found, library) == [b"a-link/far.jpg", b"linked.png", b"own.jpg"]


def test_paths_are_absolute_and_normalised_but_not_resolved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    touch(tmp_path / "real" / "p.jpg")
    (tmp_path / "alias").symlink_to(tmp_path / "real", target_is_directory=True)
    monkeypatch.chdir(tmp_path)

    [found] = scan(b"./real/../alias/")

    assert found.path == os.path.join(os.fsencode(tmp_path), b"alias", b"p.jpg")


def test_excluded_folders_are_left_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    touch(tmp_path / "keep" / "a.jpg")
    touch(tmp_path / "keep" / "drafts" / "b.jpg")
    touch(tmp_path / "skip" / "c.jpg")
    touch(tmp_path / "skip-not" / "d.jpg")
    root = os.fsencode(tmp_path)
    monkeypatch.chdir(tmp_path)

    found = scan(root, excluded=[os.path.join(root, b"skip"), b"keep/drafts/"])

    assert names(list(found), tmp_path) == [b"keep/a.jpg", b"skip-not/d.jpg"]
    assert list(scan(os.path.join(root, b"skip"), excluded=[root])) == []


def test_unreadable_folder_is_skipped_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    touch(tmp_path / "locked" / "secret.jpg")
    touch(tmp_path / "open" / "fine.jpg")
    locked = os.fsencode(tmp_path / "locked")
    real_scandir = os.scandir

    def scandir(path: bytes) -> "os._ScandirIterator[bytes]":
        if path == locked:  # what a folder without read permission does, even when tests run as root
            raise PermissionError(13, "Permission denied", path)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with caplog.at_level(logging.WARNING, logger="engine.media.scanner"):
        found = list(scan(os.fsencode(tmp_path)))

    assert names(found, tmp_path) == [b"open/fine.jpg"]
    assert "locked: permission denied" in caplog.text


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_a_pipe_named_like_a_photo_is_not_yielded(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.jpg")  # opening it to decode would block the indexer forever
    touch(tmp_path / "real.jpg")

    assert names(list(scan(os.fsencode(tmp_path))), tmp_path) == [b"real.jpg"]


def test_a_missing_or_wrong_folder_is_a_media_error_at_once(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match=r"^folder not found: .*nowhere$"):
        scan(os.fsencode(tmp_path / "nowhere"))
    with pytest.raises(MediaError, match=r"^not a folder: "):
        scan(os.fsencode(touch(tmp_path / "photo.jpg")))


def test_fingerprint_follows_content_not_name(tmp_path: Path) -> None:
    body = os.urandom(300_000)
    original = touch(tmp_path / "a.jpg", body)
    moved = touch(tmp_path / "elsewhere" / "renamed.jpg", body)
    last_byte_changed = body[:-1] + bytes([body[-1] ^ 0xFF])
    retouched = touch(tmp_path / "b.jpg", last_byte_changed)
    small = touch(tmp_path / "small.jpg", b"tiny")

    def fp(path: Path) -> str:
        return fingerprint(os.fsencode(path), path.stat().st_size)

    assert fp(original) == fp(moved)
    assert fp(original) != fp(retouched)
    assert fp(original) != fp(touch(tmp_path / "longer.jpg", body + b"\0"))
    assert len(fp(small)) == 32 and fp(small) != fp(touch(tmp_path / "small2.jpg", b"tinY"))


def test_fingerprint_of_a_vanished_file_is_a_media_error(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match=r"^file not found"):
        fingerprint(os.fsencode(tmp_path / "gone.jpg"), 10)
