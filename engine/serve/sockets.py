"""Where a library's engine listens, and who may connect: a Unix socket that only its user can open.

Every engine of a user has its files in one private folder: `$XDG_RUNTIME_DIR/glimpse` where the session has a
runtime folder (a tmpfs only the user reaches, emptied at logout), else `glimpse-<uid>` in the temporary
folder. The folder must be a real folder of the user's with mode 0700 and each socket in it has mode 0600; both
are checked before use, and a folder or socket that others could reach is refused in one sentence. Inside, a
library's files are named by a digest of its real path: one engine per library whatever path spelled it, and a
socket path short enough for the OS's limit however deep the library lies. The engine also checks who connects
where the OS says (SO_PEERCRED on Linux): only processes of its own user are served. Nothing listens on a
network port.
"""

from __future__ import annotations

import hashlib
import os
import socket
import stat
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

from engine.serve.protocol import EngineError

#: sun_path holds 108 bytes on Linux and 104 on macOS, its closing NUL included.
SOCKET_PATH_MAX = 103
#: What the engine appends to its socket's name while it binds (".<pid>"), before renaming it into place.
_BINDING_SUFFIX_MAX = 12


def supported() -> bool:
    """Whether this OS has Unix sockets (Windows' Python does not: there, every command reads in its process)."""
    return hasattr(socket, "AF_UNIX")


@dataclass(frozen=True)
class EnginePlace:
    """The files of one library's engine, in the user's private engine folder."""

    library: Path  # the library's real path: what names the engine
    folder: Path
    socket: Path
    start_lock: Path  # clients that start an engine take turns on it
    engine_lock: Path  # held by the running engine for as long as it runs
    log: Path  # the engine's stderr: a crash's trace, or why it could not start

    @classmethod
    def of(cls, library: Path) -> EnginePlace:
        """The place of the engine of the library in folder `library` (the private folder is made if needed)."""
        real = Path(os.path.realpath(library))
        folder = private_folder()
        name = hashlib.sha256(os.fsencode(real)).hexdigest()[:24]
        place = cls(
            library=real,
            folder=folder,
            socket=folder / f"{name}.sock",
            start_lock=folder / f"{name}.start.lock",
            engine_lock=folder / f"{name}.engine.lock",
            log=folder / f"{name}.log",
        )
        if len(os.fsencode(place.socket)) + _BINDING_SUFFIX_MAX > SOCKET_PATH_MAX:
            raise EngineError(
                f"the folder {folder} is too deep for the engine's socket; set XDG_RUNTIME_DIR to a shorter "
                "folder, or use --no-daemon"
            )
        return place


def private_folder() -> Path:
    """The user's engine folder, made (mode 0700) if it is not there; EngineError if others could reach it."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime):
        folder = Path(runtime) / "glimpse"
    else:
        folder = Path(tempfile.gettempdir()) / f"glimpse-{os.geteuid()}"
    try:
        os.mkdir(folder, 0o700)
    except FileExistsError:
        pass
    except OSError as error:
        raise EngineError(
            f"cannot make the engine folder {folder}: {error.strerror}; use --no-daemon"
        ) from None
    check_private(folder, "folder")
    return folder


def check_private(path: Path, what: str) -> None:
    """Raise EngineError unless `path` (the engine "folder" or a "socket") is this user's and theirs alone."""
    info = os.lstat(path)
    kind_ok = stat.S_ISDIR(info.st_mode) if what == "folder" else stat.S_ISSOCK(info.st_mode)
    if not kind_ok:
        raise EngineError(f"{path} is not a {what}; remove it, or use --no-daemon")
    if info.st_uid != os.geteuid():
        raise EngineError(f"the engine {what} {path} belongs to another user; remove it, or use --no-daemon")
    if info.st_mode & 0o077:
        mode = stat.S_IMODE(info.st_mode)
        private = "700" if what == "folder" else "600"
        raise EngineError(
            f"the engine {what} {path} can be opened by other users (mode {mode:o}); make it private "
            f"(chmod {private} {path}), or use --no-daemon"
        )


def peer_uid(connection: socket.socket) -> int | None:
    """The user id of the process at the other end of a Unix socket, where the OS says (None where it does not)."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return None
    credentials = connection.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", credentials)
    return uid
