"""Deterministic building blocks of cross-image sampling: stable string hashes (blake2b), the
SplitMix64 mixer over numpy uint64 arrays, and helpers over runs of equal sorted keys.

Nothing here depends on Python's hash(), the process or the platform: the same inputs give the
same bits everywhere, which is what makes reservoirs and draws reproducible across runners.
"""

import hashlib
from collections.abc import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

MASK64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15  # SplitMix64 increment (2^64 / golden ratio)
_MIX1, _MIX2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def require_columns(table: pa.Table, names: Iterable[str], what: str) -> None:
    """Raise ValueError naming the columns of `names` that `table` lacks."""
    missing = [name for name in names if name not in table.column_names]
    if missing:
        raise ValueError(f"{what} table lacks columns {missing}")


def check_count(name: str, value: int) -> None:
    """Raise ValueError when a count option is negative."""
    if value < 0:
        raise ValueError(f"{name} must be >= 0; got {value}")


def splitmix64(state: np.ndarray) -> np.ndarray:
    """(N,) uint64: SplitMix64's output for each state (add the increment, then finalise)."""
    z = state + np.uint64(GOLDEN)  # uint64 arrays wrap modulo 2^64, as SplitMix64 needs
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


def _blake64(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def string_hashes(values: pa.Array) -> np.ndarray:
    """(V,) uint64 blake2b hash of each string; callers pass distinct values only."""
    return np.fromiter((_blake64(v) for v in values.to_pylist()), np.uint64, len(values))


def seed_state(seed: int, domain: str) -> np.uint64:
    """The 64-bit start state of one random stream: `domain` keeps streams independent."""
    return np.uint64(_blake64(f"{domain}:{seed}"))


def ranks(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, pa.Array]:
    """((N,) int64 rank of each value among the distinct values, (V,) those values sorted).

    Byte-wise string order; sorting the V distinct strings once is far cheaper than sorting N.
    """
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    encoded = column.dictionary_encode()
    order = pc.array_sort_indices(encoded.dictionary).to_numpy()
    rank_of_code = np.empty(order.size, dtype=np.int64)
    rank_of_code[order] = np.arange(order.size)
    return rank_of_code[encoded.indices.to_numpy()], encoded.dictionary.take(order)


def run_starts(sorted_keys: np.ndarray) -> np.ndarray:
    """(N,) bool: True where a run of equal values starts in a sorted (N,) array."""
    starts = np.ones(sorted_keys.size, dtype=bool)
    starts[1:] = sorted_keys[1:] != sorted_keys[:-1]
    return starts


def rank_in_run(sorted_keys: np.ndarray) -> np.ndarray:
    """(N,) int64 position of each element within its run of equal values."""
    positions = np.arange(sorted_keys.size)
    return positions - np.maximum.accumulate(np.where(run_starts(sorted_keys), positions, 0))
