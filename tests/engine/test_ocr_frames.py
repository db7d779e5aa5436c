"""frames_to_read: a video's frames are read where its picture changed, judged by their Fast vectors."""

import numpy as np
import pytest

from engine.reading import frames_to_read


def unit(vectors):
    vectors = np.asarray(vectors, dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)


def shots(*lengths, dim=16, seed=0, jitter=0.02):
    """Frames of shots of the given lengths: each shot's frames close to their own direction."""
    rng = np.random.default_rng(seed)
    frames = []
    for length in lengths:
        centre = rng.standard_normal(dim)
        frames.extend(centre + jitter * rng.standard_normal((length, dim)))
    return unit(frames)


def test_the_first_frame_of_each_shot_is_read_and_no_other():
    vectors = shots(5, 3, 4)
    assert frames_to_read(vectors, 0.9) == [0, 5, 8]


def test_a_still_picture_is_read_once():
    vectors = unit(np.ones((30, 8)))
    assert frames_to_read(vectors, 0.99) == [0]


def test_a_slow_pan_is_read_each_time_it_has_drifted_far_enough_from_the_last_frame_read():
    # Each frame is 1 degree on from the one before: no neighbour differs, but the picture drifts away.
    angles = np.radians(np.arange(40))
    vectors = unit(np.stack([np.cos(angles), np.sin(angles)], axis=1))
    chosen = frames_to_read(vectors, float(np.cos(np.radians(10))) + 1e-6)
    assert chosen == [0, 10, 20, 30]


def test_max_gap_reads_a_frame_at_least_that_often():
    vectors = unit(np.ones((10, 4)))
    assert frames_to_read(vectors, 0.5, max_gap=4) == [0, 4, 8]


def test_a_broken_vector_counts_as_a_change():
    vectors = unit(np.ones((4, 4)))
    vectors[2] = np.nan
    assert frames_to_read(vectors, 0.9) == [0, 2, 3]


def test_no_frames_and_bad_shapes():
    assert frames_to_read(np.zeros((0, 8), np.float32), 0.9) == []
    with pytest.raises(ValueError, match="matrix"):
        frames_to_read(np.zeros(8, np.float32), 0.9)
    with pytest.raises(ValueError, match="max_gap"):
        frames_to_read(unit(np.ones((3, 4))), 0.9, max_gap=0)
