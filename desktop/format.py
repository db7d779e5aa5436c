"""How numbers read in the window: sizes, durations, moments, dates."""

from __future__ import annotations

from datetime import datetime


def clock(seconds: float) -> str:
    """A moment in a video as players show it: 0:07, 1:42, 1:02:03."""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def count(number: int, noun: str) -> str:
    """1 photo, 2,000 photos."""
    return f"{number:,} {noun}" if number == 1 else f"{number:,} {noun}s"


def file_size(size: int) -> str:
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{int(value)} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"


def when(moment: datetime | None) -> str:
    return moment.strftime("%-d %b %Y, %H:%M") if moment else "unknown"


def time_left(seconds: float) -> str:
    """An estimate as a person says it: 40 s, 3:20, 1 h 05 min."""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes}:{secs:02d}" if minutes else f"{secs} s"
