"""Errors a user can act on. Each message is one clear sentence; the CLI prints it and exits 1."""


class GlimpseError(Exception):
    """Base of every failure Glimpse reports to a user."""


class UsageError(GlimpseError):
    """The request itself is wrong (unknown preset, missing folder…); the CLI exits 2."""


class LibraryLocked(GlimpseError):
    """Another process holds the library's write lock."""


class LibraryError(GlimpseError):
    """The library folder cannot be opened, read or written."""


class ModelUnavailable(GlimpseError):
    """A model's weights are neither on this computer nor downloadable."""


class MediaError(GlimpseError):
    """One file could not be decoded; recorded against that file, the run goes on."""


def explain(error: BaseException) -> GlimpseError:
    """One sentence a user can act on for any failure that is not already a GlimpseError."""
    import errno

    if isinstance(error, GlimpseError):
        return error
    if isinstance(error, OSError):
        where = f" ({error.filename})" if error.filename else ""
        if error.errno == errno.ENOSPC:
            return LibraryError(f"the disk is full{where}; free some space and run the command again")
        if error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            return LibraryError(f"Glimpse may not write here{where}; choose another library with --library")
        return LibraryError(f"{error.strerror or error}{where}")
    text = str(getattr(error, "orig", None) or error)
    if "disk is full" in text or "database or disk is full" in text:
        return LibraryError("the disk holding the library is full; free some space and run the command again")
    if "readonly database" in text or "unable to open database" in text:
        return LibraryError(
            "the library's catalogue cannot be written; choose another library with --library"
        )
    return GlimpseError(
        f"unexpected error ({type(error).__name__}: {error}); details are in the library's log"
    )
