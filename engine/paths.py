"""Where a library lives, and how paths cross between the OS (bytes) and people (text)."""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_data_path

LIBRARY_ENV = "GLIMPSE_LIBRARY"
#: The library's log, inside its folder: the engine's messages and every unexpected failure's trace.
LOG_FILE = "glimpse.log"


def default_library() -> Path:
    """`GLIMPSE_LIBRARY` if set, else the platform's user-data folder (e.g. ~/.local/share/glimpse/library)."""
    env = os.environ.get(LIBRARY_ENV)
    if env:
        return Path(env).expanduser()
    return user_data_path("glimpse", appauthor=False) / "library"


def log_file(library: Path) -> Path:
    """The log file of the library in folder `library` (it may not exist yet)."""
    return library / LOG_FILE


def to_bytes(path: str | bytes | os.PathLike) -> bytes:
    """An absolute, normalised path as the OS's bytes: what the catalogue stores, lossless for any name."""
    return os.path.abspath(os.fsencode(path))


def to_path(raw: bytes) -> Path:
    """A catalogue path back as a Path; names that are not valid UTF-8 survive via surrogate escapes."""
    return Path(os.fsdecode(raw))


def display(path: bytes | Path) -> str:
    """A path made printable: bytes that are not UTF-8 appear as \\xNN escapes instead of breaking output."""
    raw = path if isinstance(path, bytes) else os.fsencode(path)
    return raw.decode("utf-8", errors="backslashreplace")


def is_inside(path: bytes, folder: bytes) -> bool:
    """Whether `path` lies inside `folder` (byte-wise, so /a/bc is not inside /a/b)."""
    return path.startswith(folder.rstrip(b"/") + b"/")
