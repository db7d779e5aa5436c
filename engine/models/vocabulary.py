"""A word-level tokenizer built from a data set's training captions and saved inside each checkpoint."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
_WORD = re.compile(r"[a-z0-9]+")


def words(text: str) -> list[str]:
    """Lower-case words of `text`; punctuation is dropped."""
    return _WORD.findall(text.lower())


@dataclass(frozen=True)
class Vocabulary:
    """Words by id; id 0 is padding. Unknown words map to `<unk>`."""

    tokens: tuple[str, ...]
    #: Longest token sequence a model sees, `<bos>` and `<eos>` included; longer captions are cut.
    max_length: int = 32

    @classmethod
    def build(cls, captions: Iterable[str], min_count: int = 1, max_length: int = 32) -> Vocabulary:
        """Every word seen at least `min_count` times in `captions`, most frequent first (ties alphabetical)."""
        counts = Counter(word for caption in captions for word in words(caption))
        kept = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
        return cls((PAD, BOS, EOS, UNK, *kept), max_length)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_ids", {token: i for i, token in enumerate(self.tokens)})

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def pad_id(self) -> int:
        return 0

    @property
    def bos_id(self) -> int:
        return 1

    @property
    def eos_id(self) -> int:
        return 2

    def ids(self, text: str) -> list[int]:
        """`<bos>` word ids `<eos>`, cut to `max_length` (the `<eos>` is kept)."""
        unk = self._ids[UNK]  # type: ignore[attr-defined]
        body = [self._ids.get(word, unk) for word in words(text)][: self.max_length - 2]  # type: ignore[attr-defined]
        return [self.bos_id, *body, self.eos_id]

    @property
    def unk_id(self) -> int:
        return 3

    def decode(self, ids: Iterable[int]) -> str:
        """Word ids → the text they spell; padding, `<bos>` and `<eos>` are dropped."""
        return " ".join(self.tokens[i] for i in ids if i > self.eos_id)

    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        """Texts → (N, L) int64 ids, right-padded with 0 to the longest."""
        rows = [self.ids(text) for text in texts]
        out = torch.zeros((len(rows), max((len(r) for r in rows), default=2)), dtype=torch.long)
        for i, row in enumerate(rows):
            out[i, : len(row)] = torch.tensor(row)
        return out
