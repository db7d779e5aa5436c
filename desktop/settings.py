"""The app's settings, persisted in the library folder (`desktop-settings.ini`, through QSettings).

Why in the library folder rather than in QSettings' per-user default place: everything else a library needs
(catalogue, index, thumbnails, log) already lives there, a second library (`--library DIR`) gets settings of
its own, and the tests' temporary libraries never touch the person's real settings. What changes what the
library holds is the engine's business: the model a library was indexed with and its video frame interval
live in the catalogue and reach it through the index service; this file holds them as the person's choice.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings

FILE_NAME = "desktop-settings.ini"
DEVICES = ("auto", "cpu", "cuda")


class AppSettings:
    """Typed access to the persisted settings; every setter writes through at once."""

    def __init__(self, library: Path) -> None:
        self._store = QSettings(str(library / FILE_NAME), QSettings.Format.IniFormat)

    def _get(self, key: str, default, kind):
        value = self._store.value(key, default)
        try:
            if kind is bool and isinstance(value, str):
                return value.lower() in ("true", "1", "yes")
            return kind(value)
        except (TypeError, ValueError):
            return default

    def _set(self, key: str, value) -> None:
        self._store.setValue(key, value)
        self._store.sync()

    @property
    def model(self) -> str | None:
        """The model preset chosen (at first run or in Settings); None before the first choice."""
        value = self._store.value("model/preset", None)
        return str(value) if value else None

    @model.setter
    def model(self, value: str) -> None:
        self._set("model/preset", value)

    @property
    def device(self) -> str:
        value = self._get("model/device", "auto", str)
        return value if value in DEVICES else "auto"

    @device.setter
    def device(self, value: str) -> None:
        self._set("model/device", value)

    @property
    def rerank(self) -> bool:
        return self._get("search/rerank", True, bool)

    @rerank.setter
    def rerank(self, value: bool) -> None:
        self._set("search/rerank", bool(value))

    @property
    def rerank_k(self) -> int | None:
        """How many results the Slow model re-scores; None: the engine's default for the device."""
        value = self._get("search/rerank_k", 0, int)
        return value if value > 0 else None

    @rerank_k.setter
    def rerank_k(self, value: int | None) -> None:
        self._set("search/rerank_k", int(value or 0))

    @property
    def read_text(self) -> bool:
        """Whether indexing reads the words written in photos and videos (OCR), in the background."""
        return self._get("indexing/read_text", True, bool)

    @read_text.setter
    def read_text(self, value: bool) -> None:
        self._set("indexing/read_text", bool(value))

    @property
    def frame_interval_s(self) -> float:
        return self._get("indexing/frame_interval_s", 2.0, float)

    @frame_interval_s.setter
    def frame_interval_s(self, value: float) -> None:
        self._set("indexing/frame_interval_s", float(value))

    @property
    def thumbnail_cache_mb(self) -> int:
        return max(16, self._get("thumbnails/cache_mb", 512, int))

    @thumbnail_cache_mb.setter
    def thumbnail_cache_mb(self, value: int) -> None:
        self._set("thumbnails/cache_mb", int(value))

    @property
    def welcomed(self) -> bool:
        """Whether the first-run welcome has been completed."""
        return self._get("app/welcomed", False, bool)

    @welcomed.setter
    def welcomed(self, value: bool) -> None:
        self._set("app/welcomed", bool(value))

    @property
    def geometry(self) -> QByteArray | None:
        value = self._store.value("window/geometry")
        return value if isinstance(value, QByteArray) else None

    @geometry.setter
    def geometry(self, value: QByteArray) -> None:
        self._set("window/geometry", value)
