"""Files and folders Glimpse may not read: each is reported in one sentence and the run goes on.

Tests run as root in CI, and root reads a file whatever its mode. There the real `glimpse` runs without the
capabilities that let root override file permissions, so a mode of 000 refuses it as it refuses any user.
"""

from __future__ import annotations

import ctypes
import os

from engine import Library
from tests.e2e.conftest import glimpse
from tests.factory import make_photo

CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 1, 2  # linux/capability.h
PR_CAPBSET_DROP = 24  # linux/prctl.h


def subject_to_file_permissions() -> None:
    """In the child, before exec: root gives up overriding file permissions, for itself and all it starts."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "cannot drop root's file capabilities")


AS_A_USER = {"preexec_fn": subject_to_file_permissions} if os.geteuid() == 0 else {}


def test_an_unreadable_photo_fails_an_unreadable_folder_is_skipped_and_the_run_goes_on(tmp_path):
    media = tmp_path / "media"
    for seed in range(3):
        make_photo(media / f"p{seed}.jpg", seed=seed)
    locked = make_photo(media / "locked.jpg", seed=7)
    private = make_photo(media / "private" / "diary.jpg", seed=8).parent
    library = tmp_path / "library"
    locked.chmod(0)
    private.chmod(0)
    try:
        run = glimpse("index", media, "--model", "tiny-test", "--json", library=library, **AS_A_USER)
    finally:
        locked.chmod(0o644)
        private.chmod(0o755)
    assert run.code == 0, run.stderr
    report = run.json()
    assert (report["images"], report["failed"]) == (3, 1)
    with Library.open(library) as reader:
        assert [(f.path, f.error) for f in reader.failed_files()] == [
            (locked, "file cannot be read: permission denied")
        ]
    assert f"skipped folder {private}: permission denied" in (library / "glimpse.log").read_text()
    assert glimpse("check", library=library).code == 0
