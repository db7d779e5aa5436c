"""The two ways to read a library: through its resident engine (`EngineClient`) or in this process
(`LocalReader`), behind one protocol (`LibraryReader`), and `open_reader`, which picks.

The command line's search, similar, status and check and the window's searches all read through
`open_reader`; the engine itself answers every request with a `LocalReader`, so both ways run the same calls
on the facade and give the same answers.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from engine.paths import default_library
from engine.results import CheckReport, FailedFile, LibraryStatus, SearchResults
from engine.search.query import SearchRequest

if TYPE_CHECKING:  # the facade loads SQLAlchemy and numpy, which a client of the engine never needs
    from engine.library import Library

#: Set (to anything but 0) to read every library in the process that asks, as `--no-daemon` does.
NO_DAEMON_ENV = "GLIMPSE_NO_DAEMON"


def _quiet(message: str) -> None:
    """The default for a notice nobody asked to see."""


class LibraryReader(Protocol):
    """What the command line and the window read from a library (the facade's read-only side)."""

    def run(self, request: SearchRequest, *, notice: Callable[[str], None] = _quiet) -> SearchResults:
        """`Library.run`: words, or a file's look-alikes."""

    def similar(self, request: SearchRequest) -> SearchResults:
        """`Library.similar` for `request.similar_to`, with the request's filters and order."""

    def status(self) -> LibraryStatus: ...

    def check(self) -> CheckReport:
        """`Library.check()`, without repairing."""

    def failed_files(self, limit: int) -> list[FailedFile]: ...

    def model(self) -> str | None:
        """The model the library is indexed with (None before the first index)."""

    def warm_up(self) -> str:
        """Load the library's models now, so that the next search answers at once → the model, or ""."""

    def cancel(self) -> None:
        """From any thread: give up the call under way, if it can be given up (it then raises a GlimpseError)."""

    def close(self) -> None: ...

    def __enter__(self) -> LibraryReader: ...

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: object
    ) -> None: ...


def library_folder(folder: str | os.PathLike | None) -> Path:
    """The library folder a command names (`--library`), else the default one; as `Library.open` reads it."""
    return Path(folder).expanduser() if folder is not None else default_library()


def engine_wanted(no_daemon: bool = False) -> bool:
    """Whether reads go through the resident engine: unless `--no-daemon`, GLIMPSE_NO_DAEMON or an OS without
    Unix sockets says otherwise."""
    from engine.serve.sockets import supported

    return not no_daemon and os.environ.get(NO_DAEMON_ENV, "0") in ("", "0") and supported()


def open_reader(
    folder: str | os.PathLike | None,
    *,
    device: str = "auto",
    use_engine: bool = True,
    say: Callable[[str], None] = _quiet,
) -> LibraryReader:
    """A reader of the library in `folder` (None: the default library): its engine's client, started if none
    runs, unless `use_engine` is False or `engine_wanted` says no, or the running engine serves another
    environment (then this process reads it itself). `say` hears what the engine's client has to report,
    e.g. that a dead engine was replaced."""
    from engine.serve.client import EngineClient, OtherEnvironment

    path = library_folder(folder)
    if use_engine and engine_wanted():
        client = EngineClient(path, device=device, say=say)
        try:
            client.connect()
        except OtherEnvironment:
            pass  # that engine answers for the environment it was started in; this process reads for its own
        else:
            return client
    return LocalReader(path, device=device)


class LocalReader:
    """Reads a library in this process (`--no-daemon`, and the engine's own way of answering)."""

    def __init__(self, folder: Path, *, device: str = "auto") -> None:
        from engine.library import Library

        self.library: Library = Library.open(folder, device=device)
        self._warm: str | None = None

    def run(self, request: SearchRequest, *, notice: Callable[[str], None] = _quiet) -> SearchResults:
        return self.library.run(request, notice=notice)

    def similar(self, request: SearchRequest) -> SearchResults:
        assert request.similar_to is not None
        return self.library.similar(
            request.similar_to,
            limit=request.limit,
            kind=request.kind,
            folder=request.folder,
            taken_from=request.taken_from,
            taken_to=request.taken_to,
            sort=request.sort,
        )

    def status(self) -> LibraryStatus:
        return self.library.status()

    def check(self) -> CheckReport:
        return self.library.check()

    def failed_files(self, limit: int) -> list[FailedFile]:
        return self.library.failed_files(limit)

    def model(self) -> str | None:
        return self.library.model

    def warm_up(self) -> str:
        self.warm_fast()
        self.warm_slow()
        return self.library.model or ""

    def warm_fast(self) -> None:
        """Load the Fast model and the vector index (one search with no re-ranking), once per model."""
        model = self.library.model
        if model is not None and model != self._warm:
            self.library.search("warm up", limit=1, rerank=0)
            self._warm = model

    def warm_slow(self) -> None:
        """Load the Slow re-ranker paired with the library's model, if it has one and its weights are here."""
        from engine.errors import ModelUnavailable
        from engine.models import load_slow

        slow = self.library.slow_model
        if slow is not None:
            # Without its weights, a search says so itself, as a notice, when it re-ranks without it.
            with contextlib.suppress(ModelUnavailable):
                load_slow(slow, self.library.device)

    def cancel(self) -> None:
        """Work in this process cannot be given up: it runs to its end."""

    def close(self) -> None:
        self.library.close()

    def __enter__(self) -> LocalReader:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: object) -> None:
        self.library.__exit__(kind, error, trace)  # logs an unexpected failure's trace to the library's log
