"""`glimpse watch` follows a folder: added and deleted files are reflected within seconds."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from engine import Library
from tests.e2e.conftest import GLIMPSE, glimpse, wait_for
from tests.factory import make_photo


def names(library: Path) -> set[str]:
    with Library.open(library) as reader:
        return {r.path.name for r in reader.search("anything", limit=100).all}


def test_watch_follows_additions_and_deletions(tmp_path):
    media = tmp_path / "media"
    make_photo(media / "first.jpg")
    library = tmp_path / "library"
    assert glimpse("index", media, "--model", "tiny-test", library=library).code == 0

    log = open(tmp_path / "watch.log", "wb")  # noqa: SIM115 - read after the process ends
    process = subprocess.Popen(
        [GLIMPSE, "watch", "--library", library], stderr=log, env={**os.environ, "HF_HUB_OFFLINE": "1"}
    )
    try:
        assert wait_for(lambda: b"watching" in (tmp_path / "watch.log").read_bytes())
        make_photo(media / "new" / "second.jpg", seed=1)
        assert wait_for(lambda: "second.jpg" in names(library))
        (media / "first.jpg").unlink()
        assert wait_for(lambda: "first.jpg" not in names(library))
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)
        log.close()
    assert code == 0, (tmp_path / "watch.log").read_text()
    assert glimpse("check", library=library).code == 0
