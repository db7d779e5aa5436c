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
