"""Finding photos and videos under a folder, and fingerprinting their content.

Paths are bytes from end to end: a file name may be any byte sequence the operating system allows (an old
Latin-1 name on a Linux disk is not valid UTF-8), and such a file must be found, indexed and opened again.
"""

import enum
import hashlib
import logging
import os
import stat
from collections.abc import Collection, Iterator
from dataclasses import dataclass

from engine.errors import MediaError
from engine.paths import display

log = logging.getLogger(__name__)


class MediaKind(enum.StrEnum):
    IMAGE = "image"
    VIDEO = "video"


IMAGE_EXTENSIONS = frozenset(
    {b".jpg", b".jpeg", b".jpe", b".png", b".webp", b".gif", b".bmp", b".tif", b".tiff", b".heic", b".heif"}
)
VIDEO_EXTENSIONS = frozenset({b".mp4", b".mov", b".mkv", b".avi", b".webm", b".m4v"})

_KIND_BY_EXTENSION = {ext: MediaKind.IMAGE for ext in IMAGE_EXTENSIONS} | {
    ext: MediaKind.VIDEO for ext in VIDEO_EXTENSIONS
}

# The fingerprint reads this much from each end of a file: enough to tell photos apart (their headers hold
# timestamps and thumbnails), little enough that fingerprinting a 4 GB video costs two small reads.
_FINGERPRINT_CHUNK = 64 * 1024


@dataclass(frozen=True)
class FoundFile:
    """A media file found by `scan`: its absolute path as the user sees it, and what `stat` said."""

    path: bytes
    kind: MediaKind
    size: int
    mtime_ns: int


def kind_of(path: bytes) -> MediaKind | None:
    """The kind of media a file holds, judged by its extension (any case); None for anything else."""
    return _KIND_BY_EXTENSION.get(os.path.splitext(path)[1].lower())


def scan(folder: bytes, excluded: Collection[bytes] = ()) -> Iterator[FoundFile]:
    """Every photo and video under `folder`, recursively, in a stable order (names sorted at each level).

    Hidden files and folders (names starting with a dot, macOS `._*` resource forks included), files with
    other extensions and everything under an `excluded` folder are left out. Symbolic links are followed,
    each folder is visited once however many links lead to it, so a link to a parent cannot loop. A file or
    folder that cannot be read, vanishes or is a dangling link is skipped with a warning; only a `folder`
    that is missing or unreadable itself raises MediaError, and it does so at once, before iteration.
    """
    top = os.path.abspath(folder)
    try:
        top_stat = os.stat(top)
        if not stat.S_ISDIR(top_stat.st_mode):
            raise MediaError(f"not a folder: {display(top)}")
        top_entries = _sorted_entries(top)
    except FileNotFoundError:
        raise MediaError(f"folder not found: {display(top)}") from None
    except OSError as e:
        raise MediaError(f"folder cannot be read: {display(top)} ({_reason(e)})") from None
    excluded_paths = frozenset(os.path.abspath(e) for e in excluded)
    if any(top == e or top.startswith(os.path.join(e, b"")) for e in excluded_paths):
        return iter(())
    return _walk(top_stat, top_entries, excluded_paths)


def _walk(
    top_stat: os.stat_result, top_entries: list[os.DirEntry[bytes]], excluded: frozenset[bytes]
) -> Iterator[FoundFile]:
    visited = {(top_stat.st_dev, top_stat.st_ino)}
    # A stack of iterators over sorted listings rather than recursion: folder depth has no limit.
    stack = [iter(top_entries)]
    while stack:
        entry = next(stack[-1], None)
        if entry is None:
            stack.pop()
            continue
        # Hidden files and folders; macOS "._*" resource forks start with a dot too.
        if entry.name.startswith(b".") or entry.path in excluded:
            continue
        try:
            is_dir = entry.is_dir()  # follows symbolic links, and costs no system call for plain entries
            kind = None if is_dir else kind_of(entry.name)
            if not is_dir and kind is None:
                continue
            st = entry.stat()
        except FileNotFoundError:
            log.warning("skipped %s: it vanished or is a link to nothing", display(entry.path))
            continue
        except OSError as e:
            log.warning("skipped %s: %s", display(entry.path), _reason(e))
            continue
        if is_dir:
            if (st.st_dev, st.st_ino) in visited:
                log.info("skipped %s: folder already scanned through another path", display(entry.path))
                continue
            visited.add((st.st_dev, st.st_ino))
            try:
                stack.append(iter(_sorted_entries(entry.path)))
            except OSError as e:
                log.warning("skipped folder %s: %s", display(entry.path), _reason(e))
        # Only regular files: opening a FIFO or a device that happens to be named .jpg would block or worse.
        elif kind is not None and stat.S_ISREG(st.st_mode):
            yield FoundFile(path=entry.path, kind=kind, size=st.st_size, mtime_ns=st.st_mtime_ns)


def _sorted_entries(folder: bytes) -> list[os.DirEntry[bytes]]:
    with os.scandir(folder) as entries:
        return sorted(entries, key=lambda entry: entry.name)


def fingerprint(path: bytes, size: int) -> str:
    """A content fingerprint that survives moves and renames: blake2b of the size and both ends of the file."""
    digest = hashlib.blake2b(size.to_bytes(8, "little"), digest_size=16)
    try:
        with open(path, "rb") as f:
            digest.update(f.read(_FINGERPRINT_CHUNK))
            if size > _FINGERPRINT_CHUNK:
                f.seek(max(size - _FINGERPRINT_CHUNK, _FINGERPRINT_CHUNK))
                digest.update(f.read(_FINGERPRINT_CHUNK))
    except OSError as e:
        raise unreadable(e) from None
    return digest.hexdigest()


def unreadable(error: OSError) -> MediaError:
    """The MediaError for a file the operating system would not let us read."""
    if isinstance(error, FileNotFoundError):
        return MediaError("file not found: it was moved or deleted")
    return MediaError(f"file cannot be read: {_reason(error)}")


def _reason(error: OSError) -> str:
    """The operating system's own words for a failure ("permission denied"), without errno or path."""
    return (error.strerror or type(error).__name__).lower()
