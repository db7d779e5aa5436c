"""The image-token cache: bounded in bytes, least recently used out first, on disk across processes."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.token_cache import TokenCache

MODEL = "coca-vit-b-32"
#: One entry: 16 × 32 float16 values.
ENTRY_BYTES = 16 * 32 * 2


def tokens(seed: int) -> torch.Tensor:
    return torch.randn(16, 32, generator=torch.Generator().manual_seed(seed))


def file_of(folder: Path, frame_id: int) -> Path:
    return folder / MODEL / f"{frame_id}.npy"


def test_memory_keeps_the_most_recently_used_within_its_size() -> None:
    cache = TokenCache(memory_bytes=2 * ENTRY_BYTES)
    cache.put(MODEL, 1, tokens(1))
    cache.put(MODEL, 2, tokens(2))
    assert cache.get(MODEL, 1) is not None  # 1 is now the most recent
    cache.put(MODEL, 3, tokens(3))
    assert cache.get(MODEL, 2) is None
    assert torch.equal(cache.get(MODEL, 1), tokens(1).half())
    assert torch.equal(cache.get(MODEL, 3), tokens(3).half())
    assert cache.usage().memory_bytes == 2 * ENTRY_BYTES
    # Entries of another model never answer for this one.
    assert cache.get("coca-vit-l-14", 1) is None


def test_disk_entries_survive_a_restart_and_stay_within_the_size(tmp_path: Path) -> None:
    folder = tmp_path / "tokens"
    entry = ENTRY_BYTES + 128  # the .npy header
    cache = TokenCache(folder, memory_bytes=0, disk_bytes=3 * entry)
    for frame_id in range(1, 4):
        cache.put(MODEL, frame_id, tokens(frame_id))
    # Frame 1 is read (and so touched) last: after a restart, it is still the most recently used.
    for frame_id, stamp in ((2, 1_000), (3, 2_000), (1, 3_000)):
        os.utime(file_of(folder, frame_id), ns=(stamp * 10**9, stamp * 10**9))

    reopened = TokenCache(folder, memory_bytes=0, disk_bytes=3 * entry)
    assert reopened.usage().disk_entries == 3
    reopened.put(MODEL, 4, tokens(4))
    assert not file_of(folder, 2).exists()
    assert reopened.get(MODEL, 2) is None
    for frame_id in (1, 3, 4):
        assert torch.equal(reopened.get(MODEL, frame_id), tokens(frame_id).half())
    usage = reopened.usage()
    assert usage.disk_entries == 3 and usage.disk_bytes <= 3 * entry
    assert sum(path.stat().st_size for path in (folder / MODEL).iterdir()) == usage.disk_bytes

    # A smaller size on the next open trims the folder at once, oldest first.
    small = TokenCache(folder, memory_bytes=0, disk_bytes=entry)
    assert small.usage().disk_entries == 1 and len(list((folder / MODEL).iterdir())) == 1


@pytest.mark.parametrize("damage", [b"", b"not numpy at all", "wrong dtype"])
def test_a_damaged_entry_is_a_miss_and_is_recomputed(tmp_path: Path, damage: bytes | str) -> None:
    folder = tmp_path / "tokens"
    TokenCache(folder, memory_bytes=0).put(MODEL, 7, tokens(7))
    if damage == "wrong dtype":
        np.save(file_of(folder, 7), np.zeros((16, 32), np.float64))
    else:
        file_of(folder, 7).write_bytes(damage)

    cache = TokenCache(folder, memory_bytes=0)
    assert cache.get(MODEL, 7) is None
    assert not file_of(folder, 7).exists()
    computed: list[list[int]] = []

    def compute(ids: list[int]) -> torch.Tensor:
        computed.append(ids)
        return torch.stack([tokens(i) for i in ids])

    assert torch.equal(cache.tokens(MODEL, [7], compute)[0], tokens(7).half())
    assert computed == [[7]] and file_of(folder, 7).exists()


def test_tokens_computes_only_the_missing_frames_in_one_batch(tmp_path: Path) -> None:
    cache = TokenCache(tmp_path / "tokens")
    cache.put(MODEL, 2, tokens(2))
    calls: list[list[int]] = []

    def compute(ids: list[int]) -> torch.Tensor:
        calls.append(ids)
        return torch.stack([tokens(i) for i in ids])

    batch = cache.tokens(MODEL, [3, 2, 5, 3], compute)
    assert calls == [[3, 5]]
    assert batch.shape == (4, 16, 32) and batch.dtype == torch.float16
    for row, frame_id in zip(batch, [3, 2, 5, 3], strict=True):
        # Computed tokens come back rounded like cached ones: a frame scores the same either way.
        assert torch.equal(row, tokens(frame_id).half())
    assert cache.tokens(MODEL, [5, 3], compute).shape == (2, 16, 32) and len(calls) == 1


def test_an_unwritable_folder_costs_only_the_disk_tier(tmp_path: Path) -> None:
    blocker = tmp_path / "tokens"
    blocker.write_text("a file where the cache folder should be")
    cache = TokenCache(blocker, memory_bytes=ENTRY_BYTES)
    cache.put(MODEL, 1, tokens(1))
    assert torch.equal(cache.get(MODEL, 1), tokens(1).half())
    assert cache.usage().disk_entries == 0


def test_a_memory_hit_keeps_its_file_on_disk(tmp_path: Path) -> None:
    folder = tmp_path / "tokens"
    cache = TokenCache(folder, memory_bytes=4 * ENTRY_BYTES, disk_bytes=2 * (ENTRY_BYTES + 128))
    cache.put(MODEL, 1, tokens(1))
    cache.put(MODEL, 2, tokens(2))
    assert cache.get(MODEL, 1) is not None  # served from memory
    cache.put(MODEL, 3, tokens(3))
    assert [file_of(folder, i).exists() for i in (1, 2, 3)] == [True, False, True]
