import contextlib
import logging
import os
import wave
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from engine.errors import MediaError
from engine.media.video import FrameSampler, SampledVideo, VideoFrame
from tests.factory import MARKER_COLOR, make_bad_metadata_files, make_hostile_files, make_video


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("videos")


@pytest.fixture(scope="module")
def clip(videos: Path) -> Path:
    """20 s, 10 fps, 320×240, MPEG-4 from OpenCV: a keyframe every 1.2 s and one at each scene cut."""
    return make_video(videos / "clip.mp4", scenes=2)


def sample(path: Path, **options: object) -> tuple[SampledVideo, list[VideoFrame]]:
    with FrameSampler(**options).open(os.fsencode(path)) as video:
        return video, list(video.frames())


def times(frames: list[VideoFrame]) -> list[int]:
    return [frame.timestamp_ms for frame in frames]


def assert_spread_over(frames: list[VideoFrame], duration_ms: int, interval_ms: int) -> None:
    stamps = times(frames)
    assert stamps == sorted(set(stamps)), "timestamps must strictly increase"
    assert stamps[0] <= 500
    gaps = np.diff([*stamps, duration_ms])
    assert gaps.max() <= 1.5 * interval_ms, f"a gap of {gaps.max()} ms in {stamps}"


def marker_corner(image: Image.Image) -> tuple[float, float]:
    """Where the white marker is, as fractions of width and height: it shows whether the picture is upright."""
    near = np.abs(np.asarray(image).astype(int) - np.array(MARKER_COLOR)).sum(axis=2) < 40
    ys, xs = np.nonzero(near)
    return xs.mean() / image.width, ys.mean() / image.height


def test_a_20_second_clip_gives_a_frame_about_every_2_seconds(clip: Path) -> None:
    video, frames = sample(clip)

    assert video.info.duration_ms == 20_000
    assert (video.info.width, video.info.height) == (320, 240)
    assert video.info.taken_at is None
    assert 8 <= len(frames) <= 13
    assert_spread_over(frames, 20_000, 2_000)
    for frame in frames:
        assert frame.image.mode == "RGB" and frame.image.size == (320, 240)  # never enlarged
        x, y = marker_corner(frame.image)
        assert x < 0.3 and y < 0.3


@pytest.mark.parametrize("suffix", [".mp4", ".mov", ".m4v", ".avi", ".mkv", ".webm"])
def test_every_container_is_sampled(videos: Path, suffix: str) -> None:
    path = make_video(videos / f"every{suffix}", seconds=6, fps=5, seed=3)

    video, frames = sample(path)

    assert abs(video.info.duration_ms - 6_000) <= 200
    assert len(frames) >= 3
    assert_spread_over(frames, 6_000, 2_000)


def test_sparse_keyframes_still_give_a_frame_every_interval(videos: Path) -> None:
    # One keyframe every 10 s, like a screen recording: keyframes alone would give 2 frames.
    path = make_video(videos / "screen.mp4", fps=5, keyframe_interval=50)

    _, frames = sample(path)

    assert len(frames) >= 9
    assert_spread_over(frames, 20_000, 2_000)
    assert len({frame.image.tobytes() for frame in frames}) == len(frames)  # real, different moments


@pytest.mark.parametrize("interval_s", [0.5, 1.0, 5.0])
def test_the_interval_is_honoured(clip: Path, interval_s: float) -> None:
    _, frames = sample(clip, interval_s=interval_s, scene_cuts=False)

    expected = 20 / interval_s
    assert 0.6 * expected <= len(frames) <= 1.2 * expected + 1
    assert_spread_over(frames, 20_000, int(interval_s * 1000))


def test_a_scene_cut_gets_its_own_frame(clip: Path) -> None:
    # The second shot starts at 10 s; with one frame every 8 s the regular samples miss it by 2 s or more.
    _, with_cuts = sample(clip, interval_s=8)
    _, without = sample(clip, interval_s=8, scene_cuts=False)

    assert any(10_000 <= t <= 10_700 for t in times(with_cuts)), times(with_cuts)
    assert not any(10_000 <= t <= 10_700 for t in times(without)), times(without)


def test_a_scene_cut_between_sparse_keyframes_is_found_while_decoding_through(videos: Path) -> None:
    path = make_video(videos / "one-keyframe.mkv", fps=5, keyframe_interval=1000, scenes=2)

    _, frames = sample(path, interval_s=8)

    assert any(10_000 <= t <= 10_700 for t in times(frames)), times(frames)


def test_min_side_sets_the_picture_size(videos: Path) -> None:
    path = make_video(videos / "wide.mp4", seconds=3, size=(640, 360))

    video, frames = sample(path, min_side=180)

    assert (video.info.width, video.info.height) == (640, 360)
    assert {frame.image.size for frame in frames} == {(320, 180)}


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_a_phone_video_comes_out_the_way_a_player_shows_it(videos: Path, rotation: int) -> None:
    path = make_video(videos / f"phone{rotation}.mp4", seconds=3, rotation=rotation)

    video, frames = sample(path)

    portrait = rotation != 180
    assert (video.info.width, video.info.height) == ((240, 320) if portrait else (320, 240))
    for frame in frames:
        assert frame.image.size == (video.info.width, video.info.height)
        x, y = marker_corner(frame.image)
        assert x < 0.3 and y < 0.3, f"marker at ({x:.2f}, {y:.2f})"


def test_recording_time_is_read_from_the_container(videos: Path) -> None:
    path = make_video(videos / "dated.mov", seconds=2, taken_at=datetime(2022, 8, 1, 9, 15, 0))

    video, _ = sample(path)

    # creation_time is UTC; Glimpse shows it in local time, like a photo's EXIF time.
    expected = datetime(2022, 8, 1, 9, 15, 0, tzinfo=UTC).astimezone()
    assert video.info.taken_at == expected.replace(tzinfo=None)


def test_an_iphones_recording_time_keeps_its_own_time_zone(videos: Path) -> None:
    path = make_video(
        videos / "iphone.mov",
        seconds=1,
        fps=5,
        metadata={"com.apple.quicktime.creationdate": "2019-07-14T10:30:00+0100"},
    )

    video, _ = sample(path)

    assert video.info.taken_at == datetime(2019, 7, 14, 10, 30)


def test_impossible_recording_times_are_unknown(tmp_path: Path) -> None:
    files = make_bad_metadata_files(tmp_path)
    dated = {name: path for name, path in files.items() if name.startswith("video_date_")}
    assert len(dated) >= 4
    for name, path in dated.items():
        video, frames = sample(path)
        assert video.info.taken_at is None, name
        assert frames, name


def test_a_one_frame_video_gives_that_frame(videos: Path) -> None:
    _, frames = sample(make_video(videos / "still.mp4", seconds=0.1))

    assert times(frames) == [0]


def test_frames_are_decoded_lazily_and_iterated_once(clip: Path) -> None:
    with FrameSampler().open(os.fsencode(clip)) as video:
        frames = video.frames()
        first = next(frames)
        assert first.timestamp_ms == 0
        with pytest.raises(RuntimeError):
            video.frames()
    # Closing before the end is fine: an indexer that is stopped does exactly that.


def test_a_truncated_video_gives_what_it_can(videos: Path, caplog: pytest.LogCaptureFixture) -> None:
    whole = make_video(
        videos / "whole.mkv", seconds=20
    )  # Matroska: readable from the start, like a recording
    cut = videos / "cut.mkv"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])

    with caplog.at_level(logging.WARNING, logger="engine.media.video"):
        _, frames = sample(cut)

    assert 3 <= len(frames) <= 7
    assert times(frames) == sorted(set(times(frames)))
    assert "probably truncated" in caplog.text


def test_every_hostile_video_is_a_clear_media_error(tmp_path: Path) -> None:
    files = make_hostile_files(tmp_path)
    with pytest.raises(MediaError) as failure:
        sample(files["truncated_mp4"])  # MP4 from OpenCV keeps its index at the end: cut, nothing is left
    assert str(failure.value) == "not a readable video: invalid data found when processing input"

    silence = tmp_path / "voice-memo.mp4"
    with wave.open(str(silence), "wb") as audio:
        audio.setnchannels(1), audio.setsampwidth(2), audio.setframerate(8000)
        audio.writeframes(b"\0\0" * 8000)
    cases = {
        files["empty_jpg"]: "not a readable video: the file is empty",
        # FFmpeg takes a text file for an "ANSI art" video, then finds nothing it can draw.
        files["text_jpg"]: "not a readable video: no frame could be decoded (damaged or unsupported)",
        silence: "not a readable video: the file has no video track",
        tmp_path / "gone.mp4": "file not found: it was moved or deleted",
    }
    for path, message in cases.items():
        with pytest.raises(MediaError) as failure:
            sample(path)
        assert str(failure.value) == message


def test_a_video_with_a_name_that_is_not_utf8_opens(videos: Path) -> None:
    source = make_video(videos / "plain.avi", seconds=2)
    odd = os.path.join(os.fsencode(videos), b"f\xeate.avi")
    try:
        os.link(source, odd)
    except OSError:
        pytest.skip("this file system accepts only UTF-8 names")

    with FrameSampler().open(odd) as video:
        assert len(list(video.frames())) >= 1


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        FrameSampler(interval_s=0)
    with pytest.raises(ValueError):
        FrameSampler(min_side=0)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_damaged_videos_never_raise_anything_but_media_error(
    clip: Path, tmp_path: Path, data: st.DataObject
) -> None:
    original = clip.read_bytes()
    head = data.draw(st.sampled_from([original[:64], original[:4096], original[-70_000:], b""]))
    body = bytearray(head + data.draw(st.binary(max_size=3000)))
    for _ in range(data.draw(st.integers(0, 4))):
        if body:
            body[data.draw(st.integers(0, len(body) - 1))] = data.draw(st.integers(0, 255))
    path = tmp_path / "fuzz.mp4"
    path.write_bytes(bytes(body))
    with contextlib.suppress(MediaError), FrameSampler().open(os.fsencode(path)) as video:
        stamps = times(list(video.frames()))
        assert stamps == sorted(set(stamps))
