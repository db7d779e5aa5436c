"""Sampling still frames from an untrusted video: about one every few seconds, plus the first frame of a new shot.

Speed comes from decoding as little as possible. Compressed video is a series of groups of pictures, each opened
by a keyframe that decodes on its own; every other frame needs its predecessors. Phones and cameras put a
keyframe every second or two and many encoders add one at each scene cut, so the sampler normally decodes
keyframes only (the ones it keeps, and those off the encoder's rhythm, which likely open a new shot) and never
touches the frames between them. Where keyframes are further apart than the sampling
interval allows (screen recordings, long-GOP encoders), it decodes through the group up to the moment it wants
and no further. Decoding forward like this serves each wanted moment at the cost a seek would have (a seek
also has to decode from the previous keyframe) and never decodes a frame twice. Packets are inspected before
they are decoded and only a few seconds of them are ever held, so an hour-long video costs no more memory
than a short one.
"""

import logging
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Self

import av
import av.container
import av.error
import av.packet
import av.video
import numpy as np
from av.video.reformatter import VideoReformatter
from PIL import Image

from engine.errors import MediaError
from engine.media.images import model_size, plausible_capture_time
from engine.media.location import Coordinates, location_from_container
from engine.media.scanner import unreadable

log = logging.getLogger(__name__)

# A keyframe this fraction of an interval early is taken rather than waiting (it may be the last for a while).
_EARLY = 0.25
# No keyframe within this fraction of an interval after a frame was due: decode the frames in between.
_LATE = 0.5
# Packets held back at most, whatever the timestamps say (a file whose clock jumps back would hold them all).
_MAX_PENDING = 1000
# A keyframe this much sooner than the longest keyframe gap so far breaks the encoder's rhythm.
_OFF_RHYTHM = 0.9
# While decoding through a group of pictures, frames are checked for a scene cut at most this often (seconds).
_PROBE_GAP = 0.5
# Colour-histogram distance (0 = same colours, 1 = none in common) above which a frame starts a new shot.
_CUT_DISTANCE = 0.5
_HISTOGRAM_SIZE = (64, 36)
_HISTOGRAM_BINS = 16
_COUNTERCLOCKWISE = {
    1: Image.Transpose.ROTATE_90,
    2: Image.Transpose.ROTATE_180,
    3: Image.Transpose.ROTATE_270,
}


@dataclass
class VideoInfo:
    """What a video is: its length, its size as a player shows it, and when it was recorded.

    `taken_at` is local wall-clock time (naive), like a photo's EXIF time: the recording's own local time
    where the file says it (Apple's creationdate), else the container's UTC creation_time in this computer's
    time zone; None when absent or impossible. `location` is where it was recorded (the container's ISO 6709
    tag, the container's or a stream's), None when absent or malformed.
    """

    duration_ms: int
    width: int
    height: int
    taken_at: datetime | None
    location: Coordinates | None = None


@dataclass
class VideoFrame:
    """One sampled frame: its moment in the video, and the picture (RGB, upright, shorter side about min_side)."""

    timestamp_ms: int
    image: Image.Image


class FrameSampler:
    """Picks the frames of a video worth embedding: one about every `interval_s` seconds, plus scene cuts."""

    def __init__(self, interval_s: float = 2.0, scene_cuts: bool = True, min_side: int = 448) -> None:
        if not interval_s > 0 or min_side < 1:
            raise ValueError(f"interval_s and min_side must be positive, not {interval_s} and {min_side}")
        self.interval_s = interval_s
        self.scene_cuts = scene_cuts
        self.min_side = min_side

    def open(self, path: bytes) -> "SampledVideo":
        """Open the video at `path` for sampling (use it in a `with` block); MediaError if it holds no picture."""
        return SampledVideo(path, self)


class SampledVideo:
    """An open video: `info` at once, then `frames()` lazily, in one pass. Close it, or use it in `with`."""

    info: VideoInfo

    def __init__(self, path: bytes, sampler: FrameSampler) -> None:
        self._container: av.container.InputContainer | None = None
        self._iterated = False
        try:
            self._open(path, sampler)
        except BaseException:
            self.close()
            raise

    def _open(self, path: bytes, sampler: FrameSampler) -> None:
        try:
            if os.stat(path).st_size == 0:  # FFmpeg would only say "invalid data"
                raise MediaError("not a readable video: the file is empty")
            # FFmpeg takes names as str; fsdecode's surrogate escapes carry any byte path through unchanged.
            self._container = av.open(os.fsdecode(path), metadata_errors="replace")
            stream = _picture_stream(self._container)
            self._sampling = _Sampling(self._container, stream, sampler)
            # Decoding the first frame now proves the file is a video at all, and tells its displayed size.
            first = next(self._sampling.frames, None)
        except (FileNotFoundError, PermissionError, IsADirectoryError) as e:  # FFmpeg's own ones included
            raise unreadable(e) from None
        except (av.error.FFmpegError, OSError) as e:  # FFmpeg says EIO for some damaged data
            raise MediaError(f"not a readable video: {_describe(e)}") from None
        if first is None:
            raise MediaError("not a readable video: no frame could be decoded (damaged or unsupported)")
        self._first = first
        self.info = VideoInfo(
            duration_ms=self._sampling.duration_ms,
            width=self._sampling.display_size[0],
            height=self._sampling.display_size[1],
            taken_at=_taken_at(self._container.metadata) or _taken_at(stream.metadata),
            location=location_from_container(self._container),
        )

    def frames(self) -> Iterator[VideoFrame]:
        """The sampled frames in time order, decoded as they are consumed; timestamps strictly increase."""
        if self._iterated:
            raise RuntimeError("frames() of a SampledVideo can be iterated only once")
        self._iterated = True
        return self._frames()

    def _frames(self) -> Iterator[VideoFrame]:
        yield self._first
        yield from self._sampling.frames

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class _Sampling:
    """The decoding loop: which packets to decode, and which decoded frames to keep."""

    def __init__(
        self, container: av.container.InputContainer, stream: av.video.VideoStream, sampler: FrameSampler
    ):
        self._container = container
        self._stream = stream
        self._interval = sampler.interval_s
        self._scene_cuts = sampler.scene_cuts
        self._min_side = sampler.min_side
        self._time_base = float(stream.time_base or 0)
        self._start = stream.start_time or 0
        self.duration_ms = _duration_ms(container, stream)
        self._codec = stream.codec_context
        # Frame threads decode several keyframes at once; slice threads help codecs that cut frames into slices.
        self._codec.thread_type = "AUTO"
        # Frames no other frame refers to (most B-frames) are not decoded: while decoding through a group of
        # pictures, the reference frame next to the wanted moment serves as well.
        self._codec.skip_frame = "NONREF"
        sar = stream.sample_aspect_ratio
        self._pixel_aspect = float(sar) if sar and sar > 0 else 1.0
        self.display_size = (0, 0)
        # One reformatter per use for the whole video: each keeps its scaling filters instead of rebuilding them
        # for every frame, which costs more than the scaling itself.
        self._reformatter = VideoReformatter()
        self._census = VideoReformatter()

        # What to decode (decided on packets, before decoding them).
        self._pending: list[av.packet.Packet] = []  # since the last packet decoded or the last keyframe
        self._wanted_from = -math.inf  # the time the next regular sample is due
        self._last_keyframe = -math.inf
        self._longest_gap = 0.0  # between keyframes so far: the encoder's rhythm
        self._planned: set[int] = set()  # pts of keyframes decoded to be kept

        # What to keep (decided on decoded frames).
        self._kept_at = -math.inf
        self._kept_ms = -1
        self._kept_histogram: np.ndarray | None = None
        self._checked_at = -math.inf
        self.frames = self._sample()

    def _sample(self) -> Iterator[VideoFrame]:
        kept = 0
        try:
            for frame in self._decode(self._packets_to_decode()):
                if picked := self._pick(frame):
                    kept += 1
                    yield picked
        except (av.error.FFmpegError, OSError) as e:
            # A truncated or damaged file: what came before the damage is still worth keeping.
            if not kept:
                raise MediaError(f"not a readable video: {_describe(e)}") from None
            log.warning("video damaged after %d sampled frames, the rest is skipped: %s", kept, _describe(e))

    def _packets_to_decode(self) -> Iterator[av.packet.Packet | None]:
        last = 0.0
        for packet in self._container.demux(self._stream):
            if packet.size:  # the demuxer ends with an empty packet, which would drain the decoder early
                last = max(last, self._seconds(packet.pts) or 0.0)
                yield from self._to_decode(packet)
        # A cut-off file often just ends, without an error: compare with the length its header promised.
        promised = self.duration_ms / 1000
        if last < 0.9 * promised - 1:
            log.warning(
                "video ends at %.1f s of the %.1f s it should last: it is probably truncated", last, promised
            )
        yield from self._to_decode_at_end()
        yield None  # drains the frames the decoder still holds

    def _decode(self, packets: Iterator[av.packet.Packet | None]) -> Iterator[av.VideoFrame]:
        for packet in packets:
            try:
                frames = self._codec.decode(packet)
            except av.error.InvalidDataError as e:
                log.debug("skipped an undecodable packet: %s", e)  # a damaged packet costs a few frames only
                continue
            yield from frames

    def _seconds(self, pts: int | None) -> float | None:
        return None if pts is None else (pts - self._start) * self._time_base

    def _to_decode(self, packet: av.packet.Packet) -> list[av.packet.Packet]:
        """The packets to decode now that `packet` has arrived, in decoding order."""
        pts = packet.pts if packet.pts is not None else packet.dts
        t = self._seconds(pts)
        if t is None:  # without a clock there is nothing to plan with: decode everything
            ready, self._pending = [*self._pending, packet], []
            return ready
        if packet.is_keyframe:
            # The frames after the previous keyframe that were not decoded yet are not needed any more.
            gap, self._last_keyframe = t - self._last_keyframe, t
            early = min(_EARLY * self._interval, gap / 2)
            # Encoders keep a rhythm (one keyframe every N frames) and break it at scene cuts: a keyframe that
            # comes before its rhythm is due probably opens a new shot. Checking only those keeps a 1-second
            # GOP from doubling the decoding work.
            off_rhythm = gap < _OFF_RHYTHM * self._longest_gap
            if math.isfinite(gap):
                self._longest_gap = max(self._longest_gap, gap)
            if t >= self._wanted_from - early:
                self._wanted_from = t + self._interval
                self._planned.add(pts)
            elif not (self._scene_cuts and off_rhythm):
                self._pending = [packet]
                return []
            self._pending = []
            return [packet]
        self._pending.append(packet)
        if t < self._wanted_from + _LATE * self._interval and len(self._pending) < _MAX_PENDING:
            return []
        # Keyframes are too sparse for the interval: decode through to the wanted moment.
        self._wanted_from = max(self._wanted_from, t - _LATE * self._interval) + self._interval
        ready, self._pending = self._pending, []
        return ready

    def _to_decode_at_end(self) -> list[av.packet.Packet]:
        """The held-back packets, if the video ended after a sample was due but before its deadline."""
        times = (self._seconds(p.pts) for p in self._pending)
        return self._pending if any(t is not None and t >= self._wanted_from for t in times) else []

    def _pick(self, frame: av.VideoFrame) -> VideoFrame | None:
        t = self._seconds(frame.pts)
        if t is None:
            return None
        ms = max(0, round(t * 1000))
        if ms <= self._kept_ms:
            return None
        planned = frame.pts in self._planned
        self._planned.discard(frame.pts)
        due = t >= self._kept_at + self._interval or (planned and t >= self._kept_at + _PROBE_GAP)
        histogram = None
        if not due:
            # Every keyframe that reaches here was sent for this check; other frames are checked now and then.
            if not (self._scene_cuts and (frame.key_frame or t >= self._checked_at + _PROBE_GAP)):
                return None
            self._checked_at = t
            histogram = _histogram(frame, self._census)
            if self._kept_histogram is None or _distance(histogram, self._kept_histogram) < _CUT_DISTANCE:
                return None
        self._kept_at = self._checked_at = t
        self._kept_ms = ms
        if self._scene_cuts:
            self._kept_histogram = histogram if histogram is not None else _histogram(frame, self._census)
        return VideoFrame(timestamp_ms=ms, image=self._picture(frame))

    def _picture(self, frame: av.VideoFrame) -> Image.Image:
        width, height = frame.width * self._pixel_aspect, frame.height
        small_width, small_height = model_size(width, height, self._min_side)
        # Scaling in swscale, from the decoder's own YUV planes, costs a fraction of converting full-size RGB;
        # bicubic, to the size open_clip's preprocessing keeps, as photos are shrunk.
        small = self._reformatter.reformat(
            frame, width=small_width, height=small_height, format="rgb24", interpolation="BICUBIC"
        )
        image = small.to_image()
        quarter_turns = round(frame.rotation / 90) % 4  # the display matrix's counterclockwise rotation
        if quarter_turns:
            image = image.transpose(_COUNTERCLOCKWISE[quarter_turns])
        size = (round(width), height)
        self.display_size = size[::-1] if quarter_turns % 2 else size
        return image


def _picture_stream(container: av.container.InputContainer) -> av.video.VideoStream:
    """The video's picture track; cover art, which music files and some MP4s store as a video stream, is not."""
    pictures = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
    if not pictures:
        raise MediaError("not a readable video: the file has no video track")
    if pictures[0].codec_context is None:  # PyAV gives no decoder for a codec FFmpeg does not know
        raise MediaError("not a readable video: its video codec is not supported")
    return pictures[0]


def _histogram(frame: av.VideoFrame, reformatter: VideoReformatter) -> np.ndarray:
    # Nearest-pixel-like scaling is plenty for a colour census and far cheaper than a good filter.
    width, height = _HISTOGRAM_SIZE
    small = reformatter.reformat(
        frame, width=width, height=height, format="rgb24", interpolation="FAST_BILINEAR"
    )
    pixels = small.to_ndarray()
    bins = (pixels // (256 // _HISTOGRAM_BINS)).reshape(-1, 3) + np.arange(3) * _HISTOGRAM_BINS
    return np.bincount(bins.ravel(), minlength=3 * _HISTOGRAM_BINS) / (width * height)


def _distance(a: np.ndarray, b: np.ndarray) -> float:
    """Half the L1 distance between per-channel histograms, averaged over channels: 0 same, 1 disjoint."""
    return float(np.abs(a - b).sum()) / 6


def _duration_ms(container: av.container.InputContainer, stream: av.video.VideoStream) -> int:
    if stream.duration and stream.time_base:
        return round(stream.duration * stream.time_base * 1000)
    if container.duration:
        return round(container.duration / av.time_base * 1000)
    return 0


def _taken_at(metadata: dict[str, str]) -> datetime | None:
    # Apple's tag keeps the recording's own time zone; creation_time is UTC by the MP4 specification.
    for key in ("com.apple.quicktime.creationdate", "creation_time"):
        try:
            moment = datetime.fromisoformat(metadata[key].strip())
        except (KeyError, ValueError):
            continue
        # A zero date is what a writer leaves when it knows none: 1904 and 1970 are the MP4 and Unix epochs.
        # Checked before the time zone conversion, which overflows at year 1 or 9999.
        if moment.year <= 1970 or not plausible_capture_time(moment):
            continue
        if moment.tzinfo is None or key != "creation_time":
            return moment.replace(tzinfo=None)
        return moment.astimezone().replace(tzinfo=None)
    return None


def _describe(error: Exception) -> str:
    """FFmpeg's own reason ("invalid data found when processing input"), without errno or file name."""
    text = getattr(error, "strerror", None) or str(error) or type(error).__name__
    return text[0].lower() + text[1:].rstrip(".")


def frame_at(path: bytes, seconds: float, min_side: int = 448) -> Image.Image:
    """The picture a player shows `seconds` into the video at `path` (upright, shorter side about `min_side`).

    For thumbnails of a matching moment: seeks to the keyframe before the moment and decodes forward to it.
    Every way an untrusted file can fail becomes a MediaError.
    """
    try:
        with av.open(os.fsdecode(path), metadata_errors="replace") as container:
            stream = _picture_stream(container)
            time_base = float(stream.time_base or 0)
            start = stream.start_time or 0
            if time_base and seconds > 0:
                container.seek(start + int(seconds / time_base), stream=stream, backward=True)
            chosen: av.VideoFrame | None = None
            for frame in container.decode(stream):
                chosen = frame
                if frame.pts is None or not time_base or (frame.pts - start) * time_base >= seconds - 0.05:
                    break
            if chosen is None:
                raise MediaError("not a readable video: no frame could be decoded at that moment")
            image = chosen.to_image()
            quarter_turns = round(chosen.rotation / 90) % 4
            if quarter_turns:
                image = image.transpose(_COUNTERCLOCKWISE[quarter_turns])
    except (FileNotFoundError, PermissionError, IsADirectoryError) as e:
        raise unreadable(e) from None
    except (av.error.FFmpegError, OSError) as e:
        raise MediaError(f"not a readable video: {_describe(e)}") from None
    size = model_size(image.width, image.height, min_side)
    return image if size == image.size else image.resize(size, Image.Resampling.BICUBIC)
