"""What a library's resident engine and its clients say to each other, and how every request is validated.

One message a line: a JSON object in UTF-8 (non-ASCII escaped, so a file name that is not UTF-8 travels as
its surrogate escapes and comes back as the same bytes), a request at most `MAX_REQUEST_BYTES` long. A client
says `hello` first, and the engine answers who it is (`EngineInfo`: a client never talks to an engine whose
code has changed on disk since it started, or that runs in another environment); then the client asks its question. The engine answers with
any number of `{"notice": TEXT}` lines (what the command in this process would have printed on stderr, as it
happens), then one reply: `{"ok": true, "value": ...}`, or `{"ok": false, "error": {"class": NAME, "message":
SENTENCE}}`, NAME being one of engine.errors' classes and SENTENCE the one the command prints.

`decode_request` validates everything the engine reads: a line that is not JSON, not an object, of an unknown
kind, or with a missing, unknown, mistyped or out-of-range field raises ProtocolError, whose sentence the engine
sends back before it goes on serving.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import IO, Any

from engine.errors import GlimpseError, LibraryError, LibraryLocked, MediaError, ModelUnavailable, UsageError
from engine.search.query import SORT_ORDERS, SearchRequest

#: Bumped whenever a message changes meaning; an engine of another protocol is replaced, never spoken to.
PROTOCOL = 1
#: Requests are small (a query, two paths); anything longer is refused, and the connection closed.
MAX_REQUEST_BYTES = 64 * 1024
#: Replies can be long (10,000 results with their details), not unbounded.
MAX_REPLY_BYTES = 256 * 1024 * 1024
#: The most results one request may ask for, and the deepest re-ranking.
MAX_LIMIT = 100_000
MAX_RERANK = 10_000
DEVICES = ("auto", "cpu", "cuda")


class EngineError(GlimpseError):
    """The library's resident engine cannot be started, reached or trusted."""


class EngineStopping(EngineError):
    """The engine was stopping when the request came; a new one answers it."""


class OtherEnvironment(EngineError):
    """The running engine was started with other settings in its environment, so it cannot answer for this one."""


class ProtocolError(GlimpseError):
    """A message that is not a valid request or reply."""


#: The failures that cross the socket as themselves: a client raises the class the engine raised.
ERRORS: dict[str, type[GlimpseError]] = {
    cls.__name__: cls
    for cls in (
        GlimpseError,
        UsageError,
        LibraryLocked,
        LibraryError,
        ModelUnavailable,
        MediaError,
        EngineError,
        EngineStopping,
        ProtocolError,
    )
}


# ---------------------------------------------------------------------------------------------------------
# Requests.


@dataclass(frozen=True)
class Hello:
    """Who are you? The first question on every connection; the answer is an `EngineInfo`."""


@dataclass(frozen=True)
class Search:
    """`Library.run(request)`: words or a file's look-alikes, as the window asks."""

    request: SearchRequest
    device: str = "auto"


@dataclass(frozen=True)
class Similar:
    """`Library.similar(file, ...)`, as `glimpse similar` asks (the file must exist as a file)."""

    request: SearchRequest
    device: str = "auto"


@dataclass(frozen=True)
class Status:
    """`Library.status()`."""


@dataclass(frozen=True)
class Check:
    """`Library.check()`, without repairing (repairs need the writer)."""


@dataclass(frozen=True)
class FailedFiles:
    """`Library.failed_files(limit)`."""

    limit: int


@dataclass(frozen=True)
class Model:
    """`Library.model`: the model the library is indexed with, or None."""


@dataclass(frozen=True)
class WarmUp:
    """Load the library's models now, if it has any; the answer is the model's name, or ""."""

    device: str = "auto"


@dataclass(frozen=True)
class Stop:
    """Finish what is under way, then stop."""


Request = Hello | Search | Similar | Status | Check | FailedFiles | Model | WarmUp | Stop
KINDS: dict[str, type] = {
    "hello": Hello,
    "search": Search,
    "similar": Similar,
    "status": Status,
    "check": Check,
    "failed": FailedFiles,
    "model": Model,
    "warm": WarmUp,
    "stop": Stop,
}
_KIND_OF = {cls: kind for kind, cls in KINDS.items()}


@dataclass(frozen=True)
class EngineInfo:
    """What an engine says about itself in answer to `hello`."""

    pid: int
    protocol: int
    #: False once a file of the code it runs has changed on disk (Glimpse was upgraded, or a developer edited
    #: it): a client then replaces it rather than ask it.
    current: bool
    environment: str  # `environment_digest()` of the environment it was started in
    library: str  # the real path of the library it serves

    def to_json(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_json(cls, data: Any) -> EngineInfo:
        """What an engine said; the hello of an engine of another protocol reads as protocol -1 (replace it)."""
        readable = isinstance(data, dict) and set(data) == set(_INFO_TYPES)
        if readable and all(isinstance(data[name], kind) for name, kind in _INFO_TYPES.items()):
            return cls(**data)
        pid = data.get("pid") if isinstance(data, dict) else None
        return cls(
            pid=pid if isinstance(pid, int) else 0, protocol=-1, current=False, environment="", library=""
        )


_INFO_TYPES = {"pid": int, "protocol": int, "current": bool, "environment": str, "library": str}


def encode_request(request: Request) -> bytes:
    data: dict[str, Any] = {"kind": _KIND_OF[type(request)]}
    for f in fields(request):
        value = getattr(request, f.name)
        data[f.name] = search_request_to_wire(value) if isinstance(value, SearchRequest) else value
    return _line(data)


def decode_request(line: bytes) -> Request:
    """The request a line holds; ProtocolError, in one sentence, for anything else."""
    data = _object(line)
    kind = data.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:
        raise ProtocolError(f"unknown request kind {_shown(kind)}; known: {', '.join(KINDS)}")
    cls = KINDS[kind]
    expected = {"kind", *(f.name for f in fields(cls))}
    _only(data, expected, f"a {kind} request")
    if cls in (Search, Similar):
        request = search_request_from_wire(_get(data, "request", dict))
        if cls is Similar and request.similar_to is None:
            raise ProtocolError("a similar request needs the file it looks for look-alikes of")
        return cls(request=request, device=_device(data))
    if cls is WarmUp:
        return WarmUp(device=_device(data))
    if cls is FailedFiles:
        return FailedFiles(limit=_int(data, "limit", 1, MAX_LIMIT))
    return cls()


def search_request_to_wire(request: SearchRequest) -> dict:
    return {
        "text": request.text,
        "similar_to": os.fsdecode(request.similar_to) if request.similar_to is not None else None,
        "limit": request.limit,
        "kind": request.kind,
        "folder": os.fsdecode(request.folder) if request.folder is not None else None,
        "taken_from": request.taken_from.isoformat() if request.taken_from else None,
        "taken_to": request.taken_to.isoformat() if request.taken_to else None,
        "rerank": request.rerank,
        "sort": request.sort,
    }


def search_request_from_wire(data: Mapping[str, Any]) -> SearchRequest:
    _only(data, set(search_request_to_wire(SearchRequest())), "a search request")
    kind = _get(data, "kind", str, optional=True)
    if kind not in (None, "image", "video"):
        raise ProtocolError("the type must be image or video")
    sort = _get(data, "sort", str)
    if sort not in SORT_ORDERS:
        raise ProtocolError(f"sort by {', '.join(SORT_ORDERS)}")
    rerank = _int(data, "rerank", 0, MAX_RERANK, optional=True)
    return SearchRequest(
        text=_get(data, "text", str),
        similar_to=_path(data, "similar_to"),
        limit=_int(data, "limit", 1, MAX_LIMIT),
        kind=kind,
        folder=_path(data, "folder"),
        taken_from=_date(data, "taken_from"),
        taken_to=_date(data, "taken_to"),
        rerank=rerank,
        sort=sort,
    )


# ---------------------------------------------------------------------------------------------------------
# Replies.


@dataclass(frozen=True)
class Notice:
    """A line the in-process command would have printed on stderr."""

    text: str


@dataclass(frozen=True)
class Answer:
    """The reply's value (its shape depends on the request)."""

    value: Any


def encode_notice(text: str) -> bytes:
    return _line({"notice": text})


def encode_answer(value: Any) -> bytes:
    return _line({"ok": True, "value": value})


def encode_failure(error: GlimpseError) -> bytes:
    # The nearest class the other side knows: an error of a class of its own travels as its base class.
    name = next(cls.__name__ for cls in type(error).__mro__ if cls.__name__ in ERRORS)
    return _line({"ok": False, "error": {"class": name, "message": str(error)}})


def decode_reply(line: bytes) -> Notice | Answer:
    """A notice or an answer; a failure is raised as the error the engine raised."""
    data = _object(line)
    if "notice" in data:
        return Notice(_get(data, "notice", str))
    ok = _get(data, "ok", bool)
    if ok:
        return Answer(data.get("value"))
    error = _get(data, "error", dict)
    cls = ERRORS.get(_get(error, "class", str), GlimpseError)
    raise cls(_get(error, "message", str))


# ---------------------------------------------------------------------------------------------------------
# Lines.


def read_line(stream: IO[bytes], limit: int) -> bytes | None:
    """The next message from `stream`: None when the peer closed the connection between two messages.

    Raises ProtocolError for a line over `limit` bytes (the connection cannot be read on after it) and EOFError
    for a message cut short (the peer left, or died, in the middle of it); a socket timeout passes through."""
    line = stream.readline(limit + 1)
    if not line:
        return None
    if not line.endswith(b"\n"):
        if len(line) > limit:
            raise ProtocolError(f"a message is at most {limit} bytes long")
        raise EOFError("the message was cut short")
    return line


def _line(data: Mapping[str, Any]) -> bytes:
    return json.dumps(data, ensure_ascii=True, separators=(",", ":")).encode("ascii") + b"\n"


def _object(line: bytes) -> dict:
    try:
        data = json.loads(line.decode("utf-8"))
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError; deep nesting a RecursionError
        raise ProtocolError("a message must be one JSON object on one line, in UTF-8") from None
    if not isinstance(data, dict):
        raise ProtocolError("a message must be a JSON object")
    return data


def _only(data: Mapping[str, Any], expected: set[str], what: str) -> None:
    unknown = sorted(set(data) - expected)
    if unknown:
        raise ProtocolError(f"{what} has no field {_shown(unknown[0])}")


def _get(data: Mapping[str, Any], name: str, kind: type, *, optional: bool = False) -> Any:
    value = data.get(name)
    if value is None and optional:
        return None
    # bool is an int to Python, never to a request.
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise ProtocolError(f"the field {name} must be {_TYPE_NAMES[kind]}")
    return value


def _int(data: Mapping[str, Any], name: str, low: int, high: int, *, optional: bool = False) -> int | None:
    value = _get(data, name, int, optional=optional)
    if value is not None and not low <= value <= high:
        raise ProtocolError(f"the field {name} must be between {low} and {high}")
    return value


def _device(data: Mapping[str, Any]) -> str:
    device = _get(data, "device", str)
    if device not in DEVICES:
        raise ProtocolError(f"the device must be {', '.join(DEVICES)}")
    return device


def _path(data: Mapping[str, Any], name: str) -> bytes | None:
    text = _get(data, name, str, optional=True)
    if text is None:
        return None
    try:
        raw = os.fsencode(text)
    except UnicodeEncodeError:
        raise ProtocolError(f"the field {name} is not a path") from None
    if b"\0" in raw or not os.path.isabs(raw):
        raise ProtocolError(f"the field {name} must be an absolute path")
    return raw


def _date(data: Mapping[str, Any], name: str) -> dt.date | None:
    text = _get(data, name, str, optional=True)
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ProtocolError(f"the field {name} must be a date, YYYY-MM-DD") from None


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=True) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


_TYPE_NAMES = {str: "a string", int: "a whole number", bool: "true or false", dict: "an object"}


# ---------------------------------------------------------------------------------------------------------
# What makes an engine the right one to answer.

#: Variables that change what a search answers or how models load: GLIMPSE_* and HF_* ones (and which GPUs
#: CUDA sees), less those that only choose or tune the engine itself or the window.
_ENVIRONMENT_PREFIXES = ("GLIMPSE_", "HF_")
_ENVIRONMENT_NAMES = ("CUDA_VISIBLE_DEVICES",)
_NOT_ENVIRONMENT = ("GLIMPSE_LIBRARY", "GLIMPSE_NO_DAEMON", "GLIMPSE_ENGINE_", "GLIMPSE_DESKTOP_")


def environment_digest(environ: Mapping[str, str] | None = None) -> str:
    """A digest of the environment variables that change answers: an engine answers only clients that agree."""
    environ = os.environ if environ is None else environ
    relevant = sorted(
        (name, value)
        for name, value in environ.items()
        if (name.startswith(_ENVIRONMENT_PREFIXES) or name in _ENVIRONMENT_NAMES)
        and not name.startswith(_NOT_ENVIRONMENT)
    )
    return hashlib.sha256(json.dumps(relevant).encode()).hexdigest()[:32]
